/*
 * log.h - the operational log: one line per event on stderr.
 *
 * For operators, not auditors (the audit trail is audit.c). By default each
 * line is one JSON object {"ts","level","pid","msg", fields...}
 * (NOTES_LOG_FORMAT=json); NOTES_LOG_FORMAT=text gives
 * "<ts> notesd[<pid>] <level>: <msg> key=value ..." for people.
 *
 * Callers must never pass a secret, token, password, username, note title or
 * content, or request body. As a second line of defence the log masks what
 * looks like one: a field whose key names a secret (password, token, secret,
 * key, authorization, cookie, username, title, content, body) has its value
 * replaced, and in messages bearer tokens ("nt_...", "Bearer ...") and long
 * base64 runs (key material) become "[redacted]". Control bytes and invalid
 * UTF-8 are escaped, so no input can forge a line or break the JSON.
 * Safe to call from any thread (one write(2) per line).
 */
#ifndef NOTESD_LOG_H
#define NOTESD_LOG_H

#include <stdbool.h>
#include <stddef.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };
enum log_format { LOG_FORMAT_JSON, LOG_FORMAT_TEXT };

/** One short key/value pair: a string (`str`, may be NULL) or a number. */
struct log_field {
    const char *key;       /* [a-z0-9_]; other bytes are dropped */
    const char *str;       /* NULL: the field is the number `num` */
    long long num;
};

#define LOG_STR(k, v) ((struct log_field){ (k), (v) ? (v) : "", 0 })
#define LOG_NUM(k, v) ((struct log_field){ (k), NULL, (long long)(v) })

/** The most a line holds; longer messages are cut (never mid-escape). */
#define LOG_LINE_MAX 2048

/** Lines below `level` are dropped. Set once at start-up. */
void log_set_level(enum log_level level);
/** JSON (the default) or text. Set once at start-up. */
void log_set_format(enum log_format format);

/** Format and write one line; the message is truncated at 1 KiB. */
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/** As log_msg, with `n` fields after the message (request_id, codes). */
void log_fields(enum log_level level, const struct log_field *fields, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/**
 * Render one line into `out` (LOG_LINE_MAX bytes, newline included, no
 * NUL) and return its length. `ts` is the time already formatted. Pure: for
 * tests and for log_msg.
 */
size_t log_render(char *out, enum log_format format, const char *ts, long pid, enum log_level level,
                  const char *msg, const struct log_field *fields, size_t n);

/** Mask secrets in the NUL-terminated `s` in place (see above); returns
 *  the new length. Pure. */
size_t log_mask(char *s);

/** Whether a field with this key has its value masked. */
bool log_key_is_secret(const char *key);

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

#endif
