/*
 * api_util.c - what the handlers share: JSON fragments, times, the generic
 * 500, audit shorthand, opening sealed note fields, and the data key's
 * usage limit.
 */
#include "api.h"
#include "app.h"
#include "audit.h"
#include "crypto.h"
#include "err.h"
#include "json.h"
#include "log.h"
#include "utc.h"
#include "store.h"

#include <string.h>
#include <time.h>

/* NIST SP 800-38D: at most 2^32 invocations per key with random nonces.
 * notesd stops at 2^31 and warns from 2^30 so rotation happens early. */
#define KEY_USE_LIMIT (UINT64_C(1) << 31)
#define KEY_USE_WARN (UINT64_C(1) << 30)
/* Counted ahead 64 at a time: one count update per ~32 notes written, and
 * at most 64 counted but unused per restart or rollback. */
#define KEY_USE_BLOCK 64

void api_fail_internal(struct route_ctx *ctx, const char *event)
{
    http_problem(ctx->res, 500, NULL, "The server could not complete this request.");
    api_audit(ctx, event, NULL, 0, AUDIT_ERROR, 500, "internal");
}

bool api_refused_when_busy(struct route_ctx *ctx, const char *event, const char *resource_type,
                           int64_t resource_id)
{
    if (http_response_fits(ctx->res))
        return false;
    http_refuse_busy(ctx->res);
    api_audit(ctx, event, resource_type, resource_id, AUDIT_ERROR, 503, "busy");
    return true;
}

void api_audit(struct route_ctx *ctx, const char *event, const char *resource_type,
               int64_t resource_id, int result, int status, const char *reason)
{
    struct audit_event ev = {
        .event = event,
        .actor_id = ctx->who.user_id,
        .role = authz_role_name(ctx->who.role),
        .request_id = ctx->req->id,
        .resource_type = resource_type,
        .resource_id = resource_id,
        .result = (enum audit_result)result,
        .status = status,
        .reason = reason,
        .ip = ctx->req->peer,
    };
    audit_record(ctx->app->audit, &ev);
}

void api_time(int64_t t, char out[32])
{
    utc_format(t, -1, out);
}

static int key(struct buf *b, bool first, const char *k)
{
    int rc = first ? 0 : buf_append(b, ",", 1);
    rc = rc ? rc : json_append_string(b, k, strlen(k));
    return rc ? rc : buf_append(b, ":", 1);
}

int api_json_str(struct buf *b, bool first, const char *k, const char *v, size_t n)
{
    int rc = key(b, first, k);
    return rc ? rc : json_append_string(b, v, n);
}

int api_json_int(struct buf *b, bool first, const char *k, int64_t v)
{
    int rc = key(b, first, k);
    if (rc == 0 && v < 0)
        rc = buf_append(b, "-", 1);
    return rc ? rc : buf_append_u64(b, v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v);
}

int api_json_time(struct buf *b, bool first, const char *k, int64_t t)
{
    char ts[UTC_TEXT_MAX];
    size_t n = utc_format(t, -1, ts);
    return api_json_str(b, first, k, ts, n);
}

static int open_field(struct app *app, const struct store_note *n, const char *column,
                      const struct buf *sealed, struct buf *out)
{
    struct crypto_aad aad = { "notes", column, n->id, n->owner_id };
    int rc = crypto_open(app->crypto, &aad, sealed->data, sealed->len, out);
    if (rc)
        log_error("note %lld: the %s does not decrypt (tampered row or missing data key)",
                  (long long)n->id, column);
    return rc;
}

int api_note_json(struct app *app, struct buf *b, const struct store_note *n, bool with_owner,
                  bool with_content)
{
    struct buf plain;
    buf_init(&plain, VALIDATE_CONTENT_MAX + 1024);
    int rc = open_field(app, n, "title", &n->title, &plain);
    rc = rc ? rc : buf_append(b, "{", 1);
    rc = rc ? rc : api_json_int(b, true, "id", n->id);
    if (with_owner)
        rc = rc ? rc : api_json_int(b, false, "owner_id", n->owner_id);
    rc = rc ? rc : api_json_str(b, false, "title", (const char *)plain.data, plain.len);
    if (with_content) {
        rc = rc ? rc : open_field(app, n, "content", &n->content, &plain);
        rc = rc ? rc : api_json_str(b, false, "content", (const char *)plain.data, plain.len);
    }
    rc = rc ? rc : api_json_time(b, false, "created_at", n->created_at);
    rc = rc ? rc : api_json_time(b, false, "updated_at", n->updated_at);
    rc = rc ? rc : buf_append(b, "}", 1);
    buf_cleanup_wipe(&plain);
    return rc;
}

int api_reserve_encryptions(struct app *app, uint64_t n)
{
    uint64_t total = 0, added = 0;
    uint32_t key_id = crypto_active_key_id(app->crypto);
    if (store_key_reserve(app->store, key_id, n, KEY_USE_BLOCK, &total, &added) != 0)
        return ERR_IO;
    if (total > KEY_USE_LIMIT) {
        log_error("data key %08x reached its encryption limit: rotate NOTES_DATA_KEY and run notesd rekey",
                  (unsigned)key_id);
        return ERR_LIMIT;
    }
    if (added && total > KEY_USE_WARN && total - added <= KEY_USE_WARN)
        log_warn("data key %08x has sealed 2^30 values: plan a rotation (NOTES_DATA_KEY)", (unsigned)key_id);
    return 0;
}
