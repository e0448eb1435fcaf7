/*
 * tls.c - mbedTLS server sessions over memory buffers.
 *
 * Owns the shared ssl_config, the certificate chain, the private key and the
 * session-ticket keys (rotated by mbedTLS every ticket lifetime), plus one
 * ssl_context per connection. The BIO callbacks never block: recv takes
 * bytes from the connection's input buffer or says WANT_READ, send appends
 * to its output buffer, which the server drains to the socket. The key
 * material is wiped when the context is freed and never leaves this file.
 */
#include "tls.h"
#include "err.h"
#include "file.h"
#include "log.h"

#include <mbedtls/build_info.h>
#include <mbedtls/pk.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/ssl.h>
#include <mbedtls/ssl_ticket.h>
#include <mbedtls/x509_crt.h>
#include <psa/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TLS_PEM_MAX (256 * 1024)      /* a certificate chain or key file */
#define TLS_IN_MAX (64 * 1024)        /* ciphertext queued but not yet read */
#define TLS_OUT_MAX (1024 * 1024)     /* ciphertext queued but not yet sent */
#define TLS_TICKET_LIFETIME 86400     /* seconds; keys rotate on this period */

struct tls_ctx {
    mbedtls_ssl_config conf;
    mbedtls_x509_crt chain;
    mbedtls_pk_context key;
    mbedtls_ssl_ticket_context ticket;
    /* The connection whose handshake step runs now (loop thread only), for
     * the ticket callback, which mbedTLS gives no connection: its version
     * decides, and it is marked resumed when its ticket is taken. */
    struct tls_conn *handshaking;
};

struct tls_conn {
    mbedtls_ssl_context ssl;
    struct tls_ctx *ctx;
    bool resumed;
    struct buf in;
    size_t in_off;          /* bytes of `in` already given to mbedTLS */
    struct buf out;
    bool handshake_done;
    /* Records mbedtls_ssl_read() asked to write: see bio_send(). */
    bool reading;
    unsigned read_writes;   /* the first is written, any further refused */
    bool renegotiation_refused;
    uint64_t records_out;   /* application records written under the current keys */
    bool close_notified;
};

/* TLS 1.3 suites first, then the TLS 1.2 ECDHE AEAD suites (Mozilla
 * intermediate). Only these are compiled in; listing them again here keeps
 * the run-time choice explicit and testable. */
static const int suites[] = {
    MBEDTLS_TLS1_3_AES_256_GCM_SHA384,
    MBEDTLS_TLS1_3_CHACHA20_POLY1305_SHA256,
    MBEDTLS_TLS1_3_AES_128_GCM_SHA256,
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    MBEDTLS_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    MBEDTLS_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    MBEDTLS_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    0,
};

static const uint16_t groups[] = {
    MBEDTLS_SSL_IANA_TLS_GROUP_X25519,
    MBEDTLS_SSL_IANA_TLS_GROUP_SECP256R1,
    MBEDTLS_SSL_IANA_TLS_GROUP_SECP384R1,
    MBEDTLS_SSL_IANA_TLS_GROUP_NONE,
};

/* Only HTTP/1.1 is spoken; a client that offers only h2 is refused in the
 * handshake rather than misparsed afterwards. */
static const char *alpn[] = { "http/1.1", NULL };

static int rng(void *unused, unsigned char *out, size_t n)
{
    (void)unused;
    return psa_generate_random(out, n) == PSA_SUCCESS ? 0 : MBEDTLS_ERR_SSL_INTERNAL_ERROR;
}

static int failf(char *err, size_t errlen, const char *name, const char *what)
{
    snprintf(err, errlen, "%s: %s", name, what);
    return ERR_CONFIG;
}

static int load_chain(struct tls_ctx *ctx, const char *path, char *err, size_t errlen)
{
    char why[256];
    struct buf b;
    buf_init(&b, 0);
    int rc = file_read_all(path, TLS_PEM_MAX, false, &b, why, sizeof(why));
    if (rc) {
        buf_cleanup(&b);
        return failf(err, errlen, "NOTES_TLS_CERT", why);
    }
    /* PEM input must include its terminating NUL in the length. */
    rc = mbedtls_x509_crt_parse(&ctx->chain, b.data, b.len + 1);
    buf_cleanup(&b);
    if (rc != 0)
        return failf(err, errlen, "NOTES_TLS_CERT", "not a valid PEM or DER certificate (ECDSA P-256/P-384 or RSA)");
    const mbedtls_x509_crt *leaf = &ctx->chain;
    if (mbedtls_x509_time_is_past(&leaf->valid_to))
        return failf(err, errlen, "NOTES_TLS_CERT", "the certificate has expired");
    if (mbedtls_x509_time_is_future(&leaf->valid_from))
        return failf(err, errlen, "NOTES_TLS_CERT", "the certificate is not valid yet");
    if (mbedtls_pk_get_type(&leaf->pk) == MBEDTLS_PK_RSA && mbedtls_pk_get_bitlen(&leaf->pk) < 2048)
        return failf(err, errlen, "NOTES_TLS_CERT", "RSA keys shorter than 2048 bits are refused");
    /* The Certificate message (each certificate with a 3-byte length and,
     * in TLS 1.3, 2 bytes of extensions, plus a few bytes of header) is
     * never split across records: it must fit one output record. */
    size_t msg = 16;
    for (const mbedtls_x509_crt *c = leaf; c && c->raw.len; c = c->next)
        msg += c->raw.len + 5;
    if (msg > MBEDTLS_SSL_OUT_CONTENT_LEN)
        return failf(err, errlen, "NOTES_TLS_CERT",
                     "the certificate chain is too large to send in one handshake record (at most about "
                     "4 KiB of DER: leave the root out, prefer ECDSA certificates)");
    return 0;
}

static int load_key(struct tls_ctx *ctx, const char *path, char *err, size_t errlen)
{
    char why[256];
    struct buf b;
    buf_init(&b, 0);
    int rc = file_read_all(path, TLS_PEM_MAX, true, &b, why, sizeof(why));
    if (rc) {
        buf_cleanup_wipe(&b);
        return failf(err, errlen, "NOTES_TLS_KEY", why);
    }
    rc = mbedtls_pk_parse_key(&ctx->key, b.data, b.len + 1, NULL, 0, rng, NULL);
    buf_cleanup_wipe(&b);
    if (rc != 0)
        return failf(err, errlen, "NOTES_TLS_KEY", "not a valid unencrypted PEM or DER private key");
    if (mbedtls_pk_check_pair(&ctx->chain.pk, &ctx->key, rng, NULL) != 0)
        return failf(err, errlen, "NOTES_TLS_KEY", "the key does not match the certificate in NOTES_TLS_CERT");
    return 0;
}

/* Only TLS 1.3 sessions resume, and only with a fresh (EC)DHE (psk_dhe_ke).
 * A TLS 1.2 resumption is an abbreviated handshake without one: whoever
 * later held the ticket key could read it. So TLS 1.2 gets no ticket (an
 * empty one, RFC 5077 §3.3) and a TLS 1.2 ticket is never accepted; the
 * client then makes a full handshake. */
static bool resumable(const mbedtls_ssl_session *session)
{
    /* The session's version has no public getter; its suite tells: TLS 1.3
     * suites are 0x13xx (RFC 8446 §B.4), TLS 1.2's never are. */
    return (mbedtls_ssl_session_get_ciphersuite_id(session) >> 8) == 0x13;
}

/* Is the handshake that asks a TLS 1.3 one? mbedTLS's TLS 1.2 server takes
 * any ticket it can decrypt, a TLS 1.3 session's too, and resumed it in
 * TLS 1.2 (an abbreviated handshake). No handshake running: no. */
static bool in_tls13(const struct tls_ctx *ctx)
{
    return ctx->handshaking && tls_conn_is_tls13(ctx->handshaking);
}

/* mbedTLS gives the ticket callback no session handle: the connection
 * whose handshake step runs is the one resumed when its ticket is taken. */
static int ticket_parse(void *arg, mbedtls_ssl_session *session, unsigned char *buf, size_t len)
{
    struct tls_ctx *ctx = arg;
    int rc = mbedtls_ssl_ticket_parse(&ctx->ticket, session, buf, len);
    if (rc == 0 && (!resumable(session) || !in_tls13(ctx)))
        rc = MBEDTLS_ERR_SSL_INVALID_MAC;   /* read as "no ticket": a full handshake */
    if (rc == 0)
        ctx->handshaking->resumed = true;   /* in_tls13(): not NULL */
    return rc;
}

static int ticket_write(void *arg, const mbedtls_ssl_session *session, unsigned char *start,
                        const unsigned char *end, size_t *tlen, uint32_t *lifetime)
{
    struct tls_ctx *ctx = arg;
    if (!resumable(session))
        return MBEDTLS_ERR_SSL_FEATURE_UNAVAILABLE;   /* mbedTLS sends an empty ticket */
    return mbedtls_ssl_ticket_write(&ctx->ticket, session, start, end, tlen, lifetime);
}

static int setup_conf(struct tls_ctx *ctx, char *err, size_t errlen)
{
    mbedtls_ssl_config *conf = &ctx->conf;
    if (mbedtls_ssl_config_defaults(conf, MBEDTLS_SSL_IS_SERVER, MBEDTLS_SSL_TRANSPORT_STREAM,
                                    MBEDTLS_SSL_PRESET_DEFAULT) != 0)
        goto fail;
    mbedtls_ssl_conf_rng(conf, rng, NULL);
    mbedtls_ssl_conf_min_tls_version(conf, MBEDTLS_SSL_VERSION_TLS1_2);
    mbedtls_ssl_conf_max_tls_version(conf, MBEDTLS_SSL_VERSION_TLS1_3);
    mbedtls_ssl_conf_ciphersuites(conf, suites);
    /* Mozilla's profile: the client chooses among the allowed suites (it
     * knows whether it has AES hardware); TLS 1.3 already does. */
    mbedtls_ssl_conf_preference_order(conf, MBEDTLS_SSL_SRV_CIPHERSUITE_ORDER_CLIENT);
    mbedtls_ssl_conf_groups(conf, groups);
    mbedtls_ssl_conf_authmode(conf, MBEDTLS_SSL_VERIFY_NONE);
    /* Resumption only with a fresh (EC)DHE exchange: forward secret. */
    mbedtls_ssl_conf_tls13_key_exchange_modes(conf, MBEDTLS_SSL_TLS1_3_KEY_EXCHANGE_MODE_EPHEMERAL |
                                                       MBEDTLS_SSL_TLS1_3_KEY_EXCHANGE_MODE_PSK_EPHEMERAL);
    if (mbedtls_ssl_conf_alpn_protocols(conf, alpn) != 0)
        goto fail;
    if (mbedtls_ssl_conf_own_cert(conf, &ctx->chain, &ctx->key) != 0)
        goto fail;
    if (mbedtls_ssl_ticket_setup(&ctx->ticket, rng, NULL, MBEDTLS_CIPHER_AES_256_GCM,
                                 TLS_TICKET_LIFETIME) != 0)
        goto fail;
    mbedtls_ssl_conf_session_tickets_cb(conf, ticket_write, ticket_parse, ctx);
    return 0;
fail:
    snprintf(err, errlen, "TLS: cannot set up the server configuration");
    return ERR_CONFIG;
}

int tls_ctx_new(struct tls_ctx **out, const struct config *cfg, char *err, size_t errlen)
{
    /* Every ECDHE share of an X25519 handshake comes from tls_x25519.c: a
     * build that got it wrong must not serve. */
    if (tls_x25519_check() != 0) {
        snprintf(err, errlen, "TLS: the X25519 self-test failed");
        return ERR_CRYPTO;
    }
    struct tls_ctx *ctx = calloc(1, sizeof(*ctx));
    if (!ctx) {
        snprintf(err, errlen, "TLS: out of memory");
        return ERR_NOMEM;
    }
    mbedtls_ssl_config_init(&ctx->conf);
    mbedtls_x509_crt_init(&ctx->chain);
    mbedtls_pk_init(&ctx->key);
    mbedtls_ssl_ticket_init(&ctx->ticket);
    int rc = load_chain(ctx, cfg->tls_cert, err, errlen);
    if (rc == 0)
        rc = load_key(ctx, cfg->tls_key, err, errlen);
    if (rc == 0)
        rc = setup_conf(ctx, err, errlen);
    if (rc) {
        tls_ctx_free(ctx);
        return rc;
    }
    *out = ctx;
    return 0;
}

void tls_ctx_free(struct tls_ctx *ctx)
{
    if (!ctx)
        return;
    mbedtls_ssl_ticket_free(&ctx->ticket);
    mbedtls_ssl_config_free(&ctx->conf);
    mbedtls_pk_free(&ctx->key);    /* zeroizes the key */
    mbedtls_x509_crt_free(&ctx->chain);
    free(ctx);
}

/* After the handshake, a server writes while it reads only to answer what
 * the client sent: a warning alert refusing a renegotiation (a ClientHello),
 * or a fatal alert before it fails. One such record is all a read may
 * write: mbedTLS answers every ClientHello of a record, and 16 KiB packed
 * with 4-byte ClientHellos would otherwise come back as 127 KB of alerts. */
static int bio_send(void *arg, const unsigned char *p, size_t n)
{
    struct tls_conn *c = arg;
    if (c->reading && c->read_writes++ > 0)
        return MBEDTLS_ERR_SSL_BAD_INPUT_DATA;   /* ends the read; the connection closes */
    if (buf_append(&c->out, p, n) != 0)
        return MBEDTLS_ERR_SSL_ALLOC_FAILED;
    return (int)n;
}

static int bio_recv(void *arg, unsigned char *p, size_t n)
{
    struct tls_conn *c = arg;
    size_t avail = c->in.len - c->in_off;
    if (avail == 0) {
        buf_reset(&c->in);
        c->in_off = 0;
        return MBEDTLS_ERR_SSL_WANT_READ;
    }
    if (n > avail)
        n = avail;
    memcpy(p, c->in.data + c->in_off, n);
    c->in_off += n;
    return (int)n;
}

struct tls_conn *tls_conn_new(struct tls_ctx *ctx)
{
    struct tls_conn *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    mbedtls_ssl_init(&c->ssl);
    if (mbedtls_ssl_setup(&c->ssl, &ctx->conf) != 0) {
        mbedtls_ssl_free(&c->ssl);
        free(c);
        return NULL;
    }
    c->ctx = ctx;
    buf_init(&c->in, TLS_IN_MAX);
    buf_init(&c->out, TLS_OUT_MAX);
    mbedtls_ssl_set_bio(&c->ssl, c, bio_send, bio_recv, NULL);
    return c;
}

void tls_conn_free(struct tls_conn *c)
{
    if (!c)
        return;
    mbedtls_ssl_free(&c->ssl);
    buf_cleanup(&c->in);
    buf_cleanup(&c->out);
    free(c);
}

void tls_conn_trim(struct tls_conn *c)
{
    if (c->in_off < c->in.len)
        return;
    buf_cleanup(&c->in);
    c->in_off = 0;
}

size_t tls_conn_unread(const struct tls_conn *c)
{
    return c->in.len - c->in_off;
}

int tls_conn_feed(struct tls_conn *c, const uint8_t *p, size_t n)
{
    if (c->in_off > 0 && c->in_off == c->in.len) {
        buf_reset(&c->in);
        c->in_off = 0;
    }
    if (c->in_off > 0 && c->in.len + n > c->in.max) {
        buf_consume(&c->in, c->in_off);
        c->in_off = 0;
    }
    return buf_append(&c->in, p, n);
}

static int map_error(int rc)
{
    switch (rc) {
    case MBEDTLS_ERR_SSL_WANT_READ:
    case MBEDTLS_ERR_SSL_WANT_WRITE:
    case MBEDTLS_ERR_SSL_RECEIVED_NEW_SESSION_TICKET:
        return ERR_WANT_IO;
    case MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY:
    case MBEDTLS_ERR_SSL_CONN_EOF:
        return ERR_CLOSED;
    default:
        log_debug("TLS session failed: mbedTLS error -0x%04x", (unsigned)-rc);
        return ERR_TLS;
    }
}

int tls_conn_handshake(struct tls_conn *c)
{
    if (c->handshake_done)
        return 0;
    c->ctx->handshaking = c;
    int rc = mbedtls_ssl_handshake(&c->ssl);
    c->ctx->handshaking = NULL;
    if (rc == 0) {
        c->handshake_done = true;
        return 0;
    }
    return map_error(rc);
}

bool tls_conn_handshake_done(const struct tls_conn *c)
{
    return c->handshake_done;
}

/* Did this read refuse a renegotiation? mbedTLS says so only with the
 * alert it wrote (no_renegotiation, and then no error of its own, or the
 * second alert that bio_send() refused). TLS 1.3 has no renegotiation. */
static bool refused_renegotiation(const struct tls_conn *c, int rc)
{
    return c->read_writes > 0 && mbedtls_ssl_get_version_number(&c->ssl) == MBEDTLS_SSL_VERSION_TLS1_2 &&
           (rc >= 0 || rc == MBEDTLS_ERR_SSL_WANT_READ || c->read_writes > 1);
}

int tls_conn_read(struct tls_conn *c, uint8_t *out, size_t cap, size_t *got)
{
    *got = 0;
    c->reading = true;
    c->read_writes = 0;
    int rc = mbedtls_ssl_read(&c->ssl, out, cap);
    c->reading = false;
    if (refused_renegotiation(c, rc)) {
        /* Renegotiation is refused by design (README, "TLS"): a client
         * that tries is not one to keep talking to. */
        c->renegotiation_refused = true;
        return ERR_TLS;
    }
    if (rc > 0) {
        *got = (size_t)rc;
        return 0;
    }
    if (rc == 0)
        return ERR_CLOSED;
    return map_error(rc);
}

int tls_conn_write(struct tls_conn *c, const uint8_t *p, size_t n)
{
    while (n > 0) {
        int rc = mbedtls_ssl_write(&c->ssl, p, n);
        if (rc == MBEDTLS_ERR_SSL_ALLOC_FAILED)
            return ERR_LIMIT;
        if (rc < 0)
            return map_error(rc) == ERR_WANT_IO ? ERR_INTERNAL : ERR_TLS;
        p += rc;
        n -= (size_t)rc;
        c->records_out++;   /* one call writes at most one record */
    }
    return 0;
}

uint64_t tls_conn_records_out(const struct tls_conn *c)
{
    return c->records_out;
}

void tls_conn_close_notify(struct tls_conn *c)
{
    /* After a refused renegotiation mbedTLS may still hold the alert that
     * bio_send() refused; a close_notify would push it out first. */
    if (c->handshake_done && !c->renegotiation_refused && !c->close_notified)
        (void)mbedtls_ssl_close_notify(&c->ssl);
    c->close_notified = true;
}

bool tls_conn_is_tls13(const struct tls_conn *c)
{
    return mbedtls_ssl_get_version_number(&c->ssl) == MBEDTLS_SSL_VERSION_TLS1_3;
}

struct buf *tls_conn_output(struct tls_conn *c)
{
    return &c->out;
}

bool tls_conn_renegotiation_refused(const struct tls_conn *c)
{
    return c->renegotiation_refused;
}

bool tls_conn_resumed(const struct tls_conn *c)
{
    return c->resumed;
}

const char *tls_conn_version(const struct tls_conn *c)
{
    return mbedtls_ssl_get_version(&c->ssl);
}

const char *tls_conn_suite(const struct tls_conn *c)
{
    return mbedtls_ssl_get_ciphersuite(&c->ssl);
}

void tls_describe_profile(char *out, size_t len)
{
    size_t used = (size_t)snprintf(out, len, "TLS 1.3 and 1.2; groups x25519 secp256r1 secp384r1; suites");
    for (size_t i = 0; suites[i] && used < len; i++) {
        const char *name = mbedtls_ssl_get_ciphersuite_name(suites[i]);
        used += (size_t)snprintf(out + used, len - used, " %s", name ? name : "?");
    }
}

const char *tls_library_version(void)
{
    return MBEDTLS_VERSION_STRING;
}
