/*
 * Unit tests of crypto.c's session tokens (format, decoding, the HMAC
 * under the token key) and of keyed pseudonyms. Fixture and helpers:
 * crypto_support.h.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <mbedtls/base64.h>
#include <stdint.h>

#include "crypto_support.h"

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
