/*
 * ratelimit.c - token buckets in one fixed, open-addressed array.
 *
 * Lookups probe a short window of slots from the key's hash. The hash is
 * keyed with a random per-table value so a client cannot choose keys that
 * collide. A miss with a full window replaces the bucket in the window that
 * was refilled least recently: memory is fixed at start, whatever the
 * number of clients. Tokens are kept as doubles: the rates are small and
 * exactness to a millitoken does not matter. The login throttle uses the
 * same layout, but chooses what to evict by what it still enforces (see
 * evict_before()).
 */
#include "ratelimit.h"
#include "crypto.h"

#include <stdlib.h>
#include <string.h>

#define PROBE_WINDOW 8

struct bucket {
    uint8_t key[RATELIMIT_KEY_LEN];
    bool used;
    bool limited;              /* the last take was refused */
    double tokens;
    uint64_t last_ms;
};

struct ratelimit {
    struct bucket *slots;
    size_t mask;               /* capacity - 1 */
    size_t used;
    double rate, burst;
    uint64_t hash_key;
};

struct ratelimit *ratelimit_new(size_t capacity, double rate, double burst)
{
    size_t cap = PROBE_WINDOW;
    while (cap < capacity)
        cap *= 2;
    struct ratelimit *rl = calloc(1, sizeof(*rl));
    if (!rl)
        return NULL;
    rl->slots = calloc(cap, sizeof(*rl->slots));
    if (!rl->slots) {
        free(rl);
        return NULL;
    }
    rl->mask = cap - 1;
    rl->rate = rate;
    rl->burst = burst < 1 ? 1 : burst;
    if (crypto_random(&rl->hash_key, sizeof(rl->hash_key)) != 0)
        rl->hash_key = 0x9e3779b97f4a7c15u;
    return rl;
}

void ratelimit_free(struct ratelimit *rl)
{
    if (!rl)
        return;
    free(rl->slots);
    free(rl);
}

/* FNV-1a, 64-bit, over a random key and the bucket key. */
static size_t slot_of(const struct ratelimit *rl, const uint8_t key[RATELIMIT_KEY_LEN])
{
    uint64_t h = 14695981039346656037u ^ rl->hash_key;
    for (int i = 0; i < RATELIMIT_KEY_LEN; i++)
        h = (h ^ key[i]) * 1099511628211u;
    h ^= h >> 29;
    return (size_t)h & rl->mask;
}

/* The key's bucket, or a fresh one (evicting the stalest in the window). */
static struct bucket *find(struct ratelimit *rl, const uint8_t key[RATELIMIT_KEY_LEN], uint64_t now_ms)
{
    size_t start = slot_of(rl, key);
    struct bucket *free_slot = NULL, *stalest = NULL;
    for (size_t i = 0; i < PROBE_WINDOW; i++) {
        struct bucket *b = &rl->slots[(start + i) & rl->mask];
        if (!b->used) {
            if (!free_slot)
                free_slot = b;
            continue;
        }
        if (memcmp(b->key, key, RATELIMIT_KEY_LEN) == 0)
            return b;
        if (!stalest || b->last_ms < stalest->last_ms)
            stalest = b;
    }
    struct bucket *b = free_slot ? free_slot : stalest;
    if (free_slot)
        rl->used++;
    memcpy(b->key, key, RATELIMIT_KEY_LEN);
    b->used = true;
    b->limited = false;
    b->tokens = rl->burst;
    b->last_ms = now_ms;
    return b;
}

bool ratelimit_take(struct ratelimit *rl, const uint8_t key[RATELIMIT_KEY_LEN], uint64_t now_ms,
                    uint32_t *retry_after_s)
{
    return ratelimit_take_ex(rl, key, now_ms, retry_after_s, NULL);
}

bool ratelimit_take_ex(struct ratelimit *rl, const uint8_t key[RATELIMIT_KEY_LEN], uint64_t now_ms,
                       uint32_t *retry_after_s, bool *first)
{
    if (first)
        *first = false;
    if (!rl || rl->rate <= 0)
        return true;
    struct bucket *b = find(rl, key, now_ms);
    if (now_ms > b->last_ms) {
        b->tokens += (double)(now_ms - b->last_ms) / 1000.0 * rl->rate;
        if (b->tokens > rl->burst)
            b->tokens = rl->burst;
        b->last_ms = now_ms;
    }
    if (b->tokens >= 1.0) {
        b->tokens -= 1.0;
        b->limited = false;
        return true;
    }
    if (first)
        *first = !b->limited;
    b->limited = true;
    if (retry_after_s) {
        double wait = (1.0 - b->tokens) / rl->rate;
        uint32_t s = (uint32_t)wait;
        *retry_after_s = s + ((double)s < wait ? 1 : 0);
        if (*retry_after_s == 0)
            *retry_after_s = 1;
    }
    return false;
}

size_t ratelimit_used(const struct ratelimit *rl)
{
    return rl->used;
}

size_t ratelimit_capacity(const struct ratelimit *rl)
{
    return rl->mask + 1;
}

/* ---- per-account throttling ------------------------------------------------ */

struct throttle_entry {
    uint8_t key[RATELIMIT_KEY_LEN];
    bool used;
    uint32_t consecutive;      /* failures since the last success */
    uint32_t hour_failures;    /* failures in the current hour window */
    bool refusing;             /* in a run of refusals (audited once) */
    uint64_t hour_start_ms, next_ms, last_ms;
};

struct throttle {
    struct throttle_entry *slots;
    size_t mask;
    uint64_t hash_key;
};

struct throttle *throttle_new(size_t capacity)
{
    size_t cap = PROBE_WINDOW;
    while (cap < capacity)
        cap *= 2;
    struct throttle *t = calloc(1, sizeof(*t));
    if (!t || !(t->slots = calloc(cap, sizeof(*t->slots)))) {
        free(t);
        return NULL;
    }
    t->mask = cap - 1;
    if (crypto_random(&t->hash_key, sizeof(t->hash_key)) != 0)
        t->hash_key = 0x9e3779b97f4a7c15u;
    return t;
}

void throttle_free(struct throttle *t)
{
    if (!t)
        return;
    free(t->slots);
    free(t);
}

#define HOUR_MS 3600000u

/* When the key's restriction ends: its backoff, or the end of its hour
 * window once the hourly cap is reached, whichever is later. 0 when the key
 * may try now. */
static uint64_t restricted_until(const struct throttle_entry *e, uint64_t now_ms)
{
    uint64_t until = e->next_ms;
    uint64_t hour_end = e->hour_start_ms + HOUR_MS;
    if (e->hour_failures >= THROTTLE_HOURLY_MAX && now_ms < hour_end && hour_end > until)
        until = hour_end;
    return now_ms < until ? until : 0;
}

/* The failures eviction would forget: the consecutive ones, or those of the
 * current hour window if more. */
static uint32_t failures_held(const struct throttle_entry *e, uint64_t now_ms)
{
    uint32_t n = e->consecutive;
    if (now_ms < e->hour_start_ms + HOUR_MS && e->hour_failures > n)
        n = e->hour_failures;
    return n;
}

/*
 * Whether `a` is a better victim than `b` when a new key needs a slot.
 *
 * An entry whose restriction is in force is never taken while an
 * unrestricted one is in the window: the account would otherwise get fresh
 * guesses from failures on any other names (an attacker's own, from many
 * addresses), and as a refused key is quiet, it was the stalest and went
 * first.
 *
 * Among unrestricted entries the one holding the fewest failures goes, the
 * stalest of equals: eviction forgets the count, and the count is what sets
 * the next delay and the hourly cap. Stalest first would still hand an
 * account under attack a fresh count, only at the attacker's pace: between
 * two of its attempts its delay has passed and it is the stalest entry. To
 * push out an account holding n failures an attacker must now give about
 * every entry of the table n or more failures of its own.
 *
 * When every entry in the window is restricted, the one whose restriction
 * ends soonest goes. That is the least bad choice: the account evicted gives
 * up the shortest remaining wait of any we could pick (and its count of
 * failures), every other lock stands; not tracking the new key instead would
 * let it be guessed without limit, and refusing its logins would let anyone
 * who fills the table shut every other account out. A window is only all
 * restricted when about the whole table is: the hash is keyed with a secret,
 * so nobody can aim at one account's window. With the hourly cap that is 100
 * evaluated failures per entry, about 1.6 million for the default 16,384
 * entries, all within one hour (each lock lasts only until its hour ends);
 * at two argon2id checks at a time the server evaluates far fewer than that
 * in an hour (bench/RESULTS.md: a few a second; even 100 a second is 360,000).
 * Backoffs are cheaper to hold (20 failures reach 15 minutes, one more every
 * 15 minutes keeps it: about 330,000 failures, then 18 a second), but none
 * lasts more than 15 minutes, so the account they push out loses at most 15
 * minutes of its wait.
 *
 * The window is PROBE_WINDOW slots, so choosing costs the same constant
 * number of comparisons as the lookup it ends; there is no scan of the table.
 */
static bool evict_before(const struct throttle_entry *a, const struct throttle_entry *b, uint64_t now_ms)
{
    uint64_t ua = restricted_until(a, now_ms), ub = restricted_until(b, now_ms);
    if ((ua == 0) != (ub == 0))
        return ua == 0;
    if (ua != ub)
        return ua < ub;
    if (ua == 0) {
        uint32_t fa = failures_held(a, now_ms), fb = failures_held(b, now_ms);
        if (fa != fb)
            return fa < fb;
    }
    return a->last_ms < b->last_ms;
}

static struct throttle_entry *t_find(struct throttle *t, const uint8_t key[RATELIMIT_KEY_LEN], bool create,
                                     uint64_t now_ms)
{
    struct ratelimit probe = { .mask = t->mask, .hash_key = t->hash_key };
    size_t start = slot_of(&probe, key);
    struct throttle_entry *free_slot = NULL, *victim = NULL;
    for (size_t i = 0; i < PROBE_WINDOW; i++) {
        struct throttle_entry *e = &t->slots[(start + i) & t->mask];
        if (!e->used) {
            free_slot = free_slot ? free_slot : e;
            continue;
        }
        if (memcmp(e->key, key, RATELIMIT_KEY_LEN) == 0)
            return e;
        if (!victim || evict_before(e, victim, now_ms))
            victim = e;
    }
    if (!create)
        return NULL;
    struct throttle_entry *e = free_slot ? free_slot : victim;
    memset(e, 0, sizeof(*e));
    memcpy(e->key, key, RATELIMIT_KEY_LEN);
    e->used = true;
    e->hour_start_ms = e->last_ms = now_ms;
    return e;
}

/* May entry `e` (NULL: a key never seen) try now? When not, say when. */
static bool entry_allowed(const struct throttle_entry *e, uint64_t now_ms, uint32_t *retry_after_s)
{
    uint64_t until = e ? restricted_until(e, now_ms) : 0;
    if (until == 0)
        return true;
    if (retry_after_s)
        *retry_after_s = (uint32_t)((until - now_ms + 999) / 1000);
    return false;
}

static void count_failure(struct throttle_entry *e, uint64_t now_ms)
{
    if (now_ms >= e->hour_start_ms + HOUR_MS) {
        e->hour_start_ms = now_ms;
        e->hour_failures = 0;
    }
    e->hour_failures++;
    e->consecutive++;
    e->last_ms = now_ms;
    if (e->consecutive >= THROTTLE_FREE_FAILURES) {
        uint32_t shift = e->consecutive - THROTTLE_FREE_FAILURES;
        uint64_t delay_s = shift >= 10 ? THROTTLE_MAX_DELAY_S : (uint64_t)1 << shift;
        if (delay_s > THROTTLE_MAX_DELAY_S)
            delay_s = THROTTLE_MAX_DELAY_S;
        e->next_ms = now_ms + delay_s * 1000;
    }
}

bool throttle_allowed(struct throttle *t, const uint8_t key[RATELIMIT_KEY_LEN], uint64_t now_ms,
                      uint32_t *retry_after_s)
{
    return entry_allowed(t ? t_find(t, key, false, now_ms) : NULL, now_ms, retry_after_s);
}

void throttle_failed(struct throttle *t, const uint8_t key[RATELIMIT_KEY_LEN], uint64_t now_ms)
{
    struct throttle_entry *e = t ? t_find(t, key, true, now_ms) : NULL;
    if (e)
        count_failure(e, now_ms);
}

/* An attempt counts as a failure from the moment it is let in: the ones
 * already waiting for a hashing slot must hold back the next, or every
 * guess sent together is checked before the first failure is counted. */
bool throttle_admit(struct throttle *t, const uint8_t key[RATELIMIT_KEY_LEN], uint64_t now_ms,
                    uint32_t *retry_after_s, bool *first)
{
    if (!t)
        return true;
    struct throttle_entry *e = t_find(t, key, false, now_ms);
    if (!entry_allowed(e, now_ms, retry_after_s)) {
        *first = !e->refusing;                       /* only a known key is refused */
        e->refusing = true;
        return false;
    }
    e = e ? e : t_find(t, key, true, now_ms);
    count_failure(e, now_ms);
    e->refusing = false;
    return true;
}

/* The hour's count gives back only an attempt let in within its window:
 * one from before the window began was counted in the last one. */
static void give_back(struct throttle_entry *e, uint64_t admitted_ms)
{
    if (admitted_ms >= e->hour_start_ms && e->hour_failures > 0)
        e->hour_failures--;
}

void throttle_passed(struct throttle *t, const uint8_t key[RATELIMIT_KEY_LEN], uint64_t admitted_ms)
{
    struct throttle_entry *e = t ? t_find(t, key, false, 0) : NULL;
    if (e) {
        e->consecutive = 0;
        e->next_ms = 0;
        give_back(e, admitted_ms);                 /* it was no failure */
    }
}

void throttle_unused(struct throttle *t, const uint8_t key[RATELIMIT_KEY_LEN], uint64_t admitted_ms)
{
    struct throttle_entry *e = t ? t_find(t, key, false, 0) : NULL;
    if (e) {
        e->consecutive -= e->consecutive > 0;
        give_back(e, admitted_ms);
    }
}

void throttle_succeeded(struct throttle *t, const uint8_t key[RATELIMIT_KEY_LEN])
{
    struct throttle_entry *e = t ? t_find(t, key, false, 0) : NULL;
    if (e) {
        e->consecutive = 0;
        e->next_ms = 0;
    }
}

size_t throttle_capacity(const struct throttle *t)
{
    return t->mask + 1;
}

void ratelimit_addr_key(const uint8_t addr[16], uint8_t out[RATELIMIT_KEY_LEN])
{
    static const uint8_t v4_mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
    memcpy(out, addr, 16);
    if (memcmp(addr, v4_mapped, sizeof(v4_mapped)) != 0)
        memset(out + 8, 0, 8);   /* IPv6: the /64 */
}
