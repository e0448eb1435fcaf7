/*
 * main.c - the notesd command line: serve, check-config, gen-cert,
 * gen-secrets, user, rekey, audit, --version, --help.
 *
 * Owns process start-up order: PSA crypto first, then the configuration,
 * the route table check, the TLS context, the account a root-started
 * server drops to, and only then the network. Any configuration problem
 * (a sandbox step refused once listening included) exits with status 78
 * (EX_CONFIG) and one line on stderr that names the variable and never its
 * value. Secrets are never accepted as command-line arguments (argv is
 * visible to every user).
 */
#include "app.h"
#include "audit.h"
#include "cli.h"
#include "config.h"
#include "crypto.h"
#include "err.h"
#include "http.h"
#include "json.h"
#include "log.h"
#include "router.h"
#include "sandbox.h"
#include "server.h"
#include "store.h"
#include "tls.h"
#include "tls_certgen.h"
#include "version.h"

#include <malloc.h>
#include <mbedtls/base64.h>
#include <mbedtls/platform_util.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/prctl.h>

#define NOTESD_VERSION "0.1.0"
#define EX_USAGE 64
#define EX_SOFTWARE 70
#define EX_CONFIG 78

extern char **environ;

/* Command-line flags for the non-secret settings, mapped to their names. */
static const struct { const char *flag, *setting, *help; } setting_flags[] = {
    { "--listen", "NOTES_LISTEN", "ADDRESS:PORT to serve on (default 127.0.0.1:8443)" },
    { "--db", "NOTES_DB", "SQLite database file (default ./data/notes.db)" },
    { "--audit-dir", "NOTES_AUDIT_DIR", "audit log folder (default ./data/audit)" },
    { "--tls-cert", "NOTES_TLS_CERT", "certificate chain, PEM (required)" },
    { "--tls-key", "NOTES_TLS_KEY", "private key, PEM, mode 0600 (required)" },
    { "--log-level", "NOTES_LOG_LEVEL", "debug, info, warning or error (default info)" },
    { "--redirect-listen", "NOTES_REDIRECT_LISTEN", "ADDRESS:PORT for the HTTP→HTTPS redirect (default off)" },
};
#define N_FLAGS (sizeof(setting_flags) / sizeof(setting_flags[0]))

static void usage_serve(FILE *f, const char *cmd)
{
    fprintf(f, "usage: notesd %s [options]\n\n", cmd);
    fprintf(f, "%s\n\n", strcmp(cmd, "serve") == 0
                             ? "Serve the Note API over HTTPS until SIGINT or SIGTERM."
                             : "Validate the configuration (environment, keys, certificate) and exit.");
    for (size_t i = 0; i < N_FLAGS; i++)
        fprintf(f, "  %-18s %-22s %s\n", setting_flags[i].flag, setting_flags[i].setting, setting_flags[i].help);
    fprintf(f, "\nSecrets come only from the environment: NOTES_DATA_KEY, NOTES_TOKEN_KEY and\n"
               "NOTES_AUDIT_KEY (each the base64 of >= 32 random bytes; see notesd gen-secrets),\n"
               "or NAME_FILE naming a file with the value, or a systemd credential NAME.\n"
               "Other settings: NOTES_SHUTDOWN_GRACE (seconds, default 5).\n"
               "Exit status 78 means the configuration was refused.\n");
}

static void usage(FILE *f)
{
    fprintf(f, "usage: notesd [serve|check-config|gen-cert|gen-secrets|user|rekey|audit] [options]\n"
               "       notesd --version [--verbose] | --help\n\n"
               "  serve         serve the Note API over HTTPS (the default)\n"
               "  check-config  validate the configuration and exit\n"
               "  gen-cert      write a self-signed development certificate and key\n"
               "  gen-secrets   print fresh random keys as NOTES_...= lines\n"
               "  user          add users, set roles, disable accounts (password on stdin)\n"
               "  rekey         re-encrypt every stored value under the active data key\n"
               "  audit verify  check the audit trail's hash chain and MACs\n\n"
               "Run notesd COMMAND --help for a command's options.\n");
}

static int refuse(const char *err)
{
    fprintf(stderr, "notesd: %s\n", err);
    return EX_CONFIG;
}

/* Parse `--flag VALUE` / `--flag=VALUE` for the settings table. */
static int parse_setting_flags(int argc, char **argv, const char *cmd, struct config_override *ov,
                               size_t *n_ov)
{
    *n_ov = 0;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage_serve(stdout, cmd);
            return 1;
        }
        size_t k = 0;
        const char *value = NULL;
        for (; k < N_FLAGS; k++) {
            size_t fl = strlen(setting_flags[k].flag);
            if (strncmp(argv[i], setting_flags[k].flag, fl) != 0)
                continue;
            if (argv[i][fl] == '=') {
                value = argv[i] + fl + 1;
                break;
            }
            if (argv[i][fl] == 0 && i + 1 < argc) {
                value = argv[++i];
                break;
            }
        }
        if (k == N_FLAGS) {
            fprintf(stderr, "notesd %s: unknown or incomplete option '%s'\n", cmd, argv[i]);
            usage_serve(stderr, cmd);
            return -1;
        }
        ov[(*n_ov)++] = (struct config_override){ setting_flags[k].setting, value };
    }
    return 0;
}

/* The TLS profile and every non-secret setting (secrets are never in
 * cfg->canonical), a few settings per line to stay under the line cap. */
static void log_startup(const struct config *cfg)
{
    char line[900];
    tls_describe_profile(line, sizeof(line));
    log_info("%s", line);
    const char *p = cfg->canonical ? cfg->canonical : "";
    while (*p) {
        size_t used = 0;
        while (*p) {
            size_t n = strcspn(p, "\n");
            if (used && used + n + 1 >= sizeof(line))
                break;
            used += (size_t)snprintf(line + used, sizeof(line) - used, "%s%.*s", used ? " " : "", (int)n, p);
            p += n + (p[n] == '\n');
            if (used >= sizeof(line) - 1)
                break;
        }
        log_info("configuration: %s", line);
    }
}

static int cmd_serve(int argc, char **argv, bool check_only)
{
    const char *cmd = check_only ? "check-config" : "serve";
    struct config_override ov[64];
    size_t n_ov;
    if (argc > 64) {
        fprintf(stderr, "notesd %s: too many arguments\n", cmd);
        return EX_USAGE;
    }
    int r = parse_setting_flags(argc, argv, cmd, ov, &n_ov);
    if (r)
        return r > 0 ? 0 : EX_USAGE;
    if (crypto_init() != 0) {
        fprintf(stderr, "notesd: cannot initialise the crypto library\n");
        return EX_SOFTWARE;
    }
    char err[CONFIG_ERR_MAX];
    struct config cfg;
    if (config_load(&cfg, environ, ov, n_ov, CONFIG_NEED_ALL, err, sizeof(err)) != 0)
        return refuse(err);
    log_set_level(cfg.log_level);
    int status = EX_CONFIG;
    struct tls_ctx *tls = NULL;
    if (router_check_table(err, sizeof(err)) != 0 || tls_ctx_new(&tls, &cfg, err, sizeof(err)) != 0 ||
        sandbox_check_user(&cfg, err, sizeof(err)) != 0) {
        refuse(err);
        goto done;
    }
    if (check_only) {
        printf("configuration OK\n");
        status = 0;
        goto done;
    }
    if (server_fit_file_limit(&cfg, err, sizeof(err)) != 0) {
        refuse(err);
        goto done;
    }
    struct app app = { .cfg = &cfg };
    if (app_open(&app, &cfg, err, sizeof(err)) != 0) {
        refuse(err);
        goto done;
    }
    if (app_passwords_open(&app, err, sizeof(err)) != 0) {
        app_close(&app);
        refuse(err);
        goto done;
    }
    config_drop_secrets(&cfg, environ);   /* the PSA key store has them now */
    log_info("notesd %s starting (mbedTLS %s, llhttp %s, SQLite %s, libuv %s)", NOTESD_VERSION,
             tls_library_version(), http_parser_version(), store_library_version(),
             server_loop_version());
    if (cfg.registration_open)
        log_info("registration is open (NOTES_REGISTRATION=open)");
    log_startup(&cfg);
    struct server_hooks hooks = {
        .chores = { { APP_CHECKPOINT_TICK_MS, app_checkpoint_job, &app },
                    { AUDIT_RETENTION_MS, app_retention_chore, &app },
                    { APP_CHECKPOINT_TICK_MS, app_passwords_chore, &app } },
        .n_chores = 3,
        .started = app_started,
        .stopping = app_stopping,
        .arg = &app,
    };
    struct http_out_budget budget = { 0, (size_t)cfg.max_output_mib * 1024 * 1024 };
    struct http_limits limits = { cfg.max_target, cfg.max_field, cfg.max_header_block, cfg.max_fields,
                                  cfg.max_body, &budget };
    int rc = server_run(&cfg, tls, &limits, &app, &hooks);
    /* A start refused once listening (the privilege drop, the sandbox) is
     * refused for the configuration's sake, as the refusals above are. */
    status = rc == 0 ? 0 : rc == ERR_CONFIG ? EX_CONFIG : 1;
    audit_flush(app.audit);               /* the loop is gone: blocking is fine */
    audit_sync(app.audit);
    app_log_anchor(&app, "stop");
    app_close(&app);
done:
    tls_ctx_free(tls);
    config_free(&cfg);
    return status;
}

static int cmd_gen_cert(int argc, char **argv)
{
    const char *host = "localhost", *out = NULL;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: notesd gen-cert [--host NAME] --out DIR\n\n"
                   "Write DIR/cert.pem and DIR/key.pem (mode 0600): a self-signed ECDSA P-256\n"
                   "certificate for NAME (default localhost), valid 90 days. For development\n"
                   "and tests; use a certificate from your CA in production.\n");
            return 0;
        }
        if (strcmp(argv[i], "--host") == 0 && i + 1 < argc)
            host = argv[++i];
        else if (strcmp(argv[i], "--out") == 0 && i + 1 < argc)
            out = argv[++i];
        else {
            fprintf(stderr, "notesd gen-cert: unknown or incomplete option '%s'\n", argv[i]);
            return EX_USAGE;
        }
    }
    if (!out) {
        fprintf(stderr, "notesd gen-cert: --out DIR is required\n");
        return EX_USAGE;
    }
    char err[256];
    if (crypto_init() != 0 || tls_gen_cert(host, out, err, sizeof(err)) != 0) {
        fprintf(stderr, "notesd gen-cert: %s\n", err);
        return 1;
    }
    printf("wrote %s/cert.pem and %s/key.pem for %s\n", out, out, host);
    return 0;
}

static int cmd_gen_secrets(int argc, char **argv)
{
    if (argc > 0) {
        if (strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0) {
            printf("usage: notesd gen-secrets\n\nPrint NOTES_DATA_KEY, NOTES_TOKEN_KEY and NOTES_AUDIT_KEY\n"
                   "lines with 32 fresh random bytes each (base64), for an environment file.\n");
            return 0;
        }
        fprintf(stderr, "notesd gen-secrets: takes no arguments\n");
        return EX_USAGE;
    }
    static const char *names[] = { "NOTES_DATA_KEY", "NOTES_TOKEN_KEY", "NOTES_AUDIT_KEY" };
    if (crypto_init() != 0)
        return EX_SOFTWARE;
    for (size_t i = 0; i < 3; i++) {
        unsigned char key[32], b64[64];
        size_t olen = 0;
        if (crypto_random(key, sizeof(key)) != 0 ||
            mbedtls_base64_encode(b64, sizeof(b64), &olen, key, sizeof(key)) != 0)
            return EX_SOFTWARE;
        printf("%s=%.*s\n", names[i], (int)olen, (const char *)b64);
        mbedtls_platform_zeroize(key, sizeof(key));
        mbedtls_platform_zeroize(b64, sizeof(b64));
    }
    return 0;
}

/* Every command holds keys in memory (the server for its whole run): no
 * core file, and no /proc/PID/mem or environ for other processes of the
 * same user. A change of uid resets the latter (sandbox.c sets it again). */
static int no_core_dumps(void)
{
    struct rlimit none = { 0, 0 };
    if (setrlimit(RLIMIT_CORE, &none) != 0)
        return -1;
    return prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

int main(int argc, char **argv)
{
    /* A fixed mmap threshold: password hashing's 19+ MiB buffers are mapped
     * and unmapped each time. glibc's default raises the threshold after
     * the first such free, and each pool thread's arena then keeps its own
     * buffer for good (4 x m resident after one login storm). Only memory
     * rides on it: where it is refused (sanitizer allocators ignore
     * mallopt), run on. */
    (void)mallopt(M_MMAP_THRESHOLD, 1024 * 1024);
    if (no_core_dumps() != 0) {
        fprintf(stderr, "notesd: cannot turn core dumps off\n");
        return EX_SOFTWARE;
    }
    if (tls_mem_install() != 0) {
        fprintf(stderr, "notesd: cannot set up the TLS library's memory\n");
        return EX_SOFTWARE;
    }
    const char *cmd = argc > 1 ? argv[1] : "serve";
    int rest = argc > 1 ? 2 : 1;
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "-V") == 0) {
        bool verbose = argc == 3 && strcmp(argv[2], "--verbose") == 0;
        if (argc > 2 && !verbose) {
            usage(stderr);
            return EX_USAGE;
        }
        return version_print(stdout, verbose) == 0 ? 0 : EX_SOFTWARE;
    }
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (cmd[0] == '-') {   /* `notesd --listen ...` means serve */
        cmd = "serve";
        rest = 1;
    }
    if (strcmp(cmd, "serve") == 0)
        return cmd_serve(argc - rest, argv + rest, false);
    if (strcmp(cmd, "check-config") == 0)
        return cmd_serve(argc - rest, argv + rest, true);
    if (strcmp(cmd, "gen-cert") == 0)
        return cmd_gen_cert(argc - rest, argv + rest);
    if (strcmp(cmd, "gen-secrets") == 0)
        return cmd_gen_secrets(argc - rest, argv + rest);
    if (strcmp(cmd, "user") == 0)
        return cli_user(argc - rest, argv + rest, environ);
    if (strcmp(cmd, "rekey") == 0)
        return cli_rekey(argc - rest, argv + rest, environ);
    if (strcmp(cmd, "audit") == 0)
        return cli_audit(argc - rest, argv + rest, environ);
    fprintf(stderr, "notesd: unknown command '%s'\n", cmd);
    usage(stderr);
    return EX_USAGE;
}
