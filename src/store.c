/*
 * store.c - SQLite storage: every statement notesd runs, how statements are
 * run, transactions, and key-usage bookkeeping. store_open.c opens the
 * connection and migrates the schema; store_rows.c reads and writes users,
 * sessions and notes.
 *
 * Owns one sqlite3 connection per struct store and the statements prepared
 * on it. All SQL this program can ever run is in constant tables: the
 * statements below and the schema in store_open.c; each statement is
 * prepared once, in store_open(), and values only ever reach SQLite through
 * sqlite3_bind_*. No store file may build SQL text at run time (no
 * printf-style formatting of any kind, no string concatenation into a
 * statement), load extensions, let SQL text or sqlite3_errmsg() reach an
 * error string, or leave a statement un-reset when a function returns,
 * because a stepped statement holds a read snapshot that blocks WAL
 * checkpoints and keeps borrowed pointers alive. Nor may they open() and
 * close() an existing database file: that silently drops the POSIX locks of
 * every connection in the process. tests/check_sql.sh checks the first of
 * these mechanically.
 */
#include "store_int.h"
#include "err.h"

#include <stdlib.h>
#include <string.h>

/* ---- all statements ------------------------------------------------------ */
/* Column lists shared by the readers below (read_user, read_note). */
#define USER_COLS "id, username, role, password_hash, created_at, disabled, password_gen"
/* The CASE keeps SQLite from even reading the content blob (and its overflow
 * pages) when the caller asked for titles only. */
#define NOTE_LIST_COLS \
    "id, owner_id, title, CASE WHEN ?4 THEN content ELSE X'' END, key_id, created_at, updated_at"
#define NOTE_COLS "id, owner_id, title, content, key_id, created_at, updated_at"

const char *const store_stmt_sql[ST_COUNT] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_BEGIN_READ] = "BEGIN DEFERRED",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_SAVEPOINT] = "SAVEPOINT nested",
    [ST_RELEASE] = "RELEASE nested",
    [ST_ROLLBACK_TO] = "ROLLBACK TO nested",
    [ST_USER_INSERT] = "INSERT INTO users (username, role, password_hash, created_at)"
                       " VALUES (?1, ?2, ?3, ?4) RETURNING id",
    [ST_USER_GET] = "SELECT " USER_COLS " FROM users WHERE id = ?1",
    [ST_USER_GET_BY_NAME] = "SELECT " USER_COLS " FROM users WHERE username = ?1",
    [ST_USER_SET_PASSWORD] = "UPDATE users SET password_hash = ?2, password_gen = password_gen + 1 WHERE id = ?1",
    [ST_USER_UPGRADE_PASSWORD] = "UPDATE users SET password_hash = ?3 WHERE id = ?1 AND password_hash = ?2",
    /* The "m=..,t=..,p=.." of every hash that starts with the prefix ?1
     * (its length + 1 is where the parameters start), once each. */
    [ST_USER_PARAM_SETS] = "SELECT DISTINCT substr(h, 1, instr(h, '$') - 1) FROM"
                           " (SELECT substr(password_hash, length(?1) + 1) AS h FROM users"
                           "  WHERE substr(password_hash, 1, length(?1)) = ?1)"
                           " WHERE instr(h, '$') > 1",
    [ST_USER_SET_ROLE] = "UPDATE users SET role = ?2 WHERE id = ?1",
    [ST_USER_SET_DISABLED] = "UPDATE users SET disabled = ?2 WHERE id = ?1",
    [ST_USER_DELETE] = "DELETE FROM users WHERE id = ?1",
    [ST_USER_DELETE_IF_CURRENT] = "DELETE FROM users WHERE id = ?1 AND password_gen = ?2 AND disabled = 0"
                                  " AND EXISTS (SELECT 1 FROM sessions WHERE token_hash = ?3 AND user_id = ?1)",
    [ST_SESSION_INSERT] = "INSERT INTO sessions (token_hash, user_id, created_at, last_seen, expires_at)"
                          " VALUES (?1, ?2, ?3, ?3, ?4)",
    /* All but the newest ?2 sessions of user ?1. */
    [ST_SESSION_TRIM] = "DELETE FROM sessions WHERE user_id = ?1 AND token_hash IN"
                        " (SELECT token_hash FROM sessions WHERE user_id = ?1"
                        "  ORDER BY created_at DESC, last_seen DESC LIMIT -1 OFFSET ?2)",
    [ST_SESSION_GET] = "SELECT s.user_id, u.role, u.disabled, s.created_at, s.last_seen, s.expires_at"
                       " FROM sessions AS s JOIN users AS u ON u.id = s.user_id"
                       " WHERE s.token_hash = ?1",
    [ST_SESSION_TOUCH] = "UPDATE sessions SET last_seen = ?2 WHERE token_hash = ?1",
    [ST_SESSION_DELETE] = "DELETE FROM sessions WHERE token_hash = ?1",
    [ST_SESSION_DELETE_USER] = "DELETE FROM sessions WHERE user_id = ?1",
    [ST_SESSION_DELETE_USER_KEEP] = "DELETE FROM sessions WHERE user_id = ?1 AND token_hash != ?2",
    [ST_SESSION_PURGE] = "DELETE FROM sessions WHERE expires_at <= ?1 OR last_seen < ?2",
    [ST_SESSION_LIST_USER] = "SELECT created_at, last_seen, expires_at FROM sessions WHERE user_id = ?1"
                             " ORDER BY created_at, expires_at",
    [ST_NOTE_INSERT] = "INSERT INTO notes (owner_id, title, content, key_id, created_at, updated_at)"
                       " VALUES (?1, X'', X'', 0, ?2, ?2) RETURNING id",
    [ST_NOTE_UPDATE] = "UPDATE notes SET title = ?3, content = ?4, key_id = ?5, updated_at = ?6"
                       " WHERE id = ?1 AND owner_id = ?2",
    [ST_NOTE_GET_OWN] = "SELECT " NOTE_COLS " FROM notes WHERE id = ?1 AND owner_id = ?2",
    [ST_NOTE_GET_ANY] = "SELECT " NOTE_COLS " FROM notes WHERE id = ?1",
    [ST_NOTE_DELETE_OWN] = "DELETE FROM notes WHERE id = ?1 AND owner_id = ?2",
    /* An account's usage follows its notes: for note ?1 of owner ?2, run
     * after its insert, and before an update or delete (which read its old
     * size); ?3 is its new sealed size. */
    [ST_USAGE_GET] = "SELECT note_count, note_bytes FROM users WHERE id = ?1",
    [ST_USAGE_NOTE_ADDED] = "UPDATE users SET note_count = note_count + 1"
                            " WHERE id = ?2 AND EXISTS (SELECT 1 FROM notes WHERE id = ?1 AND owner_id = ?2)",
    [ST_USAGE_NOTE_SET] = "UPDATE users SET note_bytes = note_bytes + ?3"
                          " - (SELECT length(title) + length(content) FROM notes WHERE id = ?1 AND owner_id = ?2)"
                          " WHERE id = ?2 AND EXISTS (SELECT 1 FROM notes WHERE id = ?1 AND owner_id = ?2)",
    [ST_USAGE_NOTE_GONE] = "UPDATE users SET note_count = note_count - 1, note_bytes = note_bytes"
                           " - (SELECT length(title) + length(content) FROM notes WHERE id = ?1 AND owner_id = ?2)"
                           " WHERE id = ?2 AND EXISTS (SELECT 1 FROM notes WHERE id = ?1 AND owner_id = ?2)",
    [ST_NOTE_LIST_OWNER] = "SELECT " NOTE_LIST_COLS " FROM notes"
                           " WHERE owner_id = ?1 AND id < ?2 ORDER BY id DESC LIMIT ?3",
    /* ?1 is bound but unused, so both list statements take the same
     * parameters and one binding function serves them. */
    [ST_NOTE_LIST_ALL] = "SELECT " NOTE_LIST_COLS " FROM notes"
                         " WHERE ?1 = 0 AND id < ?2 ORDER BY id DESC LIMIT ?3",
    [ST_NOTE_LIST_NOT_KEY] = "SELECT " NOTE_COLS " FROM notes"
                             " WHERE key_id != ?1 AND id > ?2 ORDER BY id LIMIT ?3",
    [ST_NOTE_COUNT_NOT_KEY] = "SELECT count(*) FROM notes WHERE key_id != ?1",
    [ST_KEY_USE] = "INSERT INTO key_usage (key_id, encryptions) VALUES (?1, ?2)"
                   " ON CONFLICT (key_id) DO UPDATE SET encryptions = encryptions + excluded.encryptions"
                   " RETURNING encryptions",
    [ST_CHECKPOINT_PASSIVE] = "PRAGMA wal_checkpoint(PASSIVE)",
    [ST_CHECKPOINT_RESTART] = "PRAGMA wal_checkpoint(RESTART)",
    [ST_CHECKPOINT] = "PRAGMA wal_checkpoint(TRUNCATE)",
};

/* ---- result codes -------------------------------------------------------- */

/* Convert an SQLite (extended) result code to an ERR_* code; the only place
 * SQLite codes are interpreted. */
int sq_map_rc(int rc)
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
sqlite3_stmt *sq_take(struct store *s, enum stmt id)
{
    sqlite3_stmt *st = s->stmt[id];
    return sqlite3_stmt_busy(st) ? NULL : st;
}

/* Reset and unbind after every use: this ends the statement's read snapshot
 * (so checkpoints are not held back) and drops the SQLITE_STATIC pointers
 * into the caller's memory. */
void sq_release(sqlite3_stmt *st)
{
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

/* Run a statement that returns no rows; bind_rc carries binding errors. */
int sq_run(sqlite3_stmt *st, int bind_rc)
{
    int rc = bind_rc != SQLITE_OK ? bind_rc : sqlite3_step(st);
    sq_release(st);
    return rc == SQLITE_DONE ? 0 : sq_map_rc(rc == SQLITE_ROW ? SQLITE_MISUSE : rc);
}

/* As sq_run(), but ERR_NOT_FOUND when no row was changed: how ownership
 * mismatches and unknown ids surface from UPDATE and DELETE. */
int sq_run_change(struct store *s, sqlite3_stmt *st, int bind_rc)
{
    int rc = sq_run(st, bind_rc);
    if (rc == 0 && sqlite3_changes(s->db) == 0)
        rc = ERR_NOT_FOUND;
    return rc;
}

/* Step to the first row: 0 with the row ready, ERR_NOT_FOUND, or an error.
 * The caller reads the row and then sq_release()s the statement. */
int sq_first_row(sqlite3_stmt *st, int bind_rc)
{
    int rc = bind_rc != SQLITE_OK ? bind_rc : sqlite3_step(st);
    if (rc == SQLITE_ROW)
        return 0;
    return rc == SQLITE_DONE ? ERR_NOT_FOUND : sq_map_rc(rc);
}

/* Step an INSERT ... RETURNING <one integer> to completion. Stepped here
 * rather than through sq_first_row(), whose ERR_NOT_FOUND for "no row" would
 * be confused with a foreign key failure (also ERR_NOT_FOUND). */
int sq_run_returning(sqlite3_stmt *st, int bind_rc, int64_t *value)
{
    int rc = bind_rc != SQLITE_OK ? bind_rc : sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *value = sqlite3_column_int64(st, 0);
        rc = sqlite3_step(st);
    } else if (rc == SQLITE_DONE) {
        rc = SQLITE_MISUSE;         /* RETURNING always yields a row */
    }
    sq_release(st);
    return rc == SQLITE_DONE ? 0 : sq_map_rc(rc == SQLITE_ROW ? SQLITE_MISUSE : rc);
}

/* ---- binding and reading values ------------------------------------------ */

/* Bind a NUL-terminated string of 1..max bytes; longer or empty strings are
 * refused here so that every stored value fits the fixed struct fields. */
int sq_bind_str(sqlite3_stmt *st, int i, const char *v, size_t max, int *bad)
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
int sq_bind_slice(sqlite3_stmt *st, int i, struct slice v)
{
    if (v.len == 0)
        return sqlite3_bind_zeroblob(st, i, 0);
    return sqlite3_bind_blob64(st, i, v.p, v.len, SQLITE_STATIC);
}

int sq_bind_hash(sqlite3_stmt *st, int i, const uint8_t *hash)
{
    return sqlite3_bind_blob(st, i, hash, STORE_HASH_LEN, SQLITE_STATIC);
}

/* Copy a text column into a fixed field. A value that does not fit, or has
 * an embedded NUL, was not written by us: refuse it rather than truncate. */
int sq_read_str(sqlite3_stmt *st, int col, char *dst, size_t cap)
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
int sq_read_blob(sqlite3_stmt *st, int col, struct buf *b)
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

int sq_read_user(sqlite3_stmt *st, struct store_user *u)
{
    u->id = sqlite3_column_int64(st, 0);
    int rc = sq_read_str(st, 1, u->username, sizeof(u->username));
    rc = rc ? rc : sq_read_str(st, 2, u->role, sizeof(u->role));
    rc = rc ? rc : sq_read_str(st, 3, u->password_hash, sizeof(u->password_hash));
    u->created_at = sqlite3_column_int64(st, 4);
    u->disabled = sqlite3_column_int64(st, 5) != 0;
    u->password_gen = sqlite3_column_int64(st, 6);
    return rc;
}

/* Fill a note from a NOTE_COLS or NOTE_LIST_COLS row. */
int sq_read_note(sqlite3_stmt *st, struct store_note *n)
{
    n->id = sqlite3_column_int64(st, 0);
    n->owner_id = sqlite3_column_int64(st, 1);
    int64_t key_id = sqlite3_column_int64(st, 4);
    n->key_id = (uint32_t)key_id;
    n->created_at = sqlite3_column_int64(st, 5);
    n->updated_at = sqlite3_column_int64(st, 6);
    int rc = sq_read_blob(st, 2, &n->title);
    rc = rc ? rc : sq_read_blob(st, 3, &n->content);
    if (rc == 0 && (key_id < 0 || key_id > (int64_t)UINT32_MAX))
        rc = ERR_INTERNAL;          /* the schema's CHECK makes this impossible */
    return rc;
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
    /* 1000 pages is SQLite's default; 0 turns the automatic one off. Both
     * replace the commit hook (SQLite's autocheckpoint is one), so a hook
     * set with store_on_commit() comes back when it is off. */
    int rc = sq_map_rc(sqlite3_wal_autocheckpoint(s->db, on ? 1000 : 0));
    if (rc == 0 && !on && s->on_commit)
        store_on_commit(s, s->on_commit, s->on_commit_arg);
    return rc;
}

/* ---- transactions -------------------------------------------------------- */

int store_begin(struct store *s)
{
    sqlite3_stmt *st = sq_take(s, s->depth ? ST_SAVEPOINT : ST_BEGIN);
    int rc = st ? sq_run(st, SQLITE_OK) : ERR_INTERNAL;
    if (rc == 0)
        s->depth++;
    return rc;
}

/* Deferred: no lock until the first statement, then one read snapshot
 * (one lock taken and dropped) for every statement up to the end. */
int store_begin_read(struct store *s)
{
    if (s->depth)
        return ERR_INVALID;
    sqlite3_stmt *st = sq_take(s, ST_BEGIN_READ);
    int rc = st ? sq_run(st, SQLITE_OK) : ERR_INTERNAL;
    if (rc == 0)
        s->depth = 1;
    return rc;
}

/* SQLite ends the whole transaction by itself after some errors (disk
 * full, I/O): then every level is gone at once. */
static bool transaction_gone(struct store *s)
{
    if (!sqlite3_get_autocommit(s->db))
        return false;
    s->depth = 0;
    s->key_block_left = 0;     /* its raise may be gone with it */
    return true;
}

int store_commit(struct store *s)
{
    if (s->depth == 0 || transaction_gone(s))
        return ERR_INTERNAL;
    sqlite3_stmt *st = sq_take(s, s->depth > 1 ? ST_RELEASE : ST_COMMIT);
    int rc = st ? sq_run(st, SQLITE_OK) : ERR_INTERNAL;
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
    s->key_block_left = 0;     /* a reserved block may be undone here */
    if (s->depth == 0 || transaction_gone(s))
        return;
    if (s->depth > 1) {
        sqlite3_stmt *st = sq_take(s, ST_ROLLBACK_TO);
        int rc = st ? sq_run(st, SQLITE_OK) : ERR_INTERNAL;
        st = rc ? NULL : sq_take(s, ST_RELEASE);
        if (st && sq_run(st, SQLITE_OK) == 0) {
            s->depth--;
            return;
        }
        /* The savepoint cannot be undone alone: undo everything. */
    }
    sqlite3_stmt *st = sq_take(s, ST_ROLLBACK);
    if (st)
        sq_run(st, SQLITE_OK);
    s->depth = 0;
}

/* ---- key usage and maintenance ------------------------------------------- */

int store_key_use(struct store *s, uint32_t key_id, uint64_t n, uint64_t *total)
{
    sqlite3_stmt *st = sq_take(s, ST_KEY_USE);
    if (!st)
        return ERR_INTERNAL;
    if (n > (uint64_t)INT64_MAX)
        return ERR_INVALID;
    int rc = sqlite3_bind_int64(st, 1, (int64_t)key_id);
    rc = rc ? rc : sqlite3_bind_int64(st, 2, (int64_t)n);
    /* On overflow SQLite turns the sum into a REAL, which the STRICT
     * INTEGER column refuses (ERR_INVALID), so the count never wraps. */
    int64_t sum = 0;
    int r = sq_run_returning(st, rc, &sum);
    if (r == 0 && sum < 0)
        r = ERR_INTERNAL;
    if (r == 0 && total)
        *total = (uint64_t)sum;
    return r;
}

int store_key_reserve(struct store *s, uint32_t key_id, uint64_t n, uint64_t block, uint64_t *total,
                      uint64_t *added)
{
    *added = 0;
    if (s->key_block_left >= n && s->key_block_id == key_id) {
        s->key_block_left -= n;
        *total = s->key_block_total;
        return 0;
    }
    uint64_t raise = n > block ? n : block;
    s->key_block_left = 0;
    int rc = store_key_use(s, key_id, raise, total);
    if (rc)
        return rc;
    s->key_block_id = key_id;
    s->key_block_left = raise - n;
    s->key_block_total = *total;
    *added = raise;
    return 0;
}

/* PASSIVE copies back what no reader still needs and takes neither the
 * writer lock nor the busy handler: writers carry on, and a writer that
 * later finds the WAL fully copied back starts it over from the top. */
int store_checkpoint_passive(struct store *s, int *log_frames)
{
    sqlite3_stmt *st = sq_take(s, ST_CHECKPOINT_PASSIVE);
    if (!st)
        return ERR_INTERNAL;
    int rc = sq_first_row(st, SQLITE_OK);
    /* The row is (busy, log frames, checkpointed frames). */
    if (log_frames)
        *log_frames = rc == 0 ? sqlite3_column_int(st, 1) : 0;
    sq_release(st);
    return rc;
}

/* Under writes that never pause, PASSIVE never finds the log wholly copied
 * back at a moment no frame is being added, so no writer ever starts it
 * over and it grows without end. RESTART takes the writer lock (the event
 * loop's next write waits for it in turn: the frames added since the
 * PASSIVE pass and one fsync), copies the rest back and waits for readers
 * of the old log, so that the next writer starts it over. It waits at most
 * STORE_RESTART_WAIT_MS for the lock and for those readers, or a reader
 * that stays (the CLI, an erasure's checkpoint) would hold the loop's
 * writes for the whole busy timeout. */
int store_checkpoint_restart(struct store *s)
{
    sqlite3_stmt *st = sq_take(s, ST_CHECKPOINT_RESTART);
    if (!st)
        return ERR_INTERNAL;
    s->busy_cap_ms = STORE_RESTART_WAIT_MS;
    int rc = sq_first_row(st, SQLITE_OK);
    s->busy_cap_ms = 0;
    if (rc == 0 && sqlite3_column_int(st, 0) != 0)
        rc = ERR_IO;   /* busy: a reader still uses the log */
    sq_release(st);
    return rc;
}

static int on_commit(void *arg, sqlite3 *db, const char *name, int frames)
{
    (void)db;
    (void)name;
    struct store *s = arg;
    s->on_commit(s->on_commit_arg, frames);
    return SQLITE_OK;
}

void store_on_commit(struct store *s, void (*fn)(void *arg, int log_frames), void *arg)
{
    s->on_commit = fn;
    s->on_commit_arg = arg;
    sqlite3_wal_hook(s->db, fn ? on_commit : NULL, fn ? s : NULL);
}

/* The PASSIVE pass first leaves the TRUNCATE (which holds the writer lock
 * while it fsyncs) only the frames written in between. */
static int checkpoint_truncate(struct store *s, int wait_cap_ms)
{
    int rc = store_checkpoint_passive(s, NULL);
    sqlite3_stmt *st = rc ? NULL : sq_take(s, ST_CHECKPOINT);
    if (!st)
        return rc ? rc : ERR_INTERNAL;
    s->busy_cap_ms = wait_cap_ms;
    rc = sq_first_row(st, SQLITE_OK);
    s->busy_cap_ms = 0;
    /* The row is (busy, log frames, checkpointed frames); busy means a
     * reader kept the WAL from being copied back and truncated. */
    if (rc == 0 && sqlite3_column_int(st, 0) != 0)
        rc = ERR_IO;
    sq_release(st);
    return rc;
}

int store_checkpoint(struct store *s)
{
    return checkpoint_truncate(s, 0);
}

int store_checkpoint_brief(struct store *s)
{
    return checkpoint_truncate(s, STORE_RESTART_WAIT_MS);
}
