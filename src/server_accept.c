/*
 * server_accept.c - a new connection: accepted, checked against the caps
 * (open connections in all and per address, new connections per address),
 * given its TLS and HTTP state, and handed to server.c to read.
 */
#include "server_int.h"
#include "log.h"
#include "ratelimit.h"
#include "router.h"
#include "utc.h"

#include <stdlib.h>
#include <sys/socket.h>
#include <uv.h>

/* Past a connection cap the newcomer is accepted and closed at once, so it
 * leaves the backlog without disturbing anyone already connected. */
static bool over_caps(struct server *s, struct conn *c)
{
    struct sockaddr_storage sa;
    int len = sizeof(sa);
    if (s->n_conns > s->cfg->max_connections || uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&sa, &len) != 0) {
        s->refused++;
        return true;
    }
    server_addr_key((const struct sockaddr *)&sa, c->peer);
    /* A handshake costs most of a millisecond: new connections per address
     * draw on a bucket, which the open-connection caps do not bound. */
    uint8_t key[RATELIMIT_KEY_LEN];
    ratelimit_addr_key(c->peer, key);
    if (s->rl_conns && !ratelimit_take(s->rl_conns, key, utc_monotonic_ms(), NULL)) {
        s->refused_rate++;
        return true;
    }
    c->ip = server_ip_acquire(&s->ips, (const struct sockaddr *)&sa, s->cfg->max_connections_per_ip);
    if (!c->ip)
        s->refused++;
    return c->ip == NULL;
}

void server_on_connection(uv_stream_t *listener, int status)
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
    bool accepted = uv_accept(listener, (uv_stream_t *)&c->tcp) == 0;
    s->refused += !accepted;
    if (!accepted || over_caps(s, c)) {
        server_conn_close(c);
        return;
    }
    c->accepted_at = c->last_read = c->last_write = uv_now(&s->loop);
    c->tls = tls_conn_new(s->tls);
    c->http = http_conn_new(s->limits, router_dispatch, s->app);
    if (!c->tls || !c->http) {
        server_conn_close(c);
        return;
    }
    http_conn_set_peer(c->http, c->peer);
    uv_tcp_nodelay(&c->tcp, 1);
    server_conn_update_reading(c);
    server_conn_schedule(c);
}
