/*
 * crypto.h - the process's cryptography: PSA start-up and randomness.
 *
 * Grows to hold every use of key material (AEAD fields, HMAC, password
 * hashing). All functions are thread-safe once crypto_init() returned.
 */
#ifndef NOTESD_CRYPTO_H
#define NOTESD_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

/** Initialise PSA crypto once, before any TLS or key operation. 0 or ERR_CRYPTO. */
int crypto_init(void);
/** Fill `out` with `n` bytes from the PSA DRBG. 0 or ERR_CRYPTO. */
int crypto_random(void *out, size_t n);
/** Constant-time equality of two equal-length byte strings. */
int crypto_equal(const void *a, const void *b, size_t n);

#endif
