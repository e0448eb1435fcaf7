/*
 * server_int.h - pieces private to the server module (server*.c): the
 * server and connection records, per-address connection counting, the
 * handler job queue, the background chores and audit syncs, and the
 * redirect listener. Event-loop thread only.
 */
#ifndef NOTESD_SERVER_INT_H
#define NOTESD_SERVER_INT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/queue.h>
#include <uv.h>
#include "config.h"
#include "http.h"
#include "server.h"
#include "tls.h"

#define SERVER_IP_BUCKETS 1024
#define READ_CHUNK (16 * 1024)         /* one TLS record at most per read */
/* Handler jobs waiting for a hashing slot (server_jobs.c), over all
 * connections; past it a request whose job would wait is answered 503.
 * Two slots drain 64 jobs in about 32 checks (a few seconds at the default
 * cost): a legitimate login behind a full queue still gets in within its
 * client's patience, while a flood pins at most 64 connections' state. */
#define SERVER_JOBS_WAIT_MAX 64

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

/* ---- background chores and audit syncs (server_chores.c) ----------------- */

struct server;

struct server_chore_slot {
    uv_timer_t timer;
    struct server *srv;
    const struct server_chore *chore;
    bool running;
};

#define SERVER_REJECT_KINDS 6
#define SERVER_REJECT_REPORT_MS 60000  /* how often refusals are summed up */
/** The statuses counted in server.rejected[] (the last slot: any other). */
extern const int server_reject_statuses[SERVER_REJECT_KINDS];

struct server_chores {
    struct server_chore_slot slot[SERVER_CHORES_MAX];
    size_t n;
    uv_timer_t audit_timer;            /* NOTES_AUDIT_SYNC=batch */
    uv_timer_t audit_retry_timer;      /* always: the next try after a failed sync */
    uv_timer_t report_timer;           /* refusals, summed up */
    bool audit_timer_on;
    bool audit_retry_on;
    bool report_timer_on;
    uv_prepare_t audit_prepare;        /* gives the audit lock back before */
    bool audit_prepare_on;             /* each poll (audit_hold) */
    bool audit_running;                /* one audit sync in flight at most */
    struct check_req *check;           /* retention's check in flight, or NULL */
};

struct conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    struct server *srv;
    struct tls_conn *tls;
    struct http_conn *http;
    struct conn *prev, *next;
    int handles_open;           /* plus one while a job runs: it pins us */
    unsigned writes_pending;
    bool closing;
    bool close_after_flush;
    bool lingering;             /* our side ended: input read and dropped */
    uint64_t linger_until, linger_end;   /* idle deadline, and the total's */
    uv_shutdown_t shutdown_req;
    bool job_running;           /* waiting for a slot (then job_queued) or running */
    struct job_req *job_queued; /* its place in server.jobs_wait, not started */
    bool reading;
    bool held;                  /* a response waits for its audit line */
    bool finish_when_released;  /* conn_finish() came while held */
    bool ticket_held;           /* TLS 1.3 session ticket waits for the first answer */
    uint64_t hold_seq;          /* ... up to this audit line */
    TAILQ_ENTRY(conn) held_link;        /* in server.held while held */
    struct server_ip *ip;       /* per-address connection count */
    uint8_t peer[16];
    /* Timer bookkeeping (uv_now milliseconds). */
    uint64_t accepted_at, idle_since, request_start, body_start, last_read, last_write;
    uint64_t requests_seen, requests_idle;
    enum http_phase phase;
};

struct server {
    uv_loop_t loop;
    uv_tcp_t listener;
    uv_signal_t sigint, sigterm;
    uv_timer_t grace;
    const struct server_hooks *hooks;
    struct server_chores chores;
    TAILQ_HEAD(conn_list, conn) held;  /* connections holding a response,
                                          in the order they were held */
    /* Handler jobs (password hashing) on the pool: at most SERVER_JOBS_MAX
     * at once, the rest wait here in arrival order (server_jobs.c). */
    unsigned jobs_running, jobs_waiting;
    TAILQ_HEAD(job_list, job_req) jobs_wait;
    const struct config *cfg;
    struct tls_ctx *tls;
    const struct http_limits *limits;
    struct app *app;
    struct conn *conns;
    size_t n_conns;
    /* Refusals at the edge, counted and written to the audit trail as one
     * line per kind and period (never one line per hostile byte). */
    uint64_t refused;                  /* connections closed at a cap */
    uint64_t refused_rate;             /* ... past the new-connection rate */
    struct ratelimit *rl_conns;        /* new connections per address, or NULL */
    uint64_t jobs_refused;             /* requests refused at SERVER_JOBS_WAIT_MAX */
    uint64_t tls_failed;               /* closed before the handshake was done */
    uint64_t tls_renegotiations;       /* closed for a TLS 1.2 renegotiation attempt */
    uint64_t rejected[SERVER_REJECT_KINDS]; /* by status, server_reject_statuses */
    struct server_ips ips;
    struct server_redirect *redirect;
    /* The datagram socket to $NOTIFY_SOCKET, made before the sandbox (the
     * filter allows no new socket); -1 without one. */
    int notify_fd;
    bool draining;
    bool stopped;                      /* the stop was reported */
    uint8_t read_buf[READ_CHUNK];      /* shared: reads are handled at once */
    uint8_t plain_buf[READ_CHUNK];
};


/* ---- connections (server.c) and the server's lifetime (server_life.c) -- */

/** Close a connection now (no close_notify). */
void server_conn_close(struct conn *c);
/** Send close_notify and whatever is queued, then close. */
void server_conn_finish(struct conn *c);
/** Count one of the connection's handles (or its running or waiting job)
 *  closed; when none is left, free the connection. */
void server_conn_release(struct conn *c);
/** Handshake, then decrypt and answer what TLS holds until it needs more
 *  bytes, a job takes over or the client has too much unread output; then
 *  set reading and the deadline to match. May close the connection. */
void server_conn_drive(struct conn *c);
/** Move HTTP's plaintext output through TLS to the socket, or hold it until
 *  every audit line recorded so far is written. 0 or a negative ERR_*: the
 *  caller closes the connection. */
int server_conn_send_responses(struct conn *c);
/** Start or stop reading from the socket to match what holds it back (a
 *  running job, a held response, a client not reading our output). */
void server_conn_update_reading(struct conn *c);
/** Arm the connection's timer for the one deadline that applies now. */
void server_conn_schedule(struct conn *c);
/** The listener's callback: accept, check the caps, start TLS
 *  (server_accept.c). */
void server_on_connection(uv_stream_t *listener, int status);
/** Once draining and no connection is left, close the remaining handles
 *  so uv_run returns (server_life.c). */
void server_maybe_finish(struct server *s);

/** Bind `t` to host:port (IPv4 or IPv6 literal) and listen. ERR_CONFIG when
 *  the address does not parse (`t` untouched); ERR_IO, logged naming
 *  `what`, when binding or listening fails (`t` is initialised: the caller
 *  closes it). (server_life.c) */
int server_listen(uv_loop_t *loop, uv_tcp_t *t, const char *host, int port, int backlog,
                  uv_connection_cb cb, const char *what);

/** Start every chore's timer and, in batch mode, the audit sync timer. */
void server_chores_start(struct server *s);
/** Stop and close the timers (a job in flight still finishes; a
 *  retention check not yet started is cancelled). */
void server_chores_stop(struct server *s);
/** Start an audit sync now unless one is in flight (always mode: a
 *  response is held for it). After a failed sync, always mode tries again
 *  from a timer every AUDIT_BATCH_MS until one works, never straight from
 *  the failure (batch mode's own timer does the same). */
void server_audit_kick(struct server *s);
/** Write what was refused since the last report (one audit line per kind
 *  with its count) and reset the counts. */
void server_report_rejects(struct server *s);
/** After audit lines were written or synced: send every held response
 *  they cover (server.c). */
void server_release_held(struct server *s);

/* ---- handler jobs on the thread pool (server_jobs.c) -------------------- */

/** If the handler deferred work, run it on the pool (or queue it for a free
 *  slot) and stop reading until it answers; the job pins the connection.
 *  0 (also when there is no job), or ERR_NOMEM / ERR_INTERNAL with the job
 *  cancelled: the caller closes the connection. */
int server_conn_start_job(struct conn *c);
/** The connection is closing: a job of its still waiting for a slot has
 *  not started, so it is taken off the queue and cancelled (nothing ran,
 *  nothing changed) and lets go of the connection. A running job is left
 *  to finish. */
void server_conn_cancel_job(struct conn *c);

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
