/*
 * Integration tests of the connection edge: the real notesd binary on a
 * loopback port, spoken to with raw bytes over TLS (rawtls.c: libcurl does
 * the handshake, then carries exactly the bytes a test writes) or plain TCP.
 *
 * Covered: the framing refusals of tests/test_http.c and the llhttp CVE
 * patterns, now through TLS and the event loop (one 400, then close, and a
 * request behind the bad one is never answered); every size limit at its
 * edge, before authentication; slow clients (header trickle, body stall and
 * trickle, idle keep-alive, silent or partial handshake); the global and
 * per-address connection caps; pipelining and persistence; backpressure
 * against a client that does not read; TLS session resumption; TLS 1.2
 * renegotiation attempts (refused: alert, close); and the plain-HTTP
 * redirect listener.
 *
 * Every wait is bounded. Sleeps only pace a deliberately slow client.
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>

#include "harness.h"
#include "rawtls.h"
#include "tls12client.h"

static struct server srv;

static void prep(void)
{
    signal(SIGPIPE, SIG_IGN);   /* a write to a connection the server closed */
    curl_global_init(CURL_GLOBAL_DEFAULT);
    harness_prepare(&srv);
}

static void finish(void)
{
    harness_cleanup(&srv);
}

/* Set NAME, value pairs (NULL-terminated) and start the server. */
static void start_with(const char *const *kv)
{
    for (size_t i = 0; kv && kv[i]; i += 2)
        harness_setenv(&srv, kv[i], kv[i + 1]);
    harness_start(&srv);
}

static bool server_alive(void)
{
    int st;
    return srv.pid > 0 && waitpid(srv.pid, &st, WNOHANG) == 0;
}

static void pace_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

static const char GOOD[] = "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n";

static void tls_open(struct rawconn *c)
{
    CURLcode rc = raw_tls_connect(c, srv.port, srv.cert, NULL, 5000);
    cr_assert_eq(rc, CURLE_OK, "TLS connect to notesd failed: %s (%s)", curl_easy_strerror(rc), c->err);
}

/* Send `req` on `c` and read exactly one response into `r` (5 s bound). */
static void exchange(struct rawconn *c, const char *req, size_t len, struct raw_resp *r)
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

static int get_status(struct rawconn *c, const char *req)
{
    struct raw_resp r;
    exchange(c, req, strlen(req), &r);
    int st = r.status;
    raw_resp_free(&r);
    return st;
}

/* A separate, well-behaved client: one libcurl request on a new connection. */
static long healthz_status(void)
{
    struct response r;
    harness_request(&srv, "/healthz", NULL, &r);
    long st = r.status;
    response_free(&r);
    return st;
}

static char *repeat(char ch, size_t n)
{
    char *s = malloc(n + 1);
    cr_assert_not_null(s);
    memset(s, ch, n);
    s[n] = 0;
    return s;
}

__attribute__((format(printf, 1, 2))) static char *fmt(const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    int n = vsnprintf(NULL, 0, f, ap);
    va_end(ap);
    cr_assert_geq(n, 0);
    char *s = malloc((size_t)n + 1);
    cr_assert_not_null(s);
    va_start(ap, f);
    vsnprintf(s, (size_t)n + 1, f, ap);
    va_end(ap);
    return s;
}

/* Printable form of request bytes for failure messages. */
static char *visible(const char *p, size_t n)
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

/*
 * The refusal contract: `bad` (n bytes) with a valid request behind it, in
 * one write over a fresh connection, is answered by exactly one `status`
 * response carrying Connection: close, and then the server closes the
 * connection (the request behind is never answered). Returns NULL when met,
 * else a description of what happened instead (caller frees).
 */
static char *refusal_outcome(struct rawconn *c, const char *bad, size_t n, int status, const char *field)
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
        why = fmt("want one %d + Connection: close + server close; got %zu response(s)%s%s, first status %d, "
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

/* ---- 1. framing corpus over TLS ------------------------------------------------ */

struct framing_case {
    const char *name;
    const char *req;
    size_t len;
    const char *field;   /* the problem's "field", when the server names one */
};

#define CASE(name, lit) { name, lit, sizeof(lit) - 1, NULL }
#define CASE_F(name, lit, f) { name, lit, sizeof(lit) - 1, f }

static const struct framing_case framing_cases[] = {
    /* Transfer-Encoding and Content-Length (RFC 9112 §6.1, §6.3) */
    CASE("CL + TE", "POST /v1/notes HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n"
                    "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
    CASE("TE + CL", "POST /v1/notes HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n"
                    "Content-Length: 5\r\n\r\n0\r\n\r\n"),
    CASE("TE gzip, chunked", "POST /v1/notes HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
                             "0\r\n\r\n"),
    CASE("TE chunked, gzip", "POST /v1/notes HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"
                             "0\r\n\r\n"),
    CASE("TE identity", "POST /v1/notes HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: identity\r\n\r\n"),
    CASE("TE chunkedchunked (CVE-2022-32213)",
         "POST /v1/notes HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunkedchunked\r\n\r\n0\r\n\r\n"),
    CASE("TE twice", "POST /v1/notes HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n"
                     "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
    CASE("TE multi-line (CVE-2022-32215)",
         "POST /v1/notes HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n , identity\r\n\r\n"
         "0\r\n\r\n"),
    CASE("TE in HTTP/1.0", "POST /v1/notes HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
    /* Content-Length forms */
    CASE("CL +5", "POST /v1/notes HTTP/1.1\r\nHost: localhost\r\nContent-Length: +5\r\n\r\nhello"),
    CASE("CL 0x10", "POST /v1/notes HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0x10\r\n\r\n0123456789abcdef"),
    CASE("CL '1 0'", "POST /v1/notes HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1 0\r\n\r\n0123456789"),
    CASE("CL -1", "POST /v1/notes HTTP/1.1\r\nHost: localhost\r\nContent-Length: -1\r\n\r\n"),
    CASE("CL overflowing u64",
         "POST /v1/notes HTTP/1.1\r\nHost: localhost\r\nContent-Length: 18446744073709551616\r\n\r\n"),
    CASE("two differing CLs", "POST /v1/notes HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n"
                              "Content-Length: 6\r\n\r\nhello!"),
    CASE("CL list '5, 6'", "POST /v1/notes HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5, 6\r\n\r\nhello!"),
    /* Field syntax (RFC 9112 §2.2, §5.1, §5.2; RFC 9110 §5.5) */
    CASE("space before colon", "GET /healthz HTTP/1.1\r\nHost : localhost\r\n\r\n"),
    CASE("obs-fold", "GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-A: one\r\n two\r\n\r\n"),
    CASE("obs-fold before CL (CVE-2024-27982)",
         "POST /v1/notes HTTP/1.1\r\nHost: localhost\r\nX-A: b\r\n Content-Length: 5\r\n\r\nhello"),
    CASE("whitespace line before first field",
         "GET /healthz HTTP/1.1\r\n Host: localhost\r\nHost: localhost\r\n\r\n"),
    CASE("bare LF line endings", "GET /healthz HTTP/1.1\nHost: localhost\n\n"),
    CASE("bare LF ends a field (CVE-2022-32214)",
         "POST /v1/notes HTTP/1.1\r\nHost: localhost\r\nDummy: x\nContent-Length: 5\r\n\r\nhello"),
    CASE("empty value ended by LF (CVE-2022-35256)",
         "POST /v1/notes HTTP/1.1\r\nHost: localhost\r\nx:\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
    CASE("bare LF ends the header block", "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\n"),
    CASE("bare CR in request line", "GET /healthz HTTP/1.1\rHost: localhost\r\n\r\n"),
    CASE("bare CR in a value (CVE-2023-30589)",
         "POST /v1/notes HTTP/1.1\r\nHost: localhost\r\nX-Abc: \rxTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
    CASE("NUL in a value", "GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-A: a\0b\r\n\r\n"),
    CASE("space inside a name", "GET /healthz HTTP/1.1\r\nHost: localhost\r\nX A: v\r\n\r\n"),
    CASE("control byte in a name", "GET /healthz HTTP/1.1\r\nHost: localhost\r\nX\001A: v\r\n\r\n"),
    CASE("header block ended by \\r\\n\\rX (CVE-2025-23167)",
         "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\rX"),
    /* Request line (RFC 9112 §3) */
    CASE("HTTP/0.9 request", "GET /\r\n"),
    CASE("HTTP/0.9 request ended by bare LF (llhttp #877)", "GET /healthz\n"),
    CASE("HTTP/2.0", "GET /healthz HTTP/2.0\r\nHost: localhost\r\n\r\n"),
    CASE("HTTP/1.2", "GET /healthz HTTP/1.2\r\nHost: localhost\r\n\r\n"),
    CASE("absolute-form", "GET https://localhost/healthz HTTP/1.1\r\nHost: localhost\r\n\r\n"),
    CASE("authority-form CONNECT", "CONNECT localhost:443 HTTP/1.1\r\nHost: localhost:443\r\n\r\n"),
    CASE("'*' with GET", "GET * HTTP/1.1\r\nHost: localhost\r\n\r\n"),
    CASE("invalid method token", "G(T /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n"),
    /* Host (RFC 9112 §3.2) */
    CASE_F("no Host in HTTP/1.1", "GET /healthz HTTP/1.1\r\n\r\n", "Host"),
    CASE_F("two Hosts", "GET /healthz HTTP/1.1\r\nHost: localhost\r\nHost: localhost\r\n\r\n", "Host"),
    CASE_F("Host with a space", "GET /healthz HTTP/1.1\r\nHost: a b\r\n\r\n", "Host"),
    CASE_F("Host with userinfo", "GET /healthz HTTP/1.1\r\nHost: user@localhost\r\n\r\n", "Host"),
    CASE_F("Host port above 65535", "GET /healthz HTTP/1.1\r\nHost: localhost:65536\r\n\r\n", "Host"),
    CASE_F("Host with an unclosed bracket", "GET /healthz HTTP/1.1\r\nHost: [::1\r\n\r\n", "Host"),
    CASE_F("empty Host", "GET /healthz HTTP/1.1\r\nHost:\r\n\r\n", "Host"),
    /* Chunked framing (RFC 9112 §7.1) */
    CASE("non-hex chunk size", "POST /v1/notes HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
                               "zz\r\nhello\r\n0\r\n\r\n"),
    CASE("chunk-size overflow", "POST /v1/notes HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
                                "ffffffffffffffffff\r\nhello\r\n0\r\n\r\n"),
    CASE("no CRLF after chunk data", "POST /v1/notes HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
                                     "5\r\nhelloXX0\r\n\r\n"),
};

/* CVE-2024-22019: a chunk extension far beyond every header limit must be
 * refused, not streamed through without bound. */
static char *long_chunk_extension(size_t *len)
{
    char *ext = repeat('a', 64 * 1024);
    char *req = fmt("POST /v1/notes HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                    "Transfer-Encoding: chunked\r\n\r\n2;ext=%s\r\n{}\r\n0\r\n\r\n", ext);
    free(ext);
    *len = strlen(req);
    return req;
}

Test(edge, framing_corpus_over_tls_each_gets_one_400_then_close, .init = prep, .fini = finish, .timeout = 300)
{
    start_with(NULL);
    size_t n_static = sizeof(framing_cases) / sizeof(framing_cases[0]);
    size_t n_cases = n_static + 1;
    cr_assert_geq(n_cases, 25);
    struct rawbuf fails = { 0 };
    size_t n_failed = 0;
    for (size_t i = 0; i < n_cases; i++) {
        struct framing_case dyn = { "overlong chunk extension (CVE-2024-22019)", NULL, 0, NULL };
        char *owned = NULL;
        if (i == n_static) {
            owned = long_chunk_extension(&dyn.len);
            dyn.req = owned;
        }
        const struct framing_case *fc = i < n_static ? &framing_cases[i] : &dyn;
        struct rawconn c;
        tls_open(&c);
        char *why = refusal_outcome(&c, fc->req, fc->len, 400, fc->field);
        raw_close(&c);
        if (why) {
            char *shown = visible(fc->req, fc->len);
            char *line = fmt("\n[%s] input \"%s\": %s\n", fc->name, shown, why);
            rawbuf_append(&fails, line, strlen(line));
            free(line);
            free(shown);
            free(why);
            n_failed++;
        }
        free(owned);
        cr_assert(server_alive(), "notesd died on case [%s]", fc->name);
    }
    cr_assert_eq(healthz_status(), 200, "the server stopped answering after the corpus");
    cr_expect_eq(n_failed, 0, "%zu of %zu framing cases broke the contract:%s", n_failed, n_cases,
                 fails.p ? fails.p : "");
    rawbuf_free(&fails);
}

Test(edge, refusal_after_a_good_request_keeps_the_first_answer, .init = prep, .fini = finish)
{
    start_with(NULL);
    struct rawconn c;
    tls_open(&c);
    static const char in[] = "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n"
                             "GET /healthz HTTP/1.1\r\nHost : localhost\r\n\r\n"
                             "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n";
    cr_assert_eq(raw_send(&c, in, sizeof(in) - 1, 5000, NULL), RAW_OK);
    struct rawbuf out = { 0 };
    enum raw_io e = raw_read_until_close(&c, &out, 5000);
    cr_assert_neq(e, RAW_TIMEOUT, "the connection stayed open after a refusal");
    size_t rest = 0;
    cr_assert_eq(raw_count_responses(out.p, out.len, &rest, NULL), 2, "got:\n%s", out.p);
    cr_assert_eq(rest, out.len);
    struct raw_resp a, b;
    size_t k = raw_parse_response(out.p, out.len, &a);
    raw_parse_response(out.p + k, out.len - k, &b);
    cr_assert_eq(a.status, 200);
    cr_assert_eq(b.status, 400);
    raw_resp_free(&a);
    raw_resp_free(&b);
    rawbuf_free(&out);
    raw_close(&c);
}

/* Lines of the audit log naming `event` and holding `also` (a literal
 * piece of the line; "" for any), and the sum of their counts ("count":N,
 * 1 when absent). */
static size_t audit_lines_with(const char *event, const char *also, unsigned long long *sum)
{
    char *path = fmt("%s/audit.log", harness_getenv(&srv, "NOTES_AUDIT_DIR"));
    size_t len = 0;
    char *log = harness_read_file(path, &len);
    free(path);
    cr_assert_not_null(log, "no audit log");
    char *want_ev = fmt("\"event\":\"%s\"", event);
    size_t n = 0;
    *sum = 0;
    for (char *line = log, *nl; line && *line; line = nl ? nl + 1 : NULL) {
        nl = strchr(line, '\n');
        if (nl)
            *nl = 0;
        if (!strstr(line, want_ev) || !strstr(line, also))
            continue;
        n++;
        const char *c = strstr(line, "\"count\":");
        *sum += c ? strtoull(c + 8, NULL, 10) : 1;
    }
    free(want_ev);
    free(log);
    return n;
}

/* Those naming `event` and `status` ("status":N; 0 for any). */
static size_t audit_lines(const char *event, int status, unsigned long long *sum)
{
    char *want_st = status ? fmt("\"status\":%d,", status) : fmt("%s", "");
    size_t n = audit_lines_with(event, want_st, sum);
    free(want_st);
    return n;
}

Test(edge, refusals_are_audited_summed_up_not_one_line_each, .init = prep, .fini = finish)
{
    start_with(NULL);
    static const char bad[] = "GET /healthz HTTP/1.1\r\nHost : localhost\r\nX-Canary: zqx-framing-canary\r\n\r\n";
    for (int i = 0; i < 5; i++) {
        struct rawconn c;
        tls_open(&c);
        cr_assert_eq(get_status(&c, bad), 400);
        raw_close(&c);
    }
    for (int i = 0; i < 3; i++) {   /* not TLS at all: the handshake fails */
        struct rawconn c;
        cr_assert_eq(raw_tcp_connect(&c, srv.port), 0);
        raw_send_str(&c, "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n", 2000);
        struct rawbuf out = { 0 };
        raw_read_until_close(&c, &out, 5000);
        rawbuf_free(&out);
        raw_close(&c);
    }
    cr_assert_eq(harness_stop(&srv), 0);
    unsigned long long sum = 0;
    cr_assert_eq(audit_lines("http.rejected", 400, &sum), 1, "one line for the whole run of 400s");
    cr_assert_eq(sum, 5);
    cr_assert_eq(audit_lines("tls.rejected", 0, &sum), 1);
    cr_assert_eq(sum, 3);
    cr_assert_eq(audit_lines("server.stop", 0, &sum), 1);
    char *path = fmt("%s/audit.log", harness_getenv(&srv, "NOTES_AUDIT_DIR"));
    size_t len = 0;
    char *log = harness_read_file(path, &len);
    cr_assert_null(strstr(log, "zqx-framing-canary"), "request bytes reached the audit log");
    cr_assert_lt(strstr(log, "http.rejected"), strstr(log, "server.stop"), "server.stop is the last word");
    free(log);
    free(path);
}

/* ---- 2. size limits at their edges, before authentication --------------------- */

static const char *const small_limits[] = {
    "NOTES_MAX_TARGET", "64",
    "NOTES_MAX_FIELD", "64",
    "NOTES_MAX_HEADERS_SIZE", "256",
    "NOTES_MAX_HEADERS", "5",
    "NOTES_MAX_BODY", "1024",
    NULL,
};

/* At the edge: answered (not with `refused`), and the connection stays usable. */
static void expect_passes(const char *what, const char *req, size_t len, int refused)
{
    struct rawconn c;
    tls_open(&c);
    struct raw_resp r;
    exchange(&c, req, len, &r);
    cr_assert_neq(r.status, refused, "%s: at the limit, yet refused with %d:\n%s\n%s", what, refused, r.head,
                  r.body);
    cr_assert_eq(r.status, 401, "%s: want the route's 401 (the limit passed), got %d:\n%s\n%s", what, r.status,
                 r.head, r.body);
    raw_resp_free(&r);
    cr_assert_eq(get_status(&c, GOOD), 200, "%s: the connection is not usable after an at-limit request", what);
    raw_close(&c);
}

static void expect_refused(const char *what, const char *req, size_t len, int status)
{
    struct rawconn c;
    tls_open(&c);
    char *why = refusal_outcome(&c, req, len, status, NULL);
    raw_close(&c);
    char *shown = visible(req, len);
    cr_assert_null(why, "%s: input \"%s\": %s", what, shown, why);
    free(shown);
}

Test(edge, target_limit_edge_414_before_auth, .init = prep, .fini = finish)
{
    start_with(small_limits);
    /* "/v1/notes/" (10) + 54 = 64 bytes: at the limit. */
    char *id = repeat('a', 54);
    char *at = fmt("GET /v1/notes/%s HTTP/1.1\r\nHost: localhost\r\n\r\n", id);
    char *over = fmt("GET /v1/notes/%sa HTTP/1.1\r\nHost: localhost\r\n\r\n", id);
    char *query = fmt("GET /v1/notes?limit=5&%s HTTP/1.1\r\nHost: localhost\r\n\r\n", id);  /* 10+8+... = 72 */
    expect_passes("target of 64 bytes", at, strlen(at), 414);
    expect_refused("target of 65 bytes", over, strlen(over), 414);
    expect_refused("target over the limit in its query", query, strlen(query), 414);
    free(at);
    free(over);
    free(query);
    free(id);

    /* Refused while it streams in: the request line never ends. */
    struct rawconn c;
    tls_open(&c);
    char *tail = repeat('a', 200);
    char *open_line = fmt("GET /v1/notes/%s", tail);
    raw_send(&c, open_line, strlen(open_line), 5000, NULL);
    struct rawbuf out = { 0 };
    enum raw_io e = raw_read_until_close(&c, &out, 5000);
    struct raw_resp r = { 0 };
    size_t k = raw_parse_response(out.p, out.len, &r);
    cr_assert(k != 0 && k != (size_t)-1, "an over-long target must be refused as it streams in (%s):\n%s",
              raw_io_name(e), out.p);
    cr_assert_eq(r.status, 414);
    cr_assert_neq(e, RAW_TIMEOUT, "still open after the 414");
    raw_resp_free(&r);
    rawbuf_free(&out);
    raw_close(&c);
    free(tail);
    free(open_line);
}

Test(edge, field_limit_edge_431_before_auth, .init = prep, .fini = finish)
{
    start_with(small_limits);
    char *v61 = repeat('v', 61), *v62 = repeat('v', 62), *n65 = repeat('N', 65);
    /* name + value: "X-A" (3) + 61 = 64. */
    char *at = fmt("GET /v1/notes HTTP/1.1\r\nHost: localhost\r\nX-A: %s\r\n\r\n", v61);
    char *over = fmt("GET /v1/notes HTTP/1.1\r\nHost: localhost\r\nX-A: %s\r\n\r\n", v62);
    char *name = fmt("GET /v1/notes HTTP/1.1\r\nHost: localhost\r\n%s: v\r\n\r\n", n65);
    expect_passes("field of 64 bytes", at, strlen(at), 431);
    expect_refused("field of 65 bytes", over, strlen(over), 431);
    expect_refused("field name of 65 bytes", name, strlen(name), 431);
    free(v61);
    free(v62);
    free(n65);
    free(at);
    free(over);
    free(name);
}

/* Whitespace before a value is not part of it, but it is bytes of the field
 * and of the header block that the client made the server read. */
Test(edge, field_and_block_limits_count_leading_whitespace, .init = prep, .fini = finish)
{
    start_with(small_limits);
    char *ws = repeat(' ', 4096);
    char *req = fmt("GET /v1/notes HTTP/1.1\r\nHost: localhost\r\nX-A:%sv\r\n\r\n", ws);
    expect_refused("a field of 4 KiB (all but one byte leading whitespace) under 64/256-byte limits", req,
                   strlen(req), 431);
    free(ws);
    free(req);
}

/* Host: localhost (4+9) + 3 x 64 + (3 + 48) = 256 bytes of names and values in 5 fields. */
static char *block_request(size_t last_value_len)
{
    char *v61 = repeat('v', 61), *last = repeat('w', last_value_len);
    char *req = fmt("GET /v1/notes HTTP/1.1\r\nHost: localhost\r\nX-A: %s\r\nX-B: %s\r\nX-C: %s\r\nX-D: %s\r\n\r\n",
                    v61, v61, v61, last);
    free(v61);
    free(last);
    return req;
}

Test(edge, header_block_limit_edge_431_before_auth, .init = prep, .fini = finish)
{
    start_with(small_limits);
    char *at = block_request(48), *over = block_request(49);
    expect_passes("header block of 256 bytes", at, strlen(at), 431);
    expect_refused("header block of 257 bytes (each field <= 64, 5 fields)", over, strlen(over), 431);
    free(at);
    free(over);
}

Test(edge, field_count_limit_edge_431_before_auth, .init = prep, .fini = finish)
{
    start_with(small_limits);
    static const char at[] = "GET /v1/notes HTTP/1.1\r\nHost: localhost\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n";
    static const char over[] = "GET /v1/notes HTTP/1.1\r\nHost: localhost\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5\r\n\r\n";
    expect_passes("5 fields", at, sizeof(at) - 1, 431);
    expect_refused("6 fields", over, sizeof(over) - 1, 431);
}

Test(edge, body_limit_by_content_length_413_before_the_body_is_sent, .init = prep, .fini = finish)
{
    start_with(small_limits);
    char *body = repeat('b', 1024);
    char *at = fmt("POST /v1/notes HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                   "Content-Length: 1024\r\n\r\n%s", body);
    expect_passes("Content-Length body of 1024 bytes", at, strlen(at), 413);

    /* Only the header block goes out: the 413 must not wait for the body. */
    struct rawconn c;
    tls_open(&c);
    static const char head[] = "POST /v1/notes HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                               "Content-Length: 1025\r\n\r\n";
    cr_assert_eq(raw_send(&c, head, sizeof(head) - 1, 5000, NULL), RAW_OK);
    struct rawbuf out = { 0 };
    enum raw_io e = raw_read_responses(&c, &out, 1, 3000);
    struct raw_resp r = { 0 };
    size_t k = raw_parse_response(out.p, out.len, &r);
    cr_assert(k != 0 && k != (size_t)-1, "no 413 before the body was sent (%s):\n%s", raw_io_name(e), out.p);
    cr_assert_eq(r.status, 413, "got %d:\n%s\n%s", r.status, r.head, r.body);
    char *conn = raw_header(&r, "Connection");
    cr_assert(conn && strcmp(conn, "close") == 0, "413 without Connection: close:\n%s", r.head);
    free(conn);
    raw_resp_free(&r);
    /* The body sent now is never parsed as requests, nor is what follows. */
    raw_send(&c, body, 1024, 2000, NULL);
    raw_send(&c, GOOD, sizeof(GOOD) - 1, 2000, NULL);
    rawbuf_free(&out);
    e = raw_read_until_close(&c, &out, 5000);
    cr_assert_neq(e, RAW_TIMEOUT, "the connection stayed open after the 413");
    cr_assert_eq(raw_count_responses(out.p, out.len, NULL, NULL), 0, "answered after the 413:\n%s", out.p);
    rawbuf_free(&out);
    raw_close(&c);

    static const char huge[] = "POST /v1/notes HTTP/1.1\r\nHost: localhost\r\n"
                               "Content-Length: 18446744073709551615\r\n\r\n";
    expect_refused("Content-Length 2^64-1", huge, sizeof(huge) - 1, 413);
    free(body);
    free(at);
}

Test(edge, body_limit_by_chunked_413_before_auth, .init = prep, .fini = finish)
{
    start_with(small_limits);
    char *kib = repeat('c', 1024);
    char *at = fmt("POST /v1/notes HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                   "Transfer-Encoding: chunked\r\n\r\n200\r\n%.512s\r\n200\r\n%.512s\r\n0\r\n\r\n", kib, kib);
    char *over = fmt("POST /v1/notes HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                     "Transfer-Encoding: chunked\r\n\r\n400\r\n%s\r\n1\r\nX\r\n0\r\n\r\n", kib);
    /* One chunk announced larger than the limit: refused before its data all arrived. */
    char *big = fmt("POST /v1/notes HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                    "Transfer-Encoding: chunked\r\n\r\n100000\r\n%sc", kib);
    expect_passes("chunked body of 1024 bytes", at, strlen(at), 413);
    expect_refused("chunked body of 1025 bytes", over, strlen(over), 413);

    struct rawconn c;
    tls_open(&c);
    raw_send(&c, big, strlen(big), 5000, NULL);
    struct rawbuf out = { 0 };
    enum raw_io e = raw_read_until_close(&c, &out, 5000);
    struct raw_resp r = { 0 };
    size_t k = raw_parse_response(out.p, out.len, &r);
    cr_assert(k != 0 && k != (size_t)-1, "a 1 MiB chunk was not refused once 1025 bytes of it exceeded the 1024 limit (%s):\n%s",
              raw_io_name(e), out.p);
    cr_assert_eq(r.status, 413);
    cr_assert_neq(e, RAW_TIMEOUT);
    raw_resp_free(&r);
    rawbuf_free(&out);
    raw_close(&c);
    free(kib);
    free(at);
    free(over);
    free(big);
}

/* Trailer fields are discarded, but they are header bytes all the same. */
Test(edge, trailer_fields_count_against_the_header_block, .init = prep, .fini = finish)
{
    start_with(small_limits);
    char *v = repeat('t', 300);
    char *req = fmt("POST /v1/notes HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                    "Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\nX-T: %s\r\n\r\n", v);
    expect_refused("300-byte trailer field over a 256-byte header block", req, strlen(req), 431);
    free(v);
    free(req);
}

Test(edge, trailer_fields_count_leading_whitespace, .init = prep, .fini = finish)
{
    start_with(small_limits);
    char *ws = repeat(' ', 64 * 1024);
    char *req = fmt("POST /v1/notes HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                    "Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\nX-T:%sv\r\n\r\n", ws);
    expect_refused("a 64 KiB trailer field (all but one byte leading whitespace) over a 256-byte header block",
                   req, strlen(req), 431);
    free(ws);
    free(req);
}

/* Each limit is met on its own, so all of them met at once must pass too:
 * target 64/64, 20/20 fields, each <= 64, names and values 256/256. */
Test(edge, limits_all_at_their_edges_together_are_accepted, .init = prep, .fini = finish)
{
    start_with((const char *const[]){ "NOTES_MAX_TARGET", "64", "NOTES_MAX_FIELD", "64", "NOTES_MAX_HEADERS_SIZE",
                                      "256", "NOTES_MAX_HEADERS", "20", NULL });
    char *id = repeat('a', 54), *v61 = repeat('v', 61);
    struct rawbuf req = { 0 };
    char *line = fmt("GET /v1/notes/%s HTTP/1.1\r\nHost: localhost\r\n", id);   /* target 64; 13 */
    rawbuf_append(&req, line, strlen(line));
    free(line);
    for (int i = 0; i < 3; i++) {   /* 3 x 64 = 192 */
        line = fmt("X-%c: %s\r\n", 'A' + i, v61);
        rawbuf_append(&req, line, strlen(line));
        free(line);
    }
    for (int i = 0; i < 15; i++) {   /* 15 x 3 = 45 */
        line = fmt("Y%c: z\r\n", 'a' + i);
        rawbuf_append(&req, line, strlen(line));
        free(line);
    }
    rawbuf_append(&req, "Zz: 1234\r\n\r\n", 12);   /* 6: 13 + 192 + 45 + 6 = 256 in 20 fields */
    expect_passes("target, field count, field size and header block all exactly at their limits", req.p, req.len,
                  431);
    rawbuf_free(&req);
    free(id);
    free(v61);
}

/* ---- 3. slow clients ---------------------------------------------------------- */

/* Wait up to `ms` for what the server sends on a slow connection: a
 * receive returns as the answer or the close comes, so the cut is seen
 * when it happens, not at the next look. Returns true once the server
 * answered or closed; *end says how. */
static bool wait_cut(struct rawconn *c, struct rawbuf *out, long ms, enum raw_io *end)
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

/* The same without waiting. */
static bool peek_cut(struct rawconn *c, struct rawbuf *out, enum raw_io *end)
{
    return wait_cut(c, out, 0, end);
}

/* After a cut: at most one response, a 408, and then the close. */
static void assert_408_or_close(struct rawconn *c, struct rawbuf *out, enum raw_io end, const char *what)
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

Test(edge, slowloris_header_trickle_is_cut_while_others_are_served, .init = prep, .fini = finish)
{
    start_with((const char *const[]){ "NOTES_TIMEOUT_HEADER", "1", NULL });
    struct rawconn slow, good;
    tls_open(&slow);
    tls_open(&good);
    static const char trickle[] = "GET /healthz HTTP/1.1\r\nHost: localhost\r\n"
                                  "X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    struct rawbuf out = { 0 };
    enum raw_io end = RAW_TIMEOUT;
    long t0 = raw_now_ms(), cut_at = -1;
    int served = 0;
    for (size_t i = 0; i < sizeof(trickle) - 1 && raw_now_ms() - t0 < 6000; i++) {
        if (peek_cut(&slow, &out, &end)) {
            cut_at = raw_now_ms() - t0;
            break;
        }
        /* The header deadline runs from the first byte: the clock starts
         * before it is sent, so a stall after sending cannot make the cut
         * look early. */
        if (i == 0)
            t0 = raw_now_ms();
        if (raw_send(&slow, trickle + i, 1, 1000, NULL) != RAW_OK) {
            cut_at = raw_now_ms() - t0;
            end = RAW_RESET;
            break;
        }
        cr_assert_eq(get_status(&good, GOOD), 200, "the well-behaved client was not served at %ld ms",
                     raw_now_ms() - t0);
        served++;
        pace_ms(200);
    }
    if (cut_at < 0 && peek_cut(&slow, &out, &end))
        cut_at = raw_now_ms() - t0;
    cr_assert_geq(cut_at, 0, "a header trickled for %ld ms was never cut off (header timeout 1 s)",
                  raw_now_ms() - t0);
    cr_assert_geq(cut_at, 800, "cut off after %ld ms, before the 1 s header timeout", cut_at);
    cr_assert_leq(cut_at, 3000, "cut off only after %ld ms (header timeout 1 s)", cut_at);
    assert_408_or_close(&slow, &out, end, "header trickle");
    cr_assert_geq(served, 3, "the other client got only %d answers meanwhile", served);
    cr_assert_eq(get_status(&good, GOOD), 200, "the well-behaved client is not served after the cut");
    rawbuf_free(&out);
    raw_close(&slow);
    raw_close(&good);
}

static const char slow_body_head[] = "POST /v1/notes HTTP/1.1\r\nHost: localhost\r\n"
                                     "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n";

Test(edge, slow_body_stall_gets_408_and_close, .init = prep, .fini = finish)
{
    start_with((const char *const[]){ "NOTES_TIMEOUT_BODY_IDLE", "1", "NOTES_TIMEOUT_BODY", "2", NULL });
    struct rawconn c;
    tls_open(&c);
    char *head = fmt(slow_body_head, 10);
    long t0 = raw_now_ms();
    cr_assert_eq(raw_send(&c, head, strlen(head), 5000, NULL), RAW_OK);
    struct rawbuf out = { 0 };
    enum raw_io e = raw_read_until_close(&c, &out, 5000);
    long took = raw_now_ms() - t0;
    cr_assert_neq(e, RAW_TIMEOUT, "a stalled body was not cut off within 5 s (idle timeout 1 s)");
    cr_assert_geq(took, 800, "cut off after %ld ms, before the 1 s body idle timeout", took);
    cr_assert_leq(took, 3000, "cut off only after %ld ms (body idle timeout 1 s)", took);
    size_t rest = 0;
    cr_assert_eq(raw_count_responses(out.p, out.len, &rest, NULL), 1, "want one 408, got:\n%s", out.p);
    struct raw_resp r;
    raw_parse_response(out.p, out.len, &r);
    cr_assert_eq(r.status, 408, "got %d:\n%s\n%s", r.status, r.head, r.body);
    cr_assert_eq(rest, out.len);
    raw_resp_free(&r);
    rawbuf_free(&out);
    free(head);
    raw_close(&c);
}

/* A byte every 250 ms keeps the 1 s idle timer far off (a client stall
 * of 750 ms would still not reach it), and the cut is waited for in a
 * receive, so it is seen as it comes. The clock starts before the head,
 * and the body's deadline only after it: the cut cannot come before
 * 2000 ms, and a deadline counted twice (4 s) would come too late. */
Test(edge, slow_body_trickle_is_cut_by_the_total_deadline, .init = prep, .fini = finish)
{
    start_with((const char *const[]){ "NOTES_TIMEOUT_BODY_IDLE", "1", "NOTES_TIMEOUT_BODY", "2", NULL });
    struct rawconn c;
    tls_open(&c);
    char *head = fmt(slow_body_head, 100);
    long t0 = raw_now_ms(), cut_at = -1, last = t0, gap = 0;
    cr_assert_eq(raw_send(&c, head, strlen(head), 5000, NULL), RAW_OK);
    struct rawbuf out = { 0 };
    enum raw_io end = RAW_TIMEOUT;
    for (int i = 0; i < 100 && raw_now_ms() - t0 < 8000; i++) {
        if (wait_cut(&c, &out, 250, &end)) {
            cut_at = raw_now_ms() - t0;
            break;
        }
        long now = raw_now_ms();
        gap = now - last > gap ? now - last : gap;
        last = now;
        if (raw_send(&c, "x", 1, 1000, NULL) != RAW_OK) {
            cut_at = raw_now_ms() - t0;
            end = RAW_RESET;
            break;
        }
    }
    cr_assert_geq(cut_at, 0, "a body trickling 1 byte / 250 ms was not cut off in %ld ms (total deadline 2 s)",
                  raw_now_ms() - t0);
    cr_assert_geq(cut_at, 1800, "cut off after %ld ms: before the 2 s total deadline (the longest gap between "
                  "bytes here was %ld ms, idle timeout 1 s)", cut_at, gap);
    cr_assert_lt(cut_at, 4000, "cut off only after %ld ms (total body deadline 2 s)", cut_at);
    assert_408_or_close(&c, &out, end, "body trickle");
    rawbuf_free(&out);
    free(head);
    raw_close(&c);
}

/* ---- 4. idle keep-alive and handshake timeouts --------------------------------- */

Test(edge, idle_keepalive_connection_is_closed, .init = prep, .fini = finish)
{
    start_with((const char *const[]){ "NOTES_TIMEOUT_KEEPALIVE", "1", NULL });
    struct rawconn c;
    tls_open(&c);
    /* The idle time starts when the server has answered, before the answer
     * arrives here: the clock starts before the request, so a stall after
     * the answer cannot make the close look early. */
    long t0 = raw_now_ms();
    cr_assert_eq(get_status(&c, GOOD), 200);
    struct rawbuf out = { 0 };
    enum raw_io e = raw_read_until_close(&c, &out, 5000);
    long took = raw_now_ms() - t0;
    cr_assert_neq(e, RAW_TIMEOUT, "an idle keep-alive connection was still open after 5 s (timeout 1 s)");
    cr_assert_geq(took, 800, "closed after %ld ms, before the 1 s keep-alive timeout", took);
    cr_assert_leq(took, 3000, "closed only after %ld ms (keep-alive timeout 1 s)", took);
    cr_assert_eq(out.len, 0, "an idle close must say nothing (no 408 between requests):\n%s", out.p);
    rawbuf_free(&out);
    raw_close(&c);
}

Test(edge, keepalive_timer_restarts_with_each_request, .init = prep, .fini = finish)
{
    start_with((const char *const[]){ "NOTES_TIMEOUT_KEEPALIVE", "2", NULL });
    struct rawconn c;
    tls_open(&c);
    /* 6 requests 600 ms apart span over 3 s, more than the 2 s timeout, yet
     * no idle gap comes near it: a client stalled for up to 1.4 s between
     * two of them still gets its answer. */
    long t0 = raw_now_ms(), last = t0;
    for (int i = 0; i < 6; i++) {
        struct rawbuf out = { 0 };
        enum raw_io e = raw_send(&c, GOOD, sizeof(GOOD) - 1, 2000, NULL);
        if (e == RAW_OK)
            e = raw_read_responses(&c, &out, 1, 3000);
        size_t n = raw_count_responses(out.p ? out.p : "", out.len, NULL, NULL);
        cr_assert_eq(n, 1, "request %d, sent %ld ms after the TLS handshake and %ld ms after the previous "
                     "answer, was not answered (%s): the keep-alive timeout (2 s) is not counted from the "
                     "last response", i + 1, raw_now_ms() - t0, raw_now_ms() - last, raw_io_name(e));
        rawbuf_free(&out);
        last = raw_now_ms();
        pace_ms(600);
    }
    raw_close(&c);
}

Test(edge, silent_tcp_connection_is_closed_at_the_handshake_deadline, .init = prep, .fini = finish)
{
    start_with((const char *const[]){ "NOTES_TIMEOUT_HANDSHAKE", "1", NULL });
    struct rawconn c;
    /* The handshake deadline runs from the server's accept, which may come
     * before connect() returns here: the clock starts before it. */
    long t0 = raw_now_ms();
    cr_assert_eq(raw_tcp_connect(&c, srv.port), 0, "%s", c.err);
    struct rawbuf out = { 0 };
    enum raw_io e = raw_read_until_close(&c, &out, 5000);
    long took = raw_now_ms() - t0;
    cr_assert_neq(e, RAW_TIMEOUT, "a silent connection was still open after 5 s (handshake timeout 1 s)");
    cr_assert_geq(took, 800, "closed after %ld ms, before the 1 s handshake timeout", took);
    cr_assert_leq(took, 3000, "closed only after %ld ms (handshake timeout 1 s)", took);
    cr_assert_eq(out.len, 0);
    rawbuf_free(&out);
    raw_close(&c);
    cr_assert_eq(healthz_status(), 200);
}

Test(edge, partial_client_hello_is_closed_at_the_handshake_deadline, .init = prep, .fini = finish)
{
    start_with((const char *const[]){ "NOTES_TIMEOUT_HANDSHAKE", "1", NULL });
    struct rawconn c;
    long t0 = raw_now_ms();   /* before the connect: the deadline runs from the accept */
    cr_assert_eq(raw_tcp_connect(&c, srv.port), 0, "%s", c.err);
    /* A handshake record header announcing 512 bytes, then 4 of them. */
    static const char hello[] = "\x16\x03\x01\x02\x00\x01\x00\x01\xfc";
    cr_assert_eq(raw_send(&c, hello, sizeof(hello) - 1, 2000, NULL), RAW_OK);
    struct rawbuf out = { 0 };
    enum raw_io e = raw_read_until_close(&c, &out, 5000);
    long took = raw_now_ms() - t0;
    cr_assert_neq(e, RAW_TIMEOUT, "a stalled handshake was still open after 5 s (handshake timeout 1 s)");
    cr_assert_geq(took, 800, "closed after %ld ms, before the 1 s handshake timeout", took);
    cr_assert_leq(took, 3000, "closed only after %ld ms (handshake timeout 1 s)", took);
    rawbuf_free(&out);
    raw_close(&c);
}

/* ---- 5. connection caps -------------------------------------------------------- */

/* Let the server close `c` (Connection: close) and see the close: by then
 * the server has released the connection's place under every cap. */
static void close_by_server(struct rawconn *c)
{
    static const char req[] = "GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    cr_assert_eq(raw_send(c, req, sizeof(req) - 1, 5000, NULL), RAW_OK);
    struct rawbuf out = { 0 };
    enum raw_io e = raw_read_until_close(c, &out, 5000);
    cr_assert_neq(e, RAW_TIMEOUT, "Connection: close was not honoured");
    rawbuf_free(&out);
    raw_close(c);
}

/* `n` connections are usable, the next one is closed at once, and after one
 * of the first closes a new connection works. */
static void check_cap(size_t n)
{
    struct rawconn conns[8];
    cr_assert_leq(n, 7);
    for (size_t i = 0; i < n; i++) {
        tls_open(&conns[i]);
        cr_assert_eq(get_status(&conns[i], GOOD), 200, "connection %zu of %zu", i + 1, n);
    }
    struct rawconn extra;
    long t0 = raw_now_ms();
    CURLcode rc = raw_tls_connect(&extra, srv.port, srv.cert, NULL, 5000);
    long took = raw_now_ms() - t0;
    if (rc == CURLE_OK) {
        /* Maybe the handshake went through and the close follows. */
        struct rawbuf out = { 0 };
        raw_send(&extra, GOOD, sizeof(GOOD) - 1, 1000, NULL);
        enum raw_io e = raw_read_until_close(&extra, &out, 2000);
        cr_assert_fail("connection %zu over a cap of %zu completed its handshake; then %s with:\n%s", n + 1, n,
                       raw_io_name(e), out.p ? out.p : "");
    }
    cr_assert_lt(took, 1000, "the refused connection took %ld ms to fail: it must be closed at once", took);
    raw_close(&extra);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(get_status(&conns[i], GOOD), 200, "connection %zu disturbed by the refused one", i + 1);

    close_by_server(&conns[0]);
    tls_open(&conns[0]);
    cr_assert_eq(get_status(&conns[0], GOOD), 200, "a new connection after one closed");
    for (size_t i = 0; i < n; i++)
        raw_close(&conns[i]);
}

/* Each TLS 1.3 connection holds its traffic keys in PSA key slots for its
 * whole life: a fixed slot table would cap concurrent connections at a
 * handful, far below NOTES_MAX_CONNECTIONS. */
Test(edge, many_concurrent_tls13_connections_each_get_answers, .init = prep, .fini = finish, .timeout = 120)
{
    start_with((const char *const[]){ "NOTES_MAX_CONNECTIONS_PER_IP", "200", NULL });
    enum { N = 100 };
    static struct rawconn c[N];
    for (int i = 0; i < N; i++) {
        CURLcode rc = raw_tls_connect(&c[i], srv.port, srv.cert, NULL, 5000);
        cr_assert_eq(rc, CURLE_OK, "connection %d: %s (%s)", i, curl_easy_strerror(rc), c[i].err);
    }
    for (int i = 0; i < N; i++)
        cr_assert_eq(get_status(&c[i], GOOD), 200, "connection %d got no answer", i);
    for (int i = 0; i < N; i++)
        raw_close(&c[i]);
}

Test(edge, per_address_cap_closes_the_next_connection_at_once, .init = prep, .fini = finish)
{
    start_with((const char *const[]){ "NOTES_MAX_CONNECTIONS_PER_IP", "2", NULL });
    check_cap(2);
}

Test(edge, global_cap_closes_the_next_connection_at_once, .init = prep, .fini = finish)
{
    start_with((const char *const[]){ "NOTES_MAX_CONNECTIONS", "3", NULL });
    check_cap(3);
}

Test(edge, per_address_cap_counts_connections_still_in_handshake, .init = prep, .fini = finish)
{
    start_with((const char *const[]){ "NOTES_MAX_CONNECTIONS_PER_IP", "2", NULL });
    struct rawconn a, b;
    cr_assert_eq(raw_tcp_connect(&a, srv.port), 0);
    cr_assert_eq(raw_tcp_connect(&b, srv.port), 0);
    struct rawconn extra;
    CURLcode rc = raw_tls_connect(&extra, srv.port, srv.cert, NULL, 3000);
    cr_assert_neq(rc, CURLE_OK, "two silent TCP connections did not count against a per-address cap of 2");
    raw_close(&extra);
    raw_close(&a);
    raw_close(&b);
}

/* ---- 6. pipelining and persistence ----------------------------------------------- */

Test(edge, three_pipelined_requests_are_answered_in_order, .init = prep, .fini = finish)
{
    start_with(NULL);
    struct rawconn c;
    tls_open(&c);
    static const char in[] = "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n"
                             "GET /nope HTTP/1.1\r\nHost: localhost\r\n\r\n"
                             "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n";
    cr_assert_eq(raw_send(&c, in, sizeof(in) - 1, 5000, NULL), RAW_OK);
    struct rawbuf out = { 0 };
    raw_read_responses(&c, &out, 3, 5000);
    struct raw_resp r[3];
    size_t off = 0;
    static const int want[3] = { 200, 404, 200 };
    char *ids[3];
    for (int i = 0; i < 3; i++) {
        size_t k = raw_parse_response(out.p + off, out.len - off, &r[i]);
        cr_assert(k != 0 && k != (size_t)-1, "response %d missing; got:\n%s", i + 1, out.p);
        off += k;
        cr_assert_eq(r[i].status, want[i], "response %d: %d, want %d", i + 1, r[i].status, want[i]);
        ids[i] = raw_header(&r[i], "X-Request-Id");
        cr_assert_not_null(ids[i]);
    }
    cr_assert_eq(off, out.len, "more than three responses");
    cr_assert_str_eq(r[0].body, "{\"status\":\"ok\"}");
    cr_assert(strstr(r[1].body, "\"status\":404"), "%s", r[1].body);
    cr_assert(strcmp(ids[0], ids[1]) < 0 && strcmp(ids[1], ids[2]) < 0, "request ids out of order: %s %s %s",
              ids[0], ids[1], ids[2]);
    char want_id[64];
    snprintf(want_id, sizeof(want_id), "\"request_id\":\"%s\"", ids[1]);
    cr_assert(strstr(r[1].body, want_id), "the 404 names another request: %s", r[1].body);
    for (int i = 0; i < 3; i++) {
        raw_resp_free(&r[i]);
        free(ids[i]);
    }
    rawbuf_free(&out);
    cr_assert_eq(get_status(&c, GOOD), 200, "the connection is not kept alive after a pipeline");
    raw_close(&c);
}

/* Send `a` and then `b` (one TLS record each, b may be absent) in as few
 * TCP segments as the kernel allows (TCP_CORK), so the server reads them
 * in one turn of its loop. */
static void send_corked(struct rawconn *c, const char *a, size_t an, const char *b, size_t bn)
{
    int on = 1, off = 0;
    cr_assert_eq(setsockopt(c->fd, IPPROTO_TCP, TCP_CORK, &on, sizeof(on)), 0);
    cr_assert_eq(raw_send(c, a, an, 10000, NULL), RAW_OK);
    if (b)
        cr_assert_eq(raw_send(c, b, bn, 10000, NULL), RAW_OK);
    cr_assert_eq(setsockopt(c->fd, IPPROTO_TCP, TCP_CORK, &off, sizeof(off)), 0);
}

/* Requests read together are recorded together (one write(2) for their
 * audit lines), but no answer may leave before its own line is in the file.
 * One request in a TLS record of its own, then a long pipeline in a second
 * record, both in one TCP segment (corked), so the server reads them in one
 * go: when the first answer arrives, its line must be in the file already,
 * although the lines of the rest are still being made. */
Test(edge, pipelined_answers_leave_after_their_audit_lines, .init = prep, .fini = finish)
{
    start_with(NULL);
    struct rawconn c;
    tls_open(&c);
    enum { N = 150 };
    static const char one[] = "GET /v1/notes/1 HTTP/1.1\r\nHost: localhost\r\n\r\n";
    char in[N * sizeof(one)];
    size_t len = 0;
    for (int i = 1; i < N; i++) {
        memcpy(in + len, one, sizeof(one) - 1);
        len += sizeof(one) - 1;
    }
    send_corked(&c, one, sizeof(one) - 1, in, len);
    struct rawbuf out = { 0 };
    raw_read_responses(&c, &out, 1, 5000);
    char *path = fmt("%s/audit.log", harness_getenv(&srv, "NOTES_AUDIT_DIR"));
    size_t n_early = 0, n_late = 0;
    char *early = harness_read_file(path, &n_early);   /* as the first answer arrived */
    cr_assert_not_null(early);
    raw_read_responses(&c, &out, N, 5000);
    char *late = harness_read_file(path, &n_late);
    cr_assert_not_null(late);
    size_t off = 0;
    for (int i = 0; i < N; i++) {
        struct raw_resp r;
        size_t k = raw_parse_response(out.p + off, out.len - off, &r);
        cr_assert(k != 0 && k != (size_t)-1, "response %d missing", i + 1);
        off += k;
        cr_assert_eq(r.status, 401);
        char *id = raw_header(&r, "X-Request-Id");
        cr_assert_not_null(id);
        char *want = fmt("\"request_id\":\"%s\"", id);
        cr_assert(strstr(i == 0 ? early : late, want), "answer %d left before its audit line was written",
                  i + 1);
        free(want);
        free(id);
        raw_resp_free(&r);
    }
    free(early);
    free(late);
    free(path);
    rawbuf_free(&out);
    raw_close(&c);
}

/* A response waiting for its audit line must not let the connection read
 * more than TLS can hold: a request with a large body pipelined behind it
 * arrives in many reads within one turn of the loop, and the client must
 * get both answers, not a closed connection. */
Test(edge, a_held_answer_does_not_overflow_the_input_behind_it, .init = prep, .fini = finish)
{
    start_with(NULL);
    struct rawconn c;
    tls_open(&c);
    enum { BODY = 200000 };
    static const char get[] = "GET /v1/notes/1 HTTP/1.1\r\nHost: localhost\r\n\r\n";
    char head[160];
    int hn = snprintf(head, sizeof(head),
                      "POST /v1/notes HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                      "Content-Length: %d\r\n\r\n", BODY);
    size_t len = sizeof(get) - 1 + (size_t)hn + BODY;
    char *in = malloc(len);
    cr_assert_not_null(in);
    memcpy(in, get, sizeof(get) - 1);
    memcpy(in + sizeof(get) - 1, head, (size_t)hn);
    memset(in + sizeof(get) - 1 + hn, 'a', BODY);
    send_corked(&c, in, len, NULL, 0);
    struct rawbuf out = { 0 };
    raw_read_responses(&c, &out, 2, 10000);
    size_t rest = 0;
    bool bad = false;
    size_t n = raw_count_responses(out.p, out.len, &rest, &bad);
    cr_assert_eq(n, 2, "%zu answer(s) to a GET and a large POST behind it", n);
    struct raw_resp r;
    cr_assert_neq(raw_parse_response(out.p, out.len, &r), 0);
    cr_assert_eq(r.status, 401);
    raw_resp_free(&r);
    rawbuf_free(&out);
    free(in);
    raw_close(&c);
}

Test(edge, pipeline_split_across_tls_records_and_byte_by_byte, .init = prep, .fini = finish)
{
    start_with(NULL);
    struct rawconn c;
    tls_open(&c);
    static const char in[] = "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\nGET /nope HTTP/1.1\r\nHost: localhost\r\n\r\n";
    for (size_t i = 0; i < sizeof(in) - 1; i++)
        cr_assert_eq(raw_send(&c, in + i, 1, 2000, NULL), RAW_OK);
    struct rawbuf out = { 0 };
    raw_read_responses(&c, &out, 2, 5000);
    struct raw_resp a, b;
    size_t k = raw_parse_response(out.p, out.len, &a);
    cr_assert(k != 0 && k != (size_t)-1, "%s", out.p);
    size_t k2 = raw_parse_response(out.p + k, out.len - k, &b);
    cr_assert(k2 != 0 && k2 != (size_t)-1, "%s", out.p);
    cr_assert_eq(a.status, 200);
    cr_assert_eq(b.status, 404);
    raw_resp_free(&a);
    raw_resp_free(&b);
    rawbuf_free(&out);
    raw_close(&c);
}

Test(edge, connection_close_is_honoured, .init = prep, .fini = finish)
{
    start_with(NULL);
    struct rawconn c;
    tls_open(&c);
    static const char in[] = "GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
                             "GET /nope HTTP/1.1\r\nHost: localhost\r\n\r\n";
    cr_assert_eq(raw_send(&c, in, sizeof(in) - 1, 5000, NULL), RAW_OK);
    struct rawbuf out = { 0 };
    enum raw_io e = raw_read_until_close(&c, &out, 5000);
    cr_assert_neq(e, RAW_TIMEOUT, "still open after Connection: close");
    size_t rest = 0;
    cr_assert_eq(raw_count_responses(out.p, out.len, &rest, NULL), 1, "want only the first answered:\n%s", out.p);
    cr_assert_eq(rest, out.len);
    struct raw_resp r;
    raw_parse_response(out.p, out.len, &r);
    cr_assert_eq(r.status, 200);
    char *conn = raw_header(&r, "Connection");
    cr_assert(conn && strcmp(conn, "close") == 0, "%s", r.head);
    free(conn);
    raw_resp_free(&r);
    rawbuf_free(&out);
    raw_close(&c);
}

Test(edge, http10_closes_unless_keep_alive, .init = prep, .fini = finish)
{
    start_with(NULL);
    struct rawconn c;
    tls_open(&c);
    static const char plain10[] = "GET /healthz HTTP/1.0\r\n\r\nGET /healthz HTTP/1.0\r\n\r\n";
    cr_assert_eq(raw_send(&c, plain10, sizeof(plain10) - 1, 5000, NULL), RAW_OK);
    struct rawbuf out = { 0 };
    enum raw_io e = raw_read_until_close(&c, &out, 5000);
    cr_assert_neq(e, RAW_TIMEOUT, "an HTTP/1.0 request without keep-alive left the connection open");
    cr_assert_eq(raw_count_responses(out.p, out.len, NULL, NULL), 1, "want one answer:\n%s", out.p);
    struct raw_resp r;
    raw_parse_response(out.p, out.len, &r);
    cr_assert_eq(r.status, 200);
    raw_resp_free(&r);
    rawbuf_free(&out);
    raw_close(&c);

    tls_open(&c);
    static const char ka[] = "GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
    exchange(&c, ka, sizeof(ka) - 1, &r);
    cr_assert_eq(r.status, 200);
    char *conn = raw_header(&r, "Connection");
    cr_assert(conn && strcmp(conn, "keep-alive") == 0, "HTTP/1.0 keep-alive not confirmed:\n%s", r.head);
    free(conn);
    raw_resp_free(&r);
    exchange(&c, ka, sizeof(ka) - 1, &r);
    cr_assert_eq(r.status, 200, "the HTTP/1.0 keep-alive connection was not kept");
    raw_resp_free(&r);
    raw_close(&c);
}

/* ---- 7. backpressure ----------------------------------------------------------------- */

#define BP_PAIRS 500                    /* one pattern: /healthz, /nope, ... */
#define BP_MAX_REQUESTS 400000          /* ~16 MB of requests, ~200 MB of answers */
#define BP_RSS_GROWTH_KIB (32 * 1024)

static const char bp_req_a[] = "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n";
static const char bp_req_b[] = "GET /nope HTTP/1.1\r\nHost: localhost\r\n\r\n";

struct flood {
    size_t sent;         /* bytes written */
    size_t complete;     /* requests written whole */
    bool stalled;        /* a write made no progress for 2 s */
    enum raw_io end;     /* how the writing ended */
    long ms;
};

/* Pipeline /healthz, /nope, /healthz, ... as fast as the socket takes them,
 * never reading, for at most `max_ms` (and, when rss0 > 0, only until the
 * server grew by twice the allowance); stop when a write makes no progress
 * for 2 s (the server stopped reading) or the connection fails. */
static void flood(struct rawconn *c, long max_ms, long rss0, struct flood *f)
{
    size_t la = sizeof(bp_req_a) - 1, lb = sizeof(bp_req_b) - 1;
    size_t pat_len = (la + lb) * BP_PAIRS, pat_reqs = 2 * BP_PAIRS;
    char *pat = malloc(pat_len);
    size_t *ends = malloc(sizeof(size_t) * pat_reqs);   /* where request i of the pattern ends */
    cr_assert(pat && ends);
    for (size_t i = 0, off = 0; i < pat_reqs; i++) {
        memcpy(pat + off, i % 2 ? bp_req_b : bp_req_a, i % 2 ? lb : la);
        off += i % 2 ? lb : la;
        ends[i] = off;
    }
    memset(f, 0, sizeof(*f));
    size_t limit = pat_len * (BP_MAX_REQUESTS / pat_reqs);
    long t0 = raw_now_ms();
    f->end = RAW_OK;
    for (unsigned n = 1; f->sent < limit && raw_now_ms() - t0 < max_ms; n++) {
        /* Enough shown once the server grew by twice the allowance: stop
         * before a server without backpressure eats the machine. */
        if (rss0 > 0 && n % 32 == 0 && raw_rss_kib(srv.pid) - rss0 > 2 * BP_RSS_GROWTH_KIB)
            break;
        size_t off = f->sent % pat_len, chunk = pat_len - off < 16384 ? pat_len - off : 16384, k = 0;
        enum raw_io e = raw_send(c, pat + off, chunk, 2000, &k);
        f->sent += k;
        if (e == RAW_TIMEOUT)
            f->stalled = true;
        if (e != RAW_OK) {
            f->end = e;
            break;
        }
    }
    f->ms = raw_now_ms() - t0;
    f->complete = f->sent / pat_len * pat_reqs;
    for (size_t i = 0; i < pat_reqs && ends[i] <= f->sent % pat_len; i++)
        f->complete++;
    free(pat);
    free(ends);
}

/* Read answers to a flood, checking their order with `check` (response
 * index, response; returns a complaint or NULL), until `want` arrived, the
 * connection ended, or nothing came for 10 s. *got says how many arrived. */
static enum raw_io read_flood_answers(struct rawconn *c, size_t want, const char *(*check)(size_t, const struct raw_resp *),
                                      size_t *got)
{
    struct rawbuf out = { 0 };
    size_t off = 0;
    enum raw_io e = RAW_OK;
    long r0 = raw_now_ms();
    *got = 0;
    while (*got < want && raw_now_ms() - r0 < 90000) {
        char tmp[65536];
        size_t k = 0;
        e = raw_recv(c, tmp, sizeof(tmp), &k, 10000);
        if (e != RAW_OK)
            break;
        rawbuf_append(&out, tmp, k);
        for (;;) {
            struct raw_resp r;
            size_t used = raw_parse_response(out.p + off, out.len - off, &r);
            cr_assert_neq(used, (size_t)-1, "garbage after %zu responses", *got);
            if (used == 0)
                break;
            const char *why = check(*got, &r);
            cr_assert_null(why, "response %zu: %s:\n%s", *got, why, r.head);
            raw_resp_free(&r);
            off += used;
            (*got)++;
        }
        if (off > (1u << 20)) {   /* keep the buffer small */
            memmove(out.p, out.p + off, out.len - off);
            out.len -= off;
            off = 0;
        }
    }
    rawbuf_free(&out);
    return e;
}

static const char *tls_order(size_t i, const struct raw_resp *r)
{
    return r->status == (i % 2 ? 404 : 200) ? NULL : "status out of order (want 200, 404, 200, ...)";
}

static const char *redirect_order(size_t i, const struct raw_resp *r)
{
    if (r->status != 301)
        return "not a 301";
    char *loc = raw_header(r, "Location");
    const char *want = i % 2 ? "/nope" : "/healthz";
    bool ok = loc && strlen(loc) >= strlen(want) && strcmp(loc + strlen(loc) - strlen(want), want) == 0;
    free(loc);
    return ok ? NULL : "Location out of order (want /healthz, /nope, ...)";
}

/* Flood `c` without reading and check the server stops reading it, stays
 * small, and keeps serving others. */
static void assert_backpressure(struct rawconn *c, const char *where, struct flood *f)
{
    cr_assert_eq(healthz_status(), 200);   /* warm up before the baseline */
    long rss0 = raw_rss_kib(srv.pid);
    cr_assert_gt(rss0, 0);
    flood(c, 10000, rss0, f);
    long rss1 = raw_rss_kib(srv.pid);
    pace_ms(1000);   /* give a server without backpressure time to grow */
    long rss2 = raw_rss_kib(srv.pid);
    long growth = (rss1 > rss2 ? rss1 : rss2) - rss0;
    cr_log_info("%s: sent %zu bytes (%zu requests) in %ld ms, %s (%s); RSS %ld -> %ld -> %ld KiB", where, f->sent,
                f->complete, f->ms, f->stalled ? "then the writes stalled" : "no stall", raw_io_name(f->end), rss0,
                rss1, rss2);
    cr_assert(server_alive(), "%s: notesd died under a pipelined flood", where);
    cr_assert_lt(growth, BP_RSS_GROWTH_KIB, "%s: server RSS grew by %ld KiB (%ld -> %ld KiB) for one client that "
                 "pipelined %zu requests (%zu bytes) in %ld ms and read nothing", where, growth, rss0,
                 rss1 > rss2 ? rss1 : rss2, f->complete, f->sent, f->ms);
    cr_assert(f->stalled || f->end != RAW_OK, "%s: %zu requests (%zu bytes) were all taken in %ld ms without any "
              "answer read: the server never stopped reading a client that does not read", where, f->complete,
              f->sent, f->ms);
    cr_assert_eq(healthz_status(), 200, "%s: another client is not served while one does not read", where);
}

Test(edge, client_that_never_reads_cannot_grow_the_server, .init = prep, .fini = finish, .timeout = 180)
{
    start_with((const char *const[]){ "NOTES_LOG_LEVEL", "info", NULL });
    struct rawconn c;
    tls_open(&c);
    struct flood f;
    assert_backpressure(&c, "TLS", &f);
    cr_assert_eq(f.end, RAW_TIMEOUT, "the server dropped a client that was only slow to read (%s)",
                 raw_io_name(f.end));
    /* Now read: every complete request answered in order, unless the server
     * cut us off (send timeout). */
    size_t got = 0;
    enum raw_io e = read_flood_answers(&c, f.complete, tls_order, &got);
    cr_log_info("TLS: read %zu of %zu responses in order (%s)", got, f.complete, raw_io_name(e));
    cr_assert_geq(got, 10, "only %zu responses arrived (%s)", got, raw_io_name(e));
    if (e == RAW_OK)
        cr_assert_eq(got, f.complete, "responses stopped at %zu of %zu with the connection open", got, f.complete);
    raw_close(&c);
    cr_assert(server_alive(), "notesd died");
    cr_assert_eq(healthz_status(), 200);
}

Test(edge, client_that_never_reads_is_dropped_at_the_send_timeout, .init = prep, .fini = finish, .timeout = 180)
{
    start_with((const char *const[]){ "NOTES_LOG_LEVEL", "info", "NOTES_TIMEOUT_SEND", "1", NULL });
    struct rawconn c;
    tls_open(&c);
    struct flood f;
    flood(&c, 10000, 0, &f);
    cr_assert(f.stalled || f.end != RAW_OK, "the server never stopped reading (%zu requests)", f.complete);
    pace_ms(2000);   /* well past the 1 s send timeout, still not reading */
    size_t got = 0;
    enum raw_io e = read_flood_answers(&c, f.complete, tls_order, &got);
    cr_log_info("send timeout: %zu requests sent (%s), then %zu answers read (%s)", f.complete,
                raw_io_name(f.end), got, raw_io_name(e));
    cr_assert_lt(got, f.complete, "all %zu answers were kept for a client that read nothing for >3 s "
                 "(send timeout 1 s)", f.complete);
    cr_assert_neq(e, RAW_TIMEOUT, "the connection is still open");
    raw_close(&c);
    cr_assert(server_alive());
    cr_assert_eq(healthz_status(), 200);
}

Test(edge, redirect_listener_client_that_never_reads_cannot_grow_the_server, .init = prep, .fini = finish,
     .timeout = 180)
{
    start_with((const char *const[]){ "NOTES_LOG_LEVEL", "info", "NOTES_REDIRECT_LISTEN", "127.0.0.1:0", NULL });
    struct rawconn c;
    cr_assert_eq(raw_tcp_connect(&c, srv.redirect_port), 0, "%s", c.err);
    struct flood f;
    assert_backpressure(&c, "redirect listener", &f);
    size_t got = 0;
    enum raw_io e = read_flood_answers(&c, f.complete, redirect_order, &got);
    cr_log_info("redirect listener: read %zu of %zu responses in order (%s)", got, f.complete, raw_io_name(e));
    raw_close(&c);
    cr_assert(server_alive(), "notesd died");
}

/* ---- 8. TLS session resumption ------------------------------------------------------- */

static size_t sink(char *p, size_t size, size_t n, void *arg)
{
    (void)p;
    (void)arg;
    return size * n;
}

static long shared_request(CURLSH *share, long sslversion)
{
    CURL *h = curl_easy_init();
    cr_assert_not_null(h);
    char url[128], resolve[128];
    snprintf(url, sizeof(url), "https://localhost:%d/healthz", srv.port);
    snprintf(resolve, sizeof(resolve), "localhost:%d:127.0.0.1", srv.port);
    struct curl_slist *res = curl_slist_append(NULL, resolve);
    struct curl_slist *hdrs = curl_slist_append(NULL, "Connection: close");
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_RESOLVE, res);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_CAINFO, srv.cert);
    curl_easy_setopt(h, CURLOPT_SHARE, share);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(h, CURLOPT_FORBID_REUSE, 1L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(h, CURLOPT_SSLVERSION, sslversion);
    CURLcode rc = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(res);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    cr_assert_eq(rc, CURLE_OK, "curl: %s", curl_easy_strerror(rc));
    return status;
}

static size_t count_lines_with(const char *text, const char *needle, const char **last)
{
    size_t n = 0;
    for (const char *p = strstr(text, needle); p; p = strstr(p + 1, needle)) {
        n++;
        if (last)
            *last = p;
    }
    return n;
}

/* Two sequential connections (Connection: close) sharing curl's session
 * cache; the server's debug log must show the second one resumed. */
static void check_resumption(long sslversion, const char *version)
{
    start_with(NULL);
    CURLSH *share = curl_share_init();
    cr_assert_not_null(share);
    curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    cr_assert_eq(shared_request(share, sslversion), 200);
    cr_assert_eq(shared_request(share, sslversion), 200);
    curl_share_cleanup(share);

    char *err = harness_stderr(&srv);
    char tag[64];
    snprintf(tag, sizeof(tag), "TLS handshake done: %s", version);
    const char *last = NULL;
    size_t done = count_lines_with(err, tag, &last);
    cr_assert_eq(done, 2, "want two %s handshakes in the log, found %zu:\n%s", version, done, err);
    const char *eol = strchr(last, '\n');
    char *line = strndup(last, eol ? (size_t)(eol - last) : strlen(last));
    cr_assert(strstr(line, "(resumed)"), "the second handshake did not resume: \"%s\"\nfull log:\n%s", line, err);
    const char *first = strstr(err, tag);
    const char *first_eol = strchr(first, '\n');
    cr_assert_null(memmem(first, first_eol ? (size_t)(first_eol - first) : strlen(first), "(resumed)", 9),
                   "the first handshake claims to be resumed");
    free(line);
    free(err);
}

Test(edge, second_connection_resumes_the_tls13_session, .init = prep, .fini = finish)
{
    check_resumption((long)CURL_SSLVERSION_TLSv1_3, "TLSv1.3");
}

/* TLS 1.2 resumption (an abbreviated handshake, no new ECDHE) would not
 * be forward secret: whoever later gets the ticket key could read the
 * resumed connections. So a TLS 1.2 session is never resumed: its ticket
 * is refused and a full handshake follows. libcurl's OpenSSL backend sets
 * SSL_OP_NO_TICKET, so the openssl command line is the client here. */
static char *s_client_version(const char *version, const char *sess_opt, const char *sess_file)
{
    char *cmd = fmt("openssl s_client -connect 127.0.0.1:%d -servername localhost %s -CAfile '%s' "
                    "%s '%s' </dev/null 2>&1", srv.port, version, srv.cert, sess_opt, sess_file);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    struct rawbuf out = { 0 };
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), p)) > 0)
        rawbuf_append(&out, buf, n);
    pclose(p);
    free(cmd);
    return out.p ? out.p : harness_strdup("");
}

static char *s_client(const char *sess_opt, const char *sess_file)
{
    return s_client_version("-tls1_2", sess_opt, sess_file);
}

Test(edge, a_tls12_session_is_not_resumed, .init = prep, .fini = finish)
{
    start_with(NULL);
    char *sess = fmt("%s/tls12.sess", srv.dir);
    char *first = s_client("-sess_out", sess);
    cr_assert_not_null(strstr(first, "New, TLSv1.2"), "first handshake:\n%s", first);
    /* With no ticket and no session cache there may be nothing to save. */
    if (access(sess, F_OK) == 0) {
        char *second = s_client("-sess_in", sess);
        cr_assert_null(strstr(second, "Reused, TLSv1.2"), "a TLS 1.2 session was resumed:\n%s", second);
        cr_assert_not_null(strstr(second, "New, TLSv1.2"), "second handshake:\n%s", second);
        free(second);
    }
    free(first);
    free(sess);
}

/* A TLS 1.3 ticket placed in a TLS 1.2 ClientHello's SessionTicket
 * extension: mbedTLS's TLS 1.2 server restored the TLS 1.3 session from it
 * and answered with an abbreviated handshake (ServerHello echoing the
 * session id, then ChangeCipherSpec). A TLS 1.2 connection must get a full
 * handshake whatever ticket it brings. The ticket comes from openssl's
 * saved session (`openssl sess_id -text`), the hello is written here. */
static size_t tls13_ticket(uint8_t *out, size_t cap)
{
    char *sess = fmt("%s/tls13.sess", srv.dir);
    char *get = fmt("printf 'GET /healthz HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n' | "
                    "openssl s_client -connect 127.0.0.1:%d -servername localhost -tls1_3 -CAfile '%s' "
                    "-sess_out '%s' -ign_eof -quiet >/dev/null 2>&1", srv.port, srv.cert, sess);
    cr_assert_eq(system(get), 0, "%s", get);
    char *text = fmt("openssl sess_id -in '%s' -text -noout", sess);
    FILE *p = popen(text, "r");
    cr_assert_not_null(p);
    char line[512];
    bool in_ticket = false;
    size_t n = 0;
    while (fgets(line, sizeof(line), p)) {
        if (strstr(line, "TLS session ticket:")) {
            in_ticket = true;
            continue;
        }
        const char *dash = in_ticket ? strstr(line, " - ") : NULL;
        if (!dash) {
            in_ticket = in_ticket && line[0] != '\n' && line[0] != '\0';
            continue;
        }
        /* "    0000 - 9b 2c ... 07-1a ...   ascii": pairs until two spaces */
        for (const char *q = dash + 3; q[0] && q[1] && !(q[0] == ' ' && q[1] == ' ');) {
            unsigned v;
            if (sscanf(q, "%2x", &v) != 1)
                break;
            cr_assert_lt(n, cap);
            out[n++] = (uint8_t)v;
            q += 2;
            if (*q == ' ' || *q == '-')
                q++;
        }
    }
    pclose(p);
    free(text);
    free(get);
    free(sess);
    return n;
}

static size_t put16(uint8_t *p, size_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
    return 2;
}

/* A TLS 1.2 ClientHello (ECDHE AEAD suites, x25519/P-256, ECDSA/RSA-PSS)
 * with `sid` as session id and `ticket` in the SessionTicket extension. */
static size_t tls12_hello(uint8_t *rec, const uint8_t sid[32], const uint8_t *ticket, size_t ticket_len)
{
    static const uint8_t fixed_ext[] = {
        0x00, 0x0a, 0x00, 0x06, 0x00, 0x04, 0x00, 0x1d, 0x00, 0x17,            /* groups */
        0x00, 0x0b, 0x00, 0x02, 0x01, 0x00,                                      /* point formats */
        0x00, 0x0d, 0x00, 0x08, 0x00, 0x06, 0x04, 0x03, 0x08, 0x04, 0x04, 0x01,  /* signature algorithms */
        0x00, 0x17, 0x00, 0x00,                                                  /* extended master secret */
    };
    static const uint8_t suites[] = { 0xc0, 0x2b, 0xc0, 0x2f, 0xc0, 0x2c, 0xc0, 0x30, 0xcc, 0xa9, 0xcc, 0xa8 };
    uint8_t *b = rec + 9;                 /* after the record and handshake headers */
    size_t n = 0;
    b[n++] = 3, b[n++] = 3;
    for (int i = 0; i < 32; i++)
        b[n++] = (uint8_t)(i * 7 + 1);    /* client random: any bytes */
    b[n++] = 32;
    memcpy(b + n, sid, 32), n += 32;
    n += put16(b + n, sizeof(suites));
    memcpy(b + n, suites, sizeof(suites)), n += sizeof(suites);
    b[n++] = 1, b[n++] = 0;               /* compression: null */
    n += put16(b + n, sizeof(fixed_ext) + 4 + ticket_len);
    memcpy(b + n, fixed_ext, sizeof(fixed_ext)), n += sizeof(fixed_ext);
    n += put16(b + n, 35);                /* session_ticket */
    n += put16(b + n, ticket_len);
    memcpy(b + n, ticket, ticket_len), n += ticket_len;
    rec[0] = 0x16, rec[1] = 3, rec[2] = 1;
    put16(rec + 3, n + 4);
    rec[5] = 1, rec[6] = (uint8_t)(n >> 16), rec[7] = (uint8_t)(n >> 8), rec[8] = (uint8_t)n;
    return n + 9;
}

Test(edge, a_tls13_ticket_in_a_tls12_hello_gets_a_full_handshake, .init = prep, .fini = finish, .timeout = 60)
{
    start_with(NULL);
    uint8_t ticket[2048], rec[4096], sid[32];
    size_t tlen = tls13_ticket(ticket, sizeof(ticket));
    cr_assert_gt(tlen, 32, "no TLS 1.3 ticket from openssl");
    /* The control: the saved session (whose ticket was read out) resumes in
     * TLS 1.3, so the ticket sent below is one the server accepts. */
    char *sess = fmt("%s/tls13.sess", srv.dir);
    char *said = s_client_version("-tls1_3", "-sess_in", sess);
    cr_assert_not_null(strstr(said, "Reused, TLSv1.3"), "the saved TLS 1.3 session did not resume:\n%s", said);
    free(said);
    free(sess);
    memset(sid, 0x5a, sizeof(sid));
    size_t n = tls12_hello(rec, sid, ticket, tlen);
    struct rawconn c;
    cr_assert_eq(raw_tcp_connect(&c, srv.port), 0);
    cr_assert_eq(raw_send(&c, rec, n, 5000, NULL), RAW_OK);
    /* Read until the handshake message after the ServerHello is known. */
    struct rawbuf in = { 0 };
    long until = raw_now_ms() + 5000;
    uint8_t hs[8192];
    size_t hs_len = 0, off = 0;
    int after_hello = -1;
    bool echoed = false, hello = false;
    while (after_hello < 0 && raw_now_ms() < until) {
        uint8_t buf[4096];
        size_t got = 0;
        if (raw_recv(&c, buf, sizeof(buf), &got, until - raw_now_ms()) != RAW_OK)
            break;
        rawbuf_append(&in, buf, got);
        for (; off + 5 <= in.len;) {                 /* whole records only */
            const uint8_t *r = (const uint8_t *)in.p + off;
            size_t len = (size_t)r[3] << 8 | r[4];
            if (off + 5 + len > in.len)
                break;
            if (r[0] == 0x14 && hello && after_hello < 0)
                after_hello = 0x14;                   /* ChangeCipherSpec: abbreviated */
            if (r[0] == 0x16 && hs_len + len <= sizeof(hs))
                memcpy(hs + hs_len, r + 5, len), hs_len += len;
            off += 5 + len;
        }
        for (size_t p = 0; p + 4 <= hs_len && after_hello < 0;) {
            size_t mlen = (size_t)hs[p + 1] << 16 | (size_t)hs[p + 2] << 8 | hs[p + 3];
            if (p + 4 + mlen > hs_len)
                break;
            if (hs[p] == 2) {
                /* version 2, random 32, session id length 1, then the id */
                cr_assert_geq(mlen, 35, "a ServerHello of %zu bytes", mlen);
                hello = true;
                echoed = hs[p + 4 + 34] == 32 && mlen >= 35 + 32 && memcmp(hs + p + 4 + 35, sid, 32) == 0;
            } else if (hello) {
                after_hello = hs[p];
            }
            p += 4 + mlen;
        }
    }
    raw_close(&c);
    rawbuf_free(&in);
    cr_assert(hello, "no ServerHello");
    cr_assert(!echoed, "the server echoed the session id: it resumed a TLS 1.3 session in TLS 1.2");
    cr_assert_eq(after_hello, 11, "after the ServerHello came %#x, not a Certificate (a full handshake)",
                 (unsigned)after_hello);
}

/* ---- 8b. TLS 1.2 renegotiation, refused by design ------------------------------------ */

#define ALERT_NO_RENEGOTIATION 100

static void tls12_open(struct tls12client *c)
{
    cr_assert_eq(tls12client_connect(c, srv.port, srv.cert, 3000), 0, "TLS 1.2 connect: %s", c->err);
}

static bool got_alert(const struct tls12client *c, int description)
{
    for (size_t i = 0; i < c->n_alerts; i++)
        if (c->alerts_read[i] == description)
            return true;
    return false;
}

/* A real client's renegotiation (OpenSSL's SSL_renegotiate) hears its
 * refusal at once, not when the keep-alive timer (15 s) flushes it. */
Test(edge, tls12_renegotiation_is_refused_with_an_alert_at_once, .init = prep, .fini = finish, .timeout = 60)
{
    start_with(NULL);
    struct tls12client c;
    tls12_open(&c);
    long t0 = raw_now_ms();
    cr_assert_eq(SSL_renegotiate(c.ssl), 1, "SSL_renegotiate refused to start");
    int rc = SSL_do_handshake(c.ssl);   /* blocks at most the 3 s receive timeout */
    long took = raw_now_ms() - t0;
    cr_assert_neq(rc, 1, "the renegotiation succeeded: it must be refused");
    cr_assert(got_alert(&c, ALERT_NO_RENEGOTIATION),
              "no no_renegotiation alert within %ld ms (%zu alerts; the server holds its answer until the "
              "keep-alive timeout)", took, c.n_alerts);
    cr_assert_lt(took, 2000, "the no_renegotiation alert took %ld ms", took);
    tls12client_close(&c);
    cr_assert_eq(healthz_status(), 200);
}

/* An empty ClientHello (type 1, length 0): mbedTLS refuses it like a full
 * one, which makes it the cheapest renegotiation attempt. */
static const uint8_t empty_hello[4] = { 1, 0, 0, 0 };
#define ALERT_RECORD_LEN (5 + 8 + 2 + 16)   /* header, explicit nonce, alert, GCM tag */

/* How many audit lines say `event` with `reason`, and their summed count. */
static size_t audit_reason_lines(const char *event, const char *reason, unsigned long long *sum)
{
    char *want_re = fmt("\"reason\":\"%s\"", reason);
    size_t n = audit_lines_with(event, want_re, sum);
    free(want_re);
    return n;
}

/* A client that asks to renegotiate and then waits (no fatal alert of its
 * own, unlike OpenSSL) gets the alert and a close, not a connection held
 * open until the keep-alive timeout. */
Test(edge, tls12_client_hello_after_the_handshake_gets_an_alert_and_a_close, .init = prep, .fini = finish,
     .timeout = 60)
{
    start_with(NULL);
    struct tls12client c;
    tls12_open(&c);
    long t0 = raw_now_ms();
    cr_assert_eq(tls12client_send_raw(&c, 22, empty_hello, sizeof(empty_hello)), 0, "%s", c.err);
    size_t got = 0;
    int closed = tls12client_read_until_close(&c, 3000, &got);
    long took = raw_now_ms() - t0;
    cr_assert(closed, "still open %ld ms after a ClientHello (got %zu bytes): a refused renegotiation must "
              "close the connection", took, got);
    cr_assert_eq(got, ALERT_RECORD_LEN, "want exactly one alert record (%d bytes) before the close, got %zu",
                 ALERT_RECORD_LEN, got);
    tls12client_close(&c);
    cr_assert_eq(harness_stop(&srv), 0);
    unsigned long long sum = 0;
    cr_assert_eq(audit_reason_lines("tls.rejected", "renegotiation", &sum), 1,
                 "the refused renegotiation is not in the audit trail's refusal report");
    cr_assert_eq(sum, 1);
}

/* mbedTLS answers every ClientHello in a record: 16 KiB of 4-byte hellos
 * made 4096 alerts (127 KB) per record, held for a client that never
 * reads. One alert, then the close, whatever follows. */
Test(edge, a_record_packed_with_client_hellos_gets_one_alert, .init = prep, .fini = finish, .timeout = 60)
{
    start_with(NULL);
    struct tls12client c;
    tls12_open(&c);
    static uint8_t packed[16384];
    for (size_t i = 0; i < sizeof(packed); i += sizeof(empty_hello))
        memcpy(packed + i, empty_hello, sizeof(empty_hello));
    cr_assert_eq(tls12client_send_raw(&c, 22, packed, sizeof(packed)), 0, "%s", c.err);
    /* More records may meet a connection already closed: not checked. */
    for (int i = 0; i < 3; i++)
        (void)tls12client_send_raw(&c, 22, packed, sizeof(packed));
    size_t got = 0;
    int closed = tls12client_read_until_close(&c, 3000, &got);
    cr_assert_leq(got, ALERT_RECORD_LEN, "%zu bytes answered 4 records of 4096 ClientHellos (one alert is %d)",
                  got, ALERT_RECORD_LEN);
    cr_assert(closed, "still open 3 s after 4 records of ClientHellos");
    tls12client_close(&c);
    cr_assert_eq(healthz_status(), 200);
}

/* ---- 9. the plain-HTTP redirect listener -------------------------------------------- */

static const char *const other_security_headers[][2] = {
    { "X-Content-Type-Options", "nosniff" },
    { "Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'" },
    { "X-Frame-Options", "DENY" },
    { "Referrer-Policy", "no-referrer" },
    { "Cache-Control", "no-store" },
    { "Cross-Origin-Resource-Policy", "same-origin" },
};

static void assert_plain_security_headers(const struct raw_resp *r)
{
    char *hsts = raw_header(r, "Strict-Transport-Security");
    cr_assert_null(hsts, "HSTS sent over plain HTTP:\n%s", r->head);
    for (size_t i = 0; i < sizeof(other_security_headers) / sizeof(other_security_headers[0]); i++) {
        char *v = raw_header(r, other_security_headers[i][0]);
        cr_assert(v, "missing %s on the redirect listener:\n%s", other_security_headers[i][0], r->head);
        cr_assert_str_eq(v, other_security_headers[i][1], "%s", other_security_headers[i][0]);
        free(v);
    }
}

static void plain_exchange(const char *req, struct raw_resp *r, enum raw_io *end)
{
    struct rawconn c;
    cr_assert_eq(raw_tcp_connect(&c, srv.redirect_port), 0, "%s", c.err);
    raw_send(&c, req, strlen(req), 5000, NULL);
    struct rawbuf out = { 0 };
    enum raw_io e = raw_read_responses(&c, &out, 1, 5000);
    size_t k = raw_parse_response(out.p, out.len, r);
    cr_assert(k != 0 && k != (size_t)-1, "no response from the redirect listener (%s):\n%s", raw_io_name(e),
              out.p);
    if (end) {
        struct rawbuf more = { 0 };
        *end = raw_read_until_close(&c, &more, 3000);
        rawbuf_free(&more);
    }
    rawbuf_free(&out);
    raw_close(&c);
}

Test(edge, redirect_listener_answers_301_to_https_without_hsts, .init = prep, .fini = finish)
{
    start_with((const char *const[]){ "NOTES_REDIRECT_LISTEN", "127.0.0.1:0", NULL });
    cr_assert_gt(srv.redirect_port, 0, "no redirect port announced");
    char *req = fmt("GET /v1/notes?limit=5 HTTP/1.1\r\nHost: localhost:%d\r\n\r\n", srv.redirect_port);
    struct raw_resp r;
    plain_exchange(req, &r, NULL);
    cr_assert_eq(r.status, 301, "%s\n%s", r.head, r.body);
    char *loc = raw_header(&r, "Location");
    char want[128];
    snprintf(want, sizeof(want), "https://localhost:%d/v1/notes?limit=5", srv.port);
    cr_assert(loc, "no Location:\n%s", r.head);
    cr_assert_str_eq(loc, want);
    free(loc);
    assert_plain_security_headers(&r);
    raw_resp_free(&r);
    free(req);

    /* A framing refusal there is plain too, and closes. */
    enum raw_io end;
    plain_exchange("GET /x HTTP/1.1\r\nHost : localhost\r\n\r\n", &r, &end);
    cr_assert_eq(r.status, 400);
    assert_plain_security_headers(&r);
    cr_assert_neq(end, RAW_TIMEOUT, "still open after a 400");
    raw_resp_free(&r);
}

Test(edge, redirect_listener_enforces_the_target_limit, .init = prep, .fini = finish)
{
    start_with((const char *const[]){ "NOTES_REDIRECT_LISTEN", "127.0.0.1:0", "NOTES_MAX_TARGET", "64", NULL });
    char *a63 = repeat('a', 63);
    char *at = fmt("GET /%s HTTP/1.1\r\nHost: localhost\r\n\r\n", a63);
    char *over = fmt("GET /%sb HTTP/1.1\r\nHost: localhost\r\n\r\n", a63);
    struct raw_resp r;
    plain_exchange(at, &r, NULL);
    cr_assert_eq(r.status, 301, "a 64-byte target: %d", r.status);
    raw_resp_free(&r);
    enum raw_io end;
    plain_exchange(over, &r, &end);
    cr_assert_eq(r.status, 414, "a 65-byte target: %d", r.status);
    assert_plain_security_headers(&r);
    cr_assert_neq(end, RAW_TIMEOUT, "still open after a 414");
    raw_resp_free(&r);
    free(a63);
    free(at);
    free(over);

    /* Default-sized flood: far beyond the limit, refused as it streams. */
    char *huge = repeat('z', 20000);
    char *req = fmt("GET /%s HTTP/1.1\r\nHost: localhost\r\n\r\n", huge);
    plain_exchange(req, &r, &end);
    cr_assert_eq(r.status, 414);
    raw_resp_free(&r);
    free(huge);
    free(req);
}

Test(edge, redirect_listener_is_under_the_per_address_cap, .init = prep, .fini = finish)
{
    start_with((const char *const[]){ "NOTES_REDIRECT_LISTEN", "127.0.0.1:0", "NOTES_MAX_CONNECTIONS_PER_IP", "2",
                                      NULL });
    struct rawconn conns[3];
    for (int i = 0; i < 3; i++)
        cr_assert_eq(raw_tcp_connect(&conns[i], srv.redirect_port), 0, "%s", conns[i].err);
    /* The first two are usable; the third must be closed at once. */
    struct rawbuf out = { 0 };
    enum raw_io e = raw_read_until_close(&conns[2], &out, 1000);
    rawbuf_free(&out);
    for (int i = 0; i < 3; i++)
        raw_close(&conns[i]);
    cr_assert_neq(e, RAW_TIMEOUT, "a 3rd plain connection from one address to the redirect listener stayed open "
                  "with NOTES_MAX_CONNECTIONS_PER_IP=2");
}

Test(edge, redirect_listener_cuts_a_slowloris, .init = prep, .fini = finish)
{
    start_with((const char *const[]){ "NOTES_REDIRECT_LISTEN", "127.0.0.1:0", "NOTES_TIMEOUT_HEADER", "1", NULL });
    struct rawconn c;
    cr_assert_eq(raw_tcp_connect(&c, srv.redirect_port), 0, "%s", c.err);
    static const char trickle[] = "GET /v1/notes HTTP/1.1\r\nHost: localhost\r\n"
                                  "X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    struct rawbuf out = { 0 };
    enum raw_io end = RAW_TIMEOUT;
    long t0 = raw_now_ms(), cut_at = -1;
    for (size_t i = 0; i < sizeof(trickle) - 1 && raw_now_ms() - t0 < 6000; i++) {
        if (peek_cut(&c, &out, &end)) {
            cut_at = raw_now_ms() - t0;
            break;
        }
        if (i == 0)
            t0 = raw_now_ms();   /* before the first byte, which starts the header deadline */
        if (raw_send(&c, trickle + i, 1, 1000, NULL) != RAW_OK) {
            cut_at = raw_now_ms() - t0;
            end = RAW_RESET;
            break;
        }
        pace_ms(200);
    }
    if (cut_at < 0 && peek_cut(&c, &out, &end))
        cut_at = raw_now_ms() - t0;
    cr_assert_geq(cut_at, 0, "a header trickled for %ld ms to the redirect listener was never cut off",
                  raw_now_ms() - t0);
    cr_assert_geq(cut_at, 800, "cut off after %ld ms, before the 1 s header timeout", cut_at);
    cr_assert_leq(cut_at, 3000, "cut off only after %ld ms (header timeout 1 s)", cut_at);
    assert_408_or_close(&c, &out, end, "redirect header trickle");
    rawbuf_free(&out);
    raw_close(&c);
    cr_assert(server_alive());
}

/* One JSON request over libcurl; the body of the answer (caller frees). */
static char *json_call(const char *method, const char *path, const char *token, const char *body, long want)
{
    char auth[256];
    const char *hdrs[3] = { "Content-Type: application/json", NULL, NULL };
    if (token) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
        hdrs[1] = auth;
    }
    struct request_opts o = { .method = method, .body = body, .headers = hdrs };
    struct response r;
    harness_request(&srv, path, &o, &r);
    cr_assert_eq(r.status, want, "%s %s: %ld %.200s", method, path, r.status, r.body ? r.body : "");
    char *out = harness_strdup(r.body ? r.body : "");
    response_free(&r);
    return out;
}

/* A new user with `notes` notes of 30,000 quotes each: 30 KB stored, well
 * within the account's cap, and 60,000 bytes each in an export (a quote is
 * escaped). Its token (caller frees). */
static char *user_with_big_notes(const char *prefix, int notes)
{
    char user[40];
    harness_marker(user, sizeof(user), prefix);
    char *cred = fmt("{\"username\":\"%s\",\"password\":\"violet-Anchor-7392-lamp\"}", user);
    free(json_call("POST", "/v1/auth/register", NULL, cred, 201));
    char *login = json_call("POST", "/v1/auth/login", NULL, cred, 200);
    char *t = strstr(login, "\"token\":\"");
    cr_assert_not_null(t);
    t += strlen("\"token\":\"");
    char *token = strndup(t, strcspn(t, "\""));
    char *content = malloc(60001);
    cr_assert_not_null(content);
    for (int i = 0; i < 60000; i += 2)
        memcpy(content + i, "\\\"", 2);   /* \" in the JSON body */
    content[60000] = 0;
    char *note = fmt("{\"title\":\"big\",\"content\":\"%s\"}", content);
    for (int i = 0; i < notes; i++)
        free(json_call("POST", "/v1/notes", token, note, 201));
    free(note);
    free(content);
    free(login);
    free(cred);
    return token;
}

/* An answer that closes the connection, given by a password job while a
 * large answer before it is still queued for a client that reads nothing:
 * the send deadline must still apply. The job had stopped the timer, and
 * the close path never armed it again, so the connection, its address's
 * slot and megabytes of queued ciphertext stayed as long as the client
 * liked. */
Test(edge, a_closing_answer_after_a_job_keeps_the_send_deadline, .init = prep, .fini = finish, .timeout = 120)
{
    start_with((const char *const[]){ "NOTES_REGISTRATION", "open", "NOTES_TIMEOUT_SEND", "1",
                                      "NOTES_RATE_LIMITS", "off", NULL });
    char *token = user_with_big_notes("big", 140);   /* an export of ~8.4 MB: more than the kernel buffers hold */

    static const char nobody[] = "{\"username\":\"nobody-at-all\",\"password\":\"not-a-password\"}";
    char *two = fmt("GET /v1/me/export HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer %s\r\n\r\n"
                    "POST /v1/auth/login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                    "Connection: close\r\nContent-Length: %zu\r\n\r\n%s", token, strlen(nobody), nobody);
    struct rawconn c;
    tls_open(&c);
    cr_assert_eq(raw_send_str(&c, two, 5000), RAW_OK);
    pace_ms(3000);   /* well past the 1 s send timeout, reading nothing */
    struct rawbuf out = { 0 };
    enum raw_io e = raw_read_until_close(&c, &out, 10000);
    cr_assert_neq(e, RAW_TIMEOUT, "the connection is still open");
    cr_assert_null(strstr(out.p ? out.p : "", "HTTP/1.1 401"),
                   "both answers (%zu bytes) were kept for a client that read nothing for 3 s (send timeout 1 s)",
                   out.len);
    rawbuf_free(&out);
    raw_close(&c);
    free(two);
    free(token);
}

/* Bare line breaks before a request line start no message (RFC 9112 §2.2
 * lets a server skip them), so the redirect listener's connection stays
 * idle; they must not restart its keep-alive deadline each time, or one
 * byte every few seconds holds a connection (and its address's slot)
 * forever. The TLS side already counted idleness from the last answer. */
Test(edge, bare_line_breaks_do_not_extend_the_redirect_keepalive, .init = prep, .fini = finish, .timeout = 60)
{
    start_with((const char *const[]){ "NOTES_REDIRECT_LISTEN", "127.0.0.1:0", "NOTES_TIMEOUT_KEEPALIVE", "2",
                                      NULL });
    cr_assert_gt(srv.redirect_port, 0, "no redirect port announced");
    struct rawconn c;
    cr_assert_eq(raw_tcp_connect(&c, srv.redirect_port), 0, "%s", c.err);
    long start = raw_now_ms();
    enum raw_io e = RAW_OK;
    /* A line break every 500 ms for up to 6 s (three keep-alive periods),
     * watching for the server to end the connection. */
    while (e == RAW_OK && raw_now_ms() - start < 6000) {
        char b[64];
        size_t got = 0;
        e = raw_send(&c, "\n", 1, 1000, NULL);
        if (e == RAW_OK)
            e = raw_recv(&c, b, sizeof(b), &got, 500);
        if (e == RAW_TIMEOUT)
            e = RAW_OK;   /* nothing to read yet: still open */
    }
    long lasted = raw_now_ms() - start;
    cr_log_info("redirect keep-alive: %s after %ld ms of line breaks", raw_io_name(e), lasted);
    cr_assert_neq(e, RAW_OK, "the connection was still open after %ld ms of line breaks (keep-alive 2 s)", lasted);
    cr_assert_lt(lasted, 4000, "the connection lasted %ld ms (keep-alive 2 s)", lasted);
    raw_close(&c);
}

/* Large answers queued for clients that do not read them are bounded in
 * total (NOTES_MAX_OUTPUT_MIB), not only per connection: past the bound a
 * large answer is refused with 503 and Retry-After while the queued ones
 * drain, instead of each connection pinning up to 16 MiB (about 1 GB for
 * one address's 64 connections). */
Test(edge, queued_large_answers_are_bounded_in_total, .init = prep, .fini = finish, .timeout = 180)
{
    start_with((const char *const[]){ "NOTES_REGISTRATION", "open", "NOTES_RATE_LIMITS", "off",
                                      "NOTES_MAX_OUTPUT_MIB", "8", NULL });
    char *token = user_with_big_notes("pin", 100);   /* an export of ~6 MB */

    char *get = fmt("GET /v1/me/export HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer %s\r\n\r\n", token);
    enum { N = 6 };
    struct rawconn c[N];
    int busy = 0, ok = 0;
    for (int i = 0; i < N; i++) {
        tls_open(&c[i]);
        cr_assert_eq(raw_send_str(&c[i], get, 5000), RAW_OK);
        /* Readiness: the status line of this answer (a few bytes read). */
        char head[16];
        size_t got = 0, have = 0;
        while (have < 12) {
            cr_assert_eq(raw_recv(&c[i], head + have, 12 - have, &got, 10000), RAW_OK, "no answer %d", i);
            have += got;
        }
        head[12] = 0;
        busy += strncmp(head, "HTTP/1.1 503", 12) == 0;
        ok += strncmp(head, "HTTP/1.1 200", 12) == 0;
    }
    cr_log_info("exports left unread: %d answered 200, %d refused 503", ok, busy);
    cr_assert_geq(ok, 1, "not even one export was answered");
    cr_assert_geq(busy, 1, "%d exports of ~6 MB were queued for clients reading nothing (bound 8 MiB)", ok);
    for (int i = 0; i < N; i++)
        raw_close(&c[i]);
    /* Their queued bytes leave the count when they close: a reader that
     * retries as told gets its export. */
    const char *hdrs[] = { NULL, NULL };
    char *auth = fmt("Authorization: Bearer %s", token);
    hdrs[0] = auth;
    struct request_opts o = { .headers = hdrs };
    long status = 0;
    for (int i = 0; i < 50 && status != 200; i++) {
        struct response r;
        harness_request(&srv, "/v1/me/export", &o, &r);
        status = r.status;
        cr_assert(status == 200 || status == 503, "export: %ld", status);
        response_free(&r);
        if (status != 200)
            pace_ms(100);
    }
    cr_assert_eq(status, 200, "the closed connections' output was never released from the count");
    free(auth);
    free(get);
    free(token);
}
