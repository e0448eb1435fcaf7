/*
 * server_int.h - pieces private to the server module (server*.c): per-address
 * connection counting and the redirect listener. Event-loop thread only.
 */
#ifndef NOTESD_SERVER_INT_H
#define NOTESD_SERVER_INT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>
#include "config.h"
#include "http.h"

#define SERVER_IP_BUCKETS 1024

/** One remote address with open connections. */
struct server_ip {
    struct server_ip *next;
    uint8_t addr[16];          /* IPv4 as ::ffff:a.b.c.d */
    uint32_t count;
};

/** Open connections per remote address. Entries exist only while an address
 *  has connections, so the table never holds more than max_connections. */
struct server_ips {
    struct server_ip *bucket[SERVER_IP_BUCKETS];
    uint32_t key;              /* random hash key: no chosen-collision floods */
};

/** The 16-byte key of an address: IPv6 as is, IPv4 as ::ffff:a.b.c.d. */
void server_addr_key(const struct sockaddr *sa, uint8_t out[16]);
/** Count one more connection from `sa`; NULL when `cap` are already open
 *  (or out of memory): the caller refuses the connection. */
struct server_ip *server_ip_acquire(struct server_ips *t, const struct sockaddr *sa, uint32_t cap);
/** Count one connection less; NULL is a no-op. */
void server_ip_release(struct server_ips *t, struct server_ip *ip);
/** Free every entry. */
void server_ips_cleanup(struct server_ips *t);

/* ---- the plain-HTTP redirect listener (server_redirect.c) ---------------- */

struct server_redirect;

/** Listen on cfg->redirect_listen and answer 301 to https://host:tls_port. */
int server_redirect_start(uv_loop_t *loop, const struct config *cfg, const struct http_limits *limits,
                          uint16_t tls_port, struct server_redirect **out);
/** The port it is bound to (for NOTES_REDIRECT_LISTEN=...:0 in tests). */
int server_redirect_port(struct server_redirect *r);
/** Close the listener and every redirect connection. NULL is a no-op. */
void server_redirect_stop(struct server_redirect *r);

#endif
