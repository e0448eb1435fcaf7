/*
 * app_passwords.c - how long a failed login must take when the stored
 * password hashes were made under other argon2 settings than the current
 * ones.
 *
 * An unknown name is checked against a dummy hash under the current
 * settings; an account against its own hash, which may predate a change of
 * the settings. After the settings were lowered (or p raised), an old hash
 * costs more to check than the dummy, and a failed login's time would tell
 * that the name exists. So every failed login is padded to
 * app->check_ms x app->fail_pct / 100 (api_auth_jobs.c: check_login()).
 *
 * At start-up app_passwords_open() reads which settings the stored hashes
 * use (one query, no argon2: start-up must stay quick and must not
 * allocate what old settings may ask) and sets fail_pct from their m x t
 * against the current settings. Then app_passwords_chore() times checks
 * under the current settings and under each stored one, once, on the thread
 * pool at the hashing threads' lowered priority, and replaces the estimate
 * by what it measured. A set it cannot time (out of memory, say), or whose
 * estimate is already the cap, keeps its estimate; the job stops between checks when the server stops.
 * Settings that cannot cost more than the current ones (none of m or t
 * higher, p not lower: raised settings) are left out. Nothing here ever
 * lowers fail_pct below 100 or fails the server: the worst outcome is the
 * estimate.
 */
#include "app.h"
#include "crypto.h"
#include "err.h"
#include "http.h"
#include "log.h"
#include "store.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PCT_MAX 10000u             /* padding at most 100x a current check */

static bool same(const struct crypto_argon2 *a, const struct crypto_argon2 *b)
{
    return a->m_kib == b->m_kib && a->t == b->t && a->p == b->p;
}

/* m x t relative to the current settings, in percent (capped). */
static uint32_t estimate(const struct crypto_argon2 *cur, const struct crypto_argon2 *p)
{
    uint64_t pct = (uint64_t)p->m_kib * p->t * 100 / ((uint64_t)cur->m_kib * cur->t);
    return pct < 100 ? 100 : pct > PCT_MAX ? PCT_MAX : (uint32_t)pct;
}

/* Keep the sets a login would verify (the ceilings are all verify checks),
 * other than the current one; the APP_PW_SETS costliest by m x t. */
static int keep_set(void *arg, const char *text)
{
    struct app *app = arg;
    struct crypto_argon2 p;
    const struct crypto_argon2 *cur = &app->argon2;
    if (crypto_password_params(text, &p) != 0 || p.m_kib == 0 || p.t == 0 || p.p == 0 ||
        p.m_kib > CRYPTO_ARGON2_M_MAX || p.t > CRYPTO_ARGON2_T_MAX || p.p > CRYPTO_ARGON2_P_MAX || same(&p, cur))
        return 0;
    if (p.m_kib <= cur->m_kib && p.t <= cur->t && p.p >= cur->p)
        return 0;                             /* never costlier: nothing to pad for */
    size_t n = app->n_pw_sets, at = n;
    while (at > 0 && estimate(&app->argon2, &app->pw_sets[at - 1]) < estimate(&app->argon2, &p))
        at--;
    if (at == APP_PW_SETS)
        return 0;
    if (n == APP_PW_SETS)
        n--;
    memmove(&app->pw_sets[at + 1], &app->pw_sets[at], (n - at) * sizeof(p));
    app->pw_sets[at] = p;
    app->n_pw_sets = n + 1;
    return 0;
}

int app_passwords_open(struct app *app, char *err, size_t errlen)
{
    app->n_pw_sets = 0;
    app->pw_measured = false;
    atomic_store(&app->fail_pct, 100);
    int rc = store_user_param_sets(app->store, CRYPTO_PHC_PREFIX, keep_set, app);
    if (rc) {
        snprintf(err, errlen, "cannot read the stored password settings (%s)", err_name(rc));
        return rc;
    }
    if (app->n_pw_sets == 0)
        return 0;
    uint32_t pct = estimate(&app->argon2, &app->pw_sets[0]);
    atomic_store(&app->fail_pct, pct);
    log_info("stored password hashes use %zu other argon2id setting(s), up to m=%" PRIu32 ",t=%" PRIu32
             ",p=%" PRIu32 ": failed logins padded to an estimated %" PRIu32 "%% of a current check until timed",
             app->n_pw_sets, app->pw_sets[0].m_kib, app->pw_sets[0].t, app->pw_sets[0].p, pct);
    return 0;
}

/* ---- the timing job (thread pool) ----------------------------------------- */

struct timing_job {
    struct http_job base;
    struct app *app;
    size_t n;
    char cur_phc[CRYPTO_PHC_MAX];
    char phc[APP_PW_SETS][CRYPTO_PHC_MAX];     /* "" where no dummy could be made */
    uint64_t cur_ms, ms[APP_PW_SETS];          /* 0: not timed */
};

/* The least of `runs` checks: the first run also pays for cold caches.
 * 0 when one fails or the server is stopping. */
static uint64_t least_ms(const struct app *app, const char *phc, int runs)
{
    uint64_t best = 0;
    for (int i = 0; i < runs; i++) {
        if (atomic_load(&app->pw_stop))
            return 0;
        uint64_t ms = 0;
        if (crypto_password_check_ms(phc, &ms) != 0)
            return 0;
        ms = ms ? ms : 1;
        best = best == 0 || ms < best ? ms : best;
    }
    return best;
}

static void timing_work(struct http_job *base)
{
    struct timing_job *j = (struct timing_job *)base;
    crypto_password_background();
    j->cur_ms = least_ms(j->app, j->cur_phc, 3);
    for (size_t i = 0; i < j->n && j->cur_ms; i++)
        j->ms[i] = j->phc[i][0] ? least_ms(j->app, j->phc[i], 2) : 0;
}

/* Back on the loop: each set's measured factor, or its estimate. */
static void timing_done(struct http_job *base, struct http_response *res)
{
    (void)res;
    struct timing_job *j = (struct timing_job *)base;
    struct app *app = j->app;
    uint32_t pct = 100;
    size_t untimed = 0;
    for (size_t i = 0; i < j->n; i++) {
        uint64_t p = j->cur_ms && j->ms[i] ? j->ms[i] * 100 / j->cur_ms : estimate(&app->argon2, &app->pw_sets[i]);
        untimed += !(j->cur_ms && j->ms[i]);
        p = p < 100 ? 100 : p > PCT_MAX ? PCT_MAX : p;
        pct = p > pct ? (uint32_t)p : pct;
    }
    /* Only a first mean: the running one is made of real checks at nice
     * 10 under load, which this best-of-3 would undercut. */
    uint64_t none = 0;
    if (j->cur_ms)
        atomic_compare_exchange_strong(&app->check_ms, &none, j->cur_ms);
    atomic_store(&app->fail_pct, pct);
    if (untimed)
        log_warn("did not time a check under %zu stored argon2id setting(s): their estimate stands", untimed);
    log_info("stored password hashes under other argon2id settings cost up to %" PRIu32 "%% of a current check "
             "(%s): failed logins take that long", pct, untimed == j->n ? "estimated" : "timed");
    if (pct == PCT_MAX)
        log_warn("stored password hashes cost %u times a current check or more: failed logins are padded to "
                 "that cap, beyond it their time still tells",
                 PCT_MAX / 100);
    free(j);
}

/* A chore: once, when there are other settings to time. The dummies are
 * made here because they need PSA's RNG, which is the loop's. */
struct http_job *app_passwords_chore(void *arg)
{
    struct app *app = arg;
    if (app->pw_measured || app->n_pw_sets == 0)
        return NULL;
    struct timing_job *j = calloc(1, sizeof(*j));
    if (!j)
        return NULL;                          /* the next tick tries again */
    app->pw_measured = true;
    j->base.work = timing_work;
    j->base.done = timing_done;
    j->app = app;
    j->n = app->n_pw_sets;
    if (crypto_password_dummy(&app->argon2, j->cur_phc) != 0)
        j->cur_phc[0] = '\0';
    /* Settings already estimated at the cap are not timed: the padding can
     * go no higher, and they may ask for gigabytes. */
    for (size_t i = 0; i < j->n; i++) {
        bool capped = estimate(&app->argon2, &app->pw_sets[i]) >= PCT_MAX;
        if (capped || crypto_password_dummy(&app->pw_sets[i], j->phc[i]) != 0)
            j->phc[i][0] = '\0';
    }
    return &j->base;
}
