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
 * Background upkeep run every `interval_ms`. `make` runs on the loop: it may
 * do short loop-thread work itself (audit retention) and returns a job whose
 * work runs on the thread pool and whose done runs on the loop with a NULL
 * response (WAL checkpoints, which fsync), or NULL when there is nothing
 * for the pool this round. At most one job per chore is in flight.
 */
struct server_chore {
    unsigned interval_ms;
    struct http_job *(*make)(void *arg);
    void *arg;
};

#define SERVER_CHORES_MAX 4

/** What the caller plugs into the loop. Every callback runs on the loop. */
struct server_hooks {
    struct server_chore chores[SERVER_CHORES_MAX];
    size_t n_chores;
    /* Once, after every listener is bound and before readiness is
     * announced: drop privileges, enter the sandbox, record server.start.
     * Non-zero stops the server before it serves anyone. */
    int (*started)(void *arg);
    /* Once, when the server has stopped serving, after the last
     * connection closed (record server.stop). */
    void (*stopping)(void *arg);
    void *arg;
};

/**
 * Serve on cfg->listen until a stop signal. Readiness (and the bound port)
 * is reported on stderr and, under systemd, through NOTIFY_SOCKET.
 * The audit trail (app->audit, may be NULL) is synced off the loop: every
 * AUDIT_BATCH_MS under NOTES_AUDIT_SYNC=batch; under =always a response
 * leaves only once the lines written before it are on disk (group commit).
 * Returns 0 after a clean shutdown, or a negative ERR_* when the listener
 * cannot be set up or `started` refused (then its own code, unchanged; no
 * stop signal is logged). Blocks the calling thread for the
 * server's lifetime. `hooks` may be NULL.
 */
int server_run(const struct config *cfg, struct tls_ctx *tls, const struct http_limits *limits,
               struct app *app, const struct server_hooks *hooks);

/** The linked libuv version. */
const char *server_loop_version(void);
/**
 * Make room for the connection caps among the open files: each connection
 * is a socket (the redirect listener's as many again) besides a reserve for
 * SQLite, the audit trail and libuv. Raises the soft RLIMIT_NOFILE up to the
 * hard one when short; 0, or ERR_CONFIG with `err` naming
 * NOTES_MAX_CONNECTIONS when the hard limit is too low. Call before the
 * sandbox (it forbids setrlimit).
 */
int server_fit_file_limit(const struct config *cfg, char *err, size_t errlen);

#endif
