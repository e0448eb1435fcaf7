/*
 * Shared fixtures and helpers of the test_edge program (test_edge_*.c):
 * the server each test starts, raw exchanges over TLS or TCP, and the
 * checks that several groups of edge tests use.
 */
#ifndef NOTESD_TEST_EDGE_SUPPORT_H
#define NOTESD_TEST_EDGE_SUPPORT_H

#include <stdbool.h>
#include <stddef.h>

#include "harness.h"
#include "rawtls.h"

/* These helpers were static in one file before it was split: hidden keeps
 * them out of the executable's dynamic symbol table, where a name such as
 * login() would otherwise preempt the C library's. */
#pragma GCC visibility push(hidden)

/* ---- fixtures ---------------------------------------------------------- */

/* The server of the running test: prep() prepares it, start_with() starts
 * it, finish() ends it. */
extern struct server srv;
void prep(void);
void finish(void);

/* Set NAME, value pairs (NULL-terminated) and start the server. */
void start_with(const char *const *kv);

/* The server process is still running. */
bool server_alive(void);

/* Sleep `ms` milliseconds: pacing for a deliberately slow client. */

/* ---- raw exchanges ------------------------------------------------------- */

/* A valid GET /healthz request (an array: tests take its sizeof). */
static const char GOOD[] = "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n";

/* A raw TLS connection to the server (asserts it opened). */
void tls_open(struct rawconn *c);

/* Send `req` on `c` and read exactly one response into `r` (5 s bound). */
void exchange(struct rawconn *c, const char *req, size_t len, struct raw_resp *r);

/* exchange() of a NUL-terminated request; returns the status. */
int get_status(struct rawconn *c, const char *req);

/* A separate, well-behaved client: one libcurl request on a new connection. */
long healthz_status(void);

/* ---- strings ------------------------------------------------------------ */

/* A string of n copies of ch (caller frees). */
char *repeat(char ch, size_t n);

/* printf into a new string (caller frees). */

/* Printable form of request bytes for failure messages. */
char *visible(const char *p, size_t n);

/* ---- refusals, audit lines, slow connections ---------------------------- */

/*
 * The refusal contract: `bad` (n bytes) with a valid request behind it, in
 * one write over a fresh connection, is answered by exactly one `status`
 * response carrying Connection: close, and then the server closes the
 * connection (the request behind is never answered). Returns NULL when met,
 * else a description of what happened instead (caller frees).
 */
char *refusal_outcome(struct rawconn *c, const char *bad, size_t n, int status, const char *field);


/* Wait up to `ms` for what the server sends on a slow connection: a
 * receive returns as the answer or the close comes, so the cut is seen
 * when it happens, not at the next look. Returns true once the server
 * answered or closed; *end says how. */
bool wait_cut(struct rawconn *c, struct rawbuf *out, long ms, enum raw_io *end);

/* The same without waiting. */
bool peek_cut(struct rawconn *c, struct rawbuf *out, enum raw_io *end);

/* After a cut: at most one response, a 408, and then the close. */
void assert_408_or_close(struct rawconn *c, struct rawbuf *out, enum raw_io end, const char *what);

#pragma GCC visibility pop

#endif
