/*
 * Shared fixture and helpers of the test_crypto program (test_crypto_*.c):
 * key material from fixed seeds, a configuration and a crypto context built
 * from it, and HMAC-SHA256 computed independently of crypto.c.
 */
#ifndef NOTESD_TEST_CRYPTO_SUPPORT_H
#define NOTESD_TEST_CRYPTO_SUPPORT_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "crypto.h"

/* These helpers were static in one file before it was split: hidden keeps
 * them out of the executable's dynamic symbol table, where a name such as
 * login() would otherwise preempt the C library's. */
#pragma GCC visibility push(hidden)

/* s holds `len` bytes that depend on `seed`. */
void fill_secret(struct config_secret *s, unsigned seed, size_t len);

/* A configuration whose three keys all depend on `seed`. */
void make_cfg(struct config *cfg, unsigned seed);

/* crypto_new() of cfg, asserting it succeeded. */
struct crypto *new_crypto(const struct config *cfg);

/* new_crypto() of make_cfg(seed). */
struct crypto *crypto_seeded(unsigned seed);

/* HMAC-SHA256 of msg[n] under key, through mbedTLS directly. */
void hmac_sha256(const struct config_secret *key, const void *msg, size_t n, uint8_t out[32]);

#pragma GCC visibility pop

#endif
