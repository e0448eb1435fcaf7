/*
 * api_notes.c - the caller's own notes: create, list, read, update, delete.
 *
 * Titles and contents are sealed (AES-256-GCM, crypto.c) with additional
 * data naming the table, column, note id and owner, so a value copied to
 * another row fails to open. A note that is not the caller's answers exactly
 * like one that does not exist (404): the store's queries carry the owner.
 */
#include "api.h"
#include "app.h"
#include "audit.h"
#include "crypto.h"
#include "err.h"
#include "store.h"
#include "validate.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

/* Body fields: the title cap allows for JSON-escaped multibyte text; the
 * content cap is the product's 64 KiB limit, after JSON decoding. */
#define TITLE_MAX_BYTES 4096

struct note_input {
    struct buf title;      /* NFC */
    const char *content;
    size_t content_len;
};

/* Parse and validate {"title","content"}; on failure the 400 is written. */
static int read_note_body(struct route_ctx *ctx, struct validate_field f[2], struct note_input *in)
{
    struct validate_errors errs = { 0 };
    f[0] = (struct validate_field){ .name = "title", .required = true, .max_bytes = TITLE_MAX_BYTES };
    f[1] = (struct validate_field){ .name = "content", .required = true, .max_bytes = VALIDATE_CONTENT_MAX };
    buf_init(&in->title, TITLE_MAX_BYTES * 2);
    if (validate_json_object(ctx->req->body, f, 2, &errs) == 0) {
        validate_title(f[0].value, f[0].len, &in->title, "title", &errs);
        validate_content(f[1].value, f[1].len, "content", &errs);
    }
    if (errs.n) {
        route_fail_validation(ctx, &errs);
        return ERR_INVALID;
    }
    in->content = f[1].value;
    in->content_len = f[1].len;
    return 0;
}

/* Seal both fields for note (id, owner) and write them. */
static int seal_and_store(struct app *app, int64_t id, int64_t owner, const struct note_input *in,
                          int64_t now)
{
    struct buf t, c;
    buf_init(&t, TITLE_MAX_BYTES * 2 + CRYPTO_SEAL_OVERHEAD);
    buf_init(&c, VALIDATE_CONTENT_MAX + CRYPTO_SEAL_OVERHEAD);
    struct crypto_aad at = { "notes", "title", id, owner }, ac = { "notes", "content", id, owner };
    int rc = crypto_seal(app->crypto, &at, in->title.data, in->title.len, &t);
    rc = rc ? rc : crypto_seal(app->crypto, &ac, (const uint8_t *)in->content, in->content_len, &c);
    rc = rc ? rc : store_note_update(app->store, id, owner, slice_of(&t), slice_of(&c),
                                     crypto_active_key_id(app->crypto), now);
    buf_cleanup(&t);
    buf_cleanup(&c);
    return rc;
}

static void answer_note(struct route_ctx *ctx, int status, const struct store_note *n, const char *event)
{
    if (api_note_json(ctx->app, &ctx->res->body, n, false, true) != 0) {
        api_fail_internal(ctx, event);
        return;
    }
    ctx->res->status = status;
    api_audit(ctx, event, "note", n->id, AUDIT_SUCCESS, status, NULL);
}

static void not_found(struct route_ctx *ctx, const char *event)
{
    http_problem(ctx->res, 404, NULL, "There is no such note.");
    api_audit(ctx, event, "note", ctx->path_id, AUDIT_DENY, 404, "not_found");
}

/* Whether the owner may store `in` as one more note (add 1) or in place of
 * one of `old_bytes` (add 0): NOTES_USER_MAX_NOTES and NOTES_USER_MAX_KIB
 * of sealed values. Answers 409 when not. The bound is on what an account
 * stores (the disk) and what its export must hold (api_me.c). */
static bool within_quota(struct route_ctx *ctx, const struct note_input *in, int add, int64_t old_bytes,
                         const char *event)
{
    const struct config *cfg = ctx->app->cfg;
    struct store_usage u;
    if (store_usage_get(ctx->app->store, ctx->who.user_id, &u) != 0) {
        api_fail_internal(ctx, event);
        return false;
    }
    int64_t bytes = u.bytes - old_bytes + (int64_t)(in->title.len + in->content_len + 2 * CRYPTO_SEAL_OVERHEAD);
    char detail[160];
    if (u.notes + add > (int64_t)cfg->user_max_notes) {
        snprintf(detail, sizeof(detail), "The account holds the most notes it may (%u): delete some first.",
                 cfg->user_max_notes);
        http_problem(ctx->res, 409, NULL, detail);
    } else if (bytes > (int64_t)cfg->user_max_kib * 1024) {
        snprintf(detail, sizeof(detail),
                 "The account's notes would take more than the %u KiB it may hold: delete or shorten some first.",
                 cfg->user_max_kib);
        http_problem(ctx->res, 409, "content", detail);
    } else {
        return true;
    }
    api_audit(ctx, event, "note", add ? 0 : ctx->path_id, AUDIT_DENY, 409, "quota");
    return false;
}

void api_note_create(struct route_ctx *ctx)
{
    struct app *app = ctx->app;
    struct validate_field f[2];
    struct note_input in;
    if (read_note_body(ctx, f, &in) != 0 || !within_quota(ctx, &in, 1, 0, "note.create"))
        goto done;
    int64_t now = (int64_t)time(NULL), id = 0, owner = ctx->who.user_id;
    int rc = api_reserve_encryptions(app, 2);
    rc = rc ? rc : store_begin(app->store);
    if (rc == 0) {
        rc = store_note_insert(app->store, owner, now, &id);
        rc = rc ? rc : seal_and_store(app, id, owner, &in, now);
        rc = rc ? (store_rollback(app->store), rc) : store_commit(app->store);
    }
    struct store_note n;
    store_note_init(&n);
    if (rc == 0)
        rc = store_note_get_own(app->store, id, owner, &n);
    if (rc) {
        api_fail_internal(ctx, "note.create");
    } else {
        char location[64];
        snprintf(location, sizeof(location), "/v1/notes/%lld", (long long)id);
        http_add_header(ctx->res, "Location", location);
        answer_note(ctx, 201, &n, "note.create");
    }
    store_note_cleanup(&n);
done:
    buf_cleanup_wipe(&in.title);
    validate_fields_free(f, 2);
}

void api_note_get(struct route_ctx *ctx)
{
    struct store_note n;
    store_note_init(&n);
    int rc = store_note_get_own(ctx->app->store, ctx->path_id, ctx->who.user_id, &n);
    if (rc == ERR_NOT_FOUND)
        not_found(ctx, "note.read");
    else if (rc)
        api_fail_internal(ctx, "note.read");
    else
        answer_note(ctx, 200, &n, "note.read");
    store_note_cleanup(&n);
}

void api_note_update(struct route_ctx *ctx)
{
    struct app *app = ctx->app;
    struct validate_field f[2];
    struct note_input in;
    struct store_note n;
    store_note_init(&n);
    if (read_note_body(ctx, f, &in) != 0)
        goto done;
    int64_t now = (int64_t)time(NULL), owner = ctx->who.user_id;
    int rc = store_note_get_own(app->store, ctx->path_id, owner, &n);
    if (rc == ERR_NOT_FOUND) {
        not_found(ctx, "note.update");
        goto done;
    }
    if (rc == 0 && !within_quota(ctx, &in, 0, (int64_t)(n.title.len + n.content.len), "note.update"))
        goto done;
    rc = rc ? rc : api_reserve_encryptions(app, 2);
    rc = rc ? rc : seal_and_store(app, ctx->path_id, owner, &in, now);
    if (rc == 0) {
        app_wal_changed(app);      /* the old values stay in the WAL until then */
        store_note_cleanup(&n);
        store_note_init(&n);
        rc = store_note_get_own(app->store, ctx->path_id, owner, &n);
    }
    if (rc == ERR_NOT_FOUND)
        not_found(ctx, "note.update");   /* deleted between the two queries */
    else if (rc)
        api_fail_internal(ctx, "note.update");
    else
        answer_note(ctx, 200, &n, "note.update");
done:
    store_note_cleanup(&n);
    buf_cleanup_wipe(&in.title);
    validate_fields_free(f, 2);
}

void api_note_delete(struct route_ctx *ctx)
{
    int rc = store_note_delete_own(ctx->app->store, ctx->path_id, ctx->who.user_id);
    if (rc == ERR_NOT_FOUND) {
        not_found(ctx, "note.delete");
        return;
    }
    if (rc) {
        api_fail_internal(ctx, "note.delete");
        return;
    }
    app_wal_changed(ctx->app);
    ctx->res->status = 204;
    api_audit(ctx, "note.delete", "note", ctx->path_id, AUDIT_SUCCESS, 204, NULL);
}

/* ---- listing (shared with api_admin.c) ------------------------------------ */

struct list_state {
    struct app *app;
    struct buf *out;
    int limit, count;
    bool with_owner;
    int64_t last_id;
    bool more;
    int rc;
};

static int list_note(void *arg, const struct store_note *n)
{
    struct list_state *st = arg;
    if (st->count == st->limit) {
        st->more = true;   /* one row beyond the page: there is a next page */
        return 1;
    }
    if (st->count++ > 0)
        st->rc = buf_append(st->out, ",", 1);
    st->rc = st->rc ? st->rc : api_note_json(st->app, st->out, n, st->with_owner, false);
    st->last_id = n->id;
    return st->rc;
}

/* GET ...?limit=&cursor=[&owner=]: one page, newest first. */
void api_notes_page(struct route_ctx *ctx, int64_t owner, bool with_owner, const char *event)
{
    struct validate_errors errs = { 0 };
    int limit = VALIDATE_LIMIT_DEFAULT;
    int64_t before = INT64_MAX;
    const struct slice *p;
    if ((p = route_param(ctx, "limit")))
        validate_limit(*p, &limit, &errs);
    if ((p = route_param(ctx, "cursor")))
        validate_cursor(*p, &before, &errs);
    if (errs.n) {
        route_fail_validation(ctx, &errs);
        return;
    }
    struct buf *b = &ctx->res->body;
    struct list_state st = { ctx->app, b, limit, 0, with_owner, 0, false, 0 };
    int rc = buf_append_str(b, "{\"notes\":[");
    rc = rc ? rc : store_note_list(ctx->app->store, owner, before, limit + 1, false, list_note, &st);
    rc = rc ? rc : st.rc;
    rc = rc ? rc : buf_append_str(b, "],\"next_cursor\":");
    if (rc == 0 && st.more) {
        char cursor[VALIDATE_CURSOR_LEN + 1];
        validate_cursor_encode(st.last_id, cursor);
        rc = buf_append(b, "\"", 1);
        rc = rc ? rc : buf_append_str(b, cursor);
        rc = rc ? rc : buf_append(b, "\"", 1);
    } else if (rc == 0) {
        rc = buf_append_str(b, "null");
    }
    rc = rc ? rc : buf_append_str(b, "}");
    if (rc) {
        api_fail_internal(ctx, event);
        return;
    }
    if (api_refused_when_busy(ctx, event, NULL, 0))
        return;
    ctx->res->status = 200;
    api_audit(ctx, event, NULL, 0, AUDIT_SUCCESS, 200, NULL);
}

void api_note_list(struct route_ctx *ctx)
{
    api_notes_page(ctx, ctx->who.user_id, false, "note.list");
}
