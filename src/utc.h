/*
 * utc.h - RFC 3339 UTC timestamps from integer seconds, without gmtime_r,
 * strftime or snprintf: responses and audit lines each carry one or two,
 * and the libc route cost a few percent of a note read.
 */
#ifndef NOTESD_UTC_H
#define NOTESD_UTC_H

#include <stddef.h>
#include <stdint.h>

#define UTC_TEXT_MAX 32

/** Write "YYYY-MM-DDTHH:MM:SSZ" for `secs` since the epoch, or
 *  "YYYY-MM-DDTHH:MM:SS.mmmZ" when 0 <= ms <= 999; NUL-terminated. A year
 *  outside 0..9999 (never a real clock or stored time) gives
 *  "0000-01-01T00:00:00Z" so the shape stays. Returns the length. */
size_t utc_format(int64_t secs, int ms, char out[UTC_TEXT_MAX]);

/** Milliseconds of CLOCK_MONOTONIC: for intervals (rate limits, the
 *  checkpoint schedule), never for timestamps. */
uint64_t utc_monotonic_ms(void);

#endif
