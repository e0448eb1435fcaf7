/*
 * tls12client.h - a TLS 1.2 client on OpenSSL's libssl that can do what
 * libcurl will not: renegotiate, and write records of any type and content
 * under the session's keys (a handshake record packed with ClientHellos).
 *
 * The socket is blocking with send and receive timeouts, so every call is
 * bounded without sleeping. Only ECDHE-ECDSA-AES128-GCM-SHA256 is offered
 * (notesd gen-cert makes ECDSA P-256 certificates), which fixes the record
 * layout the raw writer produces. Test code only.
 */
#ifndef NOTESD_TEST_TLS12CLIENT_H
#define NOTESD_TEST_TLS12CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <openssl/ssl.h>

struct tls12client {
    SSL_CTX *ctx;
    SSL *ssl;
    int fd;
    uint64_t seq;               /* the next client record's sequence number */
    int alerts_read[8];         /* descriptions of the alerts received, in order */
    size_t n_alerts;
    char err[256];              /* why a call failed */
};

/** Connect to 127.0.0.1:port as "localhost", verify against `cafile`,
 *  complete a TLS 1.2 handshake. Reads and writes time out after
 *  `timeout_ms`. 0, or -1 with c->err set (tls12client_close is still safe). */
int tls12client_connect(struct tls12client *c, int port, const char *cafile, long timeout_ms);
/** Encrypt one record of `type` carrying p[0..n) (n <= 16384) with the
 *  session's client write key and send it on the socket, behind OpenSSL's
 *  back: use the SSL object no more afterwards. 0 or -1 (c->err). */
int tls12client_send_raw(struct tls12client *c, uint8_t type, const uint8_t *p, size_t n);
/** Read raw bytes from the socket until the peer closes or `timeout_ms`
 *  passes; *got counts them. 1 when the peer closed (FIN or reset), 0 when
 *  still open at the bound. */
int tls12client_read_until_close(struct tls12client *c, long timeout_ms, size_t *got);
/** Free everything; safe twice. */
void tls12client_close(struct tls12client *c);

#endif
