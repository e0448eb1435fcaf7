/*
 * Integration tests of the notes routes (suite notes: create, read, update,
 * delete, Location and paging) and of authorization (suite rbac: every route
 * for every principal). Fixtures and helpers: api_support.h.
 */
#include <criterion/criterion.h>
#include <cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_support.h"

Test(notes, crud_location_and_paging, .init = start_open, .fini = finish)
{
    char name[40];
    harness_marker(name, sizeof(name), "carol_");
    register_user(name, PW1);
    char *tok = login(name, PW1);

    /* create: 201, Location, the note */
    char *b = note_body("First note", "Hello\nworld\twith tab");
    struct response r;
    call("POST", "/v1/notes", tok, b, 201, &r);
    free(b);
    cJSON *j = json_of(&r);
    int64_t id = jint(j, "id");
    cr_assert_gt(id, 0);
    cr_assert_str_eq(jstr(j, "title"), "First note");
    cr_assert_str_eq(jstr(j, "content"), "Hello\nworld\twith tab");
    assert_rfc3339(jstr(j, "created_at"));
    assert_rfc3339(jstr(j, "updated_at"));
    char *loc = response_header(&r, "Location");
    char want[64];
    note_path(want, sizeof(want), id);
    cr_assert(loc, "201 without Location");
    cr_assert_str_eq(loc, want);
    cJSON_Delete(j);
    response_free(&r);

    /* read it back through Location */
    assert_note(tok, id, "First note", "Hello\nworld\twith tab");

    /* update: 200 with the new values; the id stays */
    b = note_body("First note, edited", "");
    call("PUT", loc, tok, b, 200, &r);
    free(b);
    j = json_of(&r);
    cr_assert_eq(jint(j, "id"), id);
    cr_assert_str_eq(jstr(j, "title"), "First note, edited");
    cr_assert_str_eq(jstr(j, "content"), "");
    cJSON_Delete(j);
    response_free(&r);
    assert_note(tok, id, "First note, edited", "");

    /* four more: five in all */
    int64_t ids[5] = { id };
    for (int i = 1; i < 5; i++) {
        char t[32];
        snprintf(t, sizeof(t), "Note %d", i);
        ids[i] = create_note(tok, t, "body");
        cr_assert_gt(ids[i], ids[i - 1], "ids are not increasing");
    }

    /* pages of 2, newest first, every id once, until next_cursor is null */
    int64_t seen[16];
    size_t n_seen = 0;
    int pages = 0;
    char path[256] = "/v1/notes?limit=2";
    for (;;) {
        cr_assert_lt(pages, 6, "paging does not end");
        call("GET", path, tok, NULL, 200, &r);
        pages++;
        j = json_of(&r);
        const cJSON *notes = cJSON_GetObjectItemCaseSensitive(j, "notes");
        cr_assert(cJSON_IsArray(notes), "%s", r.body);
        cr_assert_leq(cJSON_GetArraySize(notes), 2, "page larger than limit: %s", r.body);
        const cJSON *n;
        cJSON_ArrayForEach(n, notes) {
            int64_t nid = jint(n, "id");
            cr_assert_lt(n_seen, 16);
            if (n_seen)
                cr_assert_lt(nid, seen[n_seen - 1], "not newest first: %s", r.body);
            for (size_t k = 0; k < n_seen; k++)
                cr_assert_neq(seen[k], nid, "id %lld seen twice", (long long)nid);
            seen[n_seen++] = nid;
            jstr(n, "title");
        }
        const cJSON *next = cJSON_GetObjectItemCaseSensitive(j, "next_cursor");
        cr_assert(next, "no next_cursor member: %s", r.body);
        if (cJSON_IsNull(next)) {
            cJSON_Delete(j);
            response_free(&r);
            break;
        }
        cr_assert(cJSON_IsString(next), "%s", r.body);
        cr_assert_eq(cJSON_GetArraySize(notes), 2, "a short page with a next_cursor: %s", r.body);
        snprintf(path, sizeof(path), "/v1/notes?limit=2&cursor=%s", next->valuestring);
        cJSON_Delete(j);
        response_free(&r);
    }
    cr_assert_eq(pages, 3, "5 notes in pages of 2 took %d pages", pages);
    cr_assert_eq(n_seen, 5);
    for (int i = 0; i < 5; i++)
        cr_assert_eq(seen[i], ids[4 - i], "position %d: %lld, expected %lld", i, (long long)seen[i],
                     (long long)ids[4 - i]);

    /* default page: all five, no next page */
    call("GET", "/v1/notes", tok, NULL, 200, &r);
    j = json_of(&r);
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j, "notes")), 5);
    cr_assert(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(j, "next_cursor")), "%s", r.body);
    cJSON_Delete(j);
    response_free(&r);

    /* exactly limit notes: no next page */
    call("GET", "/v1/notes?limit=5", tok, NULL, 200, &r);
    j = json_of(&r);
    cr_assert(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(j, "next_cursor")), "%s", r.body);
    cJSON_Delete(j);
    response_free(&r);

    /* delete: 204, then 404 for GET, PUT and DELETE */
    call("DELETE", loc, tok, NULL, 204, &r);
    cr_assert_eq(r.body_len, 0);
    response_free(&r);
    call("GET", loc, tok, NULL, 404, &r);
    assert_header(&r, "Content-Type", "application/problem+json");
    response_free(&r);
    b = note_body("again", "again");
    call_free("PUT", loc, tok, b, 404);
    free(b);
    call_free("DELETE", loc, tok, NULL, 404);

    call("GET", "/v1/notes", tok, NULL, 200, &r);
    j = json_of(&r);
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j, "notes")), 4);
    cJSON_Delete(j);
    response_free(&r);
    free(loc);
    free(tok);
}

enum who { ANON, FORGED, USER_A, USER_B, ADMIN, N_WHO };
static const char *const who_name[N_WHO] = { "anonymous", "forged token", "user A", "user B", "admin" };

#define SKIP 0

struct rbac_row {
    const char *method;
    const char *path;   /* {a} {b} {adm} {da} {m} {uid_a}: see expand() */
    const char *body;
    int want[N_WHO];    /* in the order the loop runs: anon, forged, A, B, admin */
};

Test(rbac, every_route_for_every_principal, .init = start_open, .fini = finish)
{
    char na[40], nb[40], nadm[40];
    harness_marker(na, sizeof(na), "ua_");
    harness_marker(nb, sizeof(nb), "ub_");
    harness_marker(nadm, sizeof(nadm), "root_");
    int64_t uid_a = register_user(na, PW1);
    register_user(nb, PW2);
    cr_assert_eq(cli_add_user(nadm, "admin", PW_ADMIN), 0, "notesd user add --role admin failed:\n%s",
                 harness_stderr(&srv));
    char *tok[N_WHO] = { NULL, harness_strdup("nt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"), login(na, PW1),
                         login(nb, PW2), login(nadm, PW_ADMIN) };
    cr_assert_eq(strlen(tok[FORGED]), 46);

    struct rbac_ids ids = { 0 };
    ids.a = create_note(tok[USER_A], "A's note", "secret of A");
    ids.da = create_note(tok[USER_A], "A's note to delete", "x");
    ids.b = create_note(tok[USER_B], "B's note", "secret of B");
    ids.adm = create_note(tok[ADMIN], "admin's note", "secret of admin");
    ids.m = 999999;
    ids.uid_a = uid_a;

    /* a foreign note answers exactly like a missing one */
    static const char *const methods[] = { "GET", "PUT", "DELETE" };
    char *nb_body = note_body("hijack", "hijack");
    for (size_t i = 0; i < 3; i++) {
        char pf[64], pm[64];
        note_path(pf, sizeof(pf), ids.b);
        note_path(pm, sizeof(pm), ids.m);
        const char *body = strcmp(methods[i], "PUT") == 0 ? nb_body : NULL;
        struct response foreign, missing;
        struct rq q1 = { .method = methods[i], .path = pf, .token = tok[USER_A], .body = body };
        struct rq q2 = { .method = methods[i], .path = pm, .token = tok[USER_A], .body = body };
        do_req(&q1, &foreign);
        do_req(&q2, &missing);
        cr_assert_eq(foreign.status, 404, "%s foreign note: %ld", methods[i], foreign.status);
        assert_same_except_request_id(&foreign, &missing, methods[i]);
        response_free(&foreign);
        response_free(&missing);
    }
    assert_note(tok[USER_B], ids.b, "B's note", "secret of B");

    char *taken = cred_body(na, PW3);
    char *good_login = cred_body(nb, PW2);
    const char *wrong_pw = "{\"current_password\":\"not-the-Password-1\",\"new_password\":\"fresh-Password-8812\"}";
    const char *wrong_del = "{\"password\":\"not-the-Password-1\"}";

    /* columns: anon, forged, A, B, admin; SKIP: not sent */
    const struct rbac_row rows[] = {
        { "GET", "/healthz", NULL, { 200, 200, 200, 200, 200 } },
        { "POST", "/v1/auth/register", taken, { 409, 409, 409, 409, 409 } },
        { "POST", "/v1/auth/login", good_login, { 200, 200, 200, 200, 200 } },
        { "GET", "/v1/me", NULL, { 401, 401, 200, 200, 200 } },
        { "GET", "/v1/me/export", NULL, { 401, 401, 200, 200, 200 } },
        { "POST", "/v1/notes", nb_body, { 401, 401, 201, 201, 201 } },
        { "GET", "/v1/notes", NULL, { 401, 401, 200, 200, 200 } },
        { "GET", "/v1/notes/{a}", NULL, { 401, 401, 200, 404, 404 } },
        { "GET", "/v1/notes/{b}", NULL, { 401, 401, 404, 200, 404 } },
        { "GET", "/v1/notes/{adm}", NULL, { 401, 401, 404, 404, 200 } },
        { "GET", "/v1/notes/{m}", NULL, { 401, 401, 404, 404, 404 } },
        { "PUT", "/v1/notes/{a}", nb_body, { 401, 401, 200, 404, 404 } },
        { "PUT", "/v1/notes/{b}", nb_body, { 401, 401, 404, 200, 404 } },
        { "PUT", "/v1/notes/{adm}", nb_body, { 401, 401, 404, 404, 200 } },
        { "PUT", "/v1/notes/{m}", nb_body, { 401, 401, 404, 404, 404 } },
        { "GET", "/v1/admin/notes", NULL, { 401, 401, 403, 403, 200 } },
        { "GET", "/v1/admin/notes?owner={uid_a}", NULL, { 401, 401, 403, 403, 200 } },
        { "GET", "/v1/admin/notes/{a}", NULL, { 401, 401, 403, 403, 200 } },
        { "GET", "/v1/admin/notes/{b}", NULL, { 401, 401, 403, 403, 200 } },
        { "GET", "/v1/admin/notes/{m}", NULL, { 401, 401, 403, 403, 404 } },
        { "PATCH", "/v1/notes/{a}", nb_body, { 405, 405, 405, 405, 405 } },
        { "POST", "/v1/me", NULL, { 405, 405, 405, 405, 405 } },
        { "PUT", "/v1/notes", nb_body, { 405, 405, 405, 405, 405 } },
        { "DELETE", "/v1/admin/notes/{a}", NULL, { 405, 405, 405, 405, 405 } },
        { "GET", "/v1/auth/login", NULL, { 405, 405, 405, 405, 405 } },
        { "GET", "/v1/users", NULL, { 404, 404, 404, 404, 404 } },
        { "POST", "/v1/auth/password", wrong_pw, { 401, 401, 403, 403, 403 } },
        { "DELETE", "/v1/me", wrong_del, { 401, 401, 403, 403, 403 } },
        /* others may not delete A's note; it survives */
        { "DELETE", "/v1/notes/{a}", NULL, { 401, 401, SKIP, 404, 404 } },
        { "GET", "/v1/notes/{a}", NULL, { SKIP, SKIP, 200, SKIP, SKIP } },
        { "DELETE", "/v1/notes/{b}", NULL, { SKIP, SKIP, 404, SKIP, 404 } },
        { "DELETE", "/v1/notes/{adm}", NULL, { SKIP, SKIP, 404, 404, SKIP } },
        { "GET", "/v1/notes/{b}", NULL, { SKIP, SKIP, SKIP, 200, SKIP } },
        { "GET", "/v1/notes/{adm}", NULL, { SKIP, SKIP, SKIP, SKIP, 200 } },
        /* A deletes its own; afterwards it is missing for everybody */
        { "DELETE", "/v1/notes/{da}", NULL, { 401, 401, 204, 404, 404 } },
        { "DELETE", "/v1/notes/{da}", NULL, { SKIP, SKIP, 404, SKIP, SKIP } },
        { "GET", "/v1/admin/notes/{da}", NULL, { SKIP, SKIP, SKIP, SKIP, 404 } },
        { "DELETE", "/v1/notes/{m}", NULL, { 401, 401, 404, 404, 404 } },
        /* logout ends each session; then everything needs a token again */
        { "POST", "/v1/auth/logout", NULL, { 401, 401, 204, 204, 204 } },
        { "GET", "/v1/me", NULL, { 401, 401, 401, 401, 401 } },
        { "GET", "/v1/notes/{a}", NULL, { 401, 401, 401, 401, 401 } },
        { "GET", "/v1/admin/notes", NULL, { 401, 401, 401, 401, 401 } },
    };

    int failures = 0;
    char report[8192] = "";
    size_t used = 0;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        char path[256];
        expand(rows[i].path, &ids, path, sizeof(path));
        for (int w = 0; w < N_WHO; w++) {
            if (rows[i].want[w] == SKIP)
                continue;
            struct rq q = { .method = rows[i].method, .path = path, .token = tok[w], .body = rows[i].body };
            struct response r;
            do_req(&q, &r);
            bool ok = r.status == rows[i].want[w];
            if (ok && r.status == 401) {
                char *wa = response_header(&r, "WWW-Authenticate");
                ok = wa && strncmp(wa, "Bearer", 6) == 0 &&
                     (tok[w] ? strstr(wa, "error=\"invalid_token\"") != NULL : strstr(wa, "error=") == NULL);
                free(wa);
            }
            if (ok && r.status >= 400) {
                char *ct = response_header(&r, "Content-Type");
                ok = ct && strcmp(ct, "application/problem+json") == 0;
                free(ct);
            }
            if (!ok) {
                failures++;
                int k = snprintf(report + used, sizeof(report) - used, "  %s %s as %s: expected %d, got %ld %.160s\n",
                                 rows[i].method, path, who_name[w], rows[i].want[w], r.status, r.body);
                if (k > 0 && (size_t)k < sizeof(report) - used)
                    used += (size_t)k;
            }
            response_free(&r);
        }
    }
    cr_assert_eq(failures, 0, "%d RBAC cells wrong (or 401 without the right challenge, or an error "
                              "that is not problem+json):\n%s", failures, report);
    for (int w = 0; w < N_WHO; w++)
        free(tok[w]);
    free(taken);
    free(good_login);
    free(nb_body);
}
