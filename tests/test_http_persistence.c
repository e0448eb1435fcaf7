/*
 * Unit tests of http.c: pipelining (requests in one feed, split byte by
 * byte, chunked trailers, upgrade requests), and connection persistence
 * (Connection: close, HTTP/1.0 keep-alive, draining, partial requests).
 * Helpers: http_support.h.
 */
#include <criterion/criterion.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_support.h"

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
