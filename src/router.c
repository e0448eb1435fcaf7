/*
 * router.c - route matching and the single authorization check.
 *
 * The table below is the whole public surface of the server. Matching is
 * exact on the path (no decoding, no normalisation: "/healthz/" and
 * "//healthz" are different, unknown paths); HEAD is served by GET routes.
 */
#include "router.h"
#include "api.h"
#include "app.h"
#include "err.h"

#include <stdio.h>
#include <string.h>

static const struct route routes[] = {
    { HTTP_M_GET, "/healthz", api_health, PERM_PUBLIC },
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

int router_check_table(char *err, size_t errlen)
{
    for (size_t i = 0; i < N_ROUTES; i++)
        if (routes[i].perm == PERM_UNDECLARED || !routes[i].handler) {
            snprintf(err, errlen, "route %s %s declares no permission", method_name(routes[i].method),
                     routes[i].pattern);
            return ERR_CONFIG;
        }
    return 0;
}

static bool path_matches(const char *pattern, struct slice path)
{
    return slice_eq(slice_str(pattern), path);
}

static bool method_matches(enum http_method route, enum http_method req)
{
    return route == req || (route == HTTP_M_GET && req == HTTP_M_HEAD);
}

/* Permission check: deny anything that is not explicitly allowed. */
static bool permitted(const struct route *r)
{
    switch (r->perm) {
    case PERM_PUBLIC:
        return true;
    case PERM_UNDECLARED:
        break;
    }
    return false;
}

static void method_not_allowed(struct http_response *res, struct slice path)
{
    char allow[128] = "";
    size_t used = 0;
    for (size_t i = 0; i < N_ROUTES; i++) {
        if (!path_matches(routes[i].pattern, path))
            continue;
        const char *m = method_name(routes[i].method);
        int n = snprintf(allow + used, sizeof(allow) - used, "%s%s%s", used ? ", " : "", m,
                         routes[i].method == HTTP_M_GET ? ", HEAD" : "");
        if (n > 0 && (size_t)n < sizeof(allow) - used)
            used += (size_t)n;
    }
    http_problem(res, 405, NULL, "This method is not allowed on this resource.");
    http_add_header(res, "Allow", allow);
}

void router_dispatch(void *arg, const struct http_request *req, struct http_response *res)
{
    struct app *app = arg;
    const struct route *found = NULL;
    bool path_known = false;
    for (size_t i = 0; i < N_ROUTES && !found; i++) {
        if (!path_matches(routes[i].pattern, req->path))
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
    if (req->query.len > 0) {
        http_problem(res, 400, "query", "This resource takes no query parameters.");
        return;
    }
    if (!permitted(found)) {
        http_problem(res, 403, NULL, "You are not allowed to do this.");
        return;
    }
    struct route_ctx ctx = { .req = req, .res = res, .app = app };
    found->handler(&ctx);
}
