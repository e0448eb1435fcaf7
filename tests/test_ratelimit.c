/* Unit tests for ratelimit.c: bucket arithmetic, Retry-After, the fixed
 * bound under a flood of distinct keys, eviction of the stalest bucket, and
 * the login throttle keeping restricted accounts through a flood. */
#include <criterion/criterion.h>
#include <string.h>

#include "crypto.h"
#include "ratelimit.h"

static void setup(void)
{
    cr_assert_eq(crypto_init(), 0);
}

static void key_of(uint32_t n, uint8_t key[RATELIMIT_KEY_LEN])
{
    memset(key, 0, RATELIMIT_KEY_LEN);
    memcpy(key, &n, sizeof(n));
}

Test(ratelimit, burst_then_refuse_then_refill, .init = setup)
{
    struct ratelimit *rl = ratelimit_new(64, 2.0, 4.0);   /* 2/s, burst 4 */
    uint8_t k[RATELIMIT_KEY_LEN];
    key_of(1, k);
    uint64_t t = 1000000;
    for (int i = 0; i < 4; i++)
        cr_assert(ratelimit_take(rl, k, t, NULL), "burst token %d", i);
    uint32_t retry = 0;
    cr_assert_not(ratelimit_take(rl, k, t, &retry));
    cr_assert_eq(retry, 1, "one token returns in 0.5 s: Retry-After rounds up to 1");
    cr_assert_not(ratelimit_take(rl, k, t + 400, NULL), "0.8 token after 400 ms is not enough");
    cr_assert(ratelimit_take(rl, k, t + 500, NULL), "a whole token after 500 ms");
    cr_assert(ratelimit_take(rl, k, t + 10000, NULL));
    for (int i = 0; i < 3; i++)   /* refilled to the burst, never beyond */
        cr_assert(ratelimit_take(rl, k, t + 10000, NULL));
    cr_assert_not(ratelimit_take(rl, k, t + 10000, NULL));
    ratelimit_free(rl);
}

Test(ratelimit, retry_after_reflects_a_slow_rate, .init = setup)
{
    struct ratelimit *rl = ratelimit_new(64, 5.0 / 60.0, 5.0);   /* 5 per minute */
    uint8_t k[RATELIMIT_KEY_LEN];
    key_of(7, k);
    for (int i = 0; i < 5; i++)
        cr_assert(ratelimit_take(rl, k, 0, NULL));
    uint32_t retry = 0;
    cr_assert_not(ratelimit_take(rl, k, 0, &retry));
    cr_assert_eq(retry, 12, "one token per 12 s, got %u", retry);
    ratelimit_free(rl);
}

Test(ratelimit, keys_are_independent, .init = setup)
{
    struct ratelimit *rl = ratelimit_new(64, 1.0, 1.0);
    uint8_t a[RATELIMIT_KEY_LEN], b[RATELIMIT_KEY_LEN];
    key_of(1, a);
    key_of(2, b);
    cr_assert(ratelimit_take(rl, a, 0, NULL));
    cr_assert_not(ratelimit_take(rl, a, 0, NULL));
    cr_assert(ratelimit_take(rl, b, 0, NULL), "another key has its own bucket");
    ratelimit_free(rl);
}

Test(ratelimit, rate_zero_disables_the_limit, .init = setup)
{
    struct ratelimit *rl = ratelimit_new(64, 0, 1);
    uint8_t k[RATELIMIT_KEY_LEN];
    key_of(1, k);
    for (int i = 0; i < 1000; i++)
        cr_assert(ratelimit_take(rl, k, 0, NULL));
    cr_assert_eq(ratelimit_used(rl), 0);
    ratelimit_free(rl);
}

Test(ratelimit, a_flood_of_distinct_keys_stays_within_capacity, .init = setup)
{
    struct ratelimit *rl = ratelimit_new(1000, 1.0, 2.0);
    size_t cap = ratelimit_capacity(rl);
    cr_assert_geq(cap, 1000);
    cr_assert_lt(cap, 4096);
    uint8_t k[RATELIMIT_KEY_LEN];
    for (uint32_t i = 0; i < 200000; i++) {
        key_of(i, k);
        ratelimit_take(rl, k, i, NULL);
        cr_assert_leq(ratelimit_used(rl), cap);
    }
    cr_assert_gt(ratelimit_used(rl), cap / 2, "the table is used, not bypassed");
    ratelimit_free(rl);
}

Test(ratelimit, eviction_forgets_the_stalest_bucket_first, .init = setup)
{
    /* The smallest table is one probe window: every key shares it. */
    struct ratelimit *rl = ratelimit_new(1, 0.001, 1.0);
    size_t cap = ratelimit_capacity(rl);
    uint8_t k[RATELIMIT_KEY_LEN], hot[RATELIMIT_KEY_LEN];
    key_of(999, hot);
    cr_assert(ratelimit_take(rl, hot, 0, NULL));
    for (uint32_t i = 0; i < cap - 1; i++) {   /* fill the rest, all older than hot's next use */
        key_of(i, k);
        ratelimit_take(rl, k, 1, NULL);
    }
    cr_assert_not(ratelimit_take(rl, hot, 100, NULL), "hot is still limited (its bucket is kept)");
    key_of(5000, k);
    ratelimit_take(rl, k, 200, NULL);   /* evicts the stalest: one of the keys used at t=1 */
    cr_assert_not(ratelimit_take(rl, hot, 300, NULL), "the recently used bucket survived the eviction");
    ratelimit_free(rl);
}

/* ---- per-account throttling ------------------------------------------------ */

Test(throttle, ten_failures_are_free_then_the_delay_doubles, .init = setup)
{
    struct throttle *t = throttle_new(64);
    uint8_t k[RATELIMIT_KEY_LEN];
    key_of(42, k);
    uint64_t now = 5000000;
    for (int i = 0; i < THROTTLE_FREE_FAILURES - 1; i++) {
        cr_assert(throttle_allowed(t, k, now, NULL), "attempt %d", i);
        throttle_failed(t, k, now);
    }
    cr_assert(throttle_allowed(t, k, now, NULL));
    throttle_failed(t, k, now);   /* the 10th consecutive failure */
    uint32_t retry = 0;
    cr_assert_not(throttle_allowed(t, k, now, &retry));
    cr_assert_eq(retry, 1);
    cr_assert(throttle_allowed(t, k, now + 1000, NULL));
    throttle_failed(t, k, now + 1000);   /* 11th: 2 s */
    cr_assert_not(throttle_allowed(t, k, now + 2999, &retry));
    cr_assert_eq(retry, 1);
    cr_assert(throttle_allowed(t, k, now + 3000, NULL));
    throttle_free(t);
}

Test(throttle, a_success_after_the_delay_resets_the_account, .init = setup)
{
    struct throttle *t = throttle_new(64);
    uint8_t k[RATELIMIT_KEY_LEN];
    key_of(43, k);
    for (int i = 0; i < 15; i++)
        throttle_failed(t, k, 0);
    uint32_t retry = 0;
    cr_assert_not(throttle_allowed(t, k, 0, &retry));
    cr_assert_eq(retry, 32, "2^5 s after 15 failures, got %u", retry);
    cr_assert(throttle_allowed(t, k, 32000, NULL), "never locked out for good");
    throttle_succeeded(t, k);
    throttle_failed(t, k, 32001);
    cr_assert(throttle_allowed(t, k, 32001, NULL), "the count started again");
    throttle_free(t);
}

Test(throttle, the_delay_is_capped_and_at_most_100_failures_per_hour_are_evaluated, .init = setup)
{
    struct throttle *t = throttle_new(64);
    uint8_t k[RATELIMIT_KEY_LEN];
    key_of(44, k);
    uint64_t now = 0;
    uint32_t retry = 0;
    for (int i = 0; i < 40; i++)
        throttle_failed(t, k, now);
    cr_assert_not(throttle_allowed(t, k, now, &retry));
    cr_assert_eq(retry, THROTTLE_MAX_DELAY_S, "delay capped at 15 min, got %u", retry);
    /* An attacker waiting out each delay still gets no more than 100 tries an hour. */
    for (int i = 40; i < THROTTLE_HOURLY_MAX; i++)
        throttle_failed(t, k, now);
    cr_assert_not(throttle_allowed(t, k, now + THROTTLE_MAX_DELAY_S * 1000, &retry));
    cr_assert_gt(retry, 2000, "blocked until the hour window ends, got %u", retry);
    cr_assert(throttle_allowed(t, k, now + 3600000, NULL));
    throttle_free(t);
}

/* Attempts let in count before their check ends: ten at once, then the
 * eleventh waits; a passed one takes its failure back, an unchecked one
 * both counts; a run of refusals is flagged once. */
Test(throttle, admitted_attempts_count_before_their_check_ends, .init = setup)
{
    struct throttle *t = throttle_new(64);
    uint8_t k[RATELIMIT_KEY_LEN];
    key_of(45, k);
    uint32_t retry = 0;
    bool first = false;
    for (int i = 0; i < THROTTLE_FREE_FAILURES; i++)
        cr_assert(throttle_admit(t, k, 0, &retry, &first), "attempt %d", i);
    cr_assert_not(throttle_admit(t, k, 0, &retry, &first), "the 11th, with ten still being checked");
    cr_assert(first);
    cr_assert_not(throttle_admit(t, k, 0, &retry, &first));
    cr_assert_not(first, "a second refusal in the same run was flagged as first");
    throttle_unused(t, k, 0);                    /* one never checked: 9 left */
    cr_assert(throttle_admit(t, k, 1000, &retry, &first), "after the delay");
    throttle_passed(t, k, 1000);                 /* it passed: the count starts again */
    for (int i = 0; i < THROTTLE_FREE_FAILURES; i++)
        cr_assert(throttle_admit(t, k, 1000, &retry, &first), "attempt %d after a success", i);
    cr_assert_not(throttle_admit(t, k, 1000, &retry, &first));
    cr_assert(first, "a new run of refusals");
    throttle_free(t);
}

/* An attempt let in before the hour's window began gives nothing back of
 * the next window's count: failures made after the turn of the hour stay. */
Test(throttle, an_attempt_from_the_last_hour_takes_nothing_from_this_one, .init = setup)
{
    struct throttle *t = throttle_new(64);
    uint8_t k[RATELIMIT_KEY_LEN];
    key_of(47, k);
    uint32_t retry = 0;
    bool first = false;
    uint64_t before = 1000, after = 3601000;      /* the window began at `before` */
    cr_assert(throttle_admit(t, k, before, &retry, &first));   /* A, still being checked */
    for (int i = 0; i < THROTTLE_HOURLY_MAX - 1; i++) {          /* 99 failures in the new hour */
        cr_assert(throttle_admit(t, k, after, &retry, &first), "failure %d", i);
        throttle_succeeded(t, k);                                /* no back-off in the way */
    }
    throttle_unused(t, k, before);                               /* A was never checked */
    cr_assert(throttle_admit(t, k, after, &retry, &first), "the 100th failure of the hour");
    throttle_succeeded(t, k);
    cr_assert_not(throttle_admit(t, k, after, &retry, &first), "a 101st failure in one hour was let in");
    throttle_free(t);
}

/* Unchecked attempts give their place in the hour back; passed ones too. */
Test(throttle, only_failures_fill_the_hourly_cap, .init = setup)
{
    struct throttle *t = throttle_new(64);
    uint8_t k[RATELIMIT_KEY_LEN];
    key_of(46, k);
    uint32_t retry = 0;
    bool first = false;
    uint64_t now = 0;
    for (int i = 0; i < 3 * THROTTLE_HOURLY_MAX; i++) {
        cr_assert(throttle_admit(t, k, now, &retry, &first), "attempt %d", i);
        if (i % 3 == 0)
            throttle_passed(t, k, now);
        else
            throttle_unused(t, k, now);
    }
    cr_assert(throttle_admit(t, k, now, &retry, &first), "no failure was made, yet the hour is used up");
    throttle_free(t);
}

Test(throttle, other_accounts_are_unaffected, .init = setup)
{
    struct throttle *t = throttle_new(64);
    uint8_t a[RATELIMIT_KEY_LEN], b[RATELIMIT_KEY_LEN];
    key_of(1, a);
    key_of(2, b);
    for (int i = 0; i < 30; i++)
        throttle_failed(t, a, 0);
    cr_assert_not(throttle_allowed(t, a, 0, NULL));
    cr_assert(throttle_allowed(t, b, 0, NULL));
    throttle_free(t);
}

/* Eviction of throttle entries (security review, issue 6): a table full of
 * failures for other names must not forget an account whose restriction is
 * still in force, or an attacker buys fresh guesses with failures on names
 * that do not matter. Each flood runs against the smallest table (one probe
 * window, so every name competes with the account) and the default size
 * (NOTES_RATE_TABLE_SIZE), four tables' worth of names each. */
static const size_t flood_sizes[] = { 1, 16384 };

static void fail_n(struct throttle *t, const uint8_t key[RATELIMIT_KEY_LEN], int n, uint64_t now_ms)
{
    for (int i = 0; i < n; i++)
        throttle_failed(t, key, now_ms);
}

/* One failed login for each of n names never seen before, from now_ms on. */
static void flood_other_names(struct throttle *t, size_t n, uint64_t now_ms)
{
    uint8_t k[RATELIMIT_KEY_LEN];
    for (size_t i = 0; i < n; i++) {
        key_of(0x10000000u + (uint32_t)i, k);
        throttle_failed(t, k, now_ms + i / 64);
    }
}

Test(throttle, a_locked_account_stays_locked_after_a_table_of_failures_on_other_names, .init = setup)
{
    for (size_t s = 0; s < sizeof(flood_sizes) / sizeof(flood_sizes[0]); s++) {
        struct throttle *t = throttle_new(flood_sizes[s]);
        cr_assert_not_null(t);
        size_t cap = throttle_capacity(t);
        uint8_t a[RATELIMIT_KEY_LEN];
        key_of(1, a);
        uint64_t t0 = 1000000;
        fail_n(t, a, THROTTLE_HOURLY_MAX, t0);   /* the hourly cap: locked until t0 + 1 h */
        cr_assert_not(throttle_allowed(t, a, t0, NULL));
        flood_other_names(t, 4 * cap, t0 + 1000);
        uint32_t retry = 0;
        cr_assert_not(throttle_allowed(t, a, t0 + 100000, &retry),
                      "table of %zu: the locked account was evicted by failures on other names", cap);
        cr_assert_eq(retry, 3500, "table of %zu: still the same lock (until t0 + 1 h), got %u s", cap, retry);
        cr_assert(throttle_allowed(t, a, t0 + 3600000, NULL), "and it ends when the hour does");
        throttle_free(t);
    }
}

Test(throttle, an_account_in_backoff_stays_in_backoff_after_a_table_of_failures_on_other_names, .init = setup)
{
    for (size_t s = 0; s < sizeof(flood_sizes) / sizeof(flood_sizes[0]); s++) {
        struct throttle *t = throttle_new(flood_sizes[s]);
        cr_assert_not_null(t);
        size_t cap = throttle_capacity(t);
        uint8_t b[RATELIMIT_KEY_LEN];
        key_of(2, b);
        uint64_t t0 = 1000000;
        fail_n(t, b, 15, t0);   /* 2^5 s of backoff, far below the hourly cap */
        flood_other_names(t, 4 * cap, t0 + 1000);
        uint32_t retry = 0;
        cr_assert_not(throttle_allowed(t, b, t0 + 2000, &retry),
                      "table of %zu: the account in backoff was evicted by failures on other names", cap);
        cr_assert_eq(retry, 30, "table of %zu: still the same 32 s backoff, got %u s", cap, retry);
        cr_assert(throttle_allowed(t, b, t0 + 32000, NULL));
        throttle_free(t);
    }
}

Test(throttle, when_every_entry_is_restricted_the_one_that_ends_soonest_is_evicted, .init = setup)
{
    /* The smallest table is one probe window: every key competes for it. */
    struct throttle *t = throttle_new(1);
    cr_assert_not_null(t);
    size_t cap = throttle_capacity(t);
    uint8_t k[RATELIMIT_KEY_LEN];
    /* The oldest entry holds the longest lock: the hourly cap, until 3600 s. */
    key_of(100, k);
    fail_n(t, k, THROTTLE_HOURLY_MAX, 0);
    /* Then 15 min backoffs, ending at 901 s, 902 s, ... */
    for (uint32_t i = 1; i < cap - 1; i++) {
        key_of(100 + i, k);
        fail_n(t, k, 20, i * 1000);
    }
    /* The newest entry's backoff ends first: 64 s from 7 s. */
    uint8_t soonest[RATELIMIT_KEY_LEN];
    key_of(100 + (uint32_t)cap - 1, soonest);
    fail_n(t, soonest, 16, 7000);
    cr_assert_not(throttle_allowed(t, soonest, 10000, NULL));

    /* A new name still gets an entry, and is throttled. */
    uint8_t fresh[RATELIMIT_KEY_LEN];
    key_of(999, fresh);
    fail_n(t, fresh, THROTTLE_FREE_FAILURES, 10000);
    cr_assert_not(throttle_allowed(t, fresh, 10000, NULL), "the new name has no entry: its failures were not counted");

    uint32_t retry = 0;
    key_of(100, k);
    cr_assert_not(throttle_allowed(t, k, 10000, &retry), "the longest lock was evicted");
    cr_assert_eq(retry, 3590, "got %u s", retry);
    for (uint32_t i = 1; i < cap - 1; i++) {
        key_of(100 + i, k);
        cr_assert_not(throttle_allowed(t, k, 10000, &retry), "the backoff ending at %u s was evicted", 900 + i);
        cr_assert_eq(retry, 900 + i - 10, "got %u s", retry);
    }
    cr_assert(throttle_allowed(t, soonest, 10000, NULL), "the restriction ending soonest was the one evicted");
    throttle_free(t);
}

/* Between two of its attempts an account under attack is not restricted
 * (its delay has passed) and it is the stalest entry: if stalest went first,
 * failures on other names would still reset its count, at the attacker's
 * pace. Fewest failures go first. */
Test(throttle, an_account_out_of_backoff_keeps_its_count_through_a_flood_of_single_failures, .init = setup)
{
    for (size_t s = 0; s < sizeof(flood_sizes) / sizeof(flood_sizes[0]); s++) {
        struct throttle *t = throttle_new(flood_sizes[s]);
        cr_assert_not_null(t);
        size_t cap = throttle_capacity(t);
        uint8_t c[RATELIMIT_KEY_LEN];
        key_of(3, c);
        uint64_t t0 = 1000000, after = t0 + THROTTLE_MAX_DELAY_S * 1000;
        fail_n(t, c, 20, t0);   /* 15 min of backoff */
        cr_assert(throttle_allowed(t, c, after, NULL), "the delay has passed");
        flood_other_names(t, 4 * cap, after);
        throttle_failed(t, c, after + 10000);   /* the 21st consecutive failure */
        uint32_t retry = 0;
        cr_assert_not(throttle_allowed(t, c, after + 10000, &retry),
                      "table of %zu: the account's 20 failures were evicted by single failures on other names", cap);
        cr_assert_eq(retry, THROTTLE_MAX_DELAY_S, "table of %zu: got %u s", cap, retry);
        throttle_free(t);
    }
}

Test(ratelimit, only_the_first_refusal_of_a_run_is_flagged, .init = setup)
{
    struct ratelimit *rl = ratelimit_new(64, 1.0, 1.0);
    uint8_t k[RATELIMIT_KEY_LEN];
    key_of(3, k);
    bool first = true;
    cr_assert(ratelimit_take_ex(rl, k, 0, NULL, &first));
    cr_assert_not(first);
    cr_assert_not(ratelimit_take_ex(rl, k, 0, NULL, &first));
    cr_assert(first, "the first refusal is flagged");
    cr_assert_not(ratelimit_take_ex(rl, k, 10, NULL, &first));
    cr_assert_not(first, "later refusals of the same run are not");
    cr_assert(ratelimit_take_ex(rl, k, 2000, NULL, &first));
    cr_assert_not(ratelimit_take_ex(rl, k, 2000, NULL, &first));
    cr_assert(first, "a new run is flagged again");
    ratelimit_free(rl);
}

/* An IPv6 client usually holds a whole /64: per-address limits must count
 * the /64, or every address in it is a fresh bucket. IPv4 (mapped into
 * IPv6 as ::ffff:a.b.c.d) keeps its whole address. */
Test(ratelimit, ipv6_addresses_count_per_64_and_ipv4_whole)
{
    static const uint8_t a[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 2, 0, 0, 0, 0, 0, 0, 0, 1 };
    static const uint8_t b[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 2, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4 };
    static const uint8_t other64[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 3, 0, 0, 0, 0, 0, 0, 0, 1 };
    static const uint8_t v4a[16] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 1 };
    static const uint8_t v4b[16] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 2 };
    uint8_t ka[RATELIMIT_KEY_LEN], kb[RATELIMIT_KEY_LEN], ko[RATELIMIT_KEY_LEN], k4a[RATELIMIT_KEY_LEN],
        k4b[RATELIMIT_KEY_LEN];
    ratelimit_addr_key(a, ka);
    ratelimit_addr_key(b, kb);
    ratelimit_addr_key(other64, ko);
    ratelimit_addr_key(v4a, k4a);
    ratelimit_addr_key(v4b, k4b);
    cr_assert_arr_eq(ka, kb, RATELIMIT_KEY_LEN, "two addresses of one /64 are two clients");
    cr_assert(memcmp(ka, ko, RATELIMIT_KEY_LEN) != 0, "two /64s are one client");
    cr_assert(memcmp(k4a, k4b, RATELIMIT_KEY_LEN) != 0, "two IPv4 addresses are one client");

    struct ratelimit *rl = ratelimit_new(64, 1, 2);
    cr_assert_not_null(rl);
    uint32_t retry;
    cr_assert(ratelimit_take(rl, ka, 1000, &retry));
    cr_assert(ratelimit_take(rl, ka, 1000, &retry));
    cr_assert_not(ratelimit_take(rl, kb, 1000, &retry), "another address of the /64 got a fresh burst");
    ratelimit_free(rl);
}
