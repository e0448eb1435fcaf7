/*
 * audit_walk.c - judging the audit trail's lines in order: the walk
 * `notesd audit verify` makes over every file (audit_verify.c), and the
 * walk of one rotated file that retention's checks use.
 *
 * Owns nothing past a call but a walk's buffers. Reads only, and trusts no
 * field of a line whose MAC does not verify. Lines are read through a
 * bounded buffer, so a hostile file cannot make it allocate without limit.
 *
 * The walk keeps one line of lookahead: a line whose MAC fails is "inserted"
 * when the next line continues the chain from the line before it, and
 * "changed" otherwise; a line with the wrong seq is "reordered" when the
 * expected seq comes next (or the one after it does), or later on, and is
 * preceded by "missing line(s)" otherwise.
 */
#include "audit_walk.h"
#include "crypto.h"
#include "err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
 * than the buffer comes back as its first AUDIT_READ_BUF bytes (they cannot
 * carry a valid MAC) and the rest of it is skipped. */
static int next_line(struct reader *r, const uint8_t **p, size_t *n, bool *complete)
{
    for (;;) {
        size_t avail = r->end - r->start;
        uint8_t *nl = avail ? memchr(r->buf + r->start, '\n', avail) : NULL;
        bool last = !nl && r->left == 0 && avail > 0;     /* no newline at the end */
        bool full = !nl && avail == AUDIT_READ_BUF;             /* an over-long line */
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
    size_t want = AUDIT_READ_BUF - r->end < r->left ? AUDIT_READ_BUF - r->end : (size_t)r->left;
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

const char *audit_walk_loc(const struct verifier *v, const struct rec *r, char buf[AUDIT_LOC_MAX])
{
    snprintf(buf, AUDIT_LOC_MAX, "%s:%llu", v->names[r->file], (unsigned long long)r->lineno);
    return buf;
}

static void problem(struct verifier *v, const struct rec *r, const char *kind, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void problem(struct verifier *v, const struct rec *r, const char *kind, const char *fmt, ...)
{
    char at[AUDIT_LOC_MAX], what[300];
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(what, sizeof(what), fmt, ap);   /* cut at the buffer on purpose */
    va_end(ap);
    snprintf(v->problem, sizeof(v->problem), "%s: %s: %s", audit_walk_loc(v, r, at), kind, what);
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
    audit_walk_loc(v, r, v->explained);
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
    char at[AUDIT_LOC_MAX];
    problem(v, &v->gap, "reordered", "seq %llu where %llu was expected (seq %llu is at %s)",
            (unsigned long long)v->gap.l.seq, (unsigned long long)v->gap_lo, (unsigned long long)l->seq,
            audit_walk_loc(v, cur, at));
    v->gap_hi = 0;
}

/* Judge `cur`, knowing the line after it (NULL at the end). */
static void check(struct verifier *v, const struct rec *cur, const struct rec *next)
{
    const struct audit_line *l = &cur->l;
    char at[AUDIT_LOC_MAX];
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
                    audit_walk_loc(v, cur, at), v->names[next->file], (unsigned long long)next->lineno);
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
    return !r->l.mac_ok && r->cut.shape && r->complete && r->len > 0;
}

static int span_start(struct verifier *v, struct rec *r, const uint8_t *p, size_t n)
{
    r->span = n;
    memcpy(r->span_hash, r->l.hash, AUDIT_HASH_LEN);
    v->span_len = 0;
    if (!may_start_span(r))
        return 0;
    if (!v->span_buf && !(v->span_buf = malloc(AUDIT_READ_BUF)))
        return ERR_NOMEM;
    memcpy(v->span_buf, p, n);         /* a line is at most AUDIT_READ_BUF bytes */
    v->span_len = n;
    return 0;
}

/* Could the cut lines a and b carry the same seq? One's digits begin the
 * other's, and a line whose digits are whole (not cut at its end) fixes
 * them. Then a becomes what both say: checking it against the record that
 * replaced them (cut_by_a_crash()) checks both. Every line a crash leaves
 * before that record is the start of a line with its seq: the torn line,
 * and what a second crash left of the record meant to explain it. */
static bool same_seq(struct audit_cut *a, const struct audit_cut *b)
{
    size_t m = a->digits < b->digits ? a->digits : b->digits;
    if (memcmp(a->seq, b->seq, m) != 0)
        return false;
    if (!a->open && !b->open)
        return a->digits == b->digits;
    if (!a->open)
        return b->digits <= a->digits;
    if (!b->open && a->digits > b->digits)
        return false;
    if (!b->open || b->digits > a->digits)
        *a = *b;
    return true;
}

/* Does `cur` continue the span `pending` began? Then it joins it. */
static bool span_extend(struct verifier *v, struct rec *pending, const struct rec *cur, const uint8_t *p,
                        size_t n)
{
    if (!v->span_len || !pending->complete || cur->file != pending->file || cur->l.mac_ok || !cur->cut.shape ||
        (cur->complete && n == 0))
        return false;
    struct audit_cut both = pending->cut;
    if (!same_seq(&both, &cur->cut))
        return false;
    pending->cut = both;
    if (v->span_len + 1 + n <= AUDIT_READ_BUF) {
        v->span_buf[v->span_len] = '\n';
        memcpy(v->span_buf + v->span_len + 1, p, n);
        v->span_len += 1 + n;
    } else {
        v->span_len = AUDIT_READ_BUF + 1;    /* longer than a writer reads back: never explained */
    }
    pending->span = v->span_len;
    pending->complete = cur->complete;
    return true;
}

/* check(), once the span `cur` began is hashed. */
int audit_walk_judge(struct verifier *v, struct rec *cur, const struct rec *next)
{
    if (v->span_len > cur->len && v->span_len <= AUDIT_READ_BUF &&
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
        if (*have && audit_walk_judge(v, pending, &cur) != 0)
            return ERR_CRYPTO;
        if (span_start(v, &cur, p, n) != 0)
            return ERR_NOMEM;
        *pending = cur;
        *have = true;
    }
    return got;
}

/* Every line of file `i`. 0, ERR_IO or ERR_CRYPTO. */
int audit_walk_file(struct verifier *v, size_t i, int fd, uint64_t size, struct rec *pending,
                     bool *have, uint8_t *buf)
{
    struct reader r = { .fd = fd, .left = size, .buf = buf };
    int rc;
    while ((rc = walk_lines(v, i, &r, pending, have)) == NEED_BYTES)
        if ((rc = fill(&r)) != 0)
            return rc;
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
    uint8_t buf[AUDIT_READ_BUF];
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
    if (w->have && audit_walk_judge(&w->v, &w->pending, NULL) != 0)
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
