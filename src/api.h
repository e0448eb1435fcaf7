/*
 * api.h - the handlers the route table points at, and what they share.
 *
 * A handler runs after the router authenticated the caller, checked the
 * permission, the query parameters, the path id and the media type. It
 * validates the body, talks to store/crypto/audit through struct app, and
 * answers through ctx->res. It never sees a socket, a TLS context or SQL.
 */
#ifndef NOTESD_API_H
#define NOTESD_API_H

#include <stdint.h>
#include "router.h"

/* api_health.c */
void api_health(struct route_ctx *ctx);
/* api_auth.c */
void api_register(struct route_ctx *ctx);
void api_login(struct route_ctx *ctx);
void api_logout(struct route_ctx *ctx);
void api_password(struct route_ctx *ctx);
void api_me_delete(struct route_ctx *ctx);   /* a password job, like the three above */
/* api_me.c */
void api_me(struct route_ctx *ctx);
void api_me_export(struct route_ctx *ctx);
/* api_notes.c */
void api_note_create(struct route_ctx *ctx);
void api_note_list(struct route_ctx *ctx);
void api_note_get(struct route_ctx *ctx);
void api_note_update(struct route_ctx *ctx);
void api_note_delete(struct route_ctx *ctx);
/* api_admin.c */
void api_admin_note_list(struct route_ctx *ctx);
void api_admin_note_get(struct route_ctx *ctx);

/* ---- shared by the handlers (api_util.c) --------------------------------- */

struct audit_event;
struct store_note;
struct buf;

/** Generic 500: names nothing about the server. */
void api_fail_internal(struct route_ctx *ctx, const char *event);
/** A large answer built in ctx->res that the output budget has no room
 *  for (http_response_fits()): replaced by the 503 and recorded as `event`
 *  error "busy". true when refused; call before recording success. */
bool api_refused_when_busy(struct route_ctx *ctx, const char *event, const char *resource_type,
                           int64_t resource_id);
/** Record an audit event for this request (who = the principal). */
void api_audit(struct route_ctx *ctx, const char *event, const char *resource_type,
               int64_t resource_id, int result, int status, const char *reason);
/** Unix seconds → "2026-11-28T05:00:00Z". */
void api_time(int64_t t, char out[32]);
/** Append `"key":"value"` (value JSON-escaped) with a leading comma unless first. */
int api_json_str(struct buf *b, bool first, const char *key, const char *v, size_t n);
/** Append `"key":123`. */
int api_json_int(struct buf *b, bool first, const char *key, int64_t v);
/** Append `"key":"<RFC 3339 time>"`. */
int api_json_time(struct buf *b, bool first, const char *key, int64_t t);

/**
 * Append a note as a JSON object: id, [owner_id], title, [content],
 * created_at, updated_at, opening the sealed fields. ERR_CRYPTO when a value
 * does not open (tampered row or missing key): the caller answers 500.
 */
int api_note_json(struct app *app, struct buf *b, const struct store_note *n, bool with_owner,
                  bool with_content);

/** One page of notes (api_notes.c): owner 0 lists every owner's. */
void api_notes_page(struct route_ctx *ctx, int64_t owner, bool with_owner, const char *event);

/** Reserve `n` encryptions under the active data key (NIST SP 800-38D
 *  limit); ERR_LIMIT once the key must be rotated. */
int api_reserve_encryptions(struct app *app, uint64_t n);

#endif
