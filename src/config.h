/*
 * config.h - the whole configuration of a notesd process, read once.
 *
 * config.c is the only module that reads the environment. It turns NOTES_*
 * variables (and NAME_FILE indirections and systemd credentials for secrets)
 * into one struct config, validates all of it, and hands it on as const.
 */
#ifndef NOTESD_CONFIG_H
#define NOTESD_CONFIG_H

/* The most one account may hold, whatever the settings: its export (every
 * note, each at most twice its sealed size in JSON, and every session) must
 * fit one response (api_me.c checks the sum against HTTP_BODY_MAX). */
#define CONFIG_USER_NOTES_CAP 10000
#define CONFIG_USER_KIB_CAP 6144
#define CONFIG_USER_SESSIONS_CAP 64
/* Most a connection's record threshold may be: 2^24 records under one TLS
 * key, past which its next answer closes it (server.c); what that answer and
 * the ones built in the same read add stays far below 2^24.5. */
#define CONFIG_TLS_RECORDS_CAP 16777216u

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "log.h"

#define CONFIG_SECRET_MIN 32   /* bytes of key material, at least */
#define CONFIG_SECRET_MAX 512  /* bytes of key material, at most */
#define CONFIG_ERR_MAX 512     /* room for one error line */
#define CONFIG_PREVIOUS_KEYS_MAX 7

/** NOTES_AUDIT_SYNC: when audit lines reach the disk (fdatasync). */
enum config_audit_sync {
    CONFIG_AUDIT_SYNC_BATCH = 0,    /* group commit on a short timer (default) */
    CONFIG_AUDIT_SYNC_ALWAYS,       /* before the response is released */
    CONFIG_AUDIT_SYNC_OFF,          /* left to the kernel */
};

/** NOTES_AUDIT_IP: how much of the client address an audit line keeps. */
enum config_audit_ip {
    CONFIG_AUDIT_IP_FULL = 0,       /* the whole address (default) */
    CONFIG_AUDIT_IP_TRUNCATED,      /* IPv4 /24, IPv6 /48 */
    CONFIG_AUDIT_IP_NONE,           /* no address at all */
};

/** Decoded key material. Wiped by config_free(). */
struct config_secret {
    uint8_t bytes[CONFIG_SECRET_MAX];
    size_t len;
};

struct config {
    /* Network */
    char *listen;              /* as given, for messages */
    char listen_host[64];      /* numeric IPv4 or IPv6 address */
    uint16_t listen_port;      /* 0 picks a free port (tests) */

    /* Files */
    char *db_path;
    char *audit_dir;
    char *tls_cert;
    char *tls_key;

    /* Secrets, each for one purpose only */
    struct config_secret data_key;
    struct config_secret token_key;
    struct config_secret audit_key;
    struct config_secret data_key_previous[CONFIG_PREVIOUS_KEYS_MAX];
    size_t n_data_key_previous;     /* older data keys, still readable */

    /* Accounts and sessions */
    bool registration_open;
    uint32_t argon2_m_kib;          /* >= 19456 (OWASP minimum) */
    uint32_t argon2_t;              /* >= 2 */
    uint32_t argon2_p;              /* 1..16 */
    uint32_t token_idle_s;          /* idle timeout of a bearer token */
    uint32_t token_lifetime_s;      /* absolute lifetime of a bearer token */
    /* What one account may hold; capped so its export fits one response */
    uint32_t user_max_notes, user_max_kib, user_max_sessions;

    /* The edge: what a client controls, bounded */
    uint32_t max_target, max_field, max_header_block, max_fields, max_body;
    uint32_t timeout_handshake_s, timeout_header_s, timeout_body_idle_s, timeout_body_s,
             timeout_keepalive_s, timeout_send_s;
    uint32_t max_connections, max_connections_per_ip;
    uint32_t max_output_mib;        /* answers queued for clients, all connections */
    uint32_t tls_max_records;       /* then the next answer closes the connection */
    char *redirect_listen;     /* plain-HTTP redirect listener, or NULL (off) */
    char redirect_host[64];
    uint16_t redirect_port;

    /* Abuse limits: rates per second, bursts in requests; a rate of 0 turns
     * one limit off, NOTES_RATE_LIMITS=off turns them all off. */
    bool rate_limits_on;
    uint32_t rate_ip_per_s, rate_ip_burst;
    uint32_t rate_auth_per_min, rate_auth_burst;
    uint32_t rate_writes_per_s, rate_writes_burst;
    uint32_t rate_exports_per_min, rate_exports_burst;
    uint32_t rate_conn_per_s, rate_conn_burst;   /* new connections per address */
    uint32_t rate_table_size;

    /* The audit trail */
    uint32_t audit_max_bytes;       /* a file rotates before it would pass this */
    uint32_t audit_max_files;       /* files kept, the current one included */
    uint32_t audit_retention_days;  /* rotated files older than this are deleted */
    enum config_audit_sync audit_sync;
    enum config_audit_ip audit_ip;

    /* Least privilege (sandbox.c) */
    char *run_user;            /* NOTES_USER; "" picks notesd, else nobody */
    bool seccomp_on;           /* NOTES_SECCOMP */
    bool landlock_on;          /* NOTES_LANDLOCK */

    /* Operation */
    enum log_level log_level;
    enum log_format log_format;
    unsigned shutdown_grace_ms;
    char *notify_socket;       /* systemd NOTIFY_SOCKET, or NULL */
    /* Every non-secret setting as NAME=value lines, in table order, for the
     * digest the audit trail records at start-up (what ran, not its keys). */
    char *canonical;
};

/** A value given on the command line; it wins over the environment. */
struct config_override {
    const char *name;          /* a NOTES_* setting name */
    const char *value;
};

/** Which settings config_load() must see: a CLI command needing no secrets
 *  (user management, for example) can skip them. */
enum config_needs {
    CONFIG_NEED_ALL = 0,
    CONFIG_NEED_NO_TLS = 1,
};

/**
 * Fill `cfg` from the NULL-terminated environment `envp` and the overrides.
 * Returns 0, or ERR_CONFIG with one line in `err` naming the variable and
 * what is wrong with it (never its value); `cfg` is then already freed.
 * Unknown NOTES_* variables are logged as warnings. Blocking (reads files).
 */
int config_load(struct config *cfg, char *const *envp, const struct config_override *ov,
                size_t n_ov, enum config_needs needs, char *err, size_t errlen);

/** Wipes the raw keys from cfg and their text from the environment block
 *  envp (in place): call once they are in the crypto module's key store.
 *  The rest of cfg stays usable. */
void config_drop_secrets(struct config *cfg, char **envp);

/** Wipe the secrets and free every string. Safe on a zeroed struct. */
void config_free(struct config *cfg);

/** Is `name` a setting config_load() knows (for CLI flag parsing)? */
int config_is_known(const char *name);

#endif
