/*
 * crypto.c: the key ring, sealed values, tokens, pseudonyms and argon2id
 * passwords.
 *
 * Formats are checked against mbedTLS's legacy HKDF, HMAC and GCM functions,
 * computed here independently of crypto.c, so a change to the on-disk format
 * or to a derivation label fails a test instead of silently orphaning data.
 *
 * This file holds the suite's fixture and what the test_crypto_*.c files
 * share (crypto_support.h).
 */
#include <criterion/criterion.h>
#include <string.h>
#include <mbedtls/md.h>
#include <stdint.h>

#include "crypto_support.h"

static void setup(void)
{
    cr_assert_eq(crypto_init(), 0);
}

TestSuite(crypto, .init = setup);

/* ---- helpers ------------------------------------------------------------ */

void fill_secret(struct config_secret *s, unsigned seed, size_t len)
{
    for (size_t i = 0; i < len; i++)
        s->bytes[i] = (uint8_t)(seed * 37u + i * 11u + 1u);
    s->len = len;
}

void make_cfg(struct config *cfg, unsigned seed)
{
    memset(cfg, 0, sizeof(*cfg));
    fill_secret(&cfg->data_key, seed, 32);
    fill_secret(&cfg->token_key, seed + 100, 32);
    fill_secret(&cfg->audit_key, seed + 200, 48);
    cfg->argon2_m_kib = 19456;
    cfg->argon2_t = 2;
    cfg->argon2_p = 1;
}

struct crypto *new_crypto(const struct config *cfg)
{
    struct crypto *c = NULL;
    char err[CONFIG_ERR_MAX] = "";
    int rc = crypto_new(&c, cfg, err, sizeof(err));
    cr_assert_eq(rc, 0, "crypto_new: %d %s", rc, err);
    cr_assert_not_null(c);
    return c;
}

struct crypto *crypto_seeded(unsigned seed)
{
    struct config cfg;
    make_cfg(&cfg, seed);
    return new_crypto(&cfg);
}

void hmac_sha256(const struct config_secret *key, const void *msg, size_t n, uint8_t out[32])
{
    const mbedtls_md_info_t *md = mbedtls_md_info_from_type(MBEDTLS_MD_SHA256);
    cr_assert_eq(mbedtls_md_hmac(md, key->bytes, key->len, msg, n, out), 0);
}
