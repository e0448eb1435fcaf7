/*
 * api.h - the handlers the route table points at. Each answers through
 * ctx->res and sees no socket, TLS context or SQL.
 */
#ifndef NOTESD_API_H
#define NOTESD_API_H

#include "router.h"

/** GET /healthz: 200 {"status":"ok"}. */
void api_health(struct route_ctx *ctx);

#endif
