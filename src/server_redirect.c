/*
 * server_redirect.c - the optional plain-HTTP listener (NOTES_REDIRECT_LISTEN)
 * that answers every request with 301 to the same path on the HTTPS port.
 *
 * It parses with the same http_conn (same size limits and framing rules) in
 * plain mode (no HSTS: it means nothing over HTTP), and holds connections to
 * the same header and keep-alive timeouts. It never routes, authenticates or
 * reads a body into any handler: there is nothing to serve over plain HTTP.
 */
#include "server_int.h"
#include "err.h"
#include "log.h"

#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REDIRECT_READ_CHUNK 4096
/* The same backpressure as the TLS side: stop reading a client that leaves
 * its 301s unread. */
#define REDIRECT_HIGH_WATER (64 * 1024)
#define REDIRECT_LOW_WATER (16 * 1024)

struct redirect_conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    struct server_redirect *r;
    struct http_conn *http;
    struct redirect_conn *prev, *next;
    int handles_open;
    unsigned writes_pending;
    uint64_t request_start, idle_since, requests_seen, requests_idle;
    enum http_phase phase;
    struct server_ip *ip;
    bool closing, close_after_flush, reading;
};

struct server_redirect {
    uv_tcp_t listener;
    uv_loop_t *loop;
    const struct config *cfg;
    const struct http_limits *limits;
    uint16_t tls_port;
    struct redirect_conn *conns;
    size_t n_conns;
    struct server_ips ips;
    char read_buf[REDIRECT_READ_CHUNK];
};

struct redirect_write {
    uv_write_t req;
    struct redirect_conn *c;
    struct buf data;
};

/* ---- the one answer ------------------------------------------------------ */

/* Location: https://<host>:<tls port><target>, the host taken from the Host
 * header (already validated by http.c) without its port, or the listen
 * address when an HTTP/1.0 client sent none. */
static void redirect_dispatch(void *arg, const struct http_request *req, struct http_response *res)
{
    struct server_redirect *r = arg;
    const struct http_header *host = http_find_header(req, "host");
    char h[300], loc[300 + 16 + 8192];
    if (host) {
        struct slice v = host->value;
        size_t n;
        if (v.len && v.p[0] == '[') {
            const uint8_t *end = memchr(v.p, ']', v.len);
            n = end ? (size_t)(end - v.p) + 1 : v.len;
        } else {
            const uint8_t *colon = memchr(v.p, ':', v.len);
            n = colon ? (size_t)(colon - v.p) : v.len;
        }
        snprintf(h, sizeof(h), "%.*s", (int)n, (const char *)v.p);
    } else {
        bool v6 = strchr(r->cfg->listen_host, ':') != NULL;
        snprintf(h, sizeof(h), "%s%s%s", v6 ? "[" : "", r->cfg->listen_host, v6 ? "]" : "");
    }
    bool star = req->target.len == 1 && req->target.p[0] == '*';
    snprintf(loc, sizeof(loc), "https://%s:%u%.*s", h, (unsigned)r->tls_port,
             star ? 1 : (int)req->target.len, star ? "/" : (const char *)req->target.p);
    http_problem(res, 301, NULL, "This server answers only over HTTPS.");
    http_add_header(res, "Location", loc);
}

/* ---- connections ------------------------------------------------------------ */

static void rc_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b);
static void rc_on_read(uv_stream_t *stream, ssize_t n, const uv_buf_t *b);

static void rc_release(uv_handle_t *h)
{
    struct redirect_conn *c = h->data;
    if (--c->handles_open > 0)
        return;
    http_conn_free(c->http);
    free(c);
}

static void rc_close(struct redirect_conn *c)
{
    if (c->closing)
        return;
    c->closing = true;
    struct server_redirect *r = c->r;
    if (c->prev)
        c->prev->next = c->next;
    else
        r->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    r->n_conns--;
    server_ip_release(&r->ips, c->ip);
    c->ip = NULL;
    uv_close((uv_handle_t *)&c->tcp, rc_release);
    uv_close((uv_handle_t *)&c->timer, rc_release);
}

static void rc_on_write(uv_write_t *req, int status)
{
    struct redirect_write *w = (struct redirect_write *)req;
    struct redirect_conn *c = w->c;
    buf_cleanup(&w->data);
    free(w);
    c->writes_pending--;
    if (status < 0 || (c->close_after_flush && c->writes_pending == 0)) {
        rc_close(c);
        return;
    }
    if (!c->closing && !c->close_after_flush && !c->reading &&
        uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) < REDIRECT_LOW_WATER)
        c->reading = uv_read_start((uv_stream_t *)&c->tcp, rc_alloc, rc_on_read) == 0;
}

static int rc_flush(struct redirect_conn *c)
{
    if (http_conn_output(c->http)->len == 0)
        return 0;
    struct redirect_write *w = malloc(sizeof(*w));
    if (!w)
        return ERR_NOMEM;
    w->c = c;
    http_conn_take_output(c->http, &w->data);
    uv_buf_t b = uv_buf_init((char *)w->data.data, (unsigned)w->data.len);
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, rc_on_write) != 0) {
        buf_cleanup(&w->data);
        free(w);
        return ERR_IO;
    }
    c->writes_pending++;
    return 0;
}

static void rc_on_timeout(uv_timer_t *t)
{
    struct redirect_conn *c = t->data;
    enum http_phase phase = http_conn_phase(c->http);
    if (phase == HTTP_PHASE_HEADERS || phase == HTTP_PHASE_BODY) {
        http_conn_timed_out(c->http);
        if (rc_flush(c) == 0 && c->writes_pending > 0) {
            uv_read_stop((uv_stream_t *)&c->tcp);
            c->close_after_flush = true;
            /* A client that does not read even the 408 is cut off later. */
            uv_timer_start(&c->timer, rc_on_timeout, (uint64_t)c->r->cfg->timeout_send_s * 1000, 0);
            return;
        }
    }
    rc_close(c);
}

static void rc_schedule(struct redirect_conn *c)
{
    const struct config *cfg = c->r->cfg;
    uint64_t now = uv_now(c->r->loop);
    uint64_t requests = http_conn_requests(c->http);
    enum http_phase phase = http_conn_phase(c->http);
    if (requests != c->requests_seen) {
        c->requests_seen = requests;
        c->request_start = now;
    }
    /* Idle since a request ended, not since the last byte: line breaks
     * before a request line start no message and must not keep a
     * connection open (the TLS side's track_phase() does the same). */
    if (phase == HTTP_PHASE_IDLE && (c->phase != HTTP_PHASE_IDLE || requests != c->requests_idle)) {
        c->idle_since = now;
        c->requests_idle = requests;
    }
    c->phase = phase;
    uint64_t when = phase == HTTP_PHASE_IDLE ? c->idle_since + (uint64_t)cfg->timeout_keepalive_s * 1000
                                             : c->request_start + (uint64_t)cfg->timeout_header_s * 1000;
    uv_timer_start(&c->timer, rc_on_timeout, when > now ? when - now : 0, 0);
}

static void rc_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    (void)suggested;
    struct redirect_conn *c = h->data;
    b->base = c->r->read_buf;
    b->len = sizeof(c->r->read_buf);
}

static void rc_on_read(uv_stream_t *stream, ssize_t n, const uv_buf_t *b)
{
    struct redirect_conn *c = stream->data;
    if (n == 0)
        return;
    if (n < 0 || http_conn_feed(c->http, (const uint8_t *)b->base, (size_t)n) != 0 || rc_flush(c) != 0) {
        rc_close(c);
        return;
    }
    if (http_conn_should_close(c->http)) {
        uv_read_stop(stream);
        c->reading = false;
        if (c->writes_pending == 0)
            rc_close(c);
        else
            c->close_after_flush = true;
        return;
    }
    if (uv_stream_get_write_queue_size(stream) > REDIRECT_HIGH_WATER) {
        uv_read_stop(stream);
        c->reading = false;
    }
    rc_schedule(c);
}

static void rc_on_connection(uv_stream_t *listener, int status)
{
    struct server_redirect *r = listener->data;
    if (status < 0)
        return;
    struct redirect_conn *c = calloc(1, sizeof(*c));
    if (!c)
        return;
    c->r = r;
    uv_tcp_init(r->loop, &c->tcp);
    uv_timer_init(r->loop, &c->timer);
    c->tcp.data = c->timer.data = c;
    c->handles_open = 2;
    c->next = r->conns;
    if (r->conns)
        r->conns->prev = c;
    r->conns = c;
    r->n_conns++;
    struct sockaddr_storage sa;
    int salen = sizeof(sa);
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0 || r->n_conns > r->cfg->max_connections ||
        uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&sa, &salen) != 0 ||
        !(c->ip = server_ip_acquire(&r->ips, (const struct sockaddr *)&sa, r->cfg->max_connections_per_ip)) ||
        !(c->http = http_conn_new(r->limits, redirect_dispatch, r))) {
        rc_close(c);
        return;
    }
    http_conn_set_plain(c->http);
    c->idle_since = uv_now(r->loop);
    c->reading = uv_read_start((uv_stream_t *)&c->tcp, rc_alloc, rc_on_read) == 0;
    rc_schedule(c);
}

/* ---- start and stop -------------------------------------------------------- */

static void free_redirect(uv_handle_t *h)
{
    struct server_redirect *r = h->data;
    server_ips_cleanup(&r->ips);
    free(r);
}

int server_redirect_start(uv_loop_t *loop, const struct config *cfg, const struct http_limits *limits,
                          uint16_t tls_port, struct server_redirect **out)
{
    struct server_redirect *r = calloc(1, sizeof(*r));
    if (!r)
        return ERR_NOMEM;
    r->loop = loop;
    r->cfg = cfg;
    r->limits = limits;
    r->tls_port = tls_port;
    int rc = server_listen(loop, &r->listener, cfg->redirect_host, cfg->redirect_port, 128,
                           rc_on_connection, cfg->redirect_listen);
    r->listener.data = r;      /* after uv_tcp_init, which owns the handle */
    if (rc == ERR_CONFIG)
        free(r);
    else if (rc != 0)
        uv_close((uv_handle_t *)&r->listener, free_redirect);
    if (rc != 0)
        return rc;
    *out = r;
    return 0;
}

int server_redirect_port(struct server_redirect *r)
{
    struct sockaddr_storage sa;
    int len = sizeof(sa);
    if (uv_tcp_getsockname(&r->listener, (struct sockaddr *)&sa, &len) != 0)
        return 0;
    return ntohs(sa.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&sa)->sin6_port
                                          : ((struct sockaddr_in *)&sa)->sin_port);
}


void server_redirect_stop(struct server_redirect *r)
{
    if (!r)
        return;
    while (r->conns)
        rc_close(r->conns);
    uv_close((uv_handle_t *)&r->listener, free_redirect);
}
