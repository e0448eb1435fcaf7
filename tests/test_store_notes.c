/*
 * Unit tests of store.c's notes: insert, update, get and delete by owner,
 * ids, the blob limit, listing (pages, content, re-entry, by key), key-use
 * counters, SQL injection strings as plain data, and per-account usage.
 * Fixture and helpers: store_support.h.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "store_support.h"

/* ---- notes --------------------------------------------------------------- */

Test(store, note_insert_reserves_empty_row)
{
    struct store *s = open_db();
    int64_t uid = add_user(s, "alice", "user");
    int64_t id = 0;
    cr_assert_eq(store_note_insert(s, uid, 77, &id), 0);
    cr_assert_gt(id, 0);
    struct store_note n;
    store_note_init(&n);
    cr_assert_eq(store_note_get_own(s, id, uid, &n), 0);
    cr_assert_eq(n.id, id);
    cr_assert_eq(n.owner_id, uid);
    cr_assert_eq(n.title.len, 0);
    cr_assert_eq(n.content.len, 0);
    cr_assert_eq(n.key_id, 0);
    cr_assert_eq(n.created_at, 77);
    cr_assert_eq(n.updated_at, 77);
    /* Updating back to empty fields stays legal (empty blob, not NULL). */
    cr_assert_eq(store_note_update(s, id, uid, (struct slice){ NULL, 0 }, (struct slice){ NULL, 0 }, 3, 80), 0);
    store_note_cleanup(&n);
    store_close(s);
}

Test(store, note_update_and_get_respect_owner)
{
    struct store *s = open_db();
    int64_t a = add_user(s, "alice", "user");
    int64_t b = add_user(s, "bob", "user");
    int64_t id = add_note(s, a, "title-a", "content-a", 5);
    struct store_note n;
    store_note_init(&n);
    cr_assert_eq(store_note_get_own(s, id, a, &n), 0);
    cr_assert_eq(n.title.len, 7);
    cr_assert_eq(memcmp(n.title.data, "title-a", 7), 0);
    cr_assert_eq(memcmp(n.content.data, "content-a", 9), 0);
    cr_assert_eq(n.key_id, 5);
    cr_assert_eq(n.updated_at, 2001);

    cr_assert_eq(store_note_get_own(s, id, b, &n), ERR_NOT_FOUND);
    cr_assert_eq(n.title.len, 0, "failed get left data behind");
    cr_assert_eq(store_note_update(s, id, b, SLICE_LIT("evil"), SLICE_LIT("evil"), 5, 3000), ERR_NOT_FOUND);
    cr_assert_eq(store_note_update(s, id + 1, a, SLICE_LIT("x"), SLICE_LIT("x"), 5, 3000), ERR_NOT_FOUND);

    cr_assert_eq(store_note_get_any(s, id, &n), 0);
    cr_assert_eq(n.owner_id, a);
    cr_assert_eq(memcmp(n.title.data, "title-a", 7), 0, "another owner's update changed the note");
    cr_assert_eq(n.updated_at, 2001);
    cr_assert_eq(store_note_get_any(s, id + 1, &n), ERR_NOT_FOUND);
    store_note_cleanup(&n);
    store_close(s);
}

Test(store, note_delete_respects_owner)
{
    struct store *s = open_db();
    int64_t a = add_user(s, "alice", "user");
    int64_t b = add_user(s, "bob", "user");
    int64_t id = add_note(s, a, "t", "c", 1);
    cr_assert_eq(store_note_delete_own(s, id, b), ERR_NOT_FOUND);
    struct store_note n;
    store_note_init(&n);
    cr_assert_eq(store_note_get_own(s, id, a, &n), 0, "another owner deleted the note");
    cr_assert_eq(store_note_delete_own(s, id, a), 0);
    cr_assert_eq(store_note_get_any(s, id, &n), ERR_NOT_FOUND);
    cr_assert_eq(store_note_delete_own(s, id, a), ERR_NOT_FOUND);
    store_note_cleanup(&n);
    store_close(s);
}

Test(store, note_ids_are_not_reused_after_delete)
{
    struct store *s = open_db();
    int64_t a = add_user(s, "alice", "user");
    int64_t first = add_note(s, a, "t", "c", 1);
    int64_t last = add_note(s, a, "t", "c", 1);
    cr_assert_eq(store_note_delete_own(s, last, a), 0);
    int64_t next = add_note(s, a, "t", "c", 1);
    cr_assert_gt(next, last, "id %lld reused", (long long)next);
    cr_assert_gt(last, first);
    store_close(s);

    /* Also across a restart (the sequence is persistent). */
    s = open_db();
    cr_assert_eq(store_note_delete_own(s, next, a), 0);
    int64_t again = add_note(s, a, "t", "c", 1);
    cr_assert_gt(again, next);
    store_close(s);
}

Test(store, note_blob_limit)
{
    struct store *s = open_db();
    int64_t a = add_user(s, "alice", "user");
    int64_t id = add_note(s, a, "t", "c", 1);
    size_t big = STORE_NOTE_BLOB_MAX + 1;
    uint8_t *p = calloc(1, big);
    cr_assert_not_null(p);
    cr_assert_eq(store_note_update(s, id, a, SLICE_LIT("t"), (struct slice){ p, big }, 1, 5), ERR_LIMIT);
    cr_assert_eq(store_note_update(s, id, a, (struct slice){ p, big }, SLICE_LIT("c"), 1, 5), ERR_LIMIT);
    /* Exactly the maximum in both fields is stored and read back. */
    memset(p, 0xA5, big);
    struct slice max = { p, STORE_NOTE_BLOB_MAX };
    cr_assert_eq(store_note_update(s, id, a, max, max, 1, 5), 0);
    struct store_note n;
    store_note_init(&n);
    cr_assert_eq(store_note_get_own(s, id, a, &n), 0);
    cr_assert_eq(n.title.len, STORE_NOTE_BLOB_MAX);
    cr_assert_eq(n.content.len, STORE_NOTE_BLOB_MAX);
    cr_assert_eq(memcmp(n.content.data, p, STORE_NOTE_BLOB_MAX), 0);
    store_note_cleanup(&n);
    free(p);
    store_close(s);
}

Test(store, note_list_pages_newest_first_per_owner)
{
    struct store *s = open_db();
    int64_t a = add_user(s, "alice", "user");
    int64_t b = add_user(s, "bob", "user");
    int64_t mine[25];
    int nb = 0;
    for (int i = 0; i < 25; i++) {
        mine[i] = add_note(s, a, "a", "content", 1);
        if (i % 3 == 0) {                 /* interleave bob's notes */
            add_note(s, b, "b", "content", 1);
            nb++;
        }
    }
    int64_t before = INT64_MAX;
    int got = 0;
    int sizes[4] = { 0 };
    for (int page = 0; page < 4; page++) {
        struct seen seen = { 0 };
        cr_assert_eq(store_note_list(s, a, before, 10, false, collect_cb, &seen), 0);
        sizes[page] = seen.n;
        for (int i = 0; i < seen.n; i++) {
            cr_assert_eq(seen.owners[i], a, "bob's note in alice's list");
            cr_assert_eq(seen.content_len[i], 0, "content filled without with_content");
            /* newest first: exactly alice's ids in descending order */
            cr_assert_eq(seen.ids[i], mine[24 - got], "page %d row %d", page, i);
            got++;
        }
        if (seen.n)
            before = seen.ids[seen.n - 1];
    }
    cr_assert_eq(sizes[0], 10);
    cr_assert_eq(sizes[1], 10);
    cr_assert_eq(sizes[2], 5);
    cr_assert_eq(sizes[3], 0);
    cr_assert_eq(got, 25);

    struct seen all = { 0 };
    cr_assert_eq(store_note_list(s, 0, INT64_MAX, 100, false, collect_cb, &all), 0);
    cr_assert_eq(all.n, 25 + nb);
    int from_b = 0;
    for (int i = 0; i < all.n; i++) {
        if (i)
            cr_assert_lt(all.ids[i], all.ids[i - 1]);
        from_b += all.owners[i] == b;
    }
    cr_assert_eq(from_b, nb);

    struct seen page = { 0 };
    cr_assert_eq(store_note_list(s, 0, all.ids[4], 3, false, collect_cb, &page), 0);
    cr_assert_eq(page.n, 3);
    cr_assert_eq(page.ids[0], all.ids[5]);
    store_close(s);
}

Test(store, note_list_with_content_and_stop)
{
    struct store *s = open_db();
    int64_t a = add_user(s, "alice", "user");
    for (int i = 0; i < 5; i++)
        add_note(s, a, "t", "twelve bytes", 1);
    struct seen seen = { 0 };
    cr_assert_eq(store_note_list(s, a, INT64_MAX, 10, true, collect_cb, &seen), 0);
    cr_assert_eq(seen.n, 5);
    for (int i = 0; i < seen.n; i++)
        cr_assert_eq(seen.content_len[i], 12);
    struct seen all = { 0 };
    cr_assert_eq(store_note_list(s, 0, INT64_MAX, 10, true, collect_cb, &all), 0);
    cr_assert_eq(all.content_len[0], 12);

    struct seen stop = { .stop_after = 2 };
    cr_assert_eq(store_note_list(s, a, INT64_MAX, 10, false, collect_cb, &stop), 0);
    cr_assert_eq(stop.n, 2, "listing went on after the callback said stop");

    cr_assert_eq(store_note_list(s, a, INT64_MAX, 0, false, collect_cb, &seen), ERR_INVALID);
    cr_assert_eq(store_note_list(s, a, INT64_MAX, -1, false, collect_cb, &seen), ERR_INVALID);
    cr_assert_eq(store_note_list_not_key(s, 1, 0, 0, collect_cb, &seen), ERR_INVALID);
    store_close(s);
}

struct reenter {
    struct store *s;
    int inner_rc;
    int calls;
};

static int reenter_cb(void *arg, const struct store_note *n)
{
    struct reenter *r = arg;
    struct seen ignored = { 0 };
    r->calls++;
    r->inner_rc = store_note_list(r->s, n->owner_id, INT64_MAX, 10, false, collect_cb, &ignored);
    return 0;
}

Test(store, list_callback_cannot_reenter_the_same_listing)
{
    struct store *s = open_db();
    int64_t a = add_user(s, "alice", "user");
    add_note(s, a, "t", "c", 1);
    add_note(s, a, "t", "c", 1);
    struct reenter r = { .s = s };
    cr_assert_eq(store_note_list(s, a, INT64_MAX, 10, false, reenter_cb, &r), 0);
    cr_assert_eq(r.calls, 2, "the outer listing was disturbed");
    cr_assert_eq(r.inner_rc, ERR_INTERNAL);
    store_close(s);
}

struct rekey {
    struct store *s;
    uint32_t to;
    int done;
};

static int rekey_cb(void *arg, const struct store_note *n)
{
    struct rekey *r = arg;
    cr_assert_eq(n->content.len, 7, "list_not_key must fill content");
    cr_assert_eq(store_note_update(r->s, n->id, n->owner_id, slice_of(&n->title), slice_of(&n->content),
                                   r->to, 9), 0);
    r->done++;
    return 0;
}

Test(store, note_list_not_key)
{
    struct store *s = open_db();
    int64_t a = add_user(s, "alice", "user");
    int64_t b = add_user(s, "bob", "user");
    int64_t old[4];
    old[0] = add_note(s, a, "t", "content", 1);
    add_note(s, a, "t", "content", 2);
    old[1] = add_note(s, b, "t", "content", 1);
    old[2] = add_note(s, a, "t", "content", 3);
    add_note(s, b, "t", "content", 2);
    old[3] = add_note(s, a, "t", "content", 1);

    struct seen seen = { 0 };
    cr_assert_eq(store_note_list_not_key(s, 2, 0, 3, collect_cb, &seen), 0);
    cr_assert_eq(seen.n, 3);
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(seen.ids[i], old[i], "oldest first, skipping key 2");
        cr_assert_neq(seen.keys[i], 2);
        cr_assert_eq(seen.content_len[i], 7);
    }
    int64_t count = 0;
    cr_assert_eq(store_note_count_not_key(s, 2, &count), 0);
    cr_assert_eq(count, 4);

    /* After a note (one rekey could not open, say): only those past it. */
    struct seen after = { 0 };
    cr_assert_eq(store_note_list_not_key(s, 2, old[1], 100, collect_cb, &after), 0);
    cr_assert_eq(after.n, 2);
    cr_assert_eq(after.ids[0], old[2]);
    cr_assert_eq(after.ids[1], old[3]);

    /* Rekey in batches, updating from inside the callback. */
    struct rekey r = { .s = s, .to = 2 };
    for (int round = 0; round < 5; round++) {
        int before = r.done;
        cr_assert_eq(store_note_list_not_key(s, 2, 0, 3, rekey_cb, &r), 0);
        if (r.done == before)
            break;
    }
    cr_assert_eq(r.done, 4);
    struct seen left = { 0 };
    cr_assert_eq(store_note_list_not_key(s, 2, 0, 100, collect_cb, &left), 0);
    cr_assert_eq(left.n, 0);
    cr_assert_eq(store_note_count_not_key(s, 2, &count), 0);
    cr_assert_eq(count, 0);
    store_close(s);
}

/* ---- key usage ----------------------------------------------------------- */

Test(store, key_use_accumulates_per_key)
{
    struct store *s = open_db();
    uint64_t total = 0;
    cr_assert_eq(store_key_use(s, 7, 2, &total), 0);
    cr_assert_eq(total, 2);
    cr_assert_eq(store_key_use(s, 7, 3, &total), 0);
    cr_assert_eq(total, 5);
    cr_assert_eq(store_key_use(s, 0xffffffffu, 10, &total), 0);
    cr_assert_eq(total, 10);
    cr_assert_eq(store_key_use(s, 7, 0, &total), 0);
    cr_assert_eq(total, 5);
    store_close(s);

    s = open_db();
    cr_assert_eq(store_key_use(s, 7, 1, &total), 0);
    cr_assert_eq(total, 6, "count lost across restart");
    store_close(s);
}

Test(store, key_use_never_wraps)
{
    struct store *s = open_db();
    uint64_t total = 0;
    cr_assert_eq(store_key_use(s, 1, (uint64_t)INT64_MAX + 1, &total), ERR_INVALID);
    cr_assert_eq(store_key_use(s, 1, (uint64_t)INT64_MAX - 1, &total), 0);
    cr_assert_eq(store_key_use(s, 1, 1, &total), 0);
    cr_assert_eq(total, (uint64_t)INT64_MAX);
    cr_assert_neq(store_key_use(s, 1, 1, &total), 0, "the count overflowed");
    cr_assert_eq(store_key_use(s, 1, 0, &total), 0);
    cr_assert_eq(total, (uint64_t)INT64_MAX);
    store_close(s);
}

/* What another connection (another process) sees as the count. */
static uint64_t key_count(uint32_t key_id)
{
    struct store *o = open_db();
    uint64_t total = 0;
    cr_assert_eq(store_key_use(o, key_id, 0, &total), 0);
    store_close(o);
    return total;
}

Test(store, key_reserve_counts_ahead_in_blocks)
{
    struct store *s = open_db();
    uint64_t total = 0, added = 0;
    cr_assert_eq(store_key_reserve(s, 7, 2, 10, &total, &added), 0);
    cr_assert_eq(added, 10);
    cr_assert_eq(total, 10);
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(store_key_reserve(s, 7, 2, 10, &total, &added), 0);
        cr_assert_eq(added, 0, "call %d wrote the count", i);
        cr_assert_eq(total, 10);
    }
    cr_assert_eq(key_count(7), 10);
    cr_assert_eq(store_key_reserve(s, 7, 2, 10, &total, &added), 0, "the block is used up");
    cr_assert_eq(added, 10);
    cr_assert_eq(key_count(7), 20);
    cr_assert_eq(store_key_reserve(s, 7, 25, 10, &total, &added), 0, "more than a block at once");
    cr_assert_eq(added, 25);
    cr_assert_eq(store_key_reserve(s, 8, 1, 10, &total, &added), 0, "another key");
    cr_assert_eq(added, 10);
    cr_assert_eq(key_count(8), 10);
    store_close(s);
}

Test(store, key_reserve_forgets_a_block_whose_count_was_rolled_back)
{
    struct store *s = open_db();
    uint64_t total = 0, added = 0;
    cr_assert_eq(store_begin(s), 0);
    cr_assert_eq(store_key_reserve(s, 7, 2, 10, &total, &added), 0);
    store_rollback(s);
    cr_assert_eq(key_count(7), 0);
    cr_assert_eq(store_key_reserve(s, 7, 2, 10, &total, &added), 0);
    cr_assert_eq(added, 10, "encryptions were served from a count that was rolled back");
    cr_assert_eq(key_count(7), 10);
    /* A savepoint's rollback may undo a raise too. */
    cr_assert_eq(store_begin(s), 0);
    cr_assert_eq(store_begin(s), 0);
    cr_assert_eq(store_key_reserve(s, 7, 2, 10, &total, &added), 0);
    store_rollback(s);
    cr_assert_eq(store_key_reserve(s, 7, 1, 10, &total, &added), 0);
    cr_assert_eq(added, 10, "served from a count a savepoint rolled back");
    cr_assert_eq(store_commit(s), 0);
    cr_assert_eq(key_count(7), 20);
    store_close(s);
}

/* ---- hostile input ------------------------------------------------------- */

#define INJECT "x'); DROP TABLE notes;--"

Test(store, sql_injection_strings_are_plain_data)
{
    struct store *s = open_db();
    int64_t uid = add_user(s, INJECT, "user");
    struct store_user u;
    cr_assert_eq(store_user_get_by_name(s, INJECT, &u), 0);
    cr_assert_str_eq(u.username, INJECT);
    cr_assert_eq(u.id, uid);

    static const uint8_t content[] = "'; DELETE FROM users; SELECT \"\0\x01\xff\" /* --";
    struct slice c = { content, sizeof(content) };
    int64_t id = 0;
    cr_assert_eq(store_note_insert(s, uid, 1, &id), 0);
    cr_assert_eq(store_note_update(s, id, uid, SLICE_LIT(INJECT), c, 1, 2), 0);
    struct store_note n;
    store_note_init(&n);
    cr_assert_eq(store_note_get_own(s, id, uid, &n), 0);
    cr_assert_eq(n.content.len, sizeof(content));
    cr_assert_eq(memcmp(n.content.data, content, sizeof(content)), 0);
    cr_assert_eq(n.title.len, strlen(INJECT));
    cr_assert_eq(memcmp(n.title.data, INJECT, n.title.len), 0);
    store_note_cleanup(&n);
    store_close(s);

    /* The tables are all still there and usable after a reopen. */
    s = open_db();
    cr_assert_eq(store_user_get(s, uid, &u), 0);
    int64_t other = add_user(s, "after", "user");
    add_note(s, other, "t", "c", 1);
    struct seen all = { 0 };
    cr_assert_eq(store_note_list(s, 0, INT64_MAX, 10, false, collect_cb, &all), 0);
    cr_assert_eq(all.n, 2);
    uint8_t h[STORE_HASH_LEN];
    hash_of(h, 3);
    cr_assert_eq(store_session_insert(s, h, other, 1, 2, 16), 0);
    uint64_t total;
    cr_assert_eq(store_key_use(s, 1, 1, &total), 0);
    store_close(s);
}

/* The quotas read one row: it must follow every change of the notes. */
Test(store, usage_follows_notes_added_changed_and_deleted, .init = setup, .fini = teardown)
{
    struct store *s = open_db();
    int64_t a = add_user(s, "alice", "user"), b = add_user(s, "bob", "user");
    struct store_usage u;
    cr_assert_eq(store_usage_get(s, a, &u), 0);
    cr_assert(u.notes == 0 && u.bytes == 0);
    int64_t n1 = add_note(s, a, "0123456789", "01234567890123456789", 1);
    cr_assert_eq(store_usage_get(s, a, &u), 0);
    cr_assert(u.notes == 1 && u.bytes == 30, "%lld notes, %lld bytes", (long long)u.notes, (long long)u.bytes);
    cr_assert_eq(store_note_update(s, n1, a, slice_str("0123456789"), slice_str("01234"), 1, 5), 0);
    int64_t n2 = add_note(s, a, "abc", "defg", 1);
    cr_assert_eq(store_usage_get(s, a, &u), 0);
    cr_assert(u.notes == 2 && u.bytes == 22, "%lld notes, %lld bytes", (long long)u.notes, (long long)u.bytes);

    /* another owner's note, or none: nothing changes */
    cr_assert_eq(store_note_update(s, n1, b, slice_str("x"), slice_str("y"), 1, 5), ERR_NOT_FOUND);
    cr_assert_eq(store_note_delete_own(s, n2, b), ERR_NOT_FOUND);
    cr_assert_eq(store_note_delete_own(s, 9999, a), ERR_NOT_FOUND);
    cr_assert_eq(store_usage_get(s, a, &u), 0);
    cr_assert(u.notes == 2 && u.bytes == 22);
    cr_assert_eq(store_usage_get(s, b, &u), 0);
    cr_assert(u.notes == 0 && u.bytes == 0);

    cr_assert_eq(store_note_delete_own(s, n1, a), 0);
    cr_assert_eq(store_usage_get(s, a, &u), 0);
    cr_assert(u.notes == 1 && u.bytes == 7, "%lld notes, %lld bytes", (long long)u.notes, (long long)u.bytes);
    store_close(s);
}
