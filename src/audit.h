/*
 * audit.h - the audit trail: who did what, when, to which resource, with
 * what result. One call per event, made at the layer that decides.
 *
 * Each event becomes one line of JSON in NOTES_AUDIT_DIR/audit.log, written
 * whole by one write(2) (O_APPEND) before the caller's answer leaves (with
 * the other lines of the loop iteration, see audit_hold()). Every line
 * carries `prev`, the SHA-256 of the line before it (64 zeros for the very
 * first), and `mac`, an HMAC-SHA256 under a key derived from
 * NOTES_AUDIT_KEY; the chain runs on across rotated files, and
 * audit_verify_dir() finds the first line that was changed, removed,
 * reordered or inserted. Files rotate before they would pass
 * NOTES_AUDIT_MAX_BYTES (a new file may pass it only by the one event that
 * follows its own rotation records), at most NOTES_AUDIT_MAX_FILES are kept
 * (audit.log included), rotated
 * files older than NOTES_AUDIT_RETENTION_DAYS are deleted; each rotation and
 * each deletion is itself a signed line.
 *
 * Callers never pass secrets, tokens, passwords, usernames, note content or
 * request bodies: only ids and fixed codes. The actor is written as a
 * pseudonym (a keyed hash of the user id), so is a "user" resource.
 *
 * Threads: everything runs on the event-loop thread (it uses crypto.c's PSA
 * keys), except audit_sync_run() and audit_check_read(), which are meant
 * for the thread pool. Several
 * processes (the server and `notesd user ...`) may append to one directory:
 * each line is written under an flock(2) on NOTES_AUDIT_DIR/audit.lock, held
 * for a few system calls.
 *
 * Line format, fields in this order, absent ones omitted:
 *   {"ts":"2024-05-01T12:00:00.123Z","seq":42,"event":"note.create",
 *    "actor":"3f2a..."|"anonymous"|"cli"|"system","role":"user",
 *    "ip":"192.0.2.7"|"192.0.2.0/24","request_id":"...","resource":"note:17",
 *    "result":"success"|"deny"|"error","status":201,"reason":"...",
 *    "detail":"...","count":3, [audit.* records: "file","first_seq","last_seq",
 *    "last_hash","bytes","torn_hash"], "prev":"<64 hex>","mac":"<64 hex>"}
 * `mac` is HMAC(chain key, every byte of the line before `,"mac":`), `prev`
 * the SHA-256 of the previous line without its newline. The line is pure
 * printable ASCII: anything else is a JSON escape; invalid UTF-8 becomes
 * U+FFFD. Text fields are cut at AUDIT_FIELD_MAX bytes.
 */
#ifndef NOTESD_AUDIT_H
#define NOTESD_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

struct config;
struct crypto;

#define AUDIT_FIELD_MAX 128        /* bytes of one text field kept */
#define AUDIT_SYNC_FDS 6           /* descriptors one sync may cover */
#define AUDIT_BATCH_MS 100         /* NOTES_AUDIT_SYNC=batch: the group-commit timer */
#define AUDIT_RETENTION_MS 3600000 /* the retention timer (hourly) */

enum audit_result { AUDIT_SUCCESS, AUDIT_DENY, AUDIT_ERROR };

struct audit_event {
    const char *event;        /* e.g. "note.create"; required */
    int64_t actor_id;         /* user id, 0 when anonymous */
    const char *role;         /* "user", "admin", "anonymous", "cli", "system" */
    const char *request_id;   /* NULL outside a request */
    const char *resource_type;/* e.g. "note"; NULL when none */
    int64_t resource_id;      /* 0: the type alone ("note" for a list) */
    enum audit_result result;
    int status;               /* HTTP status, 0 outside a request (omitted) */
    const char *reason;       /* short machine code on deny/error */
    const uint8_t *ip;        /* client address, 16 bytes, IPv4 mapped into
                               * IPv6 (http_request.peer); NULL: none */
    const char *detail;       /* short machine text: a field name, a config
                               * digest; NEVER input values or secrets */
    uint64_t count;           /* > 0: this line stands for that many events */
};

struct audit;

/**
 * Open the audit trail in cfg->audit_dir: create it (0700) when missing,
 * refuse it when it is not a directory owned by this user, and tighten group
 * or other bits on it (0700) and on our files (0600) with a warning. Find the
 * chain head from the last complete line of audit.log (or of the newest
 * rotated file when audit.log is missing or empty, after a crash during a
 * rotation); a torn last line (no newline: a crash during a write) is kept,
 * ended with a newline and explained by an `audit.torn_tail` record (with
 * what a second crash left of such a record, if one cut it). Then
 * enforce retention. `crypto` is borrowed and must outlive the handle.
 * 0; ERR_CONFIG (bad directory or ownership) or ERR_IO (cannot read or
 * write, or audit.log ends in something notesd did not write), with one line
 * in `err`. `*out` is NULL on failure. Blocking: start-up, loop thread.
 */
int audit_open(struct audit **out, const struct config *cfg, const struct crypto *crypto,
               char *err, size_t errlen);

/**
 * Record one event: build its line (seq, prev, mac), rotate first when the
 * line would take the current file past max_bytes, and append it with one
 * write(2). Returns 0 once the whole line is written (not yet synced; see
 * audit_sync_begin()) or, while audit_hold() is on, queued: queued lines go
 * out together in one write(2) at audit_flush() or audit_release() at the
 * latest, and audit_written_seq() tells which are in the file. On failure
 * nothing of the line stays in the file (a short write is truncated away),
 * the module turns unhealthy (reported once on stderr), the event is
 * counted as lost, and the caller must act as if the action had not been
 * allowed: ERR_IO (cannot write), ERR_CRYPTO, or
 * ERR_INVALID (no event name; does not affect health). Every later call
 * retries; the first success writes an `audit.recovered` line with the count
 * of lost events and makes the module healthy again (logged once).
 * `a` NULL is a no-op returning 0 (unit tests that run without a log).
 * Loop thread; blocks only for a page-cache write and a short flock.
 */
int audit_record(struct audit *a, const struct audit_event *ev);

/**
 * Hold the lock on audit.lock from one line to the next (on), so a busy
 * server takes it once per loop iteration instead of once per line, checks
 * for other writers only then, and writes the events of one iteration with
 * one write(2) (at most 64 KiB at a time). The holder must not let a
 * response go before audit_written_seq() reached the audit_seq() its event
 * left, must call audit_flush() before it acts on audit_healthy(), and must
 * call audit_release() before it waits for anything (the server: before
 * each poll for I/O), or `notesd user ...` would wait for the lock as long.
 * Off releases it.
 */
void audit_hold(struct audit *a, bool on);
/** Write what is queued, then give the lock back if it is held. A failed
 *  write is settled as in audit_record(). NULL is a no-op. */
void audit_release(struct audit *a);
/** Write what is queued now, in one write(2). 0, or ERR_IO: then none of
 *  the queued lines is in the file, each counts as a lost event and the
 *  module is unhealthy. NULL or nothing queued: 0. */
int audit_flush(struct audit *a);

/** False from a failed write (or fdatasync) until the next success. While
 *  false, refuse requests that change or export data (503). NULL: true. */
bool audit_healthy(const struct audit *a);

/** When a write failed: try once to write what is owed (the count of lost
 *  events) and enforce retention, which recovers the trail if the disk has
 *  room again. Then audit_healthy(). Loop thread. NULL: true. */
bool audit_retry(struct audit *a);

/** Seq of the last line this process wrote or queued (0 before any): read
 *  it right after audit_record() returned 0 to know which write and which
 *  sync cover that line. */
uint64_t audit_seq(const struct audit *a);
/** Every line up to this seq is in the file (write(2) returned); lines
 *  after it are queued (audit_hold()). After a failed write it is the seq of
 *  the last line written, and later lines reuse the seqs that were lost. */
uint64_t audit_written_seq(const struct audit *a);
/** Every line up to this seq is known to be on disk (fdatasync returned). */
uint64_t audit_synced_seq(const struct audit *a);

/* "audit-YYYYMMDDTHHMMSSZ-<seq of its last line, 20 digits>.log" */
#define AUDIT_NAME_MAX 47
#define AUDIT_DOOMED_MAX 16        /* pruned files waiting for a sync to delete them */

/** One group commit, handed from the loop to the thread pool and back. */
struct audit_sync {
    int fd[AUDIT_SYNC_FDS];   /* duplicated descriptors, owned by the sync */
    size_t n;
    uint64_t seq;             /* lines up to here are covered */
    uint8_t hash[32];         /* the SHA-256 of line `seq` (an anchor once synced) */
    int rc;                   /* set by audit_sync_run() */
    /* Pruned files, deleted only after the lines above (their records) are
     * on disk; what is left here afterwards was not deleted, and goes back
     * to retention (not to the next sync). */
    char unlink[AUDIT_DOOMED_MAX][AUDIT_NAME_MAX + 1];
    size_t n_unlink, n_taken;
    int dirfd;                /* a duplicate of the folder for the deletions, or -1 */
    bool fs;                  /* also sync the file system: rotated files were
                               * closed unsynced (audit_retire()) */
};

/**
 * Start a sync on the loop thread: fill `s` with duplicates of the current
 * file, of rotated files not yet synced and, after a rotation, of the
 * directory. False when there is nothing to do (NOTES_AUDIT_SYNC=off, or
 * everything written is synced); `s` is then untouched and needs no run.
 * Keep at most one sync in flight. In batch mode the server starts one every
 * AUDIT_BATCH_MS; in always mode whenever a response waits for
 * audit_synced_seq() to reach its line's audit_seq() (group commit: one
 * sync releases every response it covers).
 */
bool audit_sync_begin(struct audit *a, struct audit_sync *s);
/** fdatasync (fsync for the directory) and close every descriptor of `s`;
 *  if that worked, delete the pruned files it carries and sync the folder.
 *  Touches nothing but `s`: run it on the thread pool. */
void audit_sync_run(struct audit_sync *s);
/** Back on the loop: advance audit_synced_seq() on success; on failure mark
 *  the module unhealthy (logged once) until a later sync succeeds. Pruned
 *  files it did not delete are left to retention's next run, which
 *  records them again. */
void audit_sync_end(struct audit *a, const struct audit_sync *s);
/** begin + run + end in place. Blocking: for CLI commands and shutdown,
 *  never on a serving loop. 0 or ERR_IO. */
int audit_sync(struct audit *a);

/**
 * Delete the oldest rotated files while more than max_files files exist
 * (audit.log included) or while the oldest was last modified more than
 * retention_days before `now`. A file goes only with every older one, so the
 * kept files always form one unbroken chain; for each, an
 * `audit.retention_prune` line naming it, its first and last seq and the
 * hash of its last line is written BEFORE it is unlinked (no record, no
 * deletion), and the unlink waits for the sync that puts that line on disk
 * (audit_sync_run(); at once with NOTES_AUDIT_SYNC=off), so a crash cannot
 * keep the deletion and lose the record. audit.log is never deleted. A file
 * due by age goes only once every line of it verifies (audit_check_begin()
 * below). 0 or the first error.
 * Loop thread (hourly timer; also run at open, at every rotation and after
 * a retention check's verdict).
 */
int audit_enforce_retention(struct audit *a, time_t now);

/**
 * A file due by age goes only once every line of it verifies: a check that
 * reads and MACs the whole file. Until audit_defer_checks(), retention
 * makes it in place (start-up, CLI commands). After it, retention stops at
 * a due file without a verdict, and the caller (the server) runs the check
 * it wants, never more than one at a time:
 *
 *   c = audit_check_begin(a)            loop; NULL: nothing wanted
 *   do audit_check_read(c)              thread pool: one read(2)
 *   while (audit_check_next(c))         loop: the MACs of what was read
 *   if (audit_check_end(a, c, false))   loop: the verdict is kept
 *       audit_enforce_retention(a, now) ... and acted on
 *
 * The verdict holds for the file as it was read (device, inode, size,
 * mtime, ctime): a file changed since is checked again before it may go.
 */
struct audit_check;
/** From now on, no whole file is read on the calling thread. Loop thread,
 *  before serving. NULL is a no-op. */
void audit_defer_checks(struct audit *a);
/** The check retention waits for, with its file open: owned by the caller
 *  until audit_check_end(). NULL when none is wanted, one is in flight,
 *  or the file cannot be opened (warned; retention's next run asks again).
 *  Logs at debug level that it starts. Loop thread. */
struct audit_check *audit_check_begin(struct audit *a);
/** Read the next part of the file (64 KiB at most). Touches only `c` (no
 *  PSA, no struct audit): run it on the thread pool. */
void audit_check_read(struct audit_check *c);
/** Check the lines read so far (PSA: loop thread, at most 64 KiB of lines
 *  a call). True while more is to be read: audit_check_read() again. */
bool audit_check_next(struct audit_check *c);
/** Keep the verdict of a check that ran to its end (logged at debug
 *  level), or drop one `cancelled` (never read, or not to be acted on);
 *  close and free `c`. A check that could not read its file is warned
 *  about and keeps no verdict. True when a verdict was kept: run
 *  retention again to act on it. Loop thread. */
bool audit_check_end(struct audit *a, struct audit_check *c, bool cancelled);

/** Sync (unless NOTES_AUDIT_SYNC=off; blocking: after the loop stopped),
 *  close and free. NULL is a no-op. */
void audit_close(struct audit *a);

/**
 * Verify the chain in `dir` without changing anything: the rotated files in
 * seq order, then audit.log (up to its size when the walk starts). Checks
 * each line's MAC, that `prev` is the hash of the line before, that seq grows
 * by exactly one, that each file begins by naming the file before it, and
 * that a log not starting at seq 1 is explained by a retention record. Writes
 * a report to `report`, problems as "FILE:LINE: changed | missing line(s)
 * before | reordered | inserted | torn last line", explained findings as
 * notes ("head pruned by retention (record at FILE:LINE)", "torn line from an
 * interrupted write (explained at FILE:LINE)").
 * 0 when the chain verifies; ERR_INVALID at the first problem (also for a
 * directory holding no audit line); ERR_IO when a file cannot be read.
 * With `anchor` (NULL: none), also that the chain still holds the anchored
 * line (struct audit_anchor, below): ERR_INVALID when it ends before that
 * seq ("missing line(s) after") or holds another line there ("changed").
 * An anchor before the kept log (pruned on record) is checked against the
 * first kept line's prev or a prune record's last_hash where one names its
 * seq, else noted and not checked.
 * Blocking; a CLI command (uses PSA).
 */
struct audit_anchor;
int audit_verify_dir(const char *dir, const struct crypto *crypto, const struct audit_anchor *anchor,
                     FILE *report);

/** A line of the trail remembered elsewhere (its seq and the SHA-256 of the
 *  line): the OK report ends in "anchor SEQ:HEX" for the newest line. A
 *  chain that verifies on its own may still have lost lines at its end;
 *  an anchor shipped off the machine finds that later. */
struct audit_anchor {
    uint64_t seq;
    uint8_t hash[32];
};
/** "SEQ:HEX": decimal digits, a colon, 64 lowercase hex digits, nothing
 *  else. 0 or ERR_INVALID. */
int audit_anchor_parse(const char *text, struct audit_anchor *out);
/** "SEQ:HEX" of `an` into `out` (what audit_anchor_parse() reads). */
#define AUDIT_ANCHOR_TEXT_MAX (20 + 1 + 64 + 1)
void audit_anchor_format(const struct audit_anchor *an, char out[AUDIT_ANCHOR_TEXT_MAX]);
/** The anchor of the newest line known to be on disk (a sync covered it),
 *  so that a crash cannot make a shipped anchor look like a cut; with
 *  NOTES_AUDIT_SYNC=off, of the newest line written. False before a sync
 *  of this process covered any line. */
bool audit_anchor_now(const struct audit *a, struct audit_anchor *out);


#endif
