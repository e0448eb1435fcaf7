/*
 * fuzz_json_body.c - libFuzzer target for the request-body validators:
 * validate_json_object() (cJSON behind json_object_each(): syntax, duplicate
 * and unknown members, escapes, UTF-8) with the note fields {title, content}
 * and the auth fields {username, password}, then the field validators the
 * handlers run on the decoded values: validate_title (NFC, categories),
 * validate_content, validate_username, validate_password (common list).
 * The same validators also run on the raw input, which reaches them with
 * bytes no JSON string would carry.
 *
 * Besides the sanitizers, the target aborts when an answer contradicts the
 * contract in validate.h, checked with a UTF-8 decoder written here
 * independently of validate.c:
 *  - accepted body: every required field present, each value NUL-terminated
 *    with no NUL inside, within max_bytes, valid UTF-8; no error recorded;
 *  - refused body: at least one error recorded (fail closed);
 *  - accepted title: valid UTF-8, 1..200 code points, and validating the
 *    result again gives the same bytes (NFC is idempotent); a refused title
 *    leaves `out` empty;
 *  - accepted username: 3..32 of [a-z0-9_.-] and already canonical;
 *  - accepted password or content: valid UTF-8 within the length bounds.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "err.h"
#include "validate.h"

/* The handlers' own bounds (api_notes.c TITLE_MAX_BYTES, api_auth.c
 * LOGIN_PASSWORD_MAX and the username cap). */
#define TITLE_MAX_BYTES 4096
#define PASSWORD_MAX_BYTES 1024
#define USERNAME_MAX_BYTES 256

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_json_body: invariant broken: %s\n", what);
        abort();
    }
}

/* Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above
 * U+10FFFF. Returns the number of code points, or -1. Also refuses NUL when
 * `no_nul`. Deliberately not shared with validate.c. */
static long utf8_count(const uint8_t *s, size_t n, bool no_nul)
{
    long count = 0;
    for (size_t i = 0; i < n; count++) {
        uint8_t c = s[i];
        uint32_t cp;
        size_t len;
        if (c < 0x80) {
            if (c == 0 && no_nul)
                return -1;
            i++;
            continue;
        } else if (c >= 0xc2 && c <= 0xdf) {
            len = 2, cp = c & 0x1fu;
        } else if (c >= 0xe0 && c <= 0xef) {
            len = 3, cp = c & 0x0fu;
        } else if (c >= 0xf0 && c <= 0xf4) {
            len = 4, cp = c & 0x07u;
        } else {
            return -1;
        }
        if (n - i < len)
            return -1;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return -1;
            cp = (cp << 6) | (s[i + k] & 0x3fu);
        }
        if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return -1;
        i += len;
    }
    return count;
}

static void check_value(const struct validate_field *f)
{
    if (!f->value) {
        check(!f->required, "an accepted body lacks a required field");
        return;
    }
    check(strlen(f->value) == f->len, "a value holds a NUL or its length is wrong");
    check(f->len <= f->max_bytes, "a value is longer than max_bytes");
    check(utf8_count((const uint8_t *)f->value, f->len, true) >= 0, "an accepted value is not UTF-8");
}

static void title(const char *in, size_t n)
{
    struct buf out, again;
    buf_init(&out, TITLE_MAX_BYTES * 2);   /* as api_notes.c does */
    buf_init(&again, TITLE_MAX_BYTES * 2);
    struct validate_errors errs = { 0 };
    int rc = validate_title(in, n, &out, "title", &errs);
    if (rc == 0) {
        check(errs.n == 0, "an accepted title recorded an error");
        long cps = utf8_count(out.data, out.len, true);
        check(cps >= 1 && cps <= VALIDATE_TITLE_MAX, "an accepted title is not 1..200 code points");
        check(validate_title((const char *)out.data, out.len, &again, "title", NULL) == 0 &&
                  again.len == out.len && memcmp(again.data, out.data, out.len) == 0,
              "NFC of an accepted title is not stable");
    } else {
        check(errs.n >= 1, "a refused title recorded no error");
        check(out.len == 0, "a refused title left output behind");
    }
    buf_cleanup_wipe(&out);
    buf_cleanup_wipe(&again);
}

static void content(const char *in, size_t n)
{
    struct validate_errors errs = { 0 };
    if (validate_content(in, n, "content", &errs) == 0)
        check(n <= VALIDATE_CONTENT_MAX && utf8_count((const uint8_t *)in, n, true) >= 0,
              "accepted content is too long or not UTF-8");
    else
        check(errs.n >= 1, "refused content recorded no error");
}

static void username(const char *in, size_t n)
{
    char out[VALIDATE_USERNAME_MAX + 1], again[VALIDATE_USERNAME_MAX + 1];
    if (validate_username(in, n, out, "username", NULL) != 0) {
        check(out[0] == 0, "a refused username left output behind");
        return;
    }
    size_t len = strlen(out);
    check(len == n && len >= VALIDATE_USERNAME_MIN && len <= VALIDATE_USERNAME_MAX,
          "an accepted username has the wrong length");
    check(strspn(out, "abcdefghijklmnopqrstuvwxyz0123456789_.-") == len,
          "an accepted username has a character outside [a-z0-9_.-]");
    check(validate_username(out, len, again, "username", NULL) == 0 && strcmp(out, again) == 0,
          "the canonical username is not canonical");
}

static void password(const char *in, size_t n)
{
    struct validate_errors errs = { 0 };
    if (validate_password(in, n, "password", &errs) == 0) {
        long cps = utf8_count((const uint8_t *)in, n, true);
        check(cps >= VALIDATE_PASSWORD_MIN && cps <= VALIDATE_PASSWORD_MAX,
              "an accepted password is not 12..128 code points of UTF-8");
    } else {
        check(errs.n >= 1, "a refused password recorded no error");
    }
}

static void body(struct slice b, struct validate_field *f, size_t n)
{
    struct validate_errors errs = { 0 };
    int rc = validate_json_object(b, f, n, &errs);
    if (rc == 0) {
        check(errs.n == 0, "an accepted body recorded an error");
        for (size_t i = 0; i < n; i++)
            check_value(&f[i]);
    } else {
        check(errs.n >= 1, "a refused body recorded no error");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct slice b = { data, size };

    struct validate_field note[] = {
        { .name = "title", .required = true, .max_bytes = TITLE_MAX_BYTES },
        { .name = "content", .required = true, .max_bytes = VALIDATE_CONTENT_MAX },
    };
    body(b, note, 2);
    if (note[0].value)
        title(note[0].value, note[0].len);
    if (note[1].value)
        content(note[1].value, note[1].len);
    validate_fields_free(note, 2);

    struct validate_field auth[] = {
        { .name = "username", .required = true, .max_bytes = USERNAME_MAX_BYTES },
        { .name = "password", .required = true, .max_bytes = PASSWORD_MAX_BYTES },
    };
    body(b, auth, 2);
    if (auth[0].value)
        username(auth[0].value, auth[0].len);
    if (auth[1].value)
        password(auth[1].value, auth[1].len);
    validate_fields_free(auth, 2);

    /* The raw bytes, as if they had been a decoded JSON string. */
    if (size <= TITLE_MAX_BYTES)
        title((const char *)data, size);
    content((const char *)data, size);
    if (size <= USERNAME_MAX_BYTES)
        username((const char *)data, size);
    if (size <= PASSWORD_MAX_BYTES)
        password((const char *)data, size);
    return 0;
}
