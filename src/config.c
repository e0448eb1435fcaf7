/*
 * config.c - the environment, parsed and validated into one struct config.
 *
 * The only module that reads the environment. A table lists every setting
 * with its parser and default; unknown NOTES_* names are reported so a typo
 * never silently falls back to a default. Secrets come from NAME, NAME_FILE
 * or $CREDENTIALS_DIRECTORY/NAME (exactly one of them) and are refused when
 * missing, not base64, too short, obviously not random, or shared between two
 * purposes. Error lines name the variable and the problem, never the value.
 */
#include "config.h"
#include "err.h"
#include "file.h"

#include <arpa/inet.h>
#include <mbedtls/base64.h>
#include <mbedtls/platform_util.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum kind { K_STRING, K_LISTEN, K_REDIRECT, K_SECRET, K_SECRET_LIST, K_LOG_LEVEL, K_SECONDS, K_UINT, K_OPEN_CLOSED,
            K_ON_OFF, K_AUDIT_SYNC, K_AUDIT_IP, K_LOG_FORMAT };

struct setting {
    const char *name;
    enum kind kind;
    const char *def;        /* NULL: required */
    size_t offset;          /* into struct config */
    enum config_needs skip; /* not needed when this bit is set */
    uint32_t min, max;      /* bounds for K_UINT and K_SECONDS (seconds) */
};

#define OFF(f) offsetof(struct config, f)

static const struct setting settings[] = {
    { "NOTES_LISTEN", K_LISTEN, "127.0.0.1:8443", OFF(listen), 0, 0, 0 },
    { "NOTES_DB", K_STRING, "./data/notes.db", OFF(db_path), 0, 0, 0 },
    { "NOTES_AUDIT_DIR", K_STRING, "./data/audit", OFF(audit_dir), 0, 0, 0 },
    { "NOTES_TLS_CERT", K_STRING, NULL, OFF(tls_cert), CONFIG_NEED_NO_TLS, 0, 0 },
    { "NOTES_TLS_KEY", K_STRING, NULL, OFF(tls_key), CONFIG_NEED_NO_TLS, 0, 0 },
    { "NOTES_DATA_KEY", K_SECRET, NULL, OFF(data_key), 0, 0, 0 },
    { "NOTES_TOKEN_KEY", K_SECRET, NULL, OFF(token_key), 0, 0, 0 },
    { "NOTES_AUDIT_KEY", K_SECRET, NULL, OFF(audit_key), 0, 0, 0 },
    { "NOTES_DATA_KEY_PREVIOUS", K_SECRET_LIST, "", OFF(data_key_previous), 0, 0, 0 },
    { "NOTES_LOG_LEVEL", K_LOG_LEVEL, "info", OFF(log_level), 0, 0, 0 },
    { "NOTES_SHUTDOWN_GRACE", K_SECONDS, "5", OFF(shutdown_grace_ms), 0, 0, 86400 },
    { "NOTES_REGISTRATION", K_OPEN_CLOSED, "closed", OFF(registration_open), 0, 0, 0 },
    /* OWASP Password Storage Cheat Sheet minimum: m=19 MiB, t=2, p=1. */
    { "NOTES_ARGON2_MEMORY_KIB", K_UINT, "19456", OFF(argon2_m_kib), 0, 19456, 4194304 },
    { "NOTES_ARGON2_TIME", K_UINT, "2", OFF(argon2_t), 0, 2, 100 },
    { "NOTES_ARGON2_PARALLELISM", K_UINT, "1", OFF(argon2_p), 0, 1, 16 },
    { "NOTES_TOKEN_IDLE", K_UINT, "1800", OFF(token_idle_s), 0, 60, 86400 },
    { "NOTES_TOKEN_LIFETIME", K_UINT, "43200", OFF(token_lifetime_s), 0, 300, 2592000 },
    /* The edge (see the README): sizes in bytes, times in seconds. */
    { "NOTES_MAX_TARGET", K_UINT, "8192", OFF(max_target), 0, 64, 65536 },
    { "NOTES_MAX_FIELD", K_UINT, "8192", OFF(max_field), 0, 64, 65536 },
    { "NOTES_MAX_HEADERS_SIZE", K_UINT, "32768", OFF(max_header_block), 0, 256, 262144 },
    { "NOTES_MAX_HEADERS", K_UINT, "100", OFF(max_fields), 0, 4, 256 },
    /* 256 KiB: the largest valid note (64 KiB of content) JSON-escaped. */
    { "NOTES_MAX_BODY", K_UINT, "262144", OFF(max_body), 0, 1024, 16777216 },
    { "NOTES_TIMEOUT_HANDSHAKE", K_UINT, "10", OFF(timeout_handshake_s), 0, 1, 3600 },
    { "NOTES_TIMEOUT_HEADER", K_UINT, "10", OFF(timeout_header_s), 0, 1, 3600 },
    { "NOTES_TIMEOUT_BODY_IDLE", K_UINT, "10", OFF(timeout_body_idle_s), 0, 1, 3600 },
    { "NOTES_TIMEOUT_BODY", K_UINT, "30", OFF(timeout_body_s), 0, 1, 3600 },
    { "NOTES_TIMEOUT_KEEPALIVE", K_UINT, "15", OFF(timeout_keepalive_s), 0, 1, 3600 },
    { "NOTES_TIMEOUT_SEND", K_UINT, "30", OFF(timeout_send_s), 0, 1, 3600 },
    { "NOTES_MAX_CONNECTIONS", K_UINT, "4096", OFF(max_connections), 0, 1, 1000000 },
    { "NOTES_MAX_CONNECTIONS_PER_IP", K_UINT, "64", OFF(max_connections_per_ip), 0, 1, 1000000 },
    { "NOTES_MAX_OUTPUT_MIB", K_UINT, "128", OFF(max_output_mib), 0, 1, 65536 },
    { "NOTES_REDIRECT_LISTEN", K_REDIRECT, "", OFF(redirect_listen), 0, 0, 0 },
    /* Abuse limits (0 disables one limit explicitly). */
    { "NOTES_RATE_LIMITS", K_ON_OFF, "on", OFF(rate_limits_on), 0, 0, 0 },
    { "NOTES_RATE_IP", K_UINT, "20", OFF(rate_ip_per_s), 0, 0, 1000000 },
    { "NOTES_RATE_IP_BURST", K_UINT, "40", OFF(rate_ip_burst), 0, 1, 1000000 },
    { "NOTES_RATE_AUTH_PER_MIN", K_UINT, "5", OFF(rate_auth_per_min), 0, 0, 1000000 },
    { "NOTES_RATE_AUTH_BURST", K_UINT, "5", OFF(rate_auth_burst), 0, 1, 1000000 },
    { "NOTES_RATE_WRITES", K_UINT, "10", OFF(rate_writes_per_s), 0, 0, 1000000 },
    { "NOTES_RATE_WRITES_BURST", K_UINT, "20", OFF(rate_writes_burst), 0, 1, 1000000 },
    { "NOTES_RATE_TABLE_SIZE", K_UINT, "16384", OFF(rate_table_size), 0, 64, 4194304 },
    /* The audit trail: bytes per file, files kept, days a rotated file lives. */
    { "NOTES_AUDIT_MAX_BYTES", K_UINT, "10485760", OFF(audit_max_bytes), 0, 4096, 1073741824 },
    { "NOTES_AUDIT_MAX_FILES", K_UINT, "10", OFF(audit_max_files), 0, 1, 10000 },
    { "NOTES_AUDIT_RETENTION_DAYS", K_UINT, "90", OFF(audit_retention_days), 0, 1, 36500 },
    { "NOTES_AUDIT_SYNC", K_AUDIT_SYNC, "batch", OFF(audit_sync), 0, 0, 0 },
    { "NOTES_AUDIT_IP", K_AUDIT_IP, "full", OFF(audit_ip), 0, 0, 0 },
    /* Least privilege (sandbox.c). NOTES_USER empty: notesd, else nobody. */
    { "NOTES_USER", K_STRING, "", OFF(run_user), 0, 0, 0 },
    { "NOTES_SECCOMP", K_ON_OFF, "on", OFF(seccomp_on), 0, 0, 0 },
    { "NOTES_LANDLOCK", K_ON_OFF, "on", OFF(landlock_on), 0, 0, 0 },
    { "NOTES_LOG_FORMAT", K_LOG_FORMAT, "json", OFF(log_format), 0, 0, 0 },
};

#define N_SETTINGS (sizeof(settings) / sizeof(settings[0]))

/* Lookups in envp are by exact name; the environment is small. */
static const char *env_get(char *const *envp, const char *name)
{
    size_t n = strlen(name);
    for (char *const *e = envp; e && *e; e++)
        if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
            return *e + n + 1;
    return NULL;
}

static const struct setting *find_setting(const char *name, size_t len)
{
    for (size_t i = 0; i < N_SETTINGS; i++)
        if (strlen(settings[i].name) == len && memcmp(settings[i].name, name, len) == 0)
            return &settings[i];
    return NULL;
}

int config_is_known(const char *name)
{
    return find_setting(name, strlen(name)) != NULL;
}

static int failf(char *err, size_t errlen, const char *name, const char *what)
{
    snprintf(err, errlen, "%s: %s", name, what);
    return ERR_CONFIG;
}

static void warn_unknown(char *const *envp)
{
    for (char *const *e = envp; e && *e; e++) {
        if (strncmp(*e, "NOTES_", 6) != 0)
            continue;
        const char *eq = strchr(*e, '=');
        size_t len = eq ? (size_t)(eq - *e) : strlen(*e);
        if (find_setting(*e, len))
            continue;
        /* NAME_FILE is known exactly when NAME is a secret. */
        if (len > 5 && memcmp(*e + len - 5, "_FILE", 5) == 0) {
            const struct setting *s = find_setting(*e, len - 5);
            if (s && (s->kind == K_SECRET || s->kind == K_SECRET_LIST))
                continue;
        }
        log_warn("unknown setting %.*s ignored (a typo? see notesd --help)", (int)len, *e);
    }
}

static int parse_address(const char *name, const char *v, char host_out[64], uint16_t *port_out,
                         char **str_out, char *err, size_t errlen)
{
    const char *host = v, *colon;
    size_t host_len;
    if (v[0] == '[') {
        const char *close = strchr(v, ']');
        if (!close || close[1] != ':')
            return failf(err, errlen, name, "expected [IPv6]:PORT");
        host = v + 1;
        host_len = (size_t)(close - host);
        colon = close + 1;
    } else {
        colon = strrchr(v, ':');
        if (!colon)
            return failf(err, errlen, name, "expected ADDRESS:PORT");
        host_len = (size_t)(colon - v);
    }
    if (host_len == 0 || host_len >= 64)
        return failf(err, errlen, name, "the address is missing or too long");
    memcpy(host_out, host, host_len);
    host_out[host_len] = 0;
    /* IPv6 only in brackets, IPv4 only without: "2001:db8::1:443" must not
     * quietly become [2001:db8::1]:443. */
    unsigned char addr[16];
    if (inet_pton(v[0] == '[' ? AF_INET6 : AF_INET, host_out, addr) != 1)
        return failf(err, errlen, name, "the address must be numeric: IPv4:PORT or [IPv6]:PORT");
    const char *p = colon + 1;
    unsigned long port = 0;
    if (*p == 0 || strlen(p) > 5)
        return failf(err, errlen, name, "the port must be a number from 0 to 65535");
    for (; *p; p++) {
        if (*p < '0' || *p > '9')
            return failf(err, errlen, name, "the port must be a number from 0 to 65535");
        port = port * 10 + (unsigned long)(*p - '0');
    }
    if (port > 65535)
        return failf(err, errlen, name, "the port must be a number from 0 to 65535");
    *port_out = (uint16_t)port;
    *str_out = strdup(v);
    return *str_out ? 0 : ERR_NOMEM;
}

static int parse_log_level(enum log_level *out, const char *name, const char *v, char *err, size_t errlen)
{
    static const struct { const char *s; enum log_level l; } levels[] = {
        { "debug", LOG_DEBUG }, { "info", LOG_INFO }, { "warning", LOG_WARN }, { "error", LOG_ERROR },
    };
    for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++)
        if (strcmp(v, levels[i].s) == 0) {
            *out = levels[i].l;
            return 0;
        }
    return failf(err, errlen, name, "must be one of debug, info, warning, error");
}

static int parse_log_format(enum log_format *out, const char *name, const char *v, char *err, size_t errlen)
{
    if (strcmp(v, "json") != 0 && strcmp(v, "text") != 0)
        return failf(err, errlen, name, "must be json or text");
    *out = strcmp(v, "json") == 0 ? LOG_FORMAT_JSON : LOG_FORMAT_TEXT;
    return 0;
}

static int parse_seconds(unsigned *out_ms, const char *name, const char *v, char *err, size_t errlen)
{
    unsigned long s = 0;
    if (*v == 0 || strlen(v) > 5)
        return failf(err, errlen, name, "must be a whole number of seconds from 0 to 86400");
    for (const char *p = v; *p; p++) {
        if (*p < '0' || *p > '9')
            return failf(err, errlen, name, "must be a whole number of seconds from 0 to 86400");
        s = s * 10 + (unsigned long)(*p - '0');
    }
    if (s > 86400)
        return failf(err, errlen, name, "must be a whole number of seconds from 0 to 86400");
    *out_ms = (unsigned)(s * 1000);
    return 0;
}

static int parse_uint(uint32_t *out, const struct setting *s, const char *v, char *err, size_t errlen)
{
    char why[96];
    snprintf(why, sizeof(why), "must be a whole number from %u to %u", (unsigned)s->min, (unsigned)s->max);
    unsigned long long x = 0;
    if (*v == 0 || strlen(v) > 10 || (v[0] == '0' && v[1] != 0))
        return failf(err, errlen, s->name, why);
    for (const char *p = v; *p; p++) {
        if (*p < '0' || *p > '9')
            return failf(err, errlen, s->name, why);
        x = x * 10 + (unsigned long long)(*p - '0');
    }
    if (x < s->min || x > s->max)
        return failf(err, errlen, s->name, why);
    *out = (uint32_t)x;
    return 0;
}

static int parse_on_off(bool *out, const char *name, const char *v, char *err, size_t errlen)
{
    if (strcmp(v, "on") == 0 || strcmp(v, "off") == 0) {
        *out = strcmp(v, "on") == 0;
        return 0;
    }
    return failf(err, errlen, name, "must be on or off");
}

static int parse_open_closed(bool *out, const char *name, const char *v, char *err, size_t errlen)
{
    if (strcmp(v, "open") == 0 || strcmp(v, "closed") == 0) {
        *out = strcmp(v, "open") == 0;
        return 0;
    }
    return failf(err, errlen, name, "must be open or closed");
}

/* The index of `v` in `names`, or -1. */
static int choice(const char *v, const char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v, names[i]) == 0)
            return (int)i;
    return -1;
}

static int parse_audit_sync(enum config_audit_sync *out, const char *name, const char *v, char *err,
                            size_t errlen)
{
    static const char *const names[] = { "batch", "always", "off" };
    static const enum config_audit_sync modes[] = { CONFIG_AUDIT_SYNC_BATCH, CONFIG_AUDIT_SYNC_ALWAYS,
                                                    CONFIG_AUDIT_SYNC_OFF };
    int i = choice(v, names, 3);
    if (i < 0)
        return failf(err, errlen, name, "must be always, batch or off");
    *out = modes[i];
    return 0;
}

static int parse_audit_ip(enum config_audit_ip *out, const char *name, const char *v, char *err, size_t errlen)
{
    static const char *const names[] = { "full", "truncated", "none" };
    static const enum config_audit_ip modes[] = { CONFIG_AUDIT_IP_FULL, CONFIG_AUDIT_IP_TRUNCATED,
                                                  CONFIG_AUDIT_IP_NONE };
    int i = choice(v, names, 3);
    if (i < 0)
        return failf(err, errlen, name, "must be full, truncated or none");
    *out = modes[i];
    return 0;
}

static bool is_b64_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '+' || c == '/';
}

/* Strict standard base64 (RFC 4648 section 4) with padding; no whitespace. */
/* `previous`: an older data key, kept only to read what it sealed. A
 * passphrase is then warned about instead of refused, so a deployment can
 * move it there and rekey under a random key. */
static int decode_secret(struct config_secret *out, const char *name, const char *text,
                         size_t len, bool previous, char *err, size_t errlen)
{
    size_t pad = 0;
    while (pad < 2 && len > pad && text[len - 1 - pad] == '=')
        pad++;
    if (len == 0 || len % 4 != 0)
        return failf(err, errlen, name, "not valid base64 (use notesd gen-secrets)");
    for (size_t i = 0; i < len - pad; i++)
        if (!is_b64_char(text[i]))
            return failf(err, errlen, name, "not valid base64 (use notesd gen-secrets)");
    if (len / 4 * 3 - pad > CONFIG_SECRET_MAX)
        return failf(err, errlen, name, "too long: at most 512 bytes of key material");
    size_t olen = 0;
    if (mbedtls_base64_decode(out->bytes, sizeof(out->bytes), &olen,
                              (const unsigned char *)text, len) != 0)
        return failf(err, errlen, name, "not valid base64 (use notesd gen-secrets)");
    out->len = olen;
    if (olen < CONFIG_SECRET_MIN)
        return failf(err, errlen, name, "too short: need the base64 of at least 32 random bytes");
    /* A random 32-byte key has about 30 distinct byte values; fewer than 8
     * means a placeholder such as all zeros, "aaaa..." or a short repeat. */
    bool seen[256] = { false };
    unsigned distinct = 0;
    for (size_t i = 0; i < olen; i++)
        if (!seen[out->bytes[i]]) {
            seen[out->bytes[i]] = true;
            distinct++;
        }
    if (distinct == 1)
        return failf(err, errlen, name, "weak: every byte has the same value");
    if (distinct < 8)
        return failf(err, errlen, name, "weak: too few distinct byte values to be random");
    /* A passphrase in base64 decodes to printable text; 32 random bytes are
     * all printable with probability (95/256)^32, about 2^-46. */
    bool printable = true;
    for (size_t i = 0; i < olen && printable; i++)
        printable = out->bytes[i] >= 0x20 && out->bytes[i] <= 0x7e;
    if (printable && !previous)
        return failf(err, errlen, name, "weak: printable text (a passphrase?), not random bytes");
    if (printable)
        log_warn("%s: a key is printable text (a passphrase?): read old notes with it only, and run "
                 "notesd rekey", name);
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
    const char *direct = env_get(envp, name);
    const char *file = env_get(envp, env_name_with(file_var, sizeof(file_var), name, "_FILE"));
    const char *cred_dir = env_get(envp, "CREDENTIALS_DIRECTORY");
    if (direct && !*direct)
        direct = NULL;  /* NAME= (empty) means unset, as in a shell */
    if (file && !*file)
        file = NULL;
    if (direct && file)
        return failf(err, errlen, name, "set either it or its _FILE variant, not both");

    char cred_path[4096];
    bool have_cred = false;
    if (cred_dir && *cred_dir) {
        snprintf(cred_path, sizeof(cred_path), "%s/%s", cred_dir, name);
        have_cred = access(cred_path, F_OK) == 0;
    }
    if ((direct || file) && have_cred)
        return failf(err, errlen, name, "given both as a variable and as a systemd credential; keep one");
    if (direct) {
        text->max = strlen(direct) + 1;
        return buf_append_str(text, direct) ? failf(err, errlen, name, "too long") : 0;
    }
    const char *path = file ? file : have_cred ? cred_path : NULL;
    const char *label = file ? file_var : name;
    if (!path && optional)
        return 1;
    if (!path)
        return failf(err, errlen, name,
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

static int load_secret(struct config_secret *out, const char *name, char *const *envp,
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
static int load_secret_list(struct config *cfg, const char *name, char *const *envp,
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
            rc = failf(err, errlen, name, "at most 7 previous keys");
        else
            rc = decode_secret(&cfg->data_key_previous[cfg->n_data_key_previous++], name, p,
                               (size_t)(stop - p), true, err, errlen);
        p = stop + 1;
        if (rc == 0 && comma && p == end)
            rc = failf(err, errlen, name, "a comma ends the list: an empty key");
    }
    buf_cleanup_wipe(&text);
    return rc;
}

static int load_setting(struct config *cfg, const struct setting *s, const char *v,
                        char *const *envp, char *err, size_t errlen)
{
    void *field = (char *)cfg + s->offset;
    if (s->kind == K_SECRET)
        return load_secret(field, s->name, envp, err, errlen);
    if (s->kind == K_SECRET_LIST)
        return load_secret_list(cfg, s->name, envp, err, errlen);
    if (s->kind == K_REDIRECT && (!v || !*v))
        return 0;
    if (!v || !*v) {
        if (!s->def)
            return failf(err, errlen, s->name, "missing: this setting is required");
        v = s->def;
    }
    switch (s->kind) {
    case K_STRING:
        if (!(*(char **)field = strdup(v)))
            return ERR_NOMEM;
        return 0;
    case K_LISTEN:
        return parse_address(s->name, v, cfg->listen_host, &cfg->listen_port, &cfg->listen, err, errlen);
    case K_REDIRECT:   /* empty or "off": no redirect listener */
        if (strcmp(v, "off") == 0)
            return 0;
        return parse_address(s->name, v, cfg->redirect_host, &cfg->redirect_port, &cfg->redirect_listen,
                             err, errlen);
    case K_LOG_LEVEL:
        return parse_log_level(field, s->name, v, err, errlen);
    case K_SECONDS:
        return parse_seconds(field, s->name, v, err, errlen);
    case K_UINT:
        return parse_uint(field, s, v, err, errlen);
    case K_OPEN_CLOSED:
        return parse_open_closed(field, s->name, v, err, errlen);
    case K_ON_OFF:
        return parse_on_off(field, s->name, v, err, errlen);
    case K_AUDIT_SYNC:
        return parse_audit_sync(field, s->name, v, err, errlen);
    case K_AUDIT_IP:
        return parse_audit_ip(field, s->name, v, err, errlen);
    case K_LOG_FORMAT:
        return parse_log_format(field, s->name, v, err, errlen);
    case K_SECRET:
    case K_SECRET_LIST:
        break;
    }
    return ERR_INTERNAL;
}

/* One NAME=value line of the canonical text; the effective value, so a
 * default and the same value given explicitly digest alike. */
static int note_setting(struct buf *b, const struct setting *s, const char *v)
{
    if (!v || !*v)
        v = s->def ? s->def : "";
    int rc = buf_append(b, s->name, strlen(s->name));
    rc = rc ? rc : buf_append(b, "=", 1);
    rc = rc ? rc : buf_append(b, v, strlen(v));
    return rc ? rc : buf_append(b, "\n", 1);
}

static const char *override_for(const char *name, const struct config_override *ov, size_t n_ov)
{
    const char *v = NULL;
    for (size_t i = 0; i < n_ov; i++)
        if (strcmp(ov[i].name, name) == 0)
            v = ov[i].value;  /* the last one given wins, as with repeated flags */
    return v;
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

static int check_distinct_secrets(const struct config *cfg, char *err, size_t errlen)
{
    if (secret_eq(&cfg->token_key, &cfg->data_key))
        return failf(err, errlen, "NOTES_TOKEN_KEY", "same key as NOTES_DATA_KEY; each purpose needs its own key");
    if (secret_eq(&cfg->audit_key, &cfg->data_key))
        return failf(err, errlen, "NOTES_AUDIT_KEY", "same key as NOTES_DATA_KEY; each purpose needs its own key");
    if (secret_eq(&cfg->audit_key, &cfg->token_key))
        return failf(err, errlen, "NOTES_AUDIT_KEY", "same key as NOTES_TOKEN_KEY; each purpose needs its own key");
    for (size_t i = 0; i < cfg->n_data_key_previous; i++) {
        const struct config_secret *k = &cfg->data_key_previous[i];
        if (secret_eq(k, &cfg->token_key) || secret_eq(k, &cfg->audit_key))
            return failf(err, errlen, "NOTES_DATA_KEY_PREVIOUS", "a previous data key equals the token or audit key");
    }
    return 0;
}

int config_load(struct config *cfg, char *const *envp, const struct config_override *ov,
                size_t n_ov, enum config_needs needs, char *err, size_t errlen)
{
    memset(cfg, 0, sizeof(*cfg));
    err[0] = 0;
    int rc = 0;
    struct buf canonical;
    buf_init(&canonical, 64 * 1024);
    for (size_t i = 0; i < N_SETTINGS && rc == 0; i++) {
        const struct setting *s = &settings[i];
        if (s->skip & needs)
            continue;
        const char *v = override_for(s->name, ov, n_ov);
        if (!v)
            v = env_get(envp, s->name);
        rc = load_setting(cfg, s, v, envp, err, errlen);
        if (rc == 0 && s->kind != K_SECRET && s->kind != K_SECRET_LIST)
            rc = note_setting(&canonical, s, v);
    }
    if (rc == 0)
        rc = buf_append(&canonical, "", 1);   /* the terminating NUL */
    if (rc == 0) {
        cfg->canonical = (char *)canonical.data;
        buf_init(&canonical, 0);
    }
    buf_cleanup(&canonical);
    if (rc == 0)
        rc = check_distinct_secrets(cfg, err, errlen);
    if (rc == 0 && cfg->max_field > cfg->max_header_block)
        rc = failf(err, errlen, "NOTES_MAX_FIELD", "must not exceed NOTES_MAX_HEADERS_SIZE");
    if (rc == 0 && cfg->timeout_body_idle_s > cfg->timeout_body_s)
        rc = failf(err, errlen, "NOTES_TIMEOUT_BODY_IDLE", "must not exceed NOTES_TIMEOUT_BODY");
    if (rc == 0) {
        const char *ns = env_get(envp, "NOTIFY_SOCKET");
        if (ns && *ns && !(cfg->notify_socket = strdup(ns)))
            rc = ERR_NOMEM;
    }
    if (rc == ERR_NOMEM)
        snprintf(err, errlen, "out of memory while reading the configuration");
    if (rc) {
        config_free(cfg);
        return ERR_CONFIG;
    }
    log_set_format(cfg->log_format);   /* so even the warnings below take the chosen form */
    warn_unknown(envp);
    return 0;
}

void config_drop_secrets(struct config *cfg, char **envp)
{
    mbedtls_platform_zeroize(&cfg->data_key, sizeof(cfg->data_key));
    mbedtls_platform_zeroize(&cfg->token_key, sizeof(cfg->token_key));
    mbedtls_platform_zeroize(&cfg->audit_key, sizeof(cfg->audit_key));
    mbedtls_platform_zeroize(cfg->data_key_previous, sizeof(cfg->data_key_previous));
    cfg->n_data_key_previous = 0;
    /* The environment block the process started with is what
     * /proc/PID/environ and a core file show: its key text is overwritten
     * in place (NAME_FILE values are paths, and stay). */
    for (char **e = envp; e && *e; e++) {
        char *eq = strchr(*e, '=');
        const struct setting *s = eq ? find_setting(*e, (size_t)(eq - *e)) : NULL;
        if (s && (s->kind == K_SECRET || s->kind == K_SECRET_LIST))
            mbedtls_platform_zeroize(eq + 1, strlen(eq + 1));
    }
}

void config_free(struct config *cfg)
{
    free(cfg->listen);
    free(cfg->db_path);
    free(cfg->audit_dir);
    free(cfg->tls_cert);
    free(cfg->tls_key);
    free(cfg->notify_socket);
    free(cfg->redirect_listen);
    free(cfg->canonical);
    free(cfg->run_user);
    mbedtls_platform_zeroize(cfg, sizeof(*cfg));
}
