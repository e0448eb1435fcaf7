/*
 * store.c - SQLite storage: the schema, its migrations, and every statement
 * notesd runs.
 *
 * Owns one sqlite3 connection per struct store and the statements prepared
 * on it. All SQL this program can ever run is in the constant tables at the
 * top of this file; each is prepared once, in store_open(), and values only
 * ever reach SQLite through sqlite3_bind_*. This file must never build SQL
 * text at run time (no printf-style formatting of any kind, no string
 * concatenation into a statement), never load extensions, never let SQL text
 * or sqlite3_errmsg() reach an error string, and never leave a statement
 * un-reset when a function returns, because a stepped statement holds a read
 * snapshot that blocks WAL checkpoints and keeps borrowed pointers alive.
 * It must also never open() and close() an existing database file: that
 * silently drops the POSIX locks of every connection in the process.
 * tests/check_sql.sh checks the first of these mechanically.
 */
#include "store.h"
#include "err.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

/* ---- all SQL ------------------------------------------------------------- */

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

static const char *const *const migration_sql[] = {
    migration_v1_sql,
};

#define SCHEMA_VERSION ((int)(sizeof(migration_sql) / sizeof(migration_sql[0])))

/* Connection settings, run once per connection before anything else. */
static const char *const setup_sql[] = {
    "PRAGMA trusted_schema = OFF",
    "PRAGMA foreign_keys = ON",
    "PRAGMA secure_delete = ON",
    "PRAGMA synchronous = NORMAL",
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

enum stmt {
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_SAVEPOINT,
    ST_RELEASE,
    ST_ROLLBACK_TO,
    ST_USER_INSERT,
    ST_USER_GET,
    ST_USER_GET_BY_NAME,
    ST_USER_SET_PASSWORD,
    ST_USER_SET_ROLE,
    ST_USER_SET_DISABLED,
    ST_USER_DELETE,
    ST_SESSION_INSERT,
    ST_SESSION_GET,
    ST_SESSION_TOUCH,
    ST_SESSION_DELETE,
    ST_SESSION_DELETE_USER,
    ST_SESSION_DELETE_USER_KEEP,
    ST_SESSION_PURGE,
    ST_NOTE_INSERT,
    ST_NOTE_UPDATE,
    ST_NOTE_GET_OWN,
    ST_NOTE_GET_ANY,
    ST_NOTE_DELETE_OWN,
    ST_NOTE_LIST_OWNER,
    ST_NOTE_LIST_ALL,
    ST_NOTE_LIST_NOT_KEY,
    ST_KEY_USE,
    ST_CHECKPOINT,
    ST_COUNT
};

/* Column lists shared by the readers below (read_user, read_note). */
#define USER_COLS "id, username, role, password_hash, created_at, disabled"
/* The CASE keeps SQLite from even reading the content blob (and its overflow
 * pages) when the caller asked for titles only. */
#define NOTE_LIST_COLS \
    "id, owner_id, title, CASE WHEN ?4 THEN content ELSE X'' END, key_id, created_at, updated_at"
#define NOTE_COLS "id, owner_id, title, content, key_id, created_at, updated_at"

static const char *const stmt_sql[ST_COUNT] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_SAVEPOINT] = "SAVEPOINT nested",
    [ST_RELEASE] = "RELEASE nested",
    [ST_ROLLBACK_TO] = "ROLLBACK TO nested",
    [ST_USER_INSERT] = "INSERT INTO users (username, role, password_hash, created_at)"
                       " VALUES (?1, ?2, ?3, ?4) RETURNING id",
    [ST_USER_GET] = "SELECT " USER_COLS " FROM users WHERE id = ?1",
    [ST_USER_GET_BY_NAME] = "SELECT " USER_COLS " FROM users WHERE username = ?1",
    [ST_USER_SET_PASSWORD] = "UPDATE users SET password_hash = ?2 WHERE id = ?1",
    [ST_USER_SET_ROLE] = "UPDATE users SET role = ?2 WHERE id = ?1",
    [ST_USER_SET_DISABLED] = "UPDATE users SET disabled = ?2 WHERE id = ?1",
    [ST_USER_DELETE] = "DELETE FROM users WHERE id = ?1",
    [ST_SESSION_INSERT] = "INSERT INTO sessions (token_hash, user_id, created_at, last_seen, expires_at)"
                          " VALUES (?1, ?2, ?3, ?3, ?4)",
    [ST_SESSION_GET] = "SELECT s.user_id, u.role, u.disabled, s.created_at, s.last_seen, s.expires_at"
                       " FROM sessions AS s JOIN users AS u ON u.id = s.user_id"
                       " WHERE s.token_hash = ?1",
    [ST_SESSION_TOUCH] = "UPDATE sessions SET last_seen = ?2 WHERE token_hash = ?1",
    [ST_SESSION_DELETE] = "DELETE FROM sessions WHERE token_hash = ?1",
    [ST_SESSION_DELETE_USER] = "DELETE FROM sessions WHERE user_id = ?1",
    [ST_SESSION_DELETE_USER_KEEP] = "DELETE FROM sessions WHERE user_id = ?1 AND token_hash != ?2",
    [ST_SESSION_PURGE] = "DELETE FROM sessions WHERE expires_at <= ?1 OR last_seen < ?2",
    [ST_NOTE_INSERT] = "INSERT INTO notes (owner_id, title, content, key_id, created_at, updated_at)"
                       " VALUES (?1, X'', X'', 0, ?2, ?2) RETURNING id",
    [ST_NOTE_UPDATE] = "UPDATE notes SET title = ?3, content = ?4, key_id = ?5, updated_at = ?6"
                       " WHERE id = ?1 AND owner_id = ?2",
    [ST_NOTE_GET_OWN] = "SELECT " NOTE_COLS " FROM notes WHERE id = ?1 AND owner_id = ?2",
    [ST_NOTE_GET_ANY] = "SELECT " NOTE_COLS " FROM notes WHERE id = ?1",
    [ST_NOTE_DELETE_OWN] = "DELETE FROM notes WHERE id = ?1 AND owner_id = ?2",
    [ST_NOTE_LIST_OWNER] = "SELECT " NOTE_LIST_COLS " FROM notes"
                           " WHERE owner_id = ?1 AND id < ?2 ORDER BY id DESC LIMIT ?3",
    /* ?1 is bound but unused, so both list statements take the same
     * parameters and one binding function serves them. */
    [ST_NOTE_LIST_ALL] = "SELECT " NOTE_LIST_COLS " FROM notes"
                         " WHERE ?1 = 0 AND id < ?2 ORDER BY id DESC LIMIT ?3",
    [ST_NOTE_LIST_NOT_KEY] = "SELECT " NOTE_COLS " FROM notes"
                             " WHERE key_id != ?1 ORDER BY id LIMIT ?2",
    [ST_KEY_USE] = "INSERT INTO key_usage (key_id, encryptions) VALUES (?1, ?2)"
                   " ON CONFLICT (key_id) DO UPDATE SET encryptions = encryptions + excluded.encryptions"
                   " RETURNING encryptions",
    [ST_CHECKPOINT] = "PRAGMA wal_checkpoint(TRUNCATE)",
};

/* ---- the handle ---------------------------------------------------------- */

struct store {
    sqlite3 *db;
    sqlite3_stmt *stmt[ST_COUNT];
    int depth;                 /* open store_begin()s: 1 transaction + savepoints */
};

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

/* ---- result codes -------------------------------------------------------- */

/* Convert an SQLite (extended) result code to an ERR_* code; the only place
 * SQLite codes are interpreted. */
static int map_rc(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_OK:
    case SQLITE_ROW:
    case SQLITE_DONE:
        return 0;
    case SQLITE_NOMEM:
        return ERR_NOMEM;
    case SQLITE_TOOBIG:
        return ERR_LIMIT;
    case SQLITE_RANGE:
    case SQLITE_MISUSE:
        return ERR_INTERNAL;
    case SQLITE_CONSTRAINT:
        if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY)
            return ERR_EXISTS;
        if (rc == SQLITE_CONSTRAINT_FOREIGNKEY)
            return ERR_NOT_FOUND;   /* the referenced user does not exist */
        return ERR_INVALID;         /* CHECK, NOT NULL, STRICT datatype */
    default:
        return ERR_IO;
    }
}

/* ---- running statements -------------------------------------------------- */

/* Hand out statement `id`, or NULL when it is in the middle of a listing
 * (a callback re-entering the function that called it): resetting it there
 * would silently restart the outer loop. */
static sqlite3_stmt *take(struct store *s, enum stmt id)
{
    sqlite3_stmt *st = s->stmt[id];
    return sqlite3_stmt_busy(st) ? NULL : st;
}

/* Reset and unbind after every use: this ends the statement's read snapshot
 * (so checkpoints are not held back) and drops the SQLITE_STATIC pointers
 * into the caller's memory. */
static void release(sqlite3_stmt *st)
{
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

/* Run a statement that returns no rows; bind_rc carries binding errors. */
static int run(sqlite3_stmt *st, int bind_rc)
{
    int rc = bind_rc != SQLITE_OK ? bind_rc : sqlite3_step(st);
    release(st);
    return rc == SQLITE_DONE ? 0 : map_rc(rc == SQLITE_ROW ? SQLITE_MISUSE : rc);
}

/* As run(), but ERR_NOT_FOUND when no row was changed: how ownership
 * mismatches and unknown ids surface from UPDATE and DELETE. */
static int run_change(struct store *s, sqlite3_stmt *st, int bind_rc)
{
    int rc = run(st, bind_rc);
    if (rc == 0 && sqlite3_changes(s->db) == 0)
        rc = ERR_NOT_FOUND;
    return rc;
}

/* Step to the first row: 0 with the row ready, ERR_NOT_FOUND, or an error.
 * The caller reads the row and then release()s the statement. */
static int first_row(sqlite3_stmt *st, int bind_rc)
{
    int rc = bind_rc != SQLITE_OK ? bind_rc : sqlite3_step(st);
    if (rc == SQLITE_ROW)
        return 0;
    return rc == SQLITE_DONE ? ERR_NOT_FOUND : map_rc(rc);
}

/* Step an INSERT ... RETURNING <one integer> to completion. Stepped here
 * rather than through first_row(), whose ERR_NOT_FOUND for "no row" would
 * be confused with a foreign key failure (also ERR_NOT_FOUND). */
static int run_returning(sqlite3_stmt *st, int bind_rc, int64_t *value)
{
    int rc = bind_rc != SQLITE_OK ? bind_rc : sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *value = sqlite3_column_int64(st, 0);
        rc = sqlite3_step(st);
    } else if (rc == SQLITE_DONE) {
        rc = SQLITE_MISUSE;         /* RETURNING always yields a row */
    }
    release(st);
    return rc == SQLITE_DONE ? 0 : map_rc(rc == SQLITE_ROW ? SQLITE_MISUSE : rc);
}

/* ---- binding and reading values ------------------------------------------ */

/* Bind a NUL-terminated string of 1..max bytes; longer or empty strings are
 * refused here so that every stored value fits the fixed struct fields. */
static int bind_str(sqlite3_stmt *st, int i, const char *v, size_t max, int *bad)
{
    size_t n = v ? strnlen(v, max + 1) : 0;
    if (n == 0 || n > max) {
        *bad = ERR_INVALID;
        return SQLITE_OK;
    }
    return sqlite3_bind_text(st, i, v, (int)n, SQLITE_STATIC);
}

/* Bind a sealed field. An empty slice (possibly with a NULL pointer) must
 * become an empty blob: sqlite3_bind_blob(NULL) would bind SQL NULL. */
static int bind_slice(sqlite3_stmt *st, int i, struct slice v)
{
    if (v.len == 0)
        return sqlite3_bind_zeroblob(st, i, 0);
    return sqlite3_bind_blob64(st, i, v.p, v.len, SQLITE_STATIC);
}

static int bind_hash(sqlite3_stmt *st, int i, const uint8_t *hash)
{
    return sqlite3_bind_blob(st, i, hash, STORE_HASH_LEN, SQLITE_STATIC);
}

/* Copy a text column into a fixed field. A value that does not fit, or has
 * an embedded NUL, was not written by us: refuse it rather than truncate. */
static int read_str(sqlite3_stmt *st, int col, char *dst, size_t cap)
{
    const unsigned char *p = sqlite3_column_text(st, col);
    size_t n = (size_t)sqlite3_column_bytes(st, col);
    if (!p)
        return n ? ERR_NOMEM : ERR_INTERNAL;
    if (n >= cap || memchr(p, '\0', n))
        return ERR_INTERNAL;
    memcpy(dst, p, n);
    dst[n] = '\0';
    return 0;
}

/* Replace the contents of b with a blob column (empty blobs come back as
 * NULL pointers with zero length). */
static int read_blob(sqlite3_stmt *st, int col, struct buf *b)
{
    const void *p = sqlite3_column_blob(st, col);
    size_t n = (size_t)sqlite3_column_bytes(st, col);
    buf_reset(b);
    if (n == 0)
        return 0;
    if (!p)
        return ERR_NOMEM;
    return buf_append(b, p, n);
}

static int read_user(sqlite3_stmt *st, struct store_user *u)
{
    u->id = sqlite3_column_int64(st, 0);
    int rc = read_str(st, 1, u->username, sizeof(u->username));
    rc = rc ? rc : read_str(st, 2, u->role, sizeof(u->role));
    rc = rc ? rc : read_str(st, 3, u->password_hash, sizeof(u->password_hash));
    u->created_at = sqlite3_column_int64(st, 4);
    u->disabled = sqlite3_column_int64(st, 5) != 0;
    return rc;
}

/* Fill a note from a NOTE_COLS or NOTE_LIST_COLS row. */
static int read_note(sqlite3_stmt *st, struct store_note *n)
{
    n->id = sqlite3_column_int64(st, 0);
    n->owner_id = sqlite3_column_int64(st, 1);
    int64_t key_id = sqlite3_column_int64(st, 4);
    n->key_id = (uint32_t)key_id;
    n->created_at = sqlite3_column_int64(st, 5);
    n->updated_at = sqlite3_column_int64(st, 6);
    int rc = read_blob(st, 2, &n->title);
    rc = rc ? rc : read_blob(st, 3, &n->content);
    if (rc == 0 && (key_id < 0 || key_id > (int64_t)UINT32_MAX))
        rc = ERR_INTERNAL;          /* the schema's CHECK makes this impossible */
    return rc;
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

/* Per-connection hardening and settings. *why names the failing step. */
static int configure(sqlite3 *db, const char **why)
{
    *why = "cannot harden the database connection";
    for (size_t i = 0; i < sizeof(db_options) / sizeof(db_options[0]); i++) {
        int got = -1;
        int rc = sqlite3_db_config(db, db_options[i].op, db_options[i].value, &got);
        if (rc != SQLITE_OK || got != db_options[i].value)
            return rc != SQLITE_OK ? rc : SQLITE_MISUSE;
    }
    sqlite3_limit(db, SQLITE_LIMIT_LENGTH, SQL_LENGTH_LIMIT);
    sqlite3_limit(db, SQLITE_LIMIT_ATTACHED, 0);
    int rc = sqlite3_busy_timeout(db, BUSY_TIMEOUT_MS);
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
    int rc = exec_sql(db, stmt_sql[ST_BEGIN]);
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
        rc = exec_sql(db, stmt_sql[ST_COMMIT]);
    if (rc != SQLITE_OK && !sqlite3_get_autocommit(db))
        exec_sql(db, stmt_sql[ST_ROLLBACK]);
    return rc;
}

/* Prepare every statement of stmt_sql once, for the life of the handle. */
static int prepare_all(struct store *s)
{
    for (int i = 0; i < ST_COUNT; i++) {
        const char *tail = NULL;
        int rc = sqlite3_prepare_v3(s->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &s->stmt[i], &tail);
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
    rc = configure(s->db, &why);
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

void store_close(struct store *s)
{
    if (!s)
        return;
    for (int i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(s->stmt[i]);
    /* close_v2 frees the connection even if something were still open,
     * instead of leaking it with SQLITE_BUSY. */
    sqlite3_close_v2(s->db);
    free(s);
}

const char *store_library_version(void)
{
    return sqlite3_libversion();
}

int store_set_autocheckpoint(struct store *s, bool on)
{
    /* 1000 pages is SQLite's default; 0 turns the automatic one off. */
    return map_rc(sqlite3_wal_autocheckpoint(s->db, on ? 1000 : 0));
}

/* ---- transactions -------------------------------------------------------- */

int store_begin(struct store *s)
{
    sqlite3_stmt *st = take(s, s->depth ? ST_SAVEPOINT : ST_BEGIN);
    int rc = st ? run(st, SQLITE_OK) : ERR_INTERNAL;
    if (rc == 0)
        s->depth++;
    return rc;
}

/* SQLite ends the whole transaction by itself after some errors (disk
 * full, I/O): then every level is gone at once. */
static bool transaction_gone(struct store *s)
{
    if (!sqlite3_get_autocommit(s->db))
        return false;
    s->depth = 0;
    return true;
}

int store_commit(struct store *s)
{
    if (s->depth == 0 || transaction_gone(s))
        return ERR_INTERNAL;
    sqlite3_stmt *st = take(s, s->depth > 1 ? ST_RELEASE : ST_COMMIT);
    int rc = st ? run(st, SQLITE_OK) : ERR_INTERNAL;
    /* A failed COMMIT (SQLITE_BUSY, disk full) leaves the transaction open;
     * callers treat failure as final, so end it here rather than leave the
     * connection holding a write lock. */
    if (rc != 0) {
        store_rollback(s);
        return rc;
    }
    s->depth--;
    return 0;
}

void store_rollback(struct store *s)
{
    if (s->depth == 0 || transaction_gone(s))
        return;
    if (s->depth > 1) {
        sqlite3_stmt *st = take(s, ST_ROLLBACK_TO);
        int rc = st ? run(st, SQLITE_OK) : ERR_INTERNAL;
        st = rc ? NULL : take(s, ST_RELEASE);
        if (st && run(st, SQLITE_OK) == 0) {
            s->depth--;
            return;
        }
        /* The savepoint cannot be undone alone: undo everything. */
    }
    sqlite3_stmt *st = take(s, ST_ROLLBACK);
    if (st)
        run(st, SQLITE_OK);
    s->depth = 0;
}

/* ---- users --------------------------------------------------------------- */

int store_user_insert(struct store *s, const char *username, const char *role, const char *phc,
                      int64_t now, int64_t *id_out)
{
    sqlite3_stmt *st = take(s, ST_USER_INSERT);
    if (!st)
        return ERR_INTERNAL;
    int bad = 0;
    int rc = bind_str(st, 1, username, STORE_USERNAME_MAX, &bad);
    rc = rc ? rc : bind_str(st, 2, role, STORE_ROLE_MAX - 1, &bad);
    rc = rc ? rc : bind_str(st, 3, phc, STORE_PHC_MAX - 1, &bad);
    rc = rc ? rc : sqlite3_bind_int64(st, 4, now);
    if (bad) {
        release(st);
        return bad;
    }
    int64_t id = 0;
    int r = run_returning(st, rc, &id);
    if (r == 0 && id_out)
        *id_out = id;
    return r;
}

static int user_get(sqlite3_stmt *st, int bind_rc, struct store_user *out)
{
    memset(out, 0, sizeof(*out));
    int rc = first_row(st, bind_rc);
    if (rc == 0)
        rc = read_user(st, out);
    release(st);
    if (rc)
        memset(out, 0, sizeof(*out));   /* no half-filled user on failure */
    return rc;
}

int store_user_get(struct store *s, int64_t id, struct store_user *out)
{
    sqlite3_stmt *st = take(s, ST_USER_GET);
    if (!st)
        return ERR_INTERNAL;
    return user_get(st, sqlite3_bind_int64(st, 1, id), out);
}

int store_user_get_by_name(struct store *s, const char *username, struct store_user *out)
{
    sqlite3_stmt *st = take(s, ST_USER_GET_BY_NAME);
    if (!st)
        return ERR_INTERNAL;
    int bad = 0;
    int rc = bind_str(st, 1, username, STORE_USERNAME_MAX, &bad);
    if (bad) {
        /* A name no user can have: answer like any unknown name. */
        release(st);
        memset(out, 0, sizeof(*out));
        return ERR_NOT_FOUND;
    }
    return user_get(st, rc, out);
}

/* The three setters differ only in statement and value. */
static int user_set_str(struct store *s, enum stmt id, int64_t user_id, const char *v, size_t max)
{
    sqlite3_stmt *st = take(s, id);
    if (!st)
        return ERR_INTERNAL;
    int bad = 0;
    int rc = sqlite3_bind_int64(st, 1, user_id);
    rc = rc ? rc : bind_str(st, 2, v, max, &bad);
    if (bad) {
        release(st);
        return bad;
    }
    return run_change(s, st, rc);
}

int store_user_set_password(struct store *s, int64_t id, const char *phc)
{
    return user_set_str(s, ST_USER_SET_PASSWORD, id, phc, STORE_PHC_MAX - 1);
}

int store_user_set_role(struct store *s, int64_t id, const char *role)
{
    return user_set_str(s, ST_USER_SET_ROLE, id, role, STORE_ROLE_MAX - 1);
}

int store_user_set_disabled(struct store *s, int64_t id, bool disabled)
{
    sqlite3_stmt *st = take(s, ST_USER_SET_DISABLED);
    if (!st)
        return ERR_INTERNAL;
    int rc = sqlite3_bind_int64(st, 1, id);
    rc = rc ? rc : sqlite3_bind_int(st, 2, disabled ? 1 : 0);
    return run_change(s, st, rc);
}

int store_user_delete(struct store *s, int64_t id)
{
    sqlite3_stmt *st = take(s, ST_USER_DELETE);
    if (!st)
        return ERR_INTERNAL;
    return run_change(s, st, sqlite3_bind_int64(st, 1, id));
}

/* ---- sessions ------------------------------------------------------------ */

int store_session_insert(struct store *s, const uint8_t hash[STORE_HASH_LEN], int64_t user_id,
                         int64_t now, int64_t expires_at)
{
    sqlite3_stmt *st = take(s, ST_SESSION_INSERT);
    if (!st)
        return ERR_INTERNAL;
    if (!hash)
        return ERR_INVALID;
    int rc = bind_hash(st, 1, hash);
    rc = rc ? rc : sqlite3_bind_int64(st, 2, user_id);
    rc = rc ? rc : sqlite3_bind_int64(st, 3, now);
    rc = rc ? rc : sqlite3_bind_int64(st, 4, expires_at);
    return run(st, rc);
}

int store_session_get(struct store *s, const uint8_t hash[STORE_HASH_LEN], struct store_session *out)
{
    sqlite3_stmt *st = take(s, ST_SESSION_GET);
    if (!st)
        return ERR_INTERNAL;
    memset(out, 0, sizeof(*out));
    if (!hash)
        return ERR_INVALID;
    int rc = first_row(st, bind_hash(st, 1, hash));
    if (rc == 0) {
        out->user_id = sqlite3_column_int64(st, 0);
        rc = read_str(st, 1, out->role, sizeof(out->role));
        out->disabled = sqlite3_column_int64(st, 2) != 0;
        out->created_at = sqlite3_column_int64(st, 3);
        out->last_seen = sqlite3_column_int64(st, 4);
        out->expires_at = sqlite3_column_int64(st, 5);
    }
    release(st);
    if (rc)
        memset(out, 0, sizeof(*out));
    return rc;
}

int store_session_touch(struct store *s, const uint8_t hash[STORE_HASH_LEN], int64_t now)
{
    sqlite3_stmt *st = take(s, ST_SESSION_TOUCH);
    if (!st)
        return ERR_INTERNAL;
    if (!hash)
        return ERR_INVALID;
    int rc = bind_hash(st, 1, hash);
    rc = rc ? rc : sqlite3_bind_int64(st, 2, now);
    return run_change(s, st, rc);
}

int store_session_delete(struct store *s, const uint8_t hash[STORE_HASH_LEN])
{
    sqlite3_stmt *st = take(s, ST_SESSION_DELETE);
    if (!st)
        return ERR_INTERNAL;
    if (!hash)
        return ERR_INVALID;
    return run(st, bind_hash(st, 1, hash));
}

int store_session_delete_user(struct store *s, int64_t user_id, const uint8_t *keep)
{
    sqlite3_stmt *st = take(s, keep ? ST_SESSION_DELETE_USER_KEEP : ST_SESSION_DELETE_USER);
    if (!st)
        return ERR_INTERNAL;
    int rc = sqlite3_bind_int64(st, 1, user_id);
    if (keep)
        rc = rc ? rc : bind_hash(st, 2, keep);
    return run(st, rc);
}

int store_session_purge(struct store *s, int64_t now, int64_t idle_cutoff)
{
    sqlite3_stmt *st = take(s, ST_SESSION_PURGE);
    if (!st)
        return ERR_INTERNAL;
    int rc = sqlite3_bind_int64(st, 1, now);
    rc = rc ? rc : sqlite3_bind_int64(st, 2, idle_cutoff);
    return run(st, rc);
}

/* ---- notes --------------------------------------------------------------- */

void store_note_init(struct store_note *n)
{
    memset(n, 0, sizeof(*n));
    buf_init(&n->title, STORE_NOTE_BLOB_MAX);
    buf_init(&n->content, STORE_NOTE_BLOB_MAX);
}

void store_note_cleanup(struct store_note *n)
{
    buf_cleanup_wipe(&n->title);
    buf_cleanup_wipe(&n->content);
}

int store_note_insert(struct store *s, int64_t owner_id, int64_t now, int64_t *id_out)
{
    sqlite3_stmt *st = take(s, ST_NOTE_INSERT);
    if (!st)
        return ERR_INTERNAL;
    int rc = sqlite3_bind_int64(st, 1, owner_id);
    rc = rc ? rc : sqlite3_bind_int64(st, 2, now);
    int64_t id = 0;
    int r = run_returning(st, rc, &id);
    if (r == 0 && id_out)
        *id_out = id;
    return r;
}

int store_note_update(struct store *s, int64_t id, int64_t owner_id, struct slice title,
                      struct slice content, uint32_t key_id, int64_t now)
{
    sqlite3_stmt *st = take(s, ST_NOTE_UPDATE);
    if (!st)
        return ERR_INTERNAL;
    /* Refused here so that whatever is stored can be read back into a
     * store_note's buffers. */
    if (title.len > STORE_NOTE_BLOB_MAX || content.len > STORE_NOTE_BLOB_MAX)
        return ERR_LIMIT;
    if ((title.len && !title.p) || (content.len && !content.p))
        return ERR_INVALID;
    int rc = sqlite3_bind_int64(st, 1, id);
    rc = rc ? rc : sqlite3_bind_int64(st, 2, owner_id);
    rc = rc ? rc : bind_slice(st, 3, title);
    rc = rc ? rc : bind_slice(st, 4, content);
    rc = rc ? rc : sqlite3_bind_int64(st, 5, (int64_t)key_id);
    rc = rc ? rc : sqlite3_bind_int64(st, 6, now);
    return run_change(s, st, rc);
}

/* Fetch one note into the caller's store_note. */
static int note_get(sqlite3_stmt *st, int bind_rc, struct store_note *out)
{
    int rc = first_row(st, bind_rc);
    if (rc == 0)
        rc = read_note(st, out);
    release(st);
    if (rc) {
        buf_reset(&out->title);
        buf_reset(&out->content);
    }
    return rc;
}

int store_note_get_own(struct store *s, int64_t id, int64_t owner_id, struct store_note *out)
{
    sqlite3_stmt *st = take(s, ST_NOTE_GET_OWN);
    if (!st)
        return ERR_INTERNAL;
    int rc = sqlite3_bind_int64(st, 1, id);
    rc = rc ? rc : sqlite3_bind_int64(st, 2, owner_id);
    return note_get(st, rc, out);
}

int store_note_get_any(struct store *s, int64_t id, struct store_note *out)
{
    sqlite3_stmt *st = take(s, ST_NOTE_GET_ANY);
    if (!st)
        return ERR_INTERNAL;
    return note_get(st, sqlite3_bind_int64(st, 1, id), out);
}

int store_note_delete_own(struct store *s, int64_t id, int64_t owner_id)
{
    sqlite3_stmt *st = take(s, ST_NOTE_DELETE_OWN);
    if (!st)
        return ERR_INTERNAL;
    int rc = sqlite3_bind_int64(st, 1, id);
    rc = rc ? rc : sqlite3_bind_int64(st, 2, owner_id);
    return run_change(s, st, rc);
}

/*
 * Step a bound listing statement, handing each row to cb in a scratch note
 * that is reused (one allocation per listing) and wiped at the end. The
 * statement is reset before returning however the loop ends.
 */
static int each_note(sqlite3_stmt *st, int bind_rc, store_note_cb cb, void *arg)
{
    struct store_note n;
    store_note_init(&n);
    int rc = bind_rc != SQLITE_OK ? map_rc(bind_rc) : 0;
    while (rc == 0) {
        int step = sqlite3_step(st);
        if (step != SQLITE_ROW) {
            rc = map_rc(step);
            break;
        }
        rc = read_note(st, &n);
        if (rc == 0 && cb(arg, &n) != 0)
            break;                  /* the caller has what it wanted */
    }
    release(st);
    store_note_cleanup(&n);
    return rc;
}

int store_note_list(struct store *s, int64_t owner_id, int64_t before_id, int limit,
                    bool with_content, store_note_cb cb, void *arg)
{
    sqlite3_stmt *st = take(s, owner_id == 0 ? ST_NOTE_LIST_ALL : ST_NOTE_LIST_OWNER);
    if (!st)
        return ERR_INTERNAL;
    /* LIMIT with a negative value means "no limit" to SQLite. */
    if (limit <= 0 || !cb)
        return ERR_INVALID;
    int rc = sqlite3_bind_int64(st, 1, owner_id);
    rc = rc ? rc : sqlite3_bind_int64(st, 2, before_id);
    rc = rc ? rc : sqlite3_bind_int(st, 3, limit);
    rc = rc ? rc : sqlite3_bind_int(st, 4, with_content ? 1 : 0);
    return each_note(st, rc, cb, arg);
}

int store_note_list_not_key(struct store *s, uint32_t key_id, int limit, store_note_cb cb,
                            void *arg)
{
    sqlite3_stmt *st = take(s, ST_NOTE_LIST_NOT_KEY);
    if (!st)
        return ERR_INTERNAL;
    if (limit <= 0 || !cb)
        return ERR_INVALID;
    int rc = sqlite3_bind_int64(st, 1, (int64_t)key_id);
    rc = rc ? rc : sqlite3_bind_int(st, 2, limit);
    return each_note(st, rc, cb, arg);
}

/* ---- key usage and maintenance ------------------------------------------- */

int store_key_use(struct store *s, uint32_t key_id, uint64_t n, uint64_t *total)
{
    sqlite3_stmt *st = take(s, ST_KEY_USE);
    if (!st)
        return ERR_INTERNAL;
    if (n > (uint64_t)INT64_MAX)
        return ERR_INVALID;
    int rc = sqlite3_bind_int64(st, 1, (int64_t)key_id);
    rc = rc ? rc : sqlite3_bind_int64(st, 2, (int64_t)n);
    /* On overflow SQLite turns the sum into a REAL, which the STRICT
     * INTEGER column refuses (ERR_INVALID), so the count never wraps. */
    int64_t sum = 0;
    int r = run_returning(st, rc, &sum);
    if (r == 0 && sum < 0)
        r = ERR_INTERNAL;
    if (r == 0 && total)
        *total = (uint64_t)sum;
    return r;
}

int store_checkpoint(struct store *s)
{
    sqlite3_stmt *st = take(s, ST_CHECKPOINT);
    if (!st)
        return ERR_INTERNAL;
    int rc = first_row(st, SQLITE_OK);
    /* The row is (busy, log frames, checkpointed frames); busy means a
     * reader kept the WAL from being copied back and truncated. */
    if (rc == 0 && sqlite3_column_int(st, 0) != 0)
        rc = ERR_IO;
    release(st);
    return rc;
}
