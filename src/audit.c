/*
 * audit.c - the audit trail's writer: builds each event's signed line,
 * appends it, rotates the file, enforces retention and hands fdatasync to
 * the thread pool.
 *
 * Owns the audit directory's descriptors and the chain head (the seq and
 * hash of the last line). Before each line it takes an flock on audit.lock
 * and checks that audit.log is still the file it holds and still the size it
 * knows; if another process (a `notesd user` command) appended or rotated,
 * the head is read back from the file. The server holds the lock for a loop
 * iteration (audit_hold()): then callers' lines are queued and written
 * together, and nothing is queued once the lock is given back. Every key operation goes through
 * crypto.c; no key byte is seen here.
 *
 * This file must never: write a line with more than one write(2), or leave
 * part of a failed line in a file; delete a file before the record of its
 * deletion is written, or delete audit.log; put a caller's text into a line
 * unescaped; write a secret, a key, or an event's text to stderr; or fsync
 * on the event loop (audit_sync_run() is for the thread pool; the one
 * exception is documented at retire()).
 */
#include "audit.h"
#include "audit_int.h"
#include "config.h"
#include "crypto.h"
#include "err.h"
#include "log.h"
#include "sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define PENDING_MAX (AUDIT_SYNC_FDS - 2)   /* rotated files waiting for a sync: the
                                              current file and the directory join them */
#define SECONDS_PER_DAY 86400
#define AUDIT_BATCH_BYTES (64 * 1024) /* queued lines written at once, at most */

static const uint8_t zero_hash[AUDIT_HASH_LEN];

struct audit {
    const struct crypto *crypto;
    char *dir;                             /* for messages */
    int dirfd, lockfd, fd;                 /* fd: audit.log, or -1 */
    dev_t dev;
    ino_t ino;
    uid_t run_uid;                         /* also ours: root serves as this user */
    struct audit_pseudonyms pseudonyms;    /* a->enc.cache */
    bool hold;                             /* keep the lock between lines and
                                              queue event lines while held ... */
    bool held;                             /* ... and it is held now */
    struct buf batch;                      /* queued lines, written at the latest
                                              when the lock is given back */
    uint64_t batch_lines;
    uint64_t batch_events;                 /* of them, callers' events */
    uint64_t head_seq;                     /* the chain head before the batch, */
    uint8_t head_prev[AUDIT_HASH_LEN];     /* back to which a failed write goes */
    bool queued;                           /* the last event went into the batch */
    uint64_t writes;                       /* successful write(2) calls */
    uid_t dir_uid;                         /* the folder's owner and group: what */
    gid_t dir_gid;                         /* root gives the files it creates */
    uint64_t size;                         /* what audit.log holds, as we know it */
    bool stale;                            /* size unknown: read the head back */
    uint64_t floor;                        /* never rotate at or below this size */
    uint64_t seq;                          /* the chain head: last line's seq */
    uint8_t prev[AUDIT_HASH_LEN];          /* and its hash */
    char continues[AUDIT_NAME_MAX + 1];    /* audit.log is new: name this file first */
    bool torn;                             /* audit.log ends in a torn line */
    uint64_t torn_bytes;
    uint8_t torn_hash[AUDIT_HASH_LEN];
    uint64_t max_bytes;
    uint32_t max_files, retention_days;
    enum config_audit_sync sync_mode;
    struct audit_enc enc;                  /* the key ring and NOTES_AUDIT_IP */
    bool write_failed, sync_failed;
    uint64_t lost;                         /* events not recorded since a failure */
    uint64_t synced_seq;
    bool dirty, dir_dirty;                 /* written / renamed since a sync began */
    int pending[PENDING_MAX];
    size_t n_pending;
    char why[256];                         /* the last failure, for one log line */
    struct buf line;
};

static int fail(struct audit *a, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(struct audit *a, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(a->why, sizeof(a->why), fmt, ap);   /* cut at the buffer on purpose */
    va_end(ap);
    return rc;
}

/* ---- files --------------------------------------------------------------- */

/* Ours alone: owned by this user, no group or other bits (tightened, with a
 * warning, when they are set). */
static int check_private(struct audit *a, int fd, const char *name, bool dir, struct stat *out)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return fail(a, ERR_IO, "cannot stat %s: %s", name, strerror(errno));
    if (dir ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode))
        return fail(a, ERR_CONFIG, "%s is not a %s", name, dir ? "directory" : "regular file");
    if (st.st_uid != geteuid() && st.st_uid != a->run_uid)
        return fail(a, ERR_CONFIG, "%s is owned by another user", name);
    if (st.st_mode & (S_IRWXG | S_IRWXO)) {
        if (fchmod(fd, dir ? 0700 : 0600) != 0)
            return fail(a, ERR_IO, "cannot chmod %s: %s", name, strerror(errno));
        log_warn("audit: %s was open to group or others; now mode %s", name, dir ? "0700" : "0600");
    }
    if (out)
        *out = st;
    return 0;
}

/* A file root creates in a folder handed to NOTES_USER (an operator's
 * `notesd user ...` rotating the trail) goes to the folder's owner, or the
 * server running as that user could not write it any more. */
static int hand_over(struct audit *a, int fd, const char *name)
{
    struct stat st;
    if (geteuid() != 0 || a->dir_uid == 0 || fstat(fd, &st) != 0 || st.st_uid == a->dir_uid)
        return 0;
    if (fchown(fd, a->dir_uid, a->dir_gid) != 0)
        return fail(a, ERR_IO, "cannot hand %s to the folder's owner: %s", name, strerror(errno));
    return 0;
}

static int open_current(struct audit *a)
{
    int fd = openat(a->dirfd, AUDIT_CURRENT,
                    O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
    if (fd < 0)
        return fail(a, ERR_IO, "cannot open %s: %s", AUDIT_CURRENT, strerror(errno));
    struct stat st;
    int rc = hand_over(a, fd, AUDIT_CURRENT);
    rc = rc ? rc : check_private(a, fd, AUDIT_CURRENT, false, &st);
    if (rc) {
        close(fd);
        return rc;
    }
    a->fd = fd;
    a->dev = st.st_dev;
    a->ino = st.st_ino;
    a->dirty = false;
    a->dir_dirty = true;      /* it may have just been created */
    return 0;
}

/* Stop writing to the current file. Its unsynced lines must still reach the
 * disk, so the descriptor waits for the next sync. More rotations than that
 * list holds between two syncs (a tiny NOTES_AUDIT_MAX_BYTES under a burst)
 * sync here, on the loop: the only fdatasync this file makes outside
 * audit_sync_run(). */
static void retire(struct audit *a)
{
    if (a->fd < 0)
        return;
    if (a->sync_mode != CONFIG_AUDIT_SYNC_OFF && a->dirty) {
        if (a->n_pending < PENDING_MAX) {
            a->pending[a->n_pending++] = a->fd;
            a->fd = -1;
            return;
        }
        if (fdatasync(a->fd) != 0)
            a->sync_failed = true;
    }
    close(a->fd);
    a->fd = -1;
}

static int read_tail(struct audit *a, const struct crypto *c, int fd, uint64_t size,
                     const char *name, struct audit_tail *t)
{
    int rc = audit_read_tail(c, fd, size, t);
    if (rc == ERR_LIMIT)
        return fail(a, ERR_IO, "%s ends with a line longer than %d bytes: not written by notesd "
                    "(check it with notesd audit verify, then move it aside)", name, AUDIT_TAIL_MAX);
    return rc ? fail(a, rc, "cannot read back the end of %s (%s)", name, err_name(rc)) : 0;
}

/* The head of the newest rotated file: where an empty audit.log goes on. */
static int newest_rotated(struct audit *a, struct audit_tail *t, char name[AUDIT_NAME_MAX + 1])
{
    struct audit_file *f = NULL;
    size_t n = 0;
    struct stat st;
    memset(t, 0, sizeof(*t));
    name[0] = '\0';
    if (audit_list_rotated(a->dirfd, &f, &n) != 0)
        return fail(a, ERR_IO, "cannot list the audit directory");
    if (n == 0)
        return 0;
    memcpy(name, f[n - 1].name, AUDIT_NAME_MAX + 1);
    free(f);
    int fd = openat(a->dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
    if (fd < 0 || fstat(fd, &st) != 0) {
        if (fd >= 0)
            close(fd);
        return fail(a, ERR_IO, "cannot read %s: %s", name, strerror(errno));
    }
    int rc = read_tail(a, a->crypto, fd, (uint64_t)st.st_size, name, t);
    close(fd);
    return rc;
}

/* Find the chain head on disk (open, after a rotation, or when another
 * process wrote). A head behind the one this process wrote means lines
 * vanished from audit.log: keep ours, so the gap shows in verify. */
static int load_head(struct audit *a)
{
    struct audit_tail t, rt;
    struct stat st;
    char name[AUDIT_NAME_MAX + 1] = "";
    int rc = a->fd < 0 ? open_current(a) : 0;
    if (rc)
        return rc;
    if (fstat(a->fd, &st) != 0)
        return fail(a, ERR_IO, "cannot stat %s: %s", AUDIT_CURRENT, strerror(errno));
    a->size = (uint64_t)st.st_size;
    a->stale = false;
    rc = read_tail(a, a->crypto, a->fd, a->size, AUDIT_CURRENT, &t);
    if (rc == 0 && !t.has_line) {
        rc = newest_rotated(a, &rt, name);
        if (rc == 0 && name[0] && !rt.has_line)
            rc = fail(a, ERR_IO, "%s holds no complete line", name);
        t.has_line = rt.has_line;
        t.last = rt.last;
    }
    if (rc)
        return rc;
    if (t.has_line && !t.last.parsed)
        return fail(a, ERR_IO, "the last line of %s is not an audit record (check it with notesd "
                    "audit verify, then move the file aside)", name[0] ? name : AUDIT_CURRENT);
    if (t.has_line && !t.last.mac_ok)
        log_warn("audit: the last line of %s does not verify; run notesd audit verify",
                 name[0] ? name : AUDIT_CURRENT);
    uint64_t seq = t.has_line ? t.last.seq : 0;
    if (seq >= a->seq) {
        a->seq = seq;
        memcpy(a->prev, t.has_line ? t.last.hash : zero_hash, AUDIT_HASH_LEN);
    } else {
        log_error("audit: %s lost lines this process wrote (removed or truncated); the gap stays "
                  "visible to notesd audit verify", AUDIT_CURRENT);
    }
    memcpy(a->continues, name, sizeof(name));
    a->torn = t.torn;
    a->torn_bytes = t.torn_bytes;
    memcpy(a->torn_hash, t.torn_hash, AUDIT_HASH_LEN);
    return 0;
}

/* Under the lock: is audit.log still the file we hold, at the size we know? */
static int refresh(struct audit *a)
{
    struct stat st;
    int r = fstatat(a->dirfd, AUDIT_CURRENT, &st, AT_SYMLINK_NOFOLLOW);
    bool same = a->fd >= 0 && r == 0 && st.st_dev == a->dev && st.st_ino == a->ino;
    if (same && !a->stale && (uint64_t)st.st_size == a->size)
        return 0;
    if (!same)
        retire(a);            /* rotated by another process, or removed */
    return load_head(a);
}

/* Whole lines, one write(2). A short write (disk full, file-size limit) is
 * cut off again so the file still ends on a whole line; if even that fails,
 * the next refresh() finds the torn bytes and records them. */
static int write_lines(struct audit *a, const struct buf *b)
{
    ssize_t w;
    do
        w = write(a->fd, b->data, b->len);
    while (w < 0 && errno == EINTR);
    if (w == (ssize_t)b->len) {
        a->size += b->len;
        a->dirty = true;
        a->writes++;
        return 0;
    }
    int e = w < 0 ? errno : 0;
    if (w > 0 && ftruncate(a->fd, (off_t)a->size) != 0)
        a->stale = true;
    /* A short write says no more than that the disk or a file-size limit
     * is full; only a failed one carries the cause. */
    return fail(a, ERR_IO, "cannot write %s: %s", AUDIT_CURRENT,
                e ? strerror(e) : "short write (disk full or file-size limit reached)");
}

static int rotate(struct audit *a);

/* The queued lines in one write(2). If it fails none of them is in the file,
 * so the chain head goes back to the last line that is, and each queued
 * caller's event counts as lost (the audit.recovered record reports them;
 * the module's own records are owed again by their own state). */
static int write_batch(struct audit *a)
{
    if (a->batch_lines == 0)
        return 0;
    int rc = write_lines(a, &a->batch);
    if (rc) {
        a->seq = a->head_seq;
        memcpy(a->prev, a->head_prev, AUDIT_HASH_LEN);
        a->lost += a->batch_events;
    }
    buf_reset(&a->batch);
    a->batch_lines = a->batch_events = 0;
    return rc;
}

/* a->line joins the batch and becomes the chain head. */
static int queue(struct audit *a, const uint8_t hash[AUDIT_HASH_LEN])
{
    int rc = a->batch.len + a->line.len > AUDIT_BATCH_BYTES ? write_batch(a) : 0;
    if (rc == 0 && a->batch_lines == 0) {
        a->head_seq = a->seq;
        memcpy(a->head_prev, a->prev, AUDIT_HASH_LEN);
    }
    rc = rc ? rc : buf_append(&a->batch, a->line.data, a->line.len);
    if (rc)
        return rc == ERR_NOMEM ? fail(a, rc, "out of memory for a line") : rc;
    a->batch_lines++;
    a->seq++;
    memcpy(a->prev, hash, AUDIT_HASH_LEN);
    return 0;
}

/* The line of `ev` in a->line, after a newline ending a torn line if asked. */
static int build(struct audit *a, const struct audit_event *ev, const struct audit_extra *x,
                 bool end_torn, uint8_t hash[AUDIT_HASH_LEN])
{
    buf_reset(&a->line);
    int rc = end_torn ? buf_append(&a->line, "\n", 1) : 0;
    rc = rc ? rc : audit_line_build(&a->enc, ev, x, a->seq + 1, a->prev, &a->line, hash);
    if (rc == ERR_CRYPTO)
        return fail(a, rc, "cannot compute a line's MAC, hash or pseudonym");
    return rc ? fail(a, rc, "cannot build a line (%s)", err_name(rc)) : 0;
}

/* A caller's event (may_rotate) waits in the batch while the lock is held
 * for the loop; the module's own records, and everything when the lock is
 * not held over, are written at once (after what is queued: order stays). */
static int append(struct audit *a, const struct audit_event *ev, const struct audit_extra *x,
                  bool may_rotate, bool end_torn)
{
    uint8_t hash[AUDIT_HASH_LEN];
    int rc = build(a, ev, x, end_torn, hash);
    uint64_t size = a->size + a->batch.len;
    if (rc == 0 && may_rotate && size > a->floor && size + a->line.len > a->max_bytes) {
        rc = write_batch(a);
        rc = rc ? rc : rotate(a);
        rc = rc ? rc : build(a, ev, x, end_torn, hash);
    }
    rc = rc ? rc : queue(a, hash);
    if (may_rotate) {
        a->queued = rc == 0;
        a->batch_events += a->queued;
    }
    return rc || (may_rotate && a->hold) ? rc : write_batch(a);
}

static int append_own(struct audit *a, const char *event, enum audit_result r, const char *reason,
                      const char *detail, uint64_t count, const struct audit_extra *x, bool end_torn)
{
    struct audit_event ev = { .event = event, .role = "system", .result = r, .reason = reason,
                              .detail = detail, .count = count };
    return append(a, &ev, x, false, end_torn);
}

/* Records owed before the next event: the newline and record that explain a
 * torn line, the first line of a new file naming the file it continues, and
 * the count of events lost while the log could not be written. */
static int flush_pending(struct audit *a)
{
    int rc = 0;
    struct audit_extra x = { .file = a->continues[0] ? a->continues : NULL };
    if (a->torn) {
        x.bytes = a->torn_bytes;
        x.torn_hash = a->torn_hash;
        rc = append_own(a, AUDIT_EV_TORN, AUDIT_ERROR, "torn_line", NULL, 0, &x, true);
    } else if (x.file) {
        rc = append_own(a, AUDIT_EV_ROTATE, AUDIT_SUCCESS, NULL, NULL, 0, &x, false);
    }
    if (rc)
        return rc;
    if (x.file)
        a->floor = a->size;           /* a new file: its first lines never rotate it */
    a->torn = false;
    a->continues[0] = '\0';
    if (a->lost) {
        rc = append_own(a, AUDIT_EV_RECOVERED, AUDIT_ERROR, "write_failed", NULL, a->lost, NULL, false);
        if (rc == 0)
            a->lost = 0;
    }
    return rc;
}

/* ---- rotation and retention --------------------------------------------- */

static int file_ends(int fd, struct audit_line *first, struct audit_tail *t)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return ERR_IO;
    int rc = audit_read_first(fd, (uint64_t)st.st_size, first);
    return rc ? rc : audit_read_tail(NULL, fd, (uint64_t)st.st_size, t);
}

/* The record first, then the deletion: a file is never gone unexplained. */
static int prune(struct audit *a, const struct audit_file *f, const char *why)
{
    struct audit_line first;
    struct audit_tail t;
    int fd = openat(a->dirfd, f->name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
    if (fd < 0)
        return errno == ENOENT ? 0 : fail(a, ERR_IO, "cannot open %s: %s", f->name, strerror(errno));
    int rc = file_ends(fd, &first, &t);
    close(fd);
    if (rc == ERR_NOMEM || rc == ERR_CRYPTO)
        return fail(a, rc, "cannot read back %s (%s)", f->name, err_name(rc));
    /* A file that cannot be read back still goes when its time is up; its
     * record says so, and verify will not take it as the head's excuse. */
    struct audit_extra x = { .file = f->name, .first_seq = rc ? 0 : first.seq,
                             .last_seq = rc ? 0 : t.last.seq,
                             .last_hash = !rc && t.has_line ? t.last.hash : zero_hash };
    rc = append_own(a, AUDIT_EV_PRUNE, AUDIT_SUCCESS, why, rc ? "unreadable" : NULL, 0, &x, false);
    if (rc)
        return rc;
    if (unlinkat(a->dirfd, f->name, 0) != 0 && errno != ENOENT)
        log_warn("audit: cannot delete %s (%s); retention will try again", f->name, strerror(errno));
    a->dir_dirty = true;
    return 0;
}

static int enforce(struct audit *a, time_t now)
{
    struct audit_file *f = NULL;
    size_t n = 0;
    if (audit_list_rotated(a->dirfd, &f, &n) != 0)
        return fail(a, ERR_IO, "cannot list the audit directory");
    size_t keep = a->max_files - 1;            /* audit.log is one of them */
    int64_t cutoff = (int64_t)now - (int64_t)a->retention_days * SECONDS_PER_DAY;
    int rc = 0;
    /* Oldest first, and only while the oldest must go: what stays is one
     * unbroken run of files, so only the head of the chain is ever cut. */
    for (size_t i = 0; i < n && rc == 0; i++) {
        const char *why = n - i > keep ? "max_files" : f[i].mtime < cutoff ? "retention" : NULL;
        if (!why)
            break;
        rc = prune(a, &f[i], why);
    }
    free(f);
    return rc;
}

static int rotate(struct audit *a)
{
    char name[96];
    struct tm tm;
    time_t now = time(NULL);
    gmtime_r(&now, &tm);
    int n = snprintf(name, sizeof(name), "audit-%04d%02d%02dT%02d%02d%02dZ-%020llu.log",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     (unsigned long long)a->seq);
    if (n != AUDIT_NAME_MAX)
        return fail(a, ERR_INTERNAL, "the clock is out of range");
    /* The name holds the seq of the file's last line: unique, so a rename
     * that would replace a file is a bug or an attack, never a retry. */
    int r = renameat2(a->dirfd, AUDIT_CURRENT, a->dirfd, name, RENAME_NOREPLACE);
    if (r != 0 && errno == EINVAL && faccessat(a->dirfd, name, F_OK, AT_SYMLINK_NOFOLLOW) != 0)
        r = renameat(a->dirfd, AUDIT_CURRENT, a->dirfd, name);
    if (r != 0)
        return fail(a, ERR_IO, "cannot rename %s: %s", AUDIT_CURRENT, strerror(errno));
    retire(a);
    a->dir_dirty = true;
    int rc = load_head(a);           /* a new audit.log that continues `name` */
    rc = rc ? rc : flush_pending(a);
    rc = rc ? rc : enforce(a, now);
    if (rc == 0)
        a->floor = a->size;
    return rc;
}

/* ---- the public face ----------------------------------------------------- */

static int lock(struct audit *a)
{
    while (flock(a->lockfd, LOCK_EX) != 0)
        if (errno != EINTR)
            return fail(a, ERR_IO, "cannot lock %s: %s", AUDIT_LOCK, strerror(errno));
    return 0;
}

/* Report a failure once and a recovery once; count what could not be
 * recorded. Only a line written proves the log works again. */
static int settle(struct audit *a, int rc, bool event_lost, bool wrote)
{
    if (rc == 0) {
        if (a->write_failed && wrote)
            log_info("audit: the audit log in %s can be written again", a->dir);
        a->write_failed = a->write_failed && !wrote;
        return 0;
    }
    a->lost += event_lost;
    if (!a->write_failed)
        log_error("audit: cannot record events in %s (%s); changes are refused until it works",
                  a->dir, a->why);
    a->write_failed = true;
    return rc;
}

/* What is queued goes out before the lock does: another writer must find
 * the chain head in the file. */
static void release(struct audit *a)
{
    if (!a->held)
        return;
    uint64_t writes = a->writes;
    int rc = write_batch(a);
    settle(a, rc, false, a->writes != writes);
    flock(a->lockfd, LOCK_UN);
    a->held = false;
}

/* Lock and catch up with other writers (unless the lock is still held from
 * an earlier line: then nobody else can have written), write what is owed,
 * then append `ev` (or, without one, enforce retention). Unlock unless the
 * server asked to hold the lock until audit_release(); after an error
 * always, so the next line starts from what is on disk. */
static int locked(struct audit *a, const struct audit_event *ev, time_t now)
{
    if (!a->held) {
        int rc = lock(a);
        if (rc)
            return rc;
        a->held = true;
        rc = refresh(a);
        if (rc) {
            release(a);
            return rc;
        }
    }
    int rc = flush_pending(a);
    if (rc == 0)
        rc = ev ? append(a, ev, NULL, true, false) : enforce(a, now);
    if (rc || !a->hold)
        release(a);
    return rc;
}

void audit_hold(struct audit *a, bool on)
{
    if (!a)
        return;
    a->hold = on;
    if (!on)
        release(a);
}

void audit_release(struct audit *a)
{
    if (a)
        release(a);
}

int audit_flush(struct audit *a)
{
    if (!a || a->batch_lines == 0)
        return 0;
    uint64_t writes = a->writes;
    int rc = settle(a, write_batch(a), false, a->writes != writes);
    /* As after any failed line: the next one locks again and reads the
     * file's end back first (torn bytes a failed cut-off left included). */
    if (rc)
        release(a);
    return rc;
}

int audit_record(struct audit *a, const struct audit_event *ev)
{
    if (!a)
        return 0;
    if (!ev || !ev->event)
        return ERR_INVALID;
    uint64_t writes = a->writes;
    a->queued = false;
    int rc = locked(a, ev, 0);
    /* A queued event that a failed write dropped is counted there. */
    return settle(a, rc, !a->queued, a->writes != writes);
}

int audit_enforce_retention(struct audit *a, time_t now)
{
    if (!a)
        return 0;
    uint64_t writes = a->writes;
    int rc = locked(a, NULL, now);
    return settle(a, rc, false, a->writes != writes);
}

bool audit_retry(struct audit *a)
{
    if (a && a->write_failed) {
        uint64_t writes = a->writes;
        int rc = locked(a, NULL, time(NULL));
        settle(a, rc, false, a->writes != writes);
    }
    return audit_healthy(a);
}

bool audit_healthy(const struct audit *a)
{
    return !a || (!a->write_failed && !a->sync_failed);
}

uint64_t audit_seq(const struct audit *a)
{
    return a ? a->seq : 0;
}

uint64_t audit_written_seq(const struct audit *a)
{
    return a ? a->seq - a->batch_lines : 0;
}

uint64_t audit_synced_seq(const struct audit *a)
{
    return a ? a->synced_seq : 0;
}

bool audit_sync_begin(struct audit *a, struct audit_sync *s)
{
    if (!a || a->sync_mode == CONFIG_AUDIT_SYNC_OFF ||
        (!a->dirty && !a->dir_dirty && !a->n_pending && !a->sync_failed))
        return false;
    *s = (struct audit_sync){ .seq = audit_written_seq(a) };
    for (size_t i = 0; i < a->n_pending; i++)
        s->fd[s->n++] = a->pending[i];
    a->n_pending = 0;
    int fds[2] = { a->fd, a->dir_dirty ? a->dirfd : -1 };
    for (size_t i = 0; i < 2; i++) {
        if (fds[i] < 0)
            continue;
        int d = fcntl(fds[i], F_DUPFD_CLOEXEC, 0);
        if (d < 0)
            s->rc = ERR_IO;
        else
            s->fd[s->n++] = d;
    }
    a->dirty = a->dir_dirty = false;
    return true;
}

void audit_sync_run(struct audit_sync *s)
{
    for (size_t i = 0; i < s->n; i++) {
        /* fsync, not fdatasync: one of them is the directory, whose entries
         * (a rotation's rename, a new file) are its metadata. */
        if (fsync(s->fd[i]) != 0 && s->rc == 0)
            s->rc = ERR_IO;
        close(s->fd[i]);
    }
    s->n = 0;
}

void audit_sync_end(struct audit *a, const struct audit_sync *s)
{
    if (s->rc == 0) {
        if (s->seq > a->synced_seq)
            a->synced_seq = s->seq;
        if (a->sync_failed)
            log_info("audit: the audit log in %s can be synced again", a->dir);
        a->sync_failed = false;
        return;
    }
    /* Linux reports a lost write-back once; later syncs may succeed although
     * lines were lost. Refuse changes until a sync of everything works. */
    a->dirty = a->dir_dirty = true;
    if (!a->sync_failed)
        log_error("audit: cannot sync the audit log in %s to disk; changes are refused until it works",
                  a->dir);
    a->sync_failed = true;
}

int audit_sync(struct audit *a)
{
    struct audit_sync s;
    if (!audit_sync_begin(a, &s))
        return 0;
    audit_sync_run(&s);
    audit_sync_end(a, &s);
    return s.rc;
}

static int open_dir(struct audit *a)
{
    if (mkdir(a->dir, 0700) != 0 && errno != EEXIST)
        return fail(a, ERR_IO, "cannot create it: %s", strerror(errno));
    a->dirfd = open(a->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (a->dirfd < 0)
        return fail(a, ERR_IO, "cannot open it: %s", strerror(errno));
    struct stat dst = { 0 };
    int rc = check_private(a, a->dirfd, "the audit directory", true, &dst);
    if (rc)
        return rc;
    a->dir_uid = dst.st_uid;
    a->dir_gid = dst.st_gid;
    a->lockfd = openat(a->dirfd, AUDIT_LOCK, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
    if (a->lockfd < 0)
        return fail(a, ERR_IO, "cannot open %s: %s", AUDIT_LOCK, strerror(errno));
    rc = hand_over(a, a->lockfd, AUDIT_LOCK);
    rc = rc ? rc : check_private(a, a->lockfd, AUDIT_LOCK, false, NULL);
    /* Rotated files too: a group-readable copy of the trail is still a leak. */
    struct audit_file *f = NULL;
    size_t n = 0;
    if (rc == 0 && audit_list_rotated(a->dirfd, &f, &n) != 0)
        rc = fail(a, ERR_IO, "cannot list it");
    for (size_t i = 0; i < n && rc == 0; i++) {
        int fd = openat(a->dirfd, f[i].name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
        rc = fd < 0 ? fail(a, ERR_IO, "cannot open %s: %s", f[i].name, strerror(errno))
                    : check_private(a, fd, f[i].name, false, NULL);
        if (fd >= 0)
            close(fd);
    }
    free(f);
    return rc;
}

int audit_open(struct audit **out, const struct config *cfg, const struct crypto *crypto, char *err,
               size_t errlen)
{
    *out = NULL;
    struct audit *a = calloc(1, sizeof(*a));
    if (!a || !(a->dir = strdup(cfg->audit_dir))) {
        free(a);
        snprintf(err, errlen, "out of memory");
        return ERR_NOMEM;
    }
    a->crypto = crypto;
    a->enc = (struct audit_enc){ crypto, cfg->audit_ip, &a->pseudonyms };
    a->dirfd = a->lockfd = a->fd = -1;
    a->max_bytes = cfg->audit_max_bytes;
    a->max_files = cfg->audit_max_files ? cfg->audit_max_files : 1;
    a->retention_days = cfg->audit_retention_days;
    a->sync_mode = cfg->audit_sync;
    a->run_uid = sandbox_run_uid(cfg);
    buf_init(&a->line, AUDIT_LINE_MAX + 1);
    buf_init(&a->batch, AUDIT_BATCH_BYTES);
    int rc = open_dir(a);
    rc = rc ? rc : lock(a);
    if (rc == 0) {
        rc = refresh(a);               /* finding the head: a failure is fatal */
        if (rc == 0) {
            /* Writing is not: a full disk at start-up leaves the trail
             * unhealthy (changes refused) until it has room, as later. */
            int wrc = flush_pending(a);
            wrc = wrc ? wrc : enforce(a, time(NULL));
            settle(a, wrc, false, false);
        }
        flock(a->lockfd, LOCK_UN);
    }
    if (rc) {
        snprintf(err, errlen, "NOTES_AUDIT_DIR (%s): %s", a->dir, a->why);
        audit_close(a);
        return rc == ERR_CONFIG ? ERR_CONFIG : ERR_IO;
    }
    *out = a;
    return 0;
}

void audit_close(struct audit *a)
{
    if (!a)
        return;
    release(a);
    if (a->sync_mode != CONFIG_AUDIT_SYNC_OFF)
        audit_sync(a);
    for (size_t i = 0; i < a->n_pending; i++)
        close(a->pending[i]);
    if (a->fd >= 0)
        close(a->fd);
    if (a->lockfd >= 0)
        close(a->lockfd);
    if (a->dirfd >= 0)
        close(a->dirfd);
    buf_cleanup(&a->line);
    buf_cleanup(&a->batch);
    free(a->dir);
    free(a);
}
