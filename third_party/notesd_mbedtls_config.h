/*
 * notesd's mbedTLS 3.6 build configuration.
 *
 * Compiles in only what the server uses: a TLS 1.3 / TLS 1.2 server with
 * ECDHE key exchange and AEAD suites (the Mozilla "intermediate" profile),
 * ECDSA (preferred) or RSA >= 2048 certificates, X25519 / P-256 / P-384,
 * session tickets, PSA crypto for the application's own AEAD, HMAC and RNG,
 * and X.509 writing for `notesd gen-cert`.
 *
 * Deliberately absent: renegotiation, CBC, RSA key exchange, (EC)DHE-PSK and
 * PSK-only exchanges, DTLS, TLS 1.0/1.1, 0-RTT early data, SHA-1, file I/O
 * (notesd reads key files itself so it can fstat() the descriptor it reads).
 * Included by mbedtls through -DMBEDTLS_CONFIG_FILE; not by notesd code.
 */
#ifndef NOTESD_MBEDTLS_CONFIG_H
#define NOTESD_MBEDTLS_CONFIG_H

/* Platform */
#define MBEDTLS_HAVE_ASM
#define MBEDTLS_HAVE_TIME
#define MBEDTLS_HAVE_TIME_DATE
#define MBEDTLS_PLATFORM_C
/* notesd sets mbedTLS's calloc/free at start-up (src/tls_mem.c). */
#define MBEDTLS_PLATFORM_MEMORY
#define MBEDTLS_VERSION_C
#define MBEDTLS_AESNI_C
#define MBEDTLS_AES_ROM_TABLES

/* Randomness: getrandom() -> entropy -> CTR_DRBG inside PSA */
#define MBEDTLS_ENTROPY_C
#define MBEDTLS_CTR_DRBG_C

/* PSA crypto: required by TLS 1.3 and used by notesd directly */
#define MBEDTLS_PSA_CRYPTO_C
#define MBEDTLS_USE_PSA_CRYPTO
/* Every TLS 1.3 connection keeps its traffic keys (and, mid-handshake, its
 * ECDHE key) in PSA key slots for its whole life. The fixed table (32 slots
 * by default) would refuse the handshake of roughly the seventh concurrent
 * connection; the dynamic key store grows with the connections instead
 * (bounded by NOTES_MAX_CONNECTIONS). */
#define MBEDTLS_PSA_KEY_STORE_DYNAMIC
/* PSA copies every input and output buffer in case another process shares
 * the memory; no buffer of ours is shared, so skip the copies (a few
 * percent of a request's CPU in the bench). */
#define MBEDTLS_PSA_ASSUME_EXCLUSIVE_BUFFERS

/* Symmetric primitives: AEAD only */
#define MBEDTLS_CIPHER_C
#define MBEDTLS_AES_C
#define MBEDTLS_GCM_C
#define MBEDTLS_CHACHA20_C
#define MBEDTLS_POLY1305_C
#define MBEDTLS_CHACHAPOLY_C

/* Hashes and MACs */
#define MBEDTLS_MD_C
#define MBEDTLS_SHA224_C
#define MBEDTLS_SHA256_C
#define MBEDTLS_SHA384_C
#define MBEDTLS_SHA512_C
#define MBEDTLS_HKDF_C

/* Public key */
#define MBEDTLS_BIGNUM_C
#define MBEDTLS_ECP_C
#define MBEDTLS_ECDH_C
#define MBEDTLS_ECDSA_C
#define MBEDTLS_ECP_NIST_OPTIM
#define MBEDTLS_ECP_DP_SECP256R1_ENABLED
#define MBEDTLS_ECP_DP_SECP384R1_ENABLED
#define MBEDTLS_ECP_DP_CURVE25519_ENABLED
/* X25519 key agreement through the formally verified HACL* code (Project
 * Everest) that ships in mbedTLS's own source: ~6x faster here than the
 * generic Montgomery ladder, constant-time, and it refuses an all-zero
 * shared secret (RFC 8446 7.4.2). PSA's key agreement uses it; the
 * public share PSA exports is routed to it by src/tls_x25519.c. */
#define MBEDTLS_ECDH_VARIANT_EVEREST_ENABLED
#define MBEDTLS_RSA_C
#define MBEDTLS_PKCS1_V15
#define MBEDTLS_PKCS1_V21
#define MBEDTLS_PK_C
#define MBEDTLS_PK_PARSE_C
#define MBEDTLS_PK_WRITE_C
#define MBEDTLS_PK_PARSE_EC_EXTENDED
#define MBEDTLS_PK_PARSE_EC_COMPRESSED

/* Encodings and X.509 */
#define MBEDTLS_ASN1_PARSE_C
#define MBEDTLS_ASN1_WRITE_C
#define MBEDTLS_OID_C
#define MBEDTLS_BASE64_C
#define MBEDTLS_PEM_PARSE_C
#define MBEDTLS_PEM_WRITE_C
#define MBEDTLS_X509_USE_C
#define MBEDTLS_X509_CRT_PARSE_C
#define MBEDTLS_X509_CREATE_C
#define MBEDTLS_X509_CRT_WRITE_C
#define MBEDTLS_X509_RSASSA_PSS_SUPPORT

/* TLS: server side, 1.2 and 1.3, ECDHE only */
#define MBEDTLS_SSL_TLS_C
#define MBEDTLS_SSL_SRV_C
#define MBEDTLS_SSL_PROTO_TLS1_2
#define MBEDTLS_SSL_PROTO_TLS1_3
#define MBEDTLS_SSL_KEEP_PEER_CERTIFICATE
#define MBEDTLS_SSL_TLS1_3_COMPATIBILITY_MODE
#define MBEDTLS_SSL_TLS1_3_KEY_EXCHANGE_MODE_EPHEMERAL_ENABLED
/* Ticket resumption in TLS 1.3 uses psk_dhe_ke: still forward secret. */
#define MBEDTLS_SSL_TLS1_3_KEY_EXCHANGE_MODE_PSK_EPHEMERAL_ENABLED
#define MBEDTLS_KEY_EXCHANGE_ECDHE_ECDSA_ENABLED
#define MBEDTLS_KEY_EXCHANGE_ECDHE_RSA_ENABLED
#define MBEDTLS_SSL_EXTENDED_MASTER_SECRET
#define MBEDTLS_SSL_SESSION_TICKETS
#define MBEDTLS_SSL_TICKET_C
#define MBEDTLS_SSL_SERVER_NAME_INDICATION
#define MBEDTLS_SSL_ALPN
#define MBEDTLS_SSL_ALL_ALERT_MESSAGES
#define MBEDTLS_SSL_KEYING_MATERIAL_EXPORT
/* Record buffers are most of an idle connection's memory. Input must take
 * the 16 KiB records any client may send; output records of 4 KiB cost a
 * little framing on large responses and save 12 KiB per connection. Every
 * handshake message we send must fit, the certificate chain above all:
 * tls.c refuses a chain that does not, at start-up. */
#define MBEDTLS_SSL_IN_CONTENT_LEN 16384
#define MBEDTLS_SSL_OUT_CONTENT_LEN 4096

/* Only these suites exist in the binary (TLS 1.3 first, then 1.2). */
#define MBEDTLS_SSL_CIPHERSUITES                              \
    MBEDTLS_TLS1_3_AES_128_GCM_SHA256,                        \
    MBEDTLS_TLS1_3_AES_256_GCM_SHA384,                        \
    MBEDTLS_TLS1_3_CHACHA20_POLY1305_SHA256,                  \
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,          \
    MBEDTLS_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,            \
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,          \
    MBEDTLS_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,            \
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,    \
    MBEDTLS_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256

#endif /* NOTESD_MBEDTLS_CONFIG_H */
