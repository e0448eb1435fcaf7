/*
 * store_int.h - what the store's files (store*.c) share: the statement ids,
 * the handle, and the helpers that run statements and move values in and
 * out. Nothing outside store*.c includes this (or sqlite3.h).
 */
#ifndef NOTESD_STORE_INT_H
#define NOTESD_STORE_INT_H

#include <sqlite3.h>
#include "store.h"

enum stmt {
    ST_BEGIN,
    ST_BEGIN_READ,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_SAVEPOINT,
    ST_RELEASE,
    ST_ROLLBACK_TO,
    ST_USER_INSERT,
    ST_USER_GET,
    ST_USER_GET_BY_NAME,
    ST_USER_SET_PASSWORD,
    ST_USER_UPGRADE_PASSWORD,
    ST_USER_PARAM_SETS,
    ST_USER_SET_ROLE,
    ST_USER_SET_DISABLED,
    ST_USER_DELETE,
    ST_USER_DELETE_IF_CURRENT,
    ST_SESSION_INSERT,
    ST_SESSION_GET,
    ST_SESSION_TOUCH,
    ST_SESSION_DELETE,
    ST_SESSION_DELETE_USER,
    ST_SESSION_DELETE_USER_KEEP,
    ST_SESSION_PURGE,
    ST_SESSION_LIST_USER,
    ST_NOTE_INSERT,
    ST_NOTE_UPDATE,
    ST_NOTE_GET_OWN,
    ST_NOTE_GET_ANY,
    ST_NOTE_DELETE_OWN,
    ST_NOTE_LIST_OWNER,
    ST_NOTE_LIST_ALL,
    ST_NOTE_LIST_NOT_KEY,
    ST_USAGE_GET,
    ST_USAGE_NOTE_ADDED,
    ST_USAGE_NOTE_SET,
    ST_USAGE_NOTE_GONE,
    ST_SESSION_TRIM,
    ST_NOTE_COUNT_NOT_KEY,
    ST_KEY_USE,
    ST_CHECKPOINT_PASSIVE,
    ST_CHECKPOINT_RESTART,
    ST_CHECKPOINT,
    ST_COUNT
};

/** The SQL of every statement, by id (store.c). */
extern const char *const store_stmt_sql[ST_COUNT];

struct store {
    sqlite3 *db;
    sqlite3_stmt *stmt[ST_COUNT];
    int depth;                 /* open store_begin()s: 1 transaction + savepoints */
    uint64_t busy_waits;       /* lock waits begun (store_busy_waits) */
    long busy_cap_ms;          /* 0: BUSY_TIMEOUT_MS (store_open.c) */
    void (*on_commit)(void *arg, int log_frames);   /* store_on_commit */
    void *on_commit_arg;
    /* store_key_reserve's block: counted in the database, not yet used. */
    uint32_t key_block_id;
    uint64_t key_block_left, key_block_total;
};

/* ---- helpers (store.c) ----------------------------------------------------
 * Every statement is taken with sq_take(), bound, run by one of the sq_run*
 * functions (which release it: reset and unbind) and never kept stepped. */

/** An SQLite (extended) result code as an ERR_* code. */
int sq_map_rc(int rc);
/** Statement `id`, or NULL while it is in the middle of a listing. */
sqlite3_stmt *sq_take(struct store *s, enum stmt id);
/** Reset and unbind. */
void sq_release(sqlite3_stmt *st);
/** Run a statement that returns no rows (bind_rc carries binding errors),
 *  then release it. 0 or ERR_*. */
int sq_run(sqlite3_stmt *st, int bind_rc);
/** sq_run(), and ERR_NOT_FOUND when no row changed. */
int sq_run_change(struct store *s, sqlite3_stmt *st, int bind_rc);
/** Step to the first row and keep it for reading (the caller releases);
 *  ERR_NOT_FOUND when there is none. */
int sq_first_row(sqlite3_stmt *st, int bind_rc);
/** Step an INSERT ... RETURNING <one integer> to completion, then release. */
int sq_run_returning(sqlite3_stmt *st, int bind_rc, int64_t *value);
/** Bind a NUL-terminated string of 1..max bytes (else refused, *bad set). */
int sq_bind_str(sqlite3_stmt *st, int i, const char *v, size_t max, int *bad);
int sq_bind_slice(sqlite3_stmt *st, int i, struct slice v);
int sq_bind_hash(sqlite3_stmt *st, int i, const uint8_t *hash);
/** Copy a text column into a fixed field; refused when it does not fit or
 *  holds a NUL. */
int sq_read_str(sqlite3_stmt *st, int col, char *dst, size_t cap);
/** Copy a blob column into b. */
int sq_read_blob(sqlite3_stmt *st, int col, struct buf *b);
/** A user row (USER_COLS) / a note row (NOTE_COLS) from the current step. */
int sq_read_user(sqlite3_stmt *st, struct store_user *u);
int sq_read_note(sqlite3_stmt *st, struct store_note *n);

#endif
