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
