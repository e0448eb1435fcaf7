/*
 * Shared fixture and helpers of the test_http program (test_http_*.c): a
 * dispatcher that records what it was given, a response parser, the
 * security-header and problem-body checks, and feeding raw request bytes.
 */
#ifndef NOTESD_TEST_HTTP_SUPPORT_H
#define NOTESD_TEST_HTTP_SUPPORT_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "http.h"

/* These helpers were static in one file before it was split: hidden keeps
 * them out of the executable's dynamic symbol table, where a name such as
 * login() would otherwise preempt the C library's. */
#pragma GCC visibility push(hidden)

/* The suite's fixture (TestSuite(http) in http_support.c): crypto_init(). */
void setup(void);

/* ---- a dispatcher that records what it was given --------------------------- */

#define MAX_REQS 8
#define MAX_HDRS 24
#define MAX_RESP 8

struct rec_req {
    enum http_method method;
    char target[512], path[512], query[256];
    size_t target_len;
    size_t n_headers;
    char hname[MAX_HDRS][128], hvalue[MAX_HDRS][320];
    bool header_in_head[MAX_HDRS];   /* slice lies in the same buffer as target */
    char body[512];
    size_t body_len;
    bool keep_alive;
    char id[HTTP_ID_LEN + 1];
    bool has_host;           /* http_find_header(req, "host") found it */
    char host[128];
};

struct recorder {
    bool route;          /* answer through router_dispatch after recording */
    size_t n;
    struct rec_req reqs[MAX_REQS];
};

/* ---- response parsing ------------------------------------------------------- */

struct resp {
    int status;
    char head[4096];   /* status line and header lines, each ending in CRLF */
    char body[4096];
    size_t body_len;
};

struct resps {
    size_t n;
    struct resp r[MAX_RESP];
};

/* How many times header `name` appears in r (case-insensitive). */
size_t hdr_count(const struct resp *r, const char *name);

/* The single value of `name` (asserting it appears exactly once). */
const char *hdr_one(const struct resp *r, const char *name);

/* Split the output into responses. Bit i of head_mask: response i answers a
 * HEAD request and so has no body despite its Content-Length. */
struct resps *parse_out(const struct buf *out, unsigned head_mask);

/* Every security header, and Content-Type `content_type`. */
void assert_security_headers(const struct resp *r, const char *content_type);

/* An RFC 9457 problem document with the given status (and field, if any). */
void assert_problem(const struct resp *r, int status, const char *field);

/* The response carries Connection: close. */
void assert_connection_close(const struct resp *r);

/* ---- feeding ---------------------------------------------------------------- */

/* A valid request (an array: tests take its sizeof). */
static const char GOOD[] = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";

/* Feed bytes into h, asserting http_conn_feed() accepts them. */
void feed(struct http_conn *h, const void *p, size_t n);

void feed_str(struct http_conn *h, const char *s);

/* A connection with the default limits that dispatches through the router. */
struct http_conn *router_conn(void);

/* A connection with limits `lim` that records each request into rec. */
struct http_conn *rec_conn(const struct http_limits *lim, struct recorder *rec);

/*
 * Feed `bad` (n bytes) followed by a valid request in one call. Expect exactly
 * one response: a `status` problem that closes the connection; the handler
 * never runs, and nothing fed later is answered.
 */
void expect_refused_lim(const struct http_limits *lim, const void *bad, size_t n, int status,
                        const char *field);

/* expect_refused_lim() with the default limits and a 400. */
void expect_refused(const char *bad, size_t n, const char *field);

#define REFUSED(lit) expect_refused((lit), sizeof(lit) - 1, NULL)

#pragma GCC visibility pop

#endif
