/*
 * fuzz_config.c - libFuzzer target for the configuration parser and the
 * small token-shaped validators.
 *
 * The input is split at '\n' into at most MAX_LINES lines. A line starting
 * with '-' becomes a command-line override ("-NAME=value"); every other line
 * is an environment string ("NAME=value", or anything else: config.c must
 * cope with entries without '='). The environment and overrides go to
 * config_load() with CONFIG_NEED_NO_TLS (what the user-management CLI asks)
 * and, when that succeeds, again with CONFIG_NEED_ALL; then config_free().
 *
 * Files: config_secrets.c reads secrets from NAME_FILE paths and from
 * $CREDENTIALS_DIRECTORY. A fuzzer must not open arbitrary paths (a FIFO
 * would block, /proc is large), so those values are taken as the name of a
 * fixture in a private directory made at start-up (good keys, a key ending in
 * CRLF, a world-readable key, an oversized file, an empty file, a
 * directory, a list of previous keys, a credentials directory); any other
 * value becomes a path that does not exist. fuzz/config.dict lists the names.
 *
 * The target aborts when:
 *  - config_load() returns anything but 0 or ERR_CONFIG, or fails without an
 *    error line;
 *  - an error line quotes a value it was given (config.h: "naming the
 *    variable ... never its value"), checked in the problem part of the
 *    line for values of 20 bytes or more of variables config.c reads, and
 *    anywhere for the fixture secrets;
 *  - an accepted configuration breaks an invariant config.c promises: every
 *    secret 32..512 bytes, three distinct secrets, at most 7 previous keys,
 *    argon2 parameters within the CRYPTO_ARGON2_* bounds, a field limit no
 *    larger than the header block, the body-idle timeout within the body
 *    timeout.
 * Each line is also given, as a slice, to validate_cursor, validate_bearer,
 * validate_limit and validate_id, whose successes must round-trip.
 *
 * Warnings about unknown NOTES_* names go to the operational log; the level
 * is raised to errors so a long run does not write gigabytes to stderr
 * (NOTESD_FUZZ_LOG=1 keeps them).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mbedtls/base64.h>

#include "config.h"
#include "crypto.h"
#include "err.h"
#include "log.h"
#include "validate.h"

#define MAX_LINES 64
#define MAX_OVERRIDES 8
#define QUOTE_MIN 20     /* values at least this long must never appear in an error */

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char fixture_dir[512];

/* base64 of 32 random bytes each, made at start-up: no key is committed,
 * not even a test's. Errors are checked for quoting any of them. */
#define N_KEYS 5
static char fixture_keys[N_KEYS][48];

/* Names a _FILE value or CREDENTIALS_DIRECTORY may take (config.dict). */
static const char *const fixture_names[] = {
    "key0", "key1", "key2", "key3", "key4", "crlf", "public", "big", "empty", "dir", "list", "cred",
};
#define N_FIXTURES (sizeof(fixture_names) / sizeof(fixture_names[0]))

static void check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_config: invariant broken: %s\n", what);
        abort();
    }
}

static void put_file(const char *name, const char *text, size_t len, mode_t mode)
{
    char path[640];
    snprintf(path, sizeof(path), "%s/%s", fixture_dir, name);
    FILE *f = fopen(path, "wb");
    check(f && fwrite(text, 1, len, f) == len && fclose(f) == 0, "cannot write a fixture");
    check(chmod(path, mode) == 0, "cannot chmod a fixture");
}

static void remove_fixtures(void)
{
    char cmd[600];
    if (fixture_dir[0]) {
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fixture_dir);
        if (system(cmd) != 0)
            fprintf(stderr, "fuzz_config: could not remove %s\n", fixture_dir);
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (!getenv("NOTESD_FUZZ_LOG"))
        log_set_level(LOG_ERROR);
    /* Under $TMPDIR: fuzz/smoke.sh points it into its own work folder, so
     * a run that stops on a finding (no atexit) leaves nothing behind. */
    const char *tmp = getenv("TMPDIR");
    int len = snprintf(fixture_dir, sizeof(fixture_dir), "%s/notesd-fuzz-config-XXXXXX",
                       tmp && *tmp ? tmp : "/tmp");
    check(len > 0 && (size_t)len < sizeof(fixture_dir) - 64, "TMPDIR is too long");
    check(mkdtemp(fixture_dir) != NULL, "mkdtemp");
    atexit(remove_fixtures);
    for (size_t i = 0; i < N_KEYS; i++) {
        uint8_t raw[32];
        size_t olen = 0;
        check(getrandom(raw, sizeof(raw), 0) == (ssize_t)sizeof(raw), "getrandom");
        check(mbedtls_base64_encode((unsigned char *)fixture_keys[i], sizeof(fixture_keys[i]), &olen, raw,
                                    sizeof(raw)) == 0, "base64 of a fixture key");
    }
    char text[1024];
    for (size_t i = 0; i < N_KEYS; i++) {
        char name[8];
        snprintf(name, sizeof(name), "key%zu", i);
        int n = snprintf(text, sizeof(text), "%s\n", fixture_keys[i]);
        put_file(name, text, (size_t)n, 0600);
    }
    int n = snprintf(text, sizeof(text), "%s\r\n", fixture_keys[0]);
    put_file("crlf", text, (size_t)n, 0600);
    n = snprintf(text, sizeof(text), "%s\n", fixture_keys[1]);
    put_file("public", text, (size_t)n, 0644);   /* refused: readable by others */
    n = snprintf(text, sizeof(text), "%s,%s\n", fixture_keys[3], fixture_keys[4]);
    put_file("list", text, (size_t)n, 0600);
    put_file("empty", "", 0, 0600);
    static char big[64 * 1024];
    memset(big, 'A', sizeof(big));
    put_file("big", big, sizeof(big), 0600);      /* past every secret's file limit */
    char path[640];
    snprintf(path, sizeof(path), "%s/dir", fixture_dir);
    check(mkdir(path, 0700) == 0, "mkdir dir");
    snprintf(path, sizeof(path), "%s/cred", fixture_dir);
    check(mkdir(path, 0700) == 0, "mkdir cred");
    static const char *const cred[] = { "NOTES_DATA_KEY", "NOTES_TOKEN_KEY", "NOTES_AUDIT_KEY" };
    for (size_t i = 0; i < 3; i++) {
        snprintf(path, sizeof(path), "cred/%s", cred[i]);
        n = snprintf(text, sizeof(text), "%s\n", fixture_keys[i]);
        put_file(path, text, (size_t)n, 0600);
    }
    return 0;
}

/* A _FILE value or CREDENTIALS_DIRECTORY, mapped into the fixture directory. */
static bool is_path_setting(const char *line, size_t name_len)
{
    return (name_len > 5 && memcmp(line + name_len - 5, "_FILE", 5) == 0) ||
           (name_len == 21 && memcmp(line, "CREDENTIALS_DIRECTORY", 21) == 0);
}

static char *make_entry(const char *line)
{
    const char *eq = strchr(line, '=');
    if (!eq || !is_path_setting(line, (size_t)(eq - line)))
        return strdup(line);
    const char *v = eq + 1, *fixture = "missing";
    for (size_t i = 0; i < N_FIXTURES; i++)
        if (strcmp(v, fixture_names[i]) == 0)
            fixture = fixture_names[i];
    size_t len = (size_t)(eq - line) + 1 + strlen(fixture_dir) + 1 + strlen(fixture) + 1;
    char *e = malloc(len);
    if (e)
        snprintf(e, len, "%.*s=%s/%s", (int)(eq - line), line, fixture_dir, fixture);
    return e;
}

/* A variable config.c reads: a setting, a secret's NAME_FILE, or
 * CREDENTIALS_DIRECTORY. Other entries are never read, only warned about. */
static bool is_read(const char *entry, size_t name_len)
{
    char name[128];
    if (name_len >= sizeof(name))
        return false;
    memcpy(name, entry, name_len);
    name[name_len] = 0;
    return config_is_known(name) || is_path_setting(name, name_len);
}

/* config.h: an error line names the variable and the problem, never the
 * value. Only the problem part (after "NAME: ") is searched: a value may
 * well be a piece of a setting name. */
static void check_no_values(const char *err, char *const *env, const struct config_override *ov, size_t n_ov)
{
    const char *problem = strstr(err, ": ");
    problem = problem ? problem + 2 : err;
    for (char *const *e = env; *e; e++) {
        const char *eq = strchr(*e, '=');
        if (eq && is_read(*e, (size_t)(eq - *e)) && strlen(eq + 1) >= QUOTE_MIN)
            check(strstr(problem, eq + 1) == NULL, "an error line quotes an environment value");
    }
    for (size_t i = 0; i < n_ov; i++)
        if (strlen(ov[i].value) >= QUOTE_MIN)
            check(strstr(problem, ov[i].value) == NULL, "an error line quotes an override value");
    for (size_t i = 0; i < N_KEYS; i++)
        check(strstr(err, fixture_keys[i]) == NULL, "an error line quotes a secret read from a file");
}

static bool secret_ok(const struct config_secret *s)
{
    return s->len >= CONFIG_SECRET_MIN && s->len <= CONFIG_SECRET_MAX;
}

static bool same(const struct config_secret *a, const struct config_secret *b)
{
    return a->len == b->len && memcmp(a->bytes, b->bytes, a->len) == 0;
}

static void check_config(const struct config *c)
{
    check(secret_ok(&c->data_key) && secret_ok(&c->token_key) && secret_ok(&c->audit_key),
          "an accepted secret has a bad length");
    check(!same(&c->data_key, &c->token_key) && !same(&c->data_key, &c->audit_key) &&
              !same(&c->token_key, &c->audit_key),
          "two purposes share one secret");
    check(c->n_data_key_previous <= CONFIG_PREVIOUS_KEYS_MAX, "too many previous keys");
    for (size_t i = 0; i < c->n_data_key_previous; i++)
        check(secret_ok(&c->data_key_previous[i]), "an accepted previous key has a bad length");
    check(c->argon2_m_kib >= CRYPTO_ARGON2_M_MIN && c->argon2_m_kib <= CRYPTO_ARGON2_M_MAX &&
              c->argon2_t >= CRYPTO_ARGON2_T_MIN && c->argon2_t <= CRYPTO_ARGON2_T_MAX &&
              c->argon2_p >= CRYPTO_ARGON2_P_MIN && c->argon2_p <= CRYPTO_ARGON2_P_MAX,
          "argon2 parameters outside the bounds");
    check(c->max_field <= c->max_header_block, "max_field above the header block");
    check(c->timeout_body_idle_s <= c->timeout_body_s, "body idle timeout above the body timeout");
    check(c->listen != NULL, "no listen address");
}

static void load(char *const *env, const struct config_override *ov, size_t n_ov)
{
    struct config cfg;
    char err[CONFIG_ERR_MAX];
    int rc = config_load(&cfg, env, ov, n_ov, CONFIG_NEED_NO_TLS, err, sizeof(err));
    if (rc != 0) {
        check(rc == ERR_CONFIG, "config_load returned something other than ERR_CONFIG");
        check(err[0] != 0, "config_load failed without an error line");
        check_no_values(err, env, ov, n_ov);
        return;
    }
    check_config(&cfg);
    config_free(&cfg);
    rc = config_load(&cfg, env, ov, n_ov, CONFIG_NEED_ALL, err, sizeof(err));
    if (rc == 0) {
        check(cfg.tls_cert && cfg.tls_key, "CONFIG_NEED_ALL accepted without TLS files");
        config_free(&cfg);
    } else {
        check(rc == ERR_CONFIG && err[0] != 0, "config_load (all) failed without an error line");
        check_no_values(err, env, ov, n_ov);
    }
}

static void validators(struct slice s)
{
    int64_t v = 0;
    char cursor[VALIDATE_CURSOR_LEN + 1];
    if (validate_cursor(s, &v, NULL) == 0) {
        validate_cursor_encode(v, cursor);
        check(v >= 1 && s.len == VALIDATE_CURSOR_LEN && memcmp(cursor, s.p, s.len) == 0,
              "an accepted cursor does not re-encode to itself");
    }
    char token[VALIDATE_TOKEN_LEN + 1];
    if (validate_bearer(s, token) == 0)
        check(s.len == 7 + VALIDATE_TOKEN_LEN && memcmp(s.p, "Bearer ", 7) == 0 &&
                  memcmp(s.p + 7, token, VALIDATE_TOKEN_LEN) == 0 && token[VALIDATE_TOKEN_LEN] == 0,
              "an accepted bearer header is not 'Bearer ' + the token");
    else
        check(token[0] == 0, "a refused bearer header left a token behind");
    int limit = 0;
    if (validate_limit(s, &limit, NULL) == 0) {
        char again[8];
        int n = snprintf(again, sizeof(again), "%d", limit);
        check(limit >= 1 && limit <= VALIDATE_LIMIT_MAX && (size_t)n == s.len && memcmp(again, s.p, s.len) == 0,
              "an accepted limit is not its own decimal 1..100");
    }
    if (validate_id(s, &v) == 0) {
        char again[24];
        int n = snprintf(again, sizeof(again), "%lld", (long long)v);
        check(v >= 1 && (size_t)n == s.len && memcmp(again, s.p, s.len) == 0,
              "an accepted id is not its own decimal");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *env[MAX_LINES + 1];
    char *raw[MAX_LINES];
    struct config_override ov[MAX_OVERRIDES];
    size_t n_env = 0, n_raw = 0, n_ov = 0;

    const uint8_t *p = data, *end = data + size;
    while (p <= end && n_raw < MAX_LINES) {
        const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
        const uint8_t *stop = nl ? nl : end;
        struct slice line = { p, (size_t)(stop - p) };
        validators(line);
        /* As a C string: an embedded NUL ends it, as the kernel's would. */
        char *s = strndup((const char *)line.p, line.len);
        if (!s)
            break;
        raw[n_raw++] = s;
        if (s[0] == '-') {
            char *eq = strchr(s, '=');
            if (eq && n_ov < MAX_OVERRIDES) {
                *eq = 0;
                ov[n_ov++] = (struct config_override){ s + 1, eq + 1 };
            }
        } else if (s[0]) {
            char *e = make_entry(s);
            if (e)
                env[n_env++] = e;
        }
        if (!nl)
            break;
        p = nl + 1;
    }
    env[n_env] = NULL;

    load(env, ov, n_ov);

    for (size_t i = 0; i < n_env; i++)
        free(env[i]);
    for (size_t i = 0; i < n_raw; i++)
        free(raw[i]);
    return 0;
}
