/*
 * Integration tests of the server-wide output budget (NOTES_MAX_OUTPUT_MIB):
 * the real notesd binary on a loopback port, spoken to with raw bytes over
 * TLS (rawtls.c) by clients that read little or nothing.
 *
 * An answer counts against the budget from the moment it is built until
 * its bytes have left, so large answers built at once are bounded too:
 * several exports pipelined in one TLS record (one read answers them all
 * before any is sent), exports held for their audit line
 * (NOTES_AUDIT_SYNC=always), and both together. Once their connections
 * are gone, the budget is whole again.
 *
 * Every wait is bounded. The only paced loop is a client retrying an
 * export the server refused with Retry-After, while it notices closed
 * connections it does not report.
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <curl/curl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>

#include "harness.h"
#include "rawtls.h"

/* 8 MiB of budget and exports of about 6 MB: one fits at a time. */
#define BUDGET_MIB "8"
#define EXPORT_NOTES 100
/* Server memory may grow by the one export the budget admits, its
 * encryption and the allocator's slack: far less than the answers the
 * tests ask for (18 to 60 exports of 6 MB). */
#define RSS_GROWTH_MAX_KIB (32L * 1024)

static struct server srv;

static void prep(void)
{
    signal(SIGPIPE, SIG_IGN);   /* a write to a connection the server closed */
    curl_global_init(CURL_GLOBAL_DEFAULT);
    harness_prepare(&srv);
}

static void finish(void)
{
    harness_cleanup(&srv);
}

/* Set NAME, value pairs (NULL-terminated) and start the server. */
static void start_with(const char *const *kv)
{
    for (size_t i = 0; kv && kv[i]; i += 2)
        harness_setenv(&srv, kv[i], kv[i + 1]);
    harness_start(&srv);
}

static bool server_alive(void)
{
    int st;
    return srv.pid > 0 && waitpid(srv.pid, &st, WNOHANG) == 0;
}

static void tls_open(struct rawconn *c)
{
    CURLcode rc = raw_tls_connect(c, srv.port, srv.cert, NULL, 5000);
    cr_assert_eq(rc, CURLE_OK, "TLS connect to notesd failed: %s (%s)", curl_easy_strerror(rc), c->err);
}

/* A TLS connection whose receive buffer is small, as a client's that reads
 * slowly: the kernel holds little of what the server sends it, so what the
 * client has not taken stays in the server, where the budget counts it. */
static void tls_open_slow(struct rawconn *c)
{
    tls_open(c);
    int small = 4096;
    cr_assert_eq(setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)), 0);
}

static char *export_request(const char *token)
{
    return harness_fmt("GET /v1/me/export HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer %s\r\n\r\n", token);
}

/* Readiness: the status code of the first answer on `c` (its first 12
 * bytes, read within 30 s). */
static int first_status(struct rawconn *c, int which)
{
    char head[16];
    size_t have = 0;
    while (have < 12) {
        size_t got = 0;
        enum raw_io e = raw_recv(c, head + have, 12 - have, &got, 30000);
        cr_assert_eq(e, RAW_OK, "no answer on connection %d (%s)", which, raw_io_name(e));
        have += got;
    }
    head[12] = 0;
    cr_assert(strncmp(head, "HTTP/1.1 ", 9) == 0, "not a response on connection %d: %s", which, head);
    return atoi(head + 9);
}

/* A refusal for the budget is the 503 problem every "try again later"
 * answer is: problem+json, with Retry-After. */
static void assert_busy_refusal(const struct raw_resp *r, const char *where)
{
    cr_assert_eq(r->status, 503, "%s: %d", where, r->status);
    char *type = raw_header(r, "Content-Type");
    char *retry = raw_header(r, "Retry-After");
    cr_assert(type && strcmp(type, "application/problem+json") == 0, "%s: Content-Type %s", where,
              type ? type : "(none)");
    cr_assert_not_null(retry, "%s: no Retry-After", where);
    cr_assert_not_null(strstr(r->body, "\"status\":503"), "%s: %s", where, r->body);
    free(type);
    free(retry);
}

/* An export over libcurl, retried as a client told Retry-After would (at a
 * faster pace), until it is answered 200 or `tries` run out. */
static long export_until_ok(const char *token, int tries, int *used)
{
    char *auth = harness_fmt("Authorization: Bearer %s", token);
    const char *hdrs[] = { auth, NULL };
    struct request_opts o = { .headers = hdrs, .timeout_ms = 30000 };
    long status = 0;
    for (int i = 0; i < tries && status != 200; i++) {
        if (i)
            harness_pace_ms(100);
        struct response r;
        harness_request(&srv, "/v1/me/export", &o, &r);
        status = r.status;
        cr_assert(status == 200 || status == 503, "export: %ld", status);
        response_free(&r);
        *used = i + 1;
    }
    free(auth);
    return status;
}

/* One read answers every request of a TLS record before any answer is
 * sent: three exports pipelined in one write were all checked against a
 * budget that did not yet count the ones before them, and all three were
 * answered 200 (18 MB queued under 8 MiB). The budget must count an answer
 * from the moment it is built. */
Test(budget, pipelined_exports_in_one_record_stay_within_the_budget, .init = prep, .fini = finish,
     .timeout = 180)
{
    start_with((const char *const[]){ "NOTES_REGISTRATION", "open", "NOTES_RATE_LIMITS", "off",
                                      "NOTES_MAX_OUTPUT_MIB", BUDGET_MIB, NULL });
    char *token = harness_user_with_big_notes(&srv, "pipe", EXPORT_NOTES);
    char *get = export_request(token);
    enum { K = 3 };   /* 18 MB: within one connection's 20 MiB of output */
    char *all = harness_fmt("%s%s%s", get, get, get);

    struct rawconn c;
    tls_open(&c);   /* reads at full speed: 6 MB or more arrive */
    long rss0 = raw_rss_kib(srv.pid);
    cr_assert_eq(raw_send_str(&c, all, 5000), RAW_OK);
    /* The first bytes leave only after all three were answered. */
    int first = first_status(&c, 0);
    long rss1 = raw_rss_kib(srv.pid);

    struct rawbuf in = { 0 };
    rawbuf_append(&in, "HTTP/1.1 ", 9);
    char code[4];
    snprintf(code, sizeof(code), "%03d", first);
    rawbuf_append(&in, code, 3);
    enum raw_io e = raw_read_responses(&c, &in, K, 60000);
    size_t rest = 0;
    bool bad = false;
    size_t n = raw_count_responses(in.p, in.len, &rest, &bad);
    cr_assert_eq(n, (size_t)K, "%zu of %d answers arrived (%s, %zu bytes)", n, K, raw_io_name(e), in.len);
    int ok = 0, busy = 0;
    const char *p = in.p;
    size_t left = in.len;
    for (int i = 0; i < K; i++) {
        struct raw_resp r;
        size_t k = raw_parse_response(p, left, &r);
        cr_assert(k != 0 && k != (size_t)-1, "answer %d does not parse", i);
        if (r.status == 200) {
            ok++;
        } else {
            char where[32];
            snprintf(where, sizeof(where), "pipelined export %d", i);
            assert_busy_refusal(&r, where);
            busy++;
        }
        raw_resp_free(&r);
        p += k;
        left -= k;
    }
    cr_log_info("pipelined exports: %d answered 200, %d refused 503; server RSS %ld -> %ld KiB", ok, busy,
                rss0, rss1);
    cr_assert_eq(first, 200, "the first export did not fit an empty budget: %d", first);
    cr_assert_eq(ok, 1, "%d exports of ~6 MB pipelined in one record were answered 200 under an %s MiB budget",
                 ok, BUDGET_MIB);
    cr_assert_leq(rss1 - rss0, RSS_GROWTH_MAX_KIB, "server RSS grew by %ld KiB for one connection's exports",
                  rss1 - rss0);
    rawbuf_free(&in);
    raw_close(&c);
    cr_assert(server_alive());
    free(all);
    free(get);
    free(token);
}

/* Answers held for their audit line (NOTES_AUDIT_SYNC=always) were not
 * counted either: exports asked for at once on many connections were all
 * built and held while the budget still read empty, and all answered 200
 * (server RSS 9 -> 118 MB for 20 clients reading nothing). */
Test(budget, exports_held_for_their_audit_line_stay_within_the_budget, .init = prep, .fini = finish,
     .timeout = 240)
{
    start_with((const char *const[]){ "NOTES_REGISTRATION", "open", "NOTES_RATE_LIMITS", "off",
                                      "NOTES_MAX_OUTPUT_MIB", BUDGET_MIB, "NOTES_AUDIT_SYNC", "always", NULL });
    char *token = harness_user_with_big_notes(&srv, "held", EXPORT_NOTES);
    char *get = export_request(token);
    enum { N = 20 };
    struct rawconn c[N];
    for (int i = 0; i < N; i++)
        tls_open_slow(&c[i]);
    long rss0 = raw_rss_kib(srv.pid);
    for (int i = 0; i < N; i++)   /* back to back: the first is still held when the last arrives */
        cr_assert_eq(raw_send_str(&c[i], get, 5000), RAW_OK);
    int status[N], ok = 0, busy = 0;
    for (int i = 0; i < N; i++) {
        status[i] = first_status(&c[i], i);
        ok += status[i] == 200;
        busy += status[i] == 503;
    }
    long rss1 = raw_rss_kib(srv.pid);
    cr_log_info("exports asked for at once: %d answered 200, %d refused 503; server RSS %ld -> %ld KiB", ok,
                busy, rss0, rss1);
    cr_assert_geq(ok, 1, "not even one export was answered");
    cr_assert_eq(ok + busy, N, "answers other than 200 and 503");
    cr_assert_leq(ok, 1, "%d exports of ~6 MB were answered 200 at once under an %s MiB budget", ok, BUDGET_MIB);
    cr_assert_leq(rss1 - rss0, RSS_GROWTH_MAX_KIB, "server RSS grew by %ld KiB for %d exports held at once",
                  rss1 - rss0, N);
    /* The refusals are whole problem documents. */
    for (int i = 0; i < N; i++) {
        if (status[i] != 503)
            continue;
        struct rawbuf in = { 0 };
        rawbuf_append(&in, "HTTP/1.1 503", 12);
        enum raw_io e = raw_read_responses(&c[i], &in, 1, 10000);
        struct raw_resp r;
        size_t k = raw_parse_response(in.p, in.len, &r);
        cr_assert(k != 0 && k != (size_t)-1, "refusal %d incomplete (%s)", i, raw_io_name(e));
        assert_busy_refusal(&r, "held export");
        raw_resp_free(&r);
        rawbuf_free(&in);
    }
    for (int i = 0; i < N; i++)
        raw_close(&c[i]);
    cr_assert(server_alive());
    free(get);
    free(token);
}

/* Both at once, the reviewer's worst case: each connection pipelines three
 * exports, held for their audit line, and nobody reads. What the budget
 * counts for answers built but never sent (held, in a connection's output,
 * or queued for the socket) is given back when their connections close:
 * afterwards an export is answered 200 again. */
Test(budget, unsent_answers_give_the_budget_back_when_their_connections_close, .init = prep, .fini = finish,
     .timeout = 240)
{
    start_with((const char *const[]){ "NOTES_REGISTRATION", "open", "NOTES_RATE_LIMITS", "off",
                                      "NOTES_MAX_OUTPUT_MIB", BUDGET_MIB, "NOTES_AUDIT_SYNC", "always", NULL });
    char *token = harness_user_with_big_notes(&srv, "gone", EXPORT_NOTES);
    char *get = export_request(token);
    char *three = harness_fmt("%s%s%s", get, get, get);
    enum { N = 20, K = 3 };
    struct rawconn c[N];
    for (int i = 0; i < N; i++)
        tls_open_slow(&c[i]);
    long rss0 = raw_rss_kib(srv.pid);
    for (int i = 0; i < N; i++)
        cr_assert_eq(raw_send_str(&c[i], three, 5000), RAW_OK);
    int ok = 0;
    for (int i = 0; i < N; i++)
        ok += first_status(&c[i], i) == 200;
    long rss1 = raw_rss_kib(srv.pid);
    cr_log_info("%d x %d pipelined, held exports: %d first answers 200; server RSS %ld -> %ld KiB", N, K, ok, rss0,
                rss1);
    cr_assert_leq(ok, 1, "%d connections were answered an export of ~6 MB at once under an %s MiB budget", ok,
                  BUDGET_MIB);
    cr_assert_leq(rss1 - rss0, RSS_GROWTH_MAX_KIB, "server RSS grew by %ld KiB for %d exports asked at once",
                  rss1 - rss0, N * K);
    /* Gone without reading what they were sent. */
    for (int i = 0; i < N; i++)
        raw_close(&c[i]);
    int tries = 0;
    long status = export_until_ok(token, 100, &tries);
    cr_log_info("an export after every client left: %ld after %d tries", status, tries);
    cr_assert_eq(status, 200, "an export after every client left: %ld; the budget was not given back", status);
    /* Once every connection is gone the server finds its budget at 0, or
     * says what it still counts. */
    cr_assert_eq(harness_stop(&srv), 0, "the server did not stop cleanly");
    cr_assert_eq(harness_log_count(&srv, "output budget:"), 0,
                 "the output budget still counted bytes after every connection closed");
    free(three);
    free(get);
    free(token);
}

/* An answer the client has read in full no longer counts, though its
 * connection stays open: it counted while built, then while queued for the
 * socket, and nothing of it after. (The budget gives back what a
 * connection counts when it is freed, so only a connection kept open
 * shows a share that the send path forgot.) */
Test(budget, an_answer_read_in_full_leaves_the_budget_while_its_connection_stays, .init = prep, .fini = finish,
     .timeout = 180)
{
    start_with((const char *const[]){ "NOTES_REGISTRATION", "open", "NOTES_RATE_LIMITS", "off",
                                      "NOTES_MAX_OUTPUT_MIB", BUDGET_MIB, NULL });
    char *token = harness_user_with_big_notes(&srv, "kept", EXPORT_NOTES);
    char *get = export_request(token);
    struct rawconn c;
    tls_open(&c);
    cr_assert_eq(raw_send_str(&c, get, 5000), RAW_OK);
    struct rawbuf in = { 0 };
    enum raw_io e = raw_read_responses(&c, &in, 1, 60000);
    struct raw_resp r;
    size_t k = raw_parse_response(in.p, in.len, &r);
    cr_assert(k != 0 && k != (size_t)-1, "no whole answer (%s, %zu bytes)", raw_io_name(e), in.len);
    cr_assert_eq(r.status, 200);
    raw_resp_free(&r);
    rawbuf_free(&in);
    /* Every byte arrived, so the server's write completed, and its
     * callback runs before the loop reads the next request. One try. */
    int tries = 0;
    long status = export_until_ok(token, 1, &tries);
    cr_assert_eq(status, 200, "an export beside a kept connection whose export was read in full: %ld", status);
    raw_close(&c);
    cr_assert(server_alive());
    free(get);
    free(token);
}
