/*
 * server_life.c - the server's own lifetime: binding the listener, start-up
 * and readiness (sd_notify), the stop signals, draining within the grace
 * period, and the last words before the loop ends. Connections themselves
 * live in server.c.
 */
#include "server.h"
#include "server_int.h"
#include "err.h"
#include "log.h"
#include "ratelimit.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <uv.h>

/* ---- systemd readiness -------------------------------------------------- */

/* sd_notify(3) without libsystemd: one datagram to $NOTIFY_SOCKET. Tests use
 * the same protocol as readiness signal, so nobody sleeps to wait for us.
 * The socket is made and connected once, before the sandbox: its filter
 * allows no new socket at all, and Landlock's scopes (ABI 6) forbid
 * reaching an abstract socket ("@name", as systemd may give it) made
 * outside the sandbox; a socket connected before keeps its peer. */
static void notify_open(struct server *s)
{
    const char *path = s->cfg->notify_socket;
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    size_t len = path ? strlen(path) : 0;
    s->notify_fd = -1;
    if (len == 0 || len >= sizeof(sa.sun_path) || (path[0] != '/' && path[0] != '@'))
        return;
    memcpy(sa.sun_path, path, len);
    if (path[0] == '@')
        sa.sun_path[0] = 0;    /* abstract namespace */
    socklen_t salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
    s->notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s->notify_fd >= 0 && connect(s->notify_fd, (struct sockaddr *)&sa, salen) != 0) {
        log_warn("cannot reach the service manager's notify socket: %s", strerror(errno));
        close(s->notify_fd);
        s->notify_fd = -1;
    }
}

static void notify(const struct server *s, const char *msg)
{
    if (s->notify_fd >= 0 && send(s->notify_fd, msg, strlen(msg), MSG_NOSIGNAL) < 0)
        log_warn("cannot notify the service manager: %s", strerror(errno));
}

/* ---- shutdown ------------------------------------------------------------ */

static void close_if_open(uv_handle_t *h)
{
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

/* Once draining and no connection is left, close the remaining handles so
 * uv_run returns. */
void server_maybe_finish(struct server *s)
{
    if (!s->draining || s->n_conns > 0)
        return;
    close_if_open((uv_handle_t *)&s->grace);
    if (!s->stopped) {   /* the last words: refusals, then server.stop */
        s->stopped = true;
        server_report_rejects(s);
        if (s->hooks && s->hooks->stopping)
            s->hooks->stopping(s->hooks->arg);
    }
    server_chores_stop(s);
    close_if_open((uv_handle_t *)&s->sigint);
    close_if_open((uv_handle_t *)&s->sigterm);
}

static void on_grace_over(uv_timer_t *t)
{
    struct server *s = t->data;
    if (s->n_conns)
        log_warn("shutdown grace period over: closing %zu connection(s)", s->n_conns);
    while (s->conns)
        server_conn_close(s->conns);
    server_maybe_finish(s);
}

/* Stop listening and let the connections finish within the grace period. */
static void begin_stop(struct server *s)
{
    notify(s, "STOPPING=1");
    s->draining = true;
    close_if_open((uv_handle_t *)&s->listener);
    server_redirect_stop(s->redirect);
    s->redirect = NULL;
    /* Idle connections go now; busy ones after their current response. */
    for (struct conn *c = s->conns, *next; c; c = next) {
        next = c->next;
        http_conn_set_draining(c->http);
        if (!http_conn_in_request(c->http) && !http_conn_waiting(c->http))
            server_conn_finish(c);   /* deferred while a response is held */
    }
    uv_timer_start(&s->grace, on_grace_over, s->cfg->shutdown_grace_ms, 0);
    server_maybe_finish(s);
}

static void on_signal(uv_signal_t *sig, int signum)
{
    struct server *s = sig->data;
    if (s->draining)
        return;
    log_info("received %s: stopping", signum == SIGINT ? "SIGINT" : "SIGTERM");
    begin_stop(s);
}

/* ---- start-up ------------------------------------------------------------ */

int server_listen(uv_loop_t *loop, uv_tcp_t *t, const char *host, int port, int backlog,
                  uv_connection_cb cb, const char *what)
{
    struct sockaddr_storage sa;
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)&sa) != 0 &&
        uv_ip6_addr(host, port, (struct sockaddr_in6 *)&sa) != 0)
        return ERR_CONFIG;
    uv_tcp_init(loop, t);
    int rc = uv_tcp_bind(t, (struct sockaddr *)&sa, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)t, backlog, cb);
    if (rc != 0) {
        log_error("cannot listen on %s: %s", what, uv_strerror(rc));
        return ERR_IO;
    }
    return 0;
}

static int bind_listener(struct server *s)
{
    const struct config *cfg = s->cfg;
    int rc = server_listen(&s->loop, &s->listener, cfg->listen_host, cfg->listen_port, 511,
                           server_on_connection, cfg->listen);
    s->listener.data = s;      /* after uv_tcp_init, which owns the handle */
    if (rc == ERR_IO)
        uv_close((uv_handle_t *)&s->listener, NULL);
    return rc;
}

static int listener_port(struct server *s, char *host, size_t hostlen)
{
    struct sockaddr_storage sa;
    int len = sizeof(sa);
    if (uv_tcp_getsockname(&s->listener, (struct sockaddr *)&sa, &len) != 0)
        return 0;
    if (sa.ss_family == AF_INET6) {
        uv_ip6_name((struct sockaddr_in6 *)&sa, host, hostlen);
        return ntohs(((struct sockaddr_in6 *)&sa)->sin6_port);
    }
    uv_ip4_name((struct sockaddr_in *)&sa, host, hostlen);
    return ntohs(((struct sockaddr_in *)&sa)->sin_port);
}

/* Every socket is bound before `started` (which may drop the privileges a
 * low port needs); readiness is announced only after it succeeded. */
static int start_serving(struct server *s)
{
    char host[64] = "?";
    int port = listener_port(s, host, sizeof(host));
    int redirect_port = 0;
    if (s->cfg->redirect_listen) {
        if (server_redirect_start(&s->loop, s->cfg, s->limits, (uint16_t)port, &s->redirect) != 0)
            return ERR_IO;
        redirect_port = server_redirect_port(s->redirect);
    }
    if (s->hooks && s->hooks->started) {
        int rc = s->hooks->started(s->hooks->arg);
        if (rc != 0)
            return rc;
    }
    log_info("listening on https://%s%s%s:%d", strchr(host, ':') ? "[" : "", host,
             strchr(host, ':') ? "]" : "", port);
    if (s->redirect)
        log_info("redirecting http://%s to HTTPS", s->cfg->redirect_listen);
    server_chores_start(s);
    char msg[200];
    snprintf(msg, sizeof(msg), "READY=1\nSTATUS=listening\nX_NOTESD_PORT=%d\nX_NOTESD_REDIRECT_PORT=%d\nMAINPID=%ld",
             port, redirect_port, (long)getpid());
    notify(s, msg);
    return 0;
}

/* Files besides the connections' sockets: the database with its WAL and
 * shared memory, the audit file, folder and lock, a rotated file being
 * read, the listeners, libuv's epoll, signal and async descriptors, and
 * the pool's. Generous: running out means accept() fails and the audit
 * trail cannot open its next file, which refuses every change. */
#define SERVER_FILES_RESERVE 64

int server_fit_file_limit(const struct config *cfg, char *err, size_t errlen)
{
    rlim_t per_listener = cfg->max_connections, listeners = cfg->redirect_listen ? 2 : 1;
    rlim_t need = per_listener * listeners + SERVER_FILES_RESERVE;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        snprintf(err, errlen, "cannot read the open-file limit: %s", strerror(errno));
        return ERR_CONFIG;
    }
    if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= need)
        return 0;
    if (rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= need) {
        rlim_t was = rl.rlim_cur;
        rl.rlim_cur = need;
        if (setrlimit(RLIMIT_NOFILE, &rl) == 0) {
            log_info("open-file limit raised from %llu to %llu for the connection caps",
                     (unsigned long long)was, (unsigned long long)need);
            return 0;
        }
    }
    snprintf(err, errlen,
             "NOTES_MAX_CONNECTIONS (%u%s) needs %llu open files, but the limit is %llu: raise it "
             "(LimitNOFILE=, ulimit -n) or lower NOTES_MAX_CONNECTIONS",
             cfg->max_connections, cfg->redirect_listen ? ", and as many for the redirect listener" : "",
             (unsigned long long)need, (unsigned long long)rl.rlim_max);
    return ERR_CONFIG;
}

int server_run(const struct config *cfg, struct tls_ctx *tls, const struct http_limits *limits,
               struct app *app, const struct server_hooks *hooks)
{
    struct server *s = calloc(1, sizeof(*s));
    if (!s)
        return ERR_NOMEM;
    s->cfg = cfg;
    s->tls = tls;
    s->limits = limits;
    s->app = app;
    s->hooks = hooks;
    TAILQ_INIT(&s->held);
    TAILQ_INIT(&s->jobs_wait);
    if (cfg->rate_limits_on && cfg->rate_conn_per_s &&
        !(s->rl_conns = ratelimit_new(cfg->rate_table_size, cfg->rate_conn_per_s, cfg->rate_conn_burst))) {
        free(s);
        return ERR_NOMEM;
    }
    notify_open(s);
    /* A write to a reset peer must fail with EPIPE, not kill the server. */
    if (signal(SIGPIPE, SIG_IGN) == SIG_ERR || uv_loop_init(&s->loop) != 0) {
        if (s->notify_fd >= 0)
            close(s->notify_fd);
        ratelimit_free(s->rl_conns);
        free(s);
        return ERR_INTERNAL;
    }
    int rc;
    rc = bind_listener(s);
    if (rc == 0) {
        uv_signal_init(&s->loop, &s->sigint);
        uv_signal_init(&s->loop, &s->sigterm);
        uv_timer_init(&s->loop, &s->grace);
        s->sigint.data = s->sigterm.data = s->grace.data = s;
        uv_signal_start(&s->sigint, on_signal, SIGINT);
        uv_signal_start(&s->sigterm, on_signal, SIGTERM);
        rc = start_serving(s);
        if (rc != 0)
            begin_stop(s);   /* unwind what started; its error is logged, no signal came */
    }
    uv_run(&s->loop, UV_RUN_DEFAULT);
    /* Every connection is freed now, and each gave back what it counted
     * (http.c for answers built, on_write() for ciphertext queued): a
     * budget that still reads more than 0 lost track, and would have
     * refused large answers for good. Said here, where it shows in tests. */
    if (limits->budget && limits->budget->queued != 0)
        log_error("output budget: %zu bytes still counted after every connection closed",
                  limits->budget->queued);
    server_ips_cleanup(&s->ips);
    ratelimit_free(s->rl_conns);
    if (uv_loop_close(&s->loop) != 0)
        log_warn("event loop closed with handles still open");
    if (s->notify_fd >= 0)
        close(s->notify_fd);
    free(s);
    if (rc == 0)
        log_info("stopped");
    return rc;
}

const char *server_loop_version(void)
{
    return uv_version_string();
}
