/*
 * store.h - persistent storage behind a small interface (SQLite today).
 *
 * The only module that knows SQL exists. Handlers call store_* functions and
 * never see a statement or a query string, so a second backend (PostgreSQL)
 * can be added behind the same functions. Values arrive and leave as plain
 * C types; encrypted columns are opaque blobs here (crypto.c seals them).
 *
 * Every statement is prepared once in store_open() with bound parameters; no
 * SQL text is ever built at run time. Ownership is enforced in the queries
 * themselves (WHERE id = ? AND owner_id = ?). One struct store belongs to one
 * thread (the event loop); store_open() a second one for another thread.
 *
 * Returns: 0; ERR_NOT_FOUND (no such row, or the row belongs to another
 * owner, or a referenced user does not exist); ERR_EXISTS (a unique key is
 * taken); ERR_INVALID (an argument is malformed or a CHECK constraint refused
 * it); ERR_LIMIT (a value exceeds the sizes below); ERR_NOMEM; ERR_INTERNAL
 * (a statement was re-entered, e.g. from a list callback); ERR_IO (anything
 * else SQLite reports: busy, disk full, corruption).
 */
#ifndef NOTESD_STORE_H
#define NOTESD_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "buf.h"

#define STORE_ROLE_MAX 16
#define STORE_USERNAME_MAX 32
#define STORE_PHC_MAX 160
#define STORE_HASH_LEN 32           /* token hash bytes */
#define STORE_NOTE_BLOB_MAX (256u * 1024u) /* largest sealed title or content */

struct store;

/**
 * Open (creating if needed) the database at `path`: WAL, foreign keys on,
 * secure_delete on, synchronous=NORMAL, a busy timeout, migrations to the
 * current PRAGMA user_version, then prepare every statement. Missing parent
 * folders are created 0700; the file is created 0600, and an existing file
 * readable by group or others is narrowed to its owner. A database whose
 * user_version is newer than this code is refused untouched. Safe to call
 * from several threads at once (each gets its own connection; migrations
 * run under BEGIN IMMEDIATE). On failure *out is NULL and the result is
 * ERR_IO (ERR_NOMEM) with a one-line reason and the path in `err`, never SQL
 * text nor sqlite3_errmsg() output.
 */
int store_open(struct store **out, const char *path, char *err, size_t errlen);
/** Finalize the statements and close. NULL is a no-op. */
void store_close(struct store *s);
/** How many times this connection has waited for a lock another one held
 *  (the event loop's connection should rarely wait, and never for long). */
uint64_t store_busy_waits(const struct store *s);
/** The linked SQLite version. */
const char *store_library_version(void);
/**
 * Turn SQLite's automatic WAL checkpoint (every ~1000 pages, run by the
 * committing connection) on or off for this connection. A connection on the
 * event loop turns it off and lets a thread-pool connection call
 * store_checkpoint(), because a checkpoint fsyncs. 0 or ERR_IO.
 */
int store_set_autocheckpoint(struct store *s, bool on);

/* Transactions group several calls (BEGIN IMMEDIATE / COMMIT / ROLLBACK).
 * They nest: store_begin() inside an open transaction opens a savepoint,
 * whose store_commit() keeps its changes for the outer level to commit and
 * whose store_rollback() undoes only them. (The router opens the outer
 * level around a request that changes data, so an audit record that cannot
 * be written undoes the handler's own transaction too.) When store_commit()
 * fails that level is rolled back before it returns. store_rollback() with
 * no transaction open does nothing. */
int store_begin(struct store *s);
/** A read transaction (BEGIN DEFERRED), ended with store_commit(): the
 *  statements in it share one snapshot and one set of locks. Only with no
 *  transaction open (else ERR_INVALID). A write inside it upgrades it. */
int store_begin_read(struct store *s);
int store_commit(struct store *s);
void store_rollback(struct store *s);

/* ---- users ---------------------------------------------------------------- */

struct store_user {
    int64_t id;
    char username[STORE_USERNAME_MAX + 1];
    char role[STORE_ROLE_MAX];       /* "user" or "admin" */
    char password_hash[STORE_PHC_MAX];
    int64_t created_at;              /* Unix seconds, UTC */
    bool disabled;
    int64_t password_gen;            /* +1 at each password change, not at a rehash */
};

/** ERR_EXISTS when the username is taken; ERR_INVALID for an empty or
 *  over-long username, role or PHC string, or a role the schema refuses
 *  (only "user" and "admin" pass its CHECK). Ids are never reused. */
int store_user_insert(struct store *s, const char *username, const char *role, const char *phc,
                      int64_t now, int64_t *id_out);
/** Fill *out (zeroed first) or ERR_NOT_FOUND. Usernames compare bytewise:
 *  the caller canonicalises them (validate.c) before insert and lookup. */
int store_user_get(struct store *s, int64_t id, struct store_user *out);
int store_user_get_by_name(struct store *s, const char *username, struct store_user *out);
/** Setters: ERR_NOT_FOUND when no user has that id; ERR_INVALID as for insert.
 *  store_user_set_password() is a password change: password_gen goes up. */
int store_user_set_password(struct store *s, int64_t id, const char *phc);
/** A rehash of the same password (new settings): `to` replaces `from` only
 *  while the account still holds `from`; password_gen stays. ERR_NOT_FOUND
 *  when it no longer does (changed, or another login upgraded it first). */
int store_user_upgrade_password(struct store *s, int64_t id, const char *from, const char *to);
int store_user_set_role(struct store *s, int64_t id, const char *role);
int store_user_set_disabled(struct store *s, int64_t id, bool disabled);
/** Call `cb` once for each distinct parameter text of the stored password
 *  hashes that start with `prefix` (what follows it up to the next '$',
 *  e.g. "m=19456,t=2,p=1"), until it returns non-zero (that is returned).
 *  Reads every account: for start-up. 0 or an ERR_* code. */
int store_user_param_sets(struct store *s, const char *prefix, int (*cb)(void *arg, const char *params),
                          void *arg);
/** Delete the user; notes and sessions go with it (ON DELETE CASCADE), and
 *  secure_delete zeroes the freed bytes. ERR_NOT_FOUND for an unknown id.
 *  Follow with store_checkpoint() so no copy survives in the WAL. */
int store_user_delete(struct store *s, int64_t id);
/** The same, only while the account still has password `password_gen`
 *  (a rehash keeps it), is enabled, and holds the session of `token_hash`
 *  (what an erasure checked when it was asked). ERR_NOT_FOUND when any of
 *  these changed. */
int store_user_delete_if_current(struct store *s, int64_t id, int64_t password_gen,
                                 const uint8_t token_hash[STORE_HASH_LEN]);

/* ---- sessions (bearer tokens; only their HMAC is stored) ----------------- */

struct store_session {
    int64_t user_id;
    char role[STORE_ROLE_MAX];       /* the user's current role */
    bool disabled;                   /* the user's current state */
    int64_t created_at, last_seen, expires_at;
};

/** created_at = last_seen = now, after ending the user's oldest sessions
 *  beyond the newest max_sessions - 1 (so it has at most max_sessions).
 *  ERR_EXISTS for a hash already stored, ERR_NOT_FOUND when the user does
 *  not exist. */
int store_session_insert(struct store *s, const uint8_t hash[STORE_HASH_LEN], int64_t user_id,
                         int64_t now, int64_t expires_at, uint32_t max_sessions);
/** Look a session up by token hash, joined with its user. Expiry is the
 *  caller's decision: an expired row is still returned. ERR_NOT_FOUND. */
int store_session_get(struct store *s, const uint8_t hash[STORE_HASH_LEN], struct store_session *out);
/** Set last_seen = now. ERR_NOT_FOUND when the session is gone. */
int store_session_touch(struct store *s, const uint8_t hash[STORE_HASH_LEN], int64_t now);
/** The deleting calls below are idempotent: 0 whether or not a row was
 *  there, because "this session no longer exists" is what callers want. */
int store_session_delete(struct store *s, const uint8_t hash[STORE_HASH_LEN]);
/** Delete every session of a user except `keep` (NULL: all of them). */
int store_session_delete_user(struct store *s, int64_t user_id, const uint8_t *keep);
/** Each session of a user, oldest first, to cb: its times only (user_id,
 *  created_at, last_seen, expires_at; never the token hash). A non-zero
 *  return from cb stops the walk. 0 or ERR_*. */
typedef int (*store_session_cb)(void *arg, const struct store_session *s);
int store_session_list(struct store *s, int64_t user_id, store_session_cb cb, void *arg);
/** Delete sessions with expires_at <= now or last_seen < idle_cutoff. */
int store_session_purge(struct store *s, int64_t now, int64_t idle_cutoff);

/* ---- notes (title and content are sealed blobs) ------------------------- */

struct store_note {
    int64_t id, owner_id;
    struct buf title;                /* sealed; store_note_init()ed, store fills */
    struct buf content;              /* sealed; left empty by list queries */
    uint32_t key_id;                 /* data key that sealed both */
    int64_t created_at, updated_at;
};

/** Caller-side helpers: init zeroes the fields and prepares both buffers
 *  (max STORE_NOTE_BLOB_MAX); cleanup wipes and frees them. */
void store_note_init(struct store_note *n);
void store_note_cleanup(struct store_note *n);

/** Reserve a row (empty blobs, key_id 0) to learn its id, which the AAD
 *  binds; fill it with store_note_update() inside the same transaction.
 *  Ids only grow (AUTOINCREMENT): a deleted note's id is never handed out
 *  again. ERR_NOT_FOUND when the owner does not exist. */
int store_note_insert(struct store *s, int64_t owner_id, int64_t now, int64_t *id_out);
/** Replace title and content of note `id` owned by `owner_id`. ERR_NOT_FOUND
 *  when no such note belongs to that owner; ERR_LIMIT past
 *  STORE_NOTE_BLOB_MAX. The slices are only read during the call. */
int store_note_update(struct store *s, int64_t id, int64_t owner_id, struct slice title,
                      struct slice content, uint32_t key_id, int64_t now);
/** One note of one owner (ERR_NOT_FOUND for another owner's note), with
 *  content; `out` must have been store_note_init()ed. */
int store_note_get_own(struct store *s, int64_t id, int64_t owner_id, struct store_note *out);
/** Any owner's note (administrators). */
int store_note_get_any(struct store *s, int64_t id, struct store_note *out);
/** ERR_NOT_FOUND (and nothing deleted) for another owner's note. */
int store_note_delete_own(struct store *s, int64_t id, int64_t owner_id);

/** Called once per listed note; return non-zero to stop. `n` and its bytes
 *  are valid only during the call (the store reuses and wipes them). The
 *  callback may call other store functions on the same struct store, but
 *  not the listing function that is calling it (that gives ERR_INTERNAL). */
typedef int (*store_note_cb)(void *arg, const struct store_note *n);
/**
 * Notes with id < before_id (INT64_MAX: from the newest), newest first, at
 * most `limit` (> 0, else ERR_INVALID), of `owner_id` (or of everybody when
 * owner_id is 0). With `with_content` the content blob is filled too
 * (export, rekey); without it `n->content` is empty. 0 also when the
 * callback stopped the listing; the callback is never called on failure
 * before the first row.
 */
int store_note_list(struct store *s, int64_t owner_id, int64_t before_id, int limit,
                    bool with_content, store_note_cb cb, void *arg);
/** What an account stores: its notes and their sealed bytes (title and
 *  content), kept up to date by store_note_insert/update/delete_own. */
struct store_usage {
    int64_t notes, bytes;
};
int store_usage_get(struct store *s, int64_t user_id, struct store_usage *out);
/** Up to `limit` notes with id > after_id sealed by a key other than
 *  `key_id`, with content, oldest first. The callback may
 *  store_note_update() the note it is given. */
int store_note_list_not_key(struct store *s, uint32_t key_id, int64_t after_id, int limit,
                            store_note_cb cb, void *arg);
/** How many notes a key other than `key_id` sealed. */
int store_note_count_not_key(struct store *s, uint32_t key_id, int64_t *count);

/* ---- data key usage (NIST SP 800-38D invocation limit) ------------------- */

/** Add n to the persistent count of encryptions under `key_id`; the new
 *  total is returned in *total (caller refuses past its limit). n above
 *  INT64_MAX is ERR_INVALID; a total that would pass INT64_MAX is refused
 *  (ERR_INVALID) and leaves the count as it was. */
int store_key_use(struct store *s, uint32_t key_id, uint64_t n, uint64_t *total);
/** store_key_use() for n encryptions about to happen, counted ahead in
 *  blocks: the count is raised by max(n, block) and later calls are served
 *  from the rest of that in memory, so most seals write nothing. Any
 *  rollback drops the rest (the raise may be undone with it), so the count
 *  is never below the encryptions done and at most one block above. *total
 *  is the persistent count, *added what this call added to it (0 when served
 *  from memory). Errors as store_key_use(). */
int store_key_reserve(struct store *s, uint32_t key_id, uint64_t n, uint64_t block, uint64_t *total,
                      uint64_t *added);

/** Copy the WAL back into the database as far as readers allow, without
 *  waiting for or blocking anyone (fsyncs: a thread-pool connection). The
 *  periodic checkpoint: the event loop's writes never wait for it. */
int store_checkpoint_passive(struct store *s, int *log_frames);
/** After store_checkpoint_passive(): copy back the rest and have the next
 *  write start the WAL over from its top (RESTART: takes the writer lock,
 *  so the event loop's next write waits for the few frames added in between
 *  and one fsync; waits at most STORE_RESTART_WAIT_MS for the lock and for
 *  readers of the old log). The bound on the WAL under writes that never
 *  pause. ERR_IO when the lock or a reader kept it from completing (try
 *  again later). */
#define STORE_RESTART_WAIT_MS 50
int store_checkpoint_restart(struct store *s);
/** Call fn(arg, frames now in the WAL) after each commit on this
 *  connection, on its thread (NULL: stop). Replaces SQLite's
 *  autocheckpoint, so only for a connection that has it off. */
void store_on_commit(struct store *s, void (*fn)(void *arg, int log_frames), void *arg);
/** Checkpoint and truncate the WAL (blocking, and writers wait for it: for
 *  erasure, on a thread-pool connection).
 *  ERR_IO when a reader kept the checkpoint from completing: then the WAL
 *  may still hold old pages, so callers erasing data retry later. */
int store_checkpoint(struct store *s);
/** store_checkpoint() waiting at most STORE_RESTART_WAIT_MS for the lock and
 *  for readers, as store_checkpoint_restart() does: the periodic job's
 *  truncation, which the event loop's next write may wait for. */
int store_checkpoint_brief(struct store *s);

#endif
