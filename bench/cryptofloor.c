/* The mbedTLS crypto floor of one TLS handshake, measured with the project's
 * own static mbedTLS (same pinned source, same configuration header).
 *
 * A full TLS 1.3 handshake costs the server at least one ephemeral key pair
 * and one key agreement on the negotiated group (X25519 with OpenSSL and
 * curl clients) plus one ECDSA P-256 signature with the certificate's key;
 * a resumed one (psk_dhe_ke, the only resumption notesd allows) costs the key
 * pair and the agreement. Everything else in a handshake (hashing, HKDF,
 * AES-GCM of a few records, parsing) is the part an implementation can
 * make cheap; this program measures only what no implementation avoids.
 *
 * The key pair and agreement go through PSA exactly as mbedTLS's TLS 1.3
 * code does (psa_generate_key, psa_export_public_key, psa_raw_key_agreement);
 * the signature goes through mbedtls_pk_sign on the parsed certificate key,
 * the same call path the TLS stack takes.
 *
 * usage: cryptofloor KEY.pem [SECONDS]   (prints one JSON object) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mbedtls/pk.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/psa_util.h>
#include <psa/crypto.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct agree {
    psa_key_type_t type;
    size_t bits;
    uint8_t peer[160];
    size_t peer_len;
};

/* One side of an ECDHE: fresh key pair, export the public share, agree. */
static int ecdhe_once(const struct agree *a, uint8_t *pub_out, size_t *pub_len)
{
    psa_key_attributes_t attr = PSA_KEY_ATTRIBUTES_INIT;
    psa_set_key_type(&attr, a->type);
    psa_set_key_bits(&attr, a->bits);
    psa_set_key_usage_flags(&attr, PSA_KEY_USAGE_DERIVE);
    psa_set_key_algorithm(&attr, PSA_ALG_ECDH);
    mbedtls_svc_key_id_t key;
    if (psa_generate_key(&attr, &key) != PSA_SUCCESS)
        return -1;
    uint8_t pub[160], secret[80];
    size_t plen = 0, slen = 0;
    int rc = 0;
    if (psa_export_public_key(key, pub, sizeof(pub), &plen) != PSA_SUCCESS)
        rc = -1;
    if (rc == 0 && a->peer_len &&
        psa_raw_key_agreement(PSA_ALG_ECDH, key, a->peer, a->peer_len, secret, sizeof(secret),
                              &slen) != PSA_SUCCESS)
        rc = -1;
    psa_destroy_key(key);
    if (pub_out) {
        memcpy(pub_out, pub, plen);
        *pub_len = plen;
    }
    return rc;
}

typedef int (*op_fn)(void *arg);

static int op_ecdhe(void *arg)
{
    return ecdhe_once(arg, NULL, NULL);
}

struct sign {
    mbedtls_pk_context *pk;
    uint8_t hash[32];
};

static int op_sign(void *arg)
{
    struct sign *s = arg;
    uint8_t sig[MBEDTLS_PK_SIGNATURE_MAX_SIZE];
    size_t len = 0;
    return mbedtls_pk_sign(s->pk, MBEDTLS_MD_SHA256, s->hash, sizeof(s->hash), sig, sizeof(sig),
                           &len, mbedtls_psa_get_random, MBEDTLS_PSA_RANDOM_STATE);
}

/* Median of five batches, each about seconds/5 long: microseconds per op. */
static double measure(op_fn fn, void *arg, double seconds)
{
    double per[5];
    for (int b = 0; b < 5; b++) {
        double t0 = now_s(), t;
        long n = 0;
        do {
            if (fn(arg) != 0) {
                fprintf(stderr, "cryptofloor: operation failed\n");
                exit(1);
            }
            n++;
            t = now_s();
        } while (t - t0 < seconds / 5);
        per[b] = (t - t0) * 1e6 / (double)n;
    }
    for (int i = 1; i < 5; i++)
        for (int j = i; j > 0 && per[j] < per[j - 1]; j--) {
            double x = per[j];
            per[j] = per[j - 1];
            per[j - 1] = x;
        }
    return per[2];
}

static int setup_peer(struct agree *a, psa_key_type_t type, size_t bits)
{
    memset(a, 0, sizeof(*a));
    a->type = type;
    a->bits = bits;
    /* A peer share to agree with: any valid public key of the group. */
    return ecdhe_once(a, a->peer, &a->peer_len);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: cryptofloor KEY.pem [SECONDS]\n");
        return 2;
    }
    double seconds = argc > 2 ? atof(argv[2]) : 2.0;
    if (seconds <= 0)
        seconds = 2.0;
    if (psa_crypto_init() != PSA_SUCCESS)
        return 1;

    FILE *f = fopen(argv[1], "rb");
    if (!f) {
        perror(argv[1]);
        return 1;
    }
    static unsigned char pem[16384];
    size_t n = fread(pem, 1, sizeof(pem) - 1, f);
    fclose(f);
    pem[n] = 0;
    mbedtls_pk_context pk;
    mbedtls_pk_init(&pk);
    if (mbedtls_pk_parse_key(&pk, pem, n + 1, NULL, 0, mbedtls_psa_get_random,
                             MBEDTLS_PSA_RANDOM_STATE) != 0) {
        fprintf(stderr, "cryptofloor: cannot parse %s\n", argv[1]);
        return 1;
    }
    mbedtls_platform_zeroize(pem, sizeof(pem));

    struct agree x25519, p256;
    if (setup_peer(&x25519, PSA_KEY_TYPE_ECC_KEY_PAIR(PSA_ECC_FAMILY_MONTGOMERY), 255) ||
        setup_peer(&p256, PSA_KEY_TYPE_ECC_KEY_PAIR(PSA_ECC_FAMILY_SECP_R1), 256)) {
        fprintf(stderr, "cryptofloor: key agreement setup failed\n");
        return 1;
    }
    struct sign s = { .pk = &pk };
    memset(s.hash, 0xA5, sizeof(s.hash));

    double x = measure(op_ecdhe, &x25519, seconds / 3);
    double p = measure(op_ecdhe, &p256, seconds / 3);
    double sg = measure(op_sign, &s, seconds / 3);
    printf("{\"x25519_ecdhe_us\": %.1f, \"p256_ecdhe_us\": %.1f, \"ecdsa_p256_sign_us\": %.1f, "
           "\"full_x25519_us\": %.1f, \"resumed_x25519_us\": %.1f}\n",
           x, p, sg, x + sg, x);
    mbedtls_pk_free(&pk);
    mbedtls_psa_crypto_free();
    return 0;
}
