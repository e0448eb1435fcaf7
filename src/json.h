/*
 * json.h - small JSON helpers shared by the HTTP layer and the handlers.
 *
 * Writing only, for now: strings are escaped so that no byte of input can
 * end a string or a line early. Parsing request bodies uses cJSON through
 * functions added here, so handlers never include cJSON.h themselves.
 */
#ifndef NOTESD_JSON_H
#define NOTESD_JSON_H

#include <stddef.h>
#include "buf.h"

/** Append `s` (n bytes) as a quoted JSON string. Control bytes, '"', '\\'
 *  and DEL are escaped; bytes >= 0x80 are copied as they are (the caller
 *  passes valid UTF-8). 0, ERR_LIMIT or ERR_NOMEM. */
int json_append_string(struct buf *b, const char *s, size_t n);

/** The linked cJSON version. */
const char *json_library_version(void);

#endif
