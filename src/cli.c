/*
 * cli.c - `notesd user ...`, `notesd rekey` and `notesd audit verify`:
 * account administration, re-encryption and audit-chain checks from the
 * command line, against the same database and audit directory the server
 * uses (safe while it serves: SQLite WAL with a busy timeout; the audit log
 * is only read).
 *
 * Passwords are read from standard input, never from argv (visible to every
 * user in ps). Output names accounts by the name the operator typed; the
 * audit trail gets only ids.
 */
#include "cli.h"
#include "api.h"
#include "app.h"
#include "audit.h"
#include "authz.h"
#include "crypto.h"
#include "err.h"
#include "store.h"
#include "validate.h"

#include <mbedtls/platform_util.h>
#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define EX_USAGE 64
#define EX_DATAERR 65
#define EX_IOERR 74
#define EX_SOFTWARE 70
#define EX_CONFIG 78
#define PASSWORD_READ_MAX 1024

static int open_app(struct app *app, struct config *cfg, char *const *envp)
{
    char err[CONFIG_ERR_MAX];
    if (crypto_init() != 0) {
        fprintf(stderr, "notesd: cannot initialise the crypto library\n");
        return EX_SOFTWARE;
    }
    if (config_load(cfg, envp, NULL, 0, CONFIG_NEED_NO_TLS, err, sizeof(err)) != 0) {
        fprintf(stderr, "notesd: %s\n", err);
        return EX_CONFIG;
    }
    if (app_open(app, cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "notesd: %s\n", err);
        config_free(cfg);
        return EX_CONFIG;
    }
    return 0;
}

static void close_app(struct app *app, struct config *cfg)
{
    app_close(app);
    config_free(cfg);
}

/* The change is kept only when its record is written: cli_user() commits
 * the transaction only on 0. */
static int record_user_event(struct app *app, const char *event, int64_t user_id, enum audit_result r)
{
    struct audit_event ev = { .event = event, .role = "cli", .resource_type = "user",
                              .resource_id = user_id, .result = r };
    if (audit_record(app->audit, &ev) == 0)
        return 0;
    fprintf(stderr, "notesd user: cannot write the audit trail; nothing was changed\n");
    return EX_IOERR;
}

/* One line from stdin, without echo on a terminal. Returns its length or -1. */
static long read_password(char *out, size_t cap)
{
    struct termios old, quiet;
    bool tty = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &old) == 0;
    if (tty) {
        fprintf(stderr, "password: ");
        quiet = old;
        quiet.c_lflag &= (tcflag_t)~ECHO;
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
    }
    size_t n = 0;
    int c;
    while ((c = getchar()) != EOF && c != '\n' && n < cap - 1)
        out[n++] = (char)c;
    if (tty) {
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
        fprintf(stderr, "\n");
    }
    if (c != EOF && c != '\n')
        return -1;   /* longer than we accept: refuse rather than truncate */
    if (n > 0 && out[n - 1] == '\r')
        n--;
    out[n] = 0;
    return (long)n;
}

static int user_add(struct app *app, const char *name, const char *role)
{
    struct validate_errors errs = { 0 };
    char canon[VALIDATE_USERNAME_MAX + 1], pw[PASSWORD_READ_MAX + 1], phc[CRYPTO_PHC_MAX];
    uint8_t salt[CRYPTO_SALT_LEN];
    if (authz_role_parse(role) == ROLE_NONE) {
        fprintf(stderr, "notesd user add: --role must be admin or user\n");
        return EX_USAGE;
    }
    if (validate_username(name, strlen(name), canon, "username", &errs) != 0) {
        fprintf(stderr, "notesd user add: username %s\n", errs.e[0].why);
        return EX_DATAERR;
    }
    long n = read_password(pw, sizeof(pw));
    int rc = n < 0 ? ERR_INVALID : validate_password(pw, (size_t)n, "password", &errs);
    if (rc) {
        fprintf(stderr, "notesd user add: password %s\n", errs.n ? errs.e[0].why : "is too long");
        mbedtls_platform_zeroize(pw, sizeof(pw));
        return EX_DATAERR;
    }
    int64_t id = 0;
    rc = crypto_random(salt, sizeof(salt));
    rc = rc ? rc : crypto_password_hash(&app->argon2, pw, (size_t)n, salt, phc);
    mbedtls_platform_zeroize(pw, sizeof(pw));
    rc = rc ? rc : store_user_insert(app->store, canon, role, phc, (int64_t)time(NULL), &id);
    if (rc == ERR_EXISTS) {
        fprintf(stderr, "notesd user add: that username is taken\n");
        return EX_DATAERR;
    }
    if (rc) {
        fprintf(stderr, "notesd user add: failed (%s)\n", err_name(rc));
        return EX_SOFTWARE;
    }
    rc = record_user_event(app, "user.add", id, AUDIT_SUCCESS);
    if (rc)
        return rc;
    printf("added user %s (id %lld, role %s)\n", canon, (long long)id, role);
    return 0;
}

static int find_user(struct app *app, const char *name, struct store_user *u)
{
    struct validate_errors errs = { 0 };
    char canon[VALIDATE_USERNAME_MAX + 1];
    if (validate_username(name, strlen(name), canon, "username", &errs) != 0 ||
        store_user_get_by_name(app->store, canon, u) != 0) {
        fprintf(stderr, "notesd user: no such user\n");
        return EX_DATAERR;
    }
    return 0;
}

static int user_set_role(struct app *app, const char *name, const char *role)
{
    struct store_user u;
    if (authz_role_parse(role) == ROLE_NONE) {
        fprintf(stderr, "notesd user set-role: ROLE must be admin or user\n");
        return EX_USAGE;
    }
    int rc = find_user(app, name, &u);
    if (rc)
        return rc;
    if (store_user_set_role(app->store, u.id, role) != 0)
        return EX_SOFTWARE;
    rc = record_user_event(app, "user.set_role", u.id, AUDIT_SUCCESS);
    if (rc)
        return rc;
    printf("user %s now has role %s\n", u.username, role);
    return 0;
}

static int user_disable(struct app *app, const char *name)
{
    struct store_user u;
    int rc = find_user(app, name, &u);
    if (rc)
        return rc;
    /* Disabling revokes every session at once (ASVS V7.4.2). */
    if (store_user_set_disabled(app->store, u.id, true) != 0 ||
        store_session_delete_user(app->store, u.id, NULL) != 0)
        return EX_SOFTWARE;
    rc = record_user_event(app, "user.disable", u.id, AUDIT_SUCCESS);
    if (rc)
        return rc;
    printf("user %s is disabled and its sessions are revoked\n", u.username);
    return 0;
}

static void user_usage(FILE *f)
{
    fprintf(f, "usage: notesd user add NAME --role admin|user   (password read from stdin)\n"
               "       notesd user set-role NAME admin|user\n"
               "       notesd user disable NAME\n\n"
               "Uses NOTES_DB and the NOTES_*_KEY secrets from the environment, like serve.\n");
}

int cli_user(int argc, char **argv, char *const *envp)
{
    if (argc < 1 || strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0) {
        user_usage(argc < 1 ? stderr : stdout);
        return argc < 1 ? EX_USAGE : 0;
    }
    const char *sub = argv[0];
    bool add = strcmp(sub, "add") == 0 && argc == 4 && strcmp(argv[2], "--role") == 0;
    bool set_role = strcmp(sub, "set-role") == 0 && argc == 3;
    bool disable = strcmp(sub, "disable") == 0 && argc == 2;
    if (!add && !set_role && !disable) {
        user_usage(stderr);
        return EX_USAGE;
    }
    struct app app = { 0 };
    struct config cfg;
    int rc = open_app(&app, &cfg, envp);
    if (rc)
        return rc;
    if (store_begin(app.store) != 0) {
        fprintf(stderr, "notesd user: the database is busy or cannot be written\n");
        close_app(&app, &cfg);
        return EX_IOERR;
    }
    if (add)
        rc = user_add(&app, argv[1], argv[3]);
    else if (set_role)
        rc = user_set_role(&app, argv[1], argv[2]);
    else
        rc = user_disable(&app, argv[1]);
    if (rc == 0 && store_commit(app.store) != 0) {
        fprintf(stderr, "notesd user: the change could not be saved\n");
        rc = EX_IOERR;
    }
    if (rc)
        store_rollback(app.store);
    close_app(&app, &cfg);
    return rc;
}

/* ---- rekey ---------------------------------------------------------------- */

#define REKEY_BATCH 100

struct rekey_state {
    struct app *app;
    int done, failed;
    int64_t last_id;           /* the listing goes on after this note */
    int store_rc;              /* a failed update: the batch rolls back */
};

static int reseal_field(struct app *app, const struct store_note *n, const char *column,
                        const struct buf *sealed, struct buf *out)
{
    struct crypto_aad aad = { "notes", column, n->id, n->owner_id };
    struct buf plain;
    buf_init(&plain, sealed->len + 1);
    int rc = crypto_open(app->crypto, &aad, sealed->data, sealed->len, &plain);
    rc = rc ? rc : crypto_seal(app->crypto, &aad, plain.data, plain.len, out);
    buf_cleanup_wipe(&plain);
    return rc;
}

/* A note that does not open (tampered, or under a key no longer listed) is
 * counted and passed over: stopping there would leave every later note under
 * its old key too. A failed update stops the batch, which rolls back. */
static int rekey_note(void *arg, const struct store_note *n)
{
    struct rekey_state *st = arg;
    struct app *app = st->app;
    struct buf t, c;
    buf_init(&t, n->title.len + 64);
    buf_init(&c, n->content.len + 64);
    st->last_id = n->id;
    int rc = reseal_field(app, n, "title", &n->title, &t);
    rc = rc ? rc : reseal_field(app, n, "content", &n->content, &c);
    if (rc) {
        st->failed++;
        fprintf(stderr, "notesd rekey: note %lld cannot be re-encrypted (%s)\n", (long long)n->id, err_name(rc));
    } else {
        /* Keep the original times: re-encryption is not an edit. */
        st->store_rc = store_note_update(app->store, n->id, n->owner_id, slice_of(&t), slice_of(&c),
                                         crypto_active_key_id(app->crypto), n->updated_at);
        st->done += st->store_rc == 0;
    }
    buf_cleanup(&t);
    buf_cleanup(&c);
    return st->store_rc;
}

/* Rekey's writes are this process's, and the server truncates its WAL only
 * after its own changes: the old values would stay in notes.db's pages
 * until some checkpoint copied the new ones over them, and in older WAL
 * frames until a truncation. Readers are brief, so a few short waits do. */
#define REKEY_SCRUB_TRIES 40

static void rekey_scrub(struct app *app)
{
    for (int i = 0; i < REKEY_SCRUB_TRIES; i++)
        if (store_checkpoint_brief(app->store) == 0)
            return;
    fprintf(stderr, "notesd rekey: readers kept notes.db-wal from being truncated: values under the old "
                    "key may stay in the database files until the server's next checkpoint\n");
}

/* After the passes: notes still under another key are the ones that did
 * not open, or ones a server still holding the old key as its active one
 * wrote meanwhile. Either way the old key must stay. */
static int rekey_report(struct app *app, const struct rekey_state *st, uint32_t active)
{
    int64_t left = 0;
    int rc = store_note_count_not_key(app->store, active, &left);
    if (rc)
        return rc;
    bool complete = left == 0;
    struct audit_event ev = { .event = "key.rekey", .role = "cli",
                              .result = complete ? AUDIT_SUCCESS : AUDIT_ERROR,
                              .reason = complete ? NULL : "incomplete", .count = (uint64_t)st->done };
    if (audit_record(app->audit, &ev) != 0) {
        fprintf(stderr, "notesd rekey: the notes are re-encrypted but the audit trail cannot be written\n");
        return ERR_IO;
    }
    if (!complete) {
        fprintf(stderr,
                "notesd rekey: %d notes re-encrypted under key %08x, but %lld are still under older keys "
                "(%d could not be opened, listed above): keep those keys in NOTES_DATA_KEY_PREVIOUS, and "
                "restart the server with this NOTES_DATA_KEY before running rekey again\n",
                st->done, (unsigned)active, (long long)left, st->failed);
        return ERR_INVALID;
    }
    printf("rekey finished: %d notes re-encrypted under key %08x\n", st->done, (unsigned)active);
    return 0;
}

int cli_rekey(int argc, char **argv, char *const *envp)
{
    if (argc > 0) {
        bool help = strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0;
        fprintf(help ? stdout : stderr,
                "usage: notesd rekey\n\nRe-encrypt every note under the active NOTES_DATA_KEY. Older keys must be\n"
                "listed in NOTES_DATA_KEY_PREVIOUS until this exits 0. Safe while a server with the\n"
                "same keys serves: restart it with the new NOTES_DATA_KEY first.\n");
        return help ? 0 : EX_USAGE;
    }
    struct app app = { 0 };
    struct config cfg;
    int rc = open_app(&app, &cfg, envp);
    if (rc)
        return rc;
    struct rekey_state st = { .app = &app };
    uint32_t active = crypto_active_key_id(app.crypto);
    for (;;) {
        int before = st.done, failed = st.failed;
        int64_t after = st.last_id;
        rc = api_reserve_encryptions(&app, 2 * REKEY_BATCH);
        rc = rc ? rc : store_begin(app.store);
        if (rc == 0) {
            rc = store_note_list_not_key(app.store, active, after, REKEY_BATCH, rekey_note, &st);
            rc = rc ? rc : st.store_rc;
            rc = rc ? (store_rollback(app.store), rc) : store_commit(app.store);
        }
        if (rc) {
            st.done = before;
            break;
        }
        if (st.last_id == after)
            break;             /* nothing left past the last note seen */
        if (st.done > before || st.failed > failed)
            fprintf(stderr, "notesd rekey: %d notes re-encrypted\n", st.done);
    }
    rekey_scrub(&app);          /* also after a run a reader held off: cheap */
    rc = rc ? rc : rekey_report(&app, &st, active);
    close_app(&app, &cfg);
    return rc == 0 ? 0 : rc == ERR_INVALID ? EX_DATAERR : rc == ERR_IO ? EX_IOERR : EX_SOFTWARE;
}

/* ---- audit verify --------------------------------------------------------- */

/* verify [DIR] [--anchor SEQ:HEX], in any order; false on anything else. */
static bool verify_args(int argc, char **argv, const char **dir, struct audit_anchor *an, bool *anchored)
{
    *dir = NULL;
    *anchored = false;
    if (argc < 1 || strcmp(argv[0], "verify") != 0)
        return false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--anchor") == 0) {
            if (*anchored || i + 1 >= argc || audit_anchor_parse(argv[++i], an) != 0)
                return false;
            *anchored = true;
        } else if (argv[i][0] == '-' || *dir) {
            return false;
        } else {
            *dir = argv[i];
        }
    }
    return true;
}

int cli_audit(int argc, char **argv, char *const *envp)
{
    bool help = false;
    for (int i = 0; i < argc; i++)   /* `audit --help` and `audit verify --help` */
        help = help || strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0;
    const char *dir;
    struct audit_anchor anchor;
    bool anchored;
    if (help || !verify_args(argc, argv, &dir, &anchor, &anchored)) {
        fprintf(help ? stdout : stderr,
                "usage: notesd audit verify [DIR] [--anchor SEQ:SHA256]\n\n"
                "Check the audit trail in DIR (default NOTES_AUDIT_DIR): every line's MAC, the\n"
                "hash chain across rotated files, and that lines removed by retention are\n"
                "accounted for. Needs NOTES_AUDIT_KEY (and the other keys) like serve.\n"
                "The OK line ends in \"anchor SEQ:SHA256\", the newest line's: keep it off\n"
                "this machine and pass it back with --anchor to find lines cut from the end\n"
                "since (a shorter chain verifies on its own).\n"
                "Exit status 0: the chain verifies; 1: a line was changed, removed,\n"
                "reordered or inserted, the anchored line is missing or differs, or the log\n"
                "is torn (the first problem is printed).\n");
        return help ? 0 : EX_USAGE;
    }
    char err[CONFIG_ERR_MAX];
    struct config cfg;
    struct crypto *crypto = NULL;
    if (crypto_init() != 0) {
        fprintf(stderr, "notesd: cannot initialise the crypto library\n");
        return EX_SOFTWARE;
    }
    if (config_load(&cfg, envp, NULL, 0, CONFIG_NEED_NO_TLS, err, sizeof(err)) != 0) {
        fprintf(stderr, "notesd: %s\n", err);
        return EX_CONFIG;
    }
    int status = EX_CONFIG;
    if (crypto_new(&crypto, &cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "notesd: %s\n", err);
    } else {
        int rc = audit_verify_dir(dir ? dir : cfg.audit_dir, crypto, anchored ? &anchor : NULL, stdout);
        status = rc == 0 ? 0 : rc == ERR_INVALID ? 1 : EX_IOERR;
    }
    crypto_free(crypto);
    config_free(&cfg);
    return status;
}
