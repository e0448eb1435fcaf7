/*
 * Edge tests of TLS sessions: TLS 1.3 resumption, no TLS 1.2 resumption, a
 * TLS 1.3 ticket in a TLS 1.2 hello; TLS 1.2 renegotiation attempts, refused
 * by design (alert, close). Fixtures and helpers: edge_support.h.
 */
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "tls12client.h"
#include "edge_support.h"

/* ---- TLS session resumption ------------------------------------------------------- */

static size_t sink(char *p, size_t size, size_t n, void *arg)
{
    (void)p;
    (void)arg;
    return size * n;
}

static long shared_request(CURLSH *share, long sslversion)
{
    CURL *h = curl_easy_init();
    cr_assert_not_null(h);
    char url[128], resolve[128];
    snprintf(url, sizeof(url), "https://localhost:%d/healthz", srv.port);
    snprintf(resolve, sizeof(resolve), "localhost:%d:127.0.0.1", srv.port);
    struct curl_slist *res = curl_slist_append(NULL, resolve);
    struct curl_slist *hdrs = curl_slist_append(NULL, "Connection: close");
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_RESOLVE, res);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_CAINFO, srv.cert);
    curl_easy_setopt(h, CURLOPT_SHARE, share);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(h, CURLOPT_FORBID_REUSE, 1L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(h, CURLOPT_SSLVERSION, sslversion);
    CURLcode rc = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(res);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    cr_assert_eq(rc, CURLE_OK, "curl: %s", curl_easy_strerror(rc));
    return status;
}

static size_t count_lines_with(const char *text, const char *needle, const char **last)
{
    size_t n = 0;
    for (const char *p = strstr(text, needle); p; p = strstr(p + 1, needle)) {
        n++;
        if (last)
            *last = p;
    }
    return n;
}

/* Two sequential connections (Connection: close) sharing curl's session
 * cache; the server's debug log must show the second one resumed. */
static void check_resumption(long sslversion, const char *version)
{
    start_with(NULL);
    CURLSH *share = curl_share_init();
    cr_assert_not_null(share);
    curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    cr_assert_eq(shared_request(share, sslversion), 200);
    cr_assert_eq(shared_request(share, sslversion), 200);
    curl_share_cleanup(share);

    char *err = harness_stderr(&srv);
    char tag[64];
    snprintf(tag, sizeof(tag), "TLS handshake done: %s", version);
    const char *last = NULL;
    size_t done = count_lines_with(err, tag, &last);
    cr_assert_eq(done, 2, "want two %s handshakes in the log, found %zu:\n%s", version, done, err);
    const char *eol = strchr(last, '\n');
    char *line = strndup(last, eol ? (size_t)(eol - last) : strlen(last));
    cr_assert(strstr(line, "(resumed)"), "the second handshake did not resume: \"%s\"\nfull log:\n%s", line, err);
    const char *first = strstr(err, tag);
    const char *first_eol = strchr(first, '\n');
    cr_assert_null(memmem(first, first_eol ? (size_t)(first_eol - first) : strlen(first), "(resumed)", 9),
                   "the first handshake claims to be resumed");
    free(line);
    free(err);
}

Test(edge, second_connection_resumes_the_tls13_session, .init = prep, .fini = finish)
{
    check_resumption((long)CURL_SSLVERSION_TLSv1_3, "TLSv1.3");
}

/* TLS 1.2 resumption (an abbreviated handshake, no new ECDHE) would not
 * be forward secret: whoever later gets the ticket key could read the
 * resumed connections. So a TLS 1.2 session is never resumed: its ticket
 * is refused and a full handshake follows. libcurl's OpenSSL backend sets
 * SSL_OP_NO_TICKET, so the openssl command line is the client here. */
static char *s_client_version(const char *version, const char *sess_opt, const char *sess_file)
{
    char *cmd = harness_fmt("openssl s_client -connect 127.0.0.1:%d -servername localhost %s -CAfile '%s' "
                    "%s '%s' </dev/null 2>&1", srv.port, version, srv.cert, sess_opt, sess_file);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    struct rawbuf out = { 0 };
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), p)) > 0)
        rawbuf_append(&out, buf, n);
    pclose(p);
    free(cmd);
    return out.p ? out.p : harness_strdup("");
}

static char *s_client(const char *sess_opt, const char *sess_file)
{
    return s_client_version("-tls1_2", sess_opt, sess_file);
}

Test(edge, a_tls12_session_is_not_resumed, .init = prep, .fini = finish)
{
    start_with(NULL);
    char *sess = harness_fmt("%s/tls12.sess", srv.dir);
    char *first = s_client("-sess_out", sess);
    cr_assert_not_null(strstr(first, "New, TLSv1.2"), "first handshake:\n%s", first);
    /* With no ticket and no session cache there may be nothing to save. */
    if (access(sess, F_OK) == 0) {
        char *second = s_client("-sess_in", sess);
        cr_assert_null(strstr(second, "Reused, TLSv1.2"), "a TLS 1.2 session was resumed:\n%s", second);
        cr_assert_not_null(strstr(second, "New, TLSv1.2"), "second handshake:\n%s", second);
        free(second);
    }
    free(first);
    free(sess);
}

/* A TLS 1.3 ticket placed in a TLS 1.2 ClientHello's SessionTicket
 * extension: mbedTLS's TLS 1.2 server restored the TLS 1.3 session from it
 * and answered with an abbreviated handshake (ServerHello echoing the
 * session id, then ChangeCipherSpec). A TLS 1.2 connection must get a full
 * handshake whatever ticket it brings. The ticket comes from openssl's
 * saved session (`openssl sess_id -text`), the hello is written here. */
static size_t tls13_ticket(uint8_t *out, size_t cap)
{
    char *sess = harness_fmt("%s/tls13.sess", srv.dir);
    char *get = harness_fmt("printf 'GET /healthz HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n' | "
                    "openssl s_client -connect 127.0.0.1:%d -servername localhost -tls1_3 -CAfile '%s' "
                    "-sess_out '%s' -ign_eof -quiet >/dev/null 2>&1", srv.port, srv.cert, sess);
    cr_assert_eq(system(get), 0, "%s", get);
    char *text = harness_fmt("openssl sess_id -in '%s' -text -noout", sess);
    FILE *p = popen(text, "r");
    cr_assert_not_null(p);
    char line[512];
    bool in_ticket = false;
    size_t n = 0;
    while (fgets(line, sizeof(line), p)) {
        if (strstr(line, "TLS session ticket:")) {
            in_ticket = true;
            continue;
        }
        const char *dash = in_ticket ? strstr(line, " - ") : NULL;
        if (!dash) {
            in_ticket = in_ticket && line[0] != '\n' && line[0] != '\0';
            continue;
        }
        /* "    0000 - 9b 2c ... 07-1a ...   ascii": pairs until two spaces */
        for (const char *q = dash + 3; q[0] && q[1] && !(q[0] == ' ' && q[1] == ' ');) {
            unsigned v;
            if (sscanf(q, "%2x", &v) != 1)
                break;
            cr_assert_lt(n, cap);
            out[n++] = (uint8_t)v;
            q += 2;
            if (*q == ' ' || *q == '-')
                q++;
        }
    }
    pclose(p);
    free(text);
    free(get);
    free(sess);
    return n;
}

static size_t put16(uint8_t *p, size_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
    return 2;
}

/* A TLS 1.2 ClientHello (ECDHE AEAD suites, x25519/P-256, ECDSA/RSA-PSS)
 * with `sid` as session id and `ticket` in the SessionTicket extension. */
static size_t tls12_hello(uint8_t *rec, const uint8_t sid[32], const uint8_t *ticket, size_t ticket_len)
{
    static const uint8_t fixed_ext[] = {
        0x00, 0x0a, 0x00, 0x06, 0x00, 0x04, 0x00, 0x1d, 0x00, 0x17,            /* groups */
        0x00, 0x0b, 0x00, 0x02, 0x01, 0x00,                                      /* point formats */
        0x00, 0x0d, 0x00, 0x08, 0x00, 0x06, 0x04, 0x03, 0x08, 0x04, 0x04, 0x01,  /* signature algorithms */
        0x00, 0x17, 0x00, 0x00,                                                  /* extended master secret */
    };
    static const uint8_t suites[] = { 0xc0, 0x2b, 0xc0, 0x2f, 0xc0, 0x2c, 0xc0, 0x30, 0xcc, 0xa9, 0xcc, 0xa8 };
    uint8_t *b = rec + 9;                 /* after the record and handshake headers */
    size_t n = 0;
    b[n++] = 3, b[n++] = 3;
    for (int i = 0; i < 32; i++)
        b[n++] = (uint8_t)(i * 7 + 1);    /* client random: any bytes */
    b[n++] = 32;
    memcpy(b + n, sid, 32), n += 32;
    n += put16(b + n, sizeof(suites));
    memcpy(b + n, suites, sizeof(suites)), n += sizeof(suites);
    b[n++] = 1, b[n++] = 0;               /* compression: null */
    n += put16(b + n, sizeof(fixed_ext) + 4 + ticket_len);
    memcpy(b + n, fixed_ext, sizeof(fixed_ext)), n += sizeof(fixed_ext);
    n += put16(b + n, 35);                /* session_ticket */
    n += put16(b + n, ticket_len);
    memcpy(b + n, ticket, ticket_len), n += ticket_len;
    rec[0] = 0x16, rec[1] = 3, rec[2] = 1;
    put16(rec + 3, n + 4);
    rec[5] = 1, rec[6] = (uint8_t)(n >> 16), rec[7] = (uint8_t)(n >> 8), rec[8] = (uint8_t)n;
    return n + 9;
}

Test(edge, a_tls13_ticket_in_a_tls12_hello_gets_a_full_handshake, .init = prep, .fini = finish, .timeout = 60)
{
    start_with(NULL);
    uint8_t ticket[2048], rec[4096], sid[32];
    size_t tlen = tls13_ticket(ticket, sizeof(ticket));
    cr_assert_gt(tlen, 32, "no TLS 1.3 ticket from openssl");
    /* The control: the saved session (whose ticket was read out) resumes in
     * TLS 1.3, so the ticket sent below is one the server accepts. */
    char *sess = harness_fmt("%s/tls13.sess", srv.dir);
    char *said = s_client_version("-tls1_3", "-sess_in", sess);
    cr_assert_not_null(strstr(said, "Reused, TLSv1.3"), "the saved TLS 1.3 session did not resume:\n%s", said);
    free(said);
    free(sess);
    memset(sid, 0x5a, sizeof(sid));
    size_t n = tls12_hello(rec, sid, ticket, tlen);
    struct rawconn c;
    cr_assert_eq(raw_tcp_connect(&c, srv.port), 0);
    cr_assert_eq(raw_send(&c, rec, n, 5000, NULL), RAW_OK);
    /* Read until the handshake message after the ServerHello is known. */
    struct rawbuf in = { 0 };
    long until = raw_now_ms() + 5000;
    uint8_t hs[8192];
    size_t hs_len = 0, off = 0;
    int after_hello = -1;
    bool echoed = false, hello = false;
    while (after_hello < 0 && raw_now_ms() < until) {
        uint8_t buf[4096];
        size_t got = 0;
        if (raw_recv(&c, buf, sizeof(buf), &got, until - raw_now_ms()) != RAW_OK)
            break;
        rawbuf_append(&in, buf, got);
        for (; off + 5 <= in.len;) {                 /* whole records only */
            const uint8_t *r = (const uint8_t *)in.p + off;
            size_t len = (size_t)r[3] << 8 | r[4];
            if (off + 5 + len > in.len)
                break;
            if (r[0] == 0x14 && hello && after_hello < 0)
                after_hello = 0x14;                   /* ChangeCipherSpec: abbreviated */
            if (r[0] == 0x16 && hs_len + len <= sizeof(hs))
                memcpy(hs + hs_len, r + 5, len), hs_len += len;
            off += 5 + len;
        }
        for (size_t p = 0; p + 4 <= hs_len && after_hello < 0;) {
            size_t mlen = (size_t)hs[p + 1] << 16 | (size_t)hs[p + 2] << 8 | hs[p + 3];
            if (p + 4 + mlen > hs_len)
                break;
            if (hs[p] == 2) {
                /* version 2, random 32, session id length 1, then the id */
                cr_assert_geq(mlen, 35, "a ServerHello of %zu bytes", mlen);
                hello = true;
                echoed = hs[p + 4 + 34] == 32 && mlen >= 35 + 32 && memcmp(hs + p + 4 + 35, sid, 32) == 0;
            } else if (hello) {
                after_hello = hs[p];
            }
            p += 4 + mlen;
        }
    }
    raw_close(&c);
    rawbuf_free(&in);
    cr_assert(hello, "no ServerHello");
    cr_assert(!echoed, "the server echoed the session id: it resumed a TLS 1.3 session in TLS 1.2");
    cr_assert_eq(after_hello, 11, "after the ServerHello came %#x, not a Certificate (a full handshake)",
                 (unsigned)after_hello);
}

/* ---- TLS 1.2 renegotiation, refused by design ------------------------------------ */

#define ALERT_NO_RENEGOTIATION 100

static void tls12_open(struct tls12client *c)
{
    cr_assert_eq(tls12client_connect(c, srv.port, srv.cert, 3000), 0, "TLS 1.2 connect: %s", c->err);
}

static bool got_alert(const struct tls12client *c, int description)
{
    for (size_t i = 0; i < c->n_alerts; i++)
        if (c->alerts_read[i] == description)
            return true;
    return false;
}

/* A real client's renegotiation (OpenSSL's SSL_renegotiate) hears its
 * refusal at once, not when the keep-alive timer (15 s) flushes it. */
Test(edge, tls12_renegotiation_is_refused_with_an_alert_at_once, .init = prep, .fini = finish, .timeout = 60)
{
    start_with(NULL);
    struct tls12client c;
    tls12_open(&c);
    long t0 = raw_now_ms();
    cr_assert_eq(SSL_renegotiate(c.ssl), 1, "SSL_renegotiate refused to start");
    int rc = SSL_do_handshake(c.ssl);   /* blocks at most the 3 s receive timeout */
    long took = raw_now_ms() - t0;
    cr_assert_neq(rc, 1, "the renegotiation succeeded: it must be refused");
    cr_assert(got_alert(&c, ALERT_NO_RENEGOTIATION),
              "no no_renegotiation alert within %ld ms (%zu alerts; the server holds its answer until the "
              "keep-alive timeout)", took, c.n_alerts);
    cr_assert_lt(took, 2000, "the no_renegotiation alert took %ld ms", took);
    tls12client_close(&c);
    cr_assert_eq(healthz_status(), 200);
}

/* An empty ClientHello (type 1, length 0): mbedTLS refuses it like a full
 * one, which makes it the cheapest renegotiation attempt. */
static const uint8_t empty_hello[4] = { 1, 0, 0, 0 };
#define ALERT_RECORD_LEN (5 + 8 + 2 + 16)   /* header, explicit nonce, alert, GCM tag */

/* How many audit lines say `event` with `reason`, and their summed count. */
static size_t audit_reason_lines(const char *event, const char *reason, unsigned long long *sum)
{
    char *want_re = harness_fmt("\"reason\":\"%s\"", reason);
    size_t n = harness_audit_lines(&srv, event, want_re, sum);
    free(want_re);
    return n;
}

/* A client that asks to renegotiate and then waits (no fatal alert of its
 * own, unlike OpenSSL) gets the alert and a close, not a connection held
 * open until the keep-alive timeout. */
Test(edge, tls12_client_hello_after_the_handshake_gets_an_alert_and_a_close, .init = prep, .fini = finish,
     .timeout = 60)
{
    start_with(NULL);
    struct tls12client c;
    tls12_open(&c);
    long t0 = raw_now_ms();
    cr_assert_eq(tls12client_send_raw(&c, 22, empty_hello, sizeof(empty_hello)), 0, "%s", c.err);
    size_t got = 0;
    int closed = tls12client_read_until_close(&c, 3000, &got);
    long took = raw_now_ms() - t0;
    cr_assert(closed, "still open %ld ms after a ClientHello (got %zu bytes): a refused renegotiation must "
              "close the connection", took, got);
    cr_assert_eq(got, ALERT_RECORD_LEN, "want exactly one alert record (%d bytes) before the close, got %zu",
                 ALERT_RECORD_LEN, got);
    tls12client_close(&c);
    cr_assert_eq(harness_stop(&srv), 0);
    unsigned long long sum = 0;
    cr_assert_eq(audit_reason_lines("tls.rejected", "renegotiation", &sum), 1,
                 "the refused renegotiation is not in the audit trail's refusal report");
    cr_assert_eq(sum, 1);
}

/* mbedTLS answers every ClientHello in a record: 16 KiB of 4-byte hellos
 * made 4096 alerts (127 KB) per record, held for a client that never
 * reads. One alert, then the close, whatever follows. */
Test(edge, a_record_packed_with_client_hellos_gets_one_alert, .init = prep, .fini = finish, .timeout = 60)
{
    start_with(NULL);
    struct tls12client c;
    tls12_open(&c);
    static uint8_t packed[16384];
    for (size_t i = 0; i < sizeof(packed); i += sizeof(empty_hello))
        memcpy(packed + i, empty_hello, sizeof(empty_hello));
    cr_assert_eq(tls12client_send_raw(&c, 22, packed, sizeof(packed)), 0, "%s", c.err);
    /* More records may meet a connection already closed: not checked. */
    for (int i = 0; i < 3; i++)
        (void)tls12client_send_raw(&c, 22, packed, sizeof(packed));
    size_t got = 0;
    int closed = tls12client_read_until_close(&c, 3000, &got);
    cr_assert_leq(got, ALERT_RECORD_LEN, "%zu bytes answered 4 records of 4096 ClientHellos (one alert is %d)",
                  got, ALERT_RECORD_LEN);
    cr_assert(closed, "still open 3 s after 4 records of ClientHellos");
    tls12client_close(&c);
    cr_assert_eq(healthz_status(), 200);
}
