/*
 * Unit tests of store.c's transactions (rollback and commit, nested
 * levels, read snapshots) and of WAL checkpoints under readers and
 * writers. Fixture and helpers: store_support.h.
 */
#include <criterion/criterion.h>
#include <time.h>

#include "err.h"
#include "store_support.h"

/* ---- transactions -------------------------------------------------------- */

Test(store, rollback_discards_and_commit_keeps)
{
    struct store *s = open_db();
    cr_assert_eq(store_begin(s), 0);
    int64_t gone = add_user(s, "ghost", "user");
    store_rollback(s);
    struct store_user u;
    cr_assert_eq(store_user_get(s, gone, &u), ERR_NOT_FOUND);

    cr_assert_eq(store_begin(s), 0);
    int64_t kept = add_user(s, "kept", "user");
    cr_assert_eq(store_commit(s), 0);
    cr_assert_eq(store_user_get(s, kept, &u), 0);

    cr_assert_neq(store_commit(s), 0, "COMMIT without BEGIN must fail");
    store_rollback(s);                   /* no transaction: harmless */
    cr_assert_eq(store_begin(s), 0, "a failed COMMIT broke the connection");
    store_rollback(s);
    store_close(s);
}

Test(store, nested_levels_undo_alone_or_with_the_outer_one)
{
    struct store *s = open_db();
    struct store_user u;
    /* inner rollback undoes only the inner level */
    cr_assert_eq(store_begin(s), 0);
    int64_t outer = add_user(s, "outer", "user");
    cr_assert_eq(store_begin(s), 0, "a nested level opens a savepoint");
    int64_t inner = add_user(s, "inner", "user");
    store_rollback(s);
    cr_assert_eq(store_commit(s), 0);
    cr_assert_eq(store_user_get(s, outer, &u), 0);
    cr_assert_eq(store_user_get(s, inner, &u), ERR_NOT_FOUND);
    /* an inner commit is undone by the outer rollback */
    cr_assert_eq(store_begin(s), 0);
    cr_assert_eq(store_begin(s), 0);
    int64_t undone = add_user(s, "undone", "user");
    cr_assert_eq(store_commit(s), 0);
    store_rollback(s);
    cr_assert_eq(store_user_get(s, undone, &u), ERR_NOT_FOUND);
    cr_assert_neq(store_commit(s), 0, "every level is closed");
    cr_assert_eq(store_begin(s), 0, "the connection is usable again");
    store_rollback(s);
    store_close(s);
}

Test(store, read_transaction_sees_one_snapshot)
{
    struct store *r = open_db();
    struct store *w = open_db();
    int64_t before = add_user(w, "before", "user");
    struct store_user u;
    cr_assert_eq(store_begin_read(r), 0);
    cr_assert_eq(store_user_get(r, before, &u), 0);
    int64_t during = add_user(w, "during", "user");
    cr_assert_eq(store_user_get(r, during, &u), ERR_NOT_FOUND,
                 "a statement inside the read transaction saw a later commit");
    cr_assert_eq(store_commit(r), 0);
    cr_assert_eq(store_user_get(r, during, &u), 0, "the snapshot outlived the transaction");
    store_close(w);
    store_close(r);
}

Test(store, read_transaction_only_outside_another)
{
    struct store *s = open_db();
    cr_assert_eq(store_begin(s), 0);
    cr_assert_eq(store_begin_read(s), ERR_INVALID, "a read transaction nested in a write one");
    cr_assert_eq(store_commit(s), 0, "the refused read transaction closed the write one");
    cr_assert_eq(store_begin_read(s), 0);
    int64_t id = add_user(s, "writer", "user");      /* a write upgrades it */
    cr_assert_eq(store_commit(s), 0);
    cr_assert_neq(store_commit(s), 0, "the read transaction is still open");
    struct store *o = open_db();
    struct store_user u;
    cr_assert_eq(store_user_get(o, id, &u), 0, "the upgraded write was lost");
    store_close(o);
    store_close(s);
}

struct hold {
    struct store *writer;
    int64_t owner;
    int checkpoint_rc;
};

/* Runs while the listing connection holds its read snapshot. */
static int checkpoint_under_reader_cb(void *arg, const struct store_note *n)
{
    (void)n;
    struct hold *h = arg;
    add_note(h->writer, h->owner, "t", "written after the reader's snapshot", 1);
    h->checkpoint_rc = store_checkpoint(h->writer);
    return 1;
}

/* A checkpoint that could not truncate the WAL must not report success:
 * erasure relies on it. (Waits out the 5 s busy timeout once.) */
Test(store, checkpoint_blocked_by_a_reader_fails, .timeout = 60)
{
    struct store *w = open_db();
    struct store *r = open_db();
    int64_t a = add_user(w, "alice", "user");
    add_note(w, a, "t", "c", 1);
    struct hold h = { .writer = w, .owner = a, .checkpoint_rc = 12345 };
    cr_assert_eq(store_note_list(r, a, INT64_MAX, 10, false, checkpoint_under_reader_cb, &h), 0);
    cr_assert_eq(h.checkpoint_rc, ERR_IO);
    cr_assert_eq(store_checkpoint(w), 0, "the reader is gone: the checkpoint must now succeed");
    store_close(r);
    store_close(w);
}

/* Frames in the WAL, and a writer (w) inside a transaction that holds the
 * writer lock while another connection (c) checkpoints. */
static void writer_in_a_transaction(struct store **w, struct store **c)
{
    *w = open_db();
    *c = open_db();
    int64_t a = add_user(*w, "alice", "user");
    add_note(*w, a, "t", "in the WAL before the writer begins", 1);
    cr_assert_eq(store_begin(*w), 0);
    add_note(*w, a, "t", "written while the checkpoint runs", 1);
}

/* The periodic checkpoint runs beside the event loop's connection: it must
 * neither wait for a writer nor make one wait (a TRUNCATE holds the writer
 * lock through its fsync, and here waits for the writer's lock first). */
Test(store, passive_checkpoint_does_not_wait_for_a_writer, .timeout = 60)
{
    struct store *w, *c;
    writer_in_a_transaction(&w, &c);
    cr_assert_eq(store_checkpoint_passive(c, NULL), 0);
    cr_assert_eq(store_busy_waits(c), 0, "the checkpoint waited for the writer");
    cr_assert_eq(store_commit(w), 0, "the writer lost its transaction to the checkpoint");
    cr_assert_eq(store_checkpoint_passive(c, NULL), 0);
    store_close(c);
    store_close(w);
}

static void count_frames(void *arg, int frames)
{
    *(int *)arg = frames;
}

/* The serving connection learns from each commit how many frames its WAL
 * holds; after a RESTART checkpoint (another connection) the next commit
 * writes from the top of the log again. */
Test(store, a_restart_checkpoint_starts_the_wal_over)
{
    struct store *w = open_db();
    struct store *c = open_db();
    cr_assert_eq(store_set_autocheckpoint(w, false), 0);
    int frames = -1;
    store_on_commit(w, count_frames, &frames);
    int64_t a = add_user(w, "alice", "user");
    int first = frames;
    cr_assert_gt(first, 0);
    for (int i = 0; i < 20; i++)
        add_note(w, a, "t", "grows the log", 1);
    cr_assert_gt(frames, first, "the log did not grow");
    int grown = frames, log = 0;
    cr_assert_eq(store_checkpoint_passive(c, &log), 0);
    cr_assert_eq(log, grown, "PASSIVE reports what the log holds");
    cr_assert_eq(store_checkpoint_restart(c), 0);
    add_note(w, a, "t", "after the restart", 1);
    cr_assert_lt(frames, grown, "the write after a restart did not start the log over (%d frames)", frames);
    store_on_commit(w, NULL, NULL);
    frames = -1;
    add_note(w, a, "t", "no hook", 1);
    cr_assert_eq(frames, -1, "a removed hook was still called");
    store_close(c);
    store_close(w);
}

static long elapsed_ms(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long)(t.tv_sec - t0->tv_sec) * 1000 + (t.tv_nsec - t0->tv_nsec) / 1000000;
}

/* RESTART takes the writer lock, so the event loop's writes wait while it
 * waits: it must give up after STORE_RESTART_WAIT_MS, not after the 5 s
 * busy timeout every other wait uses. A writer in a transaction holds it. */
Test(store, a_restart_checkpoint_gives_up_soon_on_a_busy_writer, .timeout = 30)
{
    struct store *w, *c;
    writer_in_a_transaction(&w, &c);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    cr_assert_eq(store_checkpoint_restart(c), ERR_IO);
    long took = elapsed_ms(&t0);
    cr_assert_geq(store_busy_waits(c), 1, "it did not wait at all");
    cr_assert_lt(took, 1000, "waited %ld ms for the writer (bound %d ms)", took, STORE_RESTART_WAIT_MS);
    cr_assert_eq(store_commit(w), 0);
    cr_assert_eq(store_checkpoint_restart(c), 0, "the writer is done: the restart must now succeed");
    store_close(c);
    store_close(w);
}
