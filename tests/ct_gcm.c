/*
 * ct_gcm.c - AES-256-GCM, as linked into notesd, takes no branch and reads
 * no address that depends on the key or the plaintext.
 *
 * third_party/fetch.sh builds mbedTLS's AES-NI object with SSSE3 and gcm.c
 * at -O3 (the rest at -O2), so the constant-time property of AES-NI and
 * carry-less multiplication must still hold for the code the compiler made
 * around them. Run under valgrind's memcheck like ct_x25519.c (whose
 * control run shows memcheck is watching): key and plaintext are marked
 * undefined, so memcheck reports every conditional jump and every memory
 * address computed from them. Sealing goes through PSA, as crypto_seal()
 * and mbedTLS's TLS records do; it runs GHASH over the associated data and
 * the ciphertext, the counter blocks and the tag. Opening is not checked:
 * its tag comparison ends in a branch on the verdict, which is public.
 *
 * The sealed result, marked defined again, must equal the same sealing
 * done with nothing marked, and must open (so the path measured is GCM
 * with AES-NI and not a failure path).
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <psa/crypto.h>
#include <valgrind/memcheck.h>

#define KEY_LEN 32
#define NONCE_LEN 12
#define TAG_LEN 16
/* Not a block multiple, so the last partial block is masked too. */
#define PT_LEN 100
#define AD_LEN 20

static psa_key_id_t import(const uint8_t key[KEY_LEN])
{
    psa_key_attributes_t attr = PSA_KEY_ATTRIBUTES_INIT;
    psa_set_key_type(&attr, PSA_KEY_TYPE_AES);
    psa_set_key_bits(&attr, 256);
    psa_set_key_algorithm(&attr, PSA_ALG_GCM);
    psa_set_key_usage_flags(&attr, PSA_KEY_USAGE_ENCRYPT | PSA_KEY_USAGE_DECRYPT);
    psa_key_id_t id = 0;
    if (psa_import_key(&attr, key, KEY_LEN, &id) != PSA_SUCCESS)
        return 0;
    return id;
}

/* Seals pt under key; secret marks key and plaintext undefined first.
 * Returns the output length, 0 on failure. */
static size_t seal(const uint8_t *key_in, const uint8_t *pt_in, int secret,
                   uint8_t out[PT_LEN + TAG_LEN])
{
    static const uint8_t nonce[NONCE_LEN] = { 1, 2, 3 };
    static const uint8_t ad[AD_LEN] = { 'n', 'o', 't', 'e' };
    uint8_t key[KEY_LEN], pt[PT_LEN];
    memcpy(key, key_in, KEY_LEN);
    memcpy(pt, pt_in, PT_LEN);
    if (secret) {
        (void)VALGRIND_MAKE_MEM_UNDEFINED(key, KEY_LEN);
        (void)VALGRIND_MAKE_MEM_UNDEFINED(pt, PT_LEN);
    }
    psa_key_id_t id = import(key);
    size_t n = 0;
    psa_status_t st = id ? psa_aead_encrypt(id, PSA_ALG_GCM, nonce, NONCE_LEN, ad, AD_LEN, pt,
                                            PT_LEN, out, PT_LEN + TAG_LEN, &n)
                         : PSA_ERROR_GENERIC_ERROR;
    psa_destroy_key(id);
    (void)VALGRIND_MAKE_MEM_DEFINED(out, PT_LEN + TAG_LEN);
    (void)VALGRIND_MAKE_MEM_DEFINED(&n, sizeof(n));
    (void)VALGRIND_MAKE_MEM_DEFINED(&st, sizeof(st));
    return st == PSA_SUCCESS ? n : 0;
}

static int opens(const uint8_t *key, const uint8_t *sealed, size_t n)
{
    static const uint8_t nonce[NONCE_LEN] = { 1, 2, 3 };
    static const uint8_t ad[AD_LEN] = { 'n', 'o', 't', 'e' };
    uint8_t pt[PT_LEN];
    size_t len = 0;
    psa_key_id_t id = import(key);
    psa_status_t st = id ? psa_aead_decrypt(id, PSA_ALG_GCM, nonce, NONCE_LEN, ad, AD_LEN, sealed,
                                            n, pt, sizeof(pt), &len)
                         : PSA_ERROR_GENERIC_ERROR;
    psa_destroy_key(id);
    return st == PSA_SUCCESS && len == PT_LEN;
}

int main(void)
{
    if (RUNNING_ON_VALGRIND == 0) {
        fprintf(stderr, "ct_gcm: run me under valgrind --error-exitcode=1\n");
        return 2;
    }
    if (psa_crypto_init() != PSA_SUCCESS) {
        fprintf(stderr, "ct_gcm: psa_crypto_init failed\n");
        return 1;
    }
    /* Test inputs, not a key anyone uses. */
    uint8_t key[KEY_LEN], pt[PT_LEN];
    for (size_t i = 0; i < KEY_LEN; i++)
        key[i] = (uint8_t)(0xa5 ^ (i * 7));
    for (size_t i = 0; i < PT_LEN; i++)
        pt[i] = (uint8_t)(i * 13 + 1);

    uint8_t marked[PT_LEN + TAG_LEN], plain[PT_LEN + TAG_LEN];
    size_t n = seal(key, pt, 1, marked);
    size_t m = seal(key, pt, 0, plain);
    if (n != PT_LEN + TAG_LEN || m != n || memcmp(marked, plain, n) != 0) {
        fprintf(stderr, "ct_gcm: sealing with marked inputs gave another answer\n");
        return 1;
    }
    if (!opens(key, plain, m)) {
        fprintf(stderr, "ct_gcm: the sealed test input did not open\n");
        return 1;
    }
    puts("ct_gcm: no key- or plaintext-dependent branch or address");
    return 0;
}
