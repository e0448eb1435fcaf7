/*
 * store.c against real SQLite files.
 *
 * Each test gets a fresh mkdtemp() folder under /tmp, removed afterwards.
 * The database lives one folder further down so that store_open() has a
 * folder to create. Properties SQLite would normally report through SQL
 * (user_version, WAL mode) are read from the file header instead, so these
 * tests need no SQL: only store.c knows SQL (test_store_open.c's downgrade()
 * for the migration tests is the exception).
 *
 * This file holds the suite's fixture and what the test_store_*.c files
 * share (store_support.h).
 */
#include <criterion/criterion.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "store_support.h"

char tmpdir[64];
char dbdir[128];
char dbpath[160];

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void setup(void)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/notesd-store-XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir));
    snprintf(dbdir, sizeof(dbdir), "%s/data", tmpdir);
    snprintf(dbpath, sizeof(dbpath), "%s/notes.db", dbdir);
}

void teardown(void)
{
    if (tmpdir[0])
        nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(store, .init = setup, .fini = teardown);

/* ---- helpers ------------------------------------------------------------- */

struct store *open_at(const char *path)
{
    char err[512] = "";
    struct store *s = NULL;
    int rc = store_open(&s, path, err, sizeof(err));
    cr_assert_eq(rc, 0, "store_open(%s): %d %s", path, rc, err);
    cr_assert_not_null(s);
    return s;
}

struct store *open_db(void)
{
    return open_at(dbpath);
}

int64_t add_user(struct store *s, const char *name, const char *role)
{
    int64_t id = 0;
    int rc = store_user_insert(s, name, role, "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA", 1000, &id);
    cr_assert_eq(rc, 0, "insert user %s: %d", name, rc);
    cr_assert_gt(id, 0);
    return id;
}

int64_t add_note(struct store *s, int64_t owner, const char *title, const char *content,
                 uint32_t key_id)
{
    int64_t id = 0;
    cr_assert_eq(store_note_insert(s, owner, 2000, &id), 0);
    cr_assert_eq(store_note_update(s, id, owner, slice_str(title), slice_str(content), key_id, 2001), 0);
    return id;
}

void hash_of(uint8_t h[STORE_HASH_LEN], uint8_t seed)
{
    for (int i = 0; i < STORE_HASH_LEN; i++)
        h[i] = (uint8_t)(seed * 31 + i);
}

void sidecar(char *out, size_t n, const char *suffix)
{
    snprintf(out, n, "%s%s", dbpath, suffix);
}

int collect_cb(void *arg, const struct store_note *n)
{
    struct seen *s = arg;
    cr_assert_lt(s->n, 256);
    s->ids[s->n] = n->id;
    s->owners[s->n] = n->owner_id;
    s->keys[s->n] = n->key_id;
    s->content_len[s->n] = n->content.len;
    s->n++;
    return s->stop_after && s->n >= s->stop_after;
}
