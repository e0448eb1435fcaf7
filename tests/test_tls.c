/*
 * test_tls.c - what the TLS layer relies on below tls.c: mbedTLS's memory
 * (tls_mem.c) and the ECDHE the handshakes run.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <mbedtls/ecp.h>
#include <mbedtls/platform.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/psa_util.h>
#include <psa/crypto.h>

#include "crypto.h"
#include "tls.h"

static void setup(void)
{
    cr_assert_eq(crypto_init(), 0);
}

TestSuite(tls_ecdhe, .init = setup);

/* ---- X25519 as the handshake runs it (PSA) -------------------------------- */

/* A fresh server key pair and its exported share, as mbedTLS's TLS code
 * makes them for every full or resumed handshake (which never exports the
 * private key: `exportable` is for the tests that compare). */
static psa_key_id_t x25519_key(uint8_t share[32], bool exportable)
{
    psa_key_attributes_t attr = PSA_KEY_ATTRIBUTES_INIT;
    psa_set_key_type(&attr, PSA_KEY_TYPE_ECC_KEY_PAIR(PSA_ECC_FAMILY_MONTGOMERY));
    psa_set_key_bits(&attr, 255);
    psa_set_key_usage_flags(&attr, PSA_KEY_USAGE_DERIVE | (exportable ? PSA_KEY_USAGE_EXPORT : 0));
    psa_set_key_algorithm(&attr, PSA_ALG_ECDH);
    psa_key_id_t key = 0;
    cr_assert_eq(psa_generate_key(&attr, &key), PSA_SUCCESS);
    size_t len = 0;
    cr_assert_eq(psa_export_public_key(key, share, 32, &len), PSA_SUCCESS);
    cr_assert_eq(len, 32);
    return key;
}

static psa_key_id_t x25519_pair(uint8_t share[32])
{
    return x25519_key(share, false);
}

/* Two sides reaching one secret: the shares (tls_x25519.c) and the
 * agreement (mbedTLS's Everest variant) fit together. */
Test(tls_ecdhe, two_x25519_sides_agree_on_one_secret)
{
    static const uint8_t zero[32];
    for (int round = 0; round < 8; round++) {
        uint8_t pa[32], pb[32], sa[32], sb[32];
        psa_key_id_t a = x25519_pair(pa), b = x25519_pair(pb);
        size_t la = 0, lb = 0;
        cr_assert_eq(psa_raw_key_agreement(PSA_ALG_ECDH, a, pb, 32, sa, sizeof(sa), &la),
                     PSA_SUCCESS);
        cr_assert_eq(psa_raw_key_agreement(PSA_ALG_ECDH, b, pa, 32, sb, sizeof(sb), &lb),
                     PSA_SUCCESS);
        cr_assert_eq(la, 32);
        cr_assert_eq(lb, 32);
        cr_assert_eq(memcmp(sa, sb, 32), 0, "round %d: the two sides disagree", round);
        cr_assert_neq(memcmp(sa, zero, 32), 0);
        cr_assert_neq(memcmp(pa, pb, 32), 0, "two fresh key pairs share a public key");
        psa_destroy_key(a);
        psa_destroy_key(b);
    }
}

/* RFC 8446 7.4.2: a peer share of small order makes the X25519 secret all
 * zero, and the handshake must abort rather than derive keys from it. The
 * shares are the canonical small-order u-coordinates (RFC 7748 section 7). */
Test(tls_ecdhe, an_x25519_share_of_small_order_is_refused)
{
    static const uint8_t bad[4][32] = {
        { 0 },
        { 1 },
        { 0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3, 0xfa, 0xf1, 0x9f, 0xc4,
          0x6a, 0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32, 0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16, 0x5f, 0x49,
          0xb8, 0x00 },
        { 0x5f, 0x9c, 0x95, 0xbc, 0xa3, 0x50, 0x8c, 0x24, 0xb1, 0xd0, 0xb1, 0x55, 0x9c, 0x83, 0xef,
          0x5b, 0x04, 0x44, 0x5c, 0xc4, 0x58, 0x1c, 0x8e, 0x86, 0xd8, 0x22, 0x4e, 0xdd, 0xd0, 0x9f,
          0x11, 0x57 },
    };
    uint8_t share[32];
    psa_key_id_t key = x25519_pair(share);
    for (size_t i = 0; i < 4; i++) {
        uint8_t secret[32];
        size_t len = 0;
        cr_assert_neq(psa_raw_key_agreement(PSA_ALG_ECDH, key, bad[i], 32, secret, sizeof(secret),
                                            &len),
                      PSA_SUCCESS, "small-order share %zu was accepted", i);
    }
    psa_destroy_key(key);
}

/* ---- the share through HACL* (tls_x25519.c) ------------------------------ */

/* scalar * base point by mbedTLS's generic ladder (ecp.c), from the private
 * key PSA holds: what psa_export_public_key gave before tls_x25519.c. */
static void ladder_share(psa_key_id_t key, uint8_t out[32])
{
    uint8_t priv[32];
    size_t len = 0;
    cr_assert_eq(psa_export_key(key, priv, sizeof(priv), &len), PSA_SUCCESS);
    cr_assert_eq(len, 32);
    mbedtls_ecp_keypair kp;
    mbedtls_ecp_keypair_init(&kp);
    cr_assert_eq(mbedtls_ecp_read_key(MBEDTLS_ECP_DP_CURVE25519, &kp, priv, len), 0);
    cr_assert_eq(mbedtls_ecp_mul(&kp.MBEDTLS_PRIVATE(grp), &kp.MBEDTLS_PRIVATE(Q), &kp.MBEDTLS_PRIVATE(d),
                                 &kp.MBEDTLS_PRIVATE(grp).G, mbedtls_psa_get_random, MBEDTLS_PSA_RANDOM_STATE),
                 0);
    cr_assert_eq(mbedtls_ecp_point_write_binary(&kp.MBEDTLS_PRIVATE(grp), &kp.MBEDTLS_PRIVATE(Q),
                                                MBEDTLS_ECP_PF_UNCOMPRESSED, &len, out, 32),
                 0);
    cr_assert_eq(len, 32);
    mbedtls_ecp_keypair_free(&kp);
    mbedtls_platform_zeroize(priv, sizeof(priv));
}

/* Every share the handshake exports comes from HACL*, and it is the ladder's
 * answer byte for byte. */
Test(tls_ecdhe, x25519_shares_come_from_hacl_and_equal_the_ladders)
{
    for (int round = 0; round < 32; round++) {
        unsigned long before = tls_x25519_shares();
        uint8_t share[32], want[32];
        psa_key_id_t key = x25519_key(share, true);
        cr_assert_eq(tls_x25519_shares(), before + 1, "round %d: the share did not come from HACL*", round);
        ladder_share(key, want);
        cr_assert_eq(memcmp(share, want, 32), 0, "round %d: HACL* and the ladder disagree", round);
        psa_destroy_key(key);
    }
}

Test(tls_ecdhe, the_rfc_7748_input_gives_its_answer)
{
    cr_assert_eq(tls_x25519_check(), 0);
}

/* Other keys keep mbedTLS's own export; a short buffer is refused. */
Test(tls_ecdhe, p256_shares_and_short_buffers_keep_psa_behaviour)
{
    psa_key_attributes_t attr = PSA_KEY_ATTRIBUTES_INIT;
    psa_set_key_type(&attr, PSA_KEY_TYPE_ECC_KEY_PAIR(PSA_ECC_FAMILY_SECP_R1));
    psa_set_key_bits(&attr, 256);
    psa_set_key_usage_flags(&attr, PSA_KEY_USAGE_DERIVE);
    psa_set_key_algorithm(&attr, PSA_ALG_ECDH);
    psa_key_id_t key = 0;
    cr_assert_eq(psa_generate_key(&attr, &key), PSA_SUCCESS);
    unsigned long before = tls_x25519_shares();
    uint8_t share[65];
    size_t len = 0;
    cr_assert_eq(psa_export_public_key(key, share, sizeof(share), &len), PSA_SUCCESS);
    cr_assert_eq(len, 65);
    cr_assert_eq(share[0], 0x04);
    cr_assert_eq(tls_x25519_shares(), before);
    psa_destroy_key(key);

    uint8_t pub[32];
    key = x25519_pair(pub);
    cr_assert_eq(psa_export_public_key(key, share, 31, &len), PSA_ERROR_BUFFER_TOO_SMALL);
    psa_destroy_key(key);
}

/* ---- mbedTLS's memory (tls_mem.c) ---------------------------------------- */

/* Small blocks come from calloc and go back to free(); large ones are
 * mappings and are unmapped. A block returned the wrong way aborts (glibc)
 * or is reported (ASan). */
Test(tls_mem, each_block_goes_back_where_it_came_from)
{
    cr_assert_eq(tls_mem_install(), 0);
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    void *small[64], *big[8];
    for (size_t i = 0; i < 64; i++) {
        small[i] = mbedtls_calloc(1, 8 + i * 97);
        cr_assert_not_null(small[i]);
        memset(small[i], 0xa5, 8 + i * 97);
    }
    for (size_t i = 0; i < 8; i++) {
        big[i] = mbedtls_calloc(1, 16384 + i * 1000);
        cr_assert_not_null(big[i]);
        cr_assert_eq((uintptr_t)big[i] % page, 0, "a large block is not a mapping");
        memset(big[i], 0x5a, 16384 + i * 1000);
    }
    for (size_t i = 0; i < 64; i++) {
        mbedtls_free(small[i]);
        if (i % 8 == 0) {
            void *b = big[i / 8];
            mbedtls_free(b);
            errno = 0;
            cr_assert_eq(msync(b, page, MS_ASYNC), -1, "a freed large block is still mapped");
            cr_assert_eq(errno, ENOMEM);
        }
    }
}

/* Small blocks are kept on per-thread lists for reuse: one handed out again
 * is zeroed like calloc's, and blocks alive at once never share bytes. */
Test(tls_mem, reused_small_blocks_are_zeroed_and_never_shared)
{
    cr_assert_eq(tls_mem_install(), 0);
    enum { N = 300 };
    static uint8_t *blk[N];
    static size_t len[N];
    for (int round = 0; round < 3; round++) {
        for (size_t i = 0; i < N; i++) {
            len[i] = (i * 37 + (size_t)round * 11) % 300;   /* 0..299: every class and past the last */
            blk[i] = mbedtls_calloc(1, len[i]);
            cr_assert_not_null(blk[i]);
            for (size_t k = 0; k < len[i]; k++)
                cr_assert_eq(blk[i][k], 0, "round %d block %zu byte %zu is not zero", round, i, k);
            memset(blk[i], (int)(i & 0xff), len[i]);
        }
        for (size_t i = 0; i < N; i++)
            for (size_t k = 0; k < len[i]; k++)
                cr_assert_eq(blk[i][k], (uint8_t)(i & 0xff), "block %zu was overwritten by another", i);
        for (size_t i = 0; i < N; i++)
            mbedtls_free(blk[i]);
    }
}

/* Under ASan the lists are off and ASan itself reports a double free. */
#if !defined(__SANITIZE_ADDRESS__)
Test(tls_mem, a_block_freed_twice_aborts, .signal = SIGABRT)
{
    cr_assert_eq(tls_mem_install(), 0);
    void *p = mbedtls_calloc(1, 40);
    cr_assert_not_null(p);
    mbedtls_free(p);
    mbedtls_free(p);
}

/* A stale write into a block on a list (a use after free) must not steer
 * the next allocation: the link no longer decodes to what the list holds. */
Test(tls_mem, a_freed_block_written_to_aborts_the_next_allocation, .signal = SIGABRT)
{
    cr_assert_eq(tls_mem_install(), 0);
    uint8_t *p = mbedtls_calloc(1, 72);
    cr_assert_not_null(p);
    mbedtls_free(p);                     /* the only block on its list */
    memset(p, 0x41, 8);
    (void)mbedtls_calloc(1, 72);
}

/* Freed blocks kept for reuse are bounded (64 per class and thread): what
 * is freed past that goes back to malloc, so a burst cannot pin memory. */
Test(tls_mem, at_most_64_freed_blocks_of_a_class_are_kept)
{
    cr_assert_eq(tls_mem_install(), 0);
    enum { N = 1000, LEN = 40 };
    static void *blk[N];
    size_t before = mallinfo2().uordblks;
    for (size_t i = 0; i < N; i++) {
        blk[i] = mbedtls_calloc(1, LEN);
        cr_assert_not_null(blk[i]);
    }
    size_t live = mallinfo2().uordblks - before;
    for (size_t i = 0; i < N; i++)
        mbedtls_free(blk[i]);
    size_t each = (live + N - 1) / N, kept = mallinfo2().uordblks - before;
    cr_assert_gt(kept, 0, "nothing was kept for reuse");
    cr_assert_leq(kept, 64 * each, "%zu bytes kept after freeing %d blocks of %zu", kept, N, each);
}

Test(tls_mem, a_pointer_that_never_came_from_here_aborts, .signal = SIGABRT)
{
    cr_assert_eq(tls_mem_install(), 0);
    void *p = malloc(40);
    cr_assert_not_null(p);
    mbedtls_free(p);
}
#endif
