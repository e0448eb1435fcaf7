/*
 * Unit tests of the request-part validators in src/validate.c and
 * src/validate_head.c: note ids, the query string, limit, the paging
 * cursor and the Bearer header. Helpers: validate_support.h.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "err.h"
#include "validate_support.h"

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
