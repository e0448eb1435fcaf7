/*
 * ratelimit.h - token buckets in a fixed-size table with eviction.
 *
 * One struct ratelimit per limit (all requests per IP, logins per IP, logins
 * per account, note writes per user, exports per user and per IP, new
 * connections per IP). Keys are 16 opaque bytes (an address, a hash of a
 * name, or a user id tagged 'u'). The table never grows: it holds `capacity` buckets
 * (about 40 bytes each) and, when a new key finds its probe window full,
 * evicts the bucket that was idle longest — a flood from many addresses
 * cannot grow memory, it only forgets the quietest clients first.
 * Event-loop thread only.
 */
#ifndef NOTESD_RATELIMIT_H
#define NOTESD_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RATELIMIT_KEY_LEN 16

/** The key per-address limits count an address under: an IPv6 address by
 *  its /64 (what one client usually holds), an IPv4 one (::ffff:a.b.c.d)
 *  whole. */
void ratelimit_addr_key(const uint8_t addr[16], uint8_t out[RATELIMIT_KEY_LEN]);

struct ratelimit;

/** rate: tokens added per second; burst: bucket size. rate 0 disables the
 *  limit (every call is allowed). Capacity is rounded up to a power of two. */
struct ratelimit *ratelimit_new(size_t capacity, double rate, double burst);
void ratelimit_free(struct ratelimit *rl);

/**
 * Take one token for `key` at time `now_ms` (monotonic). True when allowed;
 * when refused, *retry_after_s (if not NULL) says when one token will be
 * back, in whole seconds rounded up (at least 1).
 */
bool ratelimit_take(struct ratelimit *rl, const uint8_t key[RATELIMIT_KEY_LEN], uint64_t now_ms,
                    uint32_t *retry_after_s);
/** The same, and *first is set when this refusal starts a run of refusals
 *  for the key (audit once per run, not once per dropped request). */
bool ratelimit_take_ex(struct ratelimit *rl, const uint8_t key[RATELIMIT_KEY_LEN], uint64_t now_ms,
                       uint32_t *retry_after_s, bool *first);

/** Buckets in use (for tests and the bound in the README). */
size_t ratelimit_used(const struct ratelimit *rl);
/** Fixed capacity in buckets. */
size_t ratelimit_capacity(const struct ratelimit *rl);

/*
 * Per-account login throttling (NIST SP 800-63B §5.2.2, ASVS V6.1.1): after
 * THROTTLE_FREE_FAILURES consecutive failures each further attempt waits
 * 2^(n-10) seconds (capped at 15 minutes), and at most THROTTLE_HOURLY_MAX
 * failures per hour are ever evaluated. A success resets the count, so a
 * real user gets in as soon as the current delay has passed. Bounded like
 * the buckets, a fixed table, but eviction never drops a key whose delay or
 * hourly cap is in force while the window holds one that is not (of
 * those, the one holding the fewest failures goes); when all are, the one
 * whose restriction ends soonest goes.
 */
#define THROTTLE_FREE_FAILURES 10
#define THROTTLE_HOURLY_MAX 100
#define THROTTLE_MAX_DELAY_S 900

struct throttle;

struct throttle *throttle_new(size_t capacity);
void throttle_free(struct throttle *t);
/** May `key` try now? When not, *retry_after_s says when. */
bool throttle_allowed(struct throttle *t, const uint8_t key[RATELIMIT_KEY_LEN], uint64_t now_ms,
                      uint32_t *retry_after_s);
/** Record a failed attempt. */
void throttle_failed(struct throttle *t, const uint8_t key[RATELIMIT_KEY_LEN], uint64_t now_ms);
/** Record a success: the count starts again. */
void throttle_succeeded(struct throttle *t, const uint8_t key[RATELIMIT_KEY_LEN]);
/** throttle_allowed(), and when allowed the attempt counts as a failure at
 *  once (throttle_failed()), so attempts still waiting for their check hold
 *  back the next ones. Each admitted attempt ends in throttle_passed() (it
 *  succeeded: the count starts again, the hour's count loses it), nothing
 *  more (it failed), or throttle_unused() (never checked: both counts lose
 *  it; a backoff it started stays), each told when it was let in
 *  (`admitted_ms`: the hour's count gives back only what it counted). When
 *  refused, *first says whether this refusal starts a run of them (audit
 *  once per run). */
bool throttle_admit(struct throttle *t, const uint8_t key[RATELIMIT_KEY_LEN], uint64_t now_ms,
                    uint32_t *retry_after_s, bool *first);
void throttle_passed(struct throttle *t, const uint8_t key[RATELIMIT_KEY_LEN], uint64_t admitted_ms);
void throttle_unused(struct throttle *t, const uint8_t key[RATELIMIT_KEY_LEN], uint64_t admitted_ms);
/** Fixed capacity in entries (for tests). */
size_t throttle_capacity(const struct throttle *t);

#endif
