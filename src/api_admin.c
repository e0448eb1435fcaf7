/*
 * api_admin.c - administrators read every user's notes. The router has
 * already checked note:read:any; these handlers add the owner to each note.
 */
#include "api.h"
#include "app.h"
#include "audit.h"
#include "err.h"
#include "store.h"
#include "validate.h"

void api_admin_note_list(struct route_ctx *ctx)
{
    int64_t owner = 0;   /* 0: every owner */
    const struct slice *p = route_param(ctx, "owner");
    if (p && validate_id(*p, &owner) != 0) {
        struct validate_errors errs = { 0 };
        validate_add(&errs, "owner", "must be a decimal number from 1 to 9223372036854775807");
        route_fail_validation(ctx, &errs);
        return;
    }
    api_notes_page(ctx, owner, true, "note.list.admin");
}

void api_admin_note_get(struct route_ctx *ctx)
{
    struct store_note n;
    store_note_init(&n);
    int rc = store_note_get_any(ctx->app->store, ctx->path_id, &n);
    if (rc == ERR_NOT_FOUND) {
        http_problem(ctx->res, 404, NULL, "There is no such note.");
        api_audit(ctx, "note.read.admin", "note", ctx->path_id, AUDIT_DENY, 404, "not_found");
    } else if (rc || api_note_json(ctx->app, &ctx->res->body, &n, true, true) != 0) {
        api_fail_internal(ctx, "note.read.admin");
    } else {
        ctx->res->status = 200;
        api_audit(ctx, "note.read.admin", "note", n.id, AUDIT_SUCCESS, 200, NULL);
    }
    store_note_cleanup(&n);
}
