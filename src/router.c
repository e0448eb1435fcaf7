/*
 * router.c - route matching, authentication, and the single authorization
 * check.
 *
 * The table below is the whole public surface of the server. Matching is
 * exact on the path (no decoding, no normalisation: "/healthz/" and
 * "//healthz" are unknown paths); HEAD is served by GET routes. Bearer tokens
 * are checked here and nowhere else: the token's HMAC is looked up, its
 * absolute and idle lifetimes and its user's state are checked, and any
 * doubt answers 401. Permissions come from authz.c; ownership of a note is
 * enforced again in the store's queries.
 */
#include "router.h"
#include "api.h"
#include "app.h"
#include "audit.h"
#include "crypto.h"
#include "err.h"
#include "ratelimit.h"
#include "store.h"

#include "utc.h"
#include <mbedtls/platform_util.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define TOUCH_INTERVAL_S 60   /* refresh last_seen at most once a minute */

static const struct route routes[] = {
    { HTTP_M_GET, "/healthz", api_health, PERM_PUBLIC, false, { NULL }, LIMIT_NONE },
    { HTTP_M_POST, "/v1/auth/register", api_register, PERM_PUBLIC, true, { NULL }, LIMIT_AUTH },
    { HTTP_M_POST, "/v1/auth/login", api_login, PERM_PUBLIC, true, { NULL }, LIMIT_AUTH },
    { HTTP_M_POST, "/v1/auth/logout", api_logout, PERM_SESSION, false, { NULL }, LIMIT_NONE },
    { HTTP_M_POST, "/v1/auth/password", api_password, PERM_SESSION, true, { NULL }, LIMIT_NONE },
    { HTTP_M_GET, "/v1/me", api_me, PERM_ME_READ, false, { NULL }, LIMIT_NONE },
    { HTTP_M_DELETE, "/v1/me", api_me_delete, PERM_ME_DELETE, true, { NULL }, LIMIT_NONE },
    { HTTP_M_GET, "/v1/me/export", api_me_export, PERM_ME_EXPORT, false, { NULL }, LIMIT_EXPORT },
    { HTTP_M_POST, "/v1/notes", api_note_create, PERM_NOTE_CREATE, true, { NULL }, LIMIT_WRITE },
    { HTTP_M_GET, "/v1/notes", api_note_list, PERM_NOTE_READ_OWN, false, { "limit", "cursor", NULL }, LIMIT_NONE },
    { HTTP_M_GET, "/v1/notes/{id}", api_note_get, PERM_NOTE_READ_OWN, false, { NULL }, LIMIT_NONE },
    { HTTP_M_PUT, "/v1/notes/{id}", api_note_update, PERM_NOTE_UPDATE_OWN, true, { NULL }, LIMIT_WRITE },
    { HTTP_M_DELETE, "/v1/notes/{id}", api_note_delete, PERM_NOTE_DELETE_OWN, false, { NULL }, LIMIT_WRITE },
    { HTTP_M_GET, "/v1/admin/notes", api_admin_note_list, PERM_NOTE_READ_ANY, false,
      { "limit", "cursor", "owner", NULL }, LIMIT_NONE },
    { HTTP_M_GET, "/v1/admin/notes/{id}", api_admin_note_get, PERM_NOTE_READ_ANY, false, { NULL }, LIMIT_NONE },
};

#define N_ROUTES (sizeof(routes) / sizeof(routes[0]))

static const char *method_name(enum http_method m)
{
    switch (m) {
    case HTTP_M_GET: return "GET";
    case HTTP_M_HEAD: return "HEAD";
    case HTTP_M_POST: return "POST";
    case HTTP_M_PUT: return "PUT";
    case HTTP_M_DELETE: return "DELETE";
    case HTTP_M_PATCH: return "PATCH";
    case HTTP_M_OPTIONS: return "OPTIONS";
    case HTTP_M_OTHER: break;
    }
    return "?";
}

int router_check_routes(const struct route *table, size_t n, char *err, size_t errlen)
{
    for (size_t i = 0; i < n; i++)
        if (table[i].perm <= PERM_UNDECLARED || table[i].perm >= PERM_COUNT || !table[i].handler) {
            snprintf(err, errlen, "route %s %s declares no permission", method_name(table[i].method),
                     table[i].pattern);
            return ERR_CONFIG;
        }
    return 0;
}

int router_check_table(char *err, size_t errlen)
{
    return router_check_routes(routes, N_ROUTES, err, errlen);
}

/* ---- matching ------------------------------------------------------------ */

/* Literal segments must be equal; "{id}" takes one non-empty segment. */
static bool path_matches(const char *pattern, struct slice path, struct slice *id)
{
    const char *pat = pattern;
    size_t i = 0;
    while (*pat) {
        if (*pat == '{' && strncmp(pat, "{id}", 4) == 0) {   /* the call only where it can match */
            size_t start = i;
            while (i < path.len && path.p[i] != '/')
                i++;
            if (i == start)
                return false;
            *id = (struct slice){ path.p + start, i - start };
            pat += 4;
            continue;
        }
        if (i >= path.len || path.p[i] != (uint8_t)*pat)
            return false;
        i++;
        pat++;
    }
    return i == path.len;
}

static bool method_matches(enum http_method route, enum http_method req)
{
    return route == req || (route == HTTP_M_GET && req == HTTP_M_HEAD);
}

static void method_not_allowed(struct http_response *res, struct slice path)
{
    char allow[128] = "";
    size_t used = 0;
    struct slice id;
    for (size_t i = 0; i < N_ROUTES; i++) {
        if (!path_matches(routes[i].pattern, path, &id))
            continue;
        int n = snprintf(allow + used, sizeof(allow) - used, "%s%s%s", used ? ", " : "",
                         method_name(routes[i].method), routes[i].method == HTTP_M_GET ? ", HEAD" : "");
        if (n > 0 && (size_t)n < sizeof(allow) - used)
            used += (size_t)n;
    }
    http_problem(res, 405, NULL, "This method is not allowed on this resource.");
    http_add_header(res, "Allow", allow);
}

/* ---- authentication ------------------------------------------------------ */

/* The HTTP unit tests dispatch without an app; nothing is audited then. */
static struct audit *audit_of(const struct route_ctx *ctx)
{
    return ctx->app ? ctx->app->audit : NULL;
}

void route_audit(struct route_ctx *ctx, const char *event, int result, int status, const char *reason,
                 const char *detail)
{
    struct audit_event ev = {
        .event = event,
        .actor_id = ctx->who.user_id,
        .role = ctx->who.authenticated ? authz_role_name(ctx->who.role) : "anonymous",
        .request_id = ctx->req->id,
        .result = (enum audit_result)result,
        .status = status,
        .reason = reason,
        .ip = ctx->req->peer,
        .detail = detail,
    };
    audit_record(audit_of(ctx), &ev);
}

static void deny_401(struct route_ctx *ctx, bool token_given, const char *reason)
{
    http_problem(ctx->res, 401, NULL, token_given ? "The bearer token is not valid."
                                                  : "This resource needs a bearer token.");
    http_add_header(ctx->res, "WWW-Authenticate",
                    token_given ? "Bearer realm=\"notesd\", error=\"invalid_token\"" : "Bearer realm=\"notesd\"");
    route_audit(ctx, token_given ? "token.rejected" : "authz.deny", AUDIT_DENY, 401, reason, NULL);
}

/* A keep-alive client sends the same token with every request: the
 * connection's memo keeps the last token that proved valid and its HMAC,
 * so only a different token is hashed. The comparison is constant-time, and
 * the session is still looked up on every request (logout, expiry and
 * disabling take effect at once). */
#define MEMO_LEN (VALIDATE_TOKEN_LEN + CRYPTO_TOKEN_HASH_LEN)

static int token_hash(const struct route_ctx *ctx, const char *token, uint8_t hash[CRYPTO_TOKEN_HASH_LEN])
{
    const struct http_memo *m = ctx->req->memo;
    if (m && m->len == MEMO_LEN && crypto_equal(m->data, token, VALIDATE_TOKEN_LEN)) {
        memcpy(hash, m->data + VALIDATE_TOKEN_LEN, CRYPTO_TOKEN_HASH_LEN);
        return 0;
    }
    return crypto_token_hash(ctx->app->crypto, token, VALIDATE_TOKEN_LEN, hash);
}

void route_forget_token(struct route_ctx *ctx)
{
    if (ctx->req->memo)
        mbedtls_platform_zeroize(ctx->req->memo, sizeof(*ctx->req->memo));
}

/* Only a token whose session was just found valid is remembered. */
static void remember_token(struct route_ctx *ctx, const char *token, const uint8_t hash[CRYPTO_TOKEN_HASH_LEN])
{
    struct http_memo *m = ctx->req->memo;
    _Static_assert(MEMO_LEN <= HTTP_MEMO_MAX, "the memo holds a token and its hash");
    route_forget_token(ctx);
    if (!m)
        return;
    memcpy(m->data, token, VALIDATE_TOKEN_LEN);
    memcpy(m->data + VALIDATE_TOKEN_LEN, hash, CRYPTO_TOKEN_HASH_LEN);
    m->len = MEMO_LEN;
}

static int check_session(struct route_ctx *ctx, const uint8_t hash[CRYPTO_TOKEN_HASH_LEN])
{
    struct store_session sess;
    int rc = store_session_get(ctx->app->store, hash, &sess);
    int64_t now = (int64_t)time(NULL);
    const struct config *cfg = ctx->app->cfg;
    if (rc == 0 && (now >= sess.expires_at || now - sess.last_seen > (int64_t)cfg->token_idle_s)) {
        store_session_delete(ctx->app->store, hash);   /* expired: gone for good */
        rc = ERR_INVALID;
    }
    enum role role = rc == 0 ? authz_role_parse(sess.role) : ROLE_NONE;
    if (rc != 0 || sess.disabled || role == ROLE_NONE)
        return ERR_INVALID;
    if (now - sess.last_seen >= TOUCH_INTERVAL_S)
        store_session_touch(ctx->app->store, hash, now);
    ctx->who.authenticated = true;
    ctx->who.user_id = sess.user_id;
    ctx->who.role = role;
    memcpy(ctx->who.token_hash, hash, CRYPTO_TOKEN_HASH_LEN);
    return 0;
}

/* 0 when ctx->who is a live session; otherwise the 401 is already written. */
static int authenticate(struct route_ctx *ctx)
{
    const struct http_header *auth = http_find_header(ctx->req, "authorization");
    if (!auth) {
        deny_401(ctx, false, "no_token");
        return ERR_INVALID;
    }
    char token[VALIDATE_TOKEN_LEN + 1];
    uint8_t hash[CRYPTO_TOKEN_HASH_LEN];
    int rc = http_count_headers(ctx->req, "authorization") == 1 ? validate_bearer(auth->value, token) : ERR_INVALID;
    if (rc == 0)
        rc = token_hash(ctx, token, hash);
    if (rc == 0)
        rc = check_session(ctx, hash);
    if (rc == 0)
        remember_token(ctx, token, hash);
    else
        route_forget_token(ctx);
    mbedtls_platform_zeroize(token, sizeof(token));
    mbedtls_platform_zeroize(hash, sizeof(hash));
    if (rc != 0) {
        deny_401(ctx, true, "invalid_token");
        return ERR_INVALID;
    }
    return 0;
}

/* ---- request checks after authorization ---------------------------------- */

static bool is_json(const struct http_request *req)
{
    /* One field only: with two, which type the body has is not known. */
    const struct http_header *ct = http_find_header(req, "content-type");
    if (!ct || http_count_headers(req, "content-type") != 1)
        return false;
    struct slice v = ct->value;
    struct slice base = SLICE_LIT("application/json");
    if (v.len < base.len || !slice_eq_nocase((struct slice){ v.p, base.len }, base))
        return false;
    struct slice rest = { v.p + base.len, v.len - base.len };
    return rest.len == 0 || slice_eq_nocase(rest, SLICE_LIT("; charset=utf-8")) ||
           slice_eq_nocase(rest, SLICE_LIT(";charset=utf-8"));
}

static int check_input(struct route_ctx *ctx, const struct route *r, struct slice id)
{
    struct validate_errors errs = { 0 };
    size_t n_params = 0;
    for (; r->query[n_params]; n_params++)
        ctx->params[n_params].name = r->query[n_params];
    if (validate_query(ctx->req->query, ctx->params, n_params, &errs) != 0) {
        route_fail_validation(ctx, &errs);
        return ERR_INVALID;
    }
    if (id.len && validate_id(id, &ctx->path_id) != 0) {
        validate_add(&errs, "id", "must be a decimal number from 1 to 9223372036854775807");
        route_fail_validation(ctx, &errs);
        return ERR_INVALID;
    }
    if (r->json_body && !is_json(ctx->req)) {
        http_problem(ctx->res, 415, "Content-Type", "The body must be application/json.");
        route_audit(ctx, "input.rejected", AUDIT_DENY, 415, "media_type", "Content-Type");
        return ERR_INVALID;
    }
    if (!r->json_body && ctx->req->body.len > 0) {
        validate_add(&errs, "body", "must be empty for this request");
        route_fail_validation(ctx, &errs);
        return ERR_INVALID;
    }
    return 0;
}

static bool take(struct route_ctx *ctx, struct ratelimit *rl, const uint8_t key[RATELIMIT_KEY_LEN],
                 const char *reason)
{
    uint32_t retry = 0;
    bool first = false;
    if (ratelimit_take_ex(rl, key, utc_monotonic_ms(), &retry, &first))
        return true;
    route_fail_rate(ctx, retry, first, reason);
    return false;
}

static void user_key(int64_t user_id, uint8_t key[RATELIMIT_KEY_LEN])
{
    memset(key, 0, RATELIMIT_KEY_LEN);
    memcpy(key, &user_id, sizeof(user_id));
    key[15] = 'u';   /* never equal to an address key */
}

void route_fail_rate(struct route_ctx *ctx, uint32_t retry_after_s, bool first, const char *reason)
{
    char retry[16];
    snprintf(retry, sizeof(retry), "%u", (unsigned)retry_after_s);
    http_problem(ctx->res, 429, NULL, "Too many requests; try again later.");
    http_add_header(ctx->res, "Retry-After", retry);
    if (!first)
        return;   /* one audit line per run of refusals, not per dropped request */
    route_audit(ctx, "ratelimit.block", AUDIT_DENY, 429, reason, NULL);
}

/* ---- the audit guard -------------------------------------------------------
 * A request that changes or exports data must leave its audit record, or
 * nothing happens: the handler runs inside a store transaction that commits
 * only if the audit trail is healthy after it (the record was written, and
 * no sync has failed since), and its answer is replaced by a 503 otherwise.
 * While the trail is broken every such request still tries to write, so the
 * first one that succeeds (disk has room again) recovers it. Reads carry on.
 */

static bool changes_or_exports(const struct route *r)
{
    return r->method != HTTP_M_GET || r->perm == PERM_ME_EXPORT;
}

static void refuse_unaudited(struct http_response *res)
{
    http_unavailable(res, "The server cannot record this request right now; try again later.", "30");
}

/* The guard's write transaction could not begin (another writer kept the
 * database past the busy timeout): nothing runs, nothing changes. */
void route_refuse_busy(struct http_response *res)
{
    http_unavailable(res, "The server is busy; try again later.", "5");
}

/* Close the guard's transaction according to the trail. */
static void guard_end(struct app *app, struct http_response *res)
{
    /* The record must be in the file before the change is: write what the
     * loop queued (this request's line with it) first. */
    audit_flush(app->audit);
    if (audit_healthy(app->audit) && store_commit(app->store) == 0)
        return;
    store_rollback(app->store);
    refuse_unaudited(res);
}

static void guarded_job_done(struct http_job *job, struct http_response *res)
{
    struct app *app = job->guard;
    if (job->cancelled) {          /* nothing ran, nothing to change */
        job->guarded_done(job, res);
        return;
    }
    /* Without the transaction the job's statements would commit one by
     * one: it is told so, and answers without changing anything (or, if
     * its work already made the change, says what happened). */
    job->refused = store_begin(app->store) != 0;
    bool refused = job->refused;
    job->guarded_done(job, res);   /* frees the job */
    if (!refused)
        guard_end(app, res);
}

static void guarded(struct route_ctx *ctx, const struct route *r)
{
    struct app *app = ctx->app;
    if (!app) {   /* HTTP unit tests: no store, no trail */
        r->handler(ctx);
        return;
    }
    /* Known broken and still broken: refuse before any work (an erasure,
     * for one, runs on its own connection outside this transaction). */
    if (!audit_retry(app->audit)) {
        refuse_unaudited(ctx->res);
        /* Cannot be written now, so it is counted, and the count lands in
         * the audit.recovered line once the trail works again. */
        route_audit(ctx, "request.refused", AUDIT_ERROR, 503, "audit_unavailable", NULL);
        return;
    }
    if (store_begin(app->store) != 0) {
        route_refuse_busy(ctx->res);
        route_audit(ctx, "request.refused", AUDIT_ERROR, 503, "store_busy", NULL);
        return;
    }
    r->handler(ctx);
    struct http_job *job = ctx->res->job;
    if (job) {
        /* The part on the loop ran; the rest runs when the job is done,
         * under a transaction of its own (none is held across the pool). */
        job->guarded_done = job->done;
        job->guard = app;
        job->done = guarded_job_done;
    }
    guard_end(app, ctx->res);
}

/* Everything between routing and the handler: token, rate limit,
 * permission, input. `addr_key` is the client's address key, NULL without
 * one. false when a response has been written. */
static bool admit(struct route_ctx *ctx, const struct route *found, struct slice id, const uint8_t *addr_key)
{
    struct app *app = ctx->app;
    if (found->perm != PERM_PUBLIC && authenticate(ctx) != 0)
        return false;
    uint8_t key[RATELIMIT_KEY_LEN];
    user_key(ctx->who.user_id, key);
    if (found->limit == LIMIT_WRITE && app && !take(ctx, app->rl_writes, key, "rate_limited"))
        return false;
    if (!authz_allows(ctx->who.role, found->perm)) {
        http_problem(ctx->res, 403, NULL, "You are not allowed to do this.");
        route_audit(ctx, "authz.deny", AUDIT_DENY, 403, "forbidden", NULL);
        return false;
    }
    if (check_input(ctx, found, id) != 0)
        return false;
    /* An export is built on the loop (PSA is loop-only): up to ~90 ms for
     * a full account. Only one that will be built spends a token: per
     * address (many accounts), then per user. */
    return found->limit != LIMIT_EXPORT || !app ||
           ((!addr_key || take(ctx, app->rl_exports, addr_key, "rate_limited")) &&
            take(ctx, app->rl_exports, key, "rate_limited"));
}

void router_dispatch(void *arg, const struct http_request *req, struct http_response *res)
{
    struct app *app = arg;
    struct route_ctx early = { .req = req, .res = res, .app = app };
    uint8_t addr_key[RATELIMIT_KEY_LEN];
    if (req->peer)
        ratelimit_addr_key(req->peer, addr_key);
    if (app && req->peer && !take(&early, app->rl_ip, addr_key, "rate_limited"))
        return;
    const struct route *found = NULL;
    bool path_known = false;
    struct slice id = { NULL, 0 };
    for (size_t i = 0; i < N_ROUTES && !found; i++) {
        if (!path_matches(routes[i].pattern, req->path, &id))
            continue;
        path_known = true;
        if (method_matches(routes[i].method, req->method))
            found = &routes[i];
    }
    if (!found) {
        if (path_known)
            method_not_allowed(res, req->path);
        else
            http_problem(res, 404, NULL, "There is no resource at this path.");
        return;
    }
    struct route_ctx ctx = { .req = req, .res = res, .app = app };
    if (found->limit == LIMIT_AUTH && app && req->peer && !take(&ctx, app->rl_auth_ip, addr_key, "rate_limited"))
        return;
    if (found->perm != PERM_PUBLIC && !app) {
        /* Dispatch without the application (the HTTP unit tests and the
         * request fuzzer) reaches no protected handler: fail closed. */
        http_problem(res, 503, NULL, "The service is not available.");
        return;
    }
    if (!found->pattern[0] || !strstr(found->pattern, "{id}"))
        id.len = 0;
    /* One read snapshot for the token check and a reading handler: SQLite
     * then takes and drops its locks once per request, not per statement.
     * A route that changes data leaves it first for the guard's own write
     * transaction. Should it fail to begin, each statement runs alone. */
    bool reading = found->perm != PERM_PUBLIC && store_begin_read(app->store) == 0;
    bool go = admit(&ctx, found, id, req->peer ? addr_key : NULL);
    if (go && !changes_or_exports(found))
        found->handler(&ctx);
    if (reading && store_commit(app->store) != 0)
        log_warn("a read transaction did not end cleanly");
    if (go && changes_or_exports(found))
        guarded(&ctx, found);
}

const struct slice *route_param(const struct route_ctx *ctx, const char *name)
{
    for (size_t i = 0; i < ROUTE_MAX_PARAMS && ctx->params[i].name; i++)
        if (strcmp(ctx->params[i].name, name) == 0)
            return ctx->params[i].present ? &ctx->params[i].value : NULL;
    return NULL;
}

void route_fail_validation(struct route_ctx *ctx, const struct validate_errors *errs)
{
    struct http_field_error list[VALIDATE_MAX_ERRORS] = { 0 };
    size_t n = errs->n < VALIDATE_MAX_ERRORS ? errs->n : VALIDATE_MAX_ERRORS;
    for (size_t i = 0; i < n; i++)
        list[i] = (struct http_field_error){ errs->e[i].field, errs->e[i].why };
    http_problem_fields(ctx->res, list, n);
    /* The names of the rejected fields, never their values. */
    char fields[AUDIT_FIELD_MAX] = "";
    size_t used = 0;
    for (size_t i = 0; i < n; i++) {
        int k = snprintf(fields + used, sizeof(fields) - used, "%s%s", i ? "," : "", list[i].field);
        if (k < 0 || (size_t)k >= sizeof(fields) - used)
            break;
        used += (size_t)k;
    }
    route_audit(ctx, "input.rejected", AUDIT_DENY, 400, "validation", fields);
}
