/*
 * tls_x25519.c - the server's X25519 share through HACL* instead of the
 * generic Montgomery ladder.
 *
 * mbedTLS's TLS code (1.3 and 1.2) makes each ECDHE share with
 * psa_generate_key and psa_export_public_key. PSA generates only the
 * private scalar; the export then computes scalar * base point, and for
 * Curve25519 it does so with ecp.c's generic Montgomery ladder on bignums
 * (~0.7 ms here, more than the certificate's ECDSA signature). The same
 * library ships the formally verified, constant-time HACL* X25519 (Project
 * Everest, MBEDTLS_ECDH_VARIANT_EVEREST_ENABLED), which its key agreement
 * already uses and which is several times faster.
 *
 * The link (meson.build, -Wl,--wrap) sends PSA's call into its built-in ECC
 * export here. An X25519 key pair gets HACL*'s scalar multiplication of the
 * base point, the function RFC 7748 defines, so the share is the same bytes
 * the ladder gives (tests/test_tls.c compares them); every other key goes
 * to mbedTLS's own code unchanged. The key buffer is PSA's export format,
 * 32 bytes little-endian; HACL* clamps the scalar exactly as
 * mbedtls_ecp_read_key does, so unclamped imports agree too.
 */
#include <stdatomic.h>
#include <string.h>

#include <everest/Hacl_Curve25519.h>
#include <mbedtls/platform_util.h>
#include <psa/crypto.h>

#include "err.h"
#include "tls.h"

#define X25519_LEN 32

/* mbedTLS's internal function (library/psa_crypto_ecp.h) as the linker's
 * --wrap renames it: "__real_" is the library's own, "__wrap_" is what its
 * callers reach. The symbol names are set here so the C names stay plain. */
psa_status_t library_export(const psa_key_attributes_t *attributes, const uint8_t *key_buffer,
                            size_t key_buffer_size, uint8_t *data, size_t data_size, size_t *data_length)
    __asm__("__real_mbedtls_psa_ecp_export_public_key");
psa_status_t hacl_export(const psa_key_attributes_t *attributes, const uint8_t *key_buffer,
                         size_t key_buffer_size, uint8_t *data, size_t data_size, size_t *data_length)
    __asm__("__wrap_mbedtls_psa_ecp_export_public_key");

static atomic_ulong shares;     /* exports answered here, for the tests */

static bool is_x25519_pair(const psa_key_attributes_t *attributes, size_t key_len)
{
    return psa_get_key_type(attributes) == PSA_KEY_TYPE_ECC_KEY_PAIR(PSA_ECC_FAMILY_MONTGOMERY) &&
           psa_get_key_bits(attributes) == 255 && key_len == X25519_LEN;
}

psa_status_t hacl_export(const psa_key_attributes_t *attributes, const uint8_t *key_buffer,
                         size_t key_buffer_size, uint8_t *data, size_t data_size, size_t *data_length)
{
    if (!is_x25519_pair(attributes, key_buffer_size))
        return library_export(attributes, key_buffer, key_buffer_size, data, data_size, data_length);
    if (data_size < X25519_LEN)
        return PSA_ERROR_BUFFER_TOO_SMALL;
    /* HACL*'s prototype takes non-const pointers; it reads both. */
    uint8_t scalar[X25519_LEN], base[X25519_LEN] = { 9 };
    memcpy(scalar, key_buffer, X25519_LEN);
    Hacl_Curve25519_crypto_scalarmult(data, scalar, base);
    mbedtls_platform_zeroize(scalar, sizeof(scalar));
    *data_length = X25519_LEN;
    atomic_fetch_add_explicit(&shares, 1, memory_order_relaxed);
    return PSA_SUCCESS;
}

unsigned long tls_x25519_shares(void)
{
    return atomic_load_explicit(&shares, memory_order_relaxed);
}

/* RFC 7748 5.2, the first iteration of its test: scalar 9 times the base
 * point (u = 9). A public test input, not a key. */
int tls_x25519_check(void)
{
    static const uint8_t want[X25519_LEN] = {
        0x42, 0x2c, 0x8e, 0x7a, 0x62, 0x27, 0xd7, 0xbc, 0xa1, 0x35, 0x0b, 0x3e, 0x2b, 0xb7, 0x27, 0x9f,
        0x78, 0x97, 0xb8, 0x7b, 0xb6, 0x85, 0x4b, 0x78, 0x3c, 0x60, 0xe8, 0x03, 0x11, 0xae, 0x30, 0x79,
    };
    psa_key_attributes_t attr = PSA_KEY_ATTRIBUTES_INIT;
    psa_set_key_type(&attr, PSA_KEY_TYPE_ECC_KEY_PAIR(PSA_ECC_FAMILY_MONTGOMERY));
    psa_set_key_bits(&attr, 255);
    psa_set_key_usage_flags(&attr, PSA_KEY_USAGE_DERIVE);
    psa_set_key_algorithm(&attr, PSA_ALG_ECDH);
    const uint8_t nine[X25519_LEN] = { 9 };
    psa_key_id_t key = 0;
    if (psa_import_key(&attr, nine, sizeof(nine), &key) != PSA_SUCCESS)
        return ERR_CRYPTO;
    uint8_t got[X25519_LEN];
    size_t len = 0;
    unsigned long before = tls_x25519_shares();
    psa_status_t st = psa_export_public_key(key, got, sizeof(got), &len);
    psa_destroy_key(key);
    bool ok = st == PSA_SUCCESS && len == X25519_LEN && memcmp(got, want, X25519_LEN) == 0 &&
              tls_x25519_shares() != before;
    return ok ? 0 : ERR_CRYPTO;
}
