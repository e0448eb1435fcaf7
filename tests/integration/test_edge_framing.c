/*
 * Edge tests of HTTP framing over TLS: the framing refusals of
 * tests/test_http_*.c and the llhttp CVE patterns through the event loop (one
 * 400, then close, and a request behind the bad one is never answered), how
 * refusals are audited; pipelining and persistence (order, audit lines
 * before answers, records split anywhere, Connection: close, HTTP/1.0).
 * Fixtures and helpers: edge_support.h.
 */
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "edge_support.h"

/* ---- framing corpus over TLS ------------------------------------------------ */

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
    char *req = harness_fmt("POST /v1/notes HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
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
            char *line = harness_fmt("\n[%s] input \"%s\": %s\n", fc->name, shown, why);
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

/* Those naming `event` and `status` ("status":N; 0 for any). */
static size_t audit_lines(const char *event, int status, unsigned long long *sum)
{
    char *want_st = status ? harness_fmt("\"status\":%d,", status) : harness_fmt("%s", "");
    size_t n = harness_audit_lines(&srv, event, want_st, sum);
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
    char *path = harness_fmt("%s/audit.log", harness_getenv(&srv, "NOTES_AUDIT_DIR"));
    size_t len = 0;
    char *log = harness_read_file(path, &len);
    cr_assert_null(strstr(log, "zqx-framing-canary"), "request bytes reached the audit log");
    cr_assert_lt(strstr(log, "http.rejected"), strstr(log, "server.stop"), "server.stop is the last word");
    free(log);
    free(path);
}

/* ---- pipelining and persistence ----------------------------------------------- */

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

/* NOTES_TLS_MAX_RECORDS: once the server has written that many records
 * under a connection's keys, the next answer says Connection: close and the
 * connection ends (mbedTLS never updates the keys; TLS 1.3 bounds AES-GCM
 * records per key). A /healthz answer is one record. */
Test(edge, a_connection_ends_after_its_record_limit, .init = prep, .fini = finish)
{
    start_with((const char *const[]){ "NOTES_TLS_MAX_RECORDS", "3", NULL });
    struct rawconn c;
    tls_open(&c);
    for (int i = 1; i <= 4; i++) {
        struct raw_resp r;
        exchange(&c, GOOD, sizeof(GOOD) - 1, &r);
        cr_assert_eq(r.status, 200, "answer %d: %d", i, r.status);
        char *conn = raw_header(&r, "Connection");
        if (i <= 3)
            cr_assert_null(conn, "answer %d closes before the limit: %s", i, conn);
        else
            cr_assert(conn && strcmp(conn, "close") == 0, "the answer past the limit does not close:\n%s", r.head);
        free(conn);
        raw_resp_free(&r);
    }
    struct rawbuf rest = { 0 };
    enum raw_io end = raw_read_until_close(&c, &rest, 5000);
    cr_assert_eq(end, RAW_CLOSED, "the connection did not end after its record limit: %s", raw_io_name(end));
    cr_assert_eq(rest.len, 0, "more came after the closing answer:\n%s", rest.p);
    rawbuf_free(&rest);
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
    char *path = harness_fmt("%s/audit.log", harness_getenv(&srv, "NOTES_AUDIT_DIR"));
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
        char *want = harness_fmt("\"request_id\":\"%s\"", id);
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
