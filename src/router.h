/*
 * router.h - the route table: method + path pattern → handler + permission,
 * and the one place where access is decided.
 *
 * For every request the router, in this order: matches the path (404) and
 * the method (405 with Allow); authenticates the bearer token unless the
 * route is public (401 with WWW-Authenticate); asks authz_allows() for the
 * route's permission (403); checks the query string against the route's
 * allowed parameters, the path id, and the body's media type (400/415);
 * and only then runs the handler. A row without a declared permission stops
 * the server from starting (deny by default, fail closed). Runs on the
 * event-loop thread.
 */
#ifndef NOTESD_ROUTER_H
#define NOTESD_ROUTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "authz.h"
#include "http.h"
#include "validate.h"

struct app;

#define ROUTE_MAX_PARAMS 4

/** The authenticated caller (or nobody, on public routes without a token). */
struct principal {
    bool authenticated;
    int64_t user_id;
    enum role role;
    uint8_t token_hash[32];    /* of the token used: logout revokes it */
};

/** What a handler is given; it must answer through `res`. */
struct route_ctx {
    const struct http_request *req;
    struct http_response *res;
    struct app *app;
    struct principal who;
    int64_t path_id;           /* the {id} segment, when the pattern has one */
    struct validate_param params[ROUTE_MAX_PARAMS];  /* the route's query parameters */
};

typedef void (*route_handler)(struct route_ctx *ctx);

/** Which extra rate limit a route is under (besides the per-address one). */
enum route_limit {
    LIMIT_NONE = 0,
    LIMIT_AUTH,                /* login/register: per address (+ per name in the handler) */
    LIMIT_WRITE,               /* note writes: per user */
    LIMIT_EXPORT,              /* exports: per user and per address */
};

struct route {
    enum http_method method;
    const char *pattern;       /* literal segments and at most one "{id}" */
    route_handler handler;
    enum perm perm;
    bool json_body;            /* the request must carry a JSON body */
    const char *query[ROUTE_MAX_PARAMS + 1];  /* allowed query names, NULL-terminated */
    enum route_limit limit;
};

/** Check the table once at start-up: 0, or ERR_CONFIG with the bad row in err. */
int router_check_table(char *err, size_t errlen);
/** The same check on any table (tests prove a bad row is refused). */
int router_check_routes(const struct route *table, size_t n, char *err, size_t errlen);

/** The http_dispatch_cb for every connection; `arg` is the struct app. */
void router_dispatch(void *arg, const struct http_request *req, struct http_response *res);

/** The value of query parameter `name` of the matched route, or NULL. */
const struct slice *route_param(const struct route_ctx *ctx, const char *name);

/** Replaces res with a 503 "busy" answer (Retry-After): the guard's
 *  write transaction could not begin, so nothing was changed. */
void route_refuse_busy(struct http_response *res);

/** Record an event about this request (actor, role, request id, address
 *  from ctx); `detail` is a short machine text, never an input value. */
void route_audit(struct route_ctx *ctx, const char *event, int result, int status, const char *reason,
                 const char *detail);

/** Wipe what the connection remembers of its token (after logout: the
 *  token is dead, its bytes need not stay in memory). */
void route_forget_token(struct route_ctx *ctx);

/** Answer 429 with Retry-After; audited once per run of refusals. */
void route_fail_rate(struct route_ctx *ctx, uint32_t retry_after_s, bool first, const char *reason);

/** Answer 400 with every validation error. */
void route_fail_validation(struct route_ctx *ctx, const struct validate_errors *errs);

#endif
