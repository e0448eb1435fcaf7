/*
 * Unit tests of the handlers' shared helpers (api_util.c).
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "api.h"

/* What gmtime_r and strftime say, for comparison. */
static void reference(int64_t t, char out[32])
{
    time_t tt = (time_t)t;
    struct tm tm;
    cr_assert_not_null(gmtime_r(&tt, &tm));
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

Test(api_time, matches_gmtime_across_leap_years_and_centuries)
{
    /* Edges, then a walk of 400 years in prime-sized steps (every month,
     * weekday and leap rule is crossed). */
    const int64_t edges[] = { 0, 1, 59, 86399, 86400, 951782400 /* 2000-02-29 */, 951868800,
                              4107542399 /* 2100-02-28T23:59:59 */, 4107542400, 253402300799 /* 9999-12-31 */ };
    char got[32], want[32];
    for (size_t i = 0; i < sizeof(edges) / sizeof(edges[0]); i++) {
        api_time(edges[i], got);
        reference(edges[i], want);
        cr_assert_str_eq(got, want, "t=%lld", (long long)edges[i]);
    }
    for (int64_t t = 0; t < INT64_C(12622780800); t += 86400 * 7 + 3607) {
        api_time(t, got);
        reference(t, want);
        cr_assert_str_eq(got, want, "t=%lld", (long long)t);
    }
}

Test(api_time, before_1970_too)
{
    char got[32], want[32];
    for (int64_t t = -86400 * 3; t < 86400; t += 3599) {
        api_time(t, got);
        reference(t, want);
        cr_assert_str_eq(got, want, "t=%lld", (long long)t);
    }
}

/* ---- json_append_string: response strings -------------------------------- */

#include "buf.h"
#include "err.h"
#include "json.h"

static char *json_str(const char *s, size_t n, size_t max, int *rc)
{
    static char out[256];
    struct buf b;
    buf_init(&b, max);
    *rc = json_append_string(&b, s, n);
    cr_assert_lt(b.len, sizeof(out));
    memcpy(out, b.data ? (const char *)b.data : "", b.len);
    out[b.len] = '\0';
    buf_cleanup(&b);
    return out;
}

/* Escapes between plain runs, UTF-8 copied as it is, an embedded NUL escaped. */
Test(json, escapes_what_json_requires_and_copies_the_rest)
{
    static const struct { const char *in; size_t n; const char *want; } cases[] = {
        { "ab\"cd\\ef", 8, "\"ab\\\"cd\\\\ef\"" },
        { "\nx\x01y\x7f", 5, "\"\\nx\\u0001y\\u007f\"" },
        { "\x1f", 1, "\"\\u001f\"" },
        { "caf\xc3\xa9 \xe2\x82\xac", 9, "\"caf\xc3\xa9 \xe2\x82\xac\"" },
        { "a\0b", 3, "\"a\\u0000b\"" },
        { "", 0, "\"\"" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int rc;
        cr_assert_str_eq(json_str(cases[i].in, cases[i].n, 64, &rc), cases[i].want, "case %zu", i);
        cr_assert_eq(rc, 0, "case %zu", i);
    }
}

/* A note's content may hold TAB and CR: as six-byte \u escapes they made
 * an export up to six times the content's size, past its bound with a
 * few megabytes of notes. Every byte a note may hold now costs at most two. */
Test(json, the_line_breaks_a_note_may_hold_cost_two_bytes)
{
    int rc;
    cr_assert_str_eq(json_str("a\tb\rc\nd", 7, 64, &rc), "\"a\\tb\\rc\\nd\"");
    cr_assert_eq(rc, 0);
}

Test(json, a_string_past_the_buffer_bound_is_refused)
{
    int rc;
    json_str("0123456789", 10, 8, &rc);
    cr_assert_eq(rc, ERR_LIMIT);
}

/* ---- utc_format with milliseconds: audit timestamps ---------------------- */

#include "utc.h"

Test(utc, milliseconds_follow_the_seconds_of_gmtime)
{
    const int ms[] = { 0, 7, 42, 999 };
    char got[UTC_TEXT_MAX], want[32];
    for (int64_t t = 0; t < INT64_C(4102444800); t += 86400 * 31 + 7919) {
        for (size_t i = 0; i < sizeof(ms) / sizeof(ms[0]); i++) {
            reference(t, want);
            snprintf(want + 19, sizeof(want) - 19, ".%03dZ", ms[i]);
            cr_assert_eq(utc_format(t, ms[i], got), 24);
            cr_assert_str_eq(got, want, "t=%lld ms=%d", (long long)t, ms[i]);
        }
    }
}

Test(utc, out_of_range_milliseconds_and_years_keep_the_shape)
{
    char got[UTC_TEXT_MAX];
    cr_assert_eq(utc_format(86400, 1000, got), 20);
    cr_assert_str_eq(got, "1970-01-02T00:00:00Z");
    cr_assert_eq(utc_format(INT64_C(253402300800), 5, got), 20);  /* year 10000 */
    cr_assert_str_eq(got, "0000-01-01T00:00:00Z");
}

Test(utc, the_most_negative_time_keeps_the_shape_without_overflow)
{
    char got[UTC_TEXT_MAX];
    cr_assert_eq(utc_format(INT64_MIN, -1, got), 20);
    cr_assert_str_eq(got, "0000-01-01T00:00:00Z");
    cr_assert_eq(utc_format(INT64_MIN + 86398, 0, got), 20);
    cr_assert_str_eq(got, "0000-01-01T00:00:00Z");
}
