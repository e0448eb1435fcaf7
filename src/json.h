/*
 * json.h - small JSON helpers shared by the HTTP layer and the handlers.
 *
 * Writing: strings are escaped so that no byte of input can end a string or
 * a line early. Reading: request bodies are parsed with cJSON behind
 * json_object_each(), so handlers and validators never include cJSON.h.
 * This module checks JSON syntax only; what a member may be called or hold
 * is validate.c's business.
 */
#ifndef NOTESD_JSON_H
#define NOTESD_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include "buf.h"

/** Append `s` (n bytes) as a quoted JSON string. Control bytes, '"', '\\'
 *  and DEL are escaped; bytes >= 0x80 are copied as they are (the caller
 *  passes valid UTF-8). 0, ERR_LIMIT or ERR_NOMEM. */
int json_append_string(struct buf *b, const char *s, size_t n);

/** The linked cJSON version. */
const char *json_library_version(void);

/** One member of a parsed JSON object. The strings are borrowed from the
 *  parser and live only for the duration of the callback. */
struct json_member {
    const char *name;       /* decoded, NUL-terminated, never holds a NUL */
    size_t name_len;
    const char *value;      /* decoded string value, or NULL when not a string */
    size_t value_len;
    bool is_string;
};

/** Called once per member; a nonzero return stops the walk and is returned. */
typedef int (*json_member_cb)(void *arg, const struct json_member *m);

/**
 * Parse `body` (n bytes, not NUL-terminated) as exactly one JSON object and
 * call `cb` for each member in document order, duplicate names included.
 * Stricter than cJSON alone: whitespace is only space, tab, LF and CR; no
 * byte-order mark; no raw control byte inside a string; no escaped NUL and
 * no malformed unicode escape (cJSON would decode both to a NUL byte and cut
 * the string short); nothing but whitespace after the object. The UTF-8 of
 * the decoded strings is NOT checked here: the caller does it.
 *
 * Returns 0; ERR_INVALID when the body is not such an object; ERR_NOMEM
 * when the copy of the body cannot be allocated (cJSON's own allocation
 * failures are indistinguishable from bad syntax and give ERR_INVALID); or
 * the callback's nonzero return. Every decoded string and the copy of the
 * body are wiped before they are freed: bodies carry passwords.
 *
 * Thread: cJSON records its last parse error in a process-wide variable
 * that nothing here reads; call from one thread at a time (the event loop).
 */
int json_object_each(struct slice body, json_member_cb cb, void *arg);

#endif
