/*
 * Unit tests of crypto.c's key ring and sealed values: round trips, the
 * sealed format against independent HKDF and GCM, nonces, tampering and
 * misplaced values, output limits, rekeying, and the key ring's checks.
 * Fixture and helpers: crypto_support.h.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <mbedtls/gcm.h>
#include <mbedtls/hkdf.h>
#include <mbedtls/md.h>
#include <stdint.h>

#include "err.h"
#include "crypto_support.h"

#define BUF_MAX (1u << 20)

static const struct crypto_aad NOTE_TITLE = { "notes", "title", 7, 3 };

static void seal_ok(const struct crypto *c, const struct crypto_aad *aad, const void *pt, size_t n,
                    struct buf *out)
{
    buf_init(out, BUF_MAX);
    int rc = crypto_seal(c, aad, pt, n, out);
    cr_assert_eq(rc, 0, "seal: %d", rc);
    cr_assert_eq(out->len, n + CRYPTO_SEAL_OVERHEAD);
}

/* Opens into a buffer pre-filled with junk, so "output left empty" and
 * "output holds exactly the plaintext" are both observable. */
static int open_into(const struct crypto *c, const struct crypto_aad *aad, const uint8_t *blob,
                     size_t n, struct buf *out)
{
    buf_init(out, BUF_MAX);
    cr_assert_eq(buf_append_str(out, "stale junk"), 0);
    return crypto_open(c, aad, blob, n, out);
}

static void expect_open_fails(const struct crypto *c, const struct crypto_aad *aad,
                              const uint8_t *blob, size_t n, const char *what)
{
    struct buf out;
    int rc = open_into(c, aad, blob, n, &out);
    cr_assert_eq(rc, ERR_CRYPTO, "%s: open returned %d", what, rc);
    cr_assert_eq(out.len, 0, "%s: output not empty", what);
    buf_cleanup(&out);
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint32_t expected_key_id(const struct config_secret *key)
{
    static const char label[] = "notesd data key id v1";
    uint8_t mac[32];
    hmac_sha256(key, label, sizeof(label) - 1, mac);
    uint32_t id = be32(mac);
    return id ? id : 1;
}

/* ---- sealed values ------------------------------------------------------ */

Test(crypto, seal_open_round_trip_empty_one_byte_and_64k)
{
    struct crypto *c = crypto_seeded(1);
    static uint8_t big[64 * 1024];
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (uint8_t)(i * 7 + 3);
    const size_t sizes[] = { 0, 1, sizeof(big) };
    for (size_t k = 0; k < 3; k++) {
        struct buf sealed, plain;
        seal_ok(c, &NOTE_TITLE, big, sizes[k], &sealed);
        cr_assert_eq(open_into(c, &NOTE_TITLE, sealed.data, sealed.len, &plain), 0, "size %zu", sizes[k]);
        cr_assert_eq(plain.len, sizes[k]);
        cr_assert(sizes[k] == 0 || memcmp(plain.data, big, sizes[k]) == 0);
        buf_cleanup(&sealed);
        buf_cleanup(&plain);
    }
    crypto_free(c);
}

Test(crypto, seal_accepts_null_empty_plaintext)
{
    struct crypto *c = crypto_seeded(1);
    struct buf sealed, plain;
    seal_ok(c, &NOTE_TITLE, NULL, 0, &sealed);
    cr_assert_eq(open_into(c, &NOTE_TITLE, sealed.data, sealed.len, &plain), 0);
    cr_assert_eq(plain.len, 0);
    buf_cleanup(&sealed);
    buf_cleanup(&plain);
    crypto_free(c);
}

Test(crypto, seal_appends_to_existing_output)
{
    struct crypto *c = crypto_seeded(1);
    struct buf out, plain;
    buf_init(&out, BUF_MAX);
    cr_assert_eq(buf_append_str(&out, "ab"), 0);
    cr_assert_eq(crypto_seal(c, &NOTE_TITLE, (const uint8_t *)"hi", 2, &out), 0);
    cr_assert_eq(out.len, 2 + 2 + CRYPTO_SEAL_OVERHEAD);
    cr_assert_eq(memcmp(out.data, "ab", 2), 0);
    cr_assert_eq(open_into(c, &NOTE_TITLE, out.data + 2, out.len - 2, &plain), 0);
    cr_assert_eq(plain.len, 2);
    cr_assert_eq(memcmp(plain.data, "hi", 2), 0);
    buf_cleanup(&out);
    buf_cleanup(&plain);
    crypto_free(c);
}

Test(crypto, sealed_format_matches_independent_hkdf_and_gcm)
{
    struct config cfg;
    make_cfg(&cfg, 5);
    fill_secret(&cfg.data_key, 5, 48);          /* any length >= 32 works */
    struct crypto *c = new_crypto(&cfg);
    const struct crypto_aad aad = { "notes", "content", 0x0102030405060708LL, -2 };
    struct buf sealed;
    seal_ok(c, &aad, "secret note", 11, &sealed);

    uint32_t id = expected_key_id(&cfg.data_key);
    cr_assert_eq(sealed.data[0], 0x01);
    cr_assert_eq(be32(sealed.data + 1), id);
    cr_assert_eq(crypto_active_key_id(c), id);

    static const char info[] = "notesd data aead v1";
    uint8_t key[32];
    cr_assert_eq(mbedtls_hkdf(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), NULL, 0,
                              cfg.data_key.bytes, cfg.data_key.len, (const uint8_t *)info,
                              sizeof(info) - 1, key, sizeof(key)), 0);
    static const uint8_t ad[] = "notesd-aad-v1\x00\x05notes\x00\x07"
                                "content\x01\x02\x03\x04\x05\x06\x07\x08"
                                "\xff\xff\xff\xff\xff\xff\xff\xfe\x01";
    uint8_t full_ad[sizeof(ad) - 1 + 4];
    memcpy(full_ad, ad, sizeof(ad) - 1);
    memcpy(full_ad + sizeof(ad) - 1, sealed.data + 1, 4);

    mbedtls_gcm_context gcm;
    mbedtls_gcm_init(&gcm);
    cr_assert_eq(mbedtls_gcm_setkey(&gcm, MBEDTLS_CIPHER_ID_AES, key, 256), 0);
    uint8_t pt[11];
    int rc = mbedtls_gcm_auth_decrypt(&gcm, 11, sealed.data + 5, 12, full_ad, sizeof(full_ad),
                                      sealed.data + 5 + 12 + 11, 16, sealed.data + 17, pt);
    mbedtls_gcm_free(&gcm);
    cr_assert_eq(rc, 0, "independent GCM open failed: %d", rc);
    cr_assert_eq(memcmp(pt, "secret note", 11), 0);
    buf_cleanup(&sealed);
    crypto_free(c);
}

Test(crypto, same_plaintext_seals_differently)
{
    struct crypto *c = crypto_seeded(1);
    struct buf a, b;
    seal_ok(c, &NOTE_TITLE, "same", 4, &a);
    seal_ok(c, &NOTE_TITLE, "same", 4, &b);
    cr_assert_eq(a.len, b.len);
    cr_assert_neq(memcmp(a.data + 5, b.data + 5, 12), 0, "nonce repeated");
    cr_assert_neq(memcmp(a.data + 17, b.data + 17, a.len - 17), 0, "ciphertext repeated");
    buf_cleanup(&a);
    buf_cleanup(&b);
    crypto_free(c);
}

static int cmp_nonce(const void *a, const void *b)
{
    return memcmp(a, b, 12);
}

Test(crypto, nonces_differ_over_1000_seals)
{
    struct crypto *c = crypto_seeded(1);
    static uint8_t nonces[1000][12];
    struct buf out;
    buf_init(&out, BUF_MAX);
    for (size_t i = 0; i < 1000; i++) {
        buf_reset(&out);
        cr_assert_eq(crypto_seal(c, &NOTE_TITLE, (const uint8_t *)"x", 1, &out), 0);
        memcpy(nonces[i], out.data + 5, 12);
    }
    qsort(nonces, 1000, 12, cmp_nonce);
    for (size_t i = 1; i < 1000; i++)
        cr_assert_neq(memcmp(nonces[i - 1], nonces[i], 12), 0, "nonce reused");
    buf_cleanup(&out);
    crypto_free(c);
}

Test(crypto, tampering_any_byte_fails_with_empty_output)
{
    struct crypto *c = crypto_seeded(1);
    struct buf sealed;
    seal_ok(c, &NOTE_TITLE, "twenty bytes of text", 20, &sealed);
    /* Covers version (0), key id (1-4), nonce (5-16), ciphertext (17-36)
     * and tag (37-52). */
    for (size_t i = 0; i < sealed.len; i++) {
        const uint8_t flips[] = { 0x01, 0x80 };
        for (size_t f = 0; f < 2; f++) {
            sealed.data[i] ^= flips[f];
            char what[48];
            snprintf(what, sizeof(what), "byte %zu ^ %#x", i, flips[f]);
            expect_open_fails(c, &NOTE_TITLE, sealed.data, sealed.len, what);
            sealed.data[i] ^= flips[f];
        }
    }
    struct buf plain;
    cr_assert_eq(open_into(c, &NOTE_TITLE, sealed.data, sealed.len, &plain), 0, "restored blob");
    buf_cleanup(&plain);
    buf_cleanup(&sealed);
    crypto_free(c);
}

Test(crypto, value_moved_to_another_place_fails)
{
    struct crypto *c = crypto_seeded(1);
    struct buf sealed;
    seal_ok(c, &NOTE_TITLE, "moved", 5, &sealed);
    const struct crypto_aad others[] = {
        { "notes", "title", 8, 3 },     /* other row */
        { "notes", "title", 7, 4 },     /* other owner */
        { "notes", "content", 7, 3 },   /* other column */
        { "drafts", "title", 7, 3 },    /* other table */
        { "note", "stitle", 7, 3 },     /* same bytes, other split */
    };
    for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++)
        expect_open_fails(c, &others[i], sealed.data, sealed.len, others[i].column);
    buf_cleanup(&sealed);
    crypto_free(c);
}

Test(crypto, too_long_aad_name_is_refused)
{
    struct crypto *c = crypto_seeded(1);
    char name[CRYPTO_AAD_NAME_MAX + 2];
    memset(name, 'a', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    const struct crypto_aad bad = { name, "title", 1, 1 };
    struct buf out;
    buf_init(&out, BUF_MAX);
    cr_assert_eq(crypto_seal(c, &bad, (const uint8_t *)"x", 1, &out), ERR_INVALID);
    cr_assert_eq(out.len, 0);
    name[CRYPTO_AAD_NAME_MAX] = '\0';               /* exactly the maximum */
    cr_assert_eq(crypto_seal(c, &bad, (const uint8_t *)"x", 1, &out), 0);
    buf_cleanup(&out);
    crypto_free(c);
}

Test(crypto, seal_respects_output_limit)
{
    struct crypto *c = crypto_seeded(1);
    struct buf out;
    buf_init(&out, CRYPTO_SEAL_OVERHEAD + 3);
    cr_assert_eq(crypto_seal(c, &NOTE_TITLE, (const uint8_t *)"four", 4, &out), ERR_LIMIT);
    cr_assert_eq(out.len, 0);
    cr_assert_eq(crypto_seal(c, &NOTE_TITLE, (const uint8_t *)"thr", 3, &out), 0);
    buf_cleanup(&out);
    crypto_free(c);
}

Test(crypto, other_data_key_cannot_open)
{
    struct crypto *a = crypto_seeded(1), *b = crypto_seeded(2);
    cr_assert_neq(crypto_active_key_id(a), crypto_active_key_id(b));
    struct buf sealed;
    seal_ok(a, &NOTE_TITLE, "private", 7, &sealed);
    expect_open_fails(b, &NOTE_TITLE, sealed.data, sealed.len, "unknown key id");
    /* Relabelled with b's id, the blob reaches GCM under the wrong key. */
    uint32_t id = crypto_active_key_id(b);
    sealed.data[1] = (uint8_t)(id >> 24);
    sealed.data[2] = (uint8_t)(id >> 16);
    sealed.data[3] = (uint8_t)(id >> 8);
    sealed.data[4] = (uint8_t)id;
    expect_open_fails(b, &NOTE_TITLE, sealed.data, sealed.len, "wrong key");
    buf_cleanup(&sealed);
    crypto_free(a);
    crypto_free(b);
}

Test(crypto, rekey_keeps_old_values_readable)
{
    struct config ca, cb;
    make_cfg(&ca, 1);
    make_cfg(&cb, 2);
    cb.data_key_previous[0] = ca.data_key;
    cb.n_data_key_previous = 1;
    struct crypto *a = new_crypto(&ca), *ring = new_crypto(&cb);
    cb.n_data_key_previous = 0;
    struct crypto *b_only = new_crypto(&cb);

    struct buf old, plain, fresh;
    seal_ok(a, &NOTE_TITLE, "old value", 9, &old);
    cr_assert_eq(crypto_sealed_key_id(old.data, old.len), crypto_active_key_id(a));
    cr_assert_eq(crypto_sealed_key_id(old.data, old.len), expected_key_id(&ca.data_key));
    cr_assert_eq(open_into(ring, &NOTE_TITLE, old.data, old.len, &plain), 0);
    cr_assert_eq(plain.len, 9);
    cr_assert_eq(memcmp(plain.data, "old value", 9), 0);
    expect_open_fails(b_only, &NOTE_TITLE, old.data, old.len, "key A dropped");

    /* New values go out under B, which the old process cannot read. */
    seal_ok(ring, &NOTE_TITLE, "new value", 9, &fresh);
    cr_assert_eq(crypto_sealed_key_id(fresh.data, fresh.len), crypto_active_key_id(b_only));
    cr_assert_neq(crypto_active_key_id(ring), crypto_active_key_id(a));
    expect_open_fails(a, &NOTE_TITLE, fresh.data, fresh.len, "A cannot read B");

    buf_cleanup(&old);
    buf_cleanup(&plain);
    buf_cleanup(&fresh);
    crypto_free(a);
    crypto_free(ring);
    crypto_free(b_only);
}

Test(crypto, truncated_blobs_fail)
{
    struct crypto *c = crypto_seeded(1);
    struct buf sealed;
    seal_ok(c, &NOTE_TITLE, "abc", 3, &sealed);
    for (size_t n = 0; n < sealed.len; n++) {
        char what[32];
        snprintf(what, sizeof(what), "length %zu", n);
        expect_open_fails(c, &NOTE_TITLE, sealed.data, n, what);
        if (n < CRYPTO_SEAL_OVERHEAD)
            cr_assert_eq(crypto_sealed_key_id(sealed.data, n), 0, "%s", what);
    }
    expect_open_fails(c, &NOTE_TITLE, NULL, 0, "NULL");
    cr_assert_eq(crypto_sealed_key_id(sealed.data, sealed.len), crypto_active_key_id(c));
    sealed.data[0] = 0x02;
    cr_assert_eq(crypto_sealed_key_id(sealed.data, sealed.len), 0, "unknown version");
    buf_cleanup(&sealed);
    crypto_free(c);
}

/* ---- the key ring ------------------------------------------------------- */

static void expect_new_refused(const struct config *cfg, const char *needle)
{
    struct crypto *c = (struct crypto *)1;
    char err[CONFIG_ERR_MAX] = "";
    cr_assert_eq(crypto_new(&c, cfg, err, sizeof(err)), ERR_CONFIG);
    cr_assert_null(c);
    cr_assert_not_null(strstr(err, needle), "message: %s", err);
}

Test(crypto, duplicate_data_keys_are_refused)
{
    struct config cfg;
    make_cfg(&cfg, 1);
    cfg.data_key_previous[0] = cfg.data_key;         /* previous == active */
    cfg.n_data_key_previous = 1;
    expect_new_refused(&cfg, "NOTES_DATA_KEY_PREVIOUS");

    fill_secret(&cfg.data_key_previous[0], 9, 32);
    cfg.data_key_previous[1] = cfg.data_key_previous[0];   /* two equal previous */
    cfg.n_data_key_previous = 2;
    expect_new_refused(&cfg, "NOTES_DATA_KEY_PREVIOUS");

    cfg.n_data_key_previous = 1;                      /* the control case */
    crypto_free(new_crypto(&cfg));
}

Test(crypto, bad_key_sizes_and_counts_are_refused)
{
    struct config cfg;
    make_cfg(&cfg, 1);
    cfg.token_key.len = 31;
    expect_new_refused(&cfg, "NOTES_TOKEN_KEY");
    make_cfg(&cfg, 1);
    cfg.data_key.len = 0;
    expect_new_refused(&cfg, "NOTES_DATA_KEY");
    make_cfg(&cfg, 1);
    cfg.n_data_key_previous = CRYPTO_MAX_KEYS;
    for (size_t i = 0; i < CRYPTO_MAX_KEYS - 1; i++)
        fill_secret(&cfg.data_key_previous[i], 50 + (unsigned)i, 32);
    expect_new_refused(&cfg, "NOTES_DATA_KEY_PREVIOUS");
    make_cfg(&cfg, 1);
    cfg.argon2_m_kib = 1024;
    expect_new_refused(&cfg, "NOTES_ARGON2");
}

Test(crypto, full_key_ring_opens_every_key)
{
    struct config cfg;
    make_cfg(&cfg, 1);
    cfg.n_data_key_previous = CRYPTO_MAX_KEYS - 1;
    for (size_t i = 0; i < CRYPTO_MAX_KEYS - 1; i++)
        fill_secret(&cfg.data_key_previous[i], 50 + (unsigned)i, 32);
    struct crypto *ring = new_crypto(&cfg);
    struct config single;
    make_cfg(&single, 1);
    single.data_key = cfg.data_key_previous[CRYPTO_MAX_KEYS - 2];   /* the oldest */
    struct crypto *old = new_crypto(&single);
    struct buf sealed, plain;
    seal_ok(old, &NOTE_TITLE, "oldest", 6, &sealed);
    cr_assert_eq(open_into(ring, &NOTE_TITLE, sealed.data, sealed.len, &plain), 0);
    buf_cleanup(&sealed);
    buf_cleanup(&plain);
    crypto_free(ring);
    crypto_free(old);
}

Test(crypto, free_null_is_a_no_op)
{
    crypto_free(NULL);
}

Test(crypto, equal_is_bytewise)
{
    cr_assert_eq(crypto_equal("abcd", "abcd", 4), 1);
    cr_assert_eq(crypto_equal("abcd", "abce", 4), 0);
    cr_assert_eq(crypto_equal("xbcd", "abcd", 4), 0);
    cr_assert_eq(crypto_equal("abcd", "abce", 3), 1);
}
