/*
 * api_auth_jobs.c - the password jobs behind api_auth.c's handlers: a job's
 * lifetime, its work on the thread pool, and the checks its done() makes
 * back on the event loop.
 *
 * A handler gets a struct pw_job from api_auth_job_new() (or from
 * api_auth_job_for_caller(), which also throttles guesses at the caller's
 * own password) and moves the passwords into it. pw_work() then runs on a
 * libuv pool thread ten nice steps below the server: argon2id verifies and
 * hashes, a failed login takes at least a current check's measured time
 * (times app->fail_pct), holding its hashing slot throughout, and an erasure runs
 * on a database connection of its own. The done() callbacks in
 * api_auth.c decide the answer with the shared steps here: the audit line,
 * the 500, the refused or cancelled job, and whether the password a job
 * checked is still the account's. It owns each job
 * from api_auth_job_new() to api_auth_job_free(), which wipes the passwords
 * and the job. The work must never touch anything but its job, the
 * read-only settings, app->check_ms, app->fail_pct and (erasure) its own
 * connection; and
 * nothing here may keep a password, or answer a client, past the job.
 */
#include "api_auth_int.h"
#include "app.h"
#include "audit.h"
#include "crypto.h"
#include "ratelimit.h"
#include "store.h"

#include "utc.h"
#include <errno.h>
#include <mbedtls/platform_util.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void api_auth_job_free(struct pw_job *j)
{
    if (j->pw)
        mbedtls_platform_zeroize(j->pw, j->pw_len);
    if (j->new_pw)
        mbedtls_platform_zeroize(j->new_pw, j->new_len);
    free(j->pw);
    free(j->new_pw);
    mbedtls_platform_zeroize(j, sizeof(*j));
    free(j);
}

void api_auth_job_audit(struct pw_job *j, const char *event, int result, int status, const char *reason)
{
    /* A login that did not succeed was made by someone not logged in: the
     * actor is anonymous (issue 5), the account tried is the resource. */
    bool as_account = j->user_ok && (j->kind != JOB_LOGIN || result == AUDIT_SUCCESS);
    struct audit_event ev = { .event = event, .actor_id = as_account ? j->user_id : 0,
                              .role = as_account ? authz_role_name(j->role) : "anonymous",
                              .request_id = j->request_id, .resource_type = j->user_id ? "user" : NULL,
                              .resource_id = j->user_id, .result = (enum audit_result)result,
                              .status = status, .reason = reason, .ip = j->has_peer ? j->peer : NULL };
    audit_record(j->app->audit, &ev);
}

/*
 * Erasure runs here, on its own database connection, because it ends with a
 * blocking WAL checkpoint: after it, neither the database file nor the -wal
 * file holds the account's pages (secure_delete zeroed the freed ones). A
 * reader that outlasts the wait keeps the WAL from being truncated; the
 * erasure is done by then, and the checkpoint job truncates later
 * (j->scrub_rc).
 */
static int delete_account(struct pw_job *j)
{
    char err[256];
    struct store *own = NULL;
    int rc = store_open(&own, j->app->cfg->db_path, err, sizeof(err));
    /* Only if the password checked is still the account's, and the asking
     * session still exists: a password change may have finished meanwhile. */
    rc = rc ? rc : store_user_delete_if_current(own, j->user_id, j->password_gen, j->token_hash);
    if (rc == 0)
        j->scrub_rc = store_checkpoint(own);
    store_close(own);
    return rc;
}

/* Unknown names are checked against a hash made with the current settings,
 * accounts against their own, which may predate a change of the settings
 * and cost less (or more). So a failed login takes at least as long as a
 * check under the current settings (a running mean, measured by the checks
 * under them), times app->fail_pct when stored hashes under other settings
 * cost more (app_passwords.c): its time does not tell whether the name
 * exists. The padding sleeps here, in the job's hashing slot: a failed
 * login of an account with a costlier hash holds its slot that long, so
 * one of an unknown name must too, or the moment a slot comes free would
 * tell them apart. Before the first check under the current settings, one
 * check of the dummy hash measures the mean. */
static void check_login(struct pw_job *j, const struct crypto_argon2 *params)
{
    uint64_t t0 = utc_monotonic_ms();
    j->verify_rc = crypto_password_verify(j->phc, j->pw, j->pw_len, params, &j->rehash);
    uint64_t took = utc_monotonic_ms() - t0;
    uint64_t mean = atomic_load(&j->app->check_ms);
    uint32_t pct = atomic_load(&j->app->fail_pct);
    pct = pct > 100 ? pct : 100;
    if (crypto_password_same_params(j->phc, params)) {
        mean = mean ? (mean * 7 + took) / 8 : took;
        atomic_store(&j->app->check_ms, mean);
        if (pct == 100)
            return;                 /* it cost what such a check costs */
    }
    if (j->verify_rc == 0 && j->user_ok)
        return;                     /* the right password: nothing left to hide */
    if (mean == 0) {
        bool unused;
        uint64_t t1 = utc_monotonic_ms();
        (void)crypto_password_verify(j->dummy_phc, j->pw, j->pw_len, params, &unused);
        mean = utc_monotonic_ms() - t1;
        atomic_store(&j->app->check_ms, mean);
    }
    uint64_t want = mean * pct / 100, spent = utc_monotonic_ms() - t0;
    if (spent >= want)
        return;
    struct timespec left = { (time_t)((want - spent) / 1000), (long)((want - spent) % 1000) * 1000000L };
    while (nanosleep(&left, &left) != 0 && errno == EINTR)
        ;
}

/* Thread pool: only the job's own memory (and, for erasure, its own
 * database connection) is touched here. */
static void pw_work(struct http_job *base)
{
    struct pw_job *j = (struct pw_job *)base;
    crypto_password_background();
    struct crypto_argon2 params = j->app->argon2;   /* plain values, read-only */
    if (j->kind == JOB_LOGIN)
        check_login(j, &params);
    else if (j->kind != JOB_REGISTER)
        j->verify_rc = crypto_password_verify(j->phc, j->pw, j->pw_len, &params, &j->rehash);
    bool must_hash = j->kind == JOB_REGISTER || (j->kind == JOB_PASSWORD && j->verify_rc == 0) ||
                     (j->kind == JOB_LOGIN && j->verify_rc == 0 && j->rehash && j->user_ok);
    if (j->kind == JOB_DELETE_ME && j->verify_rc == 0)
        j->delete_rc = delete_account(j);
    if (!must_hash)
        return;
    const char *pw = j->kind == JOB_PASSWORD ? j->new_pw : j->pw;
    size_t len = j->kind == JOB_PASSWORD ? j->new_len : j->pw_len;
    j->hash_rc = crypto_password_hash(&params, pw, len, j->salt, j->new_phc);
}

struct pw_job *api_auth_job_new(struct route_ctx *ctx, enum job_kind kind, void (*done)(struct http_job *, struct http_response *))
{
    struct pw_job *j = calloc(1, sizeof(*j));
    if (!j)
        return NULL;
    j->base.work = pw_work;
    j->base.done = done;
    j->kind = kind;
    j->app = ctx->app;
    j->user_id = ctx->who.user_id;
    j->role = ctx->who.role;
    j->user_ok = ctx->who.authenticated;
    j->dummy_phc = crypto_dummy_phc(ctx->app->crypto);
    memcpy(j->token_hash, ctx->who.token_hash, sizeof(j->token_hash));
    memcpy(j->request_id, ctx->req->id, sizeof(j->request_id) - 1);
    if (ctx->req->peer) {
        memcpy(j->peer, ctx->req->peer, sizeof(j->peer));
        j->has_peer = true;
    }
    if (crypto_random(j->salt, sizeof(j->salt)) != 0) {
        free(j);
        return NULL;
    }
    return j;
}

/* A job checking the caller's own password: it carries the stored hash
 * and a throttle key of its own for the account, so a token's holder
 * guesses the password no faster than a login could. Apart from the login
 * throttle on purpose: failed logins by someone who knows only the name do
 * not stop the owner's password change, and the token's holder does not
 * lock the owner out of logging in. NULL with *limited set when the 429 is
 * written. */
struct pw_job *api_auth_job_for_caller(struct route_ctx *ctx, enum job_kind kind,
                                       void (*done)(struct http_job *, struct http_response *), bool *limited)
{
    struct store_user u;
    *limited = false;
    if (store_user_get(ctx->app->store, ctx->who.user_id, &u) != 0)
        return NULL;
    char label[48];
    int n = snprintf(label, sizeof(label), "current-password:%lld", (long long)u.id);
    uint8_t hash[CRYPTO_TOKEN_HASH_LEN], key[RATELIMIT_KEY_LEN];
    if (n < 0 || crypto_token_hash(ctx->app->crypto, label, (size_t)n, hash) != 0)
        memset(hash, 0, sizeof(hash));
    memcpy(key, hash, sizeof(key));
    uint32_t retry = 0;
    bool first = false;
    struct pw_job *j = NULL;
    uint64_t now_ms = utc_monotonic_ms();
    if (!throttle_admit(ctx->app->throttle, key, now_ms, &retry, &first)) {
        route_fail_rate(ctx, retry, first, "password_throttled");
        *limited = true;
    } else if ((j = api_auth_job_new(ctx, kind, done)) != NULL) {
        memcpy(j->phc, u.password_hash, strnlen(u.password_hash, sizeof(j->phc) - 1));
        j->password_gen = u.password_gen;
        memcpy(j->name_key, key, sizeof(j->name_key));
        j->throttled = true;
        j->admitted_ms = now_ms;
    } else {
        throttle_unused(ctx->app->throttle, key, now_ms);
    }
    mbedtls_platform_zeroize(&u, sizeof(u));
    return j;
}

/* An attempt the throttle let in counts as a failure from then on
 * (throttle_admit()) and ends here, once: a job cancelled before it ran
 * gives its counts back, a check that passed takes its failure back,
 * anything else stays a failure. */
void api_auth_throttle_settle(struct pw_job *j, bool passed)
{
    if (!j->throttled)
        return;
    j->throttled = false;
    if (j->base.cancelled)
        throttle_unused(j->app->throttle, j->name_key, j->admitted_ms);
    else if (passed)
        throttle_passed(j->app->throttle, j->name_key, j->admitted_ms);
}

void api_auth_job_fail_internal(struct pw_job *j, struct http_response *res, const char *event)
{
    http_problem(res, 500, NULL, "The server could not complete this request.");
    api_auth_job_audit(j, event, AUDIT_ERROR, 500, "internal");
}

/* The work never ran (its connection went first): nothing was checked, so
 * nothing is answered, recorded or changed. Or the guard could not open
 * its transaction (router.c): answer 503 and change nothing. true when the
 * job is done with. */
bool api_auth_job_refused(struct pw_job *j, struct http_response *res, const char *event)
{
    if (!j->base.cancelled && !j->base.refused)
        return false;
    /* Refused (the guard had no transaction): the check ran and counts. */
    api_auth_throttle_settle(j, j->verify_rc == 0);
    if (!j->base.cancelled) {
        route_refuse_busy(res);
        api_auth_job_audit(j, event, AUDIT_ERROR, 503, "store_busy");
    }
    api_auth_job_free(j);
    return true;
}

/* ---- is the checked password still the account's ------------------------ */

/* Inside the guard's write transaction: the account still has the password
 * this job checked (the same password_gen: a login's upgrade of the hash
 * keeps it, a change does not) and is still enabled. */
bool api_auth_still_current(const struct pw_job *j)
{
    struct store_user u;
    if (store_user_get(j->app->store, j->user_id, &u) != 0)
        return false;
    bool same = !u.disabled && u.password_gen == j->password_gen;
    mbedtls_platform_zeroize(&u, sizeof(u));
    return same;
}

/* The same for a job a session asked for: that session still exists too
 * (a password change finished meanwhile revokes it). */
bool api_auth_caller_current(const struct pw_job *j)
{
    struct store_session s;
    return api_auth_still_current(j) && store_session_get(j->app->store, j->token_hash, &s) == 0 &&
           s.user_id == j->user_id;
}
