/*
 * Edge tests of backpressure: a client that never reads cannot grow the
 * server (TLS and redirect listener) and is dropped at the send timeout;
 * queued large answers are bounded in total and a closing answer keeps
 * the send deadline. Fixtures and helpers: edge_support.h.
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edge_support.h"

/* ---- backpressure ----------------------------------------------------------------- */

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
    harness_pace_ms(1000);   /* give a server without backpressure time to grow */
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
    harness_pace_ms(2000);   /* well past the 1 s send timeout, still not reading */
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
    char *token = harness_user_with_big_notes(&srv, "big", 140);   /* an export of ~8.4 MB: more than the kernel buffers hold */

    static const char nobody[] = "{\"username\":\"nobody-at-all\",\"password\":\"not-a-password\"}";
    char *two = harness_fmt("GET /v1/me/export HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer %s\r\n\r\n"
                    "POST /v1/auth/login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                    "Connection: close\r\nContent-Length: %zu\r\n\r\n%s", token, strlen(nobody), nobody);
    struct rawconn c;
    tls_open(&c);
    cr_assert_eq(raw_send_str(&c, two, 5000), RAW_OK);
    harness_pace_ms(3000);   /* well past the 1 s send timeout, reading nothing */
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

/* Large answers queued for clients that do not read them are bounded in
 * total (NOTES_MAX_OUTPUT_MIB), not only per connection: past the bound a
 * large answer is refused with 503 and Retry-After while the queued ones
 * drain, instead of each connection pinning up to 16 MiB (about 1 GB for
 * one address's 64 connections). */
Test(edge, queued_large_answers_are_bounded_in_total, .init = prep, .fini = finish, .timeout = 180)
{
    start_with((const char *const[]){ "NOTES_REGISTRATION", "open", "NOTES_RATE_LIMITS", "off",
                                      "NOTES_MAX_OUTPUT_MIB", "8", NULL });
    char *token = harness_user_with_big_notes(&srv, "pin", 100);   /* an export of ~6 MB */

    char *get = harness_fmt("GET /v1/me/export HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer %s\r\n\r\n", token);
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
    char *auth = harness_fmt("Authorization: Bearer %s", token);
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
            harness_pace_ms(100);
    }
    cr_assert_eq(status, 200, "the closed connections' output was never released from the count");
    free(auth);
    free(get);
    free(token);
}

/* A closing answer (here a 413 refusing a body before it is read) must
 * reach a client that is still sending: the server stops reading, so the
 * body sits unread in its socket, and closing a socket with unread input
 * resets the connection at once, dropping whatever the kernel still held
 * for the client. An export queued before it makes sure some is still
 * held when the last write is handed over. The server ends its side with a
 * FIN and reads (and drops) what the client still sends before it closes,
 * as nginx's lingering close does. */
/* On c: an export, then a body too large (413 before it is read), read by a
 * slow reader (16 KiB a millisecond) that goes on sending the body (1 KiB a
 * read, 256 KiB in all): when the server hands over its last bytes,
 * megabytes are still in its socket, not yet with us, and more of the body
 * arrives after the server ended its side. Returns how the reading ended;
 * `out` holds what arrived. */
static enum raw_io closing_answer_behind_an_export(struct rawconn *c, const char *token, struct rawbuf *out)
{
    char *two = harness_fmt("GET /v1/me/export HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer %s\r\n\r\n"
                            "POST /v1/notes HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer %s\r\n"
                            "Content-Type: application/json\r\nContent-Length: 1000000\r\n\r\n",
                            token, token);   /* > NOTES_MAX_BODY */
    char *body = repeat('b', 65536);   /* part of the refused body, sent anyway */
    cr_assert_eq(raw_send_str(c, two, 5000), RAW_OK);
    cr_assert_eq(raw_send(c, body, 65536, 5000, NULL), RAW_OK);
    enum raw_io e = RAW_OK;
    size_t more = 0;
    for (long t0 = raw_now_ms(); e == RAW_OK && raw_now_ms() - t0 < 30000;) {
        char tmp[16384];
        size_t got = 0;
        if (more < 262144 && raw_send(c, body, 1024, 100, NULL) == RAW_OK)
            more += 1024;
        e = raw_recv(c, tmp, sizeof(tmp), &got, 5000);
        rawbuf_append(out, tmp, got);
        harness_pace_ms(1);
    }
    size_t n = raw_count_responses(out->p, out->len, NULL, NULL);
    cr_log_info("closing answer behind an export: %zu answers in %zu bytes (%zu more body bytes sent), then %s", n,
                out->len, more, raw_io_name(e));
    cr_assert_eq(n, 2, "%zu of 2 answers arrived (%zu bytes), then %s", n, out->len, raw_io_name(e));
    cr_assert(strstr(out->p, "HTTP/1.1 413"), "no 413 among the answers");
    free(body);
    free(two);
    return e;
}

Test(edge, a_closing_answer_reaches_a_client_that_is_still_sending, .init = prep, .fini = finish, .timeout = 120)
{
    start_with((const char *const[]){ "NOTES_REGISTRATION", "open", "NOTES_RATE_LIMITS", "off", NULL });
    char *token = harness_user_with_big_notes(&srv, "linger", 100);   /* an export of ~6 MB */
    struct rawconn c;
    tls_open(&c);
    struct rawbuf out = { 0 };
    enum raw_io e = closing_answer_behind_an_export(&c, token, &out);
    cr_assert_eq(e, RAW_CLOSED, "the connection ended with %s, not a close", raw_io_name(e));
    rawbuf_free(&out);
    raw_close(&c);
    free(token);
}

/* The lingering close is bounded: a client that neither closes nor sends
 * keeps the connection (and its place under NOTES_MAX_CONNECTIONS_PER_IP)
 * for 5 s of quiet, not for good. */
Test(edge, a_lingering_connection_gives_its_place_back_once_the_client_is_quiet, .init = prep, .fini = finish,
     .timeout = 120)
{
    start_with((const char *const[]){ "NOTES_REGISTRATION", "open", "NOTES_RATE_LIMITS", "off", NULL });
    char *token = harness_user_with_big_notes(&srv, "quiet", 100);   /* seeded before the cap of one */
    cr_assert_eq(harness_stop(&srv), 0);
    start_with((const char *const[]){ "NOTES_MAX_CONNECTIONS_PER_IP", "1", NULL });
    struct rawconn c, other;
    tls_open(&c);
    struct rawbuf out = { 0 };
    (void)closing_answer_behind_an_export(&c, token, &out);   /* c stays open, silent */
    long t0 = raw_now_ms();
    CURLcode rc = raw_tls_connect(&other, srv.port, srv.cert, NULL, 2000);
    raw_close(&other);
    cr_assert_neq(rc, CURLE_OK, "a second connection got in beside the lingering one (cap 1)");
    while (rc != CURLE_OK && raw_now_ms() - t0 < 15000) {
        harness_pace_ms(200);   /* the client's own pace while it waits for its place */
        rc = raw_tls_connect(&other, srv.port, srv.cert, NULL, 2000);
        raw_close(&other);
    }
    long took = raw_now_ms() - t0;
    cr_log_info("the lingering connection's place came free after %ld ms of quiet", took);
    cr_assert_eq(rc, CURLE_OK, "a lingering connection still held its place after %ld ms of quiet", took);
    rawbuf_free(&out);
    raw_close(&c);
    free(token);
}
