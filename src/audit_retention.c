/*
 * audit_retention.c - which rotated files of the audit trail go, and when:
 * past NOTES_AUDIT_MAX_FILES at once, and older than
 * NOTES_AUDIT_RETENTION_DAYS only once every line of the file verifies
 * (age is the file's mtime, which its owner can set). Only the head of the
 * chain is ever cut, oldest first, each file on a signed record first.
 *
 * That whole-file check reads and MACs every line: hundreds of
 * milliseconds for a 10 MiB file, and as long as the disk takes. Once the
 * server asked (audit_defer_checks()), it never runs on the event loop in
 * one piece: retention stops at a due file without a verdict and wants a
 * check, which the server starts (audit_check_begin()). Its reads run on
 * the thread pool; its MACs run on the loop a buffer (64 KiB) at a time,
 * because PSA is built without threading support (crypto.h) and a MAC
 * takes a reference on the key's slot, which the loop's own audit lines
 * take too. The verdict is kept for the file as it was checked, named by
 * its (device, inode, size, mtime, ctime): any write or utime sets the
 * ctime to now, so a file changed after its check is checked again. At
 * start-up and in CLI commands (no loop to keep free) the same check runs
 * in place.
 *
 * Shares struct audit with audit.c (audit_int.h). Must never: delete a
 * file before the record of its deletion is written, cut a file after one
 * that stays, prune by age on a verdict about another version of the
 * file, or read a whole file on the loop thread once checks are deferred.
 */
#include "audit.h"
#include "audit_int.h"
#include "err.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SECONDS_PER_DAY 86400

/* O_NONBLOCK on every open for reading: a FIFO planted under a file's name
 * would otherwise stop the event loop until a writer came. */
#define READ_FLAGS (O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK)

struct audit_check {
    struct audit_file file;            /* a copy: retention's list is gone by then */
    int fd;
    struct stat at_start;
    struct audit_walk *walk;
    int rc;                            /* of the last read, then of the walk */
    bool done, intact;
    bool changed;                      /* its stat moved during the check */
};

/* ---- verdicts --------------------------------------------------------------- */

static bool same_time(const struct timespec *x, const struct timespec *y)
{
    return x->tv_sec == y->tv_sec && x->tv_nsec == y->tv_nsec;
}

static bool same_version(const struct stat *x, const struct stat *y)
{
    return x->st_dev == y->st_dev && x->st_ino == y->st_ino && x->st_size == y->st_size &&
           same_time(&x->st_mtim, &y->st_mtim) && same_time(&x->st_ctim, &y->st_ctim);
}

/* Is there a verdict on file `f` as `st` says it is now? */
static bool verdict_for(const struct audit *a, const struct audit_file *f, const struct stat *st)
{
    const struct audit_verdict *v = &a->verdict;
    return v->valid && strcmp(v->name, f->name) == 0 && same_version(&v->st, st);
}

/* ---- one whole-file check ------------------------------------------------ */

static int check_open(const struct audit *a, const struct audit_file *f, struct audit_check **out)
{
    *out = NULL;
    struct audit_check *c = calloc(1, sizeof(*c));
    if (!c)
        return ERR_NOMEM;
    c->file = *f;
    c->fd = openat(a->dirfd, f->name, READ_FLAGS);
    int rc = c->fd < 0 ? (errno == ENOENT ? ERR_NOT_FOUND : ERR_IO) : 0;
    if (rc == 0 && (fstat(c->fd, &c->at_start) != 0 || !S_ISREG(c->at_start.st_mode)))
        rc = ERR_IO;
    rc = rc ? rc : audit_walk_new(a->crypto, f, c->fd, (uint64_t)c->at_start.st_size, &c->walk);
    if (rc) {
        if (c->fd >= 0)
            close(c->fd);
        audit_walk_free(c->walk);
        free(c);
        return rc;
    }
    *out = c;
    return 0;
}

void audit_check_read(struct audit_check *c)
{
    c->rc = audit_walk_read(c->walk);
}

bool audit_check_next(struct audit_check *c)
{
    int rc = c->rc ? c->rc : audit_walk_lines(c->walk, &c->intact);
    if (rc == 1)
        return true;
    c->rc = rc;
    c->done = true;
    return false;
}

/* Keep what a finished check found. A file changed while it was read
 * (its stat now is not the one it began with) gets no verdict: what was
 * read may mix two versions, and a verdict for the new one would stand
 * for good, though the change may be a chmod or a hard link that left
 * every byte alone. Retention's next run checks it again. */
static bool conclude(struct audit *a, struct audit_check *c)
{
    struct stat st;
    if (!c->done || c->rc || fstat(c->fd, &st) != 0)
        return false;
    if (!same_version(&st, &c->at_start)) {
        log_info("audit: %s changed while it was checked for retention; retention checks it again at its "
                 "next run", c->file.name);
        c->changed = true;
        return false;
    }
    struct audit_verdict *v = &a->verdict;
    v->valid = true;
    v->intact = c->intact;
    memcpy(v->name, c->file.name, sizeof(v->name));
    v->st = st;
    log_debug("audit: checked %s for retention: %s", c->file.name,
              v->intact ? "every line verifies" : "it does not verify");
    return true;
}

static void check_free(struct audit_check *c)
{
    if (!c)
        return;
    close(c->fd);
    audit_walk_free(c->walk);
    free(c);
}

/* Without a loop to keep free: the whole check now, on this thread. */
static int check_here(struct audit *a, const struct audit_file *f)
{
    struct audit_check *c;
    int rc = check_open(a, f, &c);
    if (rc)
        return rc;
    do
        audit_check_read(c);
    while (audit_check_next(c));
    rc = conclude(a, c) ? 0 : c->rc ? c->rc : ERR_IO;
    check_free(c);
    return rc;
}

void audit_defer_checks(struct audit *a)
{
    if (a)
        a->defer_checks = true;
}

struct audit_check *audit_check_begin(struct audit *a)
{
    if (!a || !a->check_wanted || a->check_running)
        return NULL;
    a->check_wanted = false;
    struct audit_check *c;
    int rc = check_open(a, &a->check_next, &c);
    if (rc) {
        if (rc != ERR_NOT_FOUND)
            log_warn("audit: cannot check %s for retention (%s); retention tries again at its next run",
                     a->check_next.name, err_name(rc));
        return NULL;
    }
    a->check_running = true;
    memcpy(a->check_name, c->file.name, sizeof(a->check_name));
    log_debug("audit: %s is due for retention: checking it on the thread pool", c->file.name);
    return c;
}

bool audit_check_end(struct audit *a, struct audit_check *c, bool cancelled)
{
    bool kept = !cancelled && conclude(a, c);
    if (!cancelled && !kept && !c->changed)
        log_warn("audit: cannot check %s for retention (%s); retention tries again at its next run",
                 c->file.name, err_name(c->rc ? c->rc : ERR_IO));
    if (cancelled)
        log_debug("audit: the check of %s for retention was cancelled", c->file.name);
    a->check_running = false;
    check_free(c);
    return kept;
}

/* ---- pruning ------------------------------------------------------------- */

static int file_ends(int fd, uint64_t size, struct audit_line *first, struct audit_tail *t)
{
    int rc = audit_read_first(fd, size, first);
    return rc ? rc : audit_read_tail(NULL, fd, size, t);
}

/* The record first, then the deletion: a file is never gone unexplained.
 * `fd` is the file, open for reading, `size` bytes long. */
static int prune(struct audit *a, const struct audit_file *f, const char *why, int fd, uint64_t size)
{
    struct audit_line first;
    struct audit_tail t;
    int rc = file_ends(fd, size, &first, &t);
    if (rc == ERR_NOMEM || rc == ERR_CRYPTO)
        return audit_fail(a, rc, "cannot read back %s (%s)", f->name, err_name(rc));
    /* A file that cannot be read back still goes when its time is up; its
     * record says so, and verify will not take it as the head's excuse. */
    struct audit_extra x = { .file = f->name, .first_seq = rc ? 0 : first.seq,
                             .last_seq = rc ? 0 : t.last.seq,
                             .last_hash = !rc && t.has_line ? t.last.hash : audit_zero_hash };
    rc = audit_append_own(a, AUDIT_EV_PRUNE, AUDIT_SUCCESS, why, rc ? "unreadable" : NULL, 0, &x, false);
    if (rc)
        return rc;
    if (a->sync_mode != CONFIG_AUDIT_SYNC_OFF) {
        /* The record is written, not yet on disk: the sync deletes. */
        memcpy(a->doomed[a->n_doomed++], f->name, sizeof(a->doomed[0]));
        return 0;
    }
    if (unlinkat(a->dirfd, f->name, 0) != 0 && errno != ENOENT)
        log_warn("audit: cannot delete %s (%s); retention will try again", f->name, strerror(errno));
    a->dir_dirty = true;
    return 0;
}

static bool is_doomed(const struct audit *a, const char *name)
{
    for (size_t i = 0; i < a->n_doomed; i++)
        if (strcmp(a->doomed[i], name) == 0)
            return true;
    return false;
}

/* A rotated file this trail wrote ends in a line it signed, with the seq
 * of the file's name. Anything else under such a name (planted, copied,
 * cut) is neither counted nor pruned: nothing signs its deletion, and
 * `audit verify` reports it. Reads the file's last 64 KiB only. */
/* ---- files known to be the trail's ---------------------------------------
 * Each retention run must know which rotated files end in a line of this
 * trail. Reading every file's end and checking its MAC at each run (each
 * rotation) grows with the number of files, on the loop; a file is read
 * once and then known by its stat, which any change to it moves (ctime). */

static struct audit_known *known_find(struct audit *a, uint64_t seq)
{
    size_t lo = 0, hi = a->n_known;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (a->known[mid].seq < seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < a->n_known && a->known[lo].seq == seq ? &a->known[lo] : NULL;
}

/* Remember `f` as `st` says it is. Out of memory, it is just read again. */
static void known_add(struct audit *a, const struct audit_file *f, const struct stat *st)
{
    struct audit_known *k = known_find(a, f->seq);
    if (!k) {
        if (a->n_known == a->cap_known) {
            size_t cap = a->cap_known ? 2 * a->cap_known : 16;
            struct audit_known *p = realloc(a->known, cap * sizeof(*p));
            if (!p)
                return;
            a->known = p;
            a->cap_known = cap;
        }
        size_t at = 0;
        while (at < a->n_known && a->known[at].seq < f->seq)
            at++;
        memmove(&a->known[at + 1], &a->known[at], (a->n_known - at) * sizeof(*k));
        a->n_known++;
        k = &a->known[at];
    }
    *k = (struct audit_known){ .st = *st, .seq = f->seq, .seen = true };
}

/* Forget the files no longer listed (pruned, or gone). */
static void known_sweep(struct audit *a)
{
    size_t k = 0;
    for (size_t i = 0; i < a->n_known; i++)
        if (a->known[i].seen) {
            a->known[i].seen = false;
            a->known[k++] = a->known[i];
        }
    a->n_known = k;
}

static bool ours(struct audit *a, const struct audit_file *f)
{
    struct audit_tail t;
    struct stat st;
    if (!f->regular) {
        log_warn("audit: %s is not a regular file; retention leaves it to audit verify", f->name);
        return false;
    }
    struct audit_known *k = known_find(a, f->seq);
    if (k && fstatat(a->dirfd, f->name, &st, AT_SYMLINK_NOFOLLOW) == 0 && same_version(&st, &k->st)) {
        k->seen = true;
        return true;
    }
    int fd = openat(a->dirfd, f->name, READ_FLAGS);
    bool ok = fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
              audit_read_tail(a->crypto, fd, (uint64_t)st.st_size, &t) == 0 && t.has_line && !t.torn &&
              t.last.mac_ok && t.last.parsed && t.last.seq == f->seq;
    if (fd >= 0)
        close(fd);
    if (ok)
        known_add(a, f, &st);
    if (!ok)
        log_warn("audit: %s does not end in a line of this trail; retention leaves it to audit verify",
                 f->name);
    return ok;
}

/* Only this trail's files, oldest first, without those already pruned on
 * record and waiting for a sync to delete them. Files sharing a seq are
 * copies or hard links of one file under other names (each ends in a line
 * this trail signed with that seq): none of them counts, none is pruned,
 * and nothing from the first of them on either, so that only the head of
 * the chain is ever cut. *before_twins is where that is in the result. */
static size_t keep_ours(struct audit *a, struct audit_file *f, size_t n, size_t *before_twins)
{
    size_t k = 0;
    uint64_t prev_seq = 0;
    *before_twins = SIZE_MAX;
    for (size_t i = 0; i < n; i++) {
        uint64_t seq = f[i].seq;        /* f[i] may be overwritten below */
        if ((i > 0 && seq == prev_seq) || (i + 1 < n && seq == f[i + 1].seq)) {
            if (*before_twins == SIZE_MAX) {
                *before_twins = k;
                log_warn("audit: %s shares its seq with another file (a copy or link); retention stops "
                         "before it and leaves it to audit verify", f[i].name);
            }
        } else if (!is_doomed(a, f[i].name) && ours(a, &f[i])) {
            f[k++] = f[i];
        }
        prev_seq = seq;
    }
    known_sweep(a);
    return k;
}

/* A file due by age goes only if every line of it still verifies, so a
 * backdated edit stays as evidence rather than leave on a signed record.
 * *go when a verdict on the file as `st` shows it says so. Without one,
 * a check is wanted (deferred) or made here; a failed or negative check
 * keeps the file, with the warning. ERR_NOMEM or ERR_CRYPTO from a check
 * made here. */
static int judge(struct audit *a, const struct audit_file *f, const struct stat *st, bool *go)
{
    *go = false;
    if (!verdict_for(a, f, st)) {
        if (a->defer_checks) {
            if (!a->check_running || strcmp(a->check_name, f->name) != 0) {
                a->check_wanted = true;
                a->check_next = *f;
            }
            return 0;
        }
        int rc = check_here(a, f);
        if (rc == ERR_NOMEM || rc == ERR_CRYPTO)
            return rc;
        if (rc || !verdict_for(a, f, st)) {
            log_warn("audit: %s is due for retention but does not verify; kept for audit verify", f->name);
            return 0;
        }
    }
    if (!a->verdict.intact) {
        log_warn("audit: %s is due for retention but does not verify; kept for audit verify", f->name);
        return 0;
    }
    *go = true;
    return 0;
}

int audit_enforce(struct audit *a, time_t now)
{
    struct audit_file *f = NULL;
    size_t n = 0;
    if (audit_list_rotated(a->dirfd, &f, &n) != 0)
        return audit_fail(a, ERR_IO, "cannot list the audit directory");
    size_t stop;
    n = keep_ours(a, f, n, &stop);
    size_t keep = a->max_files - 1;            /* audit.log is one of them */
    int64_t cutoff = (int64_t)now - (int64_t)a->retention_days * SECONDS_PER_DAY;
    int rc = 0;
    /* Oldest first, and only while the oldest must go: what stays is one
     * unbroken run of files, so only the head of the chain is ever cut. */
    for (size_t i = 0; i < n && i < stop && rc == 0; i++) {
        const char *why = n - i > keep ? "max_files" : f[i].mtime < cutoff ? "retention" : NULL;
        if (!why || a->n_doomed == AUDIT_DOOMED_MAX)
            break;                     /* nothing due, or the rest after the next sync */
        struct stat st;
        int fd = openat(a->dirfd, f[i].name, READ_FLAGS);
        if (fd < 0 && errno != ENOENT) {
            rc = audit_fail(a, ERR_IO, "cannot open %s: %s", f[i].name, strerror(errno));
            break;
        }
        if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
            if (fd >= 0)
                close(fd);             /* gone or replaced since ours() looked: not ours */
            continue;
        }
        /* By count, only the trail's own rotations push a file out: no
         * check. By age, see judge(). */
        bool go = true;
        if (strcmp(why, "retention") == 0)
            rc = judge(a, &f[i], &st, &go);
        if (rc == 0 && go)
            rc = prune(a, &f[i], why, fd, (uint64_t)st.st_size);
        close(fd);
        if (!go)
            break;
    }
    free(f);
    return rc == ERR_NOMEM || rc == ERR_CRYPTO ? audit_fail(a, rc, "cannot check a file for retention") : rc;
}
