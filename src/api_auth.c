/*
 * api_auth.c - registration, login, logout, password change and account
 * erasure (DELETE /v1/me): the handlers and their answers.
 *
 * Password hashing (argon2id, tens of milliseconds) never runs on the event
 * loop: the handler validates, copies what the work needs into a job
 * (api_auth_jobs.c), and the thread pool hashes or verifies; the job's done()
 * here finishes on the loop with the store. Unknown users are verified
 * against a dummy hash so a login costs the same whether or not the name
 * exists, and both failures answer the same 401. This file owns the routes'
 * answers and audit events and the per-name limits; it must never hash or
 * verify a password itself, nor leave a copy of one outside its job.
 * Passwords are wiped from memory as soon as they are used.
 */
#include "api.h"
#include "api_auth_int.h"
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
#include <mbedtls/platform_util.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LOGIN_PASSWORD_MAX 1024   /* bytes accepted at login: policy applies at set time */

/* Limits keyed by the name a client tried (a keyed hash: the table never
 * holds usernames). A registration takes a token of the per-name rate; a
 * login meets the account's failure throttle instead, which counts every
 * address. A login bucket per name would let anyone hold the owner's right
 * password at 429 with five wrong ones a minute, and one per name and
 * address could never refuse what the per-address limit let through.
 * 0 when allowed; otherwise the 429 is written. */
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
    if (!login && !ratelimit_take_ex(ctx->app->rl_auth_name, key, now, &retry, &first)) {
        route_fail_rate(ctx, retry, first, "rate_limited");
        return ERR_LIMIT;
    }
    if (login && !throttle_admit(ctx->app->throttle, key, now, &retry, &first)) {
        route_fail_rate(ctx, retry, first, "login_throttled");
        return ERR_LIMIT;
    }
    return 0;
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
    if (api_auth_job_refused(j, res, "auth.register"))
        return;
    int64_t now = (int64_t)time(NULL), id = 0;
    int rc = j->hash_rc ? ERR_CRYPTO : store_user_insert(j->app->store, j->username, "user", j->new_phc, now, &id);
    if (rc == ERR_EXISTS) {
        http_problem(res, 409, "username", "This username is taken.");
        api_auth_job_audit(j, "auth.register", AUDIT_DENY, 409, "conflict");
    } else if (rc != 0) {
        api_auth_job_fail_internal(j, res, "auth.register");
    } else {
        j->user_id = id;
        res->status = 201;
        json_user(&res->body, id, j->username, "user", now);
        api_auth_job_audit(j, "auth.register", AUDIT_SUCCESS, 201, NULL);
    }
    api_auth_job_free(j);
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
    } else if (!(j = api_auth_job_new(ctx, JOB_REGISTER, register_done))) {
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
    api_auth_job_audit(j, "auth.login", AUDIT_DENY, 401, reason);
}


static void login_done(struct http_job *base, struct http_response *res)
{
    struct pw_job *j = (struct pw_job *)base;
    if (api_auth_job_refused(j, res, "auth.login"))
        return;
    /* A failure was counted when the attempt was let in (name_limits()). */
    if (j->verify_rc != 0 || !j->user_ok) {
        login_fail(j, res, j->user_ok ? "bad_password" : "unknown_user");
        api_auth_job_free(j);
        return;
    }
    if (!api_auth_still_current(j)) {
        /* The password was changed (or the account disabled) while this
         * login hashed: the password it checked is no longer the one. */
        login_fail(j, res, "password_changed");
        api_auth_job_free(j);
        return;
    }
    api_auth_throttle_settle(j, true);
    struct app *app = j->app;
    int64_t now = (int64_t)time(NULL);
    /* Only over the hash this login read: another login may have upgraded
     * it first (ERR_NOT_FOUND then, and theirs stands). */
    if (j->rehash && j->hash_rc == 0)
        (void)store_user_upgrade_password(app->store, j->user_id, j->phc, j->new_phc);
    char token[CRYPTO_TOKEN_LEN + 1];
    uint8_t hash[CRYPTO_TOKEN_HASH_LEN];
    int64_t expires = now + (int64_t)app->cfg->token_lifetime_s;
    int rc = crypto_token_new(token);
    rc = rc ? rc : crypto_token_hash(app->crypto, token, strlen(token), hash);
    rc = rc ? rc : store_session_insert(app->store, hash, j->user_id, now, expires, app->cfg->user_max_sessions);
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
        api_auth_job_audit(j, "auth.login", AUDIT_SUCCESS, 200, NULL);
    }
    mbedtls_platform_zeroize(token, sizeof(token));
    api_auth_job_free(j);
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
    } else if (!(j = api_auth_job_new(ctx, JOB_LOGIN, login_done))) {
        throttle_unused(ctx->app->throttle, key, utc_monotonic_ms());
        api_fail_internal(ctx, "auth.login");
    } else {
        /* A malformed name cannot exist: same path as an unknown one. */
        struct store_user u;
        bool found = canonical && store_user_get_by_name(ctx->app->store, name, &u) == 0;
        memcpy(j->name_key, key, sizeof(j->name_key));
        j->throttled = true;
        j->admitted_ms = utc_monotonic_ms();   /* name_limits() let it in just now */
        j->user_ok = found && !u.disabled;
        j->user_id = found ? u.id : 0;
        j->password_gen = found ? u.password_gen : 0;
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
    if (api_auth_job_refused(j, res, "auth.password_change"))
        return;
    struct app *app = j->app;
    api_auth_throttle_settle(j, j->verify_rc == 0);
    if (j->verify_rc != 0) {
        http_problem(res, 403, "current_password", "The current password is wrong.");
        api_auth_job_audit(j, "auth.password_change", AUDIT_DENY, 403, "bad_password");
    } else if (!api_auth_caller_current(j)) {
        /* Checked against a password another change replaced meanwhile. */
        http_problem(res, 403, "current_password", "The password was changed meanwhile.");
        api_auth_job_audit(j, "auth.password_change", AUDIT_DENY, 403, "password_changed");
    } else if (j->hash_rc != 0 || store_user_set_password(app->store, j->user_id, j->new_phc) != 0 ||
               store_session_delete_user(app->store, j->user_id, j->token_hash) != 0) {
        api_auth_job_fail_internal(j, res, "auth.password_change");
    } else {
        res->status = 204;   /* every other session of the user is revoked */
        api_auth_job_audit(j, "auth.password_change", AUDIT_SUCCESS, 204, NULL);
    }
    api_auth_job_free(j);
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
    } else if (!(j = api_auth_job_for_caller(ctx, JOB_PASSWORD, password_done, &limited))) {
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
        api_auth_throttle_settle(j, false);
        api_auth_job_free(j);
        return;
    }
    api_auth_throttle_settle(j, j->verify_rc == 0);
    if (j->verify_rc != 0) {
        http_problem(res, 403, "password", "The password is wrong.");
        api_auth_job_audit(j, "user.delete", AUDIT_DENY, 403, "bad_password");
    } else if (j->delete_rc == ERR_NOT_FOUND) {   /* nothing erased: see delete_account() */
        http_problem(res, 403, "password", "The password was changed meanwhile.");
        api_auth_job_audit(j, "user.delete", AUDIT_DENY, 403, "password_changed");
    } else if (j->delete_rc != 0) {
        api_auth_job_fail_internal(j, res, "user.delete");
    } else {
        res->status = 204;   /* account, notes and sessions are gone */
        api_auth_job_audit(j, "user.delete", AUDIT_SUCCESS, 204, NULL);
        if (j->scrub_rc != 0) {
            app_wal_changed(j->app);
            log_warn("account erased, but a reader kept the WAL from being truncated (%s); the checkpoint job "
                     "truncates it", err_name(j->scrub_rc));
        }
    }
    api_auth_job_free(j);
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
    } else if (!(j = api_auth_job_for_caller(ctx, JOB_DELETE_ME, delete_me_done, &limited))) {
        if (!limited)
            api_fail_internal(ctx, "user.delete");
    } else {
        take(&f[0], &j->pw, &j->pw_len);
        ctx->res->job = &j->base;
    }
    validate_fields_free(f, 1);
}
