/*
 * Unit tests of store.c's users and sessions: insert, get and setters,
 * field checks, sessions (touch, delete, purge, the per-account cap),
 * deleting a user and erasure, password generations, and the stored
 * password-hash settings read at start-up. Fixture and helpers:
 * store_support.h.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "app.h"
#include "err.h"
#include "store_support.h"

/* A user with password hash `phc`, read back into *u; returns its id. */
static int64_t add_user_phc(struct store *s, const char *name, const char *phc, struct store_user *u)
{
    int64_t id = 0;
    cr_assert_eq(store_user_insert(s, name, "user", phc, 1, &id), 0);
    cr_assert_eq(store_user_get(s, id, u), 0);
    return id;
}

/* Searched in a child process: the parent may have a connection open on
 * the file, and closing a descriptor of it here would drop that
 * connection's POSIX locks. Exit 0 found, 1 not found, 2 no file. */
static bool file_contains(const char *path, const char *needle)
{
    fflush(NULL);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        FILE *f = fopen(path, "rb");
        if (!f)
            _exit(errno == ENOENT ? 1 : 2);
        size_t cap = 1 << 20, len = 0, n;
        uint8_t *p = malloc(cap);
        if (!p)
            _exit(2);
        while ((n = fread(p + len, 1, cap - len, f)) > 0) {
            len += n;
            if (len == cap && !(p = realloc(p, cap *= 2)))
                _exit(2);
        }
        _exit(memmem(p, len, needle, strlen(needle)) ? 0 : 1);
    }
    int status = 0;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) < 2, "cannot read %s", path);
    return WEXITSTATUS(status) == 0;
}

/* ---- users --------------------------------------------------------------- */

Test(store, user_insert_get_and_get_by_name)
{
    struct store *s = open_db();
    int64_t id = 0;
    cr_assert_eq(store_user_insert(s, "alice", "admin", "$argon2id$phc", 1234, &id), 0);
    struct store_user u, v;
    cr_assert_eq(store_user_get(s, id, &u), 0);
    cr_assert_eq(u.id, id);
    cr_assert_str_eq(u.username, "alice");
    cr_assert_str_eq(u.role, "admin");
    cr_assert_str_eq(u.password_hash, "$argon2id$phc");
    cr_assert_eq(u.created_at, 1234);
    cr_assert_eq(u.disabled, false);
    cr_assert_eq(store_user_get_by_name(s, "alice", &v), 0);
    cr_assert_eq(memcmp(&u, &v, sizeof(u)), 0);
    cr_assert_eq(store_user_get(s, id + 100, &u), ERR_NOT_FOUND);
    cr_assert_eq(store_user_get_by_name(s, "Alice", &u), ERR_NOT_FOUND);
    cr_assert_eq(store_user_get_by_name(s, "a-name-far-longer-than-thirty-two-bytes", &u), ERR_NOT_FOUND);
    store_close(s);
}

Test(store, duplicate_username_is_exists)
{
    struct store *s = open_db();
    add_user(s, "alice", "user");
    int64_t id = -5;
    cr_assert_eq(store_user_insert(s, "alice", "admin", "phc", 1, &id), ERR_EXISTS);
    cr_assert_eq(id, -5, "id written on failure");
    store_close(s);
}

Test(store, user_setters)
{
    struct store *s = open_db();
    int64_t id = add_user(s, "alice", "user");
    struct store_user u;
    cr_assert_eq(store_user_set_password(s, id, "$argon2id$new"), 0);
    cr_assert_eq(store_user_set_role(s, id, "admin"), 0);
    cr_assert_eq(store_user_set_disabled(s, id, true), 0);
    cr_assert_eq(store_user_get(s, id, &u), 0);
    cr_assert_str_eq(u.password_hash, "$argon2id$new");
    cr_assert_str_eq(u.role, "admin");
    cr_assert(u.disabled);
    cr_assert_eq(store_user_set_disabled(s, id, false), 0);
    cr_assert_eq(store_user_get(s, id, &u), 0);
    cr_assert_not(u.disabled);

    cr_assert_eq(store_user_set_password(s, id + 1, "x"), ERR_NOT_FOUND);
    cr_assert_eq(store_user_set_role(s, id + 1, "user"), ERR_NOT_FOUND);
    cr_assert_eq(store_user_set_disabled(s, id + 1, true), ERR_NOT_FOUND);
    store_close(s);
}

Test(store, invalid_role_is_refused_by_check)
{
    struct store *s = open_db();
    int64_t id = 0;
    cr_assert_eq(store_user_insert(s, "mallory", "root", "phc", 1, &id), ERR_INVALID);
    struct store_user u;
    cr_assert_eq(store_user_get_by_name(s, "mallory", &u), ERR_NOT_FOUND);

    id = add_user(s, "alice", "user");
    cr_assert_eq(store_user_set_role(s, id, "superuser"), ERR_INVALID);
    cr_assert_eq(store_user_set_role(s, id, "Admin"), ERR_INVALID);
    cr_assert_eq(store_user_get(s, id, &u), 0);
    cr_assert_str_eq(u.role, "user");
    store_close(s);
}

Test(store, oversized_or_empty_user_fields_are_refused)
{
    struct store *s = open_db();
    int64_t id = 0;
    char longname[STORE_USERNAME_MAX + 2];
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    cr_assert_eq(store_user_insert(s, longname, "user", "phc", 1, &id), ERR_INVALID);
    longname[STORE_USERNAME_MAX] = '\0';                 /* exactly the maximum */
    cr_assert_eq(store_user_insert(s, longname, "user", "phc", 1, &id), 0);
    cr_assert_eq(store_user_insert(s, "", "user", "phc", 1, &id), ERR_INVALID);
    cr_assert_eq(store_user_insert(s, "bob", "user", "", 1, &id), ERR_INVALID);
    cr_assert_eq(store_user_insert(s, NULL, "user", "phc", 1, &id), ERR_INVALID);
    char longphc[STORE_PHC_MAX + 1];
    memset(longphc, 'p', sizeof(longphc) - 1);
    longphc[sizeof(longphc) - 1] = '\0';
    cr_assert_eq(store_user_insert(s, "bob", "user", longphc, 1, &id), ERR_INVALID);
    cr_assert_eq(store_user_set_password(s, id, longphc), ERR_INVALID);
    /* The statements were released after each refusal: the next call works. */
    add_user(s, "bob", "user");
    store_close(s);
}

Test(store, user_ids_are_not_reused)
{
    struct store *s = open_db();
    int64_t a = add_user(s, "alice", "user");
    cr_assert_eq(store_user_delete(s, a), 0);
    int64_t b = add_user(s, "bob", "user");
    cr_assert_gt(b, a);
    cr_assert_eq(store_user_delete(s, a), ERR_NOT_FOUND);
    store_close(s);
}

/* ---- sessions ------------------------------------------------------------ */

Test(store, session_insert_get_joins_user)
{
    struct store *s = open_db();
    int64_t uid = add_user(s, "alice", "user");
    uint8_t h[STORE_HASH_LEN], other[STORE_HASH_LEN];
    hash_of(h, 1);
    hash_of(other, 2);
    cr_assert_eq(store_session_insert(s, h, uid, 100, 500, 16), 0);
    struct store_session ss;
    cr_assert_eq(store_session_get(s, h, &ss), 0);
    cr_assert_eq(ss.user_id, uid);
    cr_assert_str_eq(ss.role, "user");
    cr_assert_not(ss.disabled);
    cr_assert_eq(ss.created_at, 100);
    cr_assert_eq(ss.last_seen, 100);
    cr_assert_eq(ss.expires_at, 500);
    cr_assert_eq(store_session_get(s, other, &ss), ERR_NOT_FOUND);

    /* The join reflects the user's current role and state. */
    cr_assert_eq(store_user_set_role(s, uid, "admin"), 0);
    cr_assert_eq(store_user_set_disabled(s, uid, true), 0);
    cr_assert_eq(store_session_get(s, h, &ss), 0);
    cr_assert_str_eq(ss.role, "admin");
    cr_assert(ss.disabled);

    cr_assert_eq(store_session_insert(s, h, uid, 1, 2, 16), ERR_EXISTS);
    store_close(s);
}

Test(store, session_touch_and_delete)
{
    struct store *s = open_db();
    int64_t uid = add_user(s, "alice", "user");
    uint8_t h[STORE_HASH_LEN], other[STORE_HASH_LEN];
    hash_of(h, 1);
    hash_of(other, 2);
    cr_assert_eq(store_session_insert(s, h, uid, 100, 500, 16), 0);
    cr_assert_eq(store_session_touch(s, h, 250), 0);
    struct store_session ss;
    cr_assert_eq(store_session_get(s, h, &ss), 0);
    cr_assert_eq(ss.last_seen, 250);
    cr_assert_eq(ss.created_at, 100);
    cr_assert_eq(store_session_touch(s, other, 250), ERR_NOT_FOUND);

    cr_assert_eq(store_session_delete(s, h), 0);
    cr_assert_eq(store_session_get(s, h, &ss), ERR_NOT_FOUND);
    cr_assert_eq(store_session_delete(s, h), 0, "deleting is idempotent");
    cr_assert_eq(store_session_touch(s, h, 300), ERR_NOT_FOUND);
    store_close(s);
}

Test(store, session_delete_user_all_or_all_but_one)
{
    struct store *s = open_db();
    int64_t a = add_user(s, "alice", "user");
    int64_t b = add_user(s, "bob", "user");
    uint8_t h[4][STORE_HASH_LEN];
    for (int i = 0; i < 4; i++)
        hash_of(h[i], (uint8_t)(i + 1));
    cr_assert_eq(store_session_insert(s, h[0], a, 1, 1000, 16), 0);
    cr_assert_eq(store_session_insert(s, h[1], a, 1, 1000, 16), 0);
    cr_assert_eq(store_session_insert(s, h[2], a, 1, 1000, 16), 0);
    cr_assert_eq(store_session_insert(s, h[3], b, 1, 1000, 16), 0);
    struct store_session ss;

    cr_assert_eq(store_session_delete_user(s, a, h[1]), 0);
    cr_assert_eq(store_session_get(s, h[0], &ss), ERR_NOT_FOUND);
    cr_assert_eq(store_session_get(s, h[1], &ss), 0, "the kept session was deleted");
    cr_assert_eq(store_session_get(s, h[2], &ss), ERR_NOT_FOUND);
    cr_assert_eq(store_session_get(s, h[3], &ss), 0, "another user's session was deleted");

    /* `keep` naming another user's session protects nothing of alice's. */
    cr_assert_eq(store_session_insert(s, h[0], a, 1, 1000, 16), 0);
    cr_assert_eq(store_session_delete_user(s, a, h[3]), 0);
    cr_assert_eq(store_session_get(s, h[0], &ss), ERR_NOT_FOUND);
    cr_assert_eq(store_session_get(s, h[1], &ss), ERR_NOT_FOUND);
    cr_assert_eq(store_session_get(s, h[3], &ss), 0);

    cr_assert_eq(store_session_delete_user(s, b, NULL), 0);
    cr_assert_eq(store_session_get(s, h[3], &ss), ERR_NOT_FOUND);
    store_close(s);
}

Test(store, session_purge_expired_and_idle)
{
    struct store *s = open_db();
    int64_t uid = add_user(s, "alice", "user");
    uint8_t fresh[STORE_HASH_LEN], expired[STORE_HASH_LEN], idle[STORE_HASH_LEN], edge[STORE_HASH_LEN];
    hash_of(fresh, 1);
    hash_of(expired, 2);
    hash_of(idle, 3);
    hash_of(edge, 4);
    const int64_t now = 10000, cutoff = 9000;
    cr_assert_eq(store_session_insert(s, fresh, uid, 9500, now + 100, 16), 0);
    cr_assert_eq(store_session_insert(s, expired, uid, 9500, now, 16), 0);       /* expires exactly now */
    cr_assert_eq(store_session_insert(s, idle, uid, 8999, now + 100, 16), 0);    /* last seen before cutoff */
    cr_assert_eq(store_session_insert(s, edge, uid, 9000, now + 1, 16), 0);      /* exactly at cutoff: kept */
    cr_assert_eq(store_session_purge(s, now, cutoff), 0);
    struct store_session ss;
    cr_assert_eq(store_session_get(s, fresh, &ss), 0);
    cr_assert_eq(store_session_get(s, edge, &ss), 0);
    cr_assert_eq(store_session_get(s, expired, &ss), ERR_NOT_FOUND);
    cr_assert_eq(store_session_get(s, idle, &ss), ERR_NOT_FOUND);
    store_close(s);
}

/* ---- cascade and erasure ------------------------------------------------- */

Test(store, user_delete_cascades_to_notes_and_sessions)
{
    struct store *s = open_db();
    int64_t a = add_user(s, "alice", "user");
    int64_t b = add_user(s, "bob", "user");
    int64_t na = add_note(s, a, "t", "c", 1);
    int64_t nb = add_note(s, b, "t", "c", 1);
    uint8_t ha[STORE_HASH_LEN], hb[STORE_HASH_LEN];
    hash_of(ha, 1);
    hash_of(hb, 2);
    cr_assert_eq(store_session_insert(s, ha, a, 1, 1000, 16), 0);
    cr_assert_eq(store_session_insert(s, hb, b, 1, 1000, 16), 0);

    cr_assert_eq(store_user_delete(s, a), 0);
    struct store_note n;
    store_note_init(&n);
    struct store_session ss;
    struct store_user u;
    cr_assert_eq(store_user_get(s, a, &u), ERR_NOT_FOUND);
    cr_assert_eq(store_note_get_any(s, na, &n), ERR_NOT_FOUND);
    cr_assert_eq(store_session_get(s, ha, &ss), ERR_NOT_FOUND);
    struct seen all = { 0 };
    cr_assert_eq(store_note_list(s, 0, INT64_MAX, 100, false, collect_cb, &all), 0);
    cr_assert_eq(all.n, 1);
    cr_assert_eq(all.ids[0], nb);
    cr_assert_eq(store_session_get(s, hb, &ss), 0);
    store_note_cleanup(&n);
    store_close(s);
}

#define MARKER "ZQX-erase-me-7f3a9c1b-ZQX"
#define MARKER2 "QJW-in-the-wal-5e8d2a40-QJW"

/*
 * Erasure: phase one puts MARKER into the database file proper (checkpoint
 * and close); phase two, on one open connection as the server would run it,
 * puts MARKER2 into the -wal file, deletes the user, and checkpoints. After
 * that neither marker may be in either file, open or closed. Each marker is
 * first seen where it was written, so the absence checks can fail.
 */
Test(store, deleted_user_leaves_no_bytes_in_db_or_wal)
{
    char wal[200];
    sidecar(wal, sizeof(wal), "-wal");
    struct store *s = open_db();
    int64_t victim = add_user(s, "victim" "7f3a9c1b", "user");
    int64_t keeper = add_user(s, "keeper", "user");
    /* A small note (in-page cell) and a large one (overflow pages). */
    add_note(s, victim, MARKER "-title", "small " MARKER " content", 1);
    size_t big_len = 20000;
    char *big = malloc(big_len + 1);
    cr_assert_not_null(big);
    for (size_t i = 0; i < big_len; i++)
        big[i] = (char)('a' + i % 26);
    for (size_t off = 0; off + sizeof(MARKER) < big_len; off += 3000)
        memcpy(big + off, MARKER, sizeof(MARKER) - 1);
    big[big_len] = '\0';
    add_note(s, victim, "big", big, 1);
    add_note(s, keeper, "keeper", "keeper content stays", 1);
    uint8_t h[STORE_HASH_LEN];
    hash_of(h, 9);
    cr_assert_eq(store_session_insert(s, h, victim, 1, 1000, 16), 0);
    cr_assert_eq(store_checkpoint(s), 0);
    store_close(s);
    cr_assert(file_contains(dbpath, MARKER), "marker not in the file: the test could not fail");
    cr_assert(file_contains(dbpath, "victim7f3a9c1b"));

    s = open_db();
    cr_assert_eq(store_set_autocheckpoint(s, false), 0);    /* as the server runs */
    add_note(s, victim, "late", "late " MARKER2 " content", 1);
    cr_assert(file_contains(wal, MARKER2), "marker not in the WAL: the test could not fail");
    cr_assert_eq(store_user_delete(s, victim), 0);
    cr_assert_eq(store_checkpoint(s), 0);
    static const char *const gone[] = { MARKER, MARKER2, "victim7f3a9c1b" };
    for (size_t i = 0; i < sizeof(gone) / sizeof(gone[0]); i++) {
        cr_assert_not(file_contains(wal, gone[i]), "%s left in the open -wal file", gone[i]);
        cr_assert_not(file_contains(dbpath, gone[i]), "%s left in the open database file", gone[i]);
    }
    store_close(s);
    for (size_t i = 0; i < sizeof(gone) / sizeof(gone[0]); i++) {
        cr_assert_not(file_contains(wal, gone[i]), "%s left in the -wal file", gone[i]);
        cr_assert_not(file_contains(dbpath, gone[i]), "%s left in the database file", gone[i]);
    }
    cr_assert(file_contains(dbpath, "keeper content stays"), "the other user's data is gone");
    free(big);
}

/* An erasure deletes the account only while what it checked still holds:
 * the same password (a rehash keeps it), an enabled account, and the
 * asking session. */
Test(store, an_erasure_deletes_only_the_account_it_checked, .init = setup, .fini = teardown)
{
    struct store *s = open_db();
    struct store_user u;
    int64_t id = add_user_phc(s, "erin", "$argon2id$old", &u);
    int64_t gen = u.password_gen;
    uint8_t tok[STORE_HASH_LEN], other[STORE_HASH_LEN];
    memset(tok, 0x11, sizeof(tok));
    memset(other, 0x22, sizeof(other));
    cr_assert_eq(store_session_insert(s, tok, id, 1, 100, 16), 0);
    cr_assert_eq(store_user_upgrade_password(s, id, "$argon2id$old", "$argon2id$rehashed"), 0);
    cr_assert_eq(store_user_set_password(s, id, "$argon2id$new"), 0);
    cr_assert_eq(store_user_delete_if_current(s, id, gen, tok), ERR_NOT_FOUND, "a changed password");
    cr_assert_eq(store_user_delete_if_current(s, id, gen + 1, other), ERR_NOT_FOUND, "another session");
    cr_assert_eq(store_user_set_disabled(s, id, true), 0);
    cr_assert_eq(store_user_delete_if_current(s, id, gen + 1, tok), ERR_NOT_FOUND, "a disabled account");
    cr_assert_eq(store_user_set_disabled(s, id, false), 0);
    cr_assert_eq(store_user_upgrade_password(s, id, "$argon2id$new", "$argon2id$new-rehashed"), 0);
    cr_assert_eq(store_user_delete_if_current(s, id, gen + 1, tok), 0, "the password checked, rehashed since");
    cr_assert_eq(store_user_get(s, id, &u), ERR_NOT_FOUND);
    store_close(s);
}

/* password_gen says which password an account has: a change moves it on,
 * a rehash of the same password does not, and a rehash applies only over
 * the hash it was made from (the first of two racing upgrades wins). */
Test(store, a_password_change_moves_the_generation_and_a_rehash_keeps_it, .init = setup, .fini = teardown)
{
    struct store *s = open_db();
    struct store_user u;
    int64_t id = add_user_phc(s, "gene", "$argon2id$a", &u);
    cr_assert_eq(u.password_gen, 1);
    cr_assert_eq(store_user_upgrade_password(s, id, "$argon2id$a", "$argon2id$a2"), 0);
    cr_assert_eq(store_user_upgrade_password(s, id, "$argon2id$a", "$argon2id$a3"), ERR_NOT_FOUND,
                 "a second upgrade of the same old hash");
    cr_assert_eq(store_user_get(s, id, &u), 0);
    cr_assert_str_eq(u.password_hash, "$argon2id$a2");
    cr_assert_eq(u.password_gen, 1);
    cr_assert_eq(store_user_set_password(s, id, "$argon2id$b"), 0);
    cr_assert_eq(store_user_get(s, id, &u), 0);
    cr_assert_str_eq(u.password_hash, "$argon2id$b");
    cr_assert_eq(u.password_gen, 2);
    cr_assert_eq(store_user_upgrade_password(s, id, "$argon2id$a2", "$argon2id$a4"), ERR_NOT_FOUND,
                 "an upgrade of a hash a change replaced");
    cr_assert_eq(store_user_upgrade_password(s, 9999, "$argon2id$b", "$argon2id$b2"), ERR_NOT_FOUND);
    cr_assert_eq(store_user_upgrade_password(s, id, "$argon2id$b", ""), ERR_INVALID);
    cr_assert_eq(store_user_get(s, id, &u), 0);
    cr_assert_str_eq(u.password_hash, "$argon2id$b");
    store_close(s);
}

struct sets {
    char seen[8][64];
    size_t n, stop_after;
};

static int collect_set(void *arg, const char *params)
{
    struct sets *c = arg;
    cr_assert_lt(c->n, 8);
    snprintf(c->seen[c->n++], sizeof(c->seen[0]), "%s", params);
    return c->stop_after && c->n == c->stop_after ? 42 : 0;
}

static bool has_set(const struct sets *c, const char *params)
{
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->seen[i], params) == 0)
            return true;
    return false;
}

/* Start-up reads which argon2 settings the stored hashes were made with:
 * each once, only of hashes with the prefix asked for. */
Test(store, the_stored_hashes_settings_are_listed_once_each, .init = setup, .fini = teardown)
{
    struct store *s = open_db();
    int64_t id;
    static const char *const phc[] = {
        "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaA", "$argon2id$v=19$m=19456,t=2,p=1$b3RoZXJzYWx0$aGFzaA",
        "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHRzYWx0$aGFzaA", "$argon2i$v=19$m=1,t=9,p=1$c2FsdA$aGFzaA",
        "$argon2id$v=19$nodollar",
    };
    char name[16];
    for (size_t i = 0; i < sizeof(phc) / sizeof(phc[0]); i++) {
        snprintf(name, sizeof(name), "u%zu", i);
        cr_assert_eq(store_user_insert(s, name, "user", phc[i], 1, &id), 0);
    }
    struct sets c = { .n = 0 };
    cr_assert_eq(store_user_param_sets(s, "$argon2id$v=19$", collect_set, &c), 0);
    cr_assert_eq(c.n, 2, "%zu sets", c.n);
    cr_assert(has_set(&c, "m=19456,t=2,p=1"));
    cr_assert(has_set(&c, "m=65536,t=3,p=4"));
    struct sets first = { .stop_after = 1 };
    cr_assert_eq(store_user_param_sets(s, "$argon2id$v=19$", collect_set, &first), 42, "the callback's stop");
    cr_assert_eq(first.n, 1);
    struct sets none = { .n = 0 };
    cr_assert_eq(store_user_param_sets(s, "$scrypt$", collect_set, &none), 0);
    cr_assert_eq(none.n, 0);
    cr_assert_eq(store_user_param_sets(s, "", collect_set, &none), ERR_INVALID);
    store_close(s);
}

/* A user whose hash has the parameters text `params`. */
static void add_hash_params(struct store *s, const char *name, const char *params)
{
    char phc[128];
    snprintf(phc, sizeof(phc), "$argon2id$v=19$%s$c2FsdHNhbHRzYWx0c2FsdA$aGFzaA", params);
    int64_t id;
    cr_assert_eq(store_user_insert(s, name, "user", phc, 1, &id), 0);
}

/* Start-up keeps, for the timing job, the stored settings that may cost
 * more than the current ones, costliest first (m x t), without the current
 * settings or ones that cannot cost more (raised since: no m or t higher, p
 * not lower), and pads from the costliest's estimate. */
Test(store, start_up_keeps_the_costlier_stored_password_settings_costliest_first, .init = setup, .fini = teardown)
{
    struct store *s = open_db();
    static const char *const sets[] = {
        "m=19456,t=2,p=1",   /* current */
        "m=19456,t=1,p=1",   /* cheaper */
        "m=9728,t=2,p=2",    /* cheaper */
        "m=19456,t=2,p=2",   /* more lanes: not costlier */
        "m=19456,t=8,p=1",   /* 400% */
        "m=65536,t=3,p=1",   /* 505% */
        "m=19456,t=3,p=1",   /* 150% */
        "m=19456,t=2,p=1,x", /* not argon2id parameters */
    };
    char name[16];
    for (size_t i = 0; i < sizeof(sets) / sizeof(sets[0]); i++) {
        snprintf(name, sizeof(name), "p%zu", i);
        add_hash_params(s, name, sets[i]);
    }
    struct app app = { .store = s, .argon2 = { 19456, 2, 1 } };
    char err[128] = "";
    cr_assert_eq(app_passwords_open(&app, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(app.n_pw_sets, 3);
    cr_assert(app.pw_sets[0].m_kib == 65536 && app.pw_sets[0].t == 3);
    cr_assert(app.pw_sets[1].m_kib == 19456 && app.pw_sets[1].t == 8);
    cr_assert(app.pw_sets[2].m_kib == 19456 && app.pw_sets[2].t == 3);
    cr_assert_eq(atomic_load(&app.fail_pct), 505);
    store_close(s);
}

/* At most APP_PW_SETS settings are kept: the costliest; none, and no
 * padding, when every hash uses the current settings. */
Test(store, start_up_keeps_at_most_the_costliest_eight_settings, .init = setup, .fini = teardown)
{
    struct store *s = open_db();
    struct app app = { .store = s, .argon2 = { 19456, 2, 1 } };
    char name[16], params[64], err[128] = "";
    add_hash_params(s, "current", "m=19456,t=2,p=1");
    cr_assert_eq(app_passwords_open(&app, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(app.n_pw_sets, 0);
    cr_assert_eq(atomic_load(&app.fail_pct), 100);
    for (unsigned t = 20; t < 30; t++) {
        snprintf(name, sizeof(name), "q%u", t);
        snprintf(params, sizeof(params), "m=19456,t=%u,p=1", t);
        add_hash_params(s, name, params);
    }
    cr_assert_eq(app_passwords_open(&app, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(app.n_pw_sets, APP_PW_SETS);
    for (size_t i = 0; i < APP_PW_SETS; i++)     /* t=29 down to t=22 */
        cr_assert_eq(app.pw_sets[i].t, 29 - i, "set %zu: t=%u", i, app.pw_sets[i].t);
    cr_assert_eq(atomic_load(&app.fail_pct), 1450, "t=29 against t=2");
    store_close(s);
}

/* The padding has a ceiling, 100x a current check, and settings a login
 * would refuse at once (past the argon2 ceilings) are not kept: they cost
 * nothing to check, so there is nothing to pad for. */
Test(store, start_up_caps_the_padding_and_leaves_out_settings_past_the_ceilings, .init = setup, .fini = teardown)
{
    struct store *s = open_db();
    add_hash_params(s, "huge", "m=4194304,t=2,p=1");     /* 215x: the cap */
    add_hash_params(s, "toolong", "m=19456,t=101,p=1");  /* t past the ceiling */
    add_hash_params(s, "toomany", "m=19456,t=8,p=17");   /* p past the ceiling */
    add_hash_params(s, "toobig", "m=4194305,t=2,p=1");   /* m past the ceiling */
    struct app app = { .store = s, .argon2 = { 19456, 2, 1 } };
    char err[128] = "";
    cr_assert_eq(app_passwords_open(&app, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(app.n_pw_sets, 1);
    cr_assert_eq(app.pw_sets[0].m_kib, CRYPTO_ARGON2_M_MAX);
    cr_assert_eq(atomic_load(&app.fail_pct), 10000, "100x a current check at most");
    store_close(s);
}

/* A login past the cap ends the account's oldest sessions, no one else's. */
Test(store, a_session_past_the_cap_ends_the_oldest, .init = setup, .fini = teardown)
{
    struct store *s = open_db();
    int64_t a = add_user(s, "alice", "user"), b = add_user(s, "bob", "user");
    uint8_t h[6][STORE_HASH_LEN];
    for (int i = 0; i < 6; i++)
        hash_of(h[i], (uint8_t)(i + 1));
    cr_assert_eq(store_session_insert(s, h[5], b, 1, 1000, 3), 0);
    for (int i = 0; i < 5; i++)
        cr_assert_eq(store_session_insert(s, h[i], a, 10 + i, 1000, 3), 0);
    struct store_session ss;
    for (int i = 0; i < 2; i++)
        cr_assert_eq(store_session_get(s, h[i], &ss), ERR_NOT_FOUND, "session %d of 5 outlived the cap of 3", i);
    for (int i = 2; i < 6; i++)
        cr_assert_eq(store_session_get(s, h[i], &ss), 0, "session %d is gone", i);
    store_close(s);
}
