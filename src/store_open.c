/*
 * store_open.c - opening a store: the database file and its folders, the
 * connection's hardening and settings, schema migrations, and preparing
 * every statement of store.c. The schema's SQL lives here, in constant
 * tables; the rules at the top of store.c apply.
 */
#include "store_int.h"
#include "err.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- the schema ---------------------------------------------------------- */

/*
 * Schema migrations, in order: migration_sql[i] takes the schema from
 * user_version i to i + 1, and its last statement records that. A migration
 * is never edited once released; a change is a new entry.
 */
static const char *const migration_v1_sql[] = {
    /* AUTOINCREMENT on users too (beyond the notes requirement): the audit
     * log names users by id, so a deleted user's id must never come back. */
    "CREATE TABLE users ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " username TEXT NOT NULL UNIQUE,"
    " role TEXT NOT NULL CHECK (role IN ('user', 'admin')),"
    " password_hash TEXT NOT NULL,"
    " created_at INTEGER NOT NULL,"
    " disabled INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1))"
    ") STRICT",
    /* WITHOUT ROWID: the hash is the key, so no second b-tree is needed,
     * and the primary key is NOT NULL as it should be. */
    "CREATE TABLE sessions ("
    " token_hash BLOB NOT NULL PRIMARY KEY CHECK (length(token_hash) = 32),"
    " user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    " created_at INTEGER NOT NULL,"
    " last_seen INTEGER NOT NULL,"
    " expires_at INTEGER NOT NULL"
    ") STRICT, WITHOUT ROWID",
    "CREATE INDEX sessions_user ON sessions (user_id)",
    "CREATE TABLE notes ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " owner_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    " title BLOB NOT NULL,"
    " content BLOB NOT NULL,"
    " key_id INTEGER NOT NULL CHECK (key_id BETWEEN 0 AND 4294967295),"
    " created_at INTEGER NOT NULL,"
    " updated_at INTEGER NOT NULL"
    ") STRICT",
    "CREATE INDEX notes_owner ON notes (owner_id, id)",
    "CREATE TABLE key_usage ("
    " key_id INTEGER PRIMARY KEY CHECK (key_id BETWEEN 0 AND 4294967295),"
    " encryptions INTEGER NOT NULL CHECK (encryptions >= 0)"
    ") STRICT",
    "PRAGMA user_version = 1",
    NULL,
};

/* v2: which password an account has, as a number a rehash leaves alone.
 * A password job remembers it on arrival and acts only if it is unchanged:
 * a login's upgrade of the hash (same password, current settings) must not
 * look like a password change to a job that read the old hash. Existing
 * accounts start at 1, as new ones do. */
static const char *const migration_v2_sql[] = {
    "ALTER TABLE users ADD COLUMN password_gen INTEGER NOT NULL DEFAULT 1 CHECK (password_gen >= 1)",
    "PRAGMA user_version = 2",
    NULL,
};

/* v3: what each account stores, kept by the statements that change notes
 * (triggers are off: store_open.c's db_options), so a quota is checked with
 * one row read. Bytes are those of the sealed values. */
static const char *const migration_v3_sql[] = {
    "ALTER TABLE users ADD COLUMN note_count INTEGER NOT NULL DEFAULT 0 CHECK (note_count >= 0)",
    "ALTER TABLE users ADD COLUMN note_bytes INTEGER NOT NULL DEFAULT 0 CHECK (note_bytes >= 0)",
    "UPDATE users SET note_count = (SELECT count(*) FROM notes WHERE owner_id = users.id)",
    /* one literal per statement (clang-tidy: a joined one looks like a missing comma) */
    "UPDATE users SET note_bytes = (SELECT coalesce(sum(length(title) + length(content)), 0) FROM notes WHERE owner_id = users.id)",
    "PRAGMA user_version = 3",
    NULL,
};

static const char *const *const migration_sql[] = {
    migration_v1_sql,
    migration_v2_sql,
    migration_v3_sql,
};

#define SCHEMA_VERSION ((int)(sizeof(migration_sql) / sizeof(migration_sql[0])))

/* Connection settings, run once per connection before anything else. */
static const char *const setup_sql[] = {
    "PRAGMA trusted_schema = OFF",
    "PRAGMA foreign_keys = ON",
    "PRAGMA secure_delete = ON",
    "PRAGMA synchronous = NORMAL",
    /* Periodic checkpoints are PASSIVE, so the WAL is started over from
     * the top rather than truncated; this trims what a burst left behind. */
    "PRAGMA journal_size_limit = 67108864",
};

/* Read back after setup: a PRAGMA SQLite does not know, or one compiled out,
 * is silently ignored, and these are security properties we rely on. */
static const struct {
    const char *sql;
    int want;
} verify_sql[] = {
    { "PRAGMA trusted_schema", 0 },
    { "PRAGMA foreign_keys", 1 },
    { "PRAGMA secure_delete", 1 },
    { "PRAGMA synchronous", 1 },    /* NORMAL */
};

static const char journal_wal_sql[] = "PRAGMA journal_mode = WAL";
static const char user_version_sql[] = "PRAGMA user_version";

/* Hardening switches for the connection (sqlite3_db_config). Extensions and
 * triggers/views are never used by notesd; turning them off means a
 * tampered database file cannot make us run code we did not write. */
static const struct {
    int op, value;
} db_options[] = {
    { SQLITE_DBCONFIG_DEFENSIVE, 1 },
    { SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0 },
    { SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0 },
    { SQLITE_DBCONFIG_ENABLE_TRIGGER, 0 },
    { SQLITE_DBCONFIG_ENABLE_VIEW, 0 },
    { SQLITE_DBCONFIG_DQS_DML, 0 },
    { SQLITE_DBCONFIG_DQS_DDL, 0 },
};

#define BUSY_TIMEOUT_MS 5000
/* Largest string, blob or row SQLite will build: two full blobs plus room. */
#define SQL_LENGTH_LIMIT ((int)(4 * STORE_NOTE_BLOB_MAX))

/* ---- error strings for store_open ---------------------------------------- */

/* Append s to err at *at, truncating; control bytes become '?' so a path
 * cannot forge extra log lines. */
static void err_put(char *err, size_t errlen, size_t *at, const char *s)
{
    for (; *s && *at + 1 < errlen; s++) {
        unsigned char c = (unsigned char)*s;
        err[(*at)++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    err[*at] = '\0';
}

/* "<why>: <path> (<detail>)". `detail` comes from sqlite3_errstr() or
 * strerror(), fixed texts that never carry SQL. */
static void set_err(char *err, size_t errlen, const char *why, const char *path, const char *detail)
{
    if (!err || errlen == 0)
        return;
    size_t at = 0;
    err[0] = '\0';
    err_put(err, errlen, &at, why);
    err_put(err, errlen, &at, ": ");
    err_put(err, errlen, &at, path ? path : "(none)");
    if (detail) {
        err_put(err, errlen, &at, " (");
        err_put(err, errlen, &at, detail);
        err_put(err, errlen, &at, ")");
    }
}

/* ---- opening: files and folders ------------------------------------------ */

/* Create each missing folder on the way to the file, mode 0700 exactly
 * (chmod undoes whatever the umask took away). Returns 0 or an errno. */
static int make_parents(const char *path)
{
    char dir[PATH_MAX];
    size_t n = strlen(path);
    memcpy(dir, path, n + 1);
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir)
        return 0;                   /* the current folder or "/" */
    *slash = '\0';
    struct stat st;
    if (stat(dir, &st) == 0)
        return S_ISDIR(st.st_mode) ? 0 : ENOTDIR;
    for (char *p = dir + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char c = *p;
        *p = '\0';
        if (mkdir(dir, 0700) == 0) {
            if (chmod(dir, 0700) != 0)
                return errno;
        } else if (errno != EEXIST) {
            return errno;
        }
        if (c == '\0')
            return 0;
        *p = c;
    }
}

/*
 * Create the database file 0600 before SQLite does, because SQLite would
 * create it 0644 (minus umask), and changing the process umask is not
 * thread-safe. SQLite gives the -wal and -shm files the mode of this file.
 *
 * An existing file is never open()ed here: POSIX locks belong to the
 * process, and close() on any descriptor of the file drops the locks of
 * every SQLite connection in this process on it. The server's connection
 * would lose its SHARED lock whenever a job opened a second connection, and
 * another process would then think itself the last one and delete the WAL
 * under it (SQLite's "how to corrupt" §2.2). So an existing file is only
 * stat()ed and chmod()ed by path, which touches no lock. A missing file is
 * created with O_EXCL under create_lock: every store_open() in the process
 * passes that lock before SQLite opens the file, so no connection of ours
 * can hold a lock on a file this function has just created and closes.
 * Returns 0 or an errno.
 */
static pthread_mutex_t create_lock = PTHREAD_MUTEX_INITIALIZER;

static int make_file_locked(const char *path)
{
    struct stat st;
    if (stat(path, &st) == 0) {
        if (!S_ISREG(st.st_mode))
            return EINVAL;
        /* Narrow a file open to group or others to its owner. */
        if ((st.st_mode & 077) != 0 && chmod(path, st.st_mode & 0700) != 0)
            return errno;
        return 0;
    }
    if (errno != ENOENT)
        return errno;
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOCTTY, 0600);
    if (fd < 0)
        return errno == EEXIST ? 0 : errno;  /* another process made it first */
    close(fd);
    return 0;
}

static int make_file(const char *path)
{
    pthread_mutex_lock(&create_lock);
    int e = make_file_locked(path);
    pthread_mutex_unlock(&create_lock);
    return e;
}

/* Check the path, create folders and file, and write the name SQLite gets
 * into name[]. A relative path gains "./" so that a name like "file:x" or
 * ":memory:" is always a plain file name to SQLite. */
static int prepare_path(const char *path, char name[PATH_MAX], char *err, size_t errlen)
{
    size_t n = path ? strnlen(path, PATH_MAX) : 0;
    if (n == 0 || n + 2 >= PATH_MAX) {
        set_err(err, errlen, "database path is empty or too long", n ? "(path)" : path, NULL);
        return ERR_IO;
    }
    char eb[128];
    int e = make_parents(path);
    if (e) {
        set_err(err, errlen, "cannot create the database folder", path, strerror_r(e, eb, sizeof(eb)));
        return ERR_IO;
    }
    e = make_file(path);
    if (e) {
        set_err(err, errlen, "cannot create the database file", path, strerror_r(e, eb, sizeof(eb)));
        return ERR_IO;
    }
    size_t at = 0;
    if (path[0] != '/') {
        memcpy(name, "./", 2);
        at = 2;
    }
    memcpy(name + at, path, n + 1);
    return 0;
}

/* ---- opening: connection settings, schema, statements -------------------- */

/* Run one constant statement from the tables above, ignoring any rows. */
static int exec_sql(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    const char *tail = NULL;
    int rc = sqlite3_prepare_v3(db, sql, -1, 0, &st, &tail);
    if (rc == SQLITE_OK && tail && *tail)
        rc = SQLITE_MISUSE;         /* one statement per table entry */
    while (rc == SQLITE_OK || rc == SQLITE_ROW)
        rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* Run one constant statement that yields one integer, e.g. a PRAGMA read. */
static int query_int(sqlite3 *db, const char *sql, int64_t *value)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v3(db, sql, -1, 0, &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *value = sqlite3_column_int64(st, 0);
        rc = SQLITE_OK;
    } else if (rc == SQLITE_DONE) {
        rc = SQLITE_MISUSE;         /* a setting SQLite does not know */
    }
    sqlite3_finalize(st);
    return rc;
}

/* Switch to WAL and check that it took: on a file system without shared
 * memory support SQLite keeps the old mode and says so only in the row. */
static int try_enable_wal(sqlite3 *db)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v3(db, journal_wal_sql, -1, 0, &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const unsigned char *mode = sqlite3_column_text(st, 0);
        rc = mode && strcmp((const char *)mode, "wal") == 0 ? SQLITE_OK : SQLITE_CANTOPEN;
    }
    sqlite3_finalize(st);
    return rc;
}

/* The first switch of a fresh file to WAL upgrades a read lock to an
 * exclusive one, and SQLite answers SQLITE_BUSY at once there instead of
 * calling the busy handler (waiting could deadlock). Several threads or
 * processes opening a new database together hit this, so retry for as long
 * as the busy timeout would have waited. */
static int enable_wal(sqlite3 *db)
{
    int rc = try_enable_wal(db);
    for (int waited = 0; (rc & 0xff) == SQLITE_BUSY && waited < BUSY_TIMEOUT_MS; waited += 10) {
        sqlite3_sleep(10);
        rc = try_enable_wal(db);
    }
    return rc;
}

/* Wait for a lock another connection holds (a checkpoint, the CLI) in
 * steps from 50 us doubling to 2 ms, up to BUSY_TIMEOUT_MS in all (or the
 * store's own shorter cap): the event loop's connection gets the lock
 * within a fraction of a millisecond of its release, where SQLite's own
 * timeout would sleep whole milliseconds (1, 2, 5, 10 ... 100) at a time. */
static int busy_wait(void *arg, int count)
{
    struct store *s = arg;
    long cap_ms = s->busy_cap_ms ? s->busy_cap_ms : BUSY_TIMEOUT_MS;
    if (count == 0)
        s->busy_waits++;
    static const int step_us[] = { 50, 100, 200, 400, 800, 1600 };
    int n = (int)(sizeof(step_us) / sizeof(step_us[0]));
    long waited_us = 0;
    for (int i = 0; i < count && i < n; i++)
        waited_us += step_us[i];
    if (count > n)
        waited_us += (long)(count - n) * 2000;
    if (waited_us >= cap_ms * 1000)
        return 0;
    usleep((useconds_t)(count < n ? step_us[count] : 2000));
    return 1;
}

uint64_t store_busy_waits(const struct store *s)
{
    return s ? s->busy_waits : 0;
}

/* Per-connection hardening and settings. *why names the failing step. */
static int configure(struct store *s, const char **why)
{
    sqlite3 *db = s->db;
    *why = "cannot harden the database connection";
    for (size_t i = 0; i < sizeof(db_options) / sizeof(db_options[0]); i++) {
        int got = -1;
        int rc = sqlite3_db_config(db, db_options[i].op, db_options[i].value, &got);
        if (rc != SQLITE_OK || got != db_options[i].value)
            return rc != SQLITE_OK ? rc : SQLITE_MISUSE;
    }
    sqlite3_limit(db, SQLITE_LIMIT_LENGTH, SQL_LENGTH_LIMIT);
    sqlite3_limit(db, SQLITE_LIMIT_ATTACHED, 0);
    int rc = sqlite3_busy_handler(db, busy_wait, s);
    for (size_t i = 0; rc == SQLITE_OK && i < sizeof(setup_sql) / sizeof(setup_sql[0]); i++)
        rc = exec_sql(db, setup_sql[i]);
    if (rc != SQLITE_OK)
        return rc;
    *why = "cannot switch the database to WAL journal mode";
    rc = enable_wal(db);
    if (rc != SQLITE_OK)
        return rc;
    *why = "database connection settings did not take effect";
    for (size_t i = 0; rc == SQLITE_OK && i < sizeof(verify_sql) / sizeof(verify_sql[0]); i++) {
        int64_t v = -1;
        rc = query_int(db, verify_sql[i].sql, &v);
        if (rc == SQLITE_OK && v != verify_sql[i].want)
            rc = SQLITE_MISUSE;
    }
    return rc;
}

/* Apply migrations from `from` to SCHEMA_VERSION (inside the caller's
 * transaction). */
static int apply_migrations(sqlite3 *db, int from)
{
    int rc = SQLITE_OK;
    for (int v = from; rc == SQLITE_OK && v < SCHEMA_VERSION; v++) {
        for (const char *const *sql = migration_sql[v]; rc == SQLITE_OK && *sql; sql++)
            rc = exec_sql(db, *sql);
    }
    return rc;
}

/*
 * Bring the schema to SCHEMA_VERSION. BEGIN IMMEDIATE takes the write lock
 * before user_version is read, so two processes or threads opening a fresh
 * file at once cannot both run the same migration; the loser waits on the
 * busy timeout and then finds the work done. A newer schema is refused
 * before anything is written.
 */
static int migrate(sqlite3 *db, const char **why)
{
    *why = "cannot read the database schema version";
    int rc = exec_sql(db, store_stmt_sql[ST_BEGIN]);
    if (rc != SQLITE_OK)
        return rc;
    int64_t version = -1;
    rc = query_int(db, user_version_sql, &version);
    if (rc == SQLITE_OK && (version < 0 || version > SCHEMA_VERSION)) {
        *why = "database schema is newer than this notesd";
        rc = SQLITE_ERROR;
    }
    if (rc == SQLITE_OK && version < SCHEMA_VERSION) {
        *why = "cannot migrate the database schema";
        rc = apply_migrations(db, (int)version);
    }
    if (rc == SQLITE_OK)
        rc = exec_sql(db, store_stmt_sql[ST_COMMIT]);
    if (rc != SQLITE_OK && !sqlite3_get_autocommit(db))
        exec_sql(db, store_stmt_sql[ST_ROLLBACK]);
    return rc;
}

/* Prepare every statement of stmt_sql once, for the life of the handle. */
static int prepare_all(struct store *s)
{
    for (int i = 0; i < ST_COUNT; i++) {
        const char *tail = NULL;
        int rc = sqlite3_prepare_v3(s->db, store_stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &s->stmt[i], &tail);
        if (rc != SQLITE_OK)
            return rc;
        if (tail && *tail)
            return SQLITE_MISUSE;
    }
    return SQLITE_OK;
}

int store_open(struct store **out, const char *path, char *err, size_t errlen)
{
    char name[PATH_MAX];
    const char *why = "cannot open the database file";
    *out = NULL;
    if (err && errlen)
        err[0] = '\0';
    int rc = prepare_path(path, name, err, errlen);
    if (rc)
        return rc;
    struct store *s = calloc(1, sizeof(*s));
    if (!s) {
        set_err(err, errlen, "out of memory opening the database", path, NULL);
        return ERR_NOMEM;
    }
    const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX |
                      SQLITE_OPEN_EXRESCODE;
    rc = sqlite3_open_v2(name, &s->db, flags, NULL);
    if (rc != SQLITE_OK)
        goto fail_close;
    rc = configure(s, &why);
    if (rc != SQLITE_OK)
        goto fail_close;
    rc = migrate(s->db, &why);
    if (rc != SQLITE_OK)
        goto fail_close;
    why = "cannot prepare the database statements";
    rc = prepare_all(s);
    if (rc != SQLITE_OK)
        goto fail_close;
    *out = s;
    return 0;

fail_close:
    /* sqlite3_errstr() describes the code only; sqlite3_errmsg() could
     * quote a statement, so it is never used here. */
    set_err(err, errlen, why, path, sqlite3_errstr(rc));
    store_close(s);                 /* finalizes whatever was prepared */
    return (rc & 0xff) == SQLITE_NOMEM ? ERR_NOMEM : ERR_IO;
}
