/*
 * rawtls.h - raw bytes to and from notesd, over TLS (libcurl CONNECT_ONLY:
 * curl does the handshake and certificate check, then curl_easy_send/recv
 * carry exactly the bytes a test writes) or over plain TCP (the redirect
 * listener, and clients that never start a handshake).
 *
 * Every call that waits takes a bound in milliseconds and waits with poll()
 * on the connection's socket; nothing here sleeps. A connection that the
 * server ends is reported as RAW_CLOSED (orderly: close_notify or FIN) or
 * RAW_RESET (a reset, or a TLS error such as EOF without close_notify), so a
 * test can tell "closed" from "still open after the bound" (RAW_TIMEOUT).
 *
 * The response parser reads what notesd writes: a status line, header
 * fields, and a body framed by Content-Length (absent means no body).
 */
#ifndef NOTESD_TEST_RAWTLS_H
#define NOTESD_TEST_RAWTLS_H

#include <stdbool.h>
#include <stddef.h>
#include <curl/curl.h>

enum raw_io {
    RAW_OK = 0,      /* the operation completed */
    RAW_CLOSED,      /* the peer closed in order (TLS close_notify / EOF, TCP FIN) */
    RAW_RESET,       /* the connection failed: reset, or a TLS-level error */
    RAW_TIMEOUT,     /* the bound passed with the connection still open */
};

const char *raw_io_name(enum raw_io r);

struct rawconn {
    CURL *curl;                 /* NULL for plain TCP */
    struct curl_slist *resolve;
    int fd;
    char err[CURL_ERROR_SIZE];  /* why a TLS connect failed */
};

/** Monotonic milliseconds. */
long raw_now_ms(void);

/** TLS to https://localhost:port (resolved to 127.0.0.1), verified against
 *  `cafile`, handshake bounded by `timeout_ms`. `share` may be NULL.
 *  Returns the CURLcode (CURLE_OK: c is connected; otherwise c is unusable
 *  and c->err says why; raw_close is still safe). */
CURLcode raw_tls_connect(struct rawconn *c, int port, const char *cafile, CURLSH *share, long timeout_ms);
/** Plain TCP to 127.0.0.1:port (non-blocking afterwards). 0 or -1. */
int raw_tcp_connect(struct rawconn *c, int port);
/** Close (for TLS, curl sends close_notify when it can). Safe twice. */
void raw_close(struct rawconn *c);

/** Send all `n` bytes within `timeout_ms`; *sent (may be NULL) says how many
 *  went. RAW_OK when all went. */
enum raw_io raw_send(struct rawconn *c, const void *p, size_t n, long timeout_ms, size_t *sent);
static inline enum raw_io raw_send_str(struct rawconn *c, const char *s, long timeout_ms)
{
    size_t n = 0;
    while (s[n])
        n++;
    return raw_send(c, s, n, timeout_ms, NULL);
}
/** Wait up to `timeout_ms` for some bytes; RAW_OK with *got > 0 when some
 *  arrived. timeout_ms 0 only looks. */
enum raw_io raw_recv(struct rawconn *c, void *buf, size_t cap, size_t *got, long timeout_ms);

/** A growable byte buffer, always NUL-terminated. */
struct rawbuf {
    char *p;
    size_t len, cap;
};
void rawbuf_append(struct rawbuf *b, const void *p, size_t n);
void rawbuf_free(struct rawbuf *b);

/** Append everything that arrives to `out` until the server ends the
 *  connection (RAW_CLOSED / RAW_RESET) or `timeout_ms` passes (RAW_TIMEOUT). */
enum raw_io raw_read_until_close(struct rawconn *c, struct rawbuf *out, long timeout_ms);
/** Append to `out` until it holds `n` complete responses (RAW_OK), the
 *  connection ends, or the bound passes. */
enum raw_io raw_read_responses(struct rawconn *c, struct rawbuf *out, size_t n, long timeout_ms);

struct raw_resp {
    int status;
    char *head;          /* status line and fields, NUL-terminated, without the blank line */
    char *body;          /* NUL-terminated */
    size_t body_len;
};

/** Parse one response at p[0..len). Returns the bytes it took, 0 when
 *  incomplete, (size_t)-1 when it is not a response. r is filled (and must
 *  be freed) only when a length > 0 is returned. */
size_t raw_parse_response(const char *p, size_t len, struct raw_resp *r);
/** Count the complete responses at the start of p[0..len); *rest (may be
 *  NULL) gets the offset of what follows them; *bad is set when the bytes
 *  there are not a response at all. */
size_t raw_count_responses(const char *p, size_t len, size_t *rest, bool *bad);
/** Field value (case-insensitive name, first occurrence) or NULL; caller frees. */
char *raw_header(const struct raw_resp *r, const char *name);
void raw_resp_free(struct raw_resp *r);

/** VmRSS of a process in KiB, from /proc/<pid>/status; -1 if unreadable. */
long raw_rss_kib(int pid);

#endif
