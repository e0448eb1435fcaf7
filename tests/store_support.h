/*
 * Shared fixture and helpers of the test_store program (test_store_*.c):
 * the temporary folder of each test and the database path in it, opening
 * the store, adding users and notes, and collecting a listing.
 */
#ifndef NOTESD_TEST_STORE_SUPPORT_H
#define NOTESD_TEST_STORE_SUPPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "store.h"

/* These helpers were static in one file before it was split: hidden keeps
 * them out of the executable's dynamic symbol table, where a name such as
 * login() would otherwise preempt the C library's. */
#pragma GCC visibility push(hidden)

/* The test's mkdtemp() folder, the folder store_open() creates in it, and
 * the database file there: setup() makes them, teardown() removes them
 * (TestSuite(store) in store_support.c). */
extern char tmpdir[64];
extern char dbdir[128];
extern char dbpath[160];
void setup(void);
void teardown(void);

/* store_open() at `path` / at dbpath, asserting it opened. */
struct store *open_at(const char *path);
struct store *open_db(void);

/* Insert a user (a fixed argon2id hash, created at 1000); returns its id. */
int64_t add_user(struct store *s, const char *name, const char *role);

/* Insert and fill a note; returns its id. */
int64_t add_note(struct store *s, int64_t owner, const char *title, const char *content,
                 uint32_t key_id);

/* A session token hash derived from `seed`. */
void hash_of(uint8_t h[STORE_HASH_LEN], uint8_t seed);

/* dbpath with `suffix` appended ("-wal", "-shm"). */
void sidecar(char *out, size_t n, const char *suffix);

/* Collects listed notes. */
struct seen {
    int n;
    int64_t ids[256];
    int64_t owners[256];
    uint32_t keys[256];
    size_t content_len[256];
    int stop_after;          /* 0: never stop */
};

/* store_note_list() callback: records each note into a struct seen. */
int collect_cb(void *arg, const struct store_note *n);

#pragma GCC visibility pop

#endif
