/*
 * api_auth.c - registration, login, logout and password change.
 *
 * Password hashing (argon2id, tens of milliseconds) never runs on the event
 * loop: the handler validates, copies what the work needs into a job, and
 * the thread pool hashes or verifies; the job's done() finishes on the loop
 * with the store. Unknown users are verified against a dummy hash so a login
 * costs the same whether or not the name exists, and both failures answer
 * the same 401. Passwords are wiped from memory as soon as they are used.
 */
#include "api.h"
#include "app.h"
#include "audit.h"
#include "crypto.h"
#include "err.h"
#include "json.h"
#include "log.h"
#include "ratelimit.h"
#include "store.h"
#include "validate.h"

#include "utc.h"
#include <errno.h>
#include <mbedtls/platform_util.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define LOGIN_PASSWORD_MAX 1024   /* bytes accepted at login: policy applies at set time */

enum job_kind { JOB_REGISTER, JOB_LOGIN, JOB_PASSWORD, JOB_DELETE_ME };

struct pw_job {
    struct http_job base;
    enum job_kind kind;
    struct app *app;
    char request_id[HTTP_ID_LEN + 1];
    uint8_t peer[16];                   /* client address, for the audit line */
    bool has_peer;
    int64_t user_id;
    enum role role;
    bool user_ok;                       /* the account exists and is enabled */
    uint8_t token_hash[CRYPTO_TOKEN_HASH_LEN];
    char username[VALIDATE_USERNAME_MAX + 1];
    char *pw;                           /* to verify (login, password change) or hash (register) */
    size_t pw_len;
    char *new_pw;                       /* password change: the new one */
    size_t new_len;
    char phc[CRYPTO_PHC_MAX];           /* stored hash to verify against */
    const char *dummy_phc;              /* current settings, matches nothing (immutable) */
    uint8_t salt[CRYPTO_SALT_LEN];
    char new_phc[CRYPTO_PHC_MAX];       /* produced by work() */
    int verify_rc, hash_rc, delete_rc;
    bool rehash;
    uint8_t name_key[RATELIMIT_KEY_LEN];   /* login throttling key */
};

static void job_free(struct pw_job *j)
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

static void job_audit(struct pw_job *j, const char *event, int result, int status, const char *reason)
{
    struct audit_event ev = { .event = event, .actor_id = j->user_ok ? j->user_id : 0,
                              .role = j->user_ok ? authz_role_name(j->role) : "anonymous",
                              .request_id = j->request_id, .resource_type = j->user_id ? "user" : NULL,
                              .resource_id = j->user_id, .result = (enum audit_result)result,
                              .status = status, .reason = reason, .ip = j->has_peer ? j->peer : NULL };
    audit_record(j->app->audit, &ev);
}

/*
 * Erasure runs here, on its own database connection, because it ends with a
 * blocking WAL checkpoint: after it, neither the database file nor the -wal
 * file holds the account's pages (secure_delete zeroed the freed ones).
 */
static int delete_account(struct pw_job *j)
{
    char err[256];
    struct store *own = NULL;
    int rc = store_open(&own, j->app->cfg->db_path, err, sizeof(err));
    /* Only if the password checked is still the account's, and the asking
     * session still exists: a password change may have finished meanwhile. */
    rc = rc ? rc : store_user_delete_if_current(own, j->user_id, j->phc, j->token_hash);
    rc = rc ? rc : store_checkpoint(own);
    store_close(own);
    return rc;
}

/* Thread pool: only the job's own memory (and, for erasure, its own
 * database connection) is touched here. */
/* argon2id runs at nice 10: on a small box a login storm must not take the
 * CPU from the event loop (every other client). Once per pool thread; the
 * thread's other jobs (checkpoints, audit syncs) are background work too. */
static void lower_priority(void)
{
    static _Thread_local bool lowered;
    /* Linux: PRIO_PROCESS with 0 is the calling thread (nice is per thread);
     * seccomp allows no other target. */
    if (!lowered && setpriority(PRIO_PROCESS, 0, 10) == 0)
        lowered = true;
}

/* Unknown names are checked against a hash made with the current settings,
 * accounts against their own, which may predate a change of the settings
 * and cost less (or more). So a failed login takes at least as long as a
 * check under the current settings, and its time does not tell whether the
 * name exists. Checks under the current settings keep that cost measured;
 * before the first one, one check of the dummy hash measures it. */
static void check_login(struct pw_job *j, const struct crypto_argon2 *params)
{
    uint64_t t0 = utc_monotonic_ms();
    j->verify_rc = crypto_password_verify(j->phc, j->pw, j->pw_len, params, &j->rehash);
    uint64_t took = utc_monotonic_ms() - t0;
    if (crypto_password_same_params(j->phc, params)) {
        uint64_t mean = atomic_load(&j->app->check_ms);
        atomic_store(&j->app->check_ms, mean ? (mean * 7 + took) / 8 : took);
        return;
    }
    if (j->verify_rc == 0 && j->user_ok)
        return;                     /* the right password: nothing left to hide */
    uint64_t want = atomic_load(&j->app->check_ms);
    if (want == 0) {
        bool unused;
        t0 = utc_monotonic_ms();
        (void)crypto_password_verify(j->dummy_phc, j->pw, j->pw_len, params, &unused);
        atomic_store(&j->app->check_ms, utc_monotonic_ms() - t0);
        return;
    }
    if (took >= want)
        return;
    struct timespec left = { (time_t)((want - took) / 1000), (long)((want - took) % 1000) * 1000000L };
    while (nanosleep(&left, &left) != 0 && errno == EINTR)
        ;
}

static void pw_work(struct http_job *base)
{
    struct pw_job *j = (struct pw_job *)base;
    lower_priority();
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

static struct pw_job *job_new(struct route_ctx *ctx, enum job_kind kind, void (*done)(struct http_job *, struct http_response *))
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

/* Limits keyed by the name a client tried (a keyed hash: the table never
 * holds usernames): the per-name rate and, for logins, the per-account
 * failure throttle. 0 when allowed; otherwise the 429 is written. */
static int name_limits(struct route_ctx *ctx, const char *name, size_t n, bool login,
                       uint8_t key[RATELIMIT_KEY_LEN])
{
    uint8_t hash[CRYPTO_TOKEN_HASH_LEN];
    if (crypto_token_hash(ctx->app->crypto, name, n, hash) != 0)
        memset(hash, 0, sizeof(hash));
    memcpy(key, hash, RATELIMIT_KEY_LEN);
    uint32_t retry = 0;
    bool first = false;
    uint64_t now = utc_monotonic_ms();
    if (!ratelimit_take_ex(ctx->app->rl_auth_name, key, now, &retry, &first)) {
        route_fail_rate(ctx, retry, first, "rate_limited");
        return ERR_LIMIT;
    }
    if (login && !throttle_allowed(ctx->app->throttle, key, now, &retry)) {
        route_fail_rate(ctx, retry, true, "login_throttled");
        return ERR_LIMIT;
    }
    return 0;
}

/* A job checking the caller's own password: it carries the stored hash
 * and a throttle key of its own for the account, so a token's holder
 * guesses the password no faster than a login could. Apart from the login
 * throttle on purpose: failed logins by someone who knows only the name do
 * not stop the owner's password change, and the token's holder does not
 * lock the owner out of logging in. NULL with *limited set when the 429 is
 * written. */
static struct pw_job *job_for_caller(struct route_ctx *ctx, enum job_kind kind,
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
    struct pw_job *j = NULL;
    if (!throttle_allowed(ctx->app->throttle, key, utc_monotonic_ms(), &retry)) {
        route_fail_rate(ctx, retry, true, "password_throttled");
        *limited = true;
    } else if ((j = job_new(ctx, kind, done)) != NULL) {
        memcpy(j->phc, u.password_hash, strnlen(u.password_hash, sizeof(j->phc) - 1));
        memcpy(j->name_key, key, sizeof(j->name_key));
    }
    mbedtls_platform_zeroize(&u, sizeof(u));
    return j;
}

/* A current password checked by a job counts for the account's throttle
 * as a login would. */
static void throttle_outcome(struct pw_job *j)
{
    if (j->verify_rc != 0)
        throttle_failed(j->app->throttle, j->name_key, utc_monotonic_ms());
    else
        throttle_succeeded(j->app->throttle, j->name_key);
}

static void job_fail_internal(struct pw_job *j, struct http_response *res, const char *event)
{
    http_problem(res, 500, NULL, "The server could not complete this request.");
    job_audit(j, event, AUDIT_ERROR, 500, "internal");
}

/* The work never ran (its connection went first): nothing was checked, so
 * nothing is answered, recorded or changed. Or the guard could not open
 * its transaction (router.c): answer 503 and change nothing. true when the
 * job is done with. */
static bool job_refused(struct pw_job *j, struct http_response *res, const char *event)
{
    if (!j->base.cancelled && !j->base.refused)
        return false;
    if (!j->base.cancelled) {
        route_refuse_busy(res);
        job_audit(j, event, AUDIT_ERROR, 503, "store_busy");
    }
    job_free(j);
    return true;
}

/* Move a validated field's value into the job (no copy left behind). */
static void take(struct validate_field *f, char **dst, size_t *len)
{
    *dst = f->value;
    *len = f->len;
    f->value = NULL;
    f->len = 0;
}

static void json_user(struct buf *b, int64_t id, const char *username, const char *role, int64_t created)
{
    int rc = buf_append(b, "{", 1);
    rc = rc ? rc : api_json_int(b, true, "id", id);
    rc = rc ? rc : api_json_str(b, false, "username", username, strlen(username));
    rc = rc ? rc : api_json_str(b, false, "role", role, strlen(role));
    rc = rc ? rc : api_json_time(b, false, "created_at", created);
    if (rc == 0)
        buf_append(b, "}", 1);
}

/* ---- register ------------------------------------------------------------ */

static void register_done(struct http_job *base, struct http_response *res)
{
    struct pw_job *j = (struct pw_job *)base;
    if (job_refused(j, res, "auth.register"))
        return;
    int64_t now = (int64_t)time(NULL), id = 0;
    int rc = j->hash_rc ? ERR_CRYPTO : store_user_insert(j->app->store, j->username, "user", j->new_phc, now, &id);
    if (rc == ERR_EXISTS) {
        http_problem(res, 409, "username", "This username is taken.");
        job_audit(j, "auth.register", AUDIT_DENY, 409, "conflict");
    } else if (rc != 0) {
        job_fail_internal(j, res, "auth.register");
    } else {
        j->user_id = id;
        res->status = 201;
        json_user(&res->body, id, j->username, "user", now);
        job_audit(j, "auth.register", AUDIT_SUCCESS, 201, NULL);
    }
    job_free(j);
}

void api_register(struct route_ctx *ctx)
{
    if (!ctx->app->cfg->registration_open) {
        http_problem(ctx->res, 403, NULL, "Registration is closed on this server.");
        api_audit(ctx, "auth.register", NULL, 0, AUDIT_DENY, 403, "registration_closed");
        return;
    }
    struct validate_errors errs = { 0 };
    struct validate_field f[] = {
        { .name = "username", .required = true, .max_bytes = 256 },
        { .name = "password", .required = true, .max_bytes = LOGIN_PASSWORD_MAX },
    };
    char name[VALIDATE_USERNAME_MAX + 1] = "";
    struct pw_job *j = NULL;
    if (validate_json_object(ctx->req->body, f, 2, &errs) == 0) {
        validate_username(f[0].value, f[0].len, name, "username", &errs);
        validate_password(f[1].value, f[1].len, "password", &errs);
    }
    uint8_t key[RATELIMIT_KEY_LEN];
    if (errs.n) {
        route_fail_validation(ctx, &errs);
    } else if (name_limits(ctx, name, strlen(name), false, key) != 0) {
        /* 429 written */
    } else if (!(j = job_new(ctx, JOB_REGISTER, register_done))) {
        api_fail_internal(ctx, "auth.register");
    } else {
        memcpy(j->username, name, sizeof(j->username));
        take(&f[1], &j->pw, &j->pw_len);
        ctx->res->job = &j->base;
    }
    validate_fields_free(f, 2);
}

/* ---- login --------------------------------------------------------------- */

static void login_fail(struct pw_job *j, struct http_response *res, const char *reason)
{
    http_problem(res, 401, NULL, "The username or password is wrong.");
    http_add_header(res, "WWW-Authenticate", "Bearer realm=\"notesd\"");
    job_audit(j, "auth.login", AUDIT_DENY, 401, reason);
}

static void phc_digest(const char *phc, uint8_t out[32])
{
    if (crypto_sha256(phc, strnlen(phc, STORE_PHC_MAX), out) != 0)
        memset(out, 0, 32);   /* matches no upgrade: fails closed */
}

/* A login replaced `from` with `to` (same password, current settings). */
static void note_upgrade(struct app *app, int64_t user_id, const char *from, const char *to)
{
    struct app_upgrade *u = &app->upgrades[app->upgrades_next++ % APP_UPGRADES];
    u->user_id = user_id;
    phc_digest(from, u->from);
    phc_digest(to, u->to);
}

static bool upgraded(const struct app *app, int64_t user_id, const char *from, const char *to)
{
    uint8_t f[32], t[32];
    phc_digest(from, f);
    phc_digest(to, t);
    for (size_t i = 0; i < APP_UPGRADES; i++) {
        const struct app_upgrade *u = &app->upgrades[i];
        if (u->user_id == user_id && user_id != 0 && memcmp(u->from, f, 32) == 0 && memcmp(u->to, t, 32) == 0)
            return true;
    }
    return false;
}

/* Inside the guard's write transaction: the account still holds the hash
 * this job verified (`as_read`), or the upgrade a login made of it (the
 * same password under the current settings), and is still enabled. */
static bool still_current(const struct pw_job *j, bool *as_read)
{
    struct store_user u;
    *as_read = false;
    if (store_user_get(j->app->store, j->user_id, &u) != 0)
        return false;
    *as_read = strncmp(u.password_hash, j->phc, sizeof(u.password_hash)) == 0;
    bool same = !u.disabled && (*as_read || upgraded(j->app, j->user_id, j->phc, u.password_hash));
    mbedtls_platform_zeroize(&u, sizeof(u));
    return same;
}

/* The same for a job a session asked for: that session still exists too
 * (a password change finished meanwhile revokes it). */
static bool caller_current(const struct pw_job *j)
{
    struct store_session s;
    bool as_read;
    return still_current(j, &as_read) && store_session_get(j->app->store, j->token_hash, &s) == 0 &&
           s.user_id == j->user_id;
}

static void login_done(struct http_job *base, struct http_response *res)
{
    struct pw_job *j = (struct pw_job *)base;
    if (job_refused(j, res, "auth.login"))
        return;
    if (j->verify_rc != 0 || !j->user_ok) {
        throttle_failed(j->app->throttle, j->name_key, utc_monotonic_ms());
        login_fail(j, res, j->user_ok ? "bad_password" : "unknown_user");
        job_free(j);
        return;
    }
    bool as_read;
    if (!still_current(j, &as_read)) {
        /* The password was changed (or the account disabled) while this
         * login hashed: the password it checked is no longer the one. */
        throttle_failed(j->app->throttle, j->name_key, utc_monotonic_ms());
        login_fail(j, res, "password_changed");
        job_free(j);
        return;
    }
    throttle_succeeded(j->app->throttle, j->name_key);
    struct app *app = j->app;
    int64_t now = (int64_t)time(NULL);
    if (j->rehash && j->hash_rc == 0 && as_read && store_user_set_password(app->store, j->user_id, j->new_phc) == 0)
        note_upgrade(app, j->user_id, j->phc, j->new_phc);
    char token[CRYPTO_TOKEN_LEN + 1];
    uint8_t hash[CRYPTO_TOKEN_HASH_LEN];
    int64_t expires = now + (int64_t)app->cfg->token_lifetime_s;
    int rc = crypto_token_new(token);
    rc = rc ? rc : crypto_token_hash(app->crypto, token, strlen(token), hash);
    rc = rc ? rc : store_session_insert(app->store, hash, j->user_id, now, expires);
    if (rc) {
        login_fail(j, res, "session");   /* e.g. the account was deleted meanwhile */
    } else {
        res->status = 200;
        struct buf *b = &res->body;
        rc = buf_append(b, "{", 1);
        rc = rc ? rc : api_json_str(b, true, "token", token, strlen(token));
        rc = rc ? rc : api_json_str(b, false, "token_type", "Bearer", 6);
        rc = rc ? rc : api_json_time(b, false, "expires_at", expires);
        if (rc == 0)
            buf_append(b, "}", 1);
        job_audit(j, "auth.login", AUDIT_SUCCESS, 200, NULL);
    }
    mbedtls_platform_zeroize(token, sizeof(token));
    job_free(j);
}

void api_login(struct route_ctx *ctx)
{
    struct validate_errors errs = { 0 };
    struct validate_field f[] = {
        { .name = "username", .required = true, .max_bytes = 256 },
        { .name = "password", .required = true, .max_bytes = LOGIN_PASSWORD_MAX },
    };
    char name[VALIDATE_USERNAME_MAX + 1] = "";
    struct pw_job *j = NULL;
    uint8_t key[RATELIMIT_KEY_LEN];
    if (validate_json_object(ctx->req->body, f, 2, &errs) == 0 && f[1].len == 0)
        validate_add(&errs, "password", "must not be empty");
    /* Throttle by the canonical name when it is one, else by what was sent. */
    struct validate_errors ignore_name = { 0 };
    bool canonical = errs.n == 0 && validate_username(f[0].value, f[0].len, name, "username", &ignore_name) == 0;
    if (errs.n) {
        route_fail_validation(ctx, &errs);
    } else if (name_limits(ctx, canonical ? name : f[0].value, canonical ? strlen(name) : f[0].len, true, key) != 0) {
        /* 429 written */
    } else if (!(j = job_new(ctx, JOB_LOGIN, login_done))) {
        api_fail_internal(ctx, "auth.login");
    } else {
        /* A malformed name cannot exist: same path as an unknown one. */
        struct store_user u;
        bool found = canonical && store_user_get_by_name(ctx->app->store, name, &u) == 0;
        memcpy(j->name_key, key, sizeof(j->name_key));
        j->user_ok = found && !u.disabled;
        j->user_id = found ? u.id : 0;
        j->role = found ? authz_role_parse(u.role) : ROLE_NONE;
        const char *phc = found ? u.password_hash : crypto_dummy_phc(ctx->app->crypto);
        memcpy(j->phc, phc, strnlen(phc, sizeof(j->phc) - 1));
        take(&f[1], &j->pw, &j->pw_len);
        ctx->res->job = &j->base;
        if (found)
            mbedtls_platform_zeroize(&u, sizeof(u));
    }
    validate_fields_free(f, 2);
}

/* ---- logout -------------------------------------------------------------- */

void api_logout(struct route_ctx *ctx)
{
    if (store_session_delete(ctx->app->store, ctx->who.token_hash) != 0) {
        api_fail_internal(ctx, "auth.logout");
        return;
    }
    route_forget_token(ctx);
    ctx->res->status = 204;
    api_audit(ctx, "auth.logout", "user", ctx->who.user_id, AUDIT_SUCCESS, 204, NULL);
}

/* ---- password change ----------------------------------------------------- */

static void password_done(struct http_job *base, struct http_response *res)
{
    struct pw_job *j = (struct pw_job *)base;
    if (job_refused(j, res, "auth.password_change"))
        return;
    struct app *app = j->app;
    throttle_outcome(j);
    if (j->verify_rc != 0) {
        http_problem(res, 403, "current_password", "The current password is wrong.");
        job_audit(j, "auth.password_change", AUDIT_DENY, 403, "bad_password");
    } else if (!caller_current(j)) {
        /* Checked against a password another change replaced meanwhile. */
        http_problem(res, 403, "current_password", "The password was changed meanwhile.");
        job_audit(j, "auth.password_change", AUDIT_DENY, 403, "password_changed");
    } else if (j->hash_rc != 0 || store_user_set_password(app->store, j->user_id, j->new_phc) != 0 ||
               store_session_delete_user(app->store, j->user_id, j->token_hash) != 0) {
        job_fail_internal(j, res, "auth.password_change");
    } else {
        res->status = 204;   /* every other session of the user is revoked */
        job_audit(j, "auth.password_change", AUDIT_SUCCESS, 204, NULL);
    }
    job_free(j);
}

void api_password(struct route_ctx *ctx)
{
    struct validate_errors errs = { 0 };
    struct validate_field f[] = {
        { .name = "current_password", .required = true, .max_bytes = LOGIN_PASSWORD_MAX },
        { .name = "new_password", .required = true, .max_bytes = LOGIN_PASSWORD_MAX },
    };
    struct pw_job *j = NULL;
    if (validate_json_object(ctx->req->body, f, 2, &errs) == 0)
        validate_password(f[1].value, f[1].len, "new_password", &errs);
    bool limited = false;
    if (errs.n) {
        route_fail_validation(ctx, &errs);
    } else if (!(j = job_for_caller(ctx, JOB_PASSWORD, password_done, &limited))) {
        if (!limited)
            api_fail_internal(ctx, "auth.password_change");
    } else {
        take(&f[0], &j->pw, &j->pw_len);
        take(&f[1], &j->new_pw, &j->new_len);
        ctx->res->job = &j->base;
    }
    validate_fields_free(f, 2);
}

/* ---- account erasure (DELETE /v1/me) ------------------------------------- */

/* Changes nothing here: the erasure ran on its own connection in the work
 * (a refused guard changes nothing about what this reports). */
static void delete_me_done(struct http_job *base, struct http_response *res)
{
    struct pw_job *j = (struct pw_job *)base;
    if (base->cancelled) {     /* no password was checked, nothing erased */
        job_free(j);
        return;
    }
    throttle_outcome(j);
    if (j->verify_rc != 0) {
        http_problem(res, 403, "password", "The password is wrong.");
        job_audit(j, "user.delete", AUDIT_DENY, 403, "bad_password");
    } else if (j->delete_rc == ERR_NOT_FOUND) {   /* nothing erased: see delete_account() */
        http_problem(res, 403, "password", "The password was changed meanwhile.");
        job_audit(j, "user.delete", AUDIT_DENY, 403, "password_changed");
    } else if (j->delete_rc != 0) {
        job_fail_internal(j, res, "user.delete");
    } else {
        res->status = 204;   /* account, notes and sessions are gone */
        job_audit(j, "user.delete", AUDIT_SUCCESS, 204, NULL);
    }
    job_free(j);
}

void api_me_delete(struct route_ctx *ctx)
{
    struct validate_errors errs = { 0 };
    struct validate_field f[] = { { .name = "password", .required = true, .max_bytes = LOGIN_PASSWORD_MAX } };
    struct pw_job *j = NULL;
    validate_json_object(ctx->req->body, f, 1, &errs);
    bool limited = false;
    if (errs.n) {
        route_fail_validation(ctx, &errs);
    } else if (!(j = job_for_caller(ctx, JOB_DELETE_ME, delete_me_done, &limited))) {
        if (!limited)
            api_fail_internal(ctx, "user.delete");
    } else {
        take(&f[0], &j->pw, &j->pw_len);
        ctx->res->job = &j->base;
    }
    validate_fields_free(f, 1);
}
