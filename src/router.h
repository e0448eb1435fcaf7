/*
 * router.h - the route table: method + path pattern → handler + permission.
 *
 * The one place where access is decided: every row declares the permission
 * its handler needs, the router checks it before the handler runs, and a
 * row without a declared permission stops the server from starting (deny by
 * default, fail closed). Unknown paths answer 404, known paths with another
 * method 405 with Allow. Runs on the event-loop thread.
 */
#ifndef NOTESD_ROUTER_H
#define NOTESD_ROUTER_H

#include <stddef.h>
#include "http.h"

struct app;

/** What a route requires of its caller. PERM_UNDECLARED is never valid. */
enum perm {
    PERM_UNDECLARED = 0,
    PERM_PUBLIC,            /* anyone, authenticated or not */
};

/** What a handler is given; it must answer through `res`. */
struct route_ctx {
    const struct http_request *req;
    struct http_response *res;
    struct app *app;
};

typedef void (*route_handler)(struct route_ctx *ctx);

struct route {
    enum http_method method;
    const char *pattern;     /* literal segments only, for now */
    route_handler handler;
    enum perm perm;
};

/** Check the table once at start-up: 0, or ERR_CONFIG with the bad row in err. */
int router_check_table(char *err, size_t errlen);

/** The http_dispatch_cb for every connection; `arg` is the struct app. */
void router_dispatch(void *arg, const struct http_request *req, struct http_response *res);

#endif
