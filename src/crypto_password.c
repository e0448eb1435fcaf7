/*
 * crypto_password.c - argon2id password hashes in the PHC string format:
 * hashing, verifying (with the strict parse that refuses other types and
 * versions), and the string of a made-up hash that login compares unknown
 * users against.
 *
 * Runs on libuv's thread pool: no PSA (built without threading support),
 * no globals, nothing but the caller's buffers. Only libargon2 computes;
 * the salt comes from the caller (crypto_random() on the loop thread).
 */
#include "crypto_int.h"
#include "err.h"
#include "utc.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include <argon2.h>
#include <mbedtls/base64.h>
#include <mbedtls/platform_util.h>

#define HASH_B64_LEN 43                   /* unpadded base64 of 32 bytes */
#define SALT_B64_MIN 22                   /* unpadded base64 of 16 bytes */
#define SALT_B64_MAX 64

unsigned crypto_argon2_version(void)
{
    return (unsigned)ARGON2_VERSION_NUMBER;
}

static bool params_ok(const struct crypto_argon2 *p)
{
    return p->m_kib >= CRYPTO_ARGON2_M_MIN && p->m_kib <= CRYPTO_ARGON2_M_MAX &&
           p->t >= CRYPTO_ARGON2_T_MIN && p->t <= CRYPTO_ARGON2_T_MAX &&
           p->p >= CRYPTO_ARGON2_P_MIN && p->p <= CRYPTO_ARGON2_P_MAX;
}

int crypto_password_hash(const struct crypto_argon2 *params, const char *pw, size_t n,
                         const uint8_t salt[CRYPTO_SALT_LEN], char phc[CRYPTO_PHC_MAX])
{
    if (!params || !params_ok(params) || (!pw && n) || !salt)
        return ERR_INVALID;
    size_t need = argon2_encodedlen(params->t, params->m_kib, params->p, CRYPTO_SALT_LEN, CRYPTO_HASH_LEN,
                                    Argon2_id);        /* counts the NUL */
    if (need > CRYPTO_PHC_MAX)
        return ERR_CRYPTO;
    int rc = argon2_hash(params->t, params->m_kib, params->p, pw, n, salt, CRYPTO_SALT_LEN, NULL,
                         CRYPTO_HASH_LEN, phc, CRYPTO_PHC_MAX, Argon2_id, ARGON2_VERSION_13);
    if (rc != ARGON2_OK) {
        mbedtls_platform_zeroize(phc, CRYPTO_PHC_MAX);
        return ERR_CRYPTO;
    }
    return 0;
}

/* Unpadded base64 of raw[0..n), as the PHC format writes salt and hash. */
static int phc_b64(char *out, size_t cap, const uint8_t *raw, size_t n)
{
    size_t len = 0;
    if (mbedtls_base64_encode((unsigned char *)out, cap, &len, raw, n) != 0)
        return ERR_CRYPTO;
    while (len && out[len - 1] == '=')
        out[--len] = '\0';
    return 0;
}

int crypto_password_phc(const struct crypto_argon2 *params, const uint8_t salt[CRYPTO_SALT_LEN],
                        const uint8_t hash[CRYPTO_HASH_LEN], char phc[CRYPTO_PHC_MAX])
{
    if (!params_ok(params))
        return ERR_INVALID;
    char salt64[CRYPTO_SALT_LEN * 2], hash64[CRYPTO_HASH_LEN * 2];
    int rc = phc_b64(salt64, sizeof(salt64), salt, CRYPTO_SALT_LEN);
    rc = rc ? rc : phc_b64(hash64, sizeof(hash64), hash, CRYPTO_HASH_LEN);
    int n = rc ? -1 : snprintf(phc, CRYPTO_PHC_MAX, "$argon2id$v=19$m=%" PRIu32 ",t=%" PRIu32 ",p=%" PRIu32 "$%s$%s",
                               params->m_kib, params->t, params->p, salt64, hash64);
    if (n < 0 || (size_t)n >= CRYPTO_PHC_MAX)
        rc = rc ? rc : ERR_CRYPTO;
    return rc;
}

/* A decimal uint32 as the PHC format writes it: no sign, no leading zero. */
static bool parse_u32(const char **s, uint32_t *out)
{
    const char *p = *s;
    uint64_t v = 0;
    size_t n = 0;
    while (p[n] >= '0' && p[n] <= '9' && n < 11)
        v = v * 10 + (uint64_t)(p[n++] - '0');
    if (n == 0 || n > 10 || (n > 1 && p[0] == '0') || v > UINT32_MAX)
        return false;
    *out = (uint32_t)v;
    *s = p + n;
    return true;
}

static bool expect(const char **s, const char *lit)
{
    size_t n = strlen(lit);
    if (strncmp(*s, lit, n) != 0)
        return false;
    *s += n;
    return true;
}

static bool is_b64(char ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
           ch == '+' || ch == '/';
}

static size_t b64_run(const char **s)
{
    size_t n = 0;
    while (is_b64((*s)[n]))
        n++;
    *s += n;
    return n;
}

/* "m=M,t=T,p=P", the parameters' part of a PHC string. */
static bool params_parse(const char **s, struct crypto_argon2 *got)
{
    return expect(s, "m=") && parse_u32(s, &got->m_kib) && expect(s, ",t=") && parse_u32(s, &got->t) &&
           expect(s, ",p=") && parse_u32(s, &got->p);
}

int crypto_password_params(const char *text, struct crypto_argon2 *out)
{
    struct crypto_argon2 got = { 0, 0, 0 };
    const char *s = text;
    if (!text || !out || !params_parse(&s, &got) || *s != '\0')
        return ERR_INVALID;
    *out = got;
    return 0;
}

/* Accept exactly "$argon2id$v=19$m=M,t=T,p=P$SALT$HASH" with a 32-byte hash
 * and a salt of at least 16 bytes. libargon2 parses the string again when
 * it verifies; this stricter first pass is what refuses other types and
 * versions (libargon2 would take a missing v= as the old 1.0). */
static bool phc_parse(const char *phc, struct crypto_argon2 *got)
{
    const char *s = phc;
    if (!expect(&s, CRYPTO_PHC_PREFIX) || !params_parse(&s, got) || !expect(&s, "$"))
        return false;
    size_t salt = b64_run(&s);
    if (salt < SALT_B64_MIN || salt > SALT_B64_MAX || !expect(&s, "$"))
        return false;
    return b64_run(&s) == HASH_B64_LEN && *s == '\0';
}

int crypto_password_verify(const char *phc, const char *pw, size_t n,
                           const struct crypto_argon2 *params, bool *needs_rehash)
{
    struct crypto_argon2 got = { 0, 0, 0 };
    if (needs_rehash)
        *needs_rehash = false;
    if (!phc || !params || (!pw && n) || strnlen(phc, CRYPTO_PHC_MAX) == CRYPTO_PHC_MAX ||
        !phc_parse(phc, &got))
        return ERR_INVALID;
    /* Ceilings only: a hash made under weaker settings must still verify so
     * the user can log in and be rehashed. */
    if (got.m_kib > CRYPTO_ARGON2_M_MAX || got.t > CRYPTO_ARGON2_T_MAX ||
        got.p > CRYPTO_ARGON2_P_MAX)
        return ERR_INVALID;
    int rc = argon2id_verify(phc, pw, n);
    if (rc == ARGON2_MEMORY_ALLOCATION_ERROR)
        return ERR_NOMEM;
    if (rc != ARGON2_OK)
        return ERR_INVALID;
    if (needs_rehash)
        *needs_rehash = got.m_kib != params->m_kib || got.t != params->t || got.p != params->p;
    return 0;
}

int crypto_password_check_ms(const char *phc, uint64_t *ms)
{
    *ms = 0;
    if (!phc || strnlen(phc, CRYPTO_PHC_MAX) == CRYPTO_PHC_MAX)
        return ERR_INVALID;
    uint64_t t0 = utc_monotonic_ms();
    int rc = argon2id_verify(phc, "x", 1);
    *ms = utc_monotonic_ms() - t0;
    if (rc == ARGON2_MEMORY_ALLOCATION_ERROR)
        return ERR_NOMEM;
    return rc == ARGON2_VERIFY_MISMATCH ? 0 : ERR_CRYPTO;   /* anything else did not run the whole check */
}

/* argon2id runs ten nice steps below the server (nice 10 when it runs at
 * 0): on a small box a login storm must not take the CPU from the event
 * loop (every other client), yet still gets about a tenth of the loop's
 * weight when the loop is busy. Relative, not an absolute 10: a server
 * started at nice -19 would otherwise weigh ~650 times its password jobs,
 * and a busy loop starved every login. Once per pool thread, which
 * inherited the server's priority; the thread's other jobs (checkpoints,
 * audit syncs) are background work too. */
void crypto_password_background(void)
{
    static _Thread_local bool lowered;
    if (lowered)
        return;
    /* Linux: PRIO_PROCESS with 0 is the calling thread (nice is per thread);
     * seccomp allows no other target. -1 is a valid priority: errno tells. */
    errno = 0;
    int base = getpriority(PRIO_PROCESS, 0);
    if (errno != 0)
        return;
    int nicer = base > 9 ? 19 : base + 10;
    if (nicer == base || setpriority(PRIO_PROCESS, 0, nicer) == 0)
        lowered = true;
}

bool crypto_password_same_params(const char *phc, const struct crypto_argon2 *params)
{
    struct crypto_argon2 got = { 0, 0, 0 };
    return phc && params && strnlen(phc, CRYPTO_PHC_MAX) < CRYPTO_PHC_MAX && phc_parse(phc, &got) &&
           got.m_kib == params->m_kib && got.t == params->t && got.p == params->p;
}
