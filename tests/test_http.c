/*
 * Unit tests for http.c (with router.c as the dispatcher where useful):
 * raw request bytes in through http_conn_feed(), raw response bytes out of
 * http_conn_output(). No sockets, no TLS.
 *
 * Covered: the security headers on every kind of response, problem
 * documents, HEAD, 404/405/query refusals, pipelining and byte-by-byte
 * input, every framing refusal (and that nothing after a refused request is
 * ever parsed), the size limits at their edges, connection persistence and
 * draining.
 */
#include <criterion/criterion.h>

#include <ctype.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cJSON.h>

#include "buf.h"
#include "crypto.h"
#include "err.h"
#include "http.h"
#include "router.h"

/* ---- fixture --------------------------------------------------------------- */

static void setup(void)
{
    cr_assert_eq(crypto_init(), 0, "crypto_init failed");
}

TestSuite(http, .init = setup);

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

static void copy_slice(char *dst, size_t cap, struct slice s)
{
    size_t n = s.len < cap - 1 ? s.len : cap - 1;
    if (n)
        memcpy(dst, s.p, n);
    dst[n] = 0;
}

static void record_dispatch(void *arg, const struct http_request *req, struct http_response *res)
{
    struct recorder *rec = arg;
    size_t seq = rec->n;
    if (rec->n < MAX_REQS) {
        struct rec_req *r = &rec->reqs[rec->n];
        memset(r, 0, sizeof(*r));
        r->method = req->method;
        copy_slice(r->target, sizeof(r->target), req->target);
        r->target_len = req->target.len;
        copy_slice(r->path, sizeof(r->path), req->path);
        copy_slice(r->query, sizeof(r->query), req->query);
        r->n_headers = req->n_headers;
        uintptr_t lo = (uintptr_t)req->target.p;
        for (size_t i = 0; i < req->n_headers && i < MAX_HDRS; i++) {
            copy_slice(r->hname[i], sizeof(r->hname[i]), req->headers[i].name);
            copy_slice(r->hvalue[i], sizeof(r->hvalue[i]), req->headers[i].value);
            uintptr_t np = (uintptr_t)req->headers[i].name.p;
            r->header_in_head[i] = np >= lo + req->target.len && np < lo + 65536;
        }
        copy_slice(r->body, sizeof(r->body), req->body);
        r->body_len = req->body.len;
        r->keep_alive = req->keep_alive;
        snprintf(r->id, sizeof(r->id), "%s", req->id ? req->id : "");
        const struct http_header *host = http_find_header(req, "host");
        r->has_host = host != NULL;
        if (host)
            copy_slice(r->host, sizeof(r->host), host->value);
    }
    rec->n++;
    if (rec->route) {
        router_dispatch(NULL, req, res);
        return;
    }
    char json[64];
    int n = snprintf(json, sizeof(json), "{\"seq\":%zu}", seq);
    cr_assert_eq(http_set_json(res, 200, json, (size_t)n), 0);
}

static const struct rec_req *find_rec_header_owner(const struct rec_req *r, const char *name,
                                                   const char **value)
{
    for (size_t i = 0; i < r->n_headers && i < MAX_HDRS; i++)
        if (strcasecmp(r->hname[i], name) == 0) {
            *value = r->hvalue[i];
            return r;
        }
    return NULL;
}

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

/* Count header lines called `name`; copy the first one's value to `val`. */
static size_t hdr_find(const struct resp *r, const char *name, char *val, size_t vcap)
{
    size_t count = 0, nl = strlen(name);
    const char *line = strstr(r->head, "\r\n");
    while (line && line[2]) {
        line += 2;
        const char *eol = strstr(line, "\r\n");
        if (!eol)
            break;
        const char *colon = memchr(line, ':', (size_t)(eol - line));
        if (colon && (size_t)(colon - line) == nl && strncasecmp(line, name, nl) == 0) {
            if (count == 0 && val) {
                const char *v = colon + 1;
                if (*v == ' ')
                    v++;
                size_t n = (size_t)(eol - v);
                if (n >= vcap)
                    n = vcap - 1;
                memcpy(val, v, n);
                val[n] = 0;
            }
            count++;
        }
        line = eol;
    }
    return count;
}

static size_t hdr_count(const struct resp *r, const char *name)
{
    return hdr_find(r, name, NULL, 0);
}

/* The single value of `name` (asserting it appears exactly once). */
static const char *hdr_one(const struct resp *r, const char *name)
{
    static char v[8][512];
    static unsigned slot;
    char *out = v[slot++ % 8];
    size_t n = hdr_find(r, name, out, sizeof(v[0]));
    cr_assert_eq(n, 1, "header %s appears %zu times, want once, in:\n%s", name, n, r->head);
    return out;
}

/* Split the output into responses. Bit i of head_mask: response i answers a
 * HEAD request and so has no body despite its Content-Length. */
static struct resps *parse_out(const struct buf *out, unsigned head_mask)
{
    struct resps *rs = calloc(1, sizeof(*rs));
    cr_assert_not_null(rs);
    const char *p = (const char *)out->data;
    size_t left = out->len;
    while (left > 0) {
        cr_assert_lt(rs->n, MAX_RESP, "too many responses");
        struct resp *r = &rs->r[rs->n];
        cr_assert(left >= 9 && memcmp(p, "HTTP/1.1 ", 9) == 0,
                  "response %zu does not start with a status line: %.*s", rs->n,
                  (int)(left < 80 ? left : 80), p);
        const char *end = memmem(p, left, "\r\n\r\n", 4);
        cr_assert_not_null(end, "response %zu has no end of headers", rs->n);
        size_t hl = (size_t)(end - p) + 2;
        cr_assert_lt(hl, sizeof(r->head));
        memcpy(r->head, p, hl);
        r->head[hl] = 0;
        r->status = atoi(p + 9);
        p += hl + 2;
        left -= hl + 2;
        char v[64];
        if (!(head_mask & (1u << rs->n)) && hdr_find(r, "Content-Length", v, sizeof(v)) > 0) {
            size_t cl = strtoul(v, NULL, 10);
            cr_assert_leq(cl, left, "response %zu: Content-Length %zu but only %zu bytes", rs->n, cl,
                          left);
            cr_assert_lt(cl, sizeof(r->body));
            memcpy(r->body, p, cl);
            r->body[cl] = 0;
            r->body_len = cl;
            p += cl;
            left -= cl;
        }
        rs->n++;
    }
    return rs;
}

/* ---- assertions on responses ------------------------------------------------ */

static void assert_security_headers(const struct resp *r, const char *content_type)
{
    static const char *const want[][2] = {
        { "Strict-Transport-Security", "max-age=63072000; includeSubDomains" },
        { "X-Content-Type-Options", "nosniff" },
        { "Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'" },
        { "X-Frame-Options", "DENY" },
        { "Referrer-Policy", "no-referrer" },
        { "Cache-Control", "no-store" },
        { "Cross-Origin-Resource-Policy", "same-origin" },
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        cr_assert_str_eq(hdr_one(r, want[i][0]), want[i][1], "header %s in:\n%s", want[i][0], r->head);
    if (content_type)
        cr_assert_str_eq(hdr_one(r, "Content-Type"), content_type, "in:\n%s", r->head);
    cr_assert_eq(hdr_count(r, "Server"), 0, "Server header present:\n%s", r->head);
    cr_assert_eq(hdr_count(r, "X-Powered-By"), 0, "X-Powered-By header present:\n%s", r->head);
    cr_assert_eq(hdr_count(r, "Date"), 1);
    const char *id = hdr_one(r, "X-Request-Id");
    cr_assert_eq(strlen(id), HTTP_ID_LEN, "request id '%s'", id);
    for (const char *c = id; *c; c++)
        cr_assert(isxdigit((unsigned char)*c) && !isupper((unsigned char)*c), "request id '%s'", id);
}

/* An RFC 9457 problem document with the given status (and field, if any). */
static void assert_problem(const struct resp *r, int status, const char *field)
{
    cr_assert_eq(r->status, status, "status %d, want %d:\n%s%s", r->status, status, r->head, r->body);
    assert_security_headers(r, "application/problem+json");
    cJSON *j = cJSON_ParseWithLength(r->body, r->body_len);
    cr_assert_not_null(j, "problem body is not JSON: %s", r->body);
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(j, "type");
    const cJSON *title = cJSON_GetObjectItemCaseSensitive(j, "title");
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(j, "status");
    const cJSON *detail = cJSON_GetObjectItemCaseSensitive(j, "detail");
    const cJSON *rid = cJSON_GetObjectItemCaseSensitive(j, "request_id");
    cr_assert(cJSON_IsString(type) && strcmp(type->valuestring, "about:blank") == 0, "%s", r->body);
    cr_assert(cJSON_IsString(title) && title->valuestring[0], "%s", r->body);
    cr_assert(cJSON_IsNumber(st) && st->valueint == status, "%s", r->body);
    cr_assert(cJSON_IsString(detail) && detail->valuestring[0], "%s", r->body);
    cr_assert(cJSON_IsString(rid), "%s", r->body);
    cr_assert_str_eq(rid->valuestring, hdr_one(r, "X-Request-Id"));
    if (field) {
        const cJSON *f = cJSON_GetObjectItemCaseSensitive(j, "field");
        cr_assert(cJSON_IsString(f) && strcmp(f->valuestring, field) == 0, "want field %s: %s", field,
                  r->body);
    }
    cJSON_Delete(j);
}

static void assert_connection_close(const struct resp *r)
{
    cr_assert_str_eq(hdr_one(r, "Connection"), "close", "in:\n%s", r->head);
}

/* ---- feeding ---------------------------------------------------------------- */

static const char GOOD[] = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";

static void feed(struct http_conn *h, const void *p, size_t n)
{
    cr_assert_eq(http_conn_feed(h, p, n), 0, "http_conn_feed failed");
}

static void feed_str(struct http_conn *h, const char *s)
{
    feed(h, s, strlen(s));
}

static struct http_conn *router_conn(void)
{
    struct http_conn *h = http_conn_new(&http_default_limits, router_dispatch, NULL);
    cr_assert_not_null(h);
    return h;
}

static struct http_conn *rec_conn(const struct http_limits *lim, struct recorder *rec)
{
    struct http_conn *h = http_conn_new(lim, record_dispatch, rec);
    cr_assert_not_null(h);
    return h;
}

/*
 * Feed `bad` (n bytes) followed by a valid request in one call. Expect exactly
 * one response: a `status` problem that closes the connection; the handler
 * never runs, and nothing fed later is answered.
 */
static void expect_refused_lim(const struct http_limits *lim, const void *bad, size_t n, int status,
                               const char *field)
{
    struct recorder rec = { .route = true };
    struct http_conn *h = rec_conn(lim, &rec);
    size_t total = n + sizeof(GOOD) - 1;
    uint8_t *in = malloc(total);
    cr_assert_not_null(in);
    memcpy(in, bad, n);
    memcpy(in + n, GOOD, sizeof(GOOD) - 1);
    feed(h, in, total);
    free(in);

    struct resps *rs = parse_out(http_conn_output(h), 0);
    cr_assert_eq(rs->n, 1, "want exactly one response, got %zu for input:\n%.*s", rs->n, (int)n,
                 (const char *)bad);
    assert_problem(&rs->r[0], status, field);
    assert_connection_close(&rs->r[0]);
    cr_assert(http_conn_should_close(h));
    cr_assert_eq(rec.n, 0, "the handler ran %zu times for a refused request", rec.n);

    /* Nothing is parsed after the refusal, however much more arrives. */
    size_t before = http_conn_output(h)->len;
    feed_str(h, GOOD);
    cr_assert_eq(http_conn_output(h)->len, before, "bytes after a refusal were answered");
    cr_assert_eq(rec.n, 0);
    free(rs);
    http_conn_free(h);
}

static void expect_refused(const char *bad, size_t n, const char *field)
{
    expect_refused_lim(&http_default_limits, bad, n, 400, field);
}

#define REFUSED(lit) expect_refused((lit), sizeof(lit) - 1, NULL)
#define REFUSED_FIELD(lit, f) expect_refused((lit), sizeof(lit) - 1, (f))

/* ---- /healthz, security headers, problems ----------------------------------- */

Test(http, healthz_get_answers_ok_with_every_security_header)
{
    struct http_conn *h = router_conn();
    feed_str(h, GOOD);
    struct resps *rs = parse_out(http_conn_output(h), 0);
    cr_assert_eq(rs->n, 1);
    const struct resp *r = &rs->r[0];
    cr_assert_eq(r->status, 200);
    cr_assert(strncmp(r->head, "HTTP/1.1 200 OK\r\n", 17) == 0, "%s", r->head);
    assert_security_headers(r, "application/json; charset=utf-8");
    cr_assert_str_eq(hdr_one(r, "Content-Length"), "15");
    cr_assert_eq(r->body_len, 15);
    cr_assert_str_eq(r->body, "{\"status\":\"ok\"}");
    cr_assert_eq(hdr_count(r, "Connection"), 0, "HTTP/1.1 keep-alive needs no Connection header");
    cr_assert_not(http_conn_should_close(h));
    cr_assert_not(http_conn_in_request(h));
    free(rs);
    http_conn_free(h);
}

/* Without the application behind it, a protected route fails closed, with
 * or without a token (a token once reached the token lookup through a NULL
 * app). */
Test(http, protected_route_without_an_app_is_503_not_a_crash)
{
    struct http_conn *h = router_conn();
    feed_str(h, "GET /v1/me HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                "nt_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n");
    struct resps *rs = parse_out(http_conn_output(h), 0);
    cr_assert_eq(rs->n, 1);
    assert_problem(&rs->r[0], 503, NULL);
    free(rs);
    http_conn_free(h);
}

Test(http, unknown_path_is_404_problem_with_security_headers)
{
    struct http_conn *h = router_conn();
    feed_str(h, "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n");
    struct resps *rs = parse_out(http_conn_output(h), 0);
    cr_assert_eq(rs->n, 1);
    assert_problem(&rs->r[0], 404, NULL);
    cr_assert(strncmp(rs->r[0].head, "HTTP/1.1 404 Not Found\r\n", 24) == 0);
    cr_assert_not(http_conn_should_close(h), "a 404 does not end the connection");
    free(rs);
    http_conn_free(h);
}

Test(http, trailing_slash_and_double_slash_are_different_unknown_paths)
{
    struct http_conn *h = router_conn();
    feed_str(h, "GET /healthz/ HTTP/1.1\r\nHost: x\r\n\r\nGET //healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    struct resps *rs = parse_out(http_conn_output(h), 0);
    cr_assert_eq(rs->n, 2);
    assert_problem(&rs->r[0], 404, NULL);
    assert_problem(&rs->r[1], 404, NULL);
    free(rs);
    http_conn_free(h);
}

Test(http, framing_error_400_carries_security_headers_and_problem_body)
{
    struct http_conn *h = router_conn();
    feed_str(h, "GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n");
    struct resps *rs = parse_out(http_conn_output(h), 0);
    cr_assert_eq(rs->n, 1);
    assert_problem(&rs->r[0], 400, NULL);
    cr_assert(strncmp(rs->r[0].head, "HTTP/1.1 400 Bad Request\r\n", 26) == 0);
    assert_connection_close(&rs->r[0]);
    cr_assert(http_conn_should_close(h));
    free(rs);
    http_conn_free(h);
}

Test(http, head_healthz_sends_headers_and_content_length_but_no_body)
{
    struct http_conn *h = router_conn();
    feed_str(h, "HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    const struct buf *out = http_conn_output(h);
    cr_assert_gt(out->len, 4);
    cr_assert(memcmp(out->data + out->len - 4, "\r\n\r\n", 4) == 0,
              "a HEAD response must end right after its headers");
    struct resps *rs = parse_out(out, 1u);
    cr_assert_eq(rs->n, 1);
    cr_assert_eq(rs->r[0].status, 200);
    assert_security_headers(&rs->r[0], "application/json; charset=utf-8");
    cr_assert_str_eq(hdr_one(&rs->r[0], "Content-Length"), "15");
    free(rs);
    http_conn_free(h);
}

Test(http, head_then_get_pipelined_keeps_framing)
{
    struct http_conn *h = router_conn();
    feed_str(h, "HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    struct resps *rs = parse_out(http_conn_output(h), 1u);
    cr_assert_eq(rs->n, 2);
    cr_assert_eq(rs->r[0].status, 200);
    cr_assert_eq(rs->r[1].status, 200);
    cr_assert_str_eq(rs->r[1].body, "{\"status\":\"ok\"}");
    free(rs);
    http_conn_free(h);
}

Test(http, post_healthz_is_405_with_allow_get_head)
{
    struct http_conn *h = router_conn();
    feed_str(h, "POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
    struct resps *rs = parse_out(http_conn_output(h), 0);
    cr_assert_eq(rs->n, 1);
    assert_problem(&rs->r[0], 405, NULL);
    cr_assert_str_eq(hdr_one(&rs->r[0], "Allow"), "GET, HEAD");
    cr_assert_not(http_conn_should_close(h));
    free(rs);
    http_conn_free(h);
}

Test(http, unknown_method_on_healthz_is_405)
{
    struct http_conn *h = router_conn();
    feed_str(h, "PROPFIND /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    struct resps *rs = parse_out(http_conn_output(h), 0);
    cr_assert_eq(rs->n, 1);
    assert_problem(&rs->r[0], 405, NULL);
    cr_assert_str_eq(hdr_one(&rs->r[0], "Allow"), "GET, HEAD");
    free(rs);
    http_conn_free(h);
}

Test(http, query_string_on_healthz_is_400_naming_query)
{
    struct http_conn *h = router_conn();
    feed_str(h, "GET /healthz?x=1 HTTP/1.1\r\nHost: x\r\n\r\n");
    struct resps *rs = parse_out(http_conn_output(h), 0);
    cr_assert_eq(rs->n, 1);
    assert_problem(&rs->r[0], 400, "query");
    cr_assert_not(http_conn_should_close(h), "a rejected query is not a framing error");
    free(rs);
    http_conn_free(h);
}

Test(http, empty_query_string_on_healthz_is_accepted)
{
    /* "?" with nothing after it: the query slice is empty, so /healthz answers. */
    struct http_conn *h = router_conn();
    feed_str(h, "GET /healthz? HTTP/1.1\r\nHost: x\r\n\r\n");
    struct resps *rs = parse_out(http_conn_output(h), 0);
    cr_assert_eq(rs->n, 1);
    cr_assert_eq(rs->r[0].status, 200);
    free(rs);
    http_conn_free(h);
}

Test(http, problem_request_id_matches_header_and_ids_differ_per_request)
{
    struct http_conn *h = router_conn();
    feed_str(h, "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n");
    struct resps *rs = parse_out(http_conn_output(h), 0);
    cr_assert_eq(rs->n, 2);
    assert_problem(&rs->r[0], 404, NULL);
    assert_problem(&rs->r[1], 404, NULL);
    char a[64], b[64];
    snprintf(a, sizeof(a), "%s", hdr_one(&rs->r[0], "X-Request-Id"));
    snprintf(b, sizeof(b), "%s", hdr_one(&rs->r[1], "X-Request-Id"));
    cr_assert_str_neq(a, b);
    free(rs);
    http_conn_free(h);
}

/* ---- what the handler is given ---------------------------------------------- */

Test(http, handler_sees_method_path_query_headers_and_body)
{
    struct recorder rec = { 0 };
    struct http_conn *h = rec_conn(&http_default_limits, &rec);
    feed_str(h, "POST /notes/7?a=1&b=2 HTTP/1.1\r\nHost: example.com:8443\r\n"
                "X-Thing:   spaced value\r\nContent-Length: 5\r\n\r\nhello");
    cr_assert_eq(rec.n, 1);
    const struct rec_req *r = &rec.reqs[0];
    cr_assert_eq(r->method, HTTP_M_POST);
    cr_assert_str_eq(r->target, "/notes/7?a=1&b=2");
    cr_assert_str_eq(r->path, "/notes/7");
    cr_assert_str_eq(r->query, "a=1&b=2");
    cr_assert_eq(r->n_headers, 3);
    cr_assert_str_eq(r->hname[0], "Host");
    cr_assert_str_eq(r->hvalue[0], "example.com:8443");
    cr_assert_str_eq(r->hname[1], "X-Thing");
    cr_assert_str_eq(r->hvalue[1], "spaced value", "leading OWS is not part of a value");
    cr_assert_str_eq(r->hname[2], "Content-Length");
    cr_assert_str_eq(r->hvalue[2], "5");
    cr_assert_eq(r->body_len, 5);
    cr_assert_str_eq(r->body, "hello");
    cr_assert(r->keep_alive);
    cr_assert_eq(strlen(r->id), HTTP_ID_LEN);
    struct resps *rs = parse_out(http_conn_output(h), 0);
    cr_assert_eq(rs->n, 1);
    cr_assert_str_eq(hdr_one(&rs->r[0], "X-Request-Id"), r->id);
    assert_security_headers(&rs->r[0], "application/json; charset=utf-8");
    free(rs);
    http_conn_free(h);
}

/* RFC 9110 §5.5: a field value excludes leading and trailing whitespace. */
Test(http, trailing_whitespace_is_not_part_of_header_value)
{
    struct recorder rec = { 0 };
    struct http_conn *h = rec_conn(&http_default_limits, &rec);
    feed_str(h, "GET /x HTTP/1.1\r\nHost: x\r\nX-Thing: value \t \r\n\r\n");
    cr_assert_eq(rec.n, 1);
    cr_assert_str_eq(rec.reqs[0].hvalue[1], "value", "value is '%s'", rec.reqs[0].hvalue[1]);
    http_conn_free(h);
}

/* The visible effect of the above: a valid Host with trailing OWS is refused. */
Test(http, host_with_trailing_whitespace_is_accepted)
{
    struct http_conn *h = router_conn();
    feed_str(h, "GET /healthz HTTP/1.1\r\nHost: x \r\n\r\n");
    struct resps *rs = parse_out(http_conn_output(h), 0);
    cr_assert_eq(rs->n, 1);
    cr_assert_eq(rs->r[0].status, 200, "status %d: %s", rs->r[0].status, rs->r[0].body);
    free(rs);
    http_conn_free(h);
}

Test(http, chunked_body_is_decoded)
{
    struct recorder rec = { 0 };
    struct http_conn *h = rec_conn(&http_default_limits, &rec);
    feed_str(h, "POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                "5\r\nhello\r\n7\r\n, world\r\n0\r\n\r\n");
    cr_assert_eq(rec.n, 1);
    cr_assert_eq(rec.reqs[0].body_len, 12);
    cr_assert_str_eq(rec.reqs[0].body, "hello, world");
    cr_assert_not(http_conn_should_close(h));
    http_conn_free(h);
}

Test(http, empty_header_value_does_not_merge_with_next_field)
{
    struct recorder rec = { 0 };
    struct http_conn *h = rec_conn(&http_default_limits, &rec);
    feed_str(h, "GET /x HTTP/1.1\r\nHost: x\r\nX-Empty:\r\nX-Next: v\r\n\r\n");
    cr_assert_eq(rec.n, 1);
    const struct rec_req *r = &rec.reqs[0];
    const char *v = NULL;
    cr_assert_eq(r->n_headers, 3, "got %zu headers: [%s] [%s] [%s]", r->n_headers, r->hname[0],
                 r->hname[1], r->hname[2]);
    cr_assert_not_null(find_rec_header_owner(r, "X-Empty", &v), "X-Empty lost");
    cr_assert_str_eq(v, "");
    cr_assert_not_null(find_rec_header_owner(r, "X-Next", &v), "X-Next lost");
    cr_assert_str_eq(v, "v");
    http_conn_free(h);
}

Test(http, header_lookup_is_case_insensitive)
{
    /* The recorder looks "host" up with http_find_header. */
    struct recorder rec = { 0 };
    struct http_conn *h = rec_conn(&http_default_limits, &rec);
    feed_str(h, "GET /x HTTP/1.1\r\nhOsT: x\r\n\r\n");
    cr_assert_eq(rec.n, 1);
    cr_assert(rec.reqs[0].has_host);
    cr_assert_str_eq(rec.reqs[0].host, "x");
    http_conn_free(h);
}

/*
 * Trailer fields of a chunked body go through the same header callbacks
 * after on_headers_complete has already built req->headers[], so they are
 * counted in n_headers without their slices ever being built, and their
 * bytes are appended to the buffer the earlier slices point into.
 */
Test(http, chunked_trailer_fields_do_not_corrupt_request_headers)
{
    struct recorder rec = { 0 };
    struct http_conn *h = rec_conn(&http_default_limits, &rec);
    char req[1024];
    char big[301];
    memset(big, 'v', 300);
    big[300] = 0;
    snprintf(req, sizeof(req),
             "POST /t HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
             "5\r\nhello\r\n0\r\nX-Trailer: %s\r\n\r\n", big);
    feed_str(h, req);
    cr_assert_eq(rec.n, 1);
    const struct rec_req *r = &rec.reqs[0];
    cr_assert_str_eq(r->body, "hello");
    for (size_t i = 0; i < r->n_headers && i < MAX_HDRS; i++)
        cr_assert(r->hname[i][0] != 0, "header %zu of %zu has an empty name (unbuilt slice)", i,
                  r->n_headers);
    cr_assert_str_eq(r->hname[0], "Host", "first header after a trailer: '%s'", r->hname[0]);
    cr_assert_str_eq(r->hvalue[0], "x");
    cr_assert_str_eq(r->hname[1], "Transfer-Encoding");
    for (size_t i = 0; i < r->n_headers && i < MAX_HDRS; i++)
        cr_assert(r->header_in_head[i],
                  "header %zu points outside the live request buffer (stale after realloc)", i);
    http_conn_free(h);
}

/* ---- pipelining and fragmentation -------------------------------------------- */

Test(http, two_pipelined_requests_in_one_feed_are_answered_in_order)
{
    struct http_conn *h = router_conn();
    feed_str(h, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /missing HTTP/1.1\r\nHost: x\r\n\r\n");
    struct resps *rs = parse_out(http_conn_output(h), 0);
    cr_assert_eq(rs->n, 2);
    cr_assert_eq(rs->r[0].status, 200);
    cr_assert_str_eq(rs->r[0].body, "{\"status\":\"ok\"}");
    assert_problem(&rs->r[1], 404, NULL);
    cr_assert_not(http_conn_should_close(h));
    free(rs);
    http_conn_free(h);
}

Test(http, three_pipelined_requests_in_one_feed_are_answered_in_order)
{
    struct recorder rec = { 0 };
    struct http_conn *h = rec_conn(&http_default_limits, &rec);
    feed_str(h, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
                "POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
                "DELETE /c?q HTTP/1.1\r\nHost: x\r\n\r\n");
    cr_assert_eq(rec.n, 3);
    cr_assert_str_eq(rec.reqs[0].path, "/a");
    cr_assert_eq(rec.reqs[0].method, HTTP_M_GET);
    cr_assert_str_eq(rec.reqs[1].path, "/b");
    cr_assert_eq(rec.reqs[1].method, HTTP_M_POST);
    cr_assert_str_eq(rec.reqs[1].body, "abc");
    cr_assert_str_eq(rec.reqs[2].path, "/c");
    cr_assert_str_eq(rec.reqs[2].query, "q");
    cr_assert_eq(rec.reqs[2].method, HTTP_M_DELETE);
    cr_assert_eq(rec.reqs[2].body_len, 0, "a body must not leak into the next request");
    struct resps *rs = parse_out(http_conn_output(h), 0);
    cr_assert_eq(rs->n, 3);
    for (size_t i = 0; i < 3; i++) {
        char want[32];
        snprintf(want, sizeof(want), "{\"seq\":%zu}", i);
        cr_assert_str_eq(rs->r[i].body, want);
        cr_assert_str_eq(hdr_one(&rs->r[i], "X-Request-Id"), rec.reqs[i].id);
    }
    free(rs);
    http_conn_free(h);
}

Test(http, request_split_byte_by_byte_still_works)
{
    struct recorder rec = { 0 };
    struct http_conn *h = rec_conn(&http_default_limits, &rec);
    static const char first[] = "POST /split/path?k=v HTTP/1.1\r\nHost: split.example\r\n"
                                "X-Long-Header-Name: some longer value\r\nContent-Length: 11\r\n\r\n"
                                "hello world";
    static const char second[] = "GET /healthz HTTP/1.1\r\nHost: x\r\n"
                                 "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
    for (size_t i = 0; i + 1 < sizeof(first) - 1; i++) {
        feed(h, first + i, 1);
        cr_assert_eq(http_conn_output(h)->len, 0, "answered before the request was complete (byte %zu)", i);
        cr_assert(http_conn_in_request(h));
    }
    feed(h, first + sizeof(first) - 2, 1);
    cr_assert_eq(rec.n, 1);
    cr_assert_not(http_conn_in_request(h));
    for (size_t i = 0; i < sizeof(second) - 1; i++)
        feed(h, second + i, 1);
    cr_assert_eq(rec.n, 2);
    const struct rec_req *r = &rec.reqs[0];
    cr_assert_eq(r->method, HTTP_M_POST);
    cr_assert_str_eq(r->path, "/split/path");
    cr_assert_str_eq(r->query, "k=v");
    cr_assert_eq(r->n_headers, 3);
    cr_assert_str_eq(r->hname[0], "Host");
    cr_assert_str_eq(r->hvalue[0], "split.example");
    cr_assert_str_eq(r->hname[1], "X-Long-Header-Name");
    cr_assert_str_eq(r->hvalue[1], "some longer value");
    cr_assert_str_eq(r->hname[2], "Content-Length");
    cr_assert_str_eq(r->hvalue[2], "11");
    cr_assert_str_eq(r->body, "hello world");
    cr_assert_str_eq(rec.reqs[1].path, "/healthz");
    cr_assert_str_eq(rec.reqs[1].body, "abc");
    struct resps *rs = parse_out(http_conn_output(h), 0);
    cr_assert_eq(rs->n, 2);
    cr_assert_str_eq(rs->r[0].body, "{\"seq\":0}");
    cr_assert_str_eq(rs->r[1].body, "{\"seq\":1}");
    cr_assert_not(http_conn_should_close(h));
    free(rs);
    http_conn_free(h);
}

Test(http, output_can_be_drained_between_requests)
{
    struct http_conn *h = router_conn();
    feed_str(h, GOOD);
    struct buf *out = http_conn_output(h);
    cr_assert_gt(out->len, 0);
    buf_consume(out, out->len);
    feed_str(h, "GET /zzz HTTP/1.1\r\nHost: x\r\n\r\n");
    struct resps *rs = parse_out(out, 0);
    cr_assert_eq(rs->n, 1);
    assert_problem(&rs->r[0], 404, NULL);
    free(rs);
    http_conn_free(h);
}

Test(http, upgrade_request_is_answered_as_plain_http_and_next_request_parsed)
{
    struct http_conn *h = router_conn();
    feed_str(h, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
                "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    struct resps *rs = parse_out(http_conn_output(h), 0);
    cr_assert_eq(rs->n, 2, "got %zu responses", rs->n);
    cr_assert_eq(rs->r[0].status, 200);
    cr_assert_eq(rs->r[1].status, 200);
    cr_assert_eq(hdr_count(&rs->r[0], "Upgrade"), 0);
    free(rs);
    http_conn_free(h);
}

Test(http, leading_empty_lines_between_pipelined_requests_are_tolerated)
{
    /* RFC 9112 §2.2: a server SHOULD ignore at least one empty line before a request-line. */
    struct http_conn *h = router_conn();
    feed_str(h, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    struct resps *rs = parse_out(http_conn_output(h), 0);
    cr_assert_eq(rs->n, 2);
    cr_assert_eq(rs->r[1].status, 200);
    free(rs);
    http_conn_free(h);
}

/* ---- framing refusals -------------------------------------------------------- */

Test(http, rejects_content_length_with_transfer_encoding)
{
    REFUSED("POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
            "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
}

Test(http, rejects_transfer_encoding_before_content_length)
{
    REFUSED("POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
            "Content-Length: 5\r\n\r\n0\r\n\r\n");
}

Test(http, rejects_transfer_encoding_gzip_chunked)
{
    REFUSED("POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
            "0\r\n\r\n");
}

Test(http, rejects_transfer_encoding_other_than_chunked)
{
    REFUSED("POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\n\r\n");
}

Test(http, rejects_transfer_encoding_chunked_twice_on_two_lines)
{
    REFUSED("POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
            "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
}

Test(http, rejects_transfer_encoding_in_http10)
{
    REFUSED("POST /healthz HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
}

Test(http, rejects_two_different_content_lengths)
{
    REFUSED("POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"
            "hello!");
}

Test(http, rejects_content_length_with_plus_sign)
{
    REFUSED("POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\nhello");
}

Test(http, rejects_content_length_in_hex)
{
    REFUSED("POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0x10\r\n\r\n0123456789abcdef");
}

Test(http, rejects_content_length_with_inner_space)
{
    REFUSED("POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 1 0\r\n\r\n0123456789");
}

Test(http, rejects_content_length_list)
{
    REFUSED("POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\n\r\nhello");
}

Test(http, rejects_whitespace_before_colon)
{
    REFUSED("GET /healthz HTTP/1.1\r\nHost : x\r\n\r\n");
}

Test(http, rejects_obs_fold_continuation_line)
{
    REFUSED("GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: one\r\n two\r\n\r\n");
}

Test(http, rejects_whitespace_line_before_first_header)
{
    REFUSED("GET /healthz HTTP/1.1\r\n Host: x\r\nHost: x\r\n\r\n");
}

Test(http, rejects_bare_lf_line_endings)
{
    REFUSED("GET /healthz HTTP/1.1\nHost: x\n\n");
}

Test(http, rejects_bare_lf_after_headers_only)
{
    REFUSED("GET /healthz HTTP/1.1\r\nHost: x\r\n\n");
}

Test(http, rejects_bare_cr_in_request_line)
{
    REFUSED("GET /healthz HTTP/1.1\rHost: x\r\n\r\n");
}

Test(http, rejects_bare_cr_in_header_value)
{
    REFUSED("GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n");
}

Test(http, rejects_nul_in_header_value)
{
    REFUSED("GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\n\r\n");
}

Test(http, rejects_http11_without_host)
{
    REFUSED_FIELD("GET /healthz HTTP/1.1\r\n\r\n", "Host");
}

Test(http, rejects_two_host_headers)
{
    REFUSED_FIELD("GET /healthz HTTP/1.1\r\nHost: x\r\nHost: x\r\n\r\n", "Host");
}

Test(http, rejects_two_host_headers_in_http10)
{
    REFUSED_FIELD("GET /healthz HTTP/1.0\r\nHost: x\r\nhost: y\r\n\r\n", "Host");
}

Test(http, rejects_host_with_space)
{
    REFUSED_FIELD("GET /healthz HTTP/1.1\r\nHost: a b\r\n\r\n", "Host");
}

Test(http, rejects_host_with_non_numeric_port)
{
    REFUSED_FIELD("GET /healthz HTTP/1.1\r\nHost: x:port\r\n\r\n", "Host");
}

Test(http, rejects_host_with_port_above_65535)
{
    REFUSED_FIELD("GET /healthz HTTP/1.1\r\nHost: x:65536\r\n\r\n", "Host");
}

Test(http, rejects_host_with_empty_brackets)
{
    REFUSED_FIELD("GET /healthz HTTP/1.1\r\nHost: []\r\n\r\n", "Host");
}

Test(http, rejects_host_with_userinfo)
{
    REFUSED_FIELD("GET /healthz HTTP/1.1\r\nHost: user@x\r\n\r\n", "Host");
}

Test(http, rejects_empty_host)
{
    REFUSED_FIELD("GET /healthz HTTP/1.1\r\nHost:\r\n\r\n", "Host");
}

Test(http, accepts_host_forms_ipv4_ipv6_and_port)
{
    struct http_conn *h = router_conn();
    feed_str(h, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:8443\r\n\r\n"
                "GET /healthz HTTP/1.1\r\nHost: [::1]:443\r\n\r\n"
                "GET /healthz HTTP/1.1\r\nHost: notes.example.com\r\n\r\n");
    struct resps *rs = parse_out(http_conn_output(h), 0);
    cr_assert_eq(rs->n, 3);
    for (size_t i = 0; i < 3; i++)
        cr_assert_eq(rs->r[i].status, 200, "response %zu", i);
    free(rs);
    http_conn_free(h);
}

Test(http, rejects_http2_version)
{
    REFUSED("GET /healthz HTTP/2.0\r\nHost: x\r\n\r\n");
}

Test(http, rejects_http12_version)
{
    REFUSED("GET /healthz HTTP/1.2\r\nHost: x\r\n\r\n");
}

Test(http, rejects_http09_style_request)
{
    REFUSED("GET /\r\n");
}

Test(http, rejects_http09_style_request_followed_by_blank_line)
{
    REFUSED("GET /\r\n\r\n");
}

Test(http, rejects_absolute_form_target)
{
    REFUSED("GET http://x/ HTTP/1.1\r\nHost: x\r\n\r\n");
}

Test(http, rejects_authority_form_connect)
{
    REFUSED("CONNECT x:443 HTTP/1.1\r\nHost: x:443\r\n\r\n");
}

Test(http, rejects_invalid_method_token)
{
    REFUSED("G(T /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
}

Test(http, rejects_non_hex_chunk_size)
{
    REFUSED("POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            "zz\r\nhello\r\n0\r\n\r\n");
}

Test(http, rejects_chunk_size_overflow)
{
    REFUSED("POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            "ffffffffffffffffff\r\nhello\r\n0\r\n\r\n");
}

Test(http, rejects_missing_crlf_after_chunk_data)
{
    REFUSED("POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            "5\r\nhelloXX0\r\n\r\n");
}

Test(http, refusal_split_across_feeds_still_stops_parsing)
{
    struct recorder rec = { .route = true };
    struct http_conn *h = rec_conn(&http_default_limits, &rec);
    static const char bad[] = "POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
                              "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
    for (size_t i = 0; i < sizeof(bad) - 1; i++)
        feed(h, bad + i, 1);
    feed_str(h, GOOD);
    feed_str(h, GOOD);
    struct resps *rs = parse_out(http_conn_output(h), 0);
    cr_assert_eq(rs->n, 1);
    assert_problem(&rs->r[0], 400, NULL);
    cr_assert(http_conn_should_close(h));
    cr_assert_eq(rec.n, 0);
    free(rs);
    http_conn_free(h);
}

Test(http, refusal_after_good_request_keeps_first_response)
{
    struct recorder rec = { .route = true };
    struct http_conn *h = rec_conn(&http_default_limits, &rec);
    feed_str(h, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                "GET /healthz HTTP/1.1\r\nHost : x\r\n\r\n"
                "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    struct resps *rs = parse_out(http_conn_output(h), 0);
    cr_assert_eq(rs->n, 2);
    cr_assert_eq(rs->r[0].status, 200);
    assert_problem(&rs->r[1], 400, NULL);
    cr_assert_eq(rec.n, 1);
    cr_assert(http_conn_should_close(h));
    free(rs);
    http_conn_free(h);
}

/* OPTIONS * passes the framing checks (asterisk-form is allowed for OPTIONS,
 * RFC 9112 §3.2.4); the router knows no "*" path, so it is answered 404 and
 * the connection stays usable. */
Test(http, options_asterisk_is_not_a_framing_error_and_gets_404)
{
    struct recorder rec = { .route = true };
    struct http_conn *h = rec_conn(&http_default_limits, &rec);
    feed_str(h, "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n");
    feed_str(h, GOOD);
    cr_assert_eq(rec.n, 2);
    cr_assert_eq(rec.reqs[0].method, HTTP_M_OPTIONS);
    cr_assert_str_eq(rec.reqs[0].path, "*");
    struct resps *rs = parse_out(http_conn_output(h), 0);
    cr_assert_eq(rs->n, 2);
    assert_problem(&rs->r[0], 404, NULL);
    cr_assert_eq(rs->r[1].status, 200);
    cr_assert_not(http_conn_should_close(h));
    free(rs);
    http_conn_free(h);
}

Test(http, asterisk_target_with_other_method_is_refused)
{
    REFUSED("GET * HTTP/1.1\r\nHost: x\r\n\r\n");
}

/* ---- limits ------------------------------------------------------------------ */

static const struct http_limits small = {
    .max_target = 64,
    .max_field = 64,
    .max_header_block = 256,
    .max_fields = 5,
    .max_body = 100,
};

static char *repeat(char c, size_t n)
{
    char *s = malloc(n + 1);
    cr_assert_not_null(s);
    memset(s, c, n);
    s[n] = 0;
    return s;
}

/* Feed `req` on a fresh small-limits connection; expect one 200 answer. */
static void expect_accepted_small(const char *req, struct recorder *rec)
{
    struct http_conn *h = rec_conn(&small, rec);
    feed_str(h, req);
    struct resps *rs = parse_out(http_conn_output(h), 0);
    cr_assert_eq(rs->n, 1, "got %zu responses", rs->n);
    cr_assert_eq(rs->r[0].status, 200, "status %d:\n%s%s", rs->r[0].status, rs->r[0].head, rs->r[0].body);
    cr_assert_not(http_conn_should_close(h));
    cr_assert_eq(rec->n, 1);
    free(rs);
    http_conn_free(h);
}

static void expect_refused_small(const char *req, int status)
{
    expect_refused_lim(&small, req, strlen(req), status, NULL);
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

Test(http, target_exactly_at_limit_is_accepted)
{
    char *tail = repeat('a', 63);   /* "/" + 63 = 64 */
    char *req = fmt("GET /%s HTTP/1.1\r\nHost: x\r\n\r\n", tail);
    struct recorder rec = { 0 };
    expect_accepted_small(req, &rec);
    cr_assert_eq(rec.reqs[0].target_len, 64);
    free(req);
    free(tail);
}

Test(http, target_over_limit_is_414)
{
    char *tail = repeat('a', 64);   /* 65 bytes */
    char *req = fmt("GET /%s HTTP/1.1\r\nHost: x\r\n\r\n", tail);
    expect_refused_small(req, 414);
    free(req);
    free(tail);
}

Test(http, target_over_limit_counts_the_query)
{
    char *tail = repeat('q', 60);   /* "/a?" + 60 = 63 ... + "zz" = 65 */
    char *req = fmt("GET /a?%szz HTTP/1.1\r\nHost: x\r\n\r\n", tail);
    expect_refused_small(req, 414);
    free(req);
    free(tail);
}

Test(http, target_over_limit_is_refused_before_request_line_ends)
{
    struct recorder rec = { 0 };
    struct http_conn *h = rec_conn(&small, &rec);
    char *tail = repeat('a', 200);
    feed_str(h, "GET /");
    feed_str(h, tail);   /* no " HTTP/1.1" yet */
    struct resps *rs = parse_out(http_conn_output(h), 0);
    cr_assert_eq(rs->n, 1, "an over-long target must be refused as it streams in");
    assert_problem(&rs->r[0], 414, NULL);
    cr_assert(http_conn_should_close(h));
    free(rs);
    free(tail);
    http_conn_free(h);
}

Test(http, header_field_exactly_at_limit_is_accepted)
{
    char *v = repeat('v', 61);   /* "X-A" (3) + 61 = 64 */
    char *req = fmt("GET / HTTP/1.1\r\nHost: x\r\nX-A: %s\r\n\r\n", v);
    struct recorder rec = { 0 };
    expect_accepted_small(req, &rec);
    cr_assert_eq(strlen(rec.reqs[0].hvalue[1]), 61);
    free(req);
    free(v);
}

Test(http, header_field_over_limit_is_431)
{
    char *v = repeat('v', 62);   /* 65 */
    char *req = fmt("GET / HTTP/1.1\r\nHost: x\r\nX-A: %s\r\n\r\n", v);
    expect_refused_small(req, 431);
    free(req);
    free(v);
}

Test(http, header_name_over_limit_is_431)
{
    char *n = repeat('N', 65);
    char *req = fmt("GET / HTTP/1.1\r\nHost: x\r\n%s: v\r\n\r\n", n);
    expect_refused_small(req, 431);
    free(req);
    free(n);
}

/* Host (4+1) + 3 x 64 + (3+56) = 256 bytes of names and values, 5 fields. */
static char *block_request(size_t last_value_len)
{
    char *v61 = repeat('v', 61);
    char *last = repeat('w', last_value_len);
    size_t cap = 1024;
    char *req = malloc(cap);
    cr_assert_not_null(req);
    snprintf(req, cap, "GET / HTTP/1.1\r\nHost: x\r\nX-A: %s\r\nX-B: %s\r\nX-C: %s\r\nX-D: %s\r\n\r\n",
             v61, v61, v61, last);
    free(v61);
    free(last);
    return req;
}

Test(http, header_block_exactly_at_limit_is_accepted)
{
    char *req = block_request(56);
    struct recorder rec = { 0 };
    expect_accepted_small(req, &rec);
    cr_assert_eq(rec.reqs[0].n_headers, 5);
    free(req);
}

Test(http, header_block_over_limit_is_431)
{
    char *req = block_request(57);   /* 257 bytes, every field <= 64, 5 fields */
    expect_refused_small(req, 431);
    free(req);
}

Test(http, header_count_exactly_at_limit_is_accepted)
{
    struct recorder rec = { 0 };
    expect_accepted_small("GET / HTTP/1.1\r\nHost: x\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n", &rec);
    cr_assert_eq(rec.reqs[0].n_headers, 5);
}

/* The field arrays grow as fields arrive (http.c): every field of a request
 * at the maximum count is kept in order, and a following small request on
 * the same connection sees only its own fields. */
static void check_numbered_fields(void *arg, const struct http_request *req, struct http_response *res)
{
    size_t *seen = arg;
    for (size_t i = 1; i < req->n_headers; i++) {   /* [0] is Host */
        char name[32], value[32];
        snprintf(name, sizeof(name), "x-f%zu", i);
        snprintf(value, sizeof(value), "v%zu", i);
        cr_assert(slice_eq_nocase(req->headers[i].name, slice_str(name)), "field %zu has the wrong name", i);
        cr_assert(slice_eq(req->headers[i].value, slice_str(value)), "field %zu has the wrong value", i);
    }
    seen[seen[0] + 1] = req->n_headers;
    seen[0]++;
    cr_assert_eq(http_set_json(res, 200, "{}", 2), 0);
}

static char *numbered_fields_request(size_t n)
{
    char *req = fmt("GET / HTTP/1.1\r\nHost: x\r\n");
    for (size_t i = 1; i < n; i++) {
        char *next = fmt("%sX-F%zu: v%zu\r\n", req, i, i);
        free(req);
        req = next;
    }
    char *done = fmt("%s\r\n", req);
    free(req);
    return done;
}

Test(http, every_field_up_to_the_maximum_count_is_kept)
{
    struct http_limits lim = http_default_limits;
    lim.max_fields = HTTP_MAX_FIELDS_CAP;
    lim.max_header_block = 64 * 1024;
    size_t seen[3] = { 0 };
    struct http_conn *h = http_conn_new(&lim, check_numbered_fields, seen);
    cr_assert_not_null(h);
    char *big = numbered_fields_request(HTTP_MAX_FIELDS_CAP), *small3 = numbered_fields_request(3);
    feed_str(h, big);
    feed_str(h, small3);
    cr_assert_eq(seen[0], 2, "both requests answered");
    cr_assert_eq(seen[1], HTTP_MAX_FIELDS_CAP);
    cr_assert_eq(seen[2], 3);
    http_conn_free(h);
    char *over = numbered_fields_request(HTTP_MAX_FIELDS_CAP + 1);
    expect_refused_lim(&lim, over, strlen(over), 431, NULL);
    free(big);
    free(small3);
    free(over);
}

Test(http, header_count_over_limit_is_431)
{
    expect_refused_small("GET / HTTP/1.1\r\nHost: x\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5\r\n\r\n", 431);
}

Test(http, header_count_limit_is_per_request_on_a_kept_alive_connection)
{
    struct recorder rec = { 0 };
    struct http_conn *h = rec_conn(&small, &rec);
    for (int i = 0; i < 3; i++)
        feed_str(h, "GET / HTTP/1.1\r\nHost: x\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n");
    struct resps *rs = parse_out(http_conn_output(h), 0);
    cr_assert_eq(rs->n, 3);
    for (size_t i = 0; i < 3; i++)
        cr_assert_eq(rs->r[i].status, 200);
    cr_assert_eq(rec.n, 3);
    free(rs);
    http_conn_free(h);
}

Test(http, body_exactly_at_limit_is_accepted)
{
    char *body = repeat('b', 100);
    char *req = fmt("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n%s", body);
    struct recorder rec = { 0 };
    expect_accepted_small(req, &rec);
    cr_assert_eq(rec.reqs[0].body_len, 100);
    cr_assert_str_eq(rec.reqs[0].body, body);
    free(req);
    free(body);
}

Test(http, content_length_over_limit_is_413_before_the_body_arrives)
{
    struct recorder rec = { 0 };
    struct http_conn *h = rec_conn(&small, &rec);
    feed_str(h, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 101\r\n\r\n");
    struct resps *rs = parse_out(http_conn_output(h), 0);
    cr_assert_eq(rs->n, 1, "413 must be sent as soon as the headers end");
    assert_problem(&rs->r[0], 413, NULL);
    assert_connection_close(&rs->r[0]);
    cr_assert(http_conn_should_close(h));
    char *body = repeat('b', 101);
    feed_str(h, body);
    feed_str(h, GOOD);
    free(rs);
    rs = parse_out(http_conn_output(h), 0);
    cr_assert_eq(rs->n, 1);
    cr_assert_eq(rec.n, 0);
    free(rs);
    free(body);
    http_conn_free(h);
}

Test(http, huge_content_length_is_413)
{
    expect_refused_lim(&small, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 18446744073709551615\r\n\r\n",
                       strlen("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 18446744073709551615\r\n\r\n"),
                       413, NULL);
}

Test(http, content_length_overflowing_u64_is_400)
{
    REFUSED("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 18446744073709551616\r\n\r\n");
}

Test(http, chunked_body_exactly_at_limit_is_accepted)
{
    char *a = repeat('a', 60), *b = repeat('b', 40);
    size_t cap = 512;
    char *req = malloc(cap);
    cr_assert_not_null(req);
    snprintf(req, cap, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                       "3c\r\n%s\r\n28\r\n%s\r\n0\r\n\r\n", a, b);
    struct recorder rec = { 0 };
    expect_accepted_small(req, &rec);
    cr_assert_eq(rec.reqs[0].body_len, 100);
    free(req);
    free(a);
    free(b);
}

Test(http, chunked_body_growing_past_limit_is_413)
{
    char *a = repeat('a', 60), *b = repeat('b', 41);
    size_t cap = 512;
    char *req = malloc(cap);
    cr_assert_not_null(req);
    snprintf(req, cap, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                       "3c\r\n%s\r\n29\r\n%s\r\n0\r\n\r\n", a, b);
    expect_refused_small(req, 413);
    free(req);
    free(a);
    free(b);
}

Test(http, chunk_larger_than_limit_is_413_before_its_data_arrives_fully)
{
    struct recorder rec = { 0 };
    struct http_conn *h = rec_conn(&small, &rec);
    feed_str(h, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1000\r\n");
    char *a = repeat('a', 101);
    feed_str(h, a);   /* 101 of 4096 chunk bytes */
    struct resps *rs = parse_out(http_conn_output(h), 0);
    cr_assert_eq(rs->n, 1);
    assert_problem(&rs->r[0], 413, NULL);
    cr_assert(http_conn_should_close(h));
    cr_assert_eq(rec.n, 0);
    free(rs);
    free(a);
    http_conn_free(h);
}

/* ---- connection persistence -------------------------------------------------- */

Test(http, connection_close_in_request_closes_after_response)
{
    struct recorder rec = { .route = true };
    struct http_conn *h = rec_conn(&http_default_limits, &rec);
    feed_str(h, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    feed_str(h, GOOD);
    struct resps *rs = parse_out(http_conn_output(h), 0);
    cr_assert_eq(rs->n, 1, "nothing after Connection: close is answered");
    cr_assert_eq(rs->r[0].status, 200);
    assert_connection_close(&rs->r[0]);
    cr_assert(http_conn_should_close(h));
    cr_assert_eq(rec.n, 1);
    cr_assert_not(rec.reqs[0].keep_alive);
    free(rs);
    http_conn_free(h);
}

Test(http, connection_close_in_one_feed_with_pipelined_request)
{
    struct recorder rec = { .route = true };
    struct http_conn *h = rec_conn(&http_default_limits, &rec);
    feed_str(h, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    struct resps *rs = parse_out(http_conn_output(h), 0);
    cr_assert_eq(rs->n, 1);
    assert_connection_close(&rs->r[0]);
    cr_assert_eq(rec.n, 1);
    free(rs);
    http_conn_free(h);
}

Test(http, http10_without_keep_alive_closes)
{
    struct http_conn *h = router_conn();
    feed_str(h, "GET /healthz HTTP/1.0\r\n\r\n");
    struct resps *rs = parse_out(http_conn_output(h), 0);
    cr_assert_eq(rs->n, 1);
    cr_assert_eq(rs->r[0].status, 200);
    cr_assert(strncmp(rs->r[0].head, "HTTP/1.1 200", 12) == 0);
    assert_connection_close(&rs->r[0]);
    cr_assert(http_conn_should_close(h));
    free(rs);
    http_conn_free(h);
}

Test(http, http10_with_keep_alive_stays_open)
{
    struct http_conn *h = router_conn();
    feed_str(h, "GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    cr_assert_not(http_conn_should_close(h));
    feed_str(h, "GET /healthz HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n");
    struct resps *rs = parse_out(http_conn_output(h), 0);
    cr_assert_eq(rs->n, 2);
    for (size_t i = 0; i < 2; i++) {
        cr_assert_eq(rs->r[i].status, 200);
        cr_assert_str_eq(hdr_one(&rs->r[i], "Connection"), "keep-alive");
        assert_security_headers(&rs->r[i], "application/json; charset=utf-8");
    }
    cr_assert_not(http_conn_should_close(h));
    free(rs);
    http_conn_free(h);
}

Test(http, http11_keeps_alive_by_default)
{
    struct http_conn *h = router_conn();
    for (int i = 0; i < 4; i++)
        feed_str(h, GOOD);
    struct resps *rs = parse_out(http_conn_output(h), 0);
    cr_assert_eq(rs->n, 4);
    for (size_t i = 0; i < 4; i++)
        cr_assert_eq(hdr_count(&rs->r[i], "Connection"), 0);
    cr_assert_not(http_conn_should_close(h));
    free(rs);
    http_conn_free(h);
}

Test(http, draining_makes_next_response_close)
{
    struct recorder rec = { .route = true };
    struct http_conn *h = rec_conn(&http_default_limits, &rec);
    feed_str(h, GOOD);
    cr_assert_not(http_conn_should_close(h));
    http_conn_set_draining(h);
    cr_assert_not(http_conn_should_close(h), "draining alone does not close an idle connection");
    feed_str(h, GOOD);
    feed_str(h, GOOD);
    struct resps *rs = parse_out(http_conn_output(h), 0);
    cr_assert_eq(rs->n, 2);
    cr_assert_eq(hdr_count(&rs->r[0], "Connection"), 0);
    cr_assert_eq(rs->r[1].status, 200);
    assert_connection_close(&rs->r[1]);
    cr_assert(http_conn_should_close(h));
    cr_assert_eq(rec.n, 2);
    cr_assert_not(rec.reqs[1].keep_alive);
    free(rs);
    http_conn_free(h);
}

Test(http, draining_overrides_http10_keep_alive)
{
    struct http_conn *h = router_conn();
    http_conn_set_draining(h);
    feed_str(h, "GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    struct resps *rs = parse_out(http_conn_output(h), 0);
    cr_assert_eq(rs->n, 1);
    assert_connection_close(&rs->r[0]);
    cr_assert(http_conn_should_close(h));
    free(rs);
    http_conn_free(h);
}

Test(http, in_request_tracks_partial_requests)
{
    struct http_conn *h = router_conn();
    cr_assert_not(http_conn_in_request(h));
    feed_str(h, "GET /healthz HTTP/1.1\r\nHo");
    cr_assert(http_conn_in_request(h));
    cr_assert_eq(http_conn_output(h)->len, 0);
    feed_str(h, "st: x\r\n\r\n");
    cr_assert_not(http_conn_in_request(h));
    cr_assert_gt(http_conn_output(h)->len, 0);
    http_conn_free(h);
}

Test(http, parser_version_is_reported)
{
    const char *v = http_parser_version();
    cr_assert_not_null(v);
    cr_assert(isdigit((unsigned char)v[0]) && strchr(v, '.') != NULL, "version '%s'", v);
}

/* ---- responses larger than the output buffer ------------------------------ */

static void big_dispatch(void *arg, const struct http_request *req, struct http_response *res)
{
    (void)arg;
    (void)req;
    static char chunk[1 << 20];
    memset(chunk, 'a', sizeof(chunk));
    res->status = 200;
    for (int i = 0; i < 16; i++)
        cr_assert_eq(buf_append(&res->body, chunk, sizeof(chunk)), 0);
}

Test(http, response_that_does_not_fit_is_replaced_by_a_500_that_closes, .init = setup)
{
    struct http_conn *h = http_conn_new(&http_default_limits, big_dispatch, NULL);
    cr_assert_not_null(h);
    char two[2 * sizeof(GOOD)];
    snprintf(two, sizeof(two), "%s%s", GOOD, GOOD);
    feed_str(h, two);
    struct buf *out = http_conn_output(h);
    const char *first = (const char *)out->data;
    cr_assert(strncmp(first, "HTTP/1.1 200 OK\r\n", 17) == 0);
    cr_assert(memmem(out->data, 4096, "Content-Length: 16777216\r\n", 26));
    const char *end_of_head = memmem(out->data, out->len, "\r\n\r\n", 4);
    cr_assert_not_null(end_of_head);
    size_t second_at = (size_t)(end_of_head + 4 - first) + (16u << 20);
    cr_assert_lt(second_at, out->len, "the second response is missing");
    cr_assert(strncmp(first + second_at, "HTTP/1.1 500 ", 13) == 0, "second response: %.40s", first + second_at);
    cr_assert(memmem(first + second_at, out->len - second_at, "Connection: close\r\n", 19));
    cr_assert(http_conn_should_close(h));
    http_conn_free(h);
}

/* After logout the connection's remembered token is wiped, not kept until
 * the next request or the close (router.c, api_auth.c: api_logout()). */
Test(router, forgetting_the_token_wipes_the_connection_memo)
{
    struct http_memo m;
    memset(&m, 0x5a, sizeof(m));
    m.len = 78;
    struct http_request req = { .memo = &m };
    struct route_ctx ctx = { .req = &req };
    route_forget_token(&ctx);
    cr_assert_eq(m.len, 0);
    for (size_t i = 0; i < sizeof(m.data); i++)
        cr_assert_eq(m.data[i], 0, "byte %zu survived", i);
    req.memo = NULL;
    route_forget_token(&ctx);            /* no memo (unit tests): no-op */
}

/* ---- deferred answers ---------------------------------------------------- */

struct seen_job {
    struct http_job base;
    int done_calls;
    bool cancelled_at_done;
};

static struct seen_job the_job;
static int defer_calls;

static void seen_done(struct http_job *job, struct http_response *res)
{
    (void)res;
    struct seen_job *j = (struct seen_job *)job;
    j->done_calls++;
    j->cancelled_at_done = job->cancelled;
}

static void seen_work(struct http_job *job)
{
    (void)job;
}

static void defer_dispatch(void *arg, const struct http_request *req, struct http_response *res)
{
    (void)arg;
    (void)req;
    defer_calls++;
    memset(&the_job, 0, sizeof(the_job));
    the_job.base.work = seen_work;
    the_job.base.done = seen_done;
    res->job = &the_job.base;
}

/* A connection whose request deferred a job (the_job), not yet taken. */
static struct http_conn *deferred_conn(const char *in)
{
    struct http_conn *h = http_conn_new(&http_default_limits, defer_dispatch, NULL);
    cr_assert_not_null(h);
    feed_str(h, in);
    cr_assert(http_conn_waiting(h));
    return h;
}

/* A connection freed while a handler's job waits unstarted (its work never
 * ran): done() must still release the job, and must be told the work did
 * not run, so it answers nothing and changes nothing. Before, done() ran as
 * if the work had finished, and a login job's zeroed result read as "the
 * password matched". */
Test(http, a_job_that_never_started_is_cancelled_when_its_connection_goes)
{
    struct http_conn *h = deferred_conn(GOOD);
    http_conn_free(h);
    cr_assert_eq(the_job.done_calls, 1, "done() ran %d times", the_job.done_calls);
    cr_assert(the_job.cancelled_at_done, "done() was not told that the work never ran");
}

Test(http, a_job_that_ran_is_not_cancelled)
{
    struct http_conn *h = deferred_conn(GOOD);
    struct http_job *job = http_conn_take_job(h);
    cr_assert_eq(job, &the_job.base);
    job->work(job);
    cr_assert_eq(http_conn_job_done(h), 0);
    cr_assert_eq(the_job.done_calls, 1);
    cr_assert_not(the_job.cancelled_at_done);
    http_conn_free(h);
    cr_assert_eq(the_job.done_calls, 1, "done() ran again at free");
}

/* The server closed the connection while a job ran (a reset, the end of
 * the shutdown grace): the requests pipelined behind the job must not run
 * once it finishes. They were parsed and dispatched, changes included,
 * for a client that was gone. */
Test(http, input_behind_a_job_is_dropped_when_the_connection_closes)
{
    defer_calls = 0;
    char two[2 * sizeof(GOOD)];
    snprintf(two, sizeof(two), "%s%s", GOOD, GOOD);
    struct http_conn *h = deferred_conn(two);
    cr_assert_eq(defer_calls, 1);
    struct http_job *job = http_conn_take_job(h);
    cr_assert_not_null(job);
    job->work(job);
    http_conn_discard_input(h);
    cr_assert_eq(http_conn_job_done(h), 0);
    cr_assert_eq(defer_calls, 1, "a request behind the job ran after the connection closed");
    cr_assert(http_conn_should_close(h));
    http_conn_free(h);
}

/* Answers `*(size_t *)arg` bytes of 'a' with status 200. */
static void sized_dispatch(void *arg, const struct http_request *req, struct http_response *res)
{
    (void)req;
    size_t n = *(const size_t *)arg;
    char *body = malloc(n);
    cr_assert_not_null(body);
    memset(body, 'a', n);
    res->status = 200;
    cr_assert_eq(buf_append(&res->body, body, n), 0);
    free(body);
}

/* A large answer whose handler did not ask the output budget is still
 * held to it: a 503 with Retry-After goes instead; a small answer always
 * goes. */
Test(http, a_large_answer_past_the_output_budget_is_a_503)
{
    struct http_out_budget budget = { 10 * HTTP_BIG_BODY, 10 * HTTP_BIG_BODY };
    struct http_limits lim = http_default_limits;
    lim.budget = &budget;
    size_t size = HTTP_BIG_BODY;
    struct http_conn *h = http_conn_new(&lim, sized_dispatch, &size);
    cr_assert_not_null(h);
    feed_str(h, GOOD);
    struct buf *out = http_conn_output(h);
    cr_assert(out->len > 12 && memcmp(out->data, "HTTP/1.1 503", 12) == 0, "%.40s", (const char *)out->data);
    cr_assert_not_null(memmem(out->data, out->len, "Retry-After: 5", 14));
    buf_reset(out);
    budget.queued = 0;
    feed_str(h, GOOD);
    cr_assert(out->len > HTTP_BIG_BODY && memcmp(out->data, "HTTP/1.1 200", 12) == 0);
    http_conn_free(h);
}

/* The server took a job and then could not start it (no memory for its
 * queue entry, the pool refused it): the job must still be released, told
 * that its work never ran, and only once. It was left taken and never
 * released (its memory, and for a password job the password, kept). */
Test(http, a_taken_job_that_cannot_start_is_cancelled_once)
{
    struct http_conn *h = deferred_conn(GOOD);
    struct http_job *job = http_conn_take_job(h);
    cr_assert_eq(job, &the_job.base);
    http_conn_cancel_job(h);
    cr_assert_eq(the_job.done_calls, 1);
    cr_assert(the_job.cancelled_at_done);
    cr_assert_not(http_conn_waiting(h));
    http_conn_free(h);
    cr_assert_eq(the_job.done_calls, 1, "done() ran again at free");
}

/* The budget refuses only what a handler can ask about first (lists,
 * exports): a note's own answer is never turned into a 503 after its
 * change was committed and recorded, however full the budget is. */
Test(http, the_largest_one_note_answer_is_never_refused_by_the_budget)
{
    struct http_out_budget budget = { 1u << 30, 1u << 30 };
    struct http_limits lim = http_default_limits;
    lim.budget = &budget;
    /* The largest one-note answer: 64 KiB of content, each byte escaped as
     * \u00XX (6 bytes), and a title of the same kind. */
    size_t size = 6 * (65536 + 800) + 256;
    struct http_conn *h = http_conn_new(&lim, sized_dispatch, &size);
    cr_assert_not_null(h);
    feed_str(h, GOOD);
    struct buf *out = http_conn_output(h);
    cr_assert(out->len > 12 && memcmp(out->data, "HTTP/1.1 200", 12) == 0, "%.40s", (const char *)out->data);
    http_conn_free(h);
}
