/*
 * Unit tests for http.c (with router.c as the dispatcher where useful):
 * raw request bytes in through http_conn_feed(), raw response bytes out of
 * http_conn_output(). No sockets, no TLS.
 *
 * Covered (one file each): responses and what handlers see, pipelining and
 * persistence, every framing refusal, the size limits at their edges, and
 * the output side (budget, deferred jobs).
 *
 * This file holds the suite's fixture and what the test_http_*.c files
 * share (http_support.h).
 */
#include <criterion/criterion.h>
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <cJSON.h>

#include "crypto.h"
#include "router.h"
#include "http_support.h"
#include "security_headers.h"

/* ---- fixture --------------------------------------------------------------- */

void setup(void)
{
    cr_assert_eq(crypto_init(), 0, "crypto_init failed");
}

TestSuite(http, .init = setup);

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

size_t hdr_count(const struct resp *r, const char *name)
{
    return hdr_find(r, name, NULL, 0);
}

const char *hdr_one(const struct resp *r, const char *name)
{
    static char v[8][512];
    static unsigned slot;
    char *out = v[slot++ % 8];
    size_t n = hdr_find(r, name, out, sizeof(v[0]));
    cr_assert_eq(n, 1, "header %s appears %zu times, want once, in:\n%s", name, n, r->head);
    return out;
}

struct resps *parse_out(const struct buf *out, unsigned head_mask)
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

void assert_security_headers(const struct resp *r, const char *content_type)
{
    for (size_t i = 0; i < N_EXPECTED_SECURITY_HEADERS; i++)
        cr_assert_str_eq(hdr_one(r, expected_security_headers[i][0]), expected_security_headers[i][1],
                         "header %s in:\n%s", expected_security_headers[i][0], r->head);
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

void assert_problem(const struct resp *r, int status, const char *field)
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

void assert_connection_close(const struct resp *r)
{
    cr_assert_str_eq(hdr_one(r, "Connection"), "close", "in:\n%s", r->head);
}

void feed(struct http_conn *h, const void *p, size_t n)
{
    cr_assert_eq(http_conn_feed(h, p, n), 0, "http_conn_feed failed");
}

void feed_str(struct http_conn *h, const char *s)
{
    feed(h, s, strlen(s));
}

struct http_conn *router_conn(void)
{
    struct http_conn *h = http_conn_new(&http_default_limits, router_dispatch, NULL);
    cr_assert_not_null(h);
    return h;
}

struct http_conn *rec_conn(const struct http_limits *lim, struct recorder *rec)
{
    struct http_conn *h = http_conn_new(lim, record_dispatch, rec);
    cr_assert_not_null(h);
    return h;
}

void expect_refused_lim(const struct http_limits *lim, const void *bad, size_t n, int status,
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

void expect_refused(const char *bad, size_t n, const char *field)
{
    expect_refused_lim(&http_default_limits, bad, n, 400, field);
}
