/*
 * server.h - the event loop: listener, connections, timers, shutdown.
 *
 * The only module that includes uv.h. server_run() binds the configured
 * address, serves until SIGINT or SIGTERM, then stops accepting, lets
 * in-flight requests finish for up to the shutdown grace period, closes every
 * connection with a TLS close_notify and returns.
 */
#ifndef NOTESD_SERVER_H
#define NOTESD_SERVER_H

#include "app.h"
#include "http.h"
#include "tls.h"

/**
 * Background upkeep run every `interval_ms` (WAL checkpoints, which fsync):
 * `make` returns a job whose work runs on the thread pool and whose done
 * runs on the loop with a NULL response; NULL from `make` skips a round.
 */
struct server_chore {
    unsigned interval_ms;
    struct http_job *(*make)(void *arg);
    void *arg;
};

/**
 * Serve on cfg->listen until a stop signal. Readiness (and the bound port)
 * is reported on stderr and, under systemd, through NOTIFY_SOCKET.
 * Returns 0 after a clean shutdown, or a negative ERR_* when the listener
 * cannot be set up. Blocks the calling thread for the server's lifetime.
 */
int server_run(const struct config *cfg, struct tls_ctx *tls, const struct http_limits *limits,
               struct app *app, const struct server_chore *chore);

/** The linked libuv version. */
const char *server_loop_version(void);

#endif
