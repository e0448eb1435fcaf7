/*
 * test_crypto.c - crypto.c: the key ring, sealed values, tokens, pseudonyms
 * and argon2id passwords.
 *
 * Formats are checked against mbedTLS's legacy HKDF, HMAC and GCM functions,
 * computed here independently of crypto.c, so a change to the on-disk format
 * or to a derivation label fails a test instead of silently orphaning data.
 * Argon2 tests are few on purpose: each hash or verify costs ~50 ms.
 */
#include <criterion/criterion.h>

#include <argon2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/base64.h>
#include <mbedtls/gcm.h>
#include <mbedtls/hkdf.h>
#include <mbedtls/md.h>
#include <mbedtls/platform.h>
#include <stdint.h>

#include "crypto.h"
#include "err.h"

#define BUF_MAX (1u << 20)

static const struct crypto_aad NOTE_TITLE = { "notes", "title", 7, 3 };

static void setup(void)
{
    cr_assert_eq(crypto_init(), 0);
}

TestSuite(crypto, .init = setup);

/* ---- helpers ------------------------------------------------------------ */

static void fill_secret(struct config_secret *s, unsigned seed, size_t len)
{
    for (size_t i = 0; i < len; i++)
        s->bytes[i] = (uint8_t)(seed * 37u + i * 11u + 1u);
    s->len = len;
}

/* A configuration whose three keys all depend on `seed`. */
static void make_cfg(struct config *cfg, unsigned seed)
{
    memset(cfg, 0, sizeof(*cfg));
    fill_secret(&cfg->data_key, seed, 32);
    fill_secret(&cfg->token_key, seed + 100, 32);
    fill_secret(&cfg->audit_key, seed + 200, 48);
    cfg->argon2_m_kib = 19456;
    cfg->argon2_t = 2;
    cfg->argon2_p = 1;
}

static struct crypto *new_crypto(const struct config *cfg)
{
    struct crypto *c = NULL;
    char err[CONFIG_ERR_MAX] = "";
    int rc = crypto_new(&c, cfg, err, sizeof(err));
    cr_assert_eq(rc, 0, "crypto_new: %d %s", rc, err);
    cr_assert_not_null(c);
    return c;
}

static struct crypto *crypto_seeded(unsigned seed)
{
    struct config cfg;
    make_cfg(&cfg, seed);
    return new_crypto(&cfg);
}

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

static void hmac_sha256(const struct config_secret *key, const void *msg, size_t n, uint8_t out[32])
{
    const mbedtls_md_info_t *md = mbedtls_md_info_from_type(MBEDTLS_MD_SHA256);
    cr_assert_eq(mbedtls_md_hmac(md, key->bytes, key->len, msg, n, out), 0);
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

/* ---- tokens and pseudonyms ---------------------------------------------- */

static bool is_url_char(char ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
           ch == '-' || ch == '_';
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(a, b);
}

Test(crypto, token_format_and_uniqueness)
{
    enum { N = 1000 };
    static char tokens[N][CRYPTO_TOKEN_LEN + 1];
    bool dash = false, underscore = false;
    for (size_t i = 0; i < N; i++) {
        char *t = tokens[i];
        memset(t, 'Z', CRYPTO_TOKEN_LEN + 1);
        cr_assert_eq(crypto_token_new(t), 0);
        cr_assert_eq(strlen(t), 46);
        cr_assert_eq(strncmp(t, "nt_", 3), 0);
        for (size_t k = 3; k < CRYPTO_TOKEN_LEN; k++) {
            cr_assert(is_url_char(t[k]), "bad character %#x in %s", t[k], t);
            dash |= t[k] == '-';
            underscore |= t[k] == '_';
        }
    }
    /* 43,000 random characters: both url-specific characters must show up,
     * or '+' and '/' were not mapped. */
    cr_assert(dash && underscore);
    qsort(tokens, N, sizeof(tokens[0]), cmp_str);
    for (size_t i = 1; i < N; i++)
        cr_assert_neq(strcmp(tokens[i - 1], tokens[i]), 0, "token repeated");
}

Test(crypto, token_decodes_to_32_bytes)
{
    char t[CRYPTO_TOKEN_LEN + 1];
    cr_assert_eq(crypto_token_new(t), 0);
    unsigned char std[45], raw[40];
    for (size_t i = 0; i < 43; i++)
        std[i] = t[3 + i] == '-' ? '+' : t[3 + i] == '_' ? '/' : (unsigned char)t[3 + i];
    std[43] = '=';
    size_t n = 0;
    cr_assert_eq(mbedtls_base64_decode(raw, sizeof(raw), &n, std, 44), 0);
    cr_assert_eq(n, 32);
}

Test(crypto, token_hash_is_hmac_under_the_token_key)
{
    struct config c1, c2;
    make_cfg(&c1, 1);
    make_cfg(&c2, 1);
    fill_secret(&c2.token_key, 77, 32);               /* NOTES_TOKEN_KEY rotated */
    struct crypto *a = new_crypto(&c1), *a_again = new_crypto(&c1), *rotated = new_crypto(&c2);
    const char *tok = "nt_AAAABBBBCCCCDDDDEEEEFFFFGGGGHHHHIIIIJJJJKKK";
    uint8_t h1[32], h2[32], h3[32], h4[32], want[32];
    cr_assert_eq(crypto_token_hash(a, tok, strlen(tok), h1), 0);
    cr_assert_eq(crypto_token_hash(a_again, tok, strlen(tok), h2), 0);
    cr_assert_eq(crypto_token_hash(rotated, tok, strlen(tok), h3), 0);
    cr_assert_eq(crypto_token_hash(a, tok, strlen(tok) - 1, h4), 0);
    hmac_sha256(&c1.token_key, tok, strlen(tok), want);
    cr_assert_eq(memcmp(h1, want, 32), 0, "not HMAC-SHA256(token key, token)");
    cr_assert_eq(memcmp(h1, h2, 32), 0, "not deterministic");
    cr_assert_neq(memcmp(h1, h3, 32), 0, "rotation did not change the hash");
    cr_assert_neq(memcmp(h1, h4, 32), 0, "length ignored");
    crypto_free(a);
    crypto_free(a_again);
    crypto_free(rotated);
}

static bool is_lower_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

Test(crypto, pseudonym_is_keyed_and_deterministic)
{
    struct config c1, c2;
    make_cfg(&c1, 1);
    make_cfg(&c2, 1);
    fill_secret(&c2.audit_key, 88, 32);
    struct crypto *a = new_crypto(&c1), *other = new_crypto(&c2);
    char p1[17], p1b[17], p2[17], p3[17], neg[17];
    cr_assert_eq(crypto_pseudonym(a, 42, p1), 0);
    cr_assert_eq(crypto_pseudonym(a, 42, p1b), 0);
    cr_assert_eq(crypto_pseudonym(a, 43, p2), 0);
    cr_assert_eq(crypto_pseudonym(other, 42, p3), 0);
    cr_assert_eq(crypto_pseudonym(a, -1, neg), 0);
    cr_assert_eq(strlen(p1), 16);
    cr_assert(is_lower_hex(p1, 16), "%s", p1);
    cr_assert_str_eq(p1, p1b);
    cr_assert_str_neq(p1, p2);
    cr_assert_str_neq(p1, p3);
    cr_assert_str_neq(p1, neg);

    uint8_t mac[32];
    char want[17];
    hmac_sha256(&c1.audit_key, "user:42", 7, mac);
    for (size_t i = 0; i < 8; i++)
        snprintf(want + 2 * i, 3, "%02x", mac[i]);
    cr_assert_str_eq(p1, want);
    crypto_free(a);
    crypto_free(other);
}

/* ---- passwords ---------------------------------------------------------- */

static const struct crypto_argon2 OWASP = { 19456, 2, 1 };

Test(crypto, password_round_trip_with_long_multibyte_password)
{
    /* 128 characters, 256 bytes of UTF-8 ("é" is two bytes). */
    char pw[257];
    for (size_t i = 0; i < 128; i++)
        memcpy(pw + 2 * i, "\xc3\xa9", 2);
    pw[256] = '\0';
    uint8_t salt[CRYPTO_SALT_LEN];
    char phc[CRYPTO_PHC_MAX];
    cr_assert_eq(crypto_random(salt, sizeof(salt)), 0);
    cr_assert_eq(crypto_password_hash(&OWASP, pw, 256, salt, phc), 0);
    cr_assert_eq(strncmp(phc, "$argon2id$v=19$m=19456,t=2,p=1$", 31), 0, "%s", phc);

    bool rehash = true;
    cr_assert_eq(crypto_password_verify(phc, pw, 256, &OWASP, &rehash), 0);
    cr_assert_not(rehash, "equal parameters need no rehash");
    /* The last byte counts: nothing is truncated. */
    rehash = true;
    cr_assert_eq(crypto_password_verify(phc, pw, 255, &OWASP, &rehash), ERR_INVALID);
    cr_assert_not(rehash);
    pw[0] = 'x';
    cr_assert_eq(crypto_password_verify(phc, pw, 256, &OWASP, &rehash), ERR_INVALID);
}

Test(crypto, weaker_stored_parameters_need_rehash)
{
    uint8_t salt[CRYPTO_SALT_LEN] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };
    char phc[CRYPTO_PHC_MAX];
    cr_assert_eq(crypto_password_hash(&OWASP, "correct horse", 13, salt, phc), 0);
    const struct crypto_argon2 stronger = { 19456, 3, 1 };
    bool rehash = false;
    cr_assert_eq(crypto_password_verify(phc, "correct horse", 13, &stronger, &rehash), 0);
    cr_assert(rehash, "t=2 stored, t=3 wanted");
    /* The same salt and password give the same PHC: hashing is deterministic. */
    char again[CRYPTO_PHC_MAX];
    cr_assert_eq(crypto_password_hash(&OWASP, "correct horse", 13, salt, again), 0);
    cr_assert_str_eq(phc, again);
}

Test(crypto, verify_refuses_other_types_versions_and_garbage)
{
    /* A genuine argon2i string, cheap parameters: libargon2 itself accepts
     * it, so its refusal below is notesd's type check. */
    char i_phc[CRYPTO_PHC_MAX];
    const uint8_t salt[16] = { 0 };
    cr_assert_eq(argon2i_hash_encoded(2, 64, 1, "pw", 2, salt, 16, 32, i_phc, sizeof(i_phc)),
                 ARGON2_OK);
    cr_assert_eq(argon2i_verify(i_phc, "pw", 2), ARGON2_OK);
    cr_assert_eq(crypto_password_verify(i_phc, "pw", 2, &OWASP, NULL), ERR_INVALID);

    const char *bad[] = {
        "",
        "garbage",
        "$argon2d$v=19$m=64,t=2,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "$argon2id$v=16$m=64,t=2,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "$argon2id$m=64,t=2,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "$argon2id$v=19$m=064,t=2,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "$argon2id$v=19$m=4294967295,t=2,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "$argon2id$v=19$m=64,t=4294967296,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "$argon2id$v=19$m=64,t=2,p=1$AAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "$argon2id$v=19$m=64,t=2,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAA",
        "$argon2id$v=19$m=64,t=2,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA$",
        "$argon2id$v=19$m=64,t=2$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        bool rehash = true;
        cr_assert_eq(crypto_password_verify(bad[i], "pw", 2, &OWASP, &rehash), ERR_INVALID,
                     "accepted: %s", bad[i]);
        cr_assert_not(rehash);
    }
}

Test(crypto, weak_but_valid_argon2id_verifies_and_asks_for_rehash)
{
    /* The control for the test above: the same shape as argon2id, cheap
     * parameters, is accepted, so refusals there are about type and form. */
    char phc[CRYPTO_PHC_MAX];
    const uint8_t salt[16] = { 7 };
    cr_assert_eq(argon2id_hash_encoded(2, 64, 1, "pw", 2, salt, 16, 32, phc, sizeof(phc)), ARGON2_OK);
    bool rehash = false;
    cr_assert_eq(crypto_password_verify(phc, "pw", 2, &OWASP, &rehash), 0, "%s", phc);
    cr_assert(rehash, "m=64 stored, m=19456 wanted");
}

Test(crypto, hash_refuses_parameters_out_of_range)
{
    const uint8_t salt[CRYPTO_SALT_LEN] = { 0 };
    char phc[CRYPTO_PHC_MAX];
    const struct crypto_argon2 bad[] = {
        { 19455, 2, 1 }, { 19456, 1, 1 }, { 19456, 2, 0 }, { 19456, 101, 1 },
        { 19456, 2, 17 }, { 4194305, 2, 1 },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_eq(crypto_password_hash(&bad[i], "pw", 2, salt, phc), ERR_INVALID, "case %zu", i);
}

/* The unknown-user hash must cost what a real user's costs: it carries the
 * configured parameters, and a fresh salt and hash per process. */
Test(crypto, dummy_phc_carries_the_configured_cost)
{
    struct config cfg;
    make_cfg(&cfg, 1);
    cfg.argon2_m_kib = 19457;
    cfg.argon2_t = 3;
    cfg.argon2_p = 2;
    struct crypto *a = new_crypto(&cfg), *b = new_crypto(&cfg);
    const char *d = crypto_dummy_phc(a);
    cr_assert_eq(strncmp(d, "$argon2id$v=19$m=19457,t=3,p=2$", 31), 0, "%s", d);
    cr_assert_str_neq(d, crypto_dummy_phc(b), "two processes share one dummy hash");
    struct crypto_argon2 want = { 19457, 3, 2 };
    bool rehash = true;
    cr_assert_eq(crypto_password_verify(d, "password", 8, &want, &rehash), ERR_INVALID);
    crypto_free(a);
    crypto_free(b);
    cfg.argon2_t = 1;
    struct crypto *c = NULL;
    char err[CONFIG_ERR_MAX] = "";
    cr_assert_eq(crypto_new(&c, &cfg, err, sizeof(err)), ERR_CONFIG, "t=1 accepted");
    cr_assert_null(c);
}

Test(crypto, dummy_phc_is_argon2id_that_matches_nothing)
{
    struct crypto *c = crypto_seeded(1);
    const char *d = crypto_dummy_phc(c);
    cr_assert_eq(strncmp(d, "$argon2id$v=19$m=19456,t=2,p=1$", 31), 0, "%s", d);
    /* 22 salt characters, '$', 43 hash characters. */
    cr_assert_eq(strlen(d), 31 + 22 + 1 + 43, "%s", d);
    bool rehash = true;
    cr_assert_eq(crypto_password_verify(d, "password", 8, &OWASP, &rehash), ERR_INVALID);
    cr_assert_eq(crypto_password_verify(d, "", 0, &OWASP, &rehash), ERR_INVALID);
    /* libargon2 parses it as argon2id: it is a real hash, not a placeholder
     * that fails early (which would make unknown users fast to detect). */
    cr_assert_eq(argon2id_verify(d, "password", 8), ARGON2_VERIFY_MISMATCH);
    crypto_free(c);
}

/* The parameters' part of a PHC string, parsed as strictly as the whole
 * string is: start-up reads the stored hashes' settings with it. */
Test(crypto, password_params_parse_exactly_m_t_p)
{
    struct crypto_argon2 p = { 0, 0, 0 };
    cr_assert_eq(crypto_password_params("m=19456,t=2,p=1", &p), 0);
    cr_assert_eq(p.m_kib, 19456);
    cr_assert_eq(p.t, 2);
    cr_assert_eq(p.p, 1);
    cr_assert_eq(crypto_password_params("m=65536,t=12,p=4", &p), 0);
    cr_assert(p.m_kib == 65536 && p.t == 12 && p.p == 4);
    static const char *const bad[] = {
        "", "m=19456,t=2", "m=19456,t=2,p=1$", "m=019456,t=2,p=1", "t=2,m=19456,p=1", "m=19456,t=2,p=1x",
        "m=,t=2,p=1", "m=-1,t=2,p=1", "m=4294967296,t=2,p=1", "M=19456,t=2,p=1", " m=19456,t=2,p=1",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct crypto_argon2 q = { 7, 7, 7 };
        cr_assert_eq(crypto_password_params(bad[i], &q), ERR_INVALID, "accepted \"%s\"", bad[i]);
        cr_assert(q.m_kib == 7 && q.t == 7 && q.p == 7, "\"%s\" wrote its output", bad[i]);
    }
    cr_assert_eq(crypto_password_params(NULL, &p), ERR_INVALID);
}

/* What the stored-settings timing job times: a dummy under the given
 * settings, checked to its end (a mismatch), never a string libargon2
 * refuses at once (that would time nothing). How long it takes is
 * argon2's business and is not asserted here. */
Test(crypto, a_timed_check_runs_the_whole_argon2_of_a_dummy)
{
    struct crypto *c = crypto_seeded(1);     /* PSA is up for the salt */
    struct crypto_argon2 dear = { CRYPTO_ARGON2_M_MIN, 3, 2 };
    char phc[CRYPTO_PHC_MAX];
    cr_assert_eq(crypto_password_dummy(&dear, phc), 0);
    cr_assert_eq(strncmp(phc, "$argon2id$v=19$m=19456,t=3,p=2$", 31), 0, "%s", phc);
    cr_assert_eq(argon2id_verify(phc, "x", 1), ARGON2_VERIFY_MISMATCH, "not a whole argon2id check");
    uint64_t ms = 99999;
    cr_assert_eq(crypto_password_check_ms(phc, &ms), 0);
    cr_assert_lt(ms, 99999);
    struct crypto_argon2 floor = { CRYPTO_ARGON2_M_MIN, 1, 1 };
    cr_assert_eq(crypto_password_dummy(&floor, phc), ERR_INVALID, "t=1 is below the floor");
    cr_assert_eq(crypto_password_check_ms("$argon2id$v=19$m=19456,t=2,p=1$!!$!!", &ms), ERR_CRYPTO);
    cr_assert_eq(crypto_password_check_ms("$argon2i$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaA", &ms), ERR_CRYPTO,
                 "another argon2 type");
    cr_assert_eq(crypto_password_check_ms(NULL, &ms), ERR_INVALID);
    crypto_free(c);
}

/* Settings changed either way rehash at the next login: raised ones make
 * the hash stronger, lowered ones end what an old hash costs (and the
 * padding of failed logins it asks for). */
Test(crypto, stronger_stored_parameters_are_rehashed_to_the_current_ones)
{
    uint8_t salt[CRYPTO_SALT_LEN] = { 9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 1, 2, 3, 4, 5, 6 };
    const struct crypto_argon2 stronger = { 19456, 3, 1 };
    char phc[CRYPTO_PHC_MAX];
    cr_assert_eq(crypto_password_hash(&stronger, "correct horse", 13, salt, phc), 0);
    bool rehash = false;
    cr_assert_eq(crypto_password_verify(phc, "correct horse", 13, &OWASP, &rehash), 0);
    cr_assert(rehash, "t=3 stored, t=2 wanted");
    rehash = true;
    cr_assert_eq(crypto_password_verify(phc, "correct horse", 13, &stronger, &rehash), 0);
    cr_assert_not(rehash, "the same settings");
}
