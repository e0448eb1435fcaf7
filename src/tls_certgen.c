/*
 * tls_certgen.c - `notesd gen-cert`: a self-signed ECDSA P-256 certificate
 * and key made with mbedTLS itself, so no openssl is needed on the box.
 *
 * For development and tests: valid for 90 days (Mozilla's certificate
 * lifetime), with the host name (and, for localhost, the loopback addresses)
 * as subject alternative names. The key file is created with mode 0600 and
 * wiped from memory after writing.
 */
#include "tls_certgen.h"
#include "err.h"
#include "file.h"

#include <arpa/inet.h>
#include <errno.h>
#include <mbedtls/ecp.h>
#include <mbedtls/oid.h>
#include <mbedtls/pk.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/x509_crt.h>
#include <psa/crypto.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define CERT_DAYS 90
#define PEM_MAX 4096

static int rng(void *unused, unsigned char *out, size_t n)
{
    (void)unused;
    return psa_generate_random(out, n) == PSA_SUCCESS ? 0 : MBEDTLS_ERR_X509_FATAL_ERROR;
}

static bool valid_hostname(const char *h)
{
    size_t n = strlen(h);
    if (n == 0 || n > 253)
        return false;
    for (const char *p = h; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '.'))
            return false;
    return true;
}

/* 0, or -1 when `t` has no 4-digit UTC year (gmtime_r fails, or the text
 * does not fit and strftime leaves `out` undefined). */
static int x509_time(char out[15], time_t t)
{
    struct tm tm;
    if (!gmtime_r(&t, &tm) || strftime(out, 15, "%Y%m%d%H%M%S", &tm) != 14)
        return -1;
    return 0;
}

/* SANs: the name itself, or its address when it is an IP literal; for
 * localhost also 127.0.0.1 and ::1 so clients may use either. */
struct sans {
    mbedtls_x509_san_list node[4];
    unsigned char ip4[4], ip6[16], lo4[4], lo6[16];
    unsigned char name[254];
};

static void add_san(struct sans *s, int *n, int type, unsigned char *p, size_t len)
{
    mbedtls_x509_san_list *node = &s->node[*n];
    memset(node, 0, sizeof(*node));
    node->node.type = type;
    node->node.san.unstructured_name.p = p;
    node->node.san.unstructured_name.len = len;
    if (*n > 0)
        s->node[*n - 1].next = node;
    (*n)++;
}

static void build_sans(struct sans *s, const char *host)
{
    int n = 0;
    memset(s, 0, sizeof(*s));
    if (inet_pton(AF_INET, host, s->ip4) == 1) {
        add_san(s, &n, MBEDTLS_X509_SAN_IP_ADDRESS, s->ip4, 4);
        return;
    }
    if (inet_pton(AF_INET6, host, s->ip6) == 1) {
        add_san(s, &n, MBEDTLS_X509_SAN_IP_ADDRESS, s->ip6, 16);
        return;
    }
    size_t len = strlen(host);   /* <= 253, checked by valid_hostname() */
    memcpy(s->name, host, len);
    add_san(s, &n, MBEDTLS_X509_SAN_DNS_NAME, s->name, len);
    if (strcmp(host, "localhost") == 0) {
        inet_pton(AF_INET, "127.0.0.1", s->lo4);
        inet_pton(AF_INET6, "::1", s->lo6);
        add_san(s, &n, MBEDTLS_X509_SAN_IP_ADDRESS, s->lo4, 4);
        add_san(s, &n, MBEDTLS_X509_SAN_IP_ADDRESS, s->lo6, 16);
    }
}

static int write_cert(mbedtls_pk_context *key, const char *host, time_t not_before,
                      time_t not_after, unsigned char *pem, size_t cap)
{
    mbedtls_x509write_cert crt;
    mbedtls_x509write_crt_init(&crt);
    char subject[300], from[15], to[15];
    unsigned char serial[16];
    struct sans sans;
    build_sans(&sans, host);
    snprintf(subject, sizeof(subject), "CN=%s,O=notesd development", host);
    int rc = x509_time(from, not_before) == 0 && x509_time(to, not_after) == 0 ? 0 : -1;
    if (rc == 0 && psa_generate_random(serial, sizeof(serial)) != PSA_SUCCESS)
        rc = -1;
    serial[0] = (unsigned char)((serial[0] & 0x7f) | 0x01);   /* positive, 16 bytes */
    mbedtls_asn1_sequence eku = { .buf = { .tag = MBEDTLS_ASN1_OID,
                                           .len = MBEDTLS_OID_SIZE(MBEDTLS_OID_SERVER_AUTH),
                                           .p = (unsigned char *)MBEDTLS_OID_SERVER_AUTH } };
    mbedtls_x509write_crt_set_version(&crt, MBEDTLS_X509_CRT_VERSION_3);
    mbedtls_x509write_crt_set_md_alg(&crt, MBEDTLS_MD_SHA256);
    mbedtls_x509write_crt_set_subject_key(&crt, key);
    mbedtls_x509write_crt_set_issuer_key(&crt, key);
    rc = rc ? rc : mbedtls_x509write_crt_set_subject_name(&crt, subject);
    rc = rc ? rc : mbedtls_x509write_crt_set_issuer_name(&crt, subject);
    rc = rc ? rc : mbedtls_x509write_crt_set_serial_raw(&crt, serial, sizeof(serial));
    rc = rc ? rc : mbedtls_x509write_crt_set_validity(&crt, from, to);
    rc = rc ? rc : mbedtls_x509write_crt_set_basic_constraints(&crt, 0, -1);
    rc = rc ? rc : mbedtls_x509write_crt_set_key_usage(&crt, MBEDTLS_X509_KU_DIGITAL_SIGNATURE);
    rc = rc ? rc : mbedtls_x509write_crt_set_ext_key_usage(&crt, &eku);
    rc = rc ? rc : mbedtls_x509write_crt_set_subject_alternative_name(&crt, sans.node);
    rc = rc ? rc : mbedtls_x509write_crt_pem(&crt, pem, cap, rng, NULL);
    mbedtls_x509write_crt_free(&crt);
    return rc;
}

static int fail(char *err, size_t errlen, const char *msg)
{
    snprintf(err, errlen, "%s", msg);
    return ERR_INVALID;
}

int tls_gen_cert(const char *host, const char *dir, char *err, size_t errlen)
{
    time_t now = time(NULL);
    /* An hour back tolerates small clock skew between hosts. */
    return tls_gen_cert_valid(host, dir, now - 3600, now + (time_t)CERT_DAYS * 86400, err, errlen);
}

int tls_gen_cert_valid(const char *host, const char *dir, time_t not_before, time_t not_after,
                       char *err, size_t errlen)
{
    char cert_path[4096], key_path[4096], why[256];
    if (!valid_hostname(host))
        return fail(err, errlen, "--host must be a DNS name or an IP address");
    if (snprintf(cert_path, sizeof(cert_path), "%s/cert.pem", dir) >= (int)sizeof(cert_path) ||
        snprintf(key_path, sizeof(key_path), "%s/key.pem", dir) >= (int)sizeof(key_path))
        return fail(err, errlen, "--out path is too long");
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return fail(err, errlen, "cannot create the --out directory");

    mbedtls_pk_context key;
    mbedtls_pk_init(&key);
    unsigned char key_pem[PEM_MAX], cert_pem[PEM_MAX];
    int rc = mbedtls_pk_setup(&key, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY));
    rc = rc ? rc : mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, mbedtls_pk_ec(key), rng, NULL);
    rc = rc ? rc : mbedtls_pk_write_key_pem(&key, key_pem, sizeof(key_pem));
    rc = rc ? rc : write_cert(&key, host, not_before, not_after, cert_pem, sizeof(cert_pem));
    mbedtls_pk_free(&key);
    if (rc != 0) {
        mbedtls_platform_zeroize(key_pem, sizeof(key_pem));
        return fail(err, errlen, "certificate generation failed");
    }
    rc = file_write_all(key_path, key_pem, strlen((char *)key_pem), 0600, why, sizeof(why));
    mbedtls_platform_zeroize(key_pem, sizeof(key_pem));
    if (rc == 0)
        rc = file_write_all(cert_path, cert_pem, strlen((char *)cert_pem), 0644, why, sizeof(why));
    if (rc != 0) {
        snprintf(err, errlen, "%s", why);
        return ERR_IO;
    }
    return 0;
}
