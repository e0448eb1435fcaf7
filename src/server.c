/*
 * server.c - the libuv loop, the TLS listener and connection lifetime.
 *
 * Owns the loop, the listening socket, the signal watchers and every
 * connection. A connection is a uv_tcp_t plus a tls_conn and an http_conn:
 * bytes read are fed to TLS, decrypted bytes to HTTP, responses are encrypted
 * and written with uv_write. Nothing on this thread blocks. A connection is
 * freed only after libuv closed both of its handles (Kore's deferred prune),
 * and a write buffer lives until its write callback ran.
 */
#include "server.h"
#include "err.h"
#include "log.h"
#include "router.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <uv.h>

#define READ_CHUNK (16 * 1024)         /* one TLS record at most per read */
#define IDLE_TIMEOUT_MS (15 * 1000)    /* until the edge issue makes it finer */

struct server;

struct conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    struct server *srv;
    struct tls_conn *tls;
    struct http_conn *http;
    struct conn *prev, *next;
    int handles_open;
    unsigned writes_pending;
    bool closing;
    bool close_after_flush;
};

struct server {
    uv_loop_t loop;
    uv_tcp_t listener;
    uv_signal_t sigint, sigterm;
    uv_timer_t grace;
    const struct config *cfg;
    struct tls_ctx *tls;
    const struct http_limits *limits;
    struct app *app;
    struct conn *conns;
    size_t n_conns;
    bool draining;
    uint8_t read_buf[READ_CHUNK];      /* shared: reads are handled at once */
    uint8_t plain_buf[READ_CHUNK];
};

struct write_req {
    uv_write_t req;
    struct conn *conn;
    struct buf data;
};

static void conn_close(struct conn *c);
static void maybe_finish(struct server *s);

/* ---- systemd readiness -------------------------------------------------- */

/* sd_notify(3) without libsystemd: one datagram to $NOTIFY_SOCKET. Tests use
 * the same protocol as readiness signal, so nobody sleeps to wait for us. */
static void notify(const struct config *cfg, const char *msg)
{
    const char *path = cfg->notify_socket;
    if (!path)
        return;
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    size_t len = strlen(path);
    if (len == 0 || len >= sizeof(sa.sun_path) || (path[0] != '/' && path[0] != '@'))
        return;
    memcpy(sa.sun_path, path, len);
    if (path[0] == '@')
        sa.sun_path[0] = 0;    /* abstract namespace */
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return;
    socklen_t salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
    if (sendto(fd, msg, strlen(msg), MSG_NOSIGNAL, (struct sockaddr *)&sa, salen) < 0)
        log_warn("cannot notify the service manager: %s", strerror(errno));
    close(fd);
}

/* ---- connection lifetime ---------------------------------------------- */

static void on_handle_closed(uv_handle_t *h)
{
    struct conn *c = h->data;
    if (--c->handles_open > 0)
        return;
    struct server *s = c->srv;
    tls_conn_free(c->tls);
    http_conn_free(c->http);
    free(c);
    maybe_finish(s);
}

static void conn_close(struct conn *c)
{
    if (c->closing)
        return;
    c->closing = true;
    struct server *s = c->srv;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->n_conns--;
    uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
}

static void on_write(uv_write_t *req, int status)
{
    struct write_req *w = (struct write_req *)req;
    struct conn *c = w->conn;
    buf_cleanup(&w->data);
    free(w);
    c->writes_pending--;
    if (status < 0) {
        conn_close(c);
        return;
    }
    if (c->close_after_flush && c->writes_pending == 0)
        conn_close(c);
}

/* Hand the ciphertext TLS produced to the socket, without copying it. */
static int flush(struct conn *c)
{
    struct buf *out = tls_conn_output(c->tls);
    if (out->len == 0 || c->closing)
        return 0;
    struct write_req *w = malloc(sizeof(*w));
    if (!w)
        return ERR_NOMEM;
    w->conn = c;
    w->data = *out;
    buf_init(out, w->data.max);
    uv_buf_t b = uv_buf_init((char *)w->data.data, (unsigned)w->data.len);
    int rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_write);
    if (rc < 0) {
        buf_cleanup(&w->data);
        free(w);
        return ERR_IO;
    }
    c->writes_pending++;
    return 0;
}

/* Send close_notify and whatever is queued, then close. */
static void conn_finish(struct conn *c)
{
    uv_read_stop((uv_stream_t *)&c->tcp);
    tls_conn_close_notify(c->tls);
    if (flush(c) != 0 || c->writes_pending == 0) {
        conn_close(c);
        return;
    }
    c->close_after_flush = true;
}

static void on_timeout(uv_timer_t *t)
{
    conn_close(t->data);
}

static void touch(struct conn *c)
{
    uv_timer_start(&c->timer, on_timeout, IDLE_TIMEOUT_MS, 0);
}

/* Move HTTP's plaintext output through TLS to the socket. */
static int send_responses(struct conn *c)
{
    struct buf *plain = http_conn_output(c->http);
    if (plain->len == 0)
        return 0;
    int rc = tls_conn_write(c->tls, plain->data, plain->len);
    buf_reset(plain);
    return rc ? rc : flush(c);
}

static void drive(struct conn *c)
{
    struct server *s = c->srv;
    if (!tls_conn_handshake_done(c->tls)) {
        int rc = tls_conn_handshake(c->tls);
        if (flush(c) != 0 || (rc != 0 && rc != ERR_WANT_IO)) {
            conn_close(c);
            return;
        }
        if (rc == ERR_WANT_IO)
            return;
    }
    for (;;) {
        size_t got = 0;
        int rc = tls_conn_read(c->tls, s->plain_buf, sizeof(s->plain_buf), &got);
        if (rc == ERR_WANT_IO)
            break;
        if (rc == ERR_CLOSED) {
            conn_finish(c);
            return;
        }
        if (rc != 0) {
            conn_close(c);
            return;
        }
        if (http_conn_feed(c->http, s->plain_buf, got) != 0 || send_responses(c) != 0) {
            conn_close(c);
            return;
        }
        if (http_conn_should_close(c->http)) {
            conn_finish(c);
            return;
        }
    }
    if (s->draining && !http_conn_in_request(c->http))
        conn_finish(c);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    (void)suggested;
    struct conn *c = h->data;
    b->base = (char *)c->srv->read_buf;
    b->len = sizeof(c->srv->read_buf);
}

static void on_read(uv_stream_t *stream, ssize_t n, const uv_buf_t *b)
{
    struct conn *c = stream->data;
    if (n == 0)
        return;
    if (n < 0) {
        conn_close(c);   /* EOF without close_notify, or a reset */
        return;
    }
    touch(c);
    if (tls_conn_feed(c->tls, (const uint8_t *)b->base, (size_t)n) != 0) {
        conn_close(c);
        return;
    }
    drive(c);
}

static void on_connection(uv_stream_t *listener, int status)
{
    struct server *s = listener->data;
    if (status < 0) {
        log_warn("accept failed: %s", uv_strerror(status));
        return;
    }
    struct conn *c = calloc(1, sizeof(*c));
    if (!c)
        return;
    c->srv = s;
    uv_tcp_init(&s->loop, &c->tcp);
    uv_timer_init(&s->loop, &c->timer);
    c->tcp.data = c->timer.data = c;
    c->handles_open = 2;
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->n_conns++;
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0) {
        conn_close(c);
        return;
    }
    c->tls = tls_conn_new(s->tls);
    c->http = http_conn_new(s->limits, router_dispatch, s->app);
    if (!c->tls || !c->http || uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0) {
        conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    touch(c);
}

/* ---- shutdown ------------------------------------------------------------ */

static void close_if_open(uv_handle_t *h)
{
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

/* Once draining and no connection is left, close the remaining handles so
 * uv_run returns. */
static void maybe_finish(struct server *s)
{
    if (!s->draining || s->n_conns > 0)
        return;
    close_if_open((uv_handle_t *)&s->grace);
    close_if_open((uv_handle_t *)&s->sigint);
    close_if_open((uv_handle_t *)&s->sigterm);
}

static void on_grace_over(uv_timer_t *t)
{
    struct server *s = t->data;
    if (s->n_conns)
        log_warn("shutdown grace period over: closing %zu connection(s)", s->n_conns);
    while (s->conns)
        conn_close(s->conns);
    maybe_finish(s);
}

static void on_signal(uv_signal_t *sig, int signum)
{
    struct server *s = sig->data;
    if (s->draining)
        return;
    log_info("received %s: stopping", signum == SIGINT ? "SIGINT" : "SIGTERM");
    notify(s->cfg, "STOPPING=1");
    s->draining = true;
    close_if_open((uv_handle_t *)&s->listener);
    /* Idle connections go now; busy ones after their current response. */
    for (struct conn *c = s->conns, *next; c; c = next) {
        next = c->next;
        http_conn_set_draining(c->http);
        if (!http_conn_in_request(c->http))
            conn_finish(c);
    }
    uv_timer_start(&s->grace, on_grace_over, s->cfg->shutdown_grace_ms, 0);
    maybe_finish(s);
}

/* ---- start-up ------------------------------------------------------------ */

static int bind_listener(struct server *s)
{
    struct sockaddr_storage sa;
    const struct config *cfg = s->cfg;
    if (uv_ip4_addr(cfg->listen_host, cfg->listen_port, (struct sockaddr_in *)&sa) != 0 &&
        uv_ip6_addr(cfg->listen_host, cfg->listen_port, (struct sockaddr_in6 *)&sa) != 0)
        return ERR_CONFIG;
    uv_tcp_init(&s->loop, &s->listener);
    s->listener.data = s;
    int rc = uv_tcp_bind(&s->listener, (struct sockaddr *)&sa, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&s->listener, 511, on_connection);
    if (rc != 0) {
        log_error("cannot listen on %s: %s", cfg->listen, uv_strerror(rc));
        uv_close((uv_handle_t *)&s->listener, NULL);
        return ERR_IO;
    }
    return 0;
}

static void announce(struct server *s)
{
    struct sockaddr_storage sa;
    int len = sizeof(sa);
    char host[64] = "?";
    int port = 0;
    if (uv_tcp_getsockname(&s->listener, (struct sockaddr *)&sa, &len) == 0) {
        if (sa.ss_family == AF_INET6) {
            uv_ip6_name((struct sockaddr_in6 *)&sa, host, sizeof(host));
            port = ntohs(((struct sockaddr_in6 *)&sa)->sin6_port);
        } else {
            uv_ip4_name((struct sockaddr_in *)&sa, host, sizeof(host));
            port = ntohs(((struct sockaddr_in *)&sa)->sin_port);
        }
    }
    log_info("listening on https://%s%s%s:%d", strchr(host, ':') ? "[" : "", host,
             strchr(host, ':') ? "]" : "", port);
    char msg[160];
    snprintf(msg, sizeof(msg), "READY=1\nSTATUS=listening\nX_NOTESD_PORT=%d\nMAINPID=%ld", port,
             (long)getpid());
    notify(s->cfg, msg);
}

int server_run(const struct config *cfg, struct tls_ctx *tls, const struct http_limits *limits,
               struct app *app)
{
    struct server *s = calloc(1, sizeof(*s));
    if (!s)
        return ERR_NOMEM;
    s->cfg = cfg;
    s->tls = tls;
    s->limits = limits;
    s->app = app;
    signal(SIGPIPE, SIG_IGN);
    int rc = uv_loop_init(&s->loop);
    if (rc != 0) {
        free(s);
        return ERR_INTERNAL;
    }
    rc = bind_listener(s);
    if (rc == 0) {
        uv_signal_init(&s->loop, &s->sigint);
        uv_signal_init(&s->loop, &s->sigterm);
        uv_timer_init(&s->loop, &s->grace);
        s->sigint.data = s->sigterm.data = s->grace.data = s;
        uv_signal_start(&s->sigint, on_signal, SIGINT);
        uv_signal_start(&s->sigterm, on_signal, SIGTERM);
        announce(s);
    }
    uv_run(&s->loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&s->loop) != 0)
        log_warn("event loop closed with handles still open");
    free(s);
    if (rc == 0)
        log_info("stopped");
    return rc;
}

const char *server_loop_version(void)
{
    return uv_version_string();
}
