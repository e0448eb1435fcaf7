/*
 * tls12client.c - an OpenSSL TLS 1.2 client for tests that need more than
 * libcurl gives (see tls12client.h). The raw record writer derives the
 * client write key from the session's master secret (RFC 5246 §6.3) and
 * seals records as RFC 5288 does for AES-GCM, so the server sees records
 * indistinguishable from OpenSSL's own.
 */
#include "tls12client.h"
#include "harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define KEY_LEN 16      /* AES-128 */
#define SALT_LEN 4      /* the implicit part of the GCM nonce */
#define TAG_LEN 16
#define MAX_PLAIN 16384

static int fail(struct tls12client *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof(c->err), fmt, ap);
    va_end(ap);
    size_t used = strlen(c->err);
    unsigned long e = ERR_get_error();
    if (e && used < sizeof(c->err))
        ERR_error_string_n(e, c->err + used, sizeof(c->err) - used);
    ERR_clear_error();
    return -1;
}

/* Remember every alert that arrives: the tests look for no_renegotiation. */
static void on_msg(int write_p, int version, int content_type, const void *buf, size_t len, SSL *ssl, void *arg)
{
    (void)version;
    (void)ssl;
    struct tls12client *c = arg;
    const uint8_t *p = buf;
    if (write_p || content_type != SSL3_RT_ALERT || len < 2)
        return;
    if (c->n_alerts < sizeof(c->alerts_read) / sizeof(c->alerts_read[0]))
        c->alerts_read[c->n_alerts++] = p[1];
}

static int tcp_connect(struct tls12client *c, int port, long timeout_ms)
{
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (c->fd < 0)
        return fail(c, "socket: %s", strerror(errno));
    struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
        return fail(c, "connect: %s", strerror(errno));
    return 0;
}

static int setup_ctx(struct tls12client *c, const char *cafile)
{
    c->ctx = SSL_CTX_new(TLS_client_method());
    if (!c->ctx)
        return fail(c, "SSL_CTX_new: ");
    SSL_CTX_set_min_proto_version(c->ctx, TLS1_2_VERSION);
    SSL_CTX_set_max_proto_version(c->ctx, TLS1_2_VERSION);
    if (SSL_CTX_set_cipher_list(c->ctx, "ECDHE-ECDSA-AES128-GCM-SHA256") != 1)
        return fail(c, "cipher list: ");
    if (SSL_CTX_load_verify_locations(c->ctx, cafile, NULL) != 1)
        return fail(c, "CA file %s: ", cafile);
    SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
    return 0;
}

int tls12client_connect(struct tls12client *c, int port, const char *cafile, long timeout_ms)
{
    memset(c, 0, sizeof(*c));
    c->fd = -1;
    if (setup_ctx(c, cafile) != 0 || tcp_connect(c, port, timeout_ms) != 0)
        return -1;
    c->ssl = SSL_new(c->ctx);
    if (!c->ssl)
        return fail(c, "SSL_new: ");
    SSL_set_msg_callback(c->ssl, on_msg);
    SSL_set_msg_callback_arg(c->ssl, c);
    SSL_set_tlsext_host_name(c->ssl, "localhost");
    SSL_set1_host(c->ssl, "localhost");
    SSL_set_fd(c->ssl, c->fd);
    if (SSL_connect(c->ssl) != 1)
        return fail(c, "TLS 1.2 handshake: ");
    c->seq = 1;   /* the client's Finished went out as record 0 */
    return 0;
}

/* RFC 5246 §6.3: key_block = PRF(master, "key expansion", server_random +
 * client_random); with AES-128-GCM it starts with the client write key,
 * then the server's, then the client's and the server's 4-byte salts. */
static int client_keys(struct tls12client *c, uint8_t key[KEY_LEN], uint8_t salt[SALT_LEN])
{
    uint8_t master[48], seed[13 + 64], block[2 * KEY_LEN + 2 * SALT_LEN];
    size_t mlen = SSL_SESSION_get_master_key(SSL_get_session(c->ssl), master, sizeof(master));
    memcpy(seed, "key expansion", 13);
    SSL_get_server_random(c->ssl, seed + 13, 32);
    SSL_get_client_random(c->ssl, seed + 45, 32);
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "TLS1-PRF", NULL);
    EVP_KDF_CTX *kctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, "SHA256", 0),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SECRET, master, mlen),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SEED, seed, sizeof(seed)),
        OSSL_PARAM_construct_end(),
    };
    int ok = kctx && EVP_KDF_derive(kctx, block, sizeof(block), params) == 1;
    EVP_KDF_CTX_free(kctx);
    EVP_KDF_free(kdf);
    if (!ok)
        return fail(c, "TLS1-PRF: ");
    memcpy(key, block, KEY_LEN);
    memcpy(salt, block + 2 * KEY_LEN, SALT_LEN);
    return 0;
}

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

/* Seal p[0..n) as record `seq` of `type` into rec (header included). */
static int seal(struct tls12client *c, uint8_t type, const uint8_t *p, size_t n, uint8_t *rec, size_t *rec_len)
{
    uint8_t key[KEY_LEN], nonce[SALT_LEN + 8], aad[13];
    if (client_keys(c, key, nonce) != 0)
        return -1;
    put64(nonce + SALT_LEN, c->seq);   /* the explicit nonce: the sequence number */
    put64(aad, c->seq);
    aad[8] = type;
    aad[9] = 3, aad[10] = 3;
    aad[11] = (uint8_t)(n >> 8), aad[12] = (uint8_t)n;
    size_t body = 8 + n + TAG_LEN;
    rec[0] = type, rec[1] = 3, rec[2] = 3, rec[3] = (uint8_t)(body >> 8), rec[4] = (uint8_t)body;
    memcpy(rec + 5, nonce + SALT_LEN, 8);
    EVP_CIPHER_CTX *e = EVP_CIPHER_CTX_new();
    int outl = 0, finl = 0;
    int ok = e && EVP_EncryptInit_ex(e, EVP_aes_128_gcm(), NULL, key, nonce) == 1 &&
             EVP_EncryptUpdate(e, NULL, &outl, aad, sizeof(aad)) == 1 &&
             EVP_EncryptUpdate(e, rec + 13, &outl, p, (int)n) == 1 &&
             EVP_EncryptFinal_ex(e, rec + 13 + outl, &finl) == 1 &&
             EVP_CIPHER_CTX_ctrl(e, EVP_CTRL_GCM_GET_TAG, TAG_LEN, rec + 13 + n) == 1;
    EVP_CIPHER_CTX_free(e);
    if (!ok)
        return fail(c, "AES-GCM: ");
    *rec_len = 5 + body;
    c->seq++;
    return 0;
}

int tls12client_send_raw(struct tls12client *c, uint8_t type, const uint8_t *p, size_t n)
{
    static uint8_t rec[5 + 8 + MAX_PLAIN + TAG_LEN];
    size_t len = 0;
    if (n > MAX_PLAIN)
        return fail(c, "record of %zu bytes: too long", n);
    if (seal(c, type, p, n, rec, &len) != 0)
        return -1;
    for (size_t off = 0; off < len;) {
        ssize_t k = send(c->fd, rec + off, len - off, MSG_NOSIGNAL);
        if (k <= 0)
            return fail(c, "send: %s", k < 0 ? strerror(errno) : "nothing sent");
        off += (size_t)k;
    }
    return 0;
}

int tls12client_read_until_close(struct tls12client *c, long timeout_ms, size_t *got)
{
    uint8_t buf[16384];
    long end = harness_now_ms() + timeout_ms;
    *got = 0;
    for (long left = timeout_ms; left > 0; left = end - harness_now_ms()) {
        struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
        if (poll(&pfd, 1, (int)left) <= 0)
            continue;
        ssize_t k = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (k == 0 || (k < 0 && errno != EAGAIN && errno != EINTR))
            return 1;
        if (k > 0)
            *got += (size_t)k;
    }
    return 0;
}

void tls12client_close(struct tls12client *c)
{
    SSL_free(c->ssl);
    SSL_CTX_free(c->ctx);
    if (c->fd >= 0)
        close(c->fd);
    c->ssl = NULL;
    c->ctx = NULL;
    c->fd = -1;
}
