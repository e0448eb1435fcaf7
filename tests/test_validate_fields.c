/*
 * Unit tests of the body-field validators in src/validate.c: username,
 * password (lengths in code points, controls, the common-password list),
 * title (NFC, code points, refused character classes) and content, each
 * limit at min-1, min, max and max+1. Helpers: validate_support.h.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "validate_support.h"

extern const char *const common_passwords[];
extern const size_t common_passwords_count;

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
