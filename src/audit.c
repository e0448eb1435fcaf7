/*
 * audit.c - the audit trail's writer: builds each event's signed line,
 * appends it and rotates the file. Its files (opening, checking, finding
 * the chain head again) and the descriptors a sync takes to the thread
 * pool are audit_files.c's; which rotated files go, and when, is
 * audit_retention.c's.
 *
 * Owns the chain head (the seq and hash of the last line) and, with
 * audit_files.c, the audit directory's descriptors. Before each line it takes an flock on audit.lock
 * and checks that audit.log is still the file it holds and still the size it
 * knows; if another process (a `notesd user` command) appended or rotated,
 * the head is read back from the file. The server holds the lock for a loop
 * iteration (audit_hold()): then callers' lines are queued and written
 * together, and nothing is queued once the lock is given back. Every key
 * operation goes through crypto.c; no key byte is seen here.
 *
 * This file must never: write a line with more than one write(2), or leave
 * part of a failed line in a file; delete a file before the record of its
 * deletion is written, or delete audit.log; put a caller's text into a line
 * unescaped; write a secret, a key, or an event's text to stderr; or fsync
 * on the event loop.
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
#include <unistd.h>

/* Whole lines, one write(2). A short write (disk full, file-size limit) is
 * cut off again so the file still ends on a whole line; if even that fails,
 * the next audit_refresh() finds the torn bytes and records them. */
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
    return audit_fail(a, ERR_IO, "cannot write %s: %s", AUDIT_CURRENT,
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
        return rc == ERR_NOMEM ? audit_fail(a, rc, "out of memory for a line") : rc;
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
        return audit_fail(a, rc, "cannot compute a line's MAC, hash or pseudonym");
    return rc ? audit_fail(a, rc, "cannot build a line (%s)", err_name(rc)) : 0;
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

int audit_append_own(struct audit *a, const char *event, enum audit_result r, const char *reason,
                     const char *detail, uint64_t count, const struct audit_extra *x, bool end_torn)
{
    struct audit_event ev = { .event = event, .role = "system", .result = r, .reason = reason,
                              .detail = detail, .count = count };
    return append(a, &ev, x, false, end_torn);
}

/* Records owed before the next event: the newline and record that explain a
 * torn line, the first line of a new file naming the file it continues, and
 * the count of events lost while the log could not be written.
 *
 * A torn tail is recorded whenever it is found, at open and while running
 * (audit_refresh()), whatever its bytes: a running server meets real ones
 * too (a `notesd user` command that died mid-write, or its own short write
 * that could not be cut off), and refusing every change until an operator
 * came would turn a full disk into an outage. The record only says which
 * bytes were there; verify decides whether a crash could have left them
 * (audit_verify.c: cut_by_a_crash()), so appended bytes gain nothing. */
static int flush_pending(struct audit *a)
{
    int rc = 0;
    struct audit_extra x = { .file = a->continues[0] ? a->continues : NULL };
    if (a->torn) {
        x.bytes = a->torn_bytes;
        x.torn_hash = a->torn_hash;
        rc = audit_append_own(a, AUDIT_EV_TORN, AUDIT_ERROR, "torn_line", NULL, 0, &x, !a->torn_ended);
    } else if (x.file) {
        rc = audit_append_own(a, AUDIT_EV_ROTATE, AUDIT_SUCCESS, NULL, NULL, 0, &x, false);
    }
    if (rc)
        return rc;
    if (x.file)
        a->floor = a->size;           /* a new file: its first lines never rotate it */
    a->torn = false;
    a->continues[0] = '\0';
    if (a->lost) {
        rc = audit_append_own(a, AUDIT_EV_RECOVERED, AUDIT_ERROR, "write_failed", NULL, a->lost, NULL, false);
        if (rc == 0)
            a->lost = 0;
    }
    /* Lines written while syncs failed may not have reached the disk: the
     * trail says so itself, not only the log. */
    if (rc == 0 && a->sync_recovered) {
        rc = audit_append_own(a, AUDIT_EV_RECOVERED, AUDIT_ERROR, "sync_failed", NULL, 0, NULL, false);
        if (rc == 0)
            a->sync_recovered = false;
    }
    return rc;
}

/* ---- rotation ------------------------------------------------------------ */

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
        return audit_fail(a, ERR_INTERNAL, "the clock is out of range");
    /* The name holds the seq of the file's last line: unique, so a rename
     * that would replace a file is a bug or an attack, never a retry. */
    int r = renameat2(a->dirfd, AUDIT_CURRENT, a->dirfd, name, RENAME_NOREPLACE);
    if (r != 0 && errno == EINVAL && faccessat(a->dirfd, name, F_OK, AT_SYMLINK_NOFOLLOW) != 0)
        r = renameat(a->dirfd, AUDIT_CURRENT, a->dirfd, name);
    if (r != 0)
        return audit_fail(a, ERR_IO, "cannot rename %s: %s", AUDIT_CURRENT, strerror(errno));
    audit_retire(a);
    a->dir_dirty = true;
    int rc = audit_load_head(a);           /* a new audit.log that continues `name` */
    rc = rc ? rc : flush_pending(a);
    rc = rc ? rc : audit_enforce(a, now);
    if (rc == 0)
        a->floor = a->size;
    return rc;
}

/* ---- the public face ----------------------------------------------------- */

static int lock(struct audit *a)
{
    while (flock(a->lockfd, LOCK_EX) != 0)
        if (errno != EINTR)
            return audit_fail(a, ERR_IO, "cannot lock %s: %s", AUDIT_LOCK, strerror(errno));
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
        rc = audit_refresh(a);
        if (rc) {
            release(a);
            return rc;
        }
    }
    int rc = flush_pending(a);
    if (rc == 0)
        rc = ev ? append(a, ev, NULL, true, false) : audit_enforce(a, now);
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

_Static_assert(sizeof(((struct audit_sync *)0)->hash) == AUDIT_HASH_LEN, "a sync names its last line");

void audit_written_head(const struct audit *a, uint64_t *seq, uint8_t hash[AUDIT_HASH_LEN])
{
    /* While lines wait in the batch, the written head is where it began. */
    *seq = a->batch_lines ? a->head_seq : a->seq;
    memcpy(hash, a->batch_lines ? a->head_prev : a->prev, AUDIT_HASH_LEN);
}

bool audit_anchor_now(const struct audit *a, struct audit_anchor *out)
{
    if (!a)
        return false;
    if (a->sync_mode == CONFIG_AUDIT_SYNC_OFF) {
        audit_written_head(a, &out->seq, out->hash);
    } else {
        out->seq = a->synced_seq;
        memcpy(out->hash, a->synced_hash, sizeof(out->hash));
    }
    return out->seq > 0;
}

uint64_t audit_written_seq(const struct audit *a)
{
    return a ? a->seq - a->batch_lines : 0;
}

uint64_t audit_synced_seq(const struct audit *a)
{
    return a ? a->synced_seq : 0;
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
    int rc = audit_open_dir(a);
    rc = rc ? rc : lock(a);
    if (rc == 0) {
        rc = audit_refresh(a);               /* finding the head: a failure is fatal */
        if (rc == 0) {
            /* Writing is not: a full disk at start-up leaves the trail
             * unhealthy (changes refused) until it has room, as later. */
            int wrc = flush_pending(a);
            wrc = wrc ? wrc : audit_enforce(a, time(NULL));
            settle(a, wrc, false, false);
        }
        flock(a->lockfd, LOCK_UN);
    }
    /* Start-up may block: files pruned at open go now, once their records
     * are on disk, not at the first sync after serving began. */
    if (rc == 0 && a->n_doomed)
        (void)audit_sync(a);           /* a failure is the trail's health, as later */
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
    free(a->known);
    free(a->dir);
    free(a);
}
