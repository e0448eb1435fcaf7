/*
 * Unit tests of the error list (validate_add) and of the strict JSON reader
 * in src/json.c: objects of strings only, duplicates, unknown fields, escapes,
 * UTF-8, nesting, the decoded-bytes limit, every bad field reported.
 * Helpers: validate_support.h.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "validate_support.h"

static bool has_error(const struct validate_errors *e, const char *field, const char *why)
{
    for (size_t i = 0; i < e->n; i++)
        if (strcmp(e->e[i].field, field) == 0 && strcmp(e->e[i].why, why) == 0)
            return true;
    return false;
}

/* The note body's two fields, reset for each parse. */
static void note_fields(struct validate_field f[2], size_t title_max)
{
    f[0] = (struct validate_field){ .name = "title", .required = true, .max_bytes = title_max };
    f[1] = (struct validate_field){ .name = "content", .required = false, .max_bytes = 65536 };
}

/* Parse n bytes from an exact-size heap copy: the body is not NUL-terminated,
 * so a read past its end is a bug a sanitizer build would catch. */
static int parse_n(const char *body, size_t n, struct validate_field *f, size_t nf,
                   struct validate_errors *e)
{
    char *copy = malloc(n ? n : 1);
    cr_assert_not_null(copy);
    memcpy(copy, body, n);
    int rc = validate_json_object((struct slice){ (const uint8_t *)copy, n }, f, nf, e);
    free(copy);
    return rc;
}

static int parse(const char *body, struct validate_field *f, size_t nf, struct validate_errors *e)
{
    return parse_n(body, strlen(body), f, nf, e);
}

/* Parse a note body that must be refused with exactly (field, why). */
static void expect_body_refused_n(const char *body, size_t n, const char *field, const char *why)
{
    struct validate_field f[2];
    struct validate_errors e = { 0 };
    note_fields(f, 4096);
    cr_assert_eq(parse_n(body, n, f, 2, &e), ERR_INVALID, "accepted: %s", body);
    expect_one(&e, field, why);
    validate_fields_free(f, 2);
}

static void expect_body_refused(const char *body, const char *field, const char *why)
{
    expect_body_refused_n(body, strlen(body), field, why);
}

/* ---- validate_add ------------------------------------------------------------ */

Test(validate, add_caps_at_max_errors)
{
    static const char *names[] = { "a", "b", "c", "d", "e", "f", "g", "h", "i", "j" };
    struct validate_errors e = { 0 };
    for (size_t i = 0; i < 10; i++)
        validate_add(&e, names[i], "is wrong");
    cr_assert_eq(e.n, VALIDATE_MAX_ERRORS);
    cr_assert_str_eq(e.e[VALIDATE_MAX_ERRORS - 1].field, "h");
}

Test(validate, add_drops_exact_repeat_only)
{
    struct validate_errors e = { 0 };
    validate_add(&e, "body", "has an unknown field");
    validate_add(&e, "body", "has an unknown field");
    validate_add(&e, "body", "has a duplicate field");
    cr_assert_eq(e.n, 2);
}

Test(validate, add_accepts_null_list)
{
    validate_add(NULL, "body", "has an unknown field");
    cr_assert_eq(validate_id(SLICE_LIT("0"), &(int64_t){ 0 }), ERR_INVALID);
    cr_assert_eq(validate_limit(SLICE_LIT("0"), &(int){ 0 }, NULL), ERR_INVALID);
}

/* ---- JSON bodies ------------------------------------------------------------- */

Test(validate, json_accepts_object_of_strings)
{
    struct validate_field f[2];
    struct validate_errors e = { 0 };
    note_fields(f, 4096);
    const char *body = " {\"title\" : \"caf\\u00e9 \\ud83d\\ude00\",\n"
                       "\t\"content\":\"a\\nb\\\"\\\\\\/\"}\r\n";
    cr_assert_eq(parse(body, f, 2, &e), 0);
    cr_assert_eq(e.n, 0);
    cr_assert_str_eq(f[0].value, "caf\xc3\xa9 \xf0\x9f\x98\x80");
    cr_assert_eq(f[0].len, 10);
    cr_assert_str_eq(f[1].value, "a\nb\"\\/");
    cr_assert_eq(f[1].len, 6);
    validate_fields_free(f, 2);
    cr_assert_null(f[0].value);
    cr_assert_eq(f[0].len, 0);
}

Test(validate, json_accepts_missing_optional_and_empty_string)
{
    struct validate_field f[2];
    struct validate_errors e = { 0 };
    note_fields(f, 4096);
    cr_assert_eq(parse("{\"title\":\"\"}", f, 2, &e), 0);
    cr_assert_str_eq(f[0].value, "");
    cr_assert_null(f[1].value);
    validate_fields_free(f, 2);
}

Test(validate, json_accepts_backslash_u_text_that_is_not_an_escape)
{
    struct validate_field f[2];
    struct validate_errors e = { 0 };
    note_fields(f, 4096);
    cr_assert_eq(parse("{\"title\":\"\\\\u0000\"}", f, 2, &e), 0);
    cr_assert_str_eq(f[0].value, "\\u0000");
    validate_fields_free(f, 2);
}

Test(validate, json_rejects_what_is_not_an_object)
{
    static const char *bodies[] = { "", " ", "[]", "[{\"title\":\"a\"}]", "\"title\"", "1", "null",
                                    "true", "{", "}", "{\"title\"}", "{\"title\":\"a\",}",
                                    "{'title':'a'}", "{title:\"a\"}", "{\"title\":\"a\"" };
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++)
        expect_body_refused(bodies[i], "body", "must be a JSON object");
}

Test(validate, json_rejects_trailing_garbage)
{
    expect_body_refused("{\"title\":\"a\"}x", "body", "must be a JSON object");
    expect_body_refused("{\"title\":\"a\"} {}", "body", "must be a JSON object");
    expect_body_refused("{\"title\":\"a\"},", "body", "must be a JSON object");
    /* cJSON stops at a NUL; the body goes on past it. */
    expect_body_refused_n("{\"title\":\"a\"}\0{}", 15, "body", "must be a JSON object");
    expect_body_refused_n("{\"title\":\"a\"}\0", 14, "body", "must be a JSON object");
}

Test(validate, json_rejects_non_json_whitespace_and_bom)
{
    expect_body_refused("\xef\xbb\xbf{\"title\":\"a\"}", "body", "must be a JSON object");
    expect_body_refused("{\"title\":\x0b\"a\"}", "body", "must be a JSON object");
    expect_body_refused("\x01{\"title\":\"a\"}", "body", "must be a JSON object");
    expect_body_refused("{\"title\":\"a\"}\x7f", "body", "must be a JSON object");
}

Test(validate, json_rejects_duplicate_keys)
{
    expect_body_refused("{\"title\":\"a\",\"title\":\"a\"}", "body", "has a duplicate field");
    /* The same name spelled with an escape is the same member. */
    expect_body_refused("{\"title\":\"a\",\"t\\u0069tle\":\"b\"}", "body", "has a duplicate field");
}

Test(validate, json_rejects_unknown_field_without_echoing_it)
{
    struct validate_field f[2];
    struct validate_errors e = { 0 };
    note_fields(f, 4096);
    cr_assert_eq(parse("{\"title\":\"a\",\"<script>\":\"x\",\"zz\":\"y\"}", f, 2, &e), ERR_INVALID);
    expect_one(&e, "body", "has an unknown field");
    validate_fields_free(f, 2);
    /* A prefix or a different case of a known name is unknown too. */
    expect_body_refused("{\"title\":\"a\",\"Content\":\"b\"}", "body", "has an unknown field");
    expect_body_refused("{\"title\":\"a\",\"conten\":\"b\"}", "body", "has an unknown field");
}

Test(validate, json_rejects_non_string_values)
{
    static const char *bodies[] = { "{\"title\":1}", "{\"title\":-0.5e3}", "{\"title\":null}",
                                    "{\"title\":true}", "{\"title\":false}", "{\"title\":[]}",
                                    "{\"title\":[\"a\"]}", "{\"title\":{}}",
                                    "{\"title\":{\"title\":\"a\"}}" };
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++)
        expect_body_refused(bodies[i], "title", "must be a string");
}

Test(validate, json_rejects_deep_nesting_as_not_a_string)
{
    char *open = rep("[", 500), *close = rep("]", 500);
    size_t n = strlen(open) * 2 + 32;
    char *body = malloc(n);
    cr_assert_not_null(body);
    snprintf(body, n, "{\"title\":%s%s}", open, close);
    expect_body_refused(body, "title", "must be a string");
    free(open);
    free(close);
    free(body);
}

Test(validate, json_rejects_nul_escape)
{
    expect_body_refused("{\"title\":\"a\\u0000b\"}", "body", "must be a JSON object");
    expect_body_refused("{\"title\\u0000x\":\"a\"}", "body", "must be a JSON object");
}

Test(validate, json_rejects_malformed_escapes)
{
    /* cJSON alone decodes "\u00zz" to a NUL. */
    expect_body_refused("{\"title\":\"a\\u00zzb\"}", "body", "must be a JSON object");
    expect_body_refused("{\"title\":\"a\\u12\"}", "body", "must be a JSON object");
    expect_body_refused("{\"title\":\"a\\x41\"}", "body", "must be a JSON object");
    expect_body_refused("{\"title\":\"a\\\"}", "body", "must be a JSON object");
}

Test(validate, json_rejects_lone_surrogate_escapes)
{
    expect_body_refused("{\"title\":\"\\ud800\"}", "body", "must be a JSON object");
    expect_body_refused("{\"title\":\"\\udc00\"}", "body", "must be a JSON object");
    expect_body_refused("{\"title\":\"\\ud800x\"}", "body", "must be a JSON object");
    expect_body_refused("{\"title\":\"\\ud800\\u0041\"}", "body", "must be a JSON object");
    expect_body_refused("{\"title\":\"\\udbff\\udbff\"}", "body", "must be a JSON object");
}

Test(validate, json_rejects_raw_control_bytes_in_strings)
{
    expect_body_refused("{\"title\":\"a\x01z\"}", "body", "must be a JSON object");
    expect_body_refused("{\"title\":\"a\nz\"}", "body", "must be a JSON object");
    expect_body_refused_n("{\"title\":\"a\0z\"}", 15, "body", "must be a JSON object");
}

Test(validate, json_rejects_invalid_utf8_values)
{
    static const char *bad[] = {
        "\xc0\x80",         /* overlong NUL */
        "\xc1\xbf",         /* overlong 0x7F */
        "\xe0\x80\x80",     /* overlong 3-byte */
        "\xf0\x80\x80\x80", /* overlong 4-byte */
        "\xed\xa0\x80",     /* UTF-16 surrogate D800 encoded in UTF-8 */
        "\xed\xbf\xbf",     /* DFFF */
        "\xf4\x90\x80\x80", /* U+110000 */
        "\xc3\x28",         /* invalid continuation */
        "\x80",             /* stray continuation */
        "\xe2\x82",         /* truncated */
        "\xff",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char body[64];
        snprintf(body, sizeof(body), "{\"title\":\"a%sb\"}", bad[i]);
        expect_body_refused(body, "title", "is not valid UTF-8");
    }
}

Test(validate, json_rejects_invalid_utf8_names)
{
    expect_body_refused("{\"title\":\"a\",\"\xc0\x80\":\"b\"}", "body", "is not valid UTF-8");
    expect_body_refused("{\"title\":\"a\",\"\xed\xa0\x80\":\"b\"}", "body", "is not valid UTF-8");
}

Test(validate, json_rejects_missing_required)
{
    expect_body_refused("{}", "title", "is required");
    expect_body_refused("{\"content\":\"x\"}", "title", "is required");
}

Test(validate, json_limits_decoded_bytes)
{
    struct validate_field f[2];
    struct validate_errors e = { 0 };
    /* "\u00e9" is six bytes of JSON but two decoded bytes. */
    note_fields(f, 4);
    cr_assert_eq(parse("{\"title\":\"\\u00e9\\u00e9\"}", f, 2, &e), 0);
    cr_assert_eq(f[0].len, 4);
    validate_fields_free(f, 2);
    note_fields(f, 4);
    cr_assert_eq(parse("{\"title\":\"\\u00e9\\u00e9x\"}", f, 2, &e), ERR_INVALID);
    expect_one(&e, "title", "is too long");
    cr_assert_null(f[0].value);
    validate_fields_free(f, 2);
}

Test(validate, json_reports_every_bad_field)
{
    struct validate_field f[2];
    struct validate_errors e = { 0 };
    note_fields(f, 4096);
    f[1].required = true;
    cr_assert_eq(parse("{\"title\":1,\"x\":\"y\"}", f, 2, &e), ERR_INVALID);
    cr_assert_eq(e.n, 3);
    cr_assert(has_error(&e, "title", "must be a string"));
    cr_assert(has_error(&e, "body", "has an unknown field"));
    cr_assert(has_error(&e, "content", "is required"));
    validate_fields_free(f, 2);
}

Test(validate, json_resets_values_before_parsing)
{
    struct validate_field f[2];
    struct validate_errors e = { 0 };
    note_fields(f, 4096);
    f[0].value = (char *)"stale";
    f[0].len = 5;
    f[1].value = (char *)"stale";
    cr_assert_eq(parse("[]", f, 2, &e), ERR_INVALID);
    cr_assert_null(f[0].value);
    cr_assert_eq(f[0].len, 0);
    cr_assert_null(f[1].value);
}

Test(validate, json_refuses_more_fields_than_it_tracks)
{
    struct validate_field f[65];
    struct validate_errors e = { 0 };
    for (size_t i = 0; i < 65; i++)
        f[i] = (struct validate_field){ .name = "x", .max_bytes = 1 };
    cr_assert_eq(parse("{}", f, 65, &e), ERR_INTERNAL);
    expect_one(&e, "body", "could not be processed");   /* fails closed for errs->n callers */
    e.n = 0;
    cr_assert_eq(parse("{}", f, 64, &e), 0);
    cr_assert_eq(e.n, 0);
}

static int count_cb(void *arg, const struct json_member *m)
{
    int *n = arg;
    (*n)++;
    return strcmp(m->name, "stop") == 0 ? ERR_LIMIT : 0;
}

Test(validate, json_object_each_walks_in_order_and_stops)
{
    int n = 0;
    cr_assert_eq(json_object_each(SLICE_LIT("{\"a\":1,\"a\":[],\"b\":\"c\"}"), count_cb, &n), 0);
    cr_assert_eq(n, 3);
    n = 0;
    cr_assert_eq(json_object_each(SLICE_LIT("{\"a\":1,\"stop\":2,\"b\":3}"), count_cb, &n), ERR_LIMIT);
    cr_assert_eq(n, 2);
}
