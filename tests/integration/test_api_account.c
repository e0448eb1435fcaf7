/*
 * Integration tests of whole accounts: export and erasure (suite account),
 * the admin routes and CLI role management (suite admin), and the per-account
 * caps (suite quota). Fixtures and helpers: api_support.h.
 */
#include <criterion/criterion.h>
#include <cJSON.h>
#include <curl/curl.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_support.h"

static int cli(const char *a, const char *b, const char *c, const char *d)
{
    const char *args[] = { a, b, c, d, NULL };
    return harness_run(&srv, args);
}

static cJSON *admin_list(const char *tok, const char *query, struct response *r)
{
    char path[256];
    snprintf(path, sizeof(path), "/v1/admin/notes%s", query);
    call("GET", path, tok, NULL, 200, r);
    return json_of(r);
}

Test(admin, admin_reads_everything_and_the_cli_manages_roles, .init = start_open, .fini = finish)
{
    char na[40], nb[40], nadm[40];
    harness_marker(na, sizeof(na), "adma_");
    harness_marker(nb, sizeof(nb), "admb_");
    harness_marker(nadm, sizeof(nadm), "boss_");
    int64_t uid_a = register_user(na, PW1), uid_b = register_user(nb, PW2);
    cr_assert_eq(cli_add_user(nadm, "admin", PW_ADMIN), 0, "user add --role admin:\n%s", harness_stderr(&srv));
    /* the CLI refuses bad input */
    cr_assert_eq(cli_add_user(nadm, "admin", PW_ADMIN), 65, "a taken name was accepted");
    char other[40];
    harness_marker(other, sizeof(other), "weak_");
    cr_assert_eq(cli_add_user(other, "admin", "password1234"), 65, "a common password was accepted");
    cr_assert_eq(cli_add_user(other, "root", PW_ADMIN), 64, "an unknown role was accepted");
    cr_assert_eq(login_status(other, "password1234"), 401);

    char *ta = login(na, PW1), *tb = login(nb, PW2), *tadm = login(nadm, PW_ADMIN);
    struct response r;
    call("GET", "/v1/me", tadm, NULL, 200, &r);
    cJSON *me = json_of(&r);
    cr_assert_str_eq(jstr(me, "role"), "admin");
    cJSON_Delete(me);
    response_free(&r);

    int64_t a1 = create_note(ta, "A one", "alpha 1"), a2 = create_note(ta, "A two", "alpha 2");
    int64_t b1 = create_note(tb, "B one", "beta 1");

    /* users: 403 */
    call("GET", "/v1/admin/notes", ta, NULL, 403, &r);
    assert_header(&r, "Content-Type", "application/problem+json");
    response_free(&r);
    call_free("GET", "/v1/admin/notes", tb, NULL, 403);
    char path[64];
    snprintf(path, sizeof(path), "/v1/admin/notes/%lld", (long long)b1);
    call_free("GET", path, ta, NULL, 403);

    /* admin: every note with owner_id */
    cJSON *j = admin_list(tadm, "", &r);
    const cJSON *notes = cJSON_GetObjectItemCaseSensitive(j, "notes");
    struct {
        int64_t id, owner;
        const char *title;
        bool seen;
    } want[] = { { a1, uid_a, "A one", false }, { a2, uid_a, "A two", false }, { b1, uid_b, "B one", false } };
    const cJSON *n;
    int count = 0;
    cJSON_ArrayForEach(n, notes) {
        count++;
        for (size_t i = 0; i < 3; i++)
            if (jint(n, "id") == want[i].id) {
                cr_assert_eq(jint(n, "owner_id"), want[i].owner, "owner of note %lld", (long long)want[i].id);
                cr_assert_str_eq(jstr(n, "title"), want[i].title);
                want[i].seen = true;
            }
    }
    cr_assert_eq(count, 3, "%s", r.body);
    for (size_t i = 0; i < 3; i++)
        cr_assert(want[i].seen, "note %lld missing from the admin list: %s", (long long)want[i].id, r.body);
    cJSON_Delete(j);
    response_free(&r);

    /* owner= filter */
    char q[64];
    snprintf(q, sizeof(q), "?owner=%lld", (long long)uid_a);
    j = admin_list(tadm, q, &r);
    count = 0;
    cJSON_ArrayForEach(n, cJSON_GetObjectItemCaseSensitive(j, "notes")) {
        count++;
        cr_assert_eq(jint(n, "owner_id"), uid_a, "owner= filter leaked: %s", r.body);
    }
    cr_assert_eq(count, 2, "%s", r.body);
    cJSON_Delete(j);
    response_free(&r);
    snprintf(q, sizeof(q), "?owner=%lld&limit=1", (long long)uid_b);
    j = admin_list(tadm, q, &r);
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j, "notes")), 1, "%s", r.body);
    cr_assert_eq(jint(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "notes"), 0), "id"), b1);
    cJSON_Delete(j);
    response_free(&r);
    j = admin_list(tadm, "?owner=999999", &r);
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j, "notes")), 0, "%s", r.body);
    cJSON_Delete(j);
    response_free(&r);
    /* paging for admins */
    j = admin_list(tadm, "?limit=2", &r);
    const cJSON *next = cJSON_GetObjectItemCaseSensitive(j, "next_cursor");
    cr_assert(cJSON_IsString(next), "%s", r.body);
    char q2[128];
    snprintf(q2, sizeof(q2), "?limit=2&cursor=%s", next->valuestring);
    response_free(&r);
    cJSON *j2 = admin_list(tadm, q2, &r);
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j2, "notes")), 1);
    cr_assert(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(j2, "next_cursor")));
    cJSON_Delete(j2);
    cJSON_Delete(j);
    response_free(&r);
    call("GET", "/v1/admin/notes?owner=0", tadm, NULL, 400, &r);
    assert_400_fields(&r, "owner", NULL, "owner=0");
    response_free(&r);
    call("GET", "/v1/admin/notes?owner=abc", tadm, NULL, 400, &r);
    assert_400_fields(&r, "owner", NULL, "owner=abc");
    response_free(&r);
    call("GET", "/v1/admin/notes?owner=01", tadm, NULL, 400, &r);
    assert_400_fields(&r, "owner", NULL, "owner=01");
    response_free(&r);
    call("GET", "/v1/admin/notes?user=1", tadm, NULL, 400, &r);
    assert_400_fields(&r, "query", NULL, "user=1");
    response_free(&r);

    /* one note, decrypted, with its owner */
    call("GET", path, tadm, NULL, 200, &r);
    j = json_of(&r);
    cr_assert_eq(jint(j, "id"), b1);
    cr_assert_eq(jint(j, "owner_id"), uid_b);
    cr_assert_str_eq(jstr(j, "title"), "B one");
    cr_assert_str_eq(jstr(j, "content"), "beta 1");
    cJSON_Delete(j);
    response_free(&r);

    /* set-role: takes effect on the existing session */
    cr_assert_eq(cli("user", "set-role", na, "admin"), 0, "set-role admin:\n%s", harness_stderr(&srv));
    call_free("GET", "/v1/admin/notes", ta, NULL, 200);
    call("GET", "/v1/me", ta, NULL, 200, &r);
    me = json_of(&r);
    cr_assert_str_eq(jstr(me, "role"), "admin");
    cJSON_Delete(me);
    response_free(&r);
    cr_assert_eq(cli("user", "set-role", na, "user"), 0);
    call_free("GET", "/v1/admin/notes", ta, NULL, 403);
    cr_assert_eq(cli("user", "set-role", na, "superuser"), 64);
    cr_assert_neq(cli("user", "set-role", "no_such_user_x", "admin"), 0);
    call_free("GET", "/v1/admin/notes", ta, NULL, 403);

    /* disable: the sessions die at once, and login fails */
    cr_assert_eq(cli("user", "disable", nb, NULL), 0, "disable:\n%s", harness_stderr(&srv));
    struct rq rq = { .path = "/v1/me", .token = tb };
    do_req(&rq, &r);
    assert_401_challenge(&r, true, "disabled user's token");
    response_free(&r);
    cr_assert_eq(login_status(nb, PW2), 401, "a disabled user can log in");
    cr_assert_neq(cli("user", "disable", "no_such_user_x", NULL), 0);

    /* the others are unaffected; the disabled user's notes stay visible to admins */
    call_free("GET", "/v1/me", ta, NULL, 200);
    call_free("GET", path, tadm, NULL, 200);
    free(ta);
    free(tb);
    free(tadm);
}

Test(account, export_then_delete_leaves_nothing_behind, .init = start_open, .fini = finish)
{
    char name[40], title[48], content[48], keep_name[40];
    harness_marker(name, sizeof(name), "erase_");
    harness_marker(title, sizeof(title), "EraseTitle");
    harness_marker(content, sizeof(content), "EraseContent");
    harness_marker(keep_name, sizeof(keep_name), "keep_");
    int64_t uid = register_user(name, PW1);
    register_user(keep_name, PW2);
    char *tok = login(name, PW1), *tok2 = login(name, PW1), *keep = login(keep_name, PW2);
    int64_t n1 = create_note(tok, title, content);
    int64_t n2 = create_note(tok, "second note", "line 1\nline 2 \"quoted\"");
    int64_t kept = create_note(keep, "not erased", "belongs to someone else");

    /* export: account and every note, decrypted */
    struct response r;
    call("GET", "/v1/me/export", tok, NULL, 200, &r);
    cr_assert_null(strstr(r.body, "argon2"), "the export holds the password hash");
    cr_assert_null(strstr(r.body, "belongs to someone else"), "the export holds another user's note");
    cJSON *j = json_of(&r);
    const cJSON *acct = cJSON_GetObjectItemCaseSensitive(j, "account");
    cr_assert(cJSON_IsObject(acct), "%s", r.body);
    cr_assert_eq(jint(acct, "id"), uid);
    cr_assert_str_eq(jstr(acct, "username"), name);
    cr_assert_str_eq(jstr(acct, "role"), "user");
    /* Everything stored about the user: the account's state and each of
     * its sessions (when made, last used, when it ends), never a token or
     * its hash. */
    cr_assert(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(acct, "disabled")), "%s", r.body);
    const cJSON *sessions = cJSON_GetObjectItemCaseSensitive(j, "sessions");
    cr_assert(cJSON_IsArray(sessions), "%s", r.body);
    cr_assert_eq(cJSON_GetArraySize(sessions), 2, "%s", r.body);
    const cJSON *ses;
    cJSON_ArrayForEach(ses, sessions) {
        cr_assert_eq(cJSON_GetArraySize(ses), 3, "a session carries more than its times: %s", r.body);
        assert_rfc3339(jstr(ses, "created_at"));
        assert_rfc3339(jstr(ses, "last_seen"));
        assert_rfc3339(jstr(ses, "expires_at"));
    }
    cr_assert_null(strstr(r.body, tok), "the export holds a token");
    const cJSON *notes = cJSON_GetObjectItemCaseSensitive(j, "notes");
    cr_assert(cJSON_IsArray(notes), "%s", r.body);
    cr_assert_eq(cJSON_GetArraySize(notes), 2, "%s", r.body);
    bool s1 = false, s2 = false;
    const cJSON *n;
    cJSON_ArrayForEach(n, notes) {
        if (jint(n, "id") == n1) {
            cr_assert_str_eq(jstr(n, "title"), title);
            cr_assert_str_eq(jstr(n, "content"), content);
            s1 = true;
        } else if (jint(n, "id") == n2) {
            cr_assert_str_eq(jstr(n, "content"), "line 1\nline 2 \"quoted\"");
            s2 = true;
        }
    }
    cr_assert(s1 && s2, "%s", r.body);
    cJSON_Delete(j);
    response_free(&r);

    /* sanity: the grep sees the account while it exists */
    cr_assert_gt(db_hits(name), 0, "the username is not in notes.db / -wal at all: the grep is blind");

    /* wrong password: 403, nothing deleted */
    char *b = body2("password", "not-the-Password-1", NULL, NULL);
    call("DELETE", "/v1/me", tok, b, 403, &r);
    assert_header(&r, "Content-Type", "application/problem+json");
    response_free(&r);
    free(b);
    call_free("GET", "/v1/me", tok, NULL, 200);
    assert_note(tok, n1, title, content);

    /* right password: 204, and everything of the account is gone */
    b = body2("password", PW1, NULL, NULL);
    call("DELETE", "/v1/me", tok, b, 204, &r);
    response_free(&r);
    free(b);
    struct rq q = { .path = "/v1/me", .token = tok };
    do_req(&q, &r);
    assert_401_challenge(&r, true, "token after DELETE /v1/me");
    response_free(&r);
    q.token = tok2;
    do_req(&q, &r);
    assert_401_challenge(&r, true, "second session after DELETE /v1/me");
    response_free(&r);
    cr_assert_eq(login_status(name, PW1), 401, "the deleted account can log in");

    cr_assert_eq(db_exec("SELECT count(*) FROM users WHERE id = ?", uid, 0), 0, "the user row remains");
    cr_assert_eq(db_exec("SELECT count(*) FROM notes WHERE owner_id = ?", uid, 0), 0, "notes remain");
    cr_assert_eq(db_exec("SELECT count(*) FROM sessions WHERE user_id = ?", uid, 0), 0, "sessions remain");
    size_t hn = db_hits(name), ht = db_hits(title), hc = db_hits(content);
    cr_assert_eq(hn + ht + hc, 0,
                 "after DELETE /v1/me the database files still hold: username %zu times, title %zu, content %zu", hn,
                 ht, hc);

    /* the other user is untouched; an admin sees none of the erased notes */
    assert_note(keep, kept, "not erased", "belongs to someone else");
    char nadm[40];
    harness_marker(nadm, sizeof(nadm), "audit_");
    cr_assert_eq(cli_add_user(nadm, "admin", PW_ADMIN), 0);
    char *tadm = login(nadm, PW_ADMIN);
    char path[64];
    snprintf(path, sizeof(path), "/v1/admin/notes/%lld", (long long)n1);
    call_free("GET", path, tadm, NULL, 404);
    char query[64];
    snprintf(query, sizeof(query), "/v1/admin/notes?owner=%lld", (long long)uid);
    call("GET", query, tadm, NULL, 200, &r);
    j = json_of(&r);
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j, "notes")), 0, "%s", r.body);
    cJSON_Delete(j);
    response_free(&r);

    /* still gone after a clean shutdown (checkpoint into the main file) */
    cr_assert_eq(harness_stop(&srv), 0);
    hn = db_hits(name);
    cr_assert_eq(hn, 0, "after shutdown the database files hold the username %zu times", hn);
    free(tok);
    free(tok2);
    free(keep);
    free(tadm);
}

/* `notesd user ...` is documented as safe while the server runs (SQLite WAL).
 * That must stay true after an account erasure, which the server runs on a
 * second connection of its own. */
Test(account, cli_and_server_share_the_database_after_an_erasure, .init = start_open, .fini = finish)
{
    char gone[40], later[40], cli_made[40];
    harness_marker(gone, sizeof(gone), "gone_");
    harness_marker(later, sizeof(later), "later_");
    harness_marker(cli_made, sizeof(cli_made), "climade_");
    register_user(gone, PW1);
    char *tok = login(gone, PW1);
    char *b = body2("password", PW1, NULL, NULL);
    call_free("DELETE", "/v1/me", tok, b, 204);
    free(b);

    /* a user who registers through the API after the erasure ... */
    register_user(later, PW2);
    char *tl = login(later, PW2);
    /* ... is visible to the CLI */
    int st = cli("user", "set-role", later, "admin");
    char *err = harness_stderr(&srv);
    cr_assert_eq(st, 0, "after DELETE /v1/me, `notesd user set-role %s admin` exited %d (the CLI does not see a user "
                 "the server registered after the erasure):\n%s", later, st, err);
    free(err);
    call_free("GET", "/v1/admin/notes", tl, NULL, 200);
    /* and a user the CLI adds can log in */
    cr_assert_eq(cli_add_user(cli_made, "user", PW3), 0);
    char *tc = login(cli_made, PW3);
    call_free("GET", "/v1/me", tc, NULL, 200);
    free(tok);
    free(tl);
    free(tc);
}

/* A reader (a backup, the CLI) that outlasts the erasure's wait kept its
 * WAL truncation from completing: the account was gone, yet the answer was
 * a 500 and the audit trail said the erasure failed. */
Test(account, an_erasure_behind_a_reader_answers_204_and_truncates_later, .init = start_open, .fini = finish,
     .timeout = 60)
{
    char name[40];
    harness_marker(name, sizeof(name), "eraser_");
    register_user(name, PW1);
    char *tok = login(name, PW1);
    create_note(tok, "held", "behind a reader");

    char path[600];
    db_path(path, sizeof(path), "");
    sqlite3 *db = NULL;
    cr_assert_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK, "open %s", path);
    cr_assert_eq(sqlite3_exec(db, "BEGIN; SELECT count(*) FROM notes;", NULL, NULL, NULL), SQLITE_OK);
    size_t truncated = harness_log_count(&srv, "WAL truncated");

    char *b = body2("password", PW1, NULL, NULL);
    call_free("DELETE", "/v1/me", tok, b, 204);
    free(b);
    cr_assert_eq(login_status(name, PW1), 401, "the erased account can log in");

    cr_assert_eq(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    harness_await_log(&srv, "WAL truncated", truncated + 1, 20);
    cr_assert_eq(db_hits(name), 0, "the erased username is still in notes.db or its -wal");
    free(tok);
}

/* An export larger than one TLS output buffer (1 MiB) arrives whole: the
 * server encrypts large responses in slices. */
Test(account, large_export_arrives_complete, .init = start_open, .fini = finish, .timeout = 120)
{
    char name[40];
    harness_marker(name, sizeof(name), "big");
    register_user(name, "export-Harbor-7731-quartz");
    char *tok = login(name, "export-Harbor-7731-quartz");
    char *content = repeat('x', 60000);
    for (int i = 0; i < 24; i++)
        create_note(tok, "bulk", content);
    struct response r;
    call("GET", "/v1/me/export", tok, NULL, 200, &r);
    cr_assert_gt(r.body_len, (size_t)24 * 60000, "export is %zu bytes", r.body_len);
    cJSON *j = json_of(&r);
    cJSON *notes = cJSON_GetObjectItemCaseSensitive(j, "notes");
    cr_assert_eq(cJSON_GetArraySize(notes), 24);
    cJSON_Delete(j);
    response_free(&r);
    free(content);
    free(tok);
}

static void start_small_caps(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    harness_prepare(&srv);
    harness_setenv(&srv, "NOTES_REGISTRATION", "open");
    harness_setenv(&srv, "NOTES_USER_MAX_NOTES", "3");
    harness_setenv(&srv, "NOTES_USER_MAX_KIB", "64");
    harness_setenv(&srv, "NOTES_USER_MAX_SESSIONS", "2");
    harness_start(&srv);
}

/* POST a note, expecting `want`; the problem's field when it is a 409. */
static void create_expect(const char *tok, const char *title, const char *content, long want, const char *field)
{
    char *b = note_body(title, content);
    struct response r;
    call("POST", "/v1/notes", tok, b, want, &r);
    if (want == 409) {
        cJSON *j = json_of(&r);
        cr_assert_eq(jint(j, "status"), 409);
        if (field)
            cr_assert_str_eq(jstr(j, "field"), field, "%s", r.body);
        else
            cr_assert_null(cJSON_GetObjectItemCaseSensitive(j, "field"), "%s", r.body);
        cJSON_Delete(j);
    }
    response_free(&r);
    free(b);
}

/* Nothing bounded what an account stored: the disk, and its export, which
 * must fit one response, were the client's to fill. */
Test(quota, notes_past_the_account_caps_get_409_and_change_nothing, .init = start_small_caps, .fini = finish)
{
    char name[40];
    harness_marker(name, sizeof(name), "quota_");
    register_user(name, PW1);
    char *tok = login(name, PW1);
    char *big = repeat('a', 30000), *bigger = repeat('b', 36000), *mid = repeat('c', 10000);
    int64_t first = create_note(tok, "one", big);
    int64_t second = create_note(tok, "two", big);
    create_expect(tok, "three", mid, 409, "content");   /* ~70 KB of the 64 KiB */
    int64_t third = create_note(tok, "three", "small");
    create_expect(tok, "four", "small", 409, NULL);     /* the fourth note */

    /* an update may not grow past the bytes; the note stays as it was */
    char path[64];
    note_path(path, sizeof(path), first);
    char *b = note_body("one", bigger);
    call_free("PUT", path, tok, b, 409);
    free(b);
    assert_note(tok, first, "one", big);
    b = note_body("one", "shrunk");
    call_free("PUT", path, tok, b, 200);
    free(b);
    create_expect(tok, "four", "small", 409, NULL);     /* still three notes */

    note_path(path, sizeof(path), second);
    call_free("DELETE", path, tok, NULL, 204);
    int64_t fourth = create_note(tok, "four", mid);
    cr_assert_gt(fourth, third);
    /* each refusal is on record as a quota deny */
    unsigned long long sum;
    const char *quota = "\"result\":\"deny\",\"status\":409,\"reason\":\"quota\"";
    cr_assert_eq(harness_audit_lines(&srv, "note.create", quota, &sum), 3, "not 3 note.create quota denies");
    cr_assert_eq(harness_audit_lines(&srv, "note.update", quota, &sum), 1, "not 1 note.update quota deny");
    free(big);
    free(bigger);
    free(mid);
    free(tok);
}

/* Sessions too: a login past the cap ends an older one, never the new. */
Test(quota, a_login_past_the_session_cap_ends_an_older_session, .init = start_small_caps, .fini = finish)
{
    char name[40];
    harness_marker(name, sizeof(name), "sess_");
    register_user(name, PW1);
    char *tok[3];
    for (int i = 0; i < 3; i++)
        tok[i] = login(name, PW1);
    int alive = 0;
    for (int i = 0; i < 3; i++) {
        struct rq q = { .path = "/v1/me", .token = tok[i] };
        struct response r;
        do_req(&q, &r);
        cr_assert(r.status == 200 || r.status == 401, "token %d: %ld", i, r.status);
        alive += r.status == 200;
        if (i == 2)
            cr_assert_eq(r.status, 200, "the newest session was ended");
        response_free(&r);
    }
    cr_assert_eq(alive, 2, "%d of 3 sessions live under a cap of 2", alive);
    for (int i = 0; i < 3; i++)
        free(tok[i]);
}

/* The reviewer's case: notes of 65,536 TABs took the export past its 16 MiB
 * bound after 44 of them, and it answered 500 for good. At the default caps
 * an account fills up first, and its export still fits. */
Test(quota, an_account_filled_to_its_caps_still_exports, .init = start_open, .fini = finish, .timeout = 120)
{
    char name[40];
    harness_marker(name, sizeof(name), "full_");
    register_user(name, PW1);
    char *tok = login(name, PW1);
    char *tabs = repeat('\t', 65536);
    char *b = note_body("tabs", tabs);
    int created = 0;
    long st = 201;
    while (st == 201 && created < 200) {
        struct rq q = { .method = "POST", .path = "/v1/notes", .token = tok, .body = b };
        struct response r;
        do_req(&q, &r);
        st = r.status;
        response_free(&r);
        created += st == 201;
    }
    cr_assert_eq(st, 409, "note %d: %ld", created + 1, st);
    cr_assert_gt(created, 44);
    /* ~12 MB to decrypt and escape: more than the usual 10 s under ASan */
    const char *hdrs[2] = { NULL, NULL };
    char auth[300];
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", tok);
    hdrs[0] = auth;
    struct request_opts o = { .headers = hdrs, .timeout_ms = 60000 };
    struct response r;
    harness_request(&srv, "/v1/me/export", &o, &r);
    cr_assert_eq(r.status, 200, "export: %ld (curl %d)", r.status, r.curl_code);
    cr_assert_gt(r.body_len, (size_t)created * 131072, "the export holds less than every note");
    response_free(&r);
    free(b);
    free(tabs);
    free(tok);
}
