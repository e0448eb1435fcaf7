/*
 * config_secrets.c - the configuration's keys: where a secret's text comes
 * from, and whether it is good enough to be a key.
 *
 * A secret comes from NAME, NAME_FILE or $CREDENTIALS_DIRECTORY/NAME (exactly
 * one of them). It is refused when missing, not strict base64, too short,
 * obviously not random (one repeated value, mostly printable text, a
 * counter, too few distinct byte values), or the same key as one for
 * another purpose (compared as HMAC keys). Owns no state: keys are decoded
 * into the caller's struct config, and every scratch copy of a key's text
 * is wiped before it is freed. config.c's table decides which settings are
 * secrets. It must never put a key, or any byte of a secret file, in an
 * error line: errors name the variable and the problem.
 */
#include "config_int.h"
#include "err.h"
#include "file.h"

#include <mbedtls/base64.h>
#include <mbedtls/platform_util.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static bool is_b64_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '+' || c == '/';
}

/* ---- is it random? ------------------------------------------------------ */

/* Each test below refuses n (32..512) random bytes with the probability
 * its comment gives (exact sums, not estimates); all three together, below
 * 2^-43. What they catch are keys a person made: placeholders, counters,
 * passphrases. */

/* Fewer distinct byte values than half the key (a quarter plus 48 past 192
 * bytes). n random bytes hold about 256 * (1 - (255/256)^n) distinct values
 * (30 of 32, 221 of 512), and fewer than this floor with probability at
 * most 2^-54 (n = 32; less for longer keys). */
static size_t distinct_floor(size_t n)
{
    return n / 2 < n / 4 + 48 ? n / 2 : n / 4 + 48;
}

static size_t distinct_values(const uint8_t *k, size_t n)
{
    bool seen[256] = { false };
    size_t distinct = 0;
    for (size_t i = 0; i < n; i++) {
        distinct += !seen[k[i]];
        seen[k[i]] = true;
    }
    /* The table says which byte values the key holds. */
    mbedtls_platform_zeroize(seen, sizeof(seen));
    return distinct;
}

/* Text: a passphrase, words between tabs, a line with its newline. Each
 * random byte is one of these 98 values with p = 98/256. */
static bool is_text(uint8_t b)
{
    return (b >= 0x20 && b <= 0x7e) || b == '\t' || b == '\n' || b == '\r';
}

/* Mostly text: at most (n - 32) / 4 other bytes, so every byte of a key of
 * 32..35 bytes, and at least three quarters plus 8 of longer ones. By the
 * binomial tail (p = 98/256) random bytes are that much text with
 * probability at most 2^-43.99 (n = 36; 2^-44.3 for n = 32, 2^-210 for
 * n = 512). */
static bool mostly_text(const uint8_t *k, size_t n)
{
    size_t other = 0;
    for (size_t i = 0; i < n; i++)
        other += !is_text(k[i]);
    return other <= (n - 32) / 4;
}

/* A counter: nine bytes in a row that each step from the one before by the
 * same amount (mod 256), up or down. In random bytes each step equals the
 * one before with probability 1/256, independently, so 7 such equalities in
 * a row come with probability at most 2^-47.0 (n = 512; 2^-51.4 for 32). */
#define COUNTER_STEPS 7

static bool has_counter(const uint8_t *k, size_t n)
{
    size_t run = 0;
    for (size_t i = 2; i < n && run < COUNTER_STEPS; i++)
        run = (uint8_t)(k[i] - k[i - 1]) == (uint8_t)(k[i - 1] - k[i - 2]) ? run + 1 : 0;
    return run >= COUNTER_STEPS;
}

/* Why the n >= CONFIG_SECRET_MIN bytes `k` are not a random key, as the
 * error's text, or NULL. */
static const char *weakness(const uint8_t *k, size_t n, size_t distinct)
{
    if (distinct == 1)
        return "weak: every byte has the same value";
    if (mostly_text(k, n))
        return "weak: mostly printable text (a passphrase?), not random bytes";
    if (has_counter(k, n))
        return "weak: bytes in arithmetic progression (a counter?), not random bytes";
    if (distinct < distinct_floor(n))
        return "weak: too few distinct byte values to be random";
    return NULL;
}

/* Fewer distinct values than this were refused from the first release, so
 * no such key ever sealed a note: refused even as an older data key. */
#define DISTINCT_MIN_EVER 8

/* Strict standard base64 (RFC 4648 section 4) with padding; no whitespace.
 * `previous`: an older data key, kept only to read what it sealed. A weak
 * one that notesd once took is then warned about instead of refused, so a
 * deployment can move it there and rekey under a random key. */
static int decode_secret(struct config_secret *out, const char *name, const char *text,
                         size_t len, bool previous, char *err, size_t errlen)
{
    size_t pad = 0;
    while (pad < 2 && len > pad && text[len - 1 - pad] == '=')
        pad++;
    if (len == 0 || len % 4 != 0)
        return config_failf(err, errlen, name, "not valid base64 (use notesd gen-secrets)");
    for (size_t i = 0; i < len - pad; i++)
        if (!is_b64_char(text[i]))
            return config_failf(err, errlen, name, "not valid base64 (use notesd gen-secrets)");
    if (len / 4 * 3 - pad > CONFIG_SECRET_MAX)
        return config_failf(err, errlen, name, "too long: at most 512 bytes of key material");
    size_t olen = 0;
    if (mbedtls_base64_decode(out->bytes, sizeof(out->bytes), &olen,
                              (const unsigned char *)text, len) != 0)
        return config_failf(err, errlen, name, "not valid base64 (use notesd gen-secrets)");
    out->len = olen;
    if (olen < CONFIG_SECRET_MIN)
        return config_failf(err, errlen, name, "too short: need the base64 of at least 32 random bytes");
    size_t distinct = distinct_values(out->bytes, olen);
    const char *weak = weakness(out->bytes, olen, distinct);
    if (weak && (!previous || distinct < DISTINCT_MIN_EVER))
        return config_failf(err, errlen, name, weak);
    if (weak)
        log_warn("%s: %s: read old notes with it only, and run notesd rekey", name, weak);
    return 0;
}

static char *env_name_with(char *dst, size_t n, const char *name, const char *suffix)
{
    snprintf(dst, n, "%s%s", name, suffix);
    return dst;
}

/* The raw text of a secret from NAME, NAME_FILE or $CREDENTIALS_DIRECTORY/NAME
 * (exactly one of them) into `text`. Returns 1 when absent and `optional`. */
static int secret_text(const char *name, char *const *envp, bool optional, size_t max_file,
                       struct buf *text, char *err, size_t errlen)
{
    char file_var[96], why[256];
    const char *direct = config_env_get(envp, name);
    const char *file = config_env_get(envp, env_name_with(file_var, sizeof(file_var), name, "_FILE"));
    const char *cred_dir = config_env_get(envp, "CREDENTIALS_DIRECTORY");
    if (direct && !*direct)
        direct = NULL;  /* NAME= (empty) means unset, as in a shell */
    if (file && !*file)
        file = NULL;
    if (direct && file)
        return config_failf(err, errlen, name, "set either it or its _FILE variant, not both");

    char cred_path[4096];
    bool have_cred = false;
    if (cred_dir && *cred_dir) {
        snprintf(cred_path, sizeof(cred_path), "%s/%s", cred_dir, name);
        have_cred = access(cred_path, F_OK) == 0;
    }
    if ((direct || file) && have_cred)
        return config_failf(err, errlen, name, "given both as a variable and as a systemd credential; keep one");
    if (direct) {
        text->max = strlen(direct) + 1;
        return buf_append_str(text, direct) ? config_failf(err, errlen, name, "too long") : 0;
    }
    const char *path = file ? file : have_cred ? cred_path : NULL;
    const char *label = file ? file_var : name;
    if (!path && optional)
        return 1;
    if (!path)
        return config_failf(err, errlen, name,
                     "missing: set it, or name a file in its _FILE variant, or pass a systemd "
                     "credential (notesd gen-secrets makes keys)");
    int rc = file_read_all(path, max_file, true, text, why, sizeof(why));
    if (rc) {
        snprintf(err, errlen, "%s: %s", label, why);
        return ERR_CONFIG;
    }
    /* Editors add one final newline ("\n" or "\r\n"); nothing else is trimmed. */
    size_t len = text->len;
    if (len > 0 && text->data[len - 1] == '\n')
        len--;
    if (len > 0 && text->data[len - 1] == '\r' && len < text->len)
        len--;
    text->len = len;
    return 0;
}

int config_load_secret(struct config_secret *out, const char *name, char *const *envp,
                       char *err, size_t errlen)
{
    struct buf text;
    buf_init(&text, 0);
    int rc = secret_text(name, envp, false, 4096, &text, err, errlen);
    if (rc == 0)
        rc = decode_secret(out, name, (const char *)text.data, text.len, false, err, errlen);
    buf_cleanup_wipe(&text);
    return rc;
}

/* A comma-separated list of older keys, each held to the same rules. */
int config_load_secret_list(struct config *cfg, const char *name, char *const *envp,
                            char *err, size_t errlen)
{
    struct buf text;
    buf_init(&text, 0);
    int rc = secret_text(name, envp, true, 4096 * CONFIG_PREVIOUS_KEYS_MAX, &text, err, errlen);
    if (rc == 1) {
        buf_cleanup(&text);
        return 0;
    }
    if (rc) {
        buf_cleanup_wipe(&text);
        return rc;
    }
    const char *p = (const char *)text.data, *end = p + text.len;
    while (rc == 0 && p < end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *stop = comma ? comma : end;
        if (cfg->n_data_key_previous == CONFIG_PREVIOUS_KEYS_MAX)
            rc = config_failf(err, errlen, name, "at most 7 previous keys");
        else
            rc = decode_secret(&cfg->data_key_previous[cfg->n_data_key_previous++], name, p,
                               (size_t)(stop - p), true, err, errlen);
        p = stop + 1;
        if (rc == 0 && comma && p == end)
            rc = config_failf(err, errlen, name, "a comma ends the list: an empty key");
    }
    buf_cleanup_wipe(&text);
    return rc;
}

/* Equal as HMAC keys: one shorter than the hash's block (64 bytes for
 * SHA-256) is padded with zeros, so K and K followed by zero bytes are the
 * same key. Longer keys are hashed first: only equal bytes are equal. */
#define HMAC_BLOCK 64

static bool secret_eq(const struct config_secret *a, const struct config_secret *b)
{
    bool padded = a->len <= HMAC_BLOCK && b->len <= HMAC_BLOCK;
    if (!padded && a->len != b->len)
        return false;
    size_t n = a->len > b->len ? a->len : b->len;
    unsigned char diff = 0;
    for (size_t i = 0; i < n; i++)
        diff |= (unsigned char)((i < a->len ? a->bytes[i] : 0) ^ (i < b->len ? b->bytes[i] : 0));
    return diff == 0;
}

int config_check_distinct_secrets(const struct config *cfg, char *err, size_t errlen)
{
    if (secret_eq(&cfg->token_key, &cfg->data_key))
        return config_failf(err, errlen, "NOTES_TOKEN_KEY", "same key as NOTES_DATA_KEY; each purpose needs its own key");
    if (secret_eq(&cfg->audit_key, &cfg->data_key))
        return config_failf(err, errlen, "NOTES_AUDIT_KEY", "same key as NOTES_DATA_KEY; each purpose needs its own key");
    if (secret_eq(&cfg->audit_key, &cfg->token_key))
        return config_failf(err, errlen, "NOTES_AUDIT_KEY", "same key as NOTES_TOKEN_KEY; each purpose needs its own key");
    for (size_t i = 0; i < cfg->n_data_key_previous; i++) {
        const struct config_secret *k = &cfg->data_key_previous[i];
        if (secret_eq(k, &cfg->token_key) || secret_eq(k, &cfg->audit_key))
            return config_failf(err, errlen, "NOTES_DATA_KEY_PREVIOUS", "a previous data key equals the token or audit key");
    }
    return 0;
}
