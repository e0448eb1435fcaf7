/*
 * Integration tests of the connection edge: the real notesd binary on a
 * loopback port, spoken to with raw bytes over TLS (rawtls.c: libcurl does
 * the handshake, then carries exactly the bytes a test writes) or plain TCP.
 *
 * Covered (one file each): HTTP framing and persistence, size limits, slow
 * clients and connection caps, backpressure, TLS sessions and
 * renegotiation, and the plain-HTTP redirect listener.
 *
 * Every wait is bounded. Sleeps only pace a deliberately slow client.
 *
 * This file holds what the test_edge_*.c files share (edge_support.h).
 */
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "edge_support.h"

struct server srv;

void prep(void)
{
    signal(SIGPIPE, SIG_IGN);   /* a write to a connection the server closed */
    curl_global_init(CURL_GLOBAL_DEFAULT);
    harness_prepare(&srv);
}

void finish(void)
{
    harness_cleanup(&srv);
}

void start_with(const char *const *kv)
{
    for (size_t i = 0; kv && kv[i]; i += 2)
        harness_setenv(&srv, kv[i], kv[i + 1]);
    harness_start(&srv);
}

bool server_alive(void)
{
    int st;
    return srv.pid > 0 && waitpid(srv.pid, &st, WNOHANG) == 0;
}

void tls_open(struct rawconn *c)
{
    CURLcode rc = raw_tls_connect(c, srv.port, srv.cert, NULL, 5000);
    cr_assert_eq(rc, CURLE_OK, "TLS connect to notesd failed: %s (%s)", curl_easy_strerror(rc), c->err);
}

void exchange(struct rawconn *c, const char *req, size_t len, struct raw_resp *r)
{
    cr_assert_eq(raw_send(c, req, len, 5000, NULL), RAW_OK, "send failed");
    struct rawbuf in = { 0 };
    enum raw_io e = raw_read_responses(c, &in, 1, 5000);
    size_t k = raw_parse_response(in.p, in.len, r);
    cr_assert(k != 0 && k != (size_t)-1, "no response (%s); got %zu bytes:\n%s", raw_io_name(e), in.len,
              in.p);
    cr_assert_eq(k, in.len, "more than one response arrived:\n%s", in.p);
    rawbuf_free(&in);
}

int get_status(struct rawconn *c, const char *req)
{
    struct raw_resp r;
    exchange(c, req, strlen(req), &r);
    int st = r.status;
    raw_resp_free(&r);
    return st;
}

long healthz_status(void)
{
    struct response r;
    harness_request(&srv, "/healthz", NULL, &r);
    long st = r.status;
    response_free(&r);
    return st;
}

char *repeat(char ch, size_t n)
{
    char *s = malloc(n + 1);
    cr_assert_not_null(s);
    memset(s, ch, n);
    s[n] = 0;
    return s;
}

char *visible(const char *p, size_t n)
{
    size_t cap = n * 4 + 1, o = 0;
    if (n > 160)
        cap = 160 * 4 + 32;
    char *s = malloc(cap);
    cr_assert_not_null(s);
    for (size_t i = 0; i < n && i < 160; i++) {
        unsigned char ch = (unsigned char)p[i];
        if (ch == '\r')
            o += (size_t)snprintf(s + o, cap - o, "\\r");
        else if (ch == '\n')
            o += (size_t)snprintf(s + o, cap - o, "\\n");
        else if (ch < 0x20 || ch >= 0x7f)
            o += (size_t)snprintf(s + o, cap - o, "\\x%02x", ch);
        else
            s[o++] = (char)ch;
        s[o] = 0;
    }
    if (n > 160)
        snprintf(s + o, cap - o, "...(%zu bytes)", n);
    return s;
}

char *refusal_outcome(struct rawconn *c, const char *bad, size_t n, int status, const char *field)
{
    size_t total = n + sizeof(GOOD) - 1;
    char *in = malloc(total);
    cr_assert_not_null(in);
    memcpy(in, bad, n);
    memcpy(in + n, GOOD, sizeof(GOOD) - 1);
    size_t sent = 0;
    enum raw_io s = raw_send(c, in, total, 5000, &sent);
    free(in);

    struct rawbuf out = { 0 };
    long t0 = raw_now_ms();
    enum raw_io e = raw_read_until_close(c, &out, 5000);
    long waited = raw_now_ms() - t0;
    size_t rest = 0;
    bool malformed = false;
    size_t count = raw_count_responses(out.p, out.len, &rest, &malformed);
    struct raw_resp r = { 0 };
    char *conn = NULL;
    bool field_ok = true;
    if (count > 0) {
        raw_parse_response(out.p, out.len, &r);
        conn = raw_header(&r, "Connection");
        if (field) {
            char want[96];
            snprintf(want, sizeof(want), "\"field\":\"%s\"", field);
            field_ok = strstr(r.body, want) != NULL;
        }
    }
    char *why = NULL;
    if (count != 1 || r.status != status || rest != out.len || !conn || strcmp(conn, "close") != 0 ||
        !field_ok || e == RAW_TIMEOUT) {
        why = harness_fmt("want one %d + Connection: close + server close; got %zu response(s)%s%s, first status %d, "
                  "Connection: %s%s, connection %s after %ld ms (send: %s, %zu bytes)%s%.300s",
                  status, count, malformed ? " then non-HTTP bytes" : "",
                  rest != out.len && !malformed ? " then a partial one" : "", count ? r.status : 0,
                  conn ? conn : "(none)", field_ok ? "" : ", wrong/missing problem field", raw_io_name(e), waited,
                  raw_io_name(s), sent, out.len ? "; received:\n" : "", out.len ? out.p : "");
    }
    free(conn);
    if (count > 0)
        raw_resp_free(&r);
    rawbuf_free(&out);
    return why;
}


/* ---- how a slow connection ends ---------------------------------------------- */

bool wait_cut(struct rawconn *c, struct rawbuf *out, long ms, enum raw_io *end)
{
    char tmp[4096];
    long until = raw_now_ms() + ms;
    for (;;) {
        size_t got = 0;
        long left = until - raw_now_ms();
        enum raw_io r = raw_recv(c, tmp, sizeof(tmp), &got, left > 0 ? left : 0);
        if (r == RAW_OK) {
            rawbuf_append(out, tmp, got);
            continue;
        }
        if (r != RAW_TIMEOUT) {
            *end = r;
            return true;
        }
        return raw_count_responses(out->p ? out->p : "", out->len, NULL, NULL) > 0;
    }
}

bool peek_cut(struct rawconn *c, struct rawbuf *out, enum raw_io *end)
{
    return wait_cut(c, out, 0, end);
}

void assert_408_or_close(struct rawconn *c, struct rawbuf *out, enum raw_io end, const char *what)
{
    if (end == RAW_TIMEOUT || end == RAW_OK)
        end = raw_read_until_close(c, out, 3000);
    cr_assert_neq(end, RAW_TIMEOUT, "%s: the connection stayed open after the answer", what);
    size_t rest = 0;
    size_t n = raw_count_responses(out->p ? out->p : "", out->len, &rest, NULL);
    cr_assert_leq(n, 1, "%s: more than one response:\n%s", what, out->p);
    if (n == 1) {
        struct raw_resp r;
        raw_parse_response(out->p, out->len, &r);
        cr_assert_eq(r.status, 408, "%s: want 408, got %d:\n%s\n%s", what, r.status, r.head, r.body);
        char *conn = raw_header(&r, "Connection");
        cr_assert(conn && strcmp(conn, "close") == 0, "%s: 408 without Connection: close:\n%s", what, r.head);
        free(conn);
        raw_resp_free(&r);
    }
    cr_assert_eq(rest, out->len, "%s: bytes that are not a response:\n%s", what, out->p);
}
