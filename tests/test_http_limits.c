/*
 * Unit tests of http.c's size limits, each at its edge: request target
 * (414), header field, block and count (431), body by Content-Length and
 * by chunks (413). Helpers: http_support.h.
 */
#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_support.h"

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
