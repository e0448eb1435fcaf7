/*
 * crypto.c - the key ring, sealed columns, token HMAC, audit pseudonyms,
 * the RNG and constant-time comparison, and the audit chain's MAC and hash
 * (argon2id password hashes are in crypto_password.c).
 *
 * Owns all of notesd's key material and the process's PSA state. The keys
 * of struct config are turned into volatile, non-exportable PSA keys in
 * crypto_new(); from then on only their handles exist here. The DRBG behind
 * psa_generate_random is seeded from getrandom(2) by mbedTLS's entropy
 * module.
 *
 * This file must never: hand key bytes to a caller, log anything derived
 * from a key or a plaintext, reuse a GCM nonce (every seal draws a fresh
 * 96-bit one), leave partial plaintext in an output buffer, compare secrets
 * with memcmp, or touch PSA from the password functions (crypto_password.c: they run
 * on libuv's thread pool, and PSA is built without threading support). Only
 * mbedTLS/PSA and libargon2 primitives are used: no home-made algorithms.
 */
#include "crypto_int.h"
#include "err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/base64.h>
#include <mbedtls/constant_time.h>
#include <mbedtls/platform_util.h>
#include <psa/crypto.h>

#define SEAL_VERSION 0x01
#define NONCE_LEN 12
#define TAG_LEN 16
#define HEADER_LEN (1 + 4 + NONCE_LEN)

#define AAD_LABEL "notesd-aad-v1"
#define AAD_MAX (sizeof(AAD_LABEL) - 1 + 2 * (2 + CRYPTO_AAD_NAME_MAX) + 8 + 8 + 1 + 4)
#define HKDF_INFO "notesd data aead v1"
#define KEY_ID_LABEL "notesd data key id v1"
#define AUDIT_CHAIN_INFO "notesd audit chain v1"
#define HMAC_ALG PSA_ALG_HMAC(PSA_ALG_SHA_256)

struct data_key {
    uint32_t id;
    psa_key_id_t key;                     /* AES-256, PSA_ALG_GCM */
};

struct crypto {
    struct data_key keys[CRYPTO_MAX_KEYS];   /* keys[0] is the active key */
    size_t n_keys;
    psa_key_id_t token_key;               /* HMAC-SHA256 */
    psa_key_id_t audit_key;               /* HMAC-SHA256: pseudonyms */
    psa_key_id_t audit_chain_key;         /* HMAC-SHA256: audit line MACs */
    struct crypto_argon2 argon2;
    char dummy_phc[CRYPTO_PHC_MAX];
};

/* ---- small pieces ------------------------------------------------------- */

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void put_be64(uint8_t *p, uint64_t v)
{
    put_be32(p, (uint32_t)(v >> 32));
    put_be32(p + 4, (uint32_t)v);
}

static uint32_t get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int say(char *err, size_t errlen, int rc, const char *msg)
{
    if (err && errlen)
        snprintf(err, errlen, "%s", msg);
    return rc;
}

/* mbedTLS's AES-NI object is built with SSSE3 (third_party/fetch.sh) and
 * runs whenever cpuid reports AES-NI and PCLMULQDQ. Every such CPU has
 * SSSE3, but a virtual machine's CPU model can leave it out: there the
 * first AES-GCM record would die of an illegal instruction. Refuse to
 * start instead. */
static bool aesni_without_ssse3(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    int aes = __builtin_cpu_supports("aes"), clmul = __builtin_cpu_supports("pclmul");
    int ssse3 = __builtin_cpu_supports("ssse3");
    return aes && clmul && !ssse3;
#else
    return false;
#endif
}

int crypto_init(void)
{
    if (aesni_without_ssse3()) {
        fprintf(stderr, "notesd: this CPU reports AES-NI and PCLMULQDQ without SSSE3, which this build's "
                        "AES-GCM needs\n");
        return ERR_CRYPTO;
    }
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

/* ---- the key ring ------------------------------------------------------- */

/* Import configured bytes as a volatile PSA key. No usage flag ever includes
 * EXPORT or COPY, so the bytes cannot come back out of PSA. */
static psa_status_t import_secret(const struct config_secret *s, psa_key_type_t type,
                                  psa_key_usage_t usage, psa_algorithm_t alg, psa_key_id_t *out)
{
    psa_key_attributes_t attr = PSA_KEY_ATTRIBUTES_INIT;
    psa_set_key_type(&attr, type);
    psa_set_key_usage_flags(&attr, usage);
    psa_set_key_algorithm(&attr, alg);
    psa_status_t st = psa_import_key(&attr, s->bytes, s->len, out);
    psa_reset_key_attributes(&attr);
    return st;
}

/* The key id is a MAC of a fixed label, so it names the key without
 * revealing anything about it. 0 is reserved for "malformed" and maps to 1;
 * a collision that causes is refused like any other duplicate id. */
static int data_key_id(const struct config_secret *s, uint32_t *id)
{
    psa_key_id_t k = PSA_KEY_ID_NULL;
    uint8_t mac[PSA_HASH_LENGTH(PSA_ALG_SHA_256)];
    size_t mac_len = 0;
    psa_status_t st = import_secret(s, PSA_KEY_TYPE_HMAC, PSA_KEY_USAGE_SIGN_MESSAGE, HMAC_ALG, &k);
    if (st == PSA_SUCCESS)
        st = psa_mac_compute(k, HMAC_ALG, (const uint8_t *)KEY_ID_LABEL, sizeof(KEY_ID_LABEL) - 1,
                             mac, sizeof(mac), &mac_len);
    psa_destroy_key(k);
    if (st == PSA_SUCCESS && mac_len == sizeof(mac)) {
        *id = get_be32(mac);
        if (*id == 0)
            *id = 1;
    }
    mbedtls_platform_zeroize(mac, sizeof(mac));
    return st == PSA_SUCCESS ? 0 : ERR_CRYPTO;
}

/* HKDF-SHA256 from a configured secret straight into a PSA key described by
 * `attr`, under the info label `info`: the secret enters as a key object
 * (which PSA requires before it lets the output become a key), and the
 * derived bytes never leave PSA. */
static psa_status_t derive_key(const struct config_secret *s, const char *info, psa_key_attributes_t *attr,
                               psa_key_id_t *out)
{
    psa_key_derivation_operation_t op = PSA_KEY_DERIVATION_OPERATION_INIT;
    psa_key_id_t ikm = PSA_KEY_ID_NULL;
    psa_algorithm_t alg = PSA_ALG_HKDF(PSA_ALG_SHA_256);

    psa_status_t st = import_secret(s, PSA_KEY_TYPE_DERIVE, PSA_KEY_USAGE_DERIVE, alg, &ikm);
    if (st != PSA_SUCCESS)
        return st;
    st = psa_key_derivation_setup(&op, alg);
    if (st == PSA_SUCCESS)
        st = psa_key_derivation_input_key(&op, PSA_KEY_DERIVATION_INPUT_SECRET, ikm);
    if (st == PSA_SUCCESS)
        st = psa_key_derivation_input_bytes(&op, PSA_KEY_DERIVATION_INPUT_INFO, (const uint8_t *)info,
                                            strlen(info));
    if (st == PSA_SUCCESS)
        st = psa_key_derivation_output_key(attr, &op, out);
    psa_reset_key_attributes(attr);
    psa_key_derivation_abort(&op);
    psa_destroy_key(ikm);
    return st;
}

/* A data key: AES-256 for GCM only. */
static psa_status_t derive_aead_key(const struct config_secret *s, psa_key_id_t *out)
{
    psa_key_attributes_t attr = PSA_KEY_ATTRIBUTES_INIT;
    psa_set_key_type(&attr, PSA_KEY_TYPE_AES);
    psa_set_key_bits(&attr, 256);
    psa_set_key_usage_flags(&attr, PSA_KEY_USAGE_ENCRYPT | PSA_KEY_USAGE_DECRYPT);
    psa_set_key_algorithm(&attr, PSA_ALG_GCM);
    return derive_key(s, HKDF_INFO, &attr, out);
}

/* The audit chain key: a 256-bit HMAC key from NOTES_AUDIT_KEY. Pseudonyms
 * use the imported key itself; the distinct info label keeps the two uses
 * apart, so a MAC made for one can never stand in for the other. */
static psa_status_t derive_chain_key(const struct config_secret *s, psa_key_id_t *out)
{
    psa_key_attributes_t attr = PSA_KEY_ATTRIBUTES_INIT;
    psa_set_key_type(&attr, PSA_KEY_TYPE_HMAC);
    psa_set_key_bits(&attr, 256);
    psa_set_key_usage_flags(&attr, PSA_KEY_USAGE_SIGN_MESSAGE);
    psa_set_key_algorithm(&attr, HMAC_ALG);
    return derive_key(s, AUDIT_CHAIN_INFO, &attr, out);
}

static int check_secret(const struct config_secret *s, const char *name, char *err, size_t errlen)
{
    if (s->len >= CONFIG_SECRET_MIN && s->len <= CONFIG_SECRET_MAX)
        return 0;
    char msg[CONFIG_ERR_MAX];
    snprintf(msg, sizeof(msg), "%s: a key must be %d to %d bytes", name, CONFIG_SECRET_MIN,
             CONFIG_SECRET_MAX);
    return say(err, errlen, ERR_CONFIG, msg);
}

/* Ids are public and there are at most CRYPTO_MAX_KEYS: a plain scan. */
static bool id_taken(const struct crypto *c, uint32_t id)
{
    for (size_t i = 0; i < c->n_keys; i++)
        if (c->keys[i].id == id)
            return true;
    return false;
}

static int add_data_key(struct crypto *c, const struct config_secret *s, const char *name,
                        char *err, size_t errlen)
{
    uint32_t id = 0;
    int rc = check_secret(s, name, err, errlen);
    if (rc)
        return rc;
    if (data_key_id(s, &id) != 0)
        return say(err, errlen, ERR_CRYPTO, "data key: cannot compute its key id");
    /* Equal keys give equal ids; two different keys sharing an id (odds
     * 2^-32) would make sealed values ambiguous, so both are refused. */
    if (id_taken(c, id))
        return say(err, errlen, ERR_CONFIG,
                   "NOTES_DATA_KEY_PREVIOUS: a key repeats NOTES_DATA_KEY or another previous "
                   "key (same key id); list each older data key once");
    if (derive_aead_key(s, &c->keys[c->n_keys].key) != PSA_SUCCESS)
        return say(err, errlen, ERR_CRYPTO, "data key: cannot derive its AES-256-GCM key");
    c->keys[c->n_keys++].id = id;
    return 0;
}

static int load_data_keys(struct crypto *c, const struct config *cfg, char *err, size_t errlen)
{
    if (cfg->n_data_key_previous > CRYPTO_MAX_KEYS - 1)
        return say(err, errlen, ERR_CONFIG, "NOTES_DATA_KEY_PREVIOUS: too many previous data keys");
    int rc = add_data_key(c, &cfg->data_key, "NOTES_DATA_KEY", err, errlen);
    for (size_t i = 0; rc == 0 && i < cfg->n_data_key_previous; i++)
        rc = add_data_key(c, &cfg->data_key_previous[i], "NOTES_DATA_KEY_PREVIOUS", err, errlen);
    return rc;
}

static int load_hmac_key(const struct config_secret *s, const char *name, psa_key_id_t *out,
                         char *err, size_t errlen)
{
    int rc = check_secret(s, name, err, errlen);
    if (rc)
        return rc;
    if (import_secret(s, PSA_KEY_TYPE_HMAC, PSA_KEY_USAGE_SIGN_MESSAGE | PSA_KEY_USAGE_VERIFY_MESSAGE,
                      HMAC_ALG, out) != PSA_SUCCESS)
        return say(err, errlen, ERR_CRYPTO, "cannot import an HMAC key");
    return 0;
}

/* A PHC string with cfg's parameters and a random salt and hash. Verifying
 * a password against it runs the whole argon2id computation (the cost is
 * set by m, t and p, not by how the hash was made) and fails, as nothing
 * hashes to 32 random bytes. Hashing a real password here instead cost
 * ~80% of start-up for the same effect. */
static int dummy_phc(const struct crypto_argon2 *params, char phc[CRYPTO_PHC_MAX])
{
    uint8_t salt[CRYPTO_SALT_LEN], hash[CRYPTO_HASH_LEN];
    int rc = crypto_random(salt, sizeof(salt));
    rc = rc ? rc : crypto_random(hash, sizeof(hash));
    return rc ? rc : crypto_password_phc(params, salt, hash, phc);
}

int crypto_password_dummy(const struct crypto_argon2 *params, char phc[CRYPTO_PHC_MAX])
{
    return dummy_phc(params, phc);
}

int crypto_new(struct crypto **out, const struct config *cfg, char *err, size_t errlen)
{
    *out = NULL;
    struct crypto *c = calloc(1, sizeof(*c));
    if (!c)
        return say(err, errlen, ERR_NOMEM, "out of memory");
    c->argon2 = (struct crypto_argon2){ cfg->argon2_m_kib, cfg->argon2_t, cfg->argon2_p };
    int rc = load_data_keys(c, cfg, err, errlen);
    if (rc)
        goto fail;
    rc = load_hmac_key(&cfg->token_key, "NOTES_TOKEN_KEY", &c->token_key, err, errlen);
    if (rc)
        goto fail;
    rc = load_hmac_key(&cfg->audit_key, "NOTES_AUDIT_KEY", &c->audit_key, err, errlen);
    if (rc)
        goto fail;
    if (derive_chain_key(&cfg->audit_key, &c->audit_chain_key) != PSA_SUCCESS) {
        rc = say(err, errlen, ERR_CRYPTO, "NOTES_AUDIT_KEY: cannot derive the audit chain key");
        goto fail;
    }
    rc = dummy_phc(&c->argon2, c->dummy_phc);
    if (rc == ERR_INVALID)
        rc = say(err, errlen, ERR_CONFIG, "NOTES_ARGON2_*: parameters out of range");
    else if (rc)
        say(err, errlen, rc, "cannot make the unknown-user password hash");
    if (rc)
        goto fail;
    *out = c;
    return 0;
fail:
    /* crypto_free() destroys exactly what was created: unused handles are
     * PSA_KEY_ID_NULL, whose destruction is a no-op. */
    crypto_free(c);
    return rc;
}

void crypto_free(struct crypto *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n_keys; i++)
        psa_destroy_key(c->keys[i].key);
    psa_destroy_key(c->token_key);
    psa_destroy_key(c->audit_key);
    psa_destroy_key(c->audit_chain_key);
    mbedtls_platform_zeroize(c, sizeof(*c));
    free(c);
}

uint32_t crypto_active_key_id(const struct crypto *c)
{
    return c->keys[0].id;
}

const char *crypto_dummy_phc(const struct crypto *c)
{
    return c->dummy_phc;
}

static const struct data_key *find_key(const struct crypto *c, uint32_t id)
{
    for (size_t i = 0; i < c->n_keys; i++)
        if (c->keys[i].id == id)
            return &c->keys[i];
    return NULL;
}

/* ---- sealed values ------------------------------------------------------ */

static size_t put_name(uint8_t *p, const char *name, size_t n)
{
    p[0] = (uint8_t)(n >> 8);
    p[1] = (uint8_t)n;
    memcpy(p + 2, name, n);
    return 2 + n;
}

/* Every variable-length field carries its length and every other field has
 * a fixed width, so two different locations never encode to the same
 * bytes. Version and key id are bound too, although GCM under a different
 * key would fail anyway: the header is then authenticated as a whole. */
static int aad_encode(const struct crypto_aad *a, uint32_t key_id, uint8_t out[AAD_MAX],
                      size_t *len)
{
    if (!a || !a->table || !a->column)
        return ERR_INVALID;
    size_t nt = strnlen(a->table, CRYPTO_AAD_NAME_MAX + 1);
    size_t nc = strnlen(a->column, CRYPTO_AAD_NAME_MAX + 1);
    if (nt > CRYPTO_AAD_NAME_MAX || nc > CRYPTO_AAD_NAME_MAX)
        return ERR_INVALID;
    size_t i = sizeof(AAD_LABEL) - 1;
    memcpy(out, AAD_LABEL, i);
    i += put_name(out + i, a->table, nt);
    i += put_name(out + i, a->column, nc);
    put_be64(out + i, (uint64_t)a->row_id);
    put_be64(out + i + 8, (uint64_t)a->owner_id);
    i += 16;
    out[i++] = SEAL_VERSION;
    put_be32(out + i, key_id);
    *len = i + 4;
    return 0;
}

int crypto_seal(const struct crypto *c, const struct crypto_aad *aad, const uint8_t *pt,
                size_t n, struct buf *out)
{
    uint8_t ad[AAD_MAX];
    size_t ad_len = 0, ct_len = 0;
    const struct data_key *k = &c->keys[0];
    if (!pt && n)
        return ERR_INVALID;
    if (n > SIZE_MAX - CRYPTO_SEAL_OVERHEAD)
        return ERR_LIMIT;
    int rc = aad_encode(aad, k->id, ad, &ad_len);
    rc = rc ? rc : buf_reserve(out, CRYPTO_SEAL_OVERHEAD + n);
    if (rc)
        return rc;
    uint8_t *hdr = out->data + out->len;
    hdr[0] = SEAL_VERSION;
    put_be32(hdr + 1, k->id);
    /* A fresh random 96-bit nonce per seal (SP 800-38D §8.2.2); the caller
     * keeps the invocation count per key far below 2^32. */
    psa_status_t st = psa_generate_random(hdr + 5, NONCE_LEN);
    if (st == PSA_SUCCESS)
        st = psa_aead_encrypt(k->key, PSA_ALG_GCM, hdr + 5, NONCE_LEN, ad, ad_len,
                              pt ? pt : (const uint8_t *)"", n, hdr + HEADER_LEN, n + TAG_LEN,
                              &ct_len);
    if (st != PSA_SUCCESS || ct_len != n + TAG_LEN) {
        mbedtls_platform_zeroize(hdr, CRYPTO_SEAL_OVERHEAD + n);
        return ERR_CRYPTO;
    }
    out->len += CRYPTO_SEAL_OVERHEAD + n;
    return 0;
}

/* Whatever `out` held may be an earlier plaintext: wipe it, not just drop it. */
static void wipe_clear(struct buf *out)
{
    if (out->data)
        mbedtls_platform_zeroize(out->data, out->cap);
    out->len = 0;
}

int crypto_open(const struct crypto *c, const struct crypto_aad *aad, const uint8_t *blob,
                size_t n, struct buf *out)
{
    uint8_t ad[AAD_MAX], none = 0;
    size_t ad_len = 0, pt_len = 0;
    wipe_clear(out);
    if (!blob || n < CRYPTO_SEAL_OVERHEAD || blob[0] != SEAL_VERSION)
        return ERR_CRYPTO;
    const struct data_key *k = find_key(c, get_be32(blob + 1));
    if (!k)
        return ERR_CRYPTO;
    size_t cap = n - CRYPTO_SEAL_OVERHEAD;
    int rc = aad_encode(aad, k->id, ad, &ad_len);
    rc = rc ? rc : buf_reserve(out, cap);
    if (rc)
        return rc;
    /* An empty buffer may have no allocation; PSA still wants a pointer. */
    uint8_t *dst = cap ? out->data : &none;
    psa_status_t st = psa_aead_decrypt(k->key, PSA_ALG_GCM, blob + 5, NONCE_LEN, ad, ad_len,
                                       blob + HEADER_LEN, n - HEADER_LEN, dst, cap, &pt_len);
    if (st != PSA_SUCCESS || pt_len != cap) {
        wipe_clear(out);
        return ERR_CRYPTO;
    }
    out->len = pt_len;
    return 0;
}

uint32_t crypto_sealed_key_id(const uint8_t *blob, size_t n)
{
    if (!blob || n < CRYPTO_SEAL_OVERHEAD || blob[0] != SEAL_VERSION)
        return 0;
    return get_be32(blob + 1);
}

/* ---- tokens and pseudonyms ---------------------------------------------- */

/* base64 -> base64url without branching on the (secret) character. */
static char url_char(unsigned char ch)
{
    unsigned plus = ch == '+', slash = ch == '/';
    return (char)(ch + plus * ('-' - '+') + slash * ('_' - '/'));
}

int crypto_token_new(char out[CRYPTO_TOKEN_LEN + 1])
{
    uint8_t raw[32];
    unsigned char b64[45];               /* 44 characters with one '=', NUL */
    size_t b64_len = 0;
    int rc = crypto_random(raw, sizeof(raw));
    if (rc == 0 && (mbedtls_base64_encode(b64, sizeof(b64), &b64_len, raw, sizeof(raw)) != 0 ||
                    b64_len != 44))
        rc = ERR_CRYPTO;
    if (rc == 0) {
        memcpy(out, "nt_", 3);
        for (size_t i = 0; i < CRYPTO_TOKEN_LEN - 3; i++)
            out[3 + i] = url_char(b64[i]);
        out[CRYPTO_TOKEN_LEN] = '\0';
    }
    mbedtls_platform_zeroize(raw, sizeof(raw));
    mbedtls_platform_zeroize(b64, sizeof(b64));
    return rc;
}

int crypto_token_hash(const struct crypto *c, const char *token, size_t n,
                      uint8_t out[CRYPTO_TOKEN_HASH_LEN])
{
    size_t len = 0;
    psa_status_t st = psa_mac_compute(c->token_key, HMAC_ALG, (const uint8_t *)token, n, out,
                                      CRYPTO_TOKEN_HASH_LEN, &len);
    return st == PSA_SUCCESS && len == CRYPTO_TOKEN_HASH_LEN ? 0 : ERR_CRYPTO;
}

int crypto_pseudonym(const struct crypto *c, int64_t user_id, char out[CRYPTO_PSEUDONYM_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    char msg[32];
    uint8_t mac[PSA_HASH_LENGTH(PSA_ALG_SHA_256)];
    size_t mac_len = 0;
    int n = snprintf(msg, sizeof(msg), "user:%lld", (long long)user_id);
    psa_status_t st = psa_mac_compute(c->audit_key, HMAC_ALG, (const uint8_t *)msg, (size_t)n,
                                      mac, sizeof(mac), &mac_len);
    if (st != PSA_SUCCESS || mac_len != sizeof(mac))
        return ERR_CRYPTO;
    for (size_t i = 0; i < CRYPTO_PSEUDONYM_LEN / 2; i++) {
        out[2 * i] = hex[mac[i] >> 4];
        out[2 * i + 1] = hex[mac[i] & 15];
    }
    out[CRYPTO_PSEUDONYM_LEN] = '\0';
    mbedtls_platform_zeroize(mac, sizeof(mac));
    return 0;
}

/* ---- the audit chain ----------------------------------------------------- */

int crypto_audit_mac(const struct crypto *c, const uint8_t *data, size_t n,
                     uint8_t out[CRYPTO_SHA256_LEN])
{
    size_t len = 0;
    psa_status_t st = psa_mac_compute(c->audit_chain_key, HMAC_ALG, data ? data : (const uint8_t *)"",
                                      n, out, CRYPTO_SHA256_LEN, &len);
    return st == PSA_SUCCESS && len == CRYPTO_SHA256_LEN ? 0 : ERR_CRYPTO;
}

int crypto_sha256(const void *data, size_t n, uint8_t out[CRYPTO_SHA256_LEN])
{
    size_t len = 0;
    psa_status_t st = psa_hash_compute(PSA_ALG_SHA_256, data ? data : (const void *)"", n, out,
                                       CRYPTO_SHA256_LEN, &len);
    return st == PSA_SUCCESS && len == CRYPTO_SHA256_LEN ? 0 : ERR_CRYPTO;
}
