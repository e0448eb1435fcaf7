/*
 * store_rows.c - users, sessions and notes: each function runs statements
 * of store.c's table with bound values (the rules at the top of store.c
 * apply).
 */
#include "store_int.h"
#include "err.h"

#include <stdlib.h>
#include <string.h>

/* ---- users --------------------------------------------------------------- */

int store_user_insert(struct store *s, const char *username, const char *role, const char *phc,
                      int64_t now, int64_t *id_out)
{
    sqlite3_stmt *st = sq_take(s, ST_USER_INSERT);
    if (!st)
        return ERR_INTERNAL;
    int bad = 0;
    int rc = sq_bind_str(st, 1, username, STORE_USERNAME_MAX, &bad);
    rc = rc ? rc : sq_bind_str(st, 2, role, STORE_ROLE_MAX - 1, &bad);
    rc = rc ? rc : sq_bind_str(st, 3, phc, STORE_PHC_MAX - 1, &bad);
    rc = rc ? rc : sqlite3_bind_int64(st, 4, now);
    if (bad) {
        sq_release(st);
        return bad;
    }
    int64_t id = 0;
    int r = sq_run_returning(st, rc, &id);
    if (r == 0 && id_out)
        *id_out = id;
    return r;
}

static int user_get(sqlite3_stmt *st, int bind_rc, struct store_user *out)
{
    memset(out, 0, sizeof(*out));
    int rc = sq_first_row(st, bind_rc);
    if (rc == 0)
        rc = sq_read_user(st, out);
    sq_release(st);
    if (rc)
        memset(out, 0, sizeof(*out));   /* no half-filled user on failure */
    return rc;
}

int store_user_get(struct store *s, int64_t id, struct store_user *out)
{
    sqlite3_stmt *st = sq_take(s, ST_USER_GET);
    if (!st)
        return ERR_INTERNAL;
    return user_get(st, sqlite3_bind_int64(st, 1, id), out);
}

int store_user_get_by_name(struct store *s, const char *username, struct store_user *out)
{
    sqlite3_stmt *st = sq_take(s, ST_USER_GET_BY_NAME);
    if (!st)
        return ERR_INTERNAL;
    int bad = 0;
    int rc = sq_bind_str(st, 1, username, STORE_USERNAME_MAX, &bad);
    if (bad) {
        /* A name no user can have: answer like any unknown name. */
        sq_release(st);
        memset(out, 0, sizeof(*out));
        return ERR_NOT_FOUND;
    }
    return user_get(st, rc, out);
}

/* The three setters differ only in statement and value. */
static int user_set_str(struct store *s, enum stmt id, int64_t user_id, const char *v, size_t max)
{
    sqlite3_stmt *st = sq_take(s, id);
    if (!st)
        return ERR_INTERNAL;
    int bad = 0;
    int rc = sqlite3_bind_int64(st, 1, user_id);
    rc = rc ? rc : sq_bind_str(st, 2, v, max, &bad);
    if (bad) {
        sq_release(st);
        return bad;
    }
    return sq_run_change(s, st, rc);
}

int store_user_set_password(struct store *s, int64_t id, const char *phc)
{
    return user_set_str(s, ST_USER_SET_PASSWORD, id, phc, STORE_PHC_MAX - 1);
}

int store_user_upgrade_password(struct store *s, int64_t id, const char *from, const char *to)
{
    sqlite3_stmt *st = sq_take(s, ST_USER_UPGRADE_PASSWORD);
    if (!st)
        return ERR_INTERNAL;
    int bad = 0;
    int rc = sqlite3_bind_int64(st, 1, id);
    rc = rc ? rc : sq_bind_str(st, 2, from, STORE_PHC_MAX - 1, &bad);
    rc = rc ? rc : sq_bind_str(st, 3, to, STORE_PHC_MAX - 1, &bad);
    if (bad) {
        sq_release(st);
        return bad;
    }
    return sq_run_change(s, st, rc);
}

int store_user_param_sets(struct store *s, const char *prefix, int (*cb)(void *arg, const char *params),
                          void *arg)
{
    if (!prefix || !*prefix || !cb)
        return ERR_INVALID;
    sqlite3_stmt *st = sq_take(s, ST_USER_PARAM_SETS);
    if (!st)
        return ERR_INTERNAL;
    int rc = sq_map_rc(sqlite3_bind_text(st, 1, prefix, -1, SQLITE_STATIC));
    while (rc == 0) {
        int step = sqlite3_step(st);
        if (step != SQLITE_ROW) {
            rc = sq_map_rc(step);
            break;
        }
        const unsigned char *text = sqlite3_column_text(st, 0);
        rc = text ? cb(arg, (const char *)text) : ERR_NOMEM;
        if (rc)
            break;
    }
    sq_release(st);
    return rc;
}

int store_user_set_role(struct store *s, int64_t id, const char *role)
{
    return user_set_str(s, ST_USER_SET_ROLE, id, role, STORE_ROLE_MAX - 1);
}

int store_user_set_disabled(struct store *s, int64_t id, bool disabled)
{
    sqlite3_stmt *st = sq_take(s, ST_USER_SET_DISABLED);
    if (!st)
        return ERR_INTERNAL;
    int rc = sqlite3_bind_int64(st, 1, id);
    rc = rc ? rc : sqlite3_bind_int(st, 2, disabled ? 1 : 0);
    return sq_run_change(s, st, rc);
}

int store_user_delete(struct store *s, int64_t id)
{
    sqlite3_stmt *st = sq_take(s, ST_USER_DELETE);
    if (!st)
        return ERR_INTERNAL;
    return sq_run_change(s, st, sqlite3_bind_int64(st, 1, id));
}

int store_user_delete_if_current(struct store *s, int64_t id, int64_t password_gen,
                                 const uint8_t token_hash[STORE_HASH_LEN])
{
    sqlite3_stmt *st = sq_take(s, ST_USER_DELETE_IF_CURRENT);
    if (!st)
        return ERR_INTERNAL;
    if (!token_hash)
        return ERR_INVALID;
    int rc = sqlite3_bind_int64(st, 1, id);
    rc = rc ? rc : sqlite3_bind_int64(st, 2, password_gen);
    rc = rc ? rc : sqlite3_bind_blob(st, 3, token_hash, STORE_HASH_LEN, SQLITE_STATIC);
    return sq_run_change(s, st, rc);
}

/* ---- sessions ------------------------------------------------------------ */

/* The oldest sessions beyond the newest `keep` of a user end. */
static int session_trim(struct store *s, int64_t user_id, uint32_t keep)
{
    sqlite3_stmt *st = sq_take(s, ST_SESSION_TRIM);
    if (!st)
        return ERR_INTERNAL;
    int rc = sqlite3_bind_int64(st, 1, user_id);
    rc = rc ? rc : sqlite3_bind_int64(st, 2, keep);
    return sq_run(st, rc);
}

int store_session_insert(struct store *s, const uint8_t hash[STORE_HASH_LEN], int64_t user_id,
                         int64_t now, int64_t expires_at, uint32_t max_sessions)
{
    if (!hash || max_sessions == 0)
        return ERR_INVALID;
    int rc = session_trim(s, user_id, max_sessions - 1);
    if (rc)
        return rc;
    sqlite3_stmt *st = sq_take(s, ST_SESSION_INSERT);
    if (!st)
        return ERR_INTERNAL;
    rc = sq_bind_hash(st, 1, hash);
    rc = rc ? rc : sqlite3_bind_int64(st, 2, user_id);
    rc = rc ? rc : sqlite3_bind_int64(st, 3, now);
    rc = rc ? rc : sqlite3_bind_int64(st, 4, expires_at);
    return sq_run(st, rc);
}

int store_session_list(struct store *s, int64_t user_id, store_session_cb cb, void *arg)
{
    if (!cb)
        return ERR_INVALID;
    sqlite3_stmt *st = sq_take(s, ST_SESSION_LIST_USER);
    if (!st)
        return ERR_INTERNAL;
    int rc = sq_map_rc(sqlite3_bind_int64(st, 1, user_id));
    while (rc == 0) {
        int step = sqlite3_step(st);
        if (step != SQLITE_ROW) {
            rc = sq_map_rc(step);
            break;
        }
        struct store_session out = { .user_id = user_id, .created_at = sqlite3_column_int64(st, 0),
                                     .last_seen = sqlite3_column_int64(st, 1),
                                     .expires_at = sqlite3_column_int64(st, 2) };
        if (cb(arg, &out) != 0)
            break;
    }
    sq_release(st);
    return rc;
}

int store_session_get(struct store *s, const uint8_t hash[STORE_HASH_LEN], struct store_session *out)
{
    sqlite3_stmt *st = sq_take(s, ST_SESSION_GET);
    if (!st)
        return ERR_INTERNAL;
    memset(out, 0, sizeof(*out));
    if (!hash)
        return ERR_INVALID;
    int rc = sq_first_row(st, sq_bind_hash(st, 1, hash));
    if (rc == 0) {
        out->user_id = sqlite3_column_int64(st, 0);
        rc = sq_read_str(st, 1, out->role, sizeof(out->role));
        out->disabled = sqlite3_column_int64(st, 2) != 0;
        out->created_at = sqlite3_column_int64(st, 3);
        out->last_seen = sqlite3_column_int64(st, 4);
        out->expires_at = sqlite3_column_int64(st, 5);
    }
    sq_release(st);
    if (rc)
        memset(out, 0, sizeof(*out));
    return rc;
}

int store_session_touch(struct store *s, const uint8_t hash[STORE_HASH_LEN], int64_t now)
{
    sqlite3_stmt *st = sq_take(s, ST_SESSION_TOUCH);
    if (!st)
        return ERR_INTERNAL;
    if (!hash)
        return ERR_INVALID;
    int rc = sq_bind_hash(st, 1, hash);
    rc = rc ? rc : sqlite3_bind_int64(st, 2, now);
    return sq_run_change(s, st, rc);
}

int store_session_delete(struct store *s, const uint8_t hash[STORE_HASH_LEN])
{
    sqlite3_stmt *st = sq_take(s, ST_SESSION_DELETE);
    if (!st)
        return ERR_INTERNAL;
    if (!hash)
        return ERR_INVALID;
    return sq_run(st, sq_bind_hash(st, 1, hash));
}

int store_session_delete_user(struct store *s, int64_t user_id, const uint8_t *keep)
{
    sqlite3_stmt *st = sq_take(s, keep ? ST_SESSION_DELETE_USER_KEEP : ST_SESSION_DELETE_USER);
    if (!st)
        return ERR_INTERNAL;
    int rc = sqlite3_bind_int64(st, 1, user_id);
    if (keep)
        rc = rc ? rc : sq_bind_hash(st, 2, keep);
    return sq_run(st, rc);
}

int store_session_purge(struct store *s, int64_t now, int64_t idle_cutoff)
{
    sqlite3_stmt *st = sq_take(s, ST_SESSION_PURGE);
    if (!st)
        return ERR_INTERNAL;
    int rc = sqlite3_bind_int64(st, 1, now);
    rc = rc ? rc : sqlite3_bind_int64(st, 2, idle_cutoff);
    return sq_run(st, rc);
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

/* ---- what an account stores ---------------------------------------------- */

int store_usage_get(struct store *s, int64_t user_id, struct store_usage *out)
{
    sqlite3_stmt *st = sq_take(s, ST_USAGE_GET);
    if (!st)
        return ERR_INTERNAL;
    int rc = sq_first_row(st, sqlite3_bind_int64(st, 1, user_id));
    if (rc == 0) {
        out->notes = sqlite3_column_int64(st, 0);
        out->bytes = sqlite3_column_int64(st, 1);
    }
    sq_release(st);
    return rc;
}

/* Run usage statement `which` for note `id` of `owner_id`; `bytes`, the
 * note's new sealed size, goes to the statement that takes it (?3). */
static int usage_change(struct store *s, enum stmt which, int64_t id, int64_t owner_id, int64_t bytes)
{
    sqlite3_stmt *st = sq_take(s, which);
    if (!st)
        return ERR_INTERNAL;
    int rc = sqlite3_bind_int64(st, 1, id);
    rc = rc ? rc : sqlite3_bind_int64(st, 2, owner_id);
    if (rc == 0 && sqlite3_bind_parameter_count(st) == 3)
        rc = sqlite3_bind_int64(st, 3, bytes);
    return sq_run(st, rc);
}

int store_note_insert(struct store *s, int64_t owner_id, int64_t now, int64_t *id_out)
{
    sqlite3_stmt *st = sq_take(s, ST_NOTE_INSERT);
    if (!st)
        return ERR_INTERNAL;
    int rc = sqlite3_bind_int64(st, 1, owner_id);
    rc = rc ? rc : sqlite3_bind_int64(st, 2, now);
    int64_t id = 0;
    int r = sq_run_returning(st, rc, &id);
    r = r ? r : usage_change(s, ST_USAGE_NOTE_ADDED, id, owner_id, 0);
    if (r == 0 && id_out)
        *id_out = id;
    return r;
}

int store_note_update(struct store *s, int64_t id, int64_t owner_id, struct slice title,
                      struct slice content, uint32_t key_id, int64_t now)
{
    sqlite3_stmt *st = sq_take(s, ST_NOTE_UPDATE);
    if (!st)
        return ERR_INTERNAL;
    /* Refused here so that whatever is stored can be read back into a
     * store_note's buffers. */
    if (title.len > STORE_NOTE_BLOB_MAX || content.len > STORE_NOTE_BLOB_MAX)
        return ERR_LIMIT;
    if ((title.len && !title.p) || (content.len && !content.p))
        return ERR_INVALID;
    int rc = usage_change(s, ST_USAGE_NOTE_SET, id, owner_id, (int64_t)(title.len + content.len));
    if (rc)
        return rc;
    rc = sqlite3_bind_int64(st, 1, id);
    rc = rc ? rc : sqlite3_bind_int64(st, 2, owner_id);
    rc = rc ? rc : sq_bind_slice(st, 3, title);
    rc = rc ? rc : sq_bind_slice(st, 4, content);
    rc = rc ? rc : sqlite3_bind_int64(st, 5, (int64_t)key_id);
    rc = rc ? rc : sqlite3_bind_int64(st, 6, now);
    return sq_run_change(s, st, rc);
}

/* Fetch one note into the caller's store_note. */
static int note_get(sqlite3_stmt *st, int bind_rc, struct store_note *out)
{
    int rc = sq_first_row(st, bind_rc);
    if (rc == 0)
        rc = sq_read_note(st, out);
    sq_release(st);
    if (rc) {
        buf_reset(&out->title);
        buf_reset(&out->content);
    }
    return rc;
}

int store_note_get_own(struct store *s, int64_t id, int64_t owner_id, struct store_note *out)
{
    sqlite3_stmt *st = sq_take(s, ST_NOTE_GET_OWN);
    if (!st)
        return ERR_INTERNAL;
    int rc = sqlite3_bind_int64(st, 1, id);
    rc = rc ? rc : sqlite3_bind_int64(st, 2, owner_id);
    return note_get(st, rc, out);
}

int store_note_get_any(struct store *s, int64_t id, struct store_note *out)
{
    sqlite3_stmt *st = sq_take(s, ST_NOTE_GET_ANY);
    if (!st)
        return ERR_INTERNAL;
    return note_get(st, sqlite3_bind_int64(st, 1, id), out);
}

int store_note_delete_own(struct store *s, int64_t id, int64_t owner_id)
{
    int rc = usage_change(s, ST_USAGE_NOTE_GONE, id, owner_id, 0);
    if (rc)
        return rc;
    sqlite3_stmt *st = sq_take(s, ST_NOTE_DELETE_OWN);
    if (!st)
        return ERR_INTERNAL;
    rc = sqlite3_bind_int64(st, 1, id);
    rc = rc ? rc : sqlite3_bind_int64(st, 2, owner_id);
    return sq_run_change(s, st, rc);
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
    int rc = bind_rc != SQLITE_OK ? sq_map_rc(bind_rc) : 0;
    while (rc == 0) {
        int step = sqlite3_step(st);
        if (step != SQLITE_ROW) {
            rc = sq_map_rc(step);
            break;
        }
        rc = sq_read_note(st, &n);
        if (rc == 0 && cb(arg, &n) != 0)
            break;                  /* the caller has what it wanted */
    }
    sq_release(st);
    store_note_cleanup(&n);
    return rc;
}

int store_note_list(struct store *s, int64_t owner_id, int64_t before_id, int limit,
                    bool with_content, store_note_cb cb, void *arg)
{
    sqlite3_stmt *st = sq_take(s, owner_id == 0 ? ST_NOTE_LIST_ALL : ST_NOTE_LIST_OWNER);
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

int store_note_list_not_key(struct store *s, uint32_t key_id, int64_t after_id, int limit,
                            store_note_cb cb, void *arg)
{
    sqlite3_stmt *st = sq_take(s, ST_NOTE_LIST_NOT_KEY);
    if (!st)
        return ERR_INTERNAL;
    if (limit <= 0 || !cb)
        return ERR_INVALID;
    int rc = sqlite3_bind_int64(st, 1, (int64_t)key_id);
    rc = rc ? rc : sqlite3_bind_int64(st, 2, after_id);
    rc = rc ? rc : sqlite3_bind_int(st, 3, limit);
    return each_note(st, rc, cb, arg);
}

int store_note_count_not_key(struct store *s, uint32_t key_id, int64_t *count)
{
    sqlite3_stmt *st = sq_take(s, ST_NOTE_COUNT_NOT_KEY);
    if (!st)
        return ERR_INTERNAL;
    return sq_run_returning(st, sqlite3_bind_int64(st, 1, (int64_t)key_id), count);
}
