/*
 * log.c - operational log lines on stderr, JSON (default) or text.
 *
 * Each line is rendered into one stack buffer and written with a single
 * write(2), so lines from the thread pool never interleave. The message is
 * first masked (log_mask: bearer tokens, key-like base64 runs), then
 * escaped: in JSON every control byte, quote, backslash and invalid UTF-8
 * byte is escaped; in text they become '?'. A full buffer cuts the message
 * at a whole character or escape and the line is still closed, so a line is
 * always one valid JSON object.
 *
 * This file must never allocate (it runs on error paths, out of memory
 * included) or write a line with more than one write(2).
 */
#include "log.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define MSG_MAX 1024
#define REDACTED "[redacted]"
#define CLOSE_RESERVE 3     /* room kept for `"}\n` or `\n` */

static enum log_level min_level = LOG_INFO;
static enum log_format out_format = LOG_FORMAT_JSON;

void log_set_level(enum log_level level)
{
    min_level = level;
}

void log_set_format(enum log_format format)
{
    out_format = format;
}

static const char *level_name(enum log_level level)
{
    switch (level) {
    case LOG_DEBUG: return "debug";
    case LOG_INFO: return "info";
    case LOG_WARN: return "warning";
    case LOG_ERROR: return "error";
    }
    return "?";
}

/* ---- masking ------------------------------------------------------------- */

bool log_key_is_secret(const char *key)
{
    static const char *const parts[] = { "password", "passwd", "token",  "secret", "authorization",
                                         "cookie",   "username", "title", "content", "body" };
    for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++)
        if (strcasestr(key, parts[i]))
            return true;
    /* "key" alone or as a suffix (data_key), but not key_id. */
    size_t n = strlen(key);
    return strcasecmp(key, "key") == 0 || (n > 4 && strcasecmp(key + n - 4, "_key") == 0);
}

/* Base64 and base64url letters; '=' padding is handled by the caller. */
static bool is_b64(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/' || c == '-' || c == '_';
}

static bool is_word(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

/* Key material is base64 of >= 32 random bytes: 43+ characters, about 17
 * of each case and 7 digits. Asking for five of each case misses about one
 * random key in 100,000 (asking also for two digits missed one in 140).
 * Paths, hex digests and UUIDs have long runs too, but rarely five
 * capitals, so they stay readable. */
static bool looks_like_key(const char *s, size_t n)
{
    size_t upper = 0, lower = 0;
    for (size_t i = 0; i < n; i++) {
        upper += s[i] >= 'A' && s[i] <= 'Z';
        lower += s[i] >= 'a' && s[i] <= 'z';
    }
    return n >= 40 && upper >= 5 && lower >= 5;
}

/* Length of the masked run starting at s[i] and how much of it to keep
 * visible ("nt_", "Bearer "), or 0 when nothing starts here. */
static size_t secret_at(const char *s, size_t i, size_t *keep)
{
    bool boundary = i == 0 || !is_word((unsigned char)s[i - 1]);
    if (boundary && strncmp(s + i, "nt_", 3) == 0) {
        size_t n = 3;
        while (is_word((unsigned char)s[i + n]) || s[i + n] == '-')
            n++;
        *keep = 3;
        return n >= 3 + 16 ? n : 0;
    }
    if (boundary && strncasecmp(s + i, "bearer ", 7) == 0 && s[i + 7] && s[i + 7] != ' ') {
        size_t n = 7;
        while (s[i + n] && s[i + n] != ' ' && s[i + n] != '"' && s[i + n] != ',')
            n++;
        *keep = 7;
        return n;
    }
    if (i == 0 || !is_b64((unsigned char)s[i - 1])) {
        size_t n = 0;
        while (is_b64((unsigned char)s[i + n]))
            n++;
        if (!looks_like_key(s + i, n))
            return 0;
        for (int pad = 0; pad < 2 && s[i + n] == '='; pad++)
            n++;
        *keep = 0;
        return n;
    }
    return 0;
}

size_t log_mask(char *s)
{
    /* Every replacement is no longer than what it replaces, so the string
     * is rewritten in place, left to right (w never passes r). */
    size_t r = 0, w = 0, keep;
    while (s[r]) {
        size_t n = secret_at(s, r, &keep);
        if (n == 0) {
            s[w++] = s[r++];
            continue;
        }
        memmove(s + w, s + r, keep);
        w += keep;
        size_t hide = n - keep;
        if (hide >= sizeof(REDACTED) - 1) {
            memcpy(s + w, REDACTED, sizeof(REDACTED) - 1);
            w += sizeof(REDACTED) - 1;
        } else {
            memset(s + w, '*', hide);   /* too short to hold the marker */
            w += hide;
        }
        r += n;
    }
    s[w] = 0;
    return w;
}

/* ---- rendering ----------------------------------------------------------- */

struct line {
    char *p;
    size_t len, cap;   /* cap excludes CLOSE_RESERVE */
    bool full;
};

static void put(struct line *l, const char *s, size_t n)
{
    if (l->full || n > l->cap - l->len) {
        l->full = true;
        return;
    }
    memcpy(l->p + l->len, s, n);
    l->len += n;
}

static void puts_(struct line *l, const char *s)
{
    put(l, s, strlen(s));
}

/* Length of the valid UTF-8 sequence at s (no overlongs, no surrogates,
 * nothing above U+10FFFF), or 0. */
static size_t utf8_len(const unsigned char *s)
{
    if (s[0] < 0x80)
        return 1;
    size_t n = s[0] >= 0xf0 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc2 ? 2 : 0;
    if (n == 0 || s[0] > 0xf4)
        return 0;
    for (size_t i = 1; i < n; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] >= 0xa0) ||
        (s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] >= 0x90))
        return 0;
    return n;
}

/* Append s as the inside of a JSON string (json) or as a text run. */
static void put_escaped(struct line *l, const char *str, bool json)
{
    const unsigned char *s = (const unsigned char *)str;
    while (*s && !l->full) {
        size_t n = utf8_len(s);
        char esc[8];
        if (n == 1 && (*s < 0x20 || *s == 0x7f || *s == '"' || *s == '\\')) {
            if (!json)
                put(l, "?", 1);
            else if (*s == '"' || *s == '\\')
                put(l, (const char[]){ '\\', (char)*s }, 2);
            else if (*s == '\n')
                put(l, "\\n", 2);
            else if (*s == '\t')
                put(l, "\\t", 2);
            else {
                snprintf(esc, sizeof(esc), "\\u%04x", *s);
                put(l, esc, 6);
            }
        } else if (n == 0) {
            if (json)
                put(l, "\\ufffd", 6);
            else
                put(l, "?", 1);
            n = 1;
        } else {
            put(l, (const char *)s, n);
        }
        s += n;
    }
}

/* Keys are ours, but a stray byte must not break the line either. */
static void put_key(struct line *l, const char *key)
{
    for (const char *k = key; *k; k++)
        if ((*k >= 'a' && *k <= 'z') || (*k >= '0' && *k <= '9') || *k == '_')
            put(l, k, 1);
}

static void put_field(struct line *l, const struct log_field *f, bool json)
{
    char num[32];
    put(l, json ? ",\"" : " ", json ? 2 : 1);
    put_key(l, f->key);
    put(l, json ? "\":" : "=", json ? 2 : 1);
    if (!f->str) {
        snprintf(num, sizeof(num), "%lld", f->num);
        puts_(l, num);
        return;
    }
    const char *v = log_key_is_secret(f->key) ? REDACTED : f->str;
    char masked[256];
    snprintf(masked, sizeof(masked), "%s", v);
    log_mask(masked);
    if (json)
        put(l, "\"", 1);
    put_escaped(l, masked, json);
    if (json)
        put(l, "\"", 1);
}

size_t log_render(char *out, enum log_format format, const char *ts, long pid, enum log_level level,
                  const char *msg, const struct log_field *fields, size_t n)
{
    bool json = format == LOG_FORMAT_JSON;
    struct line l = { out, 0, LOG_LINE_MAX - CLOSE_RESERVE, false };
    char head[128];
    if (json)
        snprintf(head, sizeof(head), "{\"ts\":\"%s\",\"level\":\"%s\",\"pid\":%ld,\"msg\":\"", ts,
                 level_name(level), pid);
    else
        snprintf(head, sizeof(head), "%s notesd[%ld] %s: ", ts, pid, level_name(level));
    puts_(&l, head);
    put_escaped(&l, msg, json);
    if (json)
        put(&l, "\"", 1);
    bool msg_closed = !l.full;
    for (size_t i = 0; i < n; i++) {
        struct line probe = l;
        put_field(&probe, &fields[i], json);
        if (probe.full)
            break;   /* whole fields only: a cut one could be misread */
        l = probe;
    }
    /* The closing bytes always fit: they were held back from cap. A message
     * cut inside its quotes still gets its closing quote. */
    if (json && !msg_closed)
        out[l.len++] = '"';
    if (json)
        out[l.len++] = '}';
    out[l.len++] = '\n';
    return l.len;
}

static void emit(enum log_level level, const struct log_field *fields, size_t n, const char *fmt,
                 va_list ap) __attribute__((format(printf, 4, 0)));
static void emit(enum log_level level, const struct log_field *fields, size_t n, const char *fmt,
                 va_list ap)
{
    char msg[MSG_MAX], ts[64], line[LOG_LINE_MAX];
    struct timespec now;
    struct tm tm;
    (void)vsnprintf(msg, sizeof(msg), fmt, ap);   /* cut at the cap on purpose */
    log_mask(msg);
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (long)(now.tv_nsec / 1000000) % 1000);
    size_t len = log_render(line, out_format, ts, (long)getpid(), level, msg, fields, n);
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w; /* nowhere left to report a failed log write */
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    if (level < min_level)
        return;
    va_list ap;
    va_start(ap, fmt);
    emit(level, NULL, 0, fmt, ap);
    va_end(ap);
}

void log_fields(enum log_level level, const struct log_field *fields, size_t n, const char *fmt, ...)
{
    if (level < min_level)
        return;
    va_list ap;
    va_start(ap, fmt);
    emit(level, fields, n, fmt, ap);
    va_end(ap);
}
