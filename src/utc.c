/*
 * utc.c - RFC 3339 UTC timestamps by integer arithmetic (see utc.h).
 *
 * Owns nothing. Pure functions: safe on any thread.
 */
#include "utc.h"

#include <time.h>

#include <string.h>

/* Days since 1970-01-01 to a civil date (H. Hinnant's days_from_civil
 * inverse). */
static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static void put2(char *p, unsigned v)
{
    p[0] = (char)('0' + v / 10);
    p[1] = (char)('0' + v % 10);
}

size_t utc_format(int64_t secs, int ms, char out[UTC_TEXT_MAX])
{
    /* Floor division from the remainder: days * 86400 can fall below
     * INT64_MIN for the most negative inputs. */
    int64_t s = secs % 86400, y;
    int64_t days = secs / 86400 - (s < 0);
    s += s < 0 ? 86400 : 0;
    unsigned m, d;
    civil_from_days(days, &y, &m, &d);
    if (y < 0 || y > 9999) {
        memcpy(out, "0000-01-01T00:00:00Z", 21);
        return 20;
    }
    memcpy(out, "0000-00-00T00:00:00Z", 21);
    put2(out, (unsigned)(y / 100));
    put2(out + 2, (unsigned)(y % 100));
    put2(out + 5, m);
    put2(out + 8, d);
    put2(out + 11, (unsigned)(s / 3600));
    put2(out + 14, (unsigned)(s / 60 % 60));
    put2(out + 17, (unsigned)(s % 60));
    if (ms < 0 || ms > 999)
        return 20;
    out[19] = '.';
    out[20] = (char)('0' + ms / 100);
    put2(out + 21, (unsigned)(ms % 100));
    memcpy(out + 23, "Z", 2);
    return 24;
}

uint64_t utc_monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}
