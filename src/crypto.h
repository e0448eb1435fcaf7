/*
 * crypto.h - every use of key material: sealed (AES-256-GCM) columns with a
 * key ring, bearer tokens and their HMAC, argon2id password hashes,
 * pseudonyms for the audit log, the RNG and constant-time comparison.
 *
 * Threads: crypto_init(), crypto_new() and every function taking a
 * `const struct crypto *` run on the event-loop thread only (PSA is built
 * without threading support). crypto_password_hash() and
 * crypto_password_verify() touch no PSA state and are meant for libuv's
 * thread pool; they take their salt as an argument for that reason.
 */
#ifndef NOTESD_CRYPTO_H
#define NOTESD_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "buf.h"
#include "config.h"

#define CRYPTO_TOKEN_LEN 46          /* "nt_" + base64url(32 random bytes) */
#define CRYPTO_TOKEN_HASH_LEN 32     /* HMAC-SHA256 */
#define CRYPTO_SALT_LEN 16
#define CRYPTO_PHC_MAX 160           /* room for an argon2id PHC string */
#define CRYPTO_PSEUDONYM_LEN 16      /* hex characters */
#define CRYPTO_SEAL_OVERHEAD (1 + 4 + 12 + 16)  /* version, key id, nonce, tag */
#define CRYPTO_MAX_KEYS 8            /* active + previous data keys */

/** Initialise PSA crypto once, before any TLS or key operation. 0 or ERR_CRYPTO. */
int crypto_init(void);
/** Fill `out` with `n` bytes from the PSA DRBG. 0 or ERR_CRYPTO. */
int crypto_random(void *out, size_t n);
/** Constant-time equality of two equal-length byte strings. */
int crypto_equal(const void *a, const void *b, size_t n);

/** Where a sealed value lives; bound into the GCM additional data so a
 *  ciphertext moved to another row, column, table or owner fails to open. */
struct crypto_aad {
    const char *table;               /* e.g. "notes" */
    const char *column;              /* e.g. "title" */
    int64_t row_id;
    int64_t owner_id;
};

struct crypto_argon2 {
    uint32_t m_kib;                  /* memory, KiB (>= 19456) */
    uint32_t t;                      /* passes (>= 2) */
    uint32_t p;                      /* lanes (>= 1) */
};

struct crypto;

/**
 * Import the keys of `cfg` (data key and previous data keys, token key,
 * audit key) into PSA as non-exportable volatile keys. AEAD keys are derived
 * with HKDF-SHA256 so any secret of >= 32 bytes works; each data key gets a
 * 32-bit key id (from the key itself) recorded in every value it seals.
 * 0, or ERR_CONFIG with a reason in `err` (e.g. two previous keys equal).
 */
int crypto_new(struct crypto **out, const struct config *cfg, char *err, size_t errlen);
/** Destroy the PSA keys and free. NULL is a no-op. */
void crypto_free(struct crypto *c);

/** Id of the key crypto_seal() uses. */
uint32_t crypto_active_key_id(const struct crypto *c);
/**
 * Seal `pt` under the active data key with a fresh 96-bit random nonce and a
 * 128-bit tag. Appends version(1) | key id(4, big-endian) | nonce(12) |
 * ciphertext | tag(16) to `out`. 0, ERR_CRYPTO or ERR_NOMEM/ERR_LIMIT.
 * The caller accounts the invocation against the key's usage limit first.
 */
int crypto_seal(const struct crypto *c, const struct crypto_aad *aad, const uint8_t *pt,
                size_t n, struct buf *out);
/** Open a sealed value into `out` (cleared first). ERR_CRYPTO when the
 *  format, key id, tag or additional data is wrong: never partial output. */
int crypto_open(const struct crypto *c, const struct crypto_aad *aad, const uint8_t *blob,
                size_t n, struct buf *out);
/** The key id recorded in a sealed value, or 0 when it is malformed. */
uint32_t crypto_sealed_key_id(const uint8_t *blob, size_t n);

/** A fresh bearer token: "nt_" + base64url of 32 random bytes, NUL-terminated. */
int crypto_token_new(char out[CRYPTO_TOKEN_LEN + 1]);
/** HMAC-SHA256(NOTES_TOKEN_KEY, token): what the database stores. */
int crypto_token_hash(const struct crypto *c, const char *token, size_t n,
                      uint8_t out[CRYPTO_TOKEN_HASH_LEN]);
/** Pseudonymous audit actor: hex of HMAC-SHA256(NOTES_AUDIT_KEY, "user:" id), 16 chars. */
int crypto_pseudonym(const struct crypto *c, int64_t user_id, char out[CRYPTO_PSEUDONYM_LEN + 1]);

/** A PHC string hashed at start-up, verified against when a login names an
 *  unknown user, so both cases cost the same time. */
const char *crypto_dummy_phc(const struct crypto *c);

/**
 * argon2id(password, salt) with `params`, written as a PHC string. Blocking
 * (tens of milliseconds): run it on the thread pool. 0 or ERR_CRYPTO.
 */
int crypto_password_hash(const struct crypto_argon2 *params, const char *pw, size_t n,
                         const uint8_t salt[CRYPTO_SALT_LEN], char phc[CRYPTO_PHC_MAX]);
/**
 * Verify `pw` against a PHC string: 0 on match, ERR_INVALID on mismatch or
 * a malformed PHC. *needs_rehash is set when the stored parameters are weaker
 * than `params`. Blocking: thread pool.
 */
int crypto_password_verify(const char *phc, const char *pw, size_t n,
                           const struct crypto_argon2 *params, bool *needs_rehash);

#endif
