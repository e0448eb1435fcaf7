/*
 * Unit tests for config.c: the environment turned into one struct config.
 *
 * config_load() reads a NULL-terminated env array built here (never the real
 * environment). Keys are generated at run time from fixed seeds and
 * base64-encoded with mbedTLS, so no key-like literal appears in these files;
 * every refusal is checked to name the variable and never echo its value.
 * Files live under a mkdtemp() directory removed after each test.
 *
 * This file holds the suite's fixture and what the test_config_*.c files
 * share (config_support.h).
 */
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <fcntl.h>
#include <ftw.h>
#include <mbedtls/base64.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "config_support.h"

char *env[ENV_MAX + 1]; /* NULL-terminated */
static size_t env_n;

char tmpdir[64];
char cert_path[128], key_path[128];

uint8_t data_raw[32], token_raw[32], audit_raw[32];
char data_b64[B64_MAX], token_b64[B64_MAX], audit_b64[B64_MAX];

struct config cfg;
char err[CONFIG_ERR_MAX];

uint32_t xorshift(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

void key_bytes(uint8_t *out, size_t n, uint32_t seed)
{
    uint32_t s = seed * 2654435761u + 0x9e3779b9u;
    for (size_t i = 0; i < n; i++)
        out[i] = (uint8_t)(xorshift(&s) >> 24);
}

void b64(char *out, size_t cap, const uint8_t *in, size_t n)
{
    size_t olen = 0;
    cr_assert_eq(mbedtls_base64_encode((unsigned char *)out, cap, &olen, in, n), 0,
                 "base64 encoding of %zu bytes failed", n);
    cr_assert_eq(strlen(out), olen);
}

void gen_key(char *out, size_t cap, size_t n, uint32_t seed, uint8_t *raw)
{
    uint8_t tmp[700];
    cr_assert_leq(n, sizeof(tmp));
    key_bytes(tmp, n, seed);
    if (raw)
        memcpy(raw, tmp, n);
    b64(out, cap, tmp, n);
}

void env_unset(const char *name)
{
    size_t nl = strlen(name);
    for (size_t i = 0; i < env_n; i++) {
        if (strncmp(env[i], name, nl) == 0 && env[i][nl] == '=') {
            free(env[i]);
            memmove(&env[i], &env[i + 1], (env_n - i) * sizeof(env[0]));
            env_n--;
            return;
        }
    }
}

void env_add_raw(const char *entry)
{
    cr_assert_lt(env_n, ENV_MAX, "test env is full");
    env[env_n] = strdup(entry);
    cr_assert_not_null(env[env_n]);
    env[++env_n] = NULL;
}

void env_set(const char *name, const char *value)
{
    env_unset(name);
    size_t len = strlen(name) + 1 + strlen(value) + 1;
    char *s = malloc(len);
    cr_assert_not_null(s);
    snprintf(s, len, "%s=%s", name, value);
    cr_assert_lt(env_n, ENV_MAX, "test env is full");
    env[env_n] = s;
    env[++env_n] = NULL;
}

void tmp_path(char *out, size_t cap, const char *name)
{
    int n = snprintf(out, cap, "%s/%s", tmpdir, name);
    cr_assert(n > 0 && (size_t)n < cap);
}

void write_file(const char *path, const void *data, size_t len, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    cr_assert(fd >= 0, "cannot create %s", path);
    cr_assert_eq(fchmod(fd, mode), 0);
    const char *p = data;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        cr_assert(w > 0);
        p += w;
        len -= (size_t)w;
    }
    cr_assert_eq(close(fd), 0);
}

void write_str(const char *path, const char *s, mode_t mode)
{
    write_file(path, s, strlen(s), mode);
}

static void setup(void)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/notesd-test-config-XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir));
    tmp_path(cert_path, sizeof(cert_path), "cert.pem");
    tmp_path(key_path, sizeof(key_path), "key.pem");

    gen_key(data_b64, sizeof(data_b64), 32, 101, data_raw);
    gen_key(token_b64, sizeof(token_b64), 32, 202, token_raw);
    gen_key(audit_b64, sizeof(audit_b64), 32, 303, audit_raw);

    env_n = 0;
    env[0] = NULL;
    env_add_raw("PATH=/usr/bin:/bin");
    env_add_raw("HOME=/nonexistent");
    env_set("NOTES_TLS_CERT", cert_path);
    env_set("NOTES_TLS_KEY", key_path);
    env_set("NOTES_DATA_KEY", data_b64);
    env_set("NOTES_TOKEN_KEY", token_b64);
    env_set("NOTES_AUDIT_KEY", audit_b64);
    memset(&cfg, 0, sizeof(cfg));
    memset(err, 0, sizeof(err));
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void teardown(void)
{
    config_free(&cfg);
    for (size_t i = 0; i < env_n; i++)
        free(env[i]);
    env_n = 0;
    env[0] = NULL;
    if (tmpdir[0]) {
        /* Make sure a test-made unreadable entry cannot stop the removal. */
        nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        tmpdir[0] = 0;
    }
}

void setup_capture_stderr(void)
{
    cr_redirect_stderr();
}

void read_stderr(char *out, size_t cap)
{
    fflush(stderr);
    FILE *f = cr_get_redirected_stderr();
    size_t n = fread(out, 1, cap - 1, f);
    out[n] = 0;
}

TestSuite(config, .init = setup, .fini = teardown);

/* ---- load helpers and assertions -------------------------------------- */

int load_with(const struct config_override *ov, size_t n_ov, enum config_needs needs)
{
    config_free(&cfg); /* a previous successful load in the same test */
    memset(err, 'x', sizeof(err) - 1);
    err[sizeof(err) - 1] = 0;
    return config_load(&cfg, env, ov, n_ov, needs, err, sizeof(err));
}

int load(void)
{
    return load_with(NULL, 0, CONFIG_NEED_ALL);
}

void assert_loaded(int rc)
{
    cr_assert_eq(rc, 0, "config_load refused a valid configuration: rc %d, '%s'", rc, err);
}

void assert_no_leak(const char *text, const char *secret, size_t secret_len)
{
    if (secret_len == 0)
        return;
    size_t w = secret_len < LEAK_WINDOW ? secret_len : LEAK_WINDOW;
    size_t tl = strlen(text);
    for (size_t i = 0; i + w <= secret_len; i++)
        cr_assert_null(memmem(text, tl, secret + i, w),
                       "'%s' contains a piece of a secret value (offset %zu)", text, i);
}

void assert_no_leak_str(const char *text, const char *secret)
{
    assert_no_leak(text, secret, strlen(secret));
}

/* No value in the env of LEAK_WINDOW bytes or more appears in the error. */
static void assert_no_env_value_in_err(void)
{
    for (size_t i = 0; i < env_n; i++) {
        const char *eq = strchr(env[i], '=');
        if (eq && strlen(eq + 1) >= LEAK_WINDOW)
            assert_no_leak_str(err, eq + 1);
    }
}

bool all_zero(const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i])
            return false;
    return true;
}

static void assert_secret_wiped(const struct config_secret *s, const char *what)
{
    cr_assert_eq(s->len, 0, "%s: len %zu after wipe", what, s->len);
    cr_assert(all_zero(s->bytes, sizeof(s->bytes)), "%s: key bytes not wiped", what);
}

void assert_keys_wiped(void)
{
    assert_secret_wiped(&cfg.data_key, "data_key");
    assert_secret_wiped(&cfg.token_key, "token_key");
    assert_secret_wiped(&cfg.audit_key, "audit_key");
}

void assert_refused(int rc, const char *name, const char *what)
{
    cr_assert_eq(rc, ERR_CONFIG, "expected ERR_CONFIG for %s, got %d ('%s')", name, rc, err);
    size_t nl = strlen(name);
    cr_assert(strncmp(err, name, nl) == 0 && err[nl] == ':' && err[nl + 1] == ' ',
              "error '%s' should start with '%s: '", err, name);
    if (what)
        cr_assert_not_null(strstr(err, what), "error '%s' should mention '%s'", err, what);
    cr_assert_null(strchr(err, '\n'), "error '%s' is more than one line", err);
    cr_assert_gt(strlen(err), nl + 2, "error '%s' says nothing about the problem", err);
    assert_no_env_value_in_err();
    assert_keys_wiped();
    cr_assert_null(cfg.listen);
    cr_assert_null(cfg.db_path);
    cr_assert_null(cfg.tls_cert);
}

void assert_secret_is(const struct config_secret *s, const uint8_t *raw, size_t n)
{
    cr_assert_eq(s->len, n);
    cr_assert_eq(memcmp(s->bytes, raw, n), 0, "decoded key bytes differ");
}
