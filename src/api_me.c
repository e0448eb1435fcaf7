/*
 * api_me.c - the caller's own account: GET /v1/me and GET /v1/me/export
 * (everything stored about the caller, notes decrypted, in one document).
 * Account erasure (DELETE /v1/me) lives with the other password handlers in
 * api_auth.c, its job in api_auth_jobs.c.
 */
#include "api.h"
#include "app.h"
#include "audit.h"
#include "err.h"
#include "store.h"

#include <mbedtls/platform_util.h>
#include <stdint.h>
#include <string.h>

/* An export holds every note of a user, so it may be large; it is still
 * bounded (HTTP_BODY_MAX, 16 MiB) so one request cannot take unbounded
 * memory. What an account may hold is capped (config.h) so that its export
 * always fits: each note at most twice its sealed bytes in JSON (TAB, LF,
 * CR, quote and backslash are its only escapes, two bytes each) plus its
 * ids and times, each session its times, and the account. Past the bound
 * anyway (a database changed behind our back) the export answers 500 and
 * says why. */
#define EXPORT_NOTE_FRAME 256      /* {"id":..,"title":"","content":"",..times} */
#define EXPORT_SESSION_FRAME 160
#define EXPORT_ACCOUNT_FRAME 4096
_Static_assert(2ull * CONFIG_USER_KIB_CAP * 1024 + (unsigned long long)CONFIG_USER_NOTES_CAP * EXPORT_NOTE_FRAME +
                       (unsigned long long)CONFIG_USER_SESSIONS_CAP * EXPORT_SESSION_FRAME + EXPORT_ACCOUNT_FRAME <=
                   HTTP_BODY_MAX,
               "an account at its caps must export in one response");

struct export_state {
    struct app *app;
    struct buf *out;
    bool first;
    int rc;
};

static int user_fields(struct buf *b, const struct store_user *u)
{
    int rc = api_json_int(b, true, "id", u->id);
    rc = rc ? rc : api_json_str(b, false, "username", u->username, strlen(u->username));
    rc = rc ? rc : api_json_str(b, false, "role", u->role, strlen(u->role));
    return rc ? rc : api_json_time(b, false, "created_at", u->created_at);
}

/* A session in the export: its times, never its token or the token's hash. */
static int export_session(void *arg, const struct store_session *s)
{
    struct export_state *st = arg;
    if (!st->first)
        st->rc = buf_append(st->out, ",", 1);
    st->first = false;
    st->rc = st->rc ? st->rc : buf_append(st->out, "{", 1);
    st->rc = st->rc ? st->rc : api_json_time(st->out, true, "created_at", s->created_at);
    st->rc = st->rc ? st->rc : api_json_time(st->out, false, "last_seen", s->last_seen);
    st->rc = st->rc ? st->rc : api_json_time(st->out, false, "expires_at", s->expires_at);
    st->rc = st->rc ? st->rc : buf_append(st->out, "}", 1);
    return st->rc;
}

void api_me(struct route_ctx *ctx)
{
    struct store_user u;
    struct buf *b = &ctx->res->body;
    if (store_user_get(ctx->app->store, ctx->who.user_id, &u) != 0) {
        api_fail_internal(ctx, "user.read");
        return;
    }
    int rc = buf_append(b, "{", 1);
    rc = rc ? rc : user_fields(b, &u);
    rc = rc ? rc : buf_append(b, "}", 1);
    mbedtls_platform_zeroize(&u, sizeof(u));
    if (rc) {
        api_fail_internal(ctx, "user.read");
        return;
    }
    ctx->res->status = 200;
}


static int export_note(void *arg, const struct store_note *n)
{
    struct export_state *st = arg;
    if (!st->first)
        st->rc = buf_append(st->out, ",", 1);
    st->first = false;
    st->rc = st->rc ? st->rc : api_note_json(st->app, st->out, n, false, true);
    return st->rc;
}

void api_me_export(struct route_ctx *ctx)
{
    struct store_user u;
    struct buf *b = &ctx->res->body;
    if (store_user_get(ctx->app->store, ctx->who.user_id, &u) != 0) {
        api_fail_internal(ctx, "user.export");
        return;
    }
    struct export_state st = { ctx->app, b, true, 0 };
    int rc = buf_append_str(b, "{\"account\":{");
    rc = rc ? rc : user_fields(b, &u);
    rc = rc ? rc : buf_append_str(b, u.disabled ? ",\"disabled\":true" : ",\"disabled\":false");
    rc = rc ? rc : buf_append_str(b, "},\"sessions\":[");
    mbedtls_platform_zeroize(&u, sizeof(u));
    if (rc == 0) {
        rc = store_session_list(ctx->app->store, ctx->who.user_id, export_session, &st);
        rc = st.rc ? st.rc : rc;
    }
    rc = rc ? rc : buf_append_str(b, "],\"notes\":[");
    st.first = true;
    if (rc == 0) {
        rc = store_note_list(ctx->app->store, ctx->who.user_id, INT64_MAX, INT32_MAX, true, export_note, &st);
        rc = st.rc ? st.rc : rc;   /* the callback's reason (e.g. too large) first */
    }
    rc = rc ? rc : buf_append_str(b, "]}");
    if (rc == ERR_LIMIT) {
        http_problem(ctx->res, 500, NULL, "The export is larger than one response may be (16 MiB).");
        api_audit(ctx, "user.export", "user", ctx->who.user_id, AUDIT_ERROR, 500, "too_large");
        return;
    }
    if (rc) {
        api_fail_internal(ctx, "user.export");
        return;
    }
    if (api_refused_when_busy(ctx, "user.export", "user", ctx->who.user_id))
        return;
    ctx->res->status = 200;
    api_audit(ctx, "user.export", "user", ctx->who.user_id, AUDIT_SUCCESS, 200, NULL);
}
