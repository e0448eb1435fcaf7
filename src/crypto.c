/*
 * crypto.c - PSA crypto start-up, the random generator, constant-time compare.
 *
 * Owns the process's PSA state. The DRBG behind psa_generate_random is seeded
 * from getrandom(2) by mbedTLS's entropy module.
 */
#include "crypto.h"
#include "err.h"

#include <mbedtls/constant_time.h>
#include <psa/crypto.h>

int crypto_init(void)
{
    return psa_crypto_init() == PSA_SUCCESS ? 0 : ERR_CRYPTO;
}

int crypto_random(void *out, size_t n)
{
    return psa_generate_random(out, n) == PSA_SUCCESS ? 0 : ERR_CRYPTO;
}

int crypto_equal(const void *a, const void *b, size_t n)
{
    return mbedtls_ct_memcmp(a, b, n) == 0;
}
