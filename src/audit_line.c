/*
 * audit_line.c - the audit line format, both ways: audit_line_build() turns
 * an event into one signed line of printable-ASCII JSON, audit_line_read()
 * turns a line back into what it claims and whether its MAC holds, and the
 * rotated files' names are parsed here.
 *
 * Owns nothing past a call. It must never let caller text end a string or a
 * line early (every byte goes through audit_escape()), never emit a byte
 * outside printable ASCII, and never trust a field of a line whose MAC does
 * not verify: audit_line_read() reports it, its callers decide. Key material
 * stays in crypto.c.
 */
#include "audit.h"
#include "audit_int.h"
#include "crypto.h"
#include "err.h"
#include "utc.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* ---- writing ------------------------------------------------------------- */

static int put_u(struct buf *b, unsigned cp)
{
    static const char hex[] = "0123456789abcdef";
    char e[6] = { '\\', 'u', hex[cp >> 12 & 15], hex[cp >> 8 & 15], hex[cp >> 4 & 15], hex[cp & 15] };
    return buf_append(b, e, 6);
}

/* Length of the well-formed UTF-8 sequence at s (RFC 3629 section 4, which
 * rules out overlong forms, surrogates and code points past U+10FFFF) and
 * its code point; 0 when there is none. */
static size_t utf8_seq(const uint8_t *s, size_t n, unsigned *cp)
{
    uint8_t c = s[0], lo = 0x80, hi = 0xbf;
    size_t len;
    unsigned v;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2, v = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3, v = c & 0x0f;
        lo = c == 0xe0 ? 0xa0 : lo;
        hi = c == 0xed ? 0x9f : hi;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4, v = c & 0x07;
        lo = c == 0xf0 ? 0x90 : lo;
        hi = c == 0xf4 ? 0x8f : hi;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if (s[i] < (i == 1 ? lo : 0x80) || s[i] > (i == 1 ? hi : 0xbf))
            return 0;
        v = v << 6 | (s[i] & 0x3f);
    }
    *cp = v;
    return len;
}

/* Printable ASCII that needs no escape; runs of it are copied in one append. */
static bool audit_plain(uint8_t c)
{
    return c >= 0x20 && c < 0x7f && c != '"' && c != '\\';
}

int audit_escape(struct buf *b, const uint8_t *s, size_t n)
{
    int rc = buf_append(b, "\"", 1);
    for (size_t i = 0; i < n && rc == 0;) {
        size_t run = i;
        while (run < n && audit_plain(s[run]))
            run++;
        if (run > i) {
            rc = buf_append(b, s + i, run - i);
            i = run;
            continue;
        }
        uint8_t c = s[i];
        unsigned cp = 0;
        size_t len = 1;
        if (c == '"' || c == '\\') {
            char e[2] = { '\\', (char)c };
            rc = buf_append(b, e, 2);
        } else if (c == '\n' || c == '\r' || c == '\t') {
            rc = buf_append(b, c == '\n' ? "\\n" : c == '\r' ? "\\r" : "\\t", 2);
        } else if (c < 0x20 || c == 0x7f) {
            rc = put_u(b, c);
        } else if ((len = utf8_seq(s + i, n - i, &cp)) == 0) {
            len = 1;              /* one replacement per byte of a bad sequence */
            rc = put_u(b, 0xfffd);
        } else if (cp >= 0x10000) {
            cp -= 0x10000;
            rc = put_u(b, 0xd800 | cp >> 10);
            rc = rc ? rc : put_u(b, 0xdc00 | (cp & 0x3ff));
        } else {
            rc = put_u(b, cp);
        }
        i += len;
    }
    return rc ? rc : buf_append(b, "\"", 1);
}

const uint8_t audit_zero_hash[AUDIT_HASH_LEN];

void audit_hex(const uint8_t *in, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[in[i] >> 4];
        out[2 * i + 1] = hex[in[i] & 15];
    }
    out[2 * n] = '\0';
}

static int put_key(struct buf *b, const char *key)
{
    int rc = buf_append(b, ",\"", 2);
    rc = rc ? rc : buf_append_str(b, key);
    return rc ? rc : buf_append(b, "\":", 2);
}

/* Caller text is cut at AUDIT_FIELD_MAX bytes: a line has a bounded size. */
static int put_text(struct buf *b, const char *key, const char *s)
{
    int rc = put_key(b, key);
    return rc ? rc : audit_escape(b, (const uint8_t *)s, strnlen(s, AUDIT_FIELD_MAX));
}

static int put_num(struct buf *b, const char *key, uint64_t v)
{
    int rc = put_key(b, key);
    return rc ? rc : buf_append_u64(b, v);
}

static int put_hash(struct buf *b, const char *key, const uint8_t h[AUDIT_HASH_LEN])
{
    char hex[AUDIT_HEX_LEN + 1];
    audit_hex(h, AUDIT_HASH_LEN, hex);
    int rc = put_key(b, key);
    rc = rc ? rc : buf_append(b, "\"", 1);
    rc = rc ? rc : buf_append(b, hex, AUDIT_HEX_LEN);
    return rc ? rc : buf_append(b, "\"", 1);
}

static int put_ts(struct buf *b)
{
    struct timespec ts;
    char s[UTC_TEXT_MAX];
    clock_gettime(CLOCK_REALTIME, &ts);
    size_t n = utc_format(ts.tv_sec, (int)(ts.tv_nsec / 1000000), s);
    int rc = buf_append(b, "{\"ts\":\"", 7);
    rc = rc ? rc : buf_append(b, s, n);
    return rc ? rc : buf_append(b, "\"", 1);
}

static int pseudonym(const struct audit_enc *e, int64_t id, char p[CRYPTO_PSEUDONYM_LEN + 1])
{
    if (!e->cache)
        return crypto_pseudonym(e->crypto, id, p);
    size_t i = (size_t)((uint64_t)id % AUDIT_PSEUDONYM_CACHE);
    if (e->cache->slot[i].id != id) {
        if (crypto_pseudonym(e->crypto, id, e->cache->slot[i].p) != 0) {
            e->cache->slot[i].id = 0;
            return ERR_CRYPTO;
        }
        e->cache->slot[i].id = id;
    }
    memcpy(p, e->cache->slot[i].p, CRYPTO_PSEUDONYM_LEN + 1);
    return 0;
}

/* Users appear only as pseudonyms, as actors and as resources alike: a
 * "user:17" resource next to its owner's pseudonym would undo the
 * pseudonym. Whoever holds NOTES_AUDIT_KEY can map ids to pseudonyms. */
static int put_who(const struct audit_enc *e, struct buf *b, const struct audit_event *ev)
{
    char p[CRYPTO_PSEUDONYM_LEN + 1];
    const char *role = ev->role ? ev->role : ev->actor_id > 0 ? "unknown" : "anonymous";
    const char *actor = "anonymous";
    if (ev->actor_id > 0) {
        if (pseudonym(e, ev->actor_id, p) != 0)
            return ERR_CRYPTO;
        actor = p;
    } else if (strcmp(role, "cli") == 0 || strcmp(role, "system") == 0) {
        actor = role;
    }
    int rc = put_text(b, "actor", actor);
    return rc ? rc : put_text(b, "role", role);
}

/* `v` in decimal (after a '-' when `neg`) at `out`, no NUL; its length.
 * The audit line's numbers without snprintf: it ran twice per line. */
static size_t put_dec(char *out, uint64_t v, bool neg)
{
    char d[20];
    size_t n = 0, k = 0;
    do
        d[n++] = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    if (neg)
        out[k++] = '-';
    while (n)
        out[k++] = d[--n];
    return k;
}

static int put_ip(const struct audit_enc *e, struct buf *b, const uint8_t *ip)
{
    static const uint8_t v4_mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
    char s[INET6_ADDRSTRLEN + 8];
    uint8_t x[16];
    bool cut = e->ip_mode == CONFIG_AUDIT_IP_TRUNCATED;
    if (!ip || e->ip_mode == CONFIG_AUDIT_IP_NONE)
        return 0;
    memcpy(x, ip, sizeof(x));
    if (memcmp(x, v4_mapped, sizeof(v4_mapped)) == 0) {
        if (cut)
            x[15] = 0;
        char *o = s;
        for (int i = 12; i < 16; i++) {
            o += put_dec(o, x[i], false);
            *o++ = i < 15 ? '.' : '\0';
        }
        if (cut)
            memcpy(o - 1, "/24", 4);
    } else {
        if (cut)
            memset(x + 6, 0, 10);
        if (!inet_ntop(AF_INET6, x, s, INET6_ADDRSTRLEN))
            return ERR_INTERNAL;
        if (cut)
            memcpy(s + strlen(s), "/48", 4);
    }
    return put_text(b, "ip", s);
}

static int put_resource(const struct audit_enc *e, struct buf *b, const struct audit_event *ev)
{
    char s[64], p[CRYPTO_PSEUDONYM_LEN + 1];
    if (!ev->resource_type)
        return 0;
    size_t t = strnlen(ev->resource_type, 32);
    memcpy(s, ev->resource_type, t);
    s[t] = '\0';
    if (ev->resource_id != 0 && strcmp(ev->resource_type, "user") == 0) {
        if (pseudonym(e, ev->resource_id, p) != 0)
            return ERR_CRYPTO;
        s[t] = ':';
        memcpy(s + t + 1, p, sizeof(p));
    } else if (ev->resource_id != 0) {
        int64_t id = ev->resource_id;
        s[t] = ':';
        s[t + 1 + put_dec(s + t + 1, id < 0 ? 0 - (uint64_t)id : (uint64_t)id, id < 0)] = '\0';
    }
    return put_text(b, "resource", s);
}

static int put_extra(struct buf *b, const struct audit_extra *x)
{
    int rc = x->file ? put_text(b, "file", x->file) : 0;
    if (rc == 0 && x->last_hash) {
        rc = put_num(b, "first_seq", x->first_seq);
        rc = rc ? rc : put_num(b, "last_seq", x->last_seq);
        rc = rc ? rc : put_hash(b, "last_hash", x->last_hash);
    }
    if (rc == 0 && x->torn_hash) {
        rc = put_num(b, "bytes", x->bytes);
        rc = rc ? rc : put_hash(b, "torn_hash", x->torn_hash);
    }
    return rc;
}

int audit_line_build(const struct audit_enc *e, const struct audit_event *ev, const struct audit_extra *x,
                     uint64_t seq, const uint8_t prev[AUDIT_HASH_LEN], struct buf *b,
                     uint8_t hash[AUDIT_HASH_LEN])
{
    static const char *const results[] = { "success", "deny", "error" };
    size_t start = b->len;
    uint8_t mac[AUDIT_HASH_LEN];
    unsigned r = (unsigned)ev->result;
    int rc = put_ts(b);
    rc = rc ? rc : put_num(b, "seq", seq);
    rc = rc ? rc : put_text(b, "event", ev->event);
    rc = rc ? rc : put_who(e, b, ev);
    rc = rc ? rc : put_ip(e, b, ev->ip);
    if (rc == 0 && ev->request_id)
        rc = put_text(b, "request_id", ev->request_id);
    rc = rc ? rc : put_resource(e, b, ev);
    rc = rc ? rc : put_text(b, "result", results[r < 3 ? r : AUDIT_ERROR]);
    if (rc == 0 && ev->status > 0)
        rc = put_num(b, "status", (uint64_t)ev->status);
    if (rc == 0 && ev->reason)
        rc = put_text(b, "reason", ev->reason);
    if (rc == 0 && ev->detail)
        rc = put_text(b, "detail", ev->detail);
    if (rc == 0 && ev->count)
        rc = put_num(b, "count", ev->count);
    if (rc == 0 && x)
        rc = put_extra(b, x);
    rc = rc ? rc : put_hash(b, "prev", prev);
    if (rc == 0 && crypto_audit_mac(e->crypto, b->data + start, b->len - start, mac) != 0)
        rc = ERR_CRYPTO;
    rc = rc ? rc : put_hash(b, "mac", mac);
    rc = rc ? rc : buf_append(b, "}", 1);
    if (rc == 0 && crypto_sha256(b->data + start, b->len - start, hash) != 0)
        rc = ERR_CRYPTO;
    return rc ? rc : buf_append(b, "\n", 1);
}

/* ---- reading ------------------------------------------------------------- */

static int hex_digit(uint8_t c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;                         /* the writer uses lowercase only */
}

static bool unhex(struct slice s, uint8_t out[AUDIT_HASH_LEN])
{
    if (s.len != AUDIT_HEX_LEN)
        return false;
    for (size_t i = 0; i < AUDIT_HASH_LEN; i++) {
        int hi = hex_digit(s.p[2 * i]), lo = hex_digit(s.p[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return true;
}

/* Decimal digits, leading zeros allowed, no overflow. */
static bool dec_u64(struct slice s, uint64_t *out)
{
    uint64_t v = 0;
    if (s.len == 0 || s.len > 20)
        return false;
    for (size_t i = 0; i < s.len; i++) {
        unsigned d = (unsigned)(s.p[i] - '0');
        if (d > 9 || v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

/* A JSON number as the writer prints it: no leading zero. */
static bool to_u64(struct slice s, uint64_t *out)
{
    return !(s.len > 1 && s.p[0] == '0') && dec_u64(s, out);
}

_Static_assert(sizeof(((struct audit_anchor *)0)->hash) == AUDIT_HASH_LEN, "an anchor holds a line's hash");

void audit_anchor_format(const struct audit_anchor *an, char out[AUDIT_ANCHOR_TEXT_MAX])
{
    int n = snprintf(out, AUDIT_ANCHOR_TEXT_MAX, "%llu:", (unsigned long long)an->seq);
    audit_hex(an->hash, AUDIT_HASH_LEN, out + n);
}

int audit_anchor_parse(const char *text, struct audit_anchor *out)
{
    const char *colon = text ? strchr(text, ':') : NULL;
    if (!colon)
        return ERR_INVALID;
    struct slice seq = { (const uint8_t *)text, (size_t)(colon - text) };
    struct slice hex = { (const uint8_t *)colon + 1, strlen(colon + 1) };
    /* seq 0 names no line: a trail starts at 1. */
    return to_u64(seq, &out->seq) && out->seq > 0 && unhex(hex, out->hash) ? 0 : ERR_INVALID;
}

/* A string at p[*i]: its raw contents, escapes kept. */
static bool scan_string(const uint8_t *p, size_t n, size_t *i, struct slice *out)
{
    size_t j = *i + 1;
    if (*i >= n || p[*i] != '"')
        return false;
    for (; j < n && p[j] != '"'; j++) {
        if (p[j] < 0x20 || p[j] >= 0x7f)
            return false;
        if (p[j] == '\\' && ++j >= n)
            return false;
    }
    if (j >= n)
        return false;
    *out = (struct slice){ p + *i + 1, j - *i - 1 };
    *i = j + 1;
    return true;
}

static bool key_is(struct slice k, const char *name)
{
    return slice_eq(k, slice_str(name));
}

static void copy_text(struct slice v, char *out, size_t cap)
{
    if (v.len < cap) {
        memcpy(out, v.p, v.len);
        out[v.len] = '\0';
    }
}

static void take(struct audit_line *l, struct slice k, struct slice v, bool str, bool *has_seq,
                 bool *has_prev)
{
    if (!str && key_is(k, "seq"))
        *has_seq = to_u64(v, &l->seq);
    else if (str && key_is(k, "prev"))
        *has_prev = unhex(v, l->prev);
    else if (str && key_is(k, "event"))
        copy_text(v, l->event, sizeof(l->event));
    else if (str && key_is(k, "file"))
        copy_text(v, l->file, sizeof(l->file));
    else if (!str && key_is(k, "first_seq"))
        to_u64(v, &l->first_seq);
    else if (!str && key_is(k, "last_seq"))
        to_u64(v, &l->last_seq);
    else if (!str && key_is(k, "bytes"))
        to_u64(v, &l->bytes);
    else if (str && key_is(k, "last_hash"))
        l->has_last_hash = unhex(v, l->last_hash);
    else if (str && key_is(k, "torn_hash"))
        l->has_torn_hash = unhex(v, l->torn_hash);
}

/* The writer's shape only: {"key":"string"|digits,...} without spaces. */
static void parse(const uint8_t *p, size_t n, struct audit_line *l)
{
    bool has_seq = false, has_prev = false;
    size_t i = 1;
    if (!p || n < 2 || p[0] != '{')
        return;
    for (;;) {
        struct slice k, v;
        bool str;
        if (!scan_string(p, n, &i, &k) || i >= n || p[i++] != ':')
            return;
        if (i < n && p[i] == '"') {
            str = true;
            if (!scan_string(p, n, &i, &v))
                return;
        } else {
            size_t s = i;
            while (i < n && p[i] >= '0' && p[i] <= '9')
                i++;
            str = false;
            v = (struct slice){ p + s, i - s };
        }
        take(l, k, v, str, &has_seq, &has_prev);
        if (i >= n)
            return;
        if (p[i] == '}') {
            l->parsed = i + 1 == n && has_seq && has_prev;
            return;
        }
        if (p[i++] != ',')
            return;
    }
}

int audit_line_read(const struct crypto *c, const uint8_t *p, size_t n, struct audit_line *out)
{
    memset(out, 0, sizeof(*out));
    if (crypto_sha256(p, n, out->hash) != 0)
        return ERR_CRYPTO;
    size_t key = sizeof(AUDIT_MAC_KEY) - 1;
    /* The tail is located only once the line is known to be longer than it
     * (a pointer before p would be undefined behaviour, not just wrong). */
    const uint8_t *tail = n > AUDIT_MAC_TAIL ? p + n - AUDIT_MAC_TAIL : NULL;
    uint8_t got[AUDIT_HASH_LEN], want[AUDIT_HASH_LEN];
    if (c && tail && memcmp(tail, AUDIT_MAC_KEY, key) == 0 && p[n - 2] == '"' &&
        p[n - 1] == '}' && unhex((struct slice){ tail + key, AUDIT_HEX_LEN }, got)) {
        if (crypto_audit_mac(c, p, n - AUDIT_MAC_TAIL, want) != 0)
            return ERR_CRYPTO;
        out->mac_ok = crypto_equal(want, got, AUDIT_HASH_LEN);
    }
    parse(p, n, out);
    return 0;
}

/* ---- names ---------------------------------------------------------------- */

static bool digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

bool audit_name_parse(const char *name, uint64_t *seq)
{
    /* audit-YYYYMMDDTHHMMSSZ-SSSSSSSSSSSSSSSSSSSS.log */
    if (strlen(name) != AUDIT_NAME_MAX || memcmp(name, "audit-", 6) != 0 || !digits(name + 6, 8) ||
        name[14] != 'T' || !digits(name + 15, 6) || name[21] != 'Z' || name[22] != '-' ||
        !digits(name + 23, 20) || strcmp(name + 43, ".log") != 0)
        return false;
    return dec_u64((struct slice){ (const uint8_t *)name + 23, 20 }, seq);
}

/* Whether p[0..n) could be the start of a line cut by a crash: a prefix of
 * the way every line begins, `{"ts":"<time>","seq":<digits>`, then
 * printable ASCII only (the writer escapes everything else) and not the
 * final `}` of a whole object, perhaps followed by the NULs power loss
 * leaves behind. The digits of its seq, as far as they got, go to r for
 * verify to compare with the record that replaced the line
 * (audit_verify.c: cut_by_a_crash()). */
void audit_cut_shape(const uint8_t *p, size_t n, struct audit_cut *r)
{
    static const char start[] = "{\"ts\":\"", key[] = "\",\"seq\":";
    r->shape = false;
    r->digits = 0;
    size_t end = 0;
    while (end < n && p[end] >= 0x20 && p[end] <= 0x7e)
        end++;
    for (size_t j = end; j < n; j++)
        if (p[j] != '\0')
            return;
    n = end;
    if (n > 0 && p[n - 1] == '}')
        return;
    size_t i = 0;
    for (; i < n && i < sizeof(start) - 1; i++)
        if (p[i] != (uint8_t)start[i])
            return;
    while (i < n && ((p[i] >= '0' && p[i] <= '9') || strchr("-:.TZ", p[i])))
        i++;
    for (size_t k = 0; i < n && k < sizeof(key) - 1; i++, k++)
        if (p[i] != (uint8_t)key[k])
            return;
    size_t d = 0;
    while (i + d < n && p[i + d] >= '0' && p[i + d] <= '9')
        d++;
    if (d > sizeof(r->seq) || (d == 0 && i < n))
        return;
    memcpy(r->seq, p + i, d);
    r->digits = d;
    r->open = i + d == n;
    r->shape = true;
}
