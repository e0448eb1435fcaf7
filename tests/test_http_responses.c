/*
 * Unit tests of http.c (router.c as the dispatcher): what every kind of
 * response carries (the security headers, problem documents, request ids),
 * HEAD, 404/405/query refusals, and what a handler sees of a request
 * (method, path, query, headers, chunked body). Helpers: http_support.h.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http_support.h"

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
