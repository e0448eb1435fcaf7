/*
 * log.h - the operational log: one line per event on stderr.
 *
 * For operators, not auditors (the audit trail is audit.c). Callers must never
 * pass a secret, token, password, username, note title or content, or request
 * body; control bytes in a message are escaped so no input can forge a line.
 * Safe to call from any thread (one write(2) per line).
 */
#ifndef NOTESD_LOG_H
#define NOTESD_LOG_H

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

/** Lines below `level` are dropped. Set once at start-up. */
void log_set_level(enum log_level level);
/** Format and write one line; the message is truncated at 1 KiB. */
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

#endif
