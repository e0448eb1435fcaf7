/*
 * audit_retention.c - which rotated files of the audit trail go, and when:
 * past NOTES_AUDIT_MAX_FILES, and older than NOTES_AUDIT_RETENTION_DAYS
 * once every line of the file verifies (age is the file's mtime, which
 * its owner can set). Only the head of the chain is ever cut, oldest
 * first, each file on a signed record first.
 *
 * Shares struct audit with audit.c (audit_int.h). Must never: delete a
 * file before the record of its deletion is written, or cut a file after
 * one that stays.
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

static int file_ends(int fd, struct audit_line *first, struct audit_tail *t)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return ERR_IO;
    int rc = audit_read_first(fd, (uint64_t)st.st_size, first);
    return rc ? rc : audit_read_tail(NULL, fd, (uint64_t)st.st_size, t);
}

/* The record first, then the deletion: a file is never gone unexplained.
 * Every open for reading here is O_NONBLOCK: a FIFO planted under a file's
 * name would otherwise stop the event loop until a writer came. */
static int prune(struct audit *a, const struct audit_file *f, const char *why)
{
    struct audit_line first;
    struct audit_tail t;
    struct stat st;
    int fd = openat(a->dirfd, f->name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        return errno == ENOENT ? 0 : audit_fail(a, ERR_IO, "cannot open %s: %s", f->name, strerror(errno));
    if (fstat(fd, &st) == 0 && !S_ISREG(st.st_mode)) {
        close(fd);                     /* replaced since ours() looked: not ours */
        return 0;
    }
    int rc = file_ends(fd, &first, &t);
    close(fd);
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
static bool ours(struct audit *a, const struct audit_file *f)
{
    struct audit_tail t;
    struct stat st;
    if (!f->regular) {
        log_warn("audit: %s is not a regular file; retention leaves it to audit verify", f->name);
        return false;
    }
    int fd = openat(a->dirfd, f->name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK);
    bool ok = fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
              audit_read_tail(a->crypto, fd, (uint64_t)st.st_size, &t) == 0 && t.has_line && !t.torn &&
              t.last.mac_ok && t.last.parsed && t.last.seq == f->seq;
    if (fd >= 0)
        close(fd);
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
    return k;
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
        /* Age is the file's modification time, which its owner can set:
         * a file goes by age only if every line of it still verifies, so a
         * backdated edit stays as evidence rather than leave on a signed
         * record. (By count, only the trail's own rotations push it out.) */
        bool intact = true;
        if (strcmp(why, "retention") == 0) {
            rc = audit_file_intact(a->crypto, a->dirfd, &f[i], &intact);
            if (rc == ERR_NOMEM || rc == ERR_CRYPTO)
                break;
            if (rc != 0 || !intact) {
                log_warn("audit: %s is due for retention but does not verify; kept for audit verify", f[i].name);
                rc = 0;
                break;
            }
        }
        rc = prune(a, &f[i], why);
    }
    free(f);
    return rc == ERR_NOMEM || rc == ERR_CRYPTO ? audit_fail(a, rc, "cannot check a file for retention") : rc;
}
