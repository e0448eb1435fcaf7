/*
 * Unit tests of http.c's framing refusals: Content-Length and
 * Transfer-Encoding conflicts, bare CR/LF, obs-fold, Host forms, versions,
 * request-target forms, chunk sizes; each one 400 that closes, and nothing
 * after a refused request is ever parsed. Helpers: http_support.h.
 */
#include <criterion/criterion.h>
#include <stdlib.h>

#include "http_support.h"

#define REFUSED_FIELD(lit, f) expect_refused((lit), sizeof(lit) - 1, (f))

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
