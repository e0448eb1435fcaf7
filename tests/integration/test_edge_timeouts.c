/*
 * Edge tests of slow and idle clients and of the connection caps: header
 * trickle, body stall and trickle, idle keep-alive, silent or partial
 * handshake; many concurrent connections, the per-address and global caps.
 * Fixtures and helpers: edge_support.h.
 */
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

#include "edge_support.h"

/* ---- slow clients -------------------------------------------------------------- */

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
        harness_pace_ms(200);
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
    char *head = harness_fmt(slow_body_head, 10);
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
    char *head = harness_fmt(slow_body_head, 100);
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

/* ---- idle keep-alive and handshake timeouts --------------------------------- */

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
        harness_pace_ms(600);
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

/* ---- connection caps -------------------------------------------------------- */

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
    cr_assert_eq(harness_stop(&srv), 0);
    unsigned long long refused = 0;
    harness_audit_lines(&srv, "conn.refused", "\"reason\":\"connection_cap\"", &refused);
    cr_assert_geq(refused, 1, "no conn.refused line counts the connection refused at the cap");
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

/* The caps count open connections, not new ones: a client that opens and
 * closes connections costs the server a handshake each (most of a
 * millisecond of CPU for a full one) as fast as it can loop. New
 * connections per address now draw on a token bucket; past it they are
 * closed at once, before any TLS. */
Test(edge, new_connections_past_the_per_address_rate_are_closed_at_once, .init = prep, .fini = finish)
{
    start_with((const char *const[]){ "NOTES_RATE_LIMITS", "on", "NOTES_RATE_IP", "1000", "NOTES_RATE_IP_BURST",
                                      "1000", "NOTES_RATE_CONNECTIONS", "1", "NOTES_RATE_CONNECTIONS_BURST", "3",
                                      NULL });
    long t0 = raw_now_ms();
    int passed = 0;
    CURLcode rc = CURLE_OK;
    struct rawconn c;
    while (passed < 10) {
        rc = raw_tls_connect(&c, srv.port, srv.cert, NULL, 5000);
        if (rc != CURLE_OK)
            break;
        cr_assert_eq(get_status(&c, GOOD), 200, "connection %d got no answer", passed + 1);
        raw_close(&c);
        passed++;
    }
    long ms = raw_now_ms() - t0;
    raw_close(&c);
    cr_assert_neq(rc, CURLE_OK, "%d new connections in %ld ms were all served (burst 3, 1/s)", passed, ms);
    cr_assert_geq(passed, 3, "refused after %d, inside the burst of 3", passed);
    cr_assert_leq(passed, 3 + ms / 1000, "%d new connections in %ld ms (burst 3, 1/s)", passed, ms);
    /* A token comes back within a second: a new connection is served again. */
    bool served = false;
    for (long start = raw_now_ms(); !served && raw_now_ms() - start < 5000;) {
        if (raw_tls_connect(&c, srv.port, srv.cert, NULL, 5000) == CURLE_OK)
            served = get_status(&c, GOOD) == 200;
        raw_close(&c);
    }
    cr_assert(served, "no new connection was served within 5 s of the refusal");
    /* The refusals are summed up in the trail (written at the latest at the stop). */
    cr_assert_eq(harness_stop(&srv), 0);
    unsigned long long refused = 0;
    harness_audit_lines(&srv, "conn.refused", "\"reason\":\"connection_rate\"", &refused);
    cr_assert_geq(refused, 1, "no conn.refused line counts the connections refused for their rate");
}
