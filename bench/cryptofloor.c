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
 * code does (psa_generate_key, psa_export_public_key, psa_raw_key_agreement),
 * with the X25519 share's export routed to HACL* as in notesd (the Makefile
 * links src/tls_x25519.c with the same --wrap);
 * the signature goes through mbedtls_pk_sign on the parsed certificate key,
 * the same call path the TLS stack takes.
 *
 * With sizes after SECONDS it also measures the crypto floor of one
 * authenticated, audited keep-alive GET (scenario 1), as notesd's formats
 * define it: the TLS record of the request opened and the one of the
 * response sealed (AES-256-GCM, the suite curl and wrk negotiate, through
 * psa_aead_* as mbedTLS's TLS code calls it), the note's two columns opened
 * (AES-256-GCM with their associated data), and the audit line's HMAC-SHA256
 * (over the line up to `,"mac":`) and SHA-256 (the whole line, the next
 * line's `prev`). Parsing, SQLite, JSON and the system calls are the part
 * left to the implementation.
 *
 * usage: cryptofloor KEY.pem [SECONDS [REQ RESP LINE TITLE CONTENT]]
 *        (sizes in bytes of plaintext; prints one JSON object) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mbedtls/pk.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/psa_util.h>
#include <psa/crypto.h>

#include "audit_int.h"   /* AUDIT_MAC_TAIL: the part of a line its MAC does not cover */

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

/* ---- one request --------------------------------------------------------- */

#define COLUMN_AAD 40           /* table, column, ids, key id: about this long */

struct request {
    mbedtls_svc_key_id_t record_key, column_key, mac_key;
    size_t req, resp, line, title, content;
    uint8_t *buf, *out;         /* plaintext and sealed text, big enough for all */
    size_t cap;
};

static const uint8_t nonce[12];   /* a benchmark of cost only: nothing sealed is kept */
static const uint8_t record_header[5] = { 23, 3, 3, 0, 0 };   /* a TLS 1.3 record's AAD */
static const uint8_t column_ad[COLUMN_AAD];

static int seal(mbedtls_svc_key_id_t k, const uint8_t *ad, size_t ad_len, const uint8_t *p,
                size_t n, uint8_t *out, size_t cap, size_t *len)
{
    return psa_aead_encrypt(k, PSA_ALG_GCM, nonce, sizeof(nonce), ad, ad_len, p, n, out, cap, len) ==
                   PSA_SUCCESS ? 0 : -1;
}

/* Text sealed once up front: the sealing is not part of what a read costs,
 * opening it is. */
struct sealed {
    mbedtls_svc_key_id_t key;
    const uint8_t *ad;
    size_t ad_len;
    uint8_t *c;
    size_t len;
};

static struct sealed req_record, title_col, content_col;

static int prepare_sealed(struct request *r, struct sealed *s, mbedtls_svc_key_id_t k, const uint8_t *ad,
                          size_t ad_len, size_t n)
{
    *s = (struct sealed){ .key = k, .ad = ad, .ad_len = ad_len, .c = malloc(n + 16) };
    return s->c ? seal(k, ad, ad_len, r->buf, n, s->c, n + 16, &s->len) : -1;
}

static int open_sealed(const struct sealed *s, struct request *r)
{
    size_t len = 0;
    return psa_aead_decrypt(s->key, PSA_ALG_GCM, nonce, sizeof(nonce), s->ad, s->ad_len, s->c, s->len,
                            r->out, r->cap, &len) == PSA_SUCCESS ? 0 : -1;
}

static int op_tls(void *arg)
{
    struct request *r = arg;
    size_t len = 0;
    int rc = open_sealed(&req_record, r);
    return rc ? rc : seal(r->record_key, record_header, sizeof(record_header), r->buf, r->resp + 1,
                          r->out, r->cap, &len);
}

static int op_columns(void *arg)
{
    struct request *r = arg;
    int rc = open_sealed(&title_col, r);
    return rc ? rc : open_sealed(&content_col, r);
}

static int op_audit(void *arg)
{
    struct request *r = arg;
    uint8_t mac[32], hash[32];
    size_t len = 0;
    size_t macd = r->line > AUDIT_MAC_TAIL ? r->line - AUDIT_MAC_TAIL : 0;
    if (psa_mac_compute(r->mac_key, PSA_ALG_HMAC(PSA_ALG_SHA_256), r->buf, macd, mac, sizeof(mac),
                        &len) != PSA_SUCCESS)
        return -1;
    return psa_hash_compute(PSA_ALG_SHA_256, r->buf, r->line, hash, sizeof(hash), &len) == PSA_SUCCESS
                   ? 0 : -1;
}

static int op_request(void *arg)
{
    int rc = op_tls(arg);
    rc = rc ? rc : op_columns(arg);
    return rc ? rc : op_audit(arg);
}

static mbedtls_svc_key_id_t import(psa_key_type_t type, psa_algorithm_t alg, psa_key_usage_t usage)
{
    uint8_t k[32];
    psa_key_attributes_t attr = PSA_KEY_ATTRIBUTES_INIT;
    psa_set_key_type(&attr, type);
    psa_set_key_bits(&attr, 256);
    psa_set_key_usage_flags(&attr, usage);
    psa_set_key_algorithm(&attr, alg);
    mbedtls_svc_key_id_t id = MBEDTLS_SVC_KEY_ID_INIT;
    if (psa_generate_random(k, sizeof(k)) != PSA_SUCCESS || psa_import_key(&attr, k, sizeof(k), &id))
        id = MBEDTLS_SVC_KEY_ID_INIT;
    mbedtls_platform_zeroize(k, sizeof(k));
    return id;
}

static int setup_request(struct request *r, char **sizes)
{
    size_t *field[] = { &r->req, &r->resp, &r->line, &r->title, &r->content };
    for (size_t i = 0; i < 5; i++) {
        long v = atol(sizes[i]);
        if (v <= 0 || v > 65536)
            return -1;
        *field[i] = (size_t)v;
    }
    psa_key_usage_t enc = PSA_KEY_USAGE_ENCRYPT | PSA_KEY_USAGE_DECRYPT;
    r->record_key = import(PSA_KEY_TYPE_AES, PSA_ALG_GCM, enc);
    r->column_key = import(PSA_KEY_TYPE_AES, PSA_ALG_GCM, enc);
    r->mac_key = import(PSA_KEY_TYPE_HMAC, PSA_ALG_HMAC(PSA_ALG_SHA_256), PSA_KEY_USAGE_SIGN_MESSAGE);
    r->cap = 65536 + 64;
    r->buf = calloc(1, r->cap);
    r->out = calloc(1, r->cap);
    if (!r->buf || !r->out)
        return -1;
    memset(r->buf, 'a', r->cap);
    /* + 1: a TLS 1.3 record's plaintext ends with its content type. */
    int rc = prepare_sealed(r, &req_record, r->record_key, record_header, sizeof(record_header),
                            r->req + 1);
    rc = rc ? rc : prepare_sealed(r, &title_col, r->column_key, column_ad, COLUMN_AAD, r->title);
    return rc ? rc : prepare_sealed(r, &content_col, r->column_key, column_ad, COLUMN_AAD, r->content);
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
           "\"full_x25519_us\": %.1f, \"resumed_x25519_us\": %.1f",
           x, p, sg, x + sg, x);
    if (argc >= 8) {
        struct request r = { 0 };
        if (setup_request(&r, argv + 3) != 0) {
            fprintf(stderr, "cryptofloor: bad request sizes or key setup failed\n");
            return 1;
        }
        double t = measure(op_tls, &r, seconds / 4), c = measure(op_columns, &r, seconds / 4);
        double au = measure(op_audit, &r, seconds / 4), all = measure(op_request, &r, seconds / 4);
        printf(", \"request_tls_us\": %.2f, \"request_columns_us\": %.2f, \"request_audit_us\": %.2f, "
               "\"request_us\": %.2f", t, c, au, all);
    }
    printf("}\n");
    mbedtls_pk_free(&pk);
    mbedtls_psa_crypto_free();
    return 0;
}
