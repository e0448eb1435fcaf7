/*
 * http.h - HTTP/1.1 request assembly and response writing.
 *
 * The only module that includes llhttp.h. An http_conn turns decrypted bytes
 * into complete, framed, size-checked requests, hands each to a dispatch
 * callback in order (pipelined requests are answered one after another), and
 * serialises the responses, with the security headers, into plaintext bytes
 * for the TLS layer. Runs on the event-loop thread; never touches a socket.
 */
#ifndef NOTESD_HTTP_H
#define NOTESD_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "buf.h"

#define HTTP_MAX_FIELDS_CAP 256  /* hard upper bound for max_fields */
#define HTTP_ID_LEN 24           /* hex characters in a request id */
#define HTTP_BODY_MAX (16u * 1024 * 1024)  /* largest response body (an export) */

/* Answer bytes built for clients that have not taken them yet, over all
 * connections (the loop thread only): an answer counts from the moment it
 * is written into its connection's output (http.c), through its audit
 * hold, until its ciphertext went to the kernel (server.c). A large answer
 * that would pass `max` is refused (http_response_fits()). */
struct http_out_budget {
    size_t queued;
    size_t max;
};

/* An answer this large is checked against the budget: smaller ones always
 * fit (each connection's own backpressure bounds them). Above the largest
 * one-note answer (64 KiB of content escaped up to 6 bytes a byte), so only
 * lists and exports reach it, and their handlers ask before they record. */
#define HTTP_BIG_BODY (512u * 1024)

/** Everything a client controls on the wire, bounded. */
struct http_limits {
    size_t max_target;        /* request target bytes → 414 */
    size_t max_field;         /* one header field, name + value → 431 */
    size_t max_header_block;  /* all header fields → 431 */
    size_t max_fields;        /* number of header fields → 431 */
    size_t max_body;          /* decoded body bytes → 413 */
    struct http_out_budget *budget;   /* NULL: no total bound */
};

/** The defaults: 8 KiB target, 8 KiB field, 32 KiB block, 100 fields, 256 KiB body. */
extern const struct http_limits http_default_limits;

enum http_method {
    HTTP_M_OTHER = 0,
    HTTP_M_GET,
    HTTP_M_HEAD,
    HTTP_M_POST,
    HTTP_M_PUT,
    HTTP_M_DELETE,
    HTTP_M_PATCH,
    HTTP_M_OPTIONS,
};

struct http_header {
    struct slice name;
    struct slice value;
};

/* Bytes the router may keep between the requests of one connection (the
 * last bearer token it verified and that token's HMAC, router.c). The http
 * layer only holds them and wipes them when the connection goes away. */
#define HTTP_MEMO_MAX 96
struct http_memo {
    uint8_t data[HTTP_MEMO_MAX];
    size_t len;                  /* 0: nothing kept */
};

/** One complete request. Every slice borrows from the http_conn and is valid
 *  only during the dispatch callback. */
struct http_request {
    enum http_method method;
    struct slice target;      /* as received: path and query */
    struct slice path;        /* before '?' */
    struct slice query;       /* after '?', without it; empty if none */
    const struct http_header *headers;
    size_t n_headers;
    struct slice body;
    const char *id;           /* request id, also sent as X-Request-Id */
    bool keep_alive;
    const uint8_t *peer;      /* client address, 16 bytes (IPv4 mapped) */
    struct http_memo *memo;   /* the connection's, lives as long as it */
};

struct http_response;

/**
 * Work a handler cannot do on the event loop (argon2id hashing): `work` runs
 * on the thread pool and must touch nothing but the job; `done` runs back on
 * the loop and writes the response. The job owns itself: `done` frees it.
 */
struct http_job {
    void (*work)(struct http_job *job);
    void (*done)(struct http_job *job, struct http_response *res);
    /* Set by the router for a request that changes data: `done` is then its
     * wrapper, which calls this one inside the audit guard (router.c). */
    void (*guarded_done)(struct http_job *job, struct http_response *res);
    void *guard;
    /* Set before `done` runs when `work` never ran (the connection went
     * first): `done` must only release the job, answering and changing
     * nothing, as its results were never computed. */
    bool cancelled;
    /* Set by the guard before `done` runs when its transaction could not
     * begin: `done` must then change nothing and answer itself (a 503,
     * route_refuse_busy()), unless its work already made the change. */
    bool refused;
};

/** A response being built by a handler. */
struct http_response {
    int status;
    const char *content_type; /* NULL: application/json; charset=utf-8 */
    struct buf body;
    struct buf headers;       /* extra "Name: value\r\n" lines */
    const char *request_id;
    bool close;               /* close the connection after sending */
    const struct http_out_budget *budget;   /* from the limits; NULL: none */
    struct http_job *job;     /* set by a handler that answers later */
};

/** One bad input, for a 400 with an "errors" array. */
struct http_field_error {
    const char *field;
    const char *why;
};

/** Whether res's body may be queued now: small bodies always; a large one
 *  (HTTP_BIG_BODY or more) only while the budget holds room for it. A
 *  handler with a large answer asks before it records success. */
bool http_response_fits(const struct http_response *res);
/** Replaces res with a 503 problem saying `detail`, with Retry-After
 *  (seconds, as text): every "try again later" answer goes through here. */
void http_unavailable(struct http_response *res, const char *detail, const char *retry_after);
/** Replaces res with a 503 "busy sending" answer (Retry-After). */
void http_refuse_busy(struct http_response *res);

/** Find a header by case-insensitive name; NULL if absent. */
const struct http_header *http_find_header(const struct http_request *req, const char *name);
/** How many fields of that name (case-insensitive) the request carries. */
size_t http_count_headers(const struct http_request *req, const char *name);
/** Add one response header line; name and value must be trusted text. */
int http_add_header(struct http_response *res, const char *name, const char *value);
/**
 * Make `res` an RFC 9457 problem response: status, a fixed title, `detail`
 * (a sentence about the request, never about the server) and, when not
 * NULL, the offending `field`. Replaces any body already written.
 */
void http_problem(struct http_response *res, int status, const char *field, const char *detail);
/** Drop whatever a handler put in `res` (status, body, extra headers), so
 *  another answer can replace it. */
void http_response_clear(struct http_response *res);
/** A 400 problem listing every bad field ("errors": [{"field","detail"}]). */
void http_problem_fields(struct http_response *res, const struct http_field_error *errs, size_t n);
/** Set a JSON body (copied). */
int http_set_json(struct http_response *res, int status, const char *json, size_t len);

typedef void (*http_dispatch_cb)(void *arg, const struct http_request *req, struct http_response *res);

struct http_conn;

/** A parser for one connection; `limits` must outlive it. NULL on ENOMEM. */
struct http_conn *http_conn_new(const struct http_limits *limits, http_dispatch_cb dispatch, void *arg);
void http_conn_free(struct http_conn *h);

/**
 * Parse `n` plaintext bytes. Each complete request is dispatched at once and
 * its response appended to the output. After a framing or limit error the
 * error response is queued, the connection is marked to close, and no later
 * byte is ever parsed. Returns 0, or ERR_NOMEM.
 */
int http_conn_feed(struct http_conn *h, const uint8_t *p, size_t n);
/** The job a handler deferred, once: NULL when none is waiting to start. */
struct http_job *http_conn_take_job(struct http_conn *h);
/** True while a deferred job's response is outstanding: feed nothing more. */
bool http_conn_waiting(const struct http_conn *h);
/**
 * After the job's work ran: call its done(), queue the response, and parse
 * the bytes that arrived behind the request. 0 or ERR_NOMEM.
 */
int http_conn_job_done(struct http_conn *h);
/**
 * A job taken with http_conn_take_job() that is not to run (the server is
 * too busy): it is released as one whose work never ran, a 503 problem
 * saying `detail` with Retry-After `retry_after` answers its request, and
 * the bytes behind it are parsed (which may defer again). 0 or ERR_NOMEM.
 */
int http_conn_refuse_job(struct http_conn *h, const char *detail, const char *retry_after);
/** True while input that arrived behind a deferred request is held for
 *  after its answer. */
bool http_conn_holds_input(const struct http_conn *h);
/** Plaintext response bytes waiting to be encrypted. They count against
 *  the output budget until the caller hands them on with
 *  http_conn_output_sent() or http_conn_take_output(); the caller never
 *  empties the buffer itself. */
struct buf *http_conn_output(struct http_conn *h);
/** Every byte of http_conn_output() was handed on (encrypted, or given to
 *  the socket): empty it, keeping its memory for the next answers, and
 *  take its bytes off the output budget. */
void http_conn_output_sent(struct http_conn *h);
/** Move the output's bytes into `into` (which need not be initialised;
 *  the caller then owns and frees them), leave the output empty, and take
 *  them off the output budget. */
void http_conn_take_output(struct http_conn *h, struct buf *into);
/** True once the connection must close after its output is sent. */
bool http_conn_should_close(const struct http_conn *h);
/** True while part of a request has been received but not answered. */
bool http_conn_in_request(const struct http_conn *h);
/** A job taken with http_conn_take_job() that could not be started: it is
 *  released as one whose work never ran (done() sees `cancelled`), and the
 *  connection must then be closed. */
void http_conn_cancel_job(struct http_conn *h);

/** The connection is closing while a job runs: input held behind it is
 *  wiped, and nothing more is parsed (requests of a gone client must not
 *  run). The job's own answer is still made by http_conn_job_done(). */
void http_conn_discard_input(struct http_conn *h);

/** Where the connection is in the request cycle, for the server's timers. */
enum http_phase {
    HTTP_PHASE_IDLE,      /* between requests */
    HTTP_PHASE_HEADERS,   /* a request started; its header block is not complete */
    HTTP_PHASE_BODY,      /* headers done; the body is still arriving */
    HTTP_PHASE_WAITING,   /* a deferred job is computing the response */
};
enum http_phase http_conn_phase(const struct http_conn *h);
/** Requests begun on this connection (to notice a new one starting). */
uint64_t http_conn_requests(const struct http_conn *h);
/** A header or body deadline passed: queue 408 and close after it. */
void http_conn_timed_out(struct http_conn *h);
/** Between requests, with nothing buffered: free the request state and
 *  buffers, so an idle connection holds almost nothing. No-op otherwise. */
void http_conn_trim(struct http_conn *h);
/** The status (400, 408, 413, 414, 431) with which the edge refused a
 *  request on this connection before any handler saw it, or 0. */
int http_conn_rejected(const struct http_conn *h);
/** The client's address (16 bytes, IPv4 mapped into IPv6) for limits and audit. */
void http_conn_set_peer(struct http_conn *h, const uint8_t addr[16]);
/** Plain-HTTP mode for the redirect listener: no HSTS header (it is only
 *  meaningful over HTTPS). */
void http_conn_set_plain(struct http_conn *h);
/** Answer every later request with Connection: close (server draining). */
void http_conn_set_draining(struct http_conn *h);

/** The linked llhttp version, e.g. "9.2.1". */
const char *http_parser_version(void);

#endif
