/*
 * validate.h - allow-list validation of every client input: JSON bodies,
 * usernames, passwords, note titles and contents, path ids, query strings,
 * cursors and the Authorization header.
 *
 * Pure functions: no I/O, no globals beyond constant tables, safe on any
 * thread (except validate_json_object(), see there). Each failure adds a
 * (field, why) pair to a validate_errors list so the handler can answer one
 * 400 naming every bad field. The `why` texts are fixed English phrases
 * about the request, never echoing its content. `errs` may be NULL when the
 * caller only wants the verdict.
 *
 * Fail closed: where a function can also fail for lack of memory, it records
 * (field, "could not be processed") as well as returning ERR_NOMEM, so a
 * caller that only looks at errs->n still refuses the request.
 */
#ifndef NOTESD_VALIDATE_H
#define NOTESD_VALIDATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "buf.h"

#define VALIDATE_USERNAME_MIN 3       /* characters */
#define VALIDATE_USERNAME_MAX 32
#define VALIDATE_PASSWORD_MIN 12      /* Unicode code points */
#define VALIDATE_PASSWORD_MAX 128
#define VALIDATE_TITLE_MAX 200        /* code points after NFC */
#define VALIDATE_CONTENT_MAX 65536    /* bytes after JSON decoding */
#define VALIDATE_LIMIT_MAX 100
#define VALIDATE_LIMIT_DEFAULT 20
#define VALIDATE_TOKEN_PREFIX "nt_"
#define VALIDATE_TOKEN_LEN 46         /* "nt_" + 43 base64url characters (32 bytes) */
#define VALIDATE_CURSOR_LEN 11        /* base64url of 8 bytes, unpadded */
#define VALIDATE_MAX_ERRORS 8

struct validate_error {
    const char *field;                /* static string: a field name */
    const char *why;                  /* static string: e.g. "must be 1 to 200 characters" */
};

struct validate_errors {
    size_t n;
    struct validate_error e[VALIDATE_MAX_ERRORS];
};

/** Record an error (both strings static); extra errors past the cap, and an
 *  exact repeat of a pair already recorded, are dropped. */
void validate_add(struct validate_errors *errs, const char *field, const char *why);

/* ---- JSON bodies ---------------------------------------------------------- */

/** One expected string member of a JSON object body. */
struct validate_field {
    const char *name;                 /* in: member name */
    bool required;                    /* in */
    size_t max_bytes;                 /* in: refuse longer decoded values (as "too long") */
    char *value;                      /* out: malloc'd, NUL-terminated, decoded; NULL if absent */
    size_t len;                       /* out: bytes, excluding the NUL */
};

/**
 * Parse `body` as exactly one JSON object whose members are all listed in
 * `fields`, each at most once, each a string of valid UTF-8 (no overlong
 * forms, no surrogates, no NUL). Anything else is an error:
 *   ("body", "must be a JSON object")   not JSON, not an object, trailing
 *                                       bytes, an escaped NUL, a raw control
 *                                       byte in a string (json_object_each)
 *   ("body", "has an unknown field")    the name is never echoed
 *   ("body", "has a duplicate field")
 *   ("body", "is not valid UTF-8")      a member name
 *   (name, "must be a string")          numbers, null, booleans, arrays and
 *                                       objects: only a flat object is valid
 *   (name, "is too long")               more than max_bytes once decoded
 *   (name, "is not valid UTF-8")
 *   (name, "is required")
 * Every member is checked, so one answer can name several fields.
 *
 * Returns 0 when this call recorded no error, else ERR_INVALID; ERR_NOMEM on
 * allocation failure; ERR_INTERNAL when n > 64 (also recorded). Every value
 * is set to NULL first, so the caller frees with validate_fields_free() in
 * every case. Thread: the event loop only; cJSON keeps its last error in a
 * process-wide variable.
 */
int validate_json_object(struct slice body, struct validate_field *fields, size_t n,
                         struct validate_errors *errs);
/** Wipe and free the values validate_json_object() filled in. */
void validate_fields_free(struct validate_field *fields, size_t n);

/* ---- fields ---------------------------------------------------------------- */

/** Canonicalise (ASCII lower-case) then validate a username: 3–32 of
 *  [a-z0-9_.-]. Writes the canonical form to `out` (the empty string on
 *  failure). 0 or ERR_INVALID. */
int validate_username(const char *in, size_t n, char out[VALIDATE_USERNAME_MAX + 1],
                      const char *field, struct validate_errors *errs);
/** 12–128 code points of valid UTF-8, no control characters (C0 including
 *  TAB/LF/CR, DEL, C1), never truncated; refused when its lower-cased form
 *  (Unicode simple case mapping) is one of the common passwords ("is too
 *  common"). Reports one problem: bad UTF-8, then controls, then length,
 *  then commonness. 0 or ERR_INVALID. */
int validate_password(const char *pw, size_t n, const char *field, struct validate_errors *errs);
/** NFC-normalise a title into `out` (cleared first) and check it: 1–200
 *  code points; letters, marks, numbers, punctuation, symbols and spaces
 *  (Zs) only; no leading or trailing space; no leading combining mark. `out`
 *  is written only on success. 0, ERR_INVALID, or ERR_NOMEM / ERR_LIMIT
 *  when `out` cannot take the result. */
int validate_title(const char *in, size_t n, struct buf *out, const char *field,
                   struct validate_errors *errs);
/** Valid UTF-8, <= 65536 bytes, no control characters except TAB, LF, CR.
 *  0 or ERR_INVALID. */
int validate_content(const char *in, size_t n, const char *field, struct validate_errors *errs);

/* ---- path, query, headers ------------------------------------------------ */

/** A decimal id 1 … 2^63−1: digits only, no sign, no leading zero. *out is
 *  written only on success. 0 or ERR_INVALID; records no error. */
int validate_id(struct slice s, int64_t *out);

/** One allowed query parameter; `value` is set when present. */
struct validate_param {
    const char *name;                 /* in */
    struct slice value;               /* out: raw value (not decoded) */
    bool present;                     /* out */
};

/**
 * Split a query string ("a=1&b=2", without '?') into the allowed
 * parameters. Refused: an unknown name (field "query"), a repeated name, a
 * name without '=', an empty pair ("a=1&&b=2"), any '%' or '+' (no value we
 * accept needs encoding), '#', and any byte outside printable ASCII; a
 * second '=' in a pair. Every param is reset first. Stops at the first
 * problem. 0 or ERR_INVALID.
 */
int validate_query(struct slice query, struct validate_param *params, size_t n,
                   struct validate_errors *errs);
/** limit: decimal 1–100, strictly (no sign, no leading zero). */
int validate_limit(struct slice s, int *out, struct validate_errors *errs);
/** Encode a list position (a note id, 1 … 2^63−1) as an opaque cursor:
 *  unpadded base64url of the 8-byte big-endian id. Opaque, not secret nor
 *  authenticated: it only says where a list continues, and the list query
 *  is bounded by its owner anyway. Ids outside 1 … 2^63−1 encode to cursors
 *  that validate_cursor() refuses. */
void validate_cursor_encode(int64_t id, char out[VALIDATE_CURSOR_LEN + 1]);
/** Decode a cursor made by validate_cursor_encode(); anything else fails
 *  (wrong length, padding, other alphabets, nonzero unused bits, id 0 or
 *  above 2^63−1). 0 or ERR_INVALID. */
int validate_cursor(struct slice s, int64_t *out, struct validate_errors *errs);
/** The Authorization value must be exactly "Bearer " (case-sensitive, one
 *  space) + "nt_" + 43 characters of [A-Za-z0-9_-]; copies the token to
 *  `token` (the empty string on failure). 0 or ERR_INVALID. */
int validate_bearer(struct slice header_value, char token[VALIDATE_TOKEN_LEN + 1]);

/** utf8proc's library version and the Unicode version of its tables
 *  (NFC and the allowed-character checks depend on both), for
 *  `notesd --version --verbose`. Static strings; any thread. */
const char *validate_utf8proc_version(void);
const char *validate_unicode_version(void);
/** How many entries the compiled-in common-password list holds. */
size_t validate_common_password_count(void);

#endif
