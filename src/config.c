/*
 * config.c - the environment, parsed and validated into one struct config.
 *
 * The only module that reads the environment. A table lists every setting
 * with its parser and default; unknown NOTES_* names are reported so a typo
 * never silently falls back to a default. Secrets come from NAME, NAME_FILE
 * or $CREDENTIALS_DIRECTORY/NAME (exactly one of them) and are refused when
 * missing, not base64, too short, obviously not random, or shared between two
 * purposes (config_secrets.c reads and checks them). Error lines name the
 * variable and the problem, never the value.
 */
#include "config.h"
#include "config_int.h"
#include "buf.h"
#include "err.h"

#include <arpa/inet.h>
#include <mbedtls/platform_util.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    { "NOTES_USER_MAX_NOTES", K_UINT, "10000", OFF(user_max_notes), 0, 1, CONFIG_USER_NOTES_CAP },
    { "NOTES_USER_MAX_KIB", K_UINT, "6144", OFF(user_max_kib), 0, 64, CONFIG_USER_KIB_CAP },
    { "NOTES_USER_MAX_SESSIONS", K_UINT, "16", OFF(user_max_sessions), 0, 1, CONFIG_USER_SESSIONS_CAP },
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
    /* TLS 1.3 allows AES-GCM 2^24.5 records per key (RFC 8446 5.5) and
     * mbedTLS never updates a connection's keys: past this many records the
     * next answer closes the connection (server.c). */
    { "NOTES_TLS_MAX_RECORDS", K_UINT, "16777216", OFF(tls_max_records), 0, 1, CONFIG_TLS_RECORDS_CAP },
    { "NOTES_REDIRECT_LISTEN", K_REDIRECT, "", OFF(redirect_listen), 0, 0, 0 },
    /* Abuse limits (0 disables one limit explicitly). */
    { "NOTES_RATE_LIMITS", K_ON_OFF, "on", OFF(rate_limits_on), 0, 0, 0 },
    { "NOTES_RATE_IP", K_UINT, "20", OFF(rate_ip_per_s), 0, 0, 1000000 },
    { "NOTES_RATE_IP_BURST", K_UINT, "40", OFF(rate_ip_burst), 0, 1, 1000000 },
    { "NOTES_RATE_AUTH_PER_MIN", K_UINT, "5", OFF(rate_auth_per_min), 0, 0, 1000000 },
    { "NOTES_RATE_AUTH_BURST", K_UINT, "5", OFF(rate_auth_burst), 0, 1, 1000000 },
    { "NOTES_RATE_WRITES", K_UINT, "10", OFF(rate_writes_per_s), 0, 0, 1000000 },
    { "NOTES_RATE_WRITES_BURST", K_UINT, "20", OFF(rate_writes_burst), 0, 1, 1000000 },
    { "NOTES_RATE_CONNECTIONS", K_UINT, "20", OFF(rate_conn_per_s), 0, 0, 1000000 },
    { "NOTES_RATE_CONNECTIONS_BURST", K_UINT, "40", OFF(rate_conn_burst), 0, 1, 1000000 },
    { "NOTES_RATE_EXPORTS_PER_MIN", K_UINT, "2", OFF(rate_exports_per_min), 0, 0, 1000000 },
    { "NOTES_RATE_EXPORTS_BURST", K_UINT, "3", OFF(rate_exports_burst), 0, 1, 1000000 },
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
const char *config_env_get(char *const *envp, const char *name)
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

int config_failf(char *err, size_t errlen, const char *name, const char *what)
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
            return config_failf(err, errlen, name, "expected [IPv6]:PORT");
        host = v + 1;
        host_len = (size_t)(close - host);
        colon = close + 1;
    } else {
        colon = strrchr(v, ':');
        if (!colon)
            return config_failf(err, errlen, name, "expected ADDRESS:PORT");
        host_len = (size_t)(colon - v);
    }
    if (host_len == 0 || host_len >= 64)
        return config_failf(err, errlen, name, "the address is missing or too long");
    memcpy(host_out, host, host_len);
    host_out[host_len] = 0;
    /* IPv6 only in brackets, IPv4 only without: "2001:db8::1:443" must not
     * quietly become [2001:db8::1]:443. */
    unsigned char addr[16];
    if (inet_pton(v[0] == '[' ? AF_INET6 : AF_INET, host_out, addr) != 1)
        return config_failf(err, errlen, name, "the address must be numeric: IPv4:PORT or [IPv6]:PORT");
    const char *p = colon + 1;
    unsigned long port = 0;
    if (*p == 0 || strlen(p) > 5)
        return config_failf(err, errlen, name, "the port must be a number from 0 to 65535");
    for (; *p; p++) {
        if (*p < '0' || *p > '9')
            return config_failf(err, errlen, name, "the port must be a number from 0 to 65535");
        port = port * 10 + (unsigned long)(*p - '0');
    }
    if (port > 65535)
        return config_failf(err, errlen, name, "the port must be a number from 0 to 65535");
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
    return config_failf(err, errlen, name, "must be one of debug, info, warning, error");
}

static int parse_log_format(enum log_format *out, const char *name, const char *v, char *err, size_t errlen)
{
    if (strcmp(v, "json") != 0 && strcmp(v, "text") != 0)
        return config_failf(err, errlen, name, "must be json or text");
    *out = strcmp(v, "json") == 0 ? LOG_FORMAT_JSON : LOG_FORMAT_TEXT;
    return 0;
}

static int parse_seconds(unsigned *out_ms, const char *name, const char *v, char *err, size_t errlen)
{
    unsigned long s = 0;
    if (*v == 0 || strlen(v) > 5)
        return config_failf(err, errlen, name, "must be a whole number of seconds from 0 to 86400");
    for (const char *p = v; *p; p++) {
        if (*p < '0' || *p > '9')
            return config_failf(err, errlen, name, "must be a whole number of seconds from 0 to 86400");
        s = s * 10 + (unsigned long)(*p - '0');
    }
    if (s > 86400)
        return config_failf(err, errlen, name, "must be a whole number of seconds from 0 to 86400");
    *out_ms = (unsigned)(s * 1000);
    return 0;
}

static int parse_uint(uint32_t *out, const struct setting *s, const char *v, char *err, size_t errlen)
{
    char why[96];
    snprintf(why, sizeof(why), "must be a whole number from %u to %u", (unsigned)s->min, (unsigned)s->max);
    unsigned long long x = 0;
    if (*v == 0 || strlen(v) > 10 || (v[0] == '0' && v[1] != 0))
        return config_failf(err, errlen, s->name, why);
    for (const char *p = v; *p; p++) {
        if (*p < '0' || *p > '9')
            return config_failf(err, errlen, s->name, why);
        x = x * 10 + (unsigned long long)(*p - '0');
    }
    if (x < s->min || x > s->max)
        return config_failf(err, errlen, s->name, why);
    *out = (uint32_t)x;
    return 0;
}

static int parse_on_off(bool *out, const char *name, const char *v, char *err, size_t errlen)
{
    if (strcmp(v, "on") == 0 || strcmp(v, "off") == 0) {
        *out = strcmp(v, "on") == 0;
        return 0;
    }
    return config_failf(err, errlen, name, "must be on or off");
}

static int parse_open_closed(bool *out, const char *name, const char *v, char *err, size_t errlen)
{
    if (strcmp(v, "open") == 0 || strcmp(v, "closed") == 0) {
        *out = strcmp(v, "open") == 0;
        return 0;
    }
    return config_failf(err, errlen, name, "must be open or closed");
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
        return config_failf(err, errlen, name, "must be always, batch or off");
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
        return config_failf(err, errlen, name, "must be full, truncated or none");
    *out = modes[i];
    return 0;
}

static int load_setting(struct config *cfg, const struct setting *s, const char *v,
                        char *const *envp, char *err, size_t errlen)
{
    void *field = (char *)cfg + s->offset;
    if (s->kind == K_SECRET)
        return config_load_secret(field, s->name, envp, err, errlen);
    if (s->kind == K_SECRET_LIST)
        return config_load_secret_list(cfg, s->name, envp, err, errlen);
    if (s->kind == K_REDIRECT && (!v || !*v))
        return 0;
    if (!v || !*v) {
        if (!s->def)
            return config_failf(err, errlen, s->name, "missing: this setting is required");
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
            v = config_env_get(envp, s->name);
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
        rc = config_check_distinct_secrets(cfg, err, errlen);
    if (rc == 0 && cfg->max_field > cfg->max_header_block)
        rc = config_failf(err, errlen, "NOTES_MAX_FIELD", "must not exceed NOTES_MAX_HEADERS_SIZE");
    if (rc == 0 && cfg->timeout_body_idle_s > cfg->timeout_body_s)
        rc = config_failf(err, errlen, "NOTES_TIMEOUT_BODY_IDLE", "must not exceed NOTES_TIMEOUT_BODY");
    if (rc == 0) {
        const char *ns = config_env_get(envp, "NOTIFY_SOCKET");
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
