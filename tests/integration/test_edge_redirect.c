/*
 * Edge tests of the plain-HTTP redirect listener: 301 to https without
 * HSTS, its target limit, the per-address cap, a slowloris cut, and bare
 * line breaks that do not extend its keep-alive. Fixtures and helpers:
 * edge_support.h.
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edge_support.h"
#include "../security_headers.h"

/* ---- the plain-HTTP redirect listener -------------------------------------------- */

static void assert_plain_security_headers(const struct raw_resp *r)
{
    char *hsts = raw_header(r, "Strict-Transport-Security");
    cr_assert_null(hsts, "HSTS sent over plain HTTP:\n%s", r->head);
    for (size_t i = 1; i < N_EXPECTED_SECURITY_HEADERS; i++) {   /* all but HSTS */
        const char *const *want = expected_security_headers[i];
        char *v = raw_header(r, want[0]);
        cr_assert(v, "missing %s on the redirect listener:\n%s", want[0], r->head);
        cr_assert_str_eq(v, want[1], "%s", want[0]);
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
    char *req = harness_fmt("GET /v1/notes?limit=5 HTTP/1.1\r\nHost: localhost:%d\r\n\r\n", srv.redirect_port);
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
    char *at = harness_fmt("GET /%s HTTP/1.1\r\nHost: localhost\r\n\r\n", a63);
    char *over = harness_fmt("GET /%sb HTTP/1.1\r\nHost: localhost\r\n\r\n", a63);
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
    char *req = harness_fmt("GET /%s HTTP/1.1\r\nHost: localhost\r\n\r\n", huge);
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
        harness_pace_ms(200);
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
