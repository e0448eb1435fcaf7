/*
 * crypto.h - every use of key material: sealed (AES-256-GCM) columns with a
 * key ring, bearer tokens and their HMAC, argon2id password hashes,
 * pseudonyms for the audit log, the RNG and constant-time comparison.
 *
 * Key material enters through crypto_new() and lives from then on only as
 * non-exportable PSA key handles inside struct crypto; no function here ever
 * hands key bytes back to a caller.
 *
 * Threads: crypto_init(), crypto_new() and every function taking a
 * `const struct crypto *` run on the event-loop thread only (PSA is built
 * without threading support). crypto_password_hash() and
 * crypto_password_verify() touch no PSA state and no global state; they are
 * meant for libuv's thread pool and take their salt as an argument for that
 * reason.
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
#define CRYPTO_SHA256_LEN 32         /* SHA-256 and HMAC-SHA256 output bytes */
#define CRYPTO_SEAL_OVERHEAD (1 + 4 + 12 + 16)  /* version, key id, nonce, tag */
#define CRYPTO_MAX_KEYS 8            /* active + previous data keys */
#define CRYPTO_AAD_NAME_MAX 64       /* longest table or column name bound in AAD */

/* Argon2id bounds, the same as config.c's table for NOTES_ARGON2_*. Hashing
 * refuses parameters outside them; verifying refuses stored parameters above
 * the ceilings, so a tampered PHC string cannot ask for terabytes of memory. */
#define CRYPTO_ARGON2_M_MIN 19456u
#define CRYPTO_ARGON2_M_MAX 4194304u
#define CRYPTO_ARGON2_T_MIN 2u
#define CRYPTO_ARGON2_T_MAX 100u
#define CRYPTO_ARGON2_P_MIN 1u
#define CRYPTO_ARGON2_P_MAX 16u

/** Initialise PSA crypto once, before any TLS or key operation. 0 or ERR_CRYPTO. */
int crypto_init(void);
/** Fill `out` with `n` bytes from the PSA DRBG. 0 or ERR_CRYPTO. */
int crypto_random(void *out, size_t n);
/** Constant-time equality of two equal-length byte strings: 1 when equal,
 *  0 otherwise. The time depends on `n` only. Any thread. */
int crypto_equal(const void *a, const void *b, size_t n);

/** Where a sealed value lives; bound into the GCM additional data so a
 *  ciphertext moved to another row, column, table or owner fails to open.
 *  The additional data is "notesd-aad-v1" | len16(table) | table |
 *  len16(column) | column | row_id (8, BE) | owner_id (8, BE) | version (1) |
 *  key id (4, BE); table and column are at most CRYPTO_AAD_NAME_MAX bytes. */
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
 * with HKDF-SHA256 (info "notesd data aead v1") so any secret of >= 32 bytes
 * works; each data key gets a 32-bit key id, the first four bytes of
 * HMAC-SHA256(key, "notesd data key id v1") big-endian, with 0 replaced by 1
 * (0 means "malformed" to crypto_sealed_key_id()). Also makes the dummy PHC
 * (cfg's argon2 parameters, random salt and hash; no hashing: fast).
 * Needs crypto_init() first. `*out` is NULL on failure and nothing is left
 * in PSA. 0; ERR_CONFIG with a reason in `err` naming the variable (a secret
 * of the wrong size, too many previous keys, two data keys with one key id,
 * argon2 parameters outside the CRYPTO_ARGON2_* bounds);
 * ERR_CRYPTO or ERR_NOMEM. Event-loop thread.
 */
int crypto_new(struct crypto **out, const struct config *cfg, char *err, size_t errlen);
/** Destroy the PSA keys, wipe and free. NULL is a no-op. */
void crypto_free(struct crypto *c);

/** Id of the key crypto_seal() uses. */
uint32_t crypto_active_key_id(const struct crypto *c);
/**
 * Seal `pt` under the active data key with a fresh 96-bit random nonce and a
 * 128-bit tag. Appends version(1) | key id(4, big-endian) | nonce(12) |
 * ciphertext | tag(16) to `out`. 0, ERR_CRYPTO, ERR_NOMEM/ERR_LIMIT (from
 * `out`), or ERR_INVALID for a missing or over-long table/column name; on
 * error `out` is as it was. `pt` may be NULL when `n` is 0.
 * The caller accounts the invocation against the key's usage limit first.
 */
int crypto_seal(const struct crypto *c, const struct crypto_aad *aad, const uint8_t *pt,
                size_t n, struct buf *out);
/** Open a sealed value into `out` (wiped and cleared first; holds exactly the
 *  plaintext on success). ERR_CRYPTO when the format, version, key id, tag or
 *  additional data is wrong; ERR_LIMIT/ERR_NOMEM when `out` cannot hold the
 *  plaintext; ERR_INVALID for a bad `aad`. On any error `out` is empty:
 *  never partial output. */
int crypto_open(const struct crypto *c, const struct crypto_aad *aad, const uint8_t *blob,
                size_t n, struct buf *out);
/** The key id recorded in a sealed value, or 0 when it is malformed. */
uint32_t crypto_sealed_key_id(const uint8_t *blob, size_t n);

/** A fresh bearer token: "nt_" + base64url (no padding) of 32 random bytes,
 *  46 characters, NUL-terminated. 0 or ERR_CRYPTO. */
int crypto_token_new(char out[CRYPTO_TOKEN_LEN + 1]);
/** HMAC-SHA256(NOTES_TOKEN_KEY, token[0..n)): what the database stores.
 *  Changing NOTES_TOKEN_KEY therefore invalidates every session. 0 or
 *  ERR_CRYPTO. */
int crypto_token_hash(const struct crypto *c, const char *token, size_t n,
                      uint8_t out[CRYPTO_TOKEN_HASH_LEN]);
/** Pseudonymous audit actor: lowercase hex of the first 8 bytes of
 *  HMAC-SHA256(NOTES_AUDIT_KEY, "user:" decimal id), 16 chars + NUL.
 *  0 or ERR_CRYPTO. */
int crypto_pseudonym(const struct crypto *c, int64_t user_id, char out[CRYPTO_PSEUDONYM_LEN + 1]);

/** HMAC-SHA256 of data[0..n) under the audit chain key: 32 bytes derived at
 *  crypto_new() with HKDF-SHA256 from NOTES_AUDIT_KEY (no salt, info
 *  "notesd audit chain v1"), so the chain MACs and crypto_pseudonym() never
 *  share a key. `data` may be NULL when `n` is 0. 0 or ERR_CRYPTO.
 *  Event-loop thread (or a CLI command). */
int crypto_audit_mac(const struct crypto *c, const uint8_t *data, size_t n,
                     uint8_t out[CRYPTO_SHA256_LEN]);
/** The Argon2 algorithm version libargon2 was built with (0x13 for 1.3),
 *  for `notesd --version --verbose`. Any thread. */
unsigned crypto_argon2_version(void);
/** SHA-256 of data[0..n) (no key). `data` may be NULL when `n` is 0.
 *  0 or ERR_CRYPTO. Uses PSA: event-loop thread (or a CLI command). */
int crypto_sha256(const void *data, size_t n, uint8_t out[CRYPTO_SHA256_LEN]);

/** A PHC string made at start-up (cfg's parameters, a random salt and a
 *  random 32-byte hash), verified against when a login names an unknown
 *  user, so both cases cost one argon2id. No password matches it. Owned by
 *  `c`. */
const char *crypto_dummy_phc(const struct crypto *c);

/**
 * argon2id v1.3 (password, salt) with `params` and a 32-byte output, written
 * as a NUL-terminated PHC string "$argon2id$v=19$m=..,t=..,p=..$salt$hash".
 * The whole password[0..n) is hashed, never truncated. Blocking (tens of
 * milliseconds): run it on the thread pool. 0; ERR_INVALID for parameters
 * outside the CRYPTO_ARGON2_* bounds; ERR_CRYPTO otherwise.
 */
int crypto_password_hash(const struct crypto_argon2 *params, const char *pw, size_t n,
                         const uint8_t salt[CRYPTO_SALT_LEN], char phc[CRYPTO_PHC_MAX]);
/**
 * Verify `pw` against a PHC string (NUL-terminated within CRYPTO_PHC_MAX):
 * 0 on match; ERR_INVALID on mismatch or on a PHC that is not argon2id v=19
 * with a 32-byte hash and a salt of at least 16 bytes, or that asks for more
 * than the CRYPTO_ARGON2_* ceilings; ERR_NOMEM when argon2 cannot get its
 * memory. The comparison is constant-time (libargon2). On a match,
 * *needs_rehash (may be NULL) is set when the stored m, t or p differs
 * from `params` (raised settings make old hashes stronger; lowered ones end
 * the cost, and the padding of failed logins, an old hash still asks for);
 * it is false otherwise. Blocking: thread pool.
 */
int crypto_password_verify(const char *phc, const char *pw, size_t n,
                           const struct crypto_argon2 *params, bool *needs_rehash);
/** Whether `phc` is an argon2id string made with exactly `params` (a check
 *  of it costs what a check under the current settings costs). Any thread. */
bool crypto_password_same_params(const char *phc, const struct crypto_argon2 *params);
/** Lower the calling thread ten nice steps below the priority it inherited
 *  (at most 19), once per thread: password work on the pool must leave the
 *  CPU to the event loop, without starving. Pool threads. */
void crypto_password_background(void);
/** What every PHC string this build makes or accepts starts with; its
 *  parameters ("m=M,t=T,p=P") follow up to the next '$'. */
#define CRYPTO_PHC_PREFIX "$argon2id$v=19$"
/** Parse exactly "m=M,t=T,p=P" (decimal, no leading zeros) into `out`, not
 *  range-checked. 0 or ERR_INVALID. Any thread. */
int crypto_password_params(const char *text, struct crypto_argon2 *out);
/** A PHC string under `params` with a random salt and hash, as the
 *  unknown-user hash is made: no password matches it, and checking one
 *  costs what `params` ask. 0, ERR_INVALID (parameters out of range) or
 *  ERR_CRYPTO. Uses PSA's RNG: event-loop thread (or a CLI command). */
int crypto_password_dummy(const struct crypto_argon2 *params, char phc[CRYPTO_PHC_MAX]);
/** How long one check of a wrong password against `phc` takes here, in
 *  milliseconds, on the calling thread (which it blocks that long). 0 only
 *  when the check ran to its end (the password did not match); ERR_INVALID
 *  for NULL or an unterminated string, ERR_NOMEM, or ERR_CRYPTO for a
 *  string libargon2 refuses. Any thread (no PSA). */
int crypto_password_check_ms(const char *phc, uint64_t *ms);

#endif
