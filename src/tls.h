/*
 * tls.h - TLS 1.3/1.2 server sessions over memory buffers (mbedTLS 3.6).
 *
 * The only module that includes mbedTLS's TLS and X.509 headers. A tls_ctx
 * holds what all connections share (configuration, certificate, key, ticket
 * keys); a tls_conn is one session whose transport is two buffers: the
 * server pushes received ciphertext in with tls_conn_feed() and sends what
 * tls_conn_output() holds. Nothing here blocks or touches a socket.
 * Everything runs on the event-loop thread.
 */
#ifndef NOTESD_TLS_H
#define NOTESD_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "buf.h"
#include "config.h"

struct tls_ctx;
struct tls_conn;

/**
 * Load NOTES_TLS_CERT and NOTES_TLS_KEY and build the server configuration.
 * Refuses (ERR_CONFIG, one line in `err` naming the variable) when a file is
 * unreadable or unparsable, the key file is accessible by group or others,
 * the key does not match the certificate, the certificate has expired or is
 * not yet valid, or an RSA key is shorter than 2048 bits. PSA crypto must be
 * initialised first (crypto_init()). The caller owns the result.
 */
int tls_ctx_new(struct tls_ctx **out, const struct config *cfg, char *err, size_t errlen);
/** Free the context, wiping the private key. NULL is a no-op. */
void tls_ctx_free(struct tls_ctx *ctx);

/** A new session on `ctx` (which must outlive it); NULL when out of memory. */
struct tls_conn *tls_conn_new(struct tls_ctx *ctx);
/** Free the session and its buffers. NULL is a no-op. */
void tls_conn_free(struct tls_conn *c);

/** Queue received ciphertext. ERR_LIMIT when more than one read's worth is
 *  already waiting (the caller should stop reading and close). */
int tls_conn_feed(struct tls_conn *c, const uint8_t *p, size_t n);
/** Bytes fed and not yet taken by TLS. */
size_t tls_conn_unread(const struct tls_conn *c);
/** Free the input buffer when everything in it was consumed (an idle
 *  connection then keeps only mbedTLS's own record buffers). */
void tls_conn_trim(struct tls_conn *c);
/** Advance the handshake: 0 when complete, ERR_WANT_IO, or ERR_TLS. */
int tls_conn_handshake(struct tls_conn *c);
bool tls_conn_handshake_done(const struct tls_conn *c);
/** Decrypt application data: 0 with *got > 0, ERR_WANT_IO when more
 *  ciphertext is needed, ERR_CLOSED on close_notify or EOF, else ERR_TLS.
 *  ERR_TLS also when the client tried to renegotiate (TLS 1.2): then
 *  tls_conn_renegotiation_refused() is true and the output holds the
 *  no_renegotiation alert, the only record a read ever writes. */
int tls_conn_read(struct tls_conn *c, uint8_t *out, size_t cap, size_t *got);
/** Encrypt all of p into the output buffer. 0, ERR_LIMIT or ERR_TLS. */
int tls_conn_write(struct tls_conn *c, const uint8_t *p, size_t n);
/** Application-data records written so far (one tls_conn_write() call writes
 *  records of at most MBEDTLS_SSL_OUT_CONTENT_LEN bytes, each counted). */
uint64_t tls_conn_records_out(const struct tls_conn *c);
/** Did a read refuse a renegotiation (see tls_conn_read)? */
bool tls_conn_renegotiation_refused(const struct tls_conn *c);
/** Queue a close_notify alert (none after a refused renegotiation: its
 *  alert is the last word); once, however often it is called. */
void tls_conn_close_notify(struct tls_conn *c);
/** Was TLS 1.3 negotiated? */
bool tls_conn_is_tls13(const struct tls_conn *c);
/** Ciphertext waiting to be sent. The caller may swap it out with its own
 *  empty buffer (same max) to hand it to the socket. */
struct buf *tls_conn_output(struct tls_conn *c);
/** Did this session resume from a ticket (no full handshake)? */
bool tls_conn_resumed(const struct tls_conn *c);
/** Negotiated protocol ("TLSv1.3") and suite names, for debugging. */
const char *tls_conn_version(const struct tls_conn *c);
const char *tls_conn_suite(const struct tls_conn *c);

/** Check the X25519 share path (tls_x25519.c) on RFC 7748's first test
 *  input: 0, or ERR_CRYPTO when the share is wrong or did not come from
 *  HACL* (the link's --wrap is missing). Needs PSA initialised. */
int tls_x25519_check(void);
/** How many X25519 shares HACL* has made since start-up. */
unsigned long tls_x25519_shares(void);

/** The linked mbedTLS version, e.g. "3.6.6". */
const char *tls_library_version(void);
/** Route mbedTLS's large blocks (record buffers) to mmap (tls_mem.c).
 *  Call first thing in main(), before any other mbedTLS call. 0 or -1. */
int tls_mem_install(void);
/** One line naming the versions, groups and suites served, for the
 *  start-up log (truncated to `len`). */
void tls_describe_profile(char *out, size_t len);

#endif
