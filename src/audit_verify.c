/*
 * audit_verify.c - reading the audit trail back: `notesd audit verify`,
 * which walks the whole chain through audit_line_read(), and the walk of
 * one file that retention's checks use.
 *
 * Owns nothing past a call. Reads only: it never writes, renames or locks
 * for longer than it takes to list the directory, and it trusts no field of
 * a line whose MAC does not verify. Lines are read through a bounded buffer,
 * so a hostile file cannot make it allocate without limit.
 *
 * The walk keeps one line of lookahead: a line whose MAC fails is "inserted"
 * when the next line continues the chain from the line before it, and
 * "changed" otherwise; a line with the wrong seq is "reordered" when the
 * expected seq comes next (or the one after it does), or later on, and is
 * preceded by "missing line(s)" otherwise. A log that does not begin at seq 1 must be
 * explained by a signed retention record naming the file that held the
 * lines before it.
 */
#include "audit.h"
#include "audit_int.h"
#include "crypto.h"
#include "err.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define READ_BUF 65536                 /* the longest line the walk examines */
#define LOC_MAX (AUDIT_NAME_MAX + 24)


/* ---- reading lines ------------------------------------------------------- */

struct reader {
    int fd;
    uint64_t left;                     /* bytes still to read (a snapshot) */
    uint8_t *buf;
    size_t start, end;
    bool skipping;                     /* inside an over-long line */
    uint64_t lineno;                   /* of the last line handed out */
};

#define NEED_BYTES 2

/* 1 with the next line (without its newline), 0 at the end, NEED_BYTES
 * when what was read holds no further line: fill() first. A line longer
 * than the buffer comes back as its first READ_BUF bytes (they cannot
 * carry a valid MAC) and the rest of it is skipped. */
static int next_line(struct reader *r, const uint8_t **p, size_t *n, bool *complete)
{
    for (;;) {
        size_t avail = r->end - r->start;
        uint8_t *nl = avail ? memchr(r->buf + r->start, '\n', avail) : NULL;
        bool last = !nl && r->left == 0 && avail > 0;     /* no newline at the end */
        bool full = !nl && avail == READ_BUF;             /* an over-long line */
        if (!nl && !last && !full)
            return r->left == 0 ? 0 : NEED_BYTES;
        size_t len = nl ? (size_t)(nl - (r->buf + r->start)) : avail;
        bool skip = r->skipping;
        *p = r->buf + r->start;
        *n = len;
        *complete = !last;
        r->start += len + (nl != NULL);
        r->skipping = full;
        if (!skip)
            return 1;
    }
}

/* One read(2) after what is left of the buffer: no PSA, no state but the
 * reader's, so it may run on any thread. 0 or ERR_IO. */
static int fill(struct reader *r)
{
    memmove(r->buf, r->buf + r->start, r->end - r->start);
    r->end -= r->start;
    r->start = 0;
    size_t want = READ_BUF - r->end < r->left ? READ_BUF - r->end : (size_t)r->left;
    ssize_t got;
    do
        got = read(r->fd, r->buf + r->end, want);
    while (got < 0 && errno == EINTR);
    if (got <= 0)
        return ERR_IO;
    r->end += (size_t)got;
    r->left -= (uint64_t)got;
    return 0;
}

/* ---- the walk ------------------------------------------------------------ */

struct rec {
    struct audit_line l;
    size_t file;
    uint64_t lineno;
    size_t len;
    bool complete;
    /* Could be the start of a line the writer was putting down when it
     * crashed: see audit_cut_shape(). Only such a line, or one signed with
     * the seq and prev of the record that replaced it, is "torn". */
    struct audit_cut cut;
    /* The torn span this line begins: itself, or with the unsigned lines a
     * second crash left after it (the start of the record that was to
     * explain it), which one torn_tail record explains together. */
    uint64_t span;                     /* bytes, the newlines between lines too */
    uint8_t span_hash[AUDIT_HASH_LEN];
};

struct verifier {
    const struct crypto *crypto;
    FILE *out;
    char (*names)[AUDIT_NAME_MAX + 1];  /* the files, in chain order */
    size_t n_files;
    bool started;                      /* the chain has its head */
    uint64_t seq;                      /* the last line accepted */
    uint8_t prev[AUDIT_HASH_LEN];
    size_t linked;                     /* the file whose first record was checked */
    struct rec head;
    bool genesis;                      /* seq 1 after 64 zeros */
    char explained[LOC_MAX];           /* where a prune record explains the head */
    bool bad;                          /* a problem was found; the walk continues
                                        * only to look for prune records */
    char problem[512];
    uint64_t records;
    size_t foreign;                    /* findings outside the chain (snapshot()) */
    const struct audit_anchor *anchor;  /* NULL: none */
    bool anchor_seen;                  /* the anchored seq was accepted, and matched */
    int anchor_pruned;                 /* a prune record names the anchored seq as a
                                        * file's last line: 1 same hash, -1 another */
    struct rec gap;                    /* where lines seemed gone: those seqs, */
    uint64_t gap_lo, gap_hi;           /* if one comes later, it was moved (0: none) */
    uint8_t *span_buf;                 /* the open torn span's bytes (span_start()) */
    size_t span_len;                   /* 0: none open */
};

static const char *loc(const struct verifier *v, const struct rec *r, char buf[LOC_MAX])
{
    snprintf(buf, LOC_MAX, "%s:%llu", v->names[r->file], (unsigned long long)r->lineno);
    return buf;
}

static void problem(struct verifier *v, const struct rec *r, const char *kind, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void problem(struct verifier *v, const struct rec *r, const char *kind, const char *fmt, ...)
{
    char at[LOC_MAX], what[300];
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(what, sizeof(what), fmt, ap);   /* cut at the buffer on purpose */
    va_end(ap);
    snprintf(v->problem, sizeof(v->problem), "%s: %s: %s", loc(v, r, at), kind, what);
    v->bad = true;
}

static bool is(const struct rec *r, const char *event)
{
    return r && r->l.mac_ok && strcmp(r->l.event, event) == 0;
}

/* Does `r` record the removal of the file whose last line the head chains to? */
static void note_prune(struct verifier *v, const struct rec *r)
{
    const struct audit_line *l = &r->l;
    if (!is(r, AUDIT_EV_PRUNE) || !v->started || v->genesis || v->explained[0] ||
        !l->has_last_hash || l->last_seq + 1 != v->head.l.seq ||
        memcmp(l->last_hash, v->head.l.prev, AUDIT_HASH_LEN) != 0 ||
        strcmp(l->file, v->head.l.file) != 0)
        return;
    loc(v, r, v->explained);
}

static bool continues(const struct verifier *v, const struct rec *r)
{
    return r && r->l.mac_ok && r->l.parsed && v->started && r->l.seq == v->seq + 1 &&
           memcmp(r->l.prev, v->prev, AUDIT_HASH_LEN) == 0;
}

/* Is `cur` a line a crash cut, which the torn_tail record `next` replaced,
 * taking its seq and prev? A signed line must carry both; an unsigned one
 * must be the start of a line with that seq (whose digits may be cut too).
 * Anyone who can write the folder can append bytes after the last line,
 * and the writer records whatever it finds there: its record says which
 * bytes were there, never that a crash left them. */
static bool cut_by_a_crash(const struct rec *cur, const struct rec *next)
{
    const struct audit_line *l = &cur->l;
    if (l->mac_ok)
        return l->parsed && l->seq == next->l.seq && memcmp(l->prev, next->l.prev, AUDIT_HASH_LEN) == 0;
    if (!cur->cut.shape)
        return false;
    char want[24];
    size_t w = (size_t)snprintf(want, sizeof(want), "%llu", (unsigned long long)next->l.seq);
    size_t d = cur->cut.digits;
    return (d == w || (cur->cut.open && d < w)) && memcmp(want, cur->cut.seq, d) == 0;
}

/* After "missing line(s)" at v->gap: a signed line with a seq that seemed
 * gone, further on, was moved there (the lookahead sees one line only). */
static void moved_later(struct verifier *v, const struct rec *cur)
{
    const struct audit_line *l = &cur->l;
    if (!v->gap_hi || !l->mac_ok || !l->parsed || l->seq < v->gap_lo || l->seq > v->gap_hi)
        return;
    char at[LOC_MAX];
    problem(v, &v->gap, "reordered", "seq %llu where %llu was expected (seq %llu is at %s)",
            (unsigned long long)v->gap.l.seq, (unsigned long long)v->gap_lo, (unsigned long long)l->seq,
            loc(v, cur, at));
    v->gap_hi = 0;
}

/* Judge `cur`, knowing the line after it (NULL at the end). */
static void check(struct verifier *v, const struct rec *cur, const struct rec *next)
{
    const struct audit_line *l = &cur->l;
    char at[LOC_MAX];
    if (v->bad) {
        note_prune(v, cur);
        moved_later(v, cur);
        return;
    }
    if (!cur->complete) {
        problem(v, cur, "torn last line", "%llu bytes without a newline (a crash during a write, or "
                "truncation)", (unsigned long long)cur->span);
        return;
    }
    if (is(next, AUDIT_EV_TORN) && next->l.has_torn_hash && next->l.bytes == cur->span &&
        memcmp(next->l.torn_hash, cur->span_hash, AUDIT_HASH_LEN) == 0 && cut_by_a_crash(cur, next)) {
        if (v->out)
            fprintf(v->out, "note: %s: torn line from an interrupted write (explained at %s:%llu)\n",
                    loc(v, cur, at), v->names[next->file], (unsigned long long)next->lineno);
        return;
    }
    if (!l->mac_ok) {
        if (continues(v, next))
            problem(v, cur, "inserted", "a line that is not part of the chain (no valid MAC)");
        else
            problem(v, cur, "changed", "the line's MAC does not match its content");
        return;
    }
    if (!l->parsed) {
        problem(v, cur, "changed", "a signed line that is not an audit record");
        return;
    }
    if (!v->started) {
        v->started = true;
        v->head = *cur;
        v->linked = cur->file;
        v->genesis = l->seq == 1 && memcmp(l->prev, audit_zero_hash, AUDIT_HASH_LEN) == 0;
    } else {
        uint64_t e = v->seq + 1;
        bool next_ok = next && next->l.mac_ok && next->l.parsed;
        if (l->seq != e && (l->seq < e || (next_ok && (next->l.seq == e || next->l.seq == e + 1)))) {
            problem(v, cur, "reordered", "seq %llu where %llu was expected", (unsigned long long)l->seq,
                    (unsigned long long)e);
            return;
        }
        if (l->seq != e) {
            problem(v, cur, "missing line(s) before", "seq %llu follows %llu: %llu line(s) gone",
                    (unsigned long long)l->seq, (unsigned long long)v->seq,
                    (unsigned long long)(l->seq - e));
            v->gap = *cur;
            v->gap_lo = e;
            v->gap_hi = l->seq - 1;
            return;
        }
        if (memcmp(l->prev, v->prev, AUDIT_HASH_LEN) != 0) {
            problem(v, cur, "changed", "prev is not the hash of the line before it (that line was "
                    "replaced)");
            return;
        }
    }
    /* A file after the head's must begin by naming the file before it. */
    if (cur->file != v->linked) {
        v->linked = cur->file;
        const char *want = v->names[cur->file - 1];
        if ((!is(cur, AUDIT_EV_ROTATE) && !is(cur, AUDIT_EV_TORN)) || strcmp(l->file, want) != 0) {
            problem(v, cur, "missing line(s) before", "the file does not begin by naming %s (a file "
                    "was removed, renamed or joined)", want);
            return;
        }
    }
    if (v->anchor && l->seq == v->anchor->seq) {
        if (memcmp(l->hash, v->anchor->hash, AUDIT_HASH_LEN) != 0) {
            problem(v, cur, "changed", "the line of seq %llu is not the anchored one",
                    (unsigned long long)l->seq);
            return;
        }
        v->anchor_seen = true;
    }
    v->seq = l->seq;
    memcpy(v->prev, l->hash, AUDIT_HASH_LEN);
    v->records++;
    note_prune(v, cur);
    if (v->anchor && is(cur, AUDIT_EV_PRUNE) && l->has_last_hash && l->last_seq == v->anchor->seq)
        v->anchor_pruned = memcmp(l->last_hash, v->anchor->hash, AUDIT_HASH_LEN) == 0 ? 1 : -1;
    /* The chain's newest end has no successor to give a cut away: a rotated
     * file's name holds the seq of its last line. */
    uint64_t named;
    if ((!next || next->file != cur->file) && audit_name_parse(v->names[cur->file], &named) && named != l->seq)
        problem(v, cur, "missing line(s) after", "the file's name says it ends at seq %llu, its last line is seq "
                "%llu (lines were cut from its end)", (unsigned long long)named, (unsigned long long)l->seq);
}

/* Feed the lines read of file `i` through check(), one line behind: 0 at
 * the file's end, NEED_BYTES, or ERR_CRYPTO. At most a buffer's worth. */
/* ---- torn spans ---------------------------------------------------------- */

/* An unsigned line that begins like a line, ended by a newline, may be
 * followed by more of them (a second crash cutting the record meant to
 * explain the first): its span keeps their bytes, newlines between them
 * included, until a line of another kind comes, and is hashed then, for
 * the torn_tail record that explains them all (audit_read_tail() writes it
 * for the same span). Its bytes are copied: the reader's buffer moves. */
static bool may_start_span(const struct rec *r)
{
    return !r->l.mac_ok && r->cut.shape && r->complete;
}

static int span_start(struct verifier *v, struct rec *r, const uint8_t *p, size_t n)
{
    r->span = n;
    memcpy(r->span_hash, r->l.hash, AUDIT_HASH_LEN);
    v->span_len = 0;
    if (!may_start_span(r))
        return 0;
    if (!v->span_buf && !(v->span_buf = malloc(READ_BUF)))
        return ERR_NOMEM;
    memcpy(v->span_buf, p, n);         /* a line is at most READ_BUF bytes */
    v->span_len = n;
    return 0;
}

/* Does `cur` continue the span `pending` began? Then it joins it. */
static bool span_extend(struct verifier *v, struct rec *pending, const struct rec *cur, const uint8_t *p,
                        size_t n)
{
    if (!v->span_len || !pending->complete || cur->file != pending->file || cur->l.mac_ok || !cur->cut.shape)
        return false;
    if (v->span_len + 1 + n <= READ_BUF) {
        v->span_buf[v->span_len] = '\n';
        memcpy(v->span_buf + v->span_len + 1, p, n);
        v->span_len += 1 + n;
    } else {
        v->span_len = READ_BUF + 1;    /* longer than a writer reads back: never explained */
    }
    pending->span = v->span_len;
    pending->complete = cur->complete;
    return true;
}

/* check(), once the span `cur` began is hashed. */
static int judge(struct verifier *v, struct rec *cur, const struct rec *next)
{
    if (v->span_len > cur->len && v->span_len <= READ_BUF &&
        crypto_sha256(v->span_buf, v->span_len, cur->span_hash) != 0)
        return ERR_CRYPTO;
    v->span_len = 0;
    check(v, cur, next);
    return 0;
}

static int walk_lines(struct verifier *v, size_t i, struct reader *r, struct rec *pending, bool *have)
{
    struct rec cur;
    const uint8_t *p;
    size_t n;
    bool complete;
    int got;
    while ((got = next_line(r, &p, &n, &complete)) == 1) {
        if (audit_line_read(v->crypto, p, n, &cur.l) != 0)
            return ERR_CRYPTO;
        cur.file = i;
        cur.lineno = ++r->lineno;
        cur.len = n;
        cur.complete = complete;
        audit_cut_shape(p, n, &cur.cut);
        if (*have && span_extend(v, pending, &cur, p, n))
            continue;
        if (*have && judge(v, pending, &cur) != 0)
            return ERR_CRYPTO;
        if (span_start(v, &cur, p, n) != 0)
            return ERR_NOMEM;
        *pending = cur;
        *have = true;
    }
    return got;
}

/* Every line of file `i`. 0, ERR_IO or ERR_CRYPTO. */
static int walk_file(struct verifier *v, size_t i, int fd, uint64_t size, struct rec *pending,
                     bool *have, uint8_t *buf)
{
    struct reader r = { .fd = fd, .left = size, .buf = buf };
    int rc;
    while ((rc = walk_lines(v, i, &r, pending, have)) == NEED_BYTES)
        if ((rc = fill(&r)) != 0)
            return rc;
    return rc;
}

/* O_NONBLOCK: opening a FIFO for reading would wait for a writer. Regular
 * files ignore it; anything else is refused. */
static int open_file(int dirfd, const char *name, uint64_t *size)
{
    struct stat st;
    int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK);
    if (fd >= 0 && (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))) {
        close(fd);
        return -1;
    }
    if (fd >= 0)
        *size = (uint64_t)st.st_size;
    return fd;
}

static bool not_regular(int dirfd, const char *name)
{
    struct stat st;
    return fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISREG(st.st_mode);
}

/* Something under a name of the trail's that is not one of its files: a
 * finding, reported before the chain's, and left out of the walk. */
static void foreign(struct verifier *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void foreign(struct verifier *v, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    (void)vfprintf(v->out, fmt, ap);   /* like every line of the report: the status says it */
    va_end(ap);
    v->foreign++;
}

#define NOT_REGULAR "%s: not a regular file (a FIFO, link, folder or device under a name of the trail's): " \
                    "not read; move it aside\n"

/* What to read, fixed under a shared lock so no writer is half-way through
 * a line or a rotation: the rotated files and audit.log's current size.
 * Nothing but regular files is opened for reading (a FIFO would block). */
static int snapshot(int dirfd, struct verifier *v, int *cur_fd, uint64_t *cur_size)
{
    struct audit_file *f = NULL;
    size_t n = 0;
    struct stat st;
    int lockfd = openat(dirfd, AUDIT_LOCK, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK);
    if (lockfd >= 0 && (fstat(lockfd, &st) != 0 || !S_ISREG(st.st_mode))) {
        close(lockfd);
        lockfd = -1;
    }
    if (lockfd < 0 && not_regular(dirfd, AUDIT_LOCK))
        foreign(v, NOT_REGULAR, AUDIT_LOCK);
    if (lockfd >= 0)
        while (flock(lockfd, LOCK_SH) != 0 && errno == EINTR)
            ;
    int rc = audit_list_rotated(dirfd, &f, &n);
    *cur_fd = rc ? -1 : open_file(dirfd, AUDIT_CURRENT, cur_size);
    if (rc == 0 && *cur_fd < 0 && not_regular(dirfd, AUDIT_CURRENT))
        foreign(v, NOT_REGULAR, AUDIT_CURRENT);
    if (lockfd >= 0)
        close(lockfd);        /* and with it the lock */
    if (rc)
        return rc;
    v->names = calloc(n + 1, sizeof(*v->names));
    if (!v->names) {
        free(f);
        return ERR_NOMEM;
    }
    size_t k = 0;
    uint64_t last = 0;
    for (size_t i = 0; i < n; i++) {
        if (!f[i].regular) {
            foreign(v, NOT_REGULAR, f[i].name);
            continue;
        }
        /* Two files ending at one seq: a copy or a hard link of one of
         * them under another name. The walk reads both and shows where. */
        if (k > 0 && f[i].seq == last)
            foreign(v, "%s: the same seq %llu as %s (a copy or link under another name: only one of them can "
                    "be the trail's)\n", f[i].name, (unsigned long long)f[i].seq, v->names[k - 1]);
        last = f[i].seq;
        memcpy(v->names[k++], f[i].name, sizeof(v->names[0]));
    }
    if (*cur_fd >= 0)
        memcpy(v->names[k++], AUDIT_CURRENT, sizeof(AUDIT_CURRENT));
    v->n_files = k;
    free(f);
    return 0;
}

static int walk(int dirfd, struct verifier *v)
{
    int cur_fd = -1, rc;
    uint64_t cur_size = 0;
    struct rec pending;
    bool have = false;
    uint8_t *buf = malloc(READ_BUF);
    rc = buf ? snapshot(dirfd, v, &cur_fd, &cur_size) : ERR_NOMEM;
    for (size_t i = 0; rc == 0 && i < v->n_files; i++) {
        bool current = cur_fd >= 0 && i == v->n_files - 1;
        uint64_t size = cur_size;
        int fd = current ? cur_fd : open_file(dirfd, v->names[i], &size);
        if (fd < 0) {
            fprintf(v->out, "cannot read %s: %s (removed while verifying? run again)\n", v->names[i],
                    strerror(errno));
            rc = ERR_IO;
            break;
        }
        rc = walk_file(v, i, fd, size, &pending, &have, buf);
        if (rc == ERR_IO)
            fprintf(v->out, "cannot read %s\n", v->names[i]);
        close(fd);
        if (current)
            cur_fd = -1;
    }
    if (rc == 0 && have)
        rc = judge(v, &pending, NULL);
    if (cur_fd >= 0)
        close(cur_fd);
    free(buf);
    free(v->span_buf);
    v->span_buf = NULL;
    return rc;
}

/* ---- one rotated file on its own ----------------------------------------- */

/* Whether one rotated file is whole: every line signed and chained to the
 * one before it, the last one complete and carrying the seq of its name.
 * In steps, so that retention can read on the thread pool and judge on the
 * loop (audit_retention.c), a buffer at a time. */
struct audit_walk {
    struct verifier v;
    char names[1][AUDIT_NAME_MAX + 1];
    uint64_t seq;                      /* what the name promises */
    struct reader r;
    struct rec pending;
    bool have;
    uint8_t buf[READ_BUF];
};

int audit_walk_new(const struct crypto *c, const struct audit_file *f, int fd, uint64_t size,
                   struct audit_walk **out)
{
    struct audit_walk *w = calloc(1, sizeof(*w));
    *out = w;
    if (!w)
        return ERR_NOMEM;
    memcpy(w->names[0], f->name, sizeof(w->names[0]));
    w->v = (struct verifier){ .crypto = c, .names = w->names, .n_files = 1 };
    w->seq = f->seq;
    w->r = (struct reader){ .fd = fd, .left = size, .buf = w->buf };
    return 0;
}

int audit_walk_read(struct audit_walk *w)
{
    return w->r.left ? fill(&w->r) : 0;    /* an empty file: nothing to read */
}

int audit_walk_lines(struct audit_walk *w, bool *intact)
{
    *intact = false;
    int rc = walk_lines(&w->v, 0, &w->r, &w->pending, &w->have);
    if (rc == NEED_BYTES)
        return 1;
    if (rc)
        return rc;
    if (w->have && judge(&w->v, &w->pending, NULL) != 0)
        return ERR_CRYPTO;
    w->have = false;
    *intact = w->v.started && !w->v.bad && w->v.seq == w->seq;
    return 0;
}

void audit_walk_free(struct audit_walk *w)
{
    if (w)
        free(w->v.span_buf);
    free(w);
}

/* The walk found no problem: what the anchor says, if there is one. 0 or
 * ERR_INVALID. */
static int check_anchor(const struct verifier *v, FILE *report)
{
    const struct audit_anchor *an = v->anchor;
    if (!an || v->anchor_seen) {
        if (an)
            fprintf(report, "note: anchor seq %llu found: the chain still holds the anchored line\n",
                    (unsigned long long)an->seq);
        return 0;
    }
    unsigned long long seq = (unsigned long long)an->seq;
    if (an->seq > v->seq) {
        fprintf(report, "%s: missing line(s) after: the anchor names seq %llu, the log ends at seq %llu\n",
                v->names[v->n_files - 1], seq, (unsigned long long)v->seq);
        return ERR_INVALID;
    }
    /* Before the kept log: checked where the trail still names that line,
     * by the first kept line's prev or by a prune record. */
    int named = an->seq + 1 == v->head.l.seq ? (memcmp(v->head.l.prev, an->hash, AUDIT_HASH_LEN) == 0 ? 1 : -1)
                                              : v->anchor_pruned;
    if (named < 0) {
        fprintf(report, "%s: changed: the trail names another line as seq %llu than the anchor\n",
                v->names[v->head.file], seq);
        return ERR_INVALID;
    }
    if (named > 0)
        fprintf(report, "note: the anchor's seq %llu, before the kept log, is the line the trail names there "
                "(checked)\n", seq);
    else
        fprintf(report, "note: the anchor's seq %llu is before the kept log (seq %llu..%llu): not checked\n", seq,
                (unsigned long long)v->head.l.seq, (unsigned long long)v->seq);
    return 0;
}

int audit_verify_dir(const char *dir, const struct crypto *crypto, const struct audit_anchor *anchor,
                     FILE *report)
{
    struct verifier v = { .crypto = crypto, .out = report, .anchor = anchor };
    int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0) {
        fprintf(report, "cannot open %s: %s\n", dir, strerror(errno));
        return ERR_IO;
    }
    int rc = walk(dirfd, &v);
    close(dirfd);
    if (rc == 0) {
        char at[LOC_MAX];
        if (!v.started && !v.bad) {
            fprintf(report, "%s: no audit record found\n", dir);
            rc = ERR_INVALID;
        } else if (v.started && !v.genesis && !v.explained[0]) {
            /* Before any later problem: it is the earliest position. */
            fprintf(report, "%s: missing line(s) before: the log starts at seq %llu and no retention "
                    "record explains the lines before it\n", loc(&v, &v.head, at),
                    (unsigned long long)v.head.l.seq);
            rc = ERR_INVALID;
        } else if (v.bad) {
            fprintf(report, "%s\n", v.problem);
            rc = ERR_INVALID;
        } else if (strcmp(v.names[v.n_files - 1], AUDIT_CURRENT) != 0 || v.linked != v.n_files - 1) {
            /* Nothing then shows whether lines after the newest file were
             * removed: audit.log is missing, or holds no record that would
             * name the file before it (emptied). A crash between a rotation
             * and the next line leaves this too; the server's next start
             * writes that record. */
            if (strcmp(v.names[v.n_files - 1], AUDIT_CURRENT) != 0)
                fprintf(report, "there is no %s: lines after seq %llu may be gone\n", AUDIT_CURRENT,
                        (unsigned long long)v.seq);
            else
                fprintf(report, "%s holds no record: lines after seq %llu may be gone\n", AUDIT_CURRENT,
                        (unsigned long long)v.seq);
            rc = ERR_INVALID;
        } else if (v.foreign) {
            rc = ERR_INVALID;          /* reported before the walk */
        } else if ((rc = check_anchor(&v, report)) == 0) {
            if (v.explained[0])
                fprintf(report, "note: %s: head pruned by retention (record at %s)\n",
                        loc(&v, &v.head, at), v.explained);
            struct audit_anchor newest = { .seq = v.seq };
            char text[AUDIT_ANCHOR_TEXT_MAX];
            memcpy(newest.hash, v.prev, AUDIT_HASH_LEN);
            audit_anchor_format(&newest, text);
            fprintf(report, "OK: %llu records in %zu file(s), seq %llu..%llu, chain intact; anchor %s\n",
                    (unsigned long long)v.records, v.n_files, (unsigned long long)v.head.l.seq,
                    (unsigned long long)v.seq, text);
        }
    }
    free(v.names);
    return rc;
}
