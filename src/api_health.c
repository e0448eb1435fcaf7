/* api_health.c - liveness: the process is up and serving requests. */
#include "api.h"

void api_health(struct route_ctx *ctx)
{
    static const char body[] = "{\"status\":\"ok\"}";
    if (http_set_json(ctx->res, 200, body, sizeof(body) - 1) != 0)
        http_problem(ctx->res, 500, NULL, "The response could not be built.");
}
