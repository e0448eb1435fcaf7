/*
 * test_validate.c - the edges of every validator in src/validate.c and
 * src/validate_head.c and of the strict JSON reader in src/json.c: each
 * limit at min-1, min, max and max+1, each refused byte sequence, and each
 * fixed `why` phrase.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "json.h"
#include "validate.h"

extern const char *const common_passwords[];
extern const size_t common_passwords_count;

/* ---- helpers ----------------------------------------------------------------- */

/* `unit` repeated `times` times, NUL-terminated; caller frees. */
static char *rep(const char *unit, size_t times)
{
    size_t u = strlen(unit);
    char *s = malloc(u * times + 1);
    cr_assert_not_null(s);
    for (size_t i = 0; i < times; i++)
        memcpy(s + i * u, unit, u);
    s[u * times] = '\0';
    return s;
}

static void expect_one(const struct validate_errors *e, const char *field, const char *why)
{
    cr_assert_eq(e->n, 1, "expected one error (%s %s), got %zu", field, why, e->n);
    cr_assert_str_eq(e->e[0].field, field);
    cr_assert_str_eq(e->e[0].why, why);
}

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

static int title(const char *s, struct buf *out, struct validate_errors *e)
{
    return validate_title(s, strlen(s), out, "title", e);
}

static void expect_title_refused(const char *s, const char *why)
{
    struct buf out;
    struct validate_errors e = { 0 };
    buf_init(&out, 8192);
    cr_assert_eq(title(s, &out, &e), ERR_INVALID, "accepted title %s", s);
    expect_one(&e, "title", why);
    cr_assert_eq(out.len, 0);
    buf_cleanup(&out);
}

static void expect_title_ok(const char *s, const char *nfc)
{
    struct buf out;
    struct validate_errors e = { 0 };
    buf_init(&out, 8192);
    cr_assert_eq(title(s, &out, &e), 0, "refused title %s: %s", s, e.n ? e.e[0].why : "");
    cr_assert_eq(e.n, 0);
    cr_assert_eq(out.len, strlen(nfc));
    cr_assert_eq(memcmp(out.data, nfc, out.len), 0);
    buf_cleanup(&out);
}

static int password(const char *s, struct validate_errors *e)
{
    return validate_password(s, strlen(s), "password", e);
}

static void expect_password_refused_n(const char *s, size_t n, const char *why)
{
    struct validate_errors e = { 0 };
    cr_assert_eq(validate_password(s, n, "password", &e), ERR_INVALID, "accepted %s", s);
    expect_one(&e, "password", why);
}

static void expect_password_refused(const char *s, const char *why)
{
    expect_password_refused_n(s, strlen(s), why);
}

static void expect_content_refused_n(const char *s, size_t n, const char *why)
{
    struct validate_errors e = { 0 };
    cr_assert_eq(validate_content(s, n, "content", &e), ERR_INVALID);
    expect_one(&e, "content", why);
}

static int id_of(const char *s, int64_t *out)
{
    return validate_id(slice_str(s), out);
}

static int query(const char *q, struct validate_param p[2], struct validate_errors *e)
{
    p[0] = (struct validate_param){ .name = "limit" };
    p[1] = (struct validate_param){ .name = "cursor" };
    return validate_query(slice_str(q), p, 2, e);
}

static void expect_query_refused(const char *q, const char *field, const char *why)
{
    struct validate_param p[2];
    struct validate_errors e = { 0 };
    cr_assert_eq(query(q, p, &e), ERR_INVALID, "accepted query %s", q);
    expect_one(&e, field, why);
}

static int cursor(const char *s, int64_t *out)
{
    struct validate_errors e = { 0 };
    int rc = validate_cursor(slice_str(s), out, &e);
    if (rc)
        expect_one(&e, "cursor", "is not a valid cursor");
    else
        cr_assert_eq(e.n, 0);
    return rc;
}

#define TOKEN_BODY "nt_ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklm-_01"   /* 46 */

static int bearer_n(const char *v, size_t n, char token[VALIDATE_TOKEN_LEN + 1])
{
    return validate_bearer((struct slice){ (const uint8_t *)v, n }, token);
}

static void expect_bearer_refused(const char *v)
{
    char token[VALIDATE_TOKEN_LEN + 1];
    memset(token, 'x', sizeof(token));
    cr_assert_eq(bearer_n(v, strlen(v), token), ERR_INVALID, "accepted %s", v);
    cr_assert_str_eq(token, "");
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

/* ---- username ---------------------------------------------------------------- */

Test(validate, username_accepts_edges)
{
    char out[VALIDATE_USERNAME_MAX + 1];
    char *max = rep("a", 32);
    cr_assert_eq(validate_username("abc", 3, out, "username", NULL), 0);
    cr_assert_str_eq(out, "abc");
    cr_assert_eq(validate_username(max, 32, out, "username", NULL), 0);
    cr_assert_str_eq(out, max);
    cr_assert_eq(validate_username("a.b_c-9", 7, out, "username", NULL), 0);
    free(max);
}

Test(validate, username_canonicalises_case_first)
{
    char out[VALIDATE_USERNAME_MAX + 1];
    cr_assert_eq(validate_username("AlIcE_1", 7, out, "username", NULL), 0);
    cr_assert_str_eq(out, "alice_1");
}

Test(validate, username_rejects_lengths)
{
    char out[VALIDATE_USERNAME_MAX + 1];
    struct validate_errors e = { 0 };
    char *over = rep("a", 33);
    cr_assert_eq(validate_username("ab", 2, out, "username", &e), ERR_INVALID);
    expect_one(&e, "username", "must be 3 to 32 characters of a-z, 0-9, _ . -");
    cr_assert_str_eq(out, "");
    cr_assert_eq(validate_username(over, 33, out, "username", NULL), ERR_INVALID);
    cr_assert_eq(validate_username("", 0, out, "username", NULL), ERR_INVALID);
    cr_assert_eq(validate_username(NULL, 0, out, "username", NULL), ERR_INVALID);
    free(over);
}

Test(validate, username_rejects_other_characters)
{
    static const char *bad[] = { "ab c", "ab@c", "ab+c", "ab/c", "abc\n", "ab\xc3\xa9", "\xe2\x84\xaa" "ab",
                                 "ab\x7f" };
    char out[VALIDATE_USERNAME_MAX + 1];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(out, 'x', sizeof(out));
        cr_assert_eq(validate_username(bad[i], strlen(bad[i]), out, "username", NULL), ERR_INVALID,
                     "accepted %s", bad[i]);
        cr_assert_str_eq(out, "");
    }
    cr_assert_eq(validate_username("ab\0c", 4, out, "username", NULL), ERR_INVALID);
}

/* ---- password ---------------------------------------------------------------- */

Test(validate, password_accepts_min_and_max)
{
    char *max = rep("Zq8#vT2!", 16);
    cr_assert_eq(password("Zq8#vT2!mP4w", NULL), 0);
    cr_assert_eq(password("correct horse battery", NULL), 0);
    cr_assert_eq(strlen(max), 128);
    cr_assert_eq(password(max, NULL), 0);
    free(max);
}

Test(validate, password_rejects_min_minus_one_and_max_plus_one)
{
    char *over = rep("Zq8#vT2!", 16);
    size_t n = strlen(over);
    char *longer = malloc(n + 2);
    cr_assert_not_null(longer);
    memcpy(longer, over, n);
    memcpy(longer + n, "x", 2);
    expect_password_refused("Zq8#vT2!mP4", "must be 12 to 128 characters");
    expect_password_refused(longer, "must be 12 to 128 characters");
    expect_password_refused("", "must be 12 to 128 characters");
    free(over);
    free(longer);
}

Test(validate, password_counts_code_points_not_bytes)
{
    char *e12 = rep("\xc3\xa9", 12), *e11 = rep("\xc3\xa9", 11);
    char *euro128 = rep("\xe2\x82\xac", 128), *euro129 = rep("\xe2\x82\xac", 129);
    char *smile12 = rep("\xf0\x9f\x98\x80", 12), *smile11 = rep("\xf0\x9f\x98\x80", 11);
    cr_assert_eq(password(e12, NULL), 0);
    expect_password_refused(e11, "must be 12 to 128 characters");   /* 22 bytes */
    cr_assert_eq(password(euro128, NULL), 0);                        /* 384 bytes */
    expect_password_refused(euro129, "must be 12 to 128 characters");
    cr_assert_eq(password(smile12, NULL), 0);
    expect_password_refused(smile11, "must be 12 to 128 characters");
    free(e12), free(e11), free(euro128), free(euro129), free(smile12), free(smile11);
}

Test(validate, password_rejects_control_characters)
{
    expect_password_refused("Zq8#vT2!mP4w\t", "contains control characters");
    expect_password_refused("Zq8#vT2!\nmP4w", "contains control characters");
    expect_password_refused("Zq8#vT2!\rmP4w", "contains control characters");
    expect_password_refused("Zq8#vT2!\x7fmP4w", "contains control characters");
    expect_password_refused("Zq8#vT2!\xc2\x85mP4w", "contains control characters");   /* NEL, C1 */
    expect_password_refused("Zq8#vT2!\xc2\x9fmP4w", "contains control characters");
    expect_password_refused_n("Zq8#vT2!\0mP4w", 13, "contains control characters");
    cr_assert_eq(password("Zq8#vT2!\xc2\xa0mP4w", NULL), 0);   /* NBSP is not a control */
}

Test(validate, password_rejects_invalid_utf8)
{
    expect_password_refused("Zq8#vT2!mP4w\xc0\x80", "is not valid UTF-8");
    expect_password_refused("Zq8#vT2!mP4w\xe0\x80\x80", "is not valid UTF-8");
    expect_password_refused("Zq8#vT2!mP4w\xed\xa0\x80", "is not valid UTF-8");
    expect_password_refused("Zq8#vT2!mP4w\xc3", "is not valid UTF-8");
    expect_password_refused("Zq8#vT2!mP4w\xc3\x28", "is not valid UTF-8");
}

Test(validate, password_rejects_common_long_entries_case_insensitively)
{
    expect_password_refused("1qaz2wsx3edc", "is too common");            /* 12, in the list */
    expect_password_refused("1QAZ2wsx3EDC", "is too common");
    expect_password_refused("1qaz2wsx3edc4rfv", "is too common");        /* 16 */
    expect_password_refused("59382113KEVINP", "is too common");
    /* KELVIN SIGN lower-cases to 'k'. */
    expect_password_refused("59382113\xe2\x84\xaa" "evinp", "is too common");
    cr_assert_eq(password("1qaz2wsx3edc5", NULL), 0);                     /* a neighbour that is not */
    cr_assert_eq(password("1qaz2wsx3ed", NULL), ERR_INVALID);             /* too short, not common */
}

Test(validate, password_list_is_sorted_lower_case_ascii)
{
    /* The binary search is only right if this holds. */
    cr_assert_eq(common_passwords_count, 29999);
    for (size_t i = 0; i < common_passwords_count; i++) {
        for (const char *p = common_passwords[i]; *p; p++)
            cr_assert((*p > 0x20 && *p < 0x7f) && !(*p >= 'A' && *p <= 'Z'), "entry %zu", i);
        if (i)
            cr_assert_lt(strcmp(common_passwords[i - 1], common_passwords[i]), 0, "entry %zu", i);
    }
}

Test(validate, password_common_check_finds_every_long_entry)
{
    /* The list edges are too short to reach the search; every entry of 12+ must be found. */
    const char *first = common_passwords[0], *last = common_passwords[common_passwords_count - 1];
    cr_assert_lt(strlen(first), 12);   /* too short: refused for its length first */
    expect_password_refused(first, "must be 12 to 128 characters");
    expect_password_refused(last, "must be 12 to 128 characters");
    size_t found = 0;
    for (size_t i = 0; i < common_passwords_count; i++) {
        if (strlen(common_passwords[i]) < 12)
            continue;
        struct validate_errors e = { 0 };
        cr_assert_eq(password(common_passwords[i], &e), ERR_INVALID, "missed %s", common_passwords[i]);
        expect_one(&e, "password", "is too common");
        found++;
    }
    cr_assert_gt(found, 100);
}

/* ---- title ------------------------------------------------------------------- */

Test(validate, title_accepts_lengths_one_and_two_hundred)
{
    char *max = rep("a", 200), *cjk = rep("\xe7\xac\x94", 200), *emoji = rep("\xf0\x9f\x98\x80", 200);
    expect_title_ok("a", "a");
    expect_title_ok(max, max);
    expect_title_ok(cjk, cjk);       /* 600 bytes */
    expect_title_ok(emoji, emoji);   /* 800 bytes */
    free(max), free(cjk), free(emoji);
}

Test(validate, title_rejects_empty_and_two_hundred_one)
{
    char *over = rep("a", 201), *cjk = rep("\xe7\xac\x94", 201), *huge = rep("a", 5000);
    expect_title_refused("", "must be 1 to 200 characters");
    expect_title_refused(over, "must be 1 to 200 characters");
    expect_title_refused(cjk, "must be 1 to 200 characters");
    expect_title_refused(huge, "must be 1 to 200 characters");
    free(over), free(cjk), free(huge);
}

Test(validate, title_normalises_to_nfc)
{
    expect_title_ok("e\xcc\x81", "\xc3\xa9");                  /* e + U+0301 -> é */
    expect_title_ok("Cafe\xcc\x81 ok", "Caf\xc3\xa9 ok");
    expect_title_ok("\xe1\x84\x92\xe1\x85\xa1\xe1\x86\xab", "\xed\x95\x9c");   /* jamo -> 한 */
    expect_title_ok("\xe2\x84\xab", "\xc3\x85");                /* ANGSTROM SIGN -> Å */
    expect_title_ok("\xc3\xa9", "\xc3\xa9");
}

Test(validate, title_counts_code_points_after_nfc)
{
    char *decomposed200 = rep("e\xcc\x81", 200), *nfc200 = rep("\xc3\xa9", 200);
    char *decomposed201 = rep("e\xcc\x81", 201);
    expect_title_ok(decomposed200, nfc200);   /* 400 code points in, 200 out */
    expect_title_refused(decomposed201, "must be 1 to 200 characters");
    free(decomposed200), free(nfc200), free(decomposed201);
}

Test(validate, title_counts_four_code_points_composing_into_one)
{
    /* alpha + psili + varia + ypogegrammeni -> U+1F82: the densest NFC
     * composition, so 800 code points in may still be a 200-character title. */
    char *in = rep("\xce\xb1\xcc\x93\xcc\x80\xcd\x85", 200), *nfc = rep("\xe1\xbe\x82", 200);
    char *over = rep("\xce\xb1\xcc\x93\xcc\x80\xcd\x85", 201);
    expect_title_ok(in, nfc);
    expect_title_refused(over, "must be 1 to 200 characters");
    free(in), free(nfc), free(over);
}

Test(validate, title_rejects_format_characters)
{
    expect_title_refused("a\xe2\x80\x8d" "b", "contains characters that are not allowed");   /* ZWJ */
    expect_title_refused("a\xe2\x80\x8b" "b", "contains characters that are not allowed");   /* ZWSP */
    expect_title_refused("a\xe2\x80\xae" "b", "contains characters that are not allowed");   /* RLO */
    expect_title_refused("a\xef\xbb\xbf" "b", "contains characters that are not allowed");   /* BOM */
    expect_title_refused("a\xc2\xad" "b", "contains characters that are not allowed");       /* SHY */
    expect_title_refused("a\xf3\xa0\x80\x81" "b", "contains characters that are not allowed"); /* TAG */
}

Test(validate, title_rejects_controls_and_separators)
{
    static const char *bad[] = { "a\tb", "a\nb", "a\rb", "a\x7f" "b", "a\xc2\x85" "b",
                                 "a\xe2\x80\xa8" "b", "a\xe2\x80\xa9" "b" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_title_refused(bad[i], "contains characters that are not allowed");
    struct buf out;
    struct validate_errors e = { 0 };
    buf_init(&out, 64);
    cr_assert_eq(validate_title("a\0b", 3, &out, "title", &e), ERR_INVALID);
    expect_one(&e, "title", "contains characters that are not allowed");
    buf_cleanup(&out);
}

Test(validate, title_rejects_private_use_and_unassigned)
{
    expect_title_refused("a\xee\x80\x80", "contains characters that are not allowed");       /* U+E000 */
    expect_title_refused("a\xf3\xb0\x80\x80", "contains characters that are not allowed");   /* U+F0000 */
    expect_title_refused("a\xcd\xb8", "contains characters that are not allowed");           /* U+0378 */
    expect_title_refused("a\xf4\x8f\xbf\xbf", "contains characters that are not allowed");   /* U+10FFFF */
}

Test(validate, title_rejects_leading_and_trailing_space)
{
    expect_title_refused(" a", "must not start or end with a space");
    expect_title_refused("a ", "must not start or end with a space");
    expect_title_refused(" ", "must not start or end with a space");
    expect_title_refused("\xc2\xa0" "a", "must not start or end with a space");       /* NBSP */
    expect_title_refused("a\xe3\x80\x80", "must not start or end with a space");      /* U+3000 */
    expect_title_ok("a b", "a b");
    expect_title_ok("a\xc2\xa0" "b", "a\xc2\xa0" "b");
}

Test(validate, title_rejects_leading_combining_mark)
{
    expect_title_refused("\xcc\x81" "a", "must not start with a combining mark");
    expect_title_ok("a\xcc\x81\xcc\x81", "\xc3\xa1\xcc\x81");   /* marks after a base are fine */
}

Test(validate, title_accepts_emoji_cjk_and_symbols)
{
    expect_title_ok("\xf0\x9f\x98\x80 \xe7\xac\x94\xe8\xae\xb0", "\xf0\x9f\x98\x80 \xe7\xac\x94\xe8\xae\xb0");
    expect_title_ok("\xe2\x9d\xa4\xef\xb8\x8f", "\xe2\x9d\xa4\xef\xb8\x8f");   /* ❤ + VS16 */
    expect_title_ok("Q3: 50% (draft) \xe2\x82\xac!", "Q3: 50% (draft) \xe2\x82\xac!");
    expect_title_ok("\xd9\x85\xd8\xb1\xd8\xad\xd8\xa8\xd8\xa7", "\xd9\x85\xd8\xb1\xd8\xad\xd8\xa8\xd8\xa7");
}

Test(validate, title_rejects_invalid_utf8)
{
    static const char *bad[] = { "a\xc0\x80", "a\xe0\x80\x80", "a\xed\xa0\x80", "a\xc3\x28",
                                 "a\xe2\x82", "a\x80", "a\xf4\x90\x80\x80" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_title_refused(bad[i], "is not valid UTF-8");
}

Test(validate, title_replaces_previous_output)
{
    struct buf out;
    struct validate_errors e = { 0 };
    buf_init(&out, 64);
    cr_assert_eq(buf_append(&out, "old", 3), 0);
    cr_assert_eq(title("new", &out, &e), 0);
    cr_assert_eq(out.len, 3);
    cr_assert_eq(memcmp(out.data, "new", 3), 0);
    cr_assert_eq(title(" bad", &out, &e), ERR_INVALID);
    cr_assert_eq(out.len, 0);
    buf_cleanup(&out);
}

Test(validate, title_fails_closed_when_output_is_too_small)
{
    struct buf out;
    struct validate_errors e = { 0 };
    buf_init(&out, 2);
    cr_assert_neq(title("abc", &out, &e), 0);
    cr_assert_eq(e.n, 1);
    buf_cleanup(&out);
}

/* ---- content ----------------------------------------------------------------- */

Test(validate, content_accepts_up_to_65536_bytes)
{
    char *max = rep("a", 65536), *euro = rep("\xe2\x82\xac", 21845);   /* 65535 bytes */
    cr_assert_eq(validate_content(max, 65536, "content", NULL), 0);
    cr_assert_eq(validate_content(euro, strlen(euro), "content", NULL), 0);
    cr_assert_eq(validate_content("", 0, "content", NULL), 0);
    free(max), free(euro);
}

Test(validate, content_rejects_65537_bytes)
{
    char *over = rep("a", 65537);
    expect_content_refused_n(over, 65537, "must be at most 65536 bytes");
    free(over);
}

Test(validate, content_allows_tab_lf_cr_only)
{
    cr_assert_eq(validate_content("a\tb\nc\r\n", 7, "content", NULL), 0);
    cr_assert_eq(validate_content("\xc2\xa0\xe2\x80\x8b", 5, "content", NULL), 0);   /* U+00A0, U+200B */
    expect_content_refused_n("a\0b", 3, "contains control characters");
    expect_content_refused_n("a\x01" "b", 3, "contains control characters");
    expect_content_refused_n("a\x1b[31m", 7, "contains control characters");
    expect_content_refused_n("a\x0b", 2, "contains control characters");
    expect_content_refused_n("a\x7f", 2, "contains control characters");
    expect_content_refused_n("a\xc2\x80", 3, "contains control characters");
    expect_content_refused_n("a\xc2\x9f", 3, "contains control characters");
}

Test(validate, content_rejects_invalid_utf8)
{
    static const char *bad[] = { "\xc0\x80", "\xc1\x81", "\xe0\x80\x80", "\xe0\x9f\xbf", "\xf0\x8f\xbf\xbf",
                                 "\xed\xa0\x80", "\xed\xbf\xbf", "\xf4\x90\x80\x80", "\xf5\x80\x80\x80",
                                 "\xc3\x28", "\xe2\x28\xa1", "\x80", "\xbf", "\xe2\x82", "\xfe", "\xff" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char s[16];
        int n = snprintf(s, sizeof(s), "ok%s", bad[i]);
        expect_content_refused_n(s, (size_t)n, "is not valid UTF-8");
    }
    /* The largest code points of each length are fine. */
    const char *top = "\xdf\xbf\xef\xbf\xbf\xf4\x8f\xbf\xbf\xee\x80\x80";   /* U+07FF U+FFFF U+10FFFF U+E000 */
    cr_assert_eq(validate_content(top, 12, "content", NULL), 0);
}

/* ---- ids --------------------------------------------------------------------- */

Test(validate, id_accepts_edges)
{
    int64_t v = 0;
    cr_assert_eq(id_of("1", &v), 0);
    cr_assert_eq(v, 1);
    cr_assert_eq(id_of("42", &v), 0);
    cr_assert_eq(v, 42);
    cr_assert_eq(id_of("9223372036854775807", &v), 0);
    cr_assert_eq(v, INT64_MAX);
}

Test(validate, id_rejects_malformed_and_out_of_range)
{
    static const char *bad[] = { "", "0", "00", "01", "-1", "+1", " 1", "1 ", "1a", "a", "0x1", "1.0",
                                 "9223372036854775808", "18446744073709551615", "18446744073709551616",
                                 "99999999999999999999", "100000000000000000000", "\xd9\xa1" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int64_t v = 77;
        cr_assert_eq(id_of(bad[i], &v), ERR_INVALID, "accepted %s", bad[i]);
        cr_assert_eq(v, 77);
    }
    int64_t v = 77;
    cr_assert_eq(validate_id((struct slice){ NULL, 0 }, &v), ERR_INVALID);
    cr_assert_eq(validate_id((struct slice){ (const uint8_t *)"12", 1 }, &v), 0);   /* length honoured */
    cr_assert_eq(v, 1);
}

/* ---- query strings ----------------------------------------------------------- */

Test(validate, query_accepts_empty)
{
    struct validate_param p[2];
    struct validate_errors e = { 0 };
    p[0] = (struct validate_param){ .name = "limit", .present = true, .value = SLICE_LIT("x") };
    cr_assert_eq(validate_query((struct slice){ NULL, 0 }, p, 1, &e), 0);
    cr_assert(!p[0].present);
    cr_assert_eq(p[0].value.len, 0);
    cr_assert_eq(query("", p, &e), 0);
    cr_assert(!p[0].present && !p[1].present);
    cr_assert_eq(e.n, 0);
}

Test(validate, query_splits_known_parameters)
{
    struct validate_param p[2];
    struct validate_errors e = { 0 };
    cr_assert_eq(query("cursor=AAAAAAAAAAE&limit=5", p, &e), 0);
    cr_assert(p[0].present && p[1].present);
    cr_assert(slice_eq(p[0].value, SLICE_LIT("5")));
    cr_assert(slice_eq(p[1].value, SLICE_LIT("AAAAAAAAAAE")));
    cr_assert_eq(query("limit=", p, &e), 0);   /* present and empty: limit's own check refuses it */
    cr_assert(p[0].present && p[0].value.len == 0 && !p[1].present);
    cr_assert_eq(e.n, 0);
}

Test(validate, query_rejects_unknown_and_repeated)
{
    expect_query_refused("a=1", "query", "has an unknown parameter");
    expect_query_refused("limit=1&evil=2", "query", "has an unknown parameter");
    expect_query_refused("Limit=1", "query", "has an unknown parameter");
    expect_query_refused("=1", "query", "has an unknown parameter");
    expect_query_refused("limit=1&limit=2", "limit", "must not be repeated");
    expect_query_refused("limit=1&cursor=x&limit=1", "limit", "must not be repeated");
}

Test(validate, query_rejects_malformed)
{
    static const char *bad[] = { "a", "limit", "a=1&&b=2", "limit=1&&cursor=2", "limit=1&", "&limit=1", "&",
                                 "limit=%31", "limit=1+1", "limit=1%", "limit=1#x", "limit=1 ",
                                 "limit=1=2", "limit=\xc3\xa9", "limit=1\x7f", "limit=1;cursor=2x" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct validate_param p[2];
        struct validate_errors e = { 0 };
        cr_assert_eq(query(bad[i], p, &e), ERR_INVALID, "accepted query %s", bad[i]);
        cr_assert_eq(e.n, 1);
    }
    expect_query_refused("limit=1&&cursor=2", "query", "is malformed");
    expect_query_refused("limit=%31", "query", "is malformed");
    expect_query_refused("limit=1+1", "query", "is malformed");
}

/* ---- limit ------------------------------------------------------------------- */

Test(validate, limit_accepts_one_to_hundred)
{
    int v = 0;
    cr_assert_eq(validate_limit(SLICE_LIT("1"), &v, NULL), 0);
    cr_assert_eq(v, 1);
    cr_assert_eq(validate_limit(SLICE_LIT("100"), &v, NULL), 0);
    cr_assert_eq(v, 100);
    cr_assert_eq(validate_limit(SLICE_LIT("99"), &v, NULL), 0);
    cr_assert_eq(v, 99);
}

Test(validate, limit_rejects_strictly)
{
    static const char *bad[] = { "0", "101", "010", "01", "", "-1", "+1", "1a", " 1", "1000",
                                 "99999999999999999999", "1e2" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int v = 7;
        struct validate_errors e = { 0 };
        cr_assert_eq(validate_limit(slice_str(bad[i]), &v, &e), ERR_INVALID, "accepted %s", bad[i]);
        expect_one(&e, "limit", "must be a whole number from 1 to 100");
        cr_assert_eq(v, 7);
    }
}

/* ---- cursors ----------------------------------------------------------------- */

Test(validate, cursor_matches_base64url_of_big_endian_id)
{
    char c[VALIDATE_CURSOR_LEN + 1];
    validate_cursor_encode(1, c);
    cr_assert_str_eq(c, "AAAAAAAAAAE");   /* base64 "AAAAAAAAAAE=" */
    validate_cursor_encode(INT64_MAX, c);
    cr_assert_str_eq(c, "f_________8");   /* base64 "f/////////8=" */
    validate_cursor_encode(0x0102030405060708, c);
    cr_assert_str_eq(c, "AQIDBAUGBwg");   /* base64 "AQIDBAUGBwg=" */
    validate_cursor_encode(0x00FBFF0000000000, c);
    cr_assert_str_eq(c, "APv_AAAAAAA");   /* '+' and '/' become '-' and '_' */
}

Test(validate, cursor_round_trips)
{
    static const int64_t ids[] = { 1, 2, 15, 16, 63, 64, 255, 256, 1000000007, INT64_C(0x0102030405060708),
                                   INT64_MAX - 1, INT64_MAX };
    for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
        char c[VALIDATE_CURSOR_LEN + 1];
        int64_t back = 0;
        validate_cursor_encode(ids[i], c);
        cr_assert_eq(strlen(c), VALIDATE_CURSOR_LEN);
        cr_assert_eq(cursor(c, &back), 0, "refused %s", c);
        cr_assert_eq(back, ids[i]);
    }
}

Test(validate, cursor_rejects_tampered_short_long_and_padded)
{
    static const char *bad[] = {
        "AAAAAAAAAA",   /* 10 */
        "AAAAAAAAAAEA", /* 12 */
        "AAAAAAAAAAE=", /* padded */
        "AAAAAAAAAE=",  /* padding inside the length */
        "",
        "AAAAAAAAAAF",  /* nonzero unused bits: a second spelling of 1 */
        "AAAAAAAAAAH",
        "AAAAAAAAAA/",  /* standard base64 alphabet */
        "AAAAAAAAAA+",
        "AAAAA.AAAAE",
        "AAAAAAAAAAA",  /* id 0 */
        "gAAAAAAAAAA",  /* top bit set: above INT64_MAX */
        "__________8",  /* -1 as unsigned */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int64_t v = 5;
        cr_assert_eq(cursor(bad[i], &v), ERR_INVALID, "accepted %s", bad[i]);
        cr_assert_eq(v, 5);
    }
    int64_t v = 5;
    struct slice with_nul = { (const uint8_t *)"AAAAA\0AAAAE", 11 };
    cr_assert_eq(validate_cursor(with_nul, &v, NULL), ERR_INVALID);
}

Test(validate, cursor_accepts_only_canonical_spellings)
{
    /* Every last character either decodes to a cursor that re-encodes to
     * itself or is refused: exactly 16 of the 64 are canonical. */
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t accepted = 0;
    for (size_t i = 0; i < 64; i++) {
        char c[VALIDATE_CURSOR_LEN + 1] = "AQIDBAUGBwA", again[VALIDATE_CURSOR_LEN + 1];
        int64_t v;
        c[10] = alphabet[i];
        if (validate_cursor(slice_str(c), &v, NULL) != 0)
            continue;
        accepted++;
        validate_cursor_encode(v, again);
        cr_assert_str_eq(again, c);
    }
    cr_assert_eq(accepted, 16);
}

Test(validate, cursor_encodes_invalid_ids_to_refused_cursors)
{
    char c[VALIDATE_CURSOR_LEN + 1];
    int64_t v;
    validate_cursor_encode(0, c);
    cr_assert_eq(cursor(c, &v), ERR_INVALID);
    validate_cursor_encode(-1, c);
    cr_assert_eq(cursor(c, &v), ERR_INVALID);
    validate_cursor_encode(INT64_MIN, c);
    cr_assert_eq(cursor(c, &v), ERR_INVALID);
}

/* ---- Authorization ----------------------------------------------------------- */

Test(validate, bearer_accepts_exact_form)
{
    char token[VALIDATE_TOKEN_LEN + 1];
    cr_assert_eq(strlen(TOKEN_BODY), VALIDATE_TOKEN_LEN);
    cr_assert_eq(bearer_n("Bearer " TOKEN_BODY, 7 + VALIDATE_TOKEN_LEN, token), 0);
    cr_assert_str_eq(token, TOKEN_BODY);
}

Test(validate, bearer_rejects_scheme_variants)
{
    expect_bearer_refused("bearer " TOKEN_BODY);
    expect_bearer_refused("BEARER " TOKEN_BODY);
    expect_bearer_refused("Bearer  " TOKEN_BODY);
    expect_bearer_refused("Bearer\t" TOKEN_BODY);
    expect_bearer_refused("Bearer" TOKEN_BODY "x");
    expect_bearer_refused(" Bearer " TOKEN_BODY);
    expect_bearer_refused("Bearer " TOKEN_BODY " ");
    expect_bearer_refused("Basic " TOKEN_BODY "x");
    expect_bearer_refused("bearer x");
    expect_bearer_refused("Bearer ");
    expect_bearer_refused("");
}

Test(validate, bearer_rejects_token_length_and_bytes)
{
    char body[VALIDATE_TOKEN_LEN + 16];
    expect_bearer_refused("Bearer nt_ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklm-_0");     /* 45 */
    expect_bearer_refused("Bearer nt_ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklm-_012");   /* 47 */
    expect_bearer_refused("Bearer NT_ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklm-_01");
    expect_bearer_refused("Bearer nt-ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklm-_01");
    expect_bearer_refused("Bearer xx_ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklm-_01");
    static const char bad[] = { '.', '=', '+', '/', '~', ' ', '\t', '\x7f', '\x80', '\xff', '"' };
    for (size_t i = 0; i < sizeof(bad); i++) {
        snprintf(body, sizeof(body), "Bearer %s", TOKEN_BODY);
        body[7 + 20] = bad[i];
        expect_bearer_refused(body);
    }
    char token[VALIDATE_TOKEN_LEN + 1];
    snprintf(body, sizeof(body), "Bearer %s", TOKEN_BODY);
    body[7 + 45] = '\0';   /* a NUL in place of the last character */
    cr_assert_eq(bearer_n(body, 7 + VALIDATE_TOKEN_LEN, token), ERR_INVALID);
}
