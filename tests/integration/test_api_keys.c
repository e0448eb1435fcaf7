/*
 * Integration tests of key material and encryption at rest: token key and
 * data key rotation, rekey (suite keys); ciphertext on disk and old values
 * leaving the WAL (suite at_rest). Fixtures and helpers: api_support.h.
 */
#include <criterion/criterion.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "api_support.h"

/* Fresh keys from `notesd gen-secrets`: the value of `name`. */
static char *fresh_key(const char *name)
{
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "'%s' gen-secrets", harness_bin());
    FILE *p = popen(cmd, "r");
    cr_assert(p);
    char line[512], *out = NULL;
    size_t nl = strlen(name);
    while (fgets(line, sizeof(line), p))
        if (strncmp(line, name, nl) == 0 && line[nl] == '=') {
            line[strcspn(line, "\r\n")] = 0;
            out = harness_strdup(line + nl + 1);
        }
    cr_assert_eq(pclose(p), 0);
    cr_assert(out, "gen-secrets printed no %s", name);
    return out;
}

Test(keys, new_token_key_invalidates_every_token, .init = start_open, .fini = finish)
{
    char name[40];
    harness_marker(name, sizeof(name), "tk_");
    register_user(name, PW1);
    char *tok = login(name, PW1);
    int64_t id = create_note(tok, "survives a token key change", "content stays readable");

    /* control: a restart with the same keys keeps the session */
    restart();
    call_free("GET", "/v1/me", tok, NULL, 200);

    char *key = fresh_key("NOTES_TOKEN_KEY");
    cr_assert_str_neq(key, harness_getenv(&srv, "NOTES_TOKEN_KEY"));
    cr_assert_eq(harness_stop(&srv), 0);
    harness_setenv(&srv, "NOTES_TOKEN_KEY", key);
    harness_start(&srv);

    struct rq q = { .path = "/v1/me", .token = tok };
    struct response r;
    do_req(&q, &r);
    assert_401_challenge(&r, true, "old token after NOTES_TOKEN_KEY changed");
    response_free(&r);
    char path[64];
    note_path(path, sizeof(path), id);
    q.path = path;
    do_req(&q, &r);
    assert_401_challenge(&r, true, "old token on a note after NOTES_TOKEN_KEY changed");
    response_free(&r);

    /* a fresh login works, and the data (other keys unchanged) is intact */
    char *tok2 = login(name, PW1);
    assert_note(tok2, id, "survives a token key change", "content stays readable");
    free(key);
    free(tok);
    free(tok2);
}

Test(at_rest, titles_and_contents_are_encrypted_on_disk, .init = start_open, .fini = finish)
{
    char name[40], title[48], content[48], title2[48], content2[48];
    harness_marker(name, sizeof(name), "rest_");
    harness_marker(title, sizeof(title), "PlainTitle");
    harness_marker(content, sizeof(content), "PlainContent");
    harness_marker(title2, sizeof(title2), "EditedTitle");
    harness_marker(content2, sizeof(content2), "EditedContent");
    register_user(name, PW1);
    char *tok = login(name, PW1);
    int64_t id = create_note(tok, title, content);
    int64_t id2 = create_note(tok, "other", content2);
    char path[64];
    note_path(path, sizeof(path), id2);
    char *b = note_body(title2, content2);
    call_free("PUT", path, tok, b, 200);
    free(b);
    assert_note(tok, id, title, content);

    /* sanity: the files are the right ones (the username is plaintext) */
    cr_assert_gt(db_hits(name), 0, "the username is not in notes.db / -wal: wrong files?");
    const char *markers[] = { title, content, title2, content2 };
    for (size_t i = 0; i < 4; i++)
        cr_assert_eq(db_hits(markers[i]), 0, "plaintext %s found in the database files", markers[i]);

    /* and after shutdown, when the WAL is checkpointed */
    cr_assert_eq(harness_stop(&srv), 0);
    cr_assert_gt(db_hits(name), 0);
    for (size_t i = 0; i < 4; i++)
        cr_assert_eq(db_hits(markers[i]), 0, "plaintext %s found after shutdown", markers[i]);
    free(tok);
}

/* A note's content as stored (sealed), read over a connection of our own
 * that is closed again before returning. */
static uint8_t *sealed_content(int64_t id, size_t *n)
{
    char path[600];
    db_path(path, sizeof(path), "");
    sqlite3 *db = NULL;
    cr_assert_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK, "open %s", path);
    sqlite3_stmt *st = NULL;
    cr_assert_eq(sqlite3_prepare_v2(db, "SELECT content FROM notes WHERE id = ?", -1, &st, NULL), SQLITE_OK);
    sqlite3_bind_int64(st, 1, id);
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW, "note %lld not in the table", (long long)id);
    *n = (size_t)sqlite3_column_bytes(st, 0);
    cr_assert_gt(*n, 16, "the content is not a sealed blob");
    uint8_t *blob = malloc(*n);
    memcpy(blob, sqlite3_column_blob(st, 0), *n);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return blob;
}

/* A passive checkpoint copies the WAL back but keeps it: the old sealed
 * values of a changed or deleted note stayed in the -wal file until later
 * writes happened to overwrite their frames. */
Test(at_rest, old_values_of_changed_and_deleted_notes_leave_the_wal, .init = start_open, .fini = finish)
{
    char name[40];
    harness_marker(name, sizeof(name), "wal_");
    register_user(name, PW1);
    char *tok = login(name, PW1);
    int64_t changed = create_note(tok, "to be changed", "the old content");
    int64_t deleted = create_note(tok, "to be deleted", "the deleted content");
    size_t lc, ld;
    uint8_t *vc = sealed_content(changed, &lc), *vd = sealed_content(deleted, &ld);
    cr_assert_gt(db_hits_bytes(vc, lc), 0, "the sealed value is not in notes.db / -wal: the search is blind");
    size_t truncated = harness_log_count(&srv, "WAL truncated");

    char path[64];
    note_path(path, sizeof(path), changed);
    char *b = note_body("changed", "the new content");
    call_free("PUT", path, tok, b, 200);
    free(b);
    harness_await_log(&srv, "WAL truncated", truncated + 1, 10);
    cr_assert_eq(db_hits_bytes(vc, lc), 0, "the old value of a changed note is still in notes.db or its -wal");

    note_path(path, sizeof(path), deleted);
    call_free("DELETE", path, tok, NULL, 204);
    harness_await_log(&srv, "WAL truncated", truncated + 2, 10);
    cr_assert_eq(db_hits_bytes(vd, ld), 0, "a deleted note's value is still in notes.db or its -wal");
    free(vc);
    free(vd);
    free(tok);
}

Test(keys, data_key_rotation_and_rekey, .init = start_open, .fini = finish)
{
    char name[40];
    harness_marker(name, sizeof(name), "dk_");
    register_user(name, PW1);
    char *tok = login(name, PW1);
    int64_t old_note = create_note(tok, "sealed under the first key", "first key content \xe2\x9c\x93");

    char *old_key = harness_strdup(harness_getenv(&srv, "NOTES_DATA_KEY"));
    char *new_key = fresh_key("NOTES_DATA_KEY");
    cr_assert_str_neq(old_key, new_key);

    /* new active key, old one as previous: old notes read, new ones seal */
    cr_assert_eq(harness_stop(&srv), 0);
    harness_setenv(&srv, "NOTES_DATA_KEY", new_key);
    harness_setenv(&srv, "NOTES_DATA_KEY_PREVIOUS", old_key);
    harness_start(&srv);
    assert_note(tok, old_note, "sealed under the first key", "first key content \xe2\x9c\x93");
    int64_t new_note = create_note(tok, "sealed under the second key", "second key content");
    assert_note(tok, new_note, "sealed under the second key", "second key content");
    call_free("GET", "/v1/notes", tok, NULL, 200);

    /* rekey (same environment, while serving): exit 0 */
    int st = harness_run(&srv, (const char *[]){ "rekey", NULL });
    cr_assert_eq(st, 0, "notesd rekey exited %d:\n%s", st, harness_stderr(&srv));
    assert_note(tok, old_note, "sealed under the first key", "first key content \xe2\x9c\x93");

    /* only the new key: everything still reads */
    cr_assert_eq(harness_stop(&srv), 0);
    harness_setenv(&srv, "NOTES_DATA_KEY_PREVIOUS", NULL);
    harness_start(&srv);
    assert_note(tok, old_note, "sealed under the first key", "first key content \xe2\x9c\x93");
    assert_note(tok, new_note, "sealed under the second key", "second key content");
    struct response r;
    call("GET", "/v1/me/export", tok, NULL, 200, &r);
    cr_assert(strstr(r.body, "first key content"), "%s", r.body);
    response_free(&r);
    free(old_key);
    free(new_key);
    free(tok);
}

/* A note sealed under the first key, and the server restarted with a new
 * NOTES_DATA_KEY and the first one as previous: what rekey starts from.
 * The note's sealed content (caller frees) is in the files; *tok too. */
struct rekey_case {
    char *tok, *old_key, *new_key;
    int64_t id;
    uint8_t *old;
    size_t len;
};

static void rekey_case_start(struct rekey_case *k, const char *prefix, const char *content)
{
    char name[40];
    harness_marker(name, sizeof(name), prefix);
    register_user(name, PW1);
    k->tok = login(name, PW1);
    k->id = create_note(k->tok, "sealed under the first key", content);
    k->old = sealed_content(k->id, &k->len);
    k->old_key = harness_strdup(harness_getenv(&srv, "NOTES_DATA_KEY"));
    k->new_key = fresh_key("NOTES_DATA_KEY");
    cr_assert_eq(harness_stop(&srv), 0);
    harness_setenv(&srv, "NOTES_DATA_KEY", k->new_key);
    harness_setenv(&srv, "NOTES_DATA_KEY_PREVIOUS", k->old_key);
    harness_start(&srv);
    assert_note(k->tok, k->id, "sealed under the first key", content);
    cr_assert_gt(db_hits_bytes(k->old, k->len), 0, "the sealed value is not in notes.db / -wal: the search is blind");
}

static void rekey_case_free(struct rekey_case *k)
{
    free(k->old);
    free(k->old_key);
    free(k->new_key);
    free(k->tok);
}

static void run_rekey(const char *which)
{
    int st = harness_run(&srv, (const char *[]){ "rekey", NULL });
    cr_assert_eq(st, 0, "%s notesd rekey exited %d:\n%s", which, st, harness_stderr(&srv));
}

/* Rekey runs beside the server, whose WAL truncation follows only its own
 * changes: the notes' values under the old key stayed in notes.db (and in
 * the -wal) until some later checkpoint, so dropping the old key from the
 * environment did not yet put them out of reach of a copy of the files. */
Test(keys, rekey_leaves_no_old_ciphertext_in_the_files, .init = start_open, .fini = finish)
{
    struct rekey_case k;
    rekey_case_start(&k, "rw_", "rekeyed content");
    run_rekey("the");
    cr_assert_eq(db_hits_bytes(k.old, k.len), 0, "the value under the old key is still in notes.db or its -wal");
    assert_note(k.tok, k.id, "sealed under the first key", "rekeyed content");
    rekey_case_free(&k);
}

/* A rekey whose truncation a reader held off left the old values in the
 * files, and running it again, with nothing left to re-encrypt, did not
 * try again: only a run that re-encrypted something truncated. */
Test(keys, a_rekey_with_nothing_left_to_do_still_clears_the_old_values, .init = start_open, .fini = finish)
{
    struct rekey_case k;
    rekey_case_start(&k, "rr_", "rekeyed twice");
    /* A reader (a backup, say) holds its snapshot through the first run. */
    char path[600];
    db_path(path, sizeof(path), "");
    sqlite3 *db = NULL;
    cr_assert_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(db, "BEGIN; SELECT count(*) FROM notes;", NULL, NULL, NULL), SQLITE_OK);
    run_rekey("the first");
    cr_assert_gt(db_hits_bytes(k.old, k.len), 0,
                 "the reader did not hold the old value in the files: the test is blind");
    sqlite3_exec(db, "COMMIT;", NULL, NULL, NULL);
    sqlite3_close(db);

    run_rekey("the second");
    cr_assert_eq(db_hits_bytes(k.old, k.len), 0, "the value under the old key is still in notes.db or its -wal");
    assert_note(k.tok, k.id, "sealed under the first key", "rekeyed twice");
    rekey_case_free(&k);
}

/* A note rekey cannot open must not stop it: the notes after it (by id)
 * were left under the old key while rekey said "finished" and exited 0, so
 * an operator who then dropped the old key lost them. */
Test(keys, rekey_carries_on_past_an_unreadable_note_and_fails, .init = start_open, .fini = finish)
{
    char name[40];
    harness_marker(name, sizeof(name), "rk_");
    register_user(name, PW1);
    char *tok = login(name, PW1);
    int64_t id[4];
    char title[4][32], content[4][32];
    for (int i = 0; i < 4; i++) {
        snprintf(title[i], sizeof(title[i]), "rekey title %d", i);
        snprintf(content[i], sizeof(content[i]), "rekey content %d", i);
        id[i] = create_note(tok, title[i], content[i]);
    }
    char *old_key = harness_strdup(harness_getenv(&srv, "NOTES_DATA_KEY"));
    char *new_key = fresh_key("NOTES_DATA_KEY");
    cr_assert_eq(harness_stop(&srv), 0);
    tamper_title(id[1]);
    harness_setenv(&srv, "NOTES_DATA_KEY", new_key);
    harness_setenv(&srv, "NOTES_DATA_KEY_PREVIOUS", old_key);

    int st = harness_run(&srv, (const char *[]){ "rekey", NULL });
    char *err = harness_stderr(&srv);
    cr_assert_neq(st, 0, "rekey exited 0 with a note it could not open:\n%s", err);
    char want[64];
    snprintf(want, sizeof(want), "note %lld", (long long)id[1]);
    cr_assert(strstr(err, want), "rekey does not name %s:\n%s", want, err);
    cr_assert(strstr(err, "NOTES_DATA_KEY_PREVIOUS"), "rekey does not say to keep the old key:\n%s", err);
    free(err);

    /* only the new key: every note but the tampered one still reads */
    harness_setenv(&srv, "NOTES_DATA_KEY_PREVIOUS", NULL);
    harness_start(&srv);
    for (int i = 0; i < 4; i++)
        if (i != 1)
            assert_note(tok, id[i], title[i], content[i]);
    char path[64];
    note_path(path, sizeof(path), id[1]);
    call_free("GET", path, tok, NULL, 500);
    free(old_key);
    free(new_key);
    free(tok);
}

/* Writes that never pause must not grow the WAL without bound: a passive
 * checkpoint alone never lets the log start over while new frames keep
 * coming (1.5 GB in 12 s under the POST benchmark). ~90 MB of frames go in
 * here; the server must start the log over well before that. */
Test(at_rest, the_wal_stays_bounded_under_continuous_writes, .init = start_open, .fini = finish,
     .timeout = 240)
{
    /* 84 MB of notes: spread over accounts, each below its 6 MiB cap, and
     * only created (a change or deletion has the WAL truncated). */
    enum { NOTES = 1400, PER_ACCOUNT = 90 };
    char *tok = NULL;
    char *content = repeat('w', 60000);
    char *body = note_body("bulk", content);
    char wal[512];
    db_path(wal, sizeof(wal), "-wal");
    off_t peak = 0;
    for (int i = 0; i < NOTES; i++) {
        if (i % PER_ACCOUNT == 0) {
            char name[40];
            harness_marker(name, sizeof(name), "wal");
            register_user(name, "wal-Granite-4471-spruce");
            free(tok);
            tok = login(name, "wal-Granite-4471-spruce");
        }
        struct response r;
        call("POST", "/v1/notes", tok, body, 201, &r);
        response_free(&r);
        struct stat st;
        if (stat(wal, &st) == 0 && st.st_size > peak)
            peak = st.st_size;
    }
    cr_assert_leq(peak, (off_t)48 << 20, "the WAL reached %lld bytes", (long long)peak);
    free(body);
    free(content);
    free(tok);
}
