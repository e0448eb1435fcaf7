/*
 * audit_int.h - what the audit module's files share: audit.c (the
 * writer), with audit_files.c and audit_retention.c, audit_line.c (the line
 * format, both ways) and audit_verify.c (walking the chain). File names, the line format's
 * fixed parts, building and reading one line. Not for use outside the audit
 * module (its unit test excepted).
 */
#ifndef NOTESD_AUDIT_INT_H
#define NOTESD_AUDIT_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include "audit.h"
#include "buf.h"
#include "config.h"
#include "crypto.h"

#define AUDIT_CURRENT "audit.log"
#define AUDIT_LOCK "audit.lock"
#define AUDIT_LINE_MAX 8192          /* no line notesd writes is longer */
#define AUDIT_HASH_LEN CRYPTO_SHA256_LEN
#define AUDIT_HEX_LEN 64
#define AUDIT_MAC_KEY ",\"mac\":\""
/* A line ends with `,"mac":"` + 64 hex + `"}` (before its newline). */
#define AUDIT_MAC_TAIL (sizeof(AUDIT_MAC_KEY) - 1 + AUDIT_HEX_LEN + 2)
#define AUDIT_EVENT_MAX 40

#define AUDIT_EV_ROTATE "audit.rotate"
#define AUDIT_EV_PRUNE "audit.retention_prune"
#define AUDIT_EV_TORN "audit.torn_tail"
#define AUDIT_EV_RECOVERED "audit.recovered"

/** What a line depends on besides the event and the chain. */
#define AUDIT_PSEUDONYM_CACHE 64   /* direct-mapped by user id */

/** Recent pseudonyms: one HMAC per user rather than per line. They are no
 *  secret (every line shows them); id 0 marks an empty slot. */
struct audit_pseudonyms {
    struct {
        int64_t id;
        char p[CRYPTO_PSEUDONYM_LEN + 1];
    } slot[AUDIT_PSEUDONYM_CACHE];
};

struct audit_enc {
    const struct crypto *crypto;
    enum config_audit_ip ip_mode;
    struct audit_pseudonyms *cache;   /* NULL: none (the verifier) */
};

/** Fields only the module's own records carry (audit.rotate: file;
 *  audit.retention_prune: file, first/last seq, last_hash; audit.torn_tail:
 *  bytes, torn_hash and, in a new file, file). */
struct audit_extra {
    const char *file;
    uint64_t first_seq, last_seq, bytes;
    const uint8_t *last_hash, *torn_hash;      /* NULL: field absent */
};

/** What one line says. Only when mac_ok are its fields authentic. */
struct audit_line {
    bool mac_ok;                      /* the MAC verifies */
    bool parsed;                      /* a flat JSON object with seq and prev */
    uint64_t seq;
    uint8_t hash[AUDIT_HASH_LEN];     /* SHA-256 of the line without newline */
    uint8_t prev[AUDIT_HASH_LEN];
    char event[AUDIT_EVENT_MAX + 1];  /* as written (escaped), "" when absent */
    char file[AUDIT_NAME_MAX + 1];    /* rotate, prune, torn records */
    uint64_t first_seq, last_seq;     /* prune records */
    uint8_t last_hash[AUDIT_HASH_LEN];
    bool has_last_hash;
    uint64_t bytes;                   /* torn records: the torn line's length */
    uint8_t torn_hash[AUDIT_HASH_LEN];
    bool has_torn_hash;
};

/** What a file's end says: its last complete record, and the torn bytes
 *  after it. A crash inside a write(2) leaves a prefix without a newline;
 *  a second crash while the record explaining it was written leaves that
 *  prefix ended by a newline, then none or part of the record: the torn
 *  span is then those lines and what follows them, explained by one
 *  record. */
struct audit_tail {
    bool has_line, torn;
    bool torn_ended;                  /* the torn span ends with a newline */
    struct audit_line last;
    uint64_t torn_bytes;              /* without that newline */
    uint8_t torn_hash[AUDIT_HASH_LEN];
};

/** Whether a line could be the start of one cut by a crash, and the digits
 *  of its seq as far as they got. (audit_line.c) */
struct audit_cut {
    bool shape;
    char seq[20];                      /* the digits after "seq":, */
    size_t digits;                     /* how many (0: none yet), */
    bool open;                         /* and whether the line ends in them */
};
void audit_cut_shape(const uint8_t *p, size_t n, struct audit_cut *c);

#define AUDIT_TAIL_MAX 65536         /* bytes read back from a file's end */

/** Read the end of file `fd`, `size` bytes long (its last AUDIT_TAIL_MAX
 *  bytes at most), checking the last line's MAC when `c` is not NULL.
 *  0; ERR_LIMIT when the last line or torn part begins before that window;
 *  ERR_IO, ERR_NOMEM or ERR_CRYPTO. (audit_files.c) */
int audit_read_tail(const struct crypto *c, int fd, uint64_t size, struct audit_tail *t);
/** The first line of file `fd` (no MAC check); zeroed and not parsed when
 *  there is none within AUDIT_LINE_MAX bytes. 0, ERR_IO or ERR_CRYPTO.
 *  (audit_files.c) */
int audit_read_first(int fd, uint64_t size, struct audit_line *l);

/** A rotated file, by name and the seq of its last line. */
struct audit_file {
    char name[AUDIT_NAME_MAX + 1];
    uint64_t seq;
    int64_t mtime;                    /* seconds since the epoch */
    bool regular;                     /* not a FIFO, link, folder or device */
};

/** Append the line of `ev` with `seq` after `prev` to `b` (which may already
 *  hold bytes; they are not part of the line), newline included, and set
 *  `hash` to the SHA-256 of the line without its newline. 0, ERR_CRYPTO,
 *  ERR_INTERNAL, or ERR_LIMIT/ERR_NOMEM from `b`. (audit_line.c) */
int audit_line_build(const struct audit_enc *e, const struct audit_event *ev, const struct audit_extra *x,
                     uint64_t seq, const uint8_t prev[AUDIT_HASH_LEN], struct buf *b,
                     uint8_t hash[AUDIT_HASH_LEN]);

/** Append s[0..n) as a quoted JSON string of printable ASCII: '"', '\\' and
 *  control bytes escaped, every other non-ASCII code point as \uXXXX
 *  (surrogate pairs above U+FFFF), each byte of an invalid UTF-8 sequence
 *  (overlong, surrogate, past U+10FFFF, cut short, stray) as \ufffd.
 *  0, ERR_LIMIT or ERR_NOMEM. (audit_line.c) */
int audit_escape(struct buf *b, const uint8_t *s, size_t n);

/** Lowercase hex of in[0..n) into out (2n characters and a NUL). (audit_line.c) */
void audit_hex(const uint8_t *in, size_t n, char *out);

/** Read one line (without its newline): hash it, parse it, and check its MAC
 *  when `c` is not NULL. Never fails on a malformed line (it is simply not
 *  parsed / not mac_ok). 0, or ERR_CRYPTO when PSA fails. (audit_line.c) */
int audit_line_read(const struct crypto *c, const uint8_t *p, size_t n, struct audit_line *out);

/** Is `name` a rotated file's name? Its seq goes to *seq. (audit_line.c) */
bool audit_name_parse(const char *name, uint64_t *seq);

/** The rotated files in `dirfd`, sorted by seq, in a malloc'd array the
 *  caller frees (NULL when there are none); entries that are not regular
 *  files are listed too, marked. 0, ERR_IO or ERR_NOMEM. (audit_files.c) */
int audit_list_rotated(int dirfd, struct audit_file **out, size_t *n);

/** Checking rotated file f alone, in steps: is it one this trail wrote
 *  whole? Every line's MAC verifies, each chains to the one before, the
 *  last is complete and has the seq in f's name. (audit_verify.c) */
struct audit_walk;
/** Start a walk of `fd` (borrowed, positioned at the start of f, `size`
 *  bytes are read). 0 or ERR_NOMEM (then *out is NULL). */
int audit_walk_new(const struct crypto *c, const struct audit_file *f, int fd, uint64_t size,
                   struct audit_walk **out);
/** Read the next bytes (at most 64 KiB) with one read(2). Touches nothing
 *  but `w` and its descriptor (no PSA): any thread. 0 or ERR_IO. */
int audit_walk_read(struct audit_walk *w);
/** Judge the complete lines read so far (MACs and hashes through PSA: the
 *  thread that owns `c`). 1 when it needs audit_walk_read() again; 0 at
 *  the end, with *intact; ERR_CRYPTO. */
int audit_walk_lines(struct audit_walk *w, bool *intact);
/** NULL is a no-op. */
void audit_walk_free(struct audit_walk *w);

/** The chain's `prev` before the very first line: 64 zeros. (audit_line.c) */
extern const uint8_t audit_zero_hash[AUDIT_HASH_LEN];

/* ---- the writer (audit.c: lines, rotation, the public face;
 * audit_files.c: opening and checking the files, finding the chain head,
 * the descriptors a sync takes; audit_retention.c: which rotated files go,
 * and the checks of those due by age) ------------------------------------- */

/** What a whole-file check of a rotated file found, and about which
 *  version of it: its stat when it was checked (audit_retention.c). */
/* A rotated file known to end in a line of this trail, as it was when that
 * was read: retention does not read it again while it is unchanged. */
struct audit_known {
    struct stat st;                        /* dev, ino, size, mtime, ctime compared */
    uint64_t seq;
    bool seen;                             /* listed in this retention run */
};

struct audit_verdict {
    bool valid, intact;
    char name[AUDIT_NAME_MAX + 1];
    struct stat st;                        /* dev, ino, size, mtime, ctime compared */
};

#define AUDIT_BATCH_BYTES (64 * 1024)     /* queued lines written at once, at most */
#define AUDIT_PENDING_MAX (AUDIT_SYNC_FDS - 2)   /* rotated files waiting for a sync: the
                                                    current file and the directory join them */

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
    bool torn_ended;                       /* ... which a newline ends already */
    uint64_t torn_bytes;
    uint8_t torn_hash[AUDIT_HASH_LEN];
    uint64_t max_bytes;
    uint32_t max_files, retention_days;
    enum config_audit_sync sync_mode;
    struct audit_enc enc;                  /* the key ring and NOTES_AUDIT_IP */
    bool write_failed, sync_failed;
    bool sync_fs;                          /* the next sync takes the file system */
    bool sync_recovered;                   /* write audit.recovered (sync_failed) next */
    uint64_t lost;                         /* events not recorded since a failure */
    uint64_t synced_seq;
    uint8_t synced_hash[AUDIT_HASH_LEN];   /* the SHA-256 of line synced_seq */
    bool dirty, dir_dirty;                 /* written / renamed since a sync began */
    int pending[AUDIT_PENDING_MAX];
    size_t n_pending;
    char doomed[AUDIT_DOOMED_MAX][AUDIT_NAME_MAX + 1];   /* pruned, on record, */
    size_t n_doomed;                                      /* deleted by the next sync */
    char why[256];                         /* the last failure, for one log line */
    struct buf line;
    /* Whole-file checks of files due by age (audit_retention.c). */
    bool defer_checks;                     /* not on this thread: audit_check_begin() */
    bool check_wanted;                     /* check_next is due and has no verdict */
    struct audit_file check_next;
    bool check_running;                    /* one in flight at most, */
    char check_name[AUDIT_NAME_MAX + 1];   /* of this file */
    struct audit_verdict verdict;          /* the last one */
    struct audit_known *known;             /* by seq, ascending (audit_retention.c) */
    size_t n_known, cap_known;
};

/** Keep why it failed (for the one log line) and return rc. (audit_files.c) */
int audit_fail(struct audit *a, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/** Create or open the directory and audit.lock and check every file in it
 *  is private (tightening loose modes). (audit_files.c) */
int audit_open_dir(struct audit *a);
/** Find the chain head from the end of audit.log (or the newest rotated
 *  file), opening audit.log and noting a torn tail. (audit_files.c) */
int audit_load_head(struct audit *a);
/** Under the lock: is audit.log still the file we hold, at the size we
 *  know? If not, read the head back. (audit_files.c) */
int audit_refresh(struct audit *a);
/** The seq and SHA-256 of the newest line in the file (not the batch's).
 *  (audit.c) */
void audit_written_head(const struct audit *a, uint64_t *seq, uint8_t hash[AUDIT_HASH_LEN]);
/** Stop writing to the current file; its descriptor waits for the next
 *  sync. (audit_files.c) */
void audit_retire(struct audit *a);
/** Append one of the module's own records (rotate, prune, torn tail,
 *  recovered) at once, after what is queued. (audit.c) */
int audit_append_own(struct audit *a, const char *event, enum audit_result r, const char *reason,
                     const char *detail, uint64_t count, const struct audit_extra *x, bool end_torn);
/** Under the lock: prune what is due, oldest first (audit_enforce_retention()).
 *  A file due by age without a verdict stops it: checked here, or wanted
 *  for audit_check_begin() once checks are deferred. (audit_retention.c) */
int audit_enforce(struct audit *a, time_t now);

#endif
