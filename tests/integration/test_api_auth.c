/*
 * Integration tests of accounts and sessions (suite auth): register, login,
 * me and logout; closed registration; password changes revoking sessions;
 * token expiry and idle timeout; argon2 rehash on login. (Failed logins that
 * take as long whatever the reason: test_login_timing.c.) Fixtures and
 * helpers: api_support.h.
 */
#include <criterion/criterion.h>
#include <cJSON.h>
#include <curl/curl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api_support.h"

static void start_default(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    harness_prepare(&srv);
    harness_start(&srv);
}

Test(auth, register_login_me_logout, .init = start_open, .fini = finish)
{
    char name[40], upper[40];
    harness_marker(name, sizeof(name), "Alice_");
    for (size_t i = 0; i <= strlen(name); i++)
        upper[i] = (char)(name[i] >= 'a' && name[i] <= 'z' ? name[i] - 32 : name[i]);
    char lower[40];
    for (size_t i = 0; i <= strlen(name); i++)
        lower[i] = (char)(name[i] >= 'A' && name[i] <= 'Z' ? name[i] + 32 : name[i]);

    /* register: 201 with id, canonical (lower-case) username, role user, created_at */
    char *b = cred_body(name, PW1);
    struct response r;
    call("POST", "/v1/auth/register", NULL, b, 201, &r);
    assert_header(&r, "Content-Type", "application/json; charset=utf-8");
    cJSON *reg = json_of(&r);
    int64_t id = jint(reg, "id");
    cr_assert_gt(id, 0);
    cr_assert_str_eq(jstr(reg, "username"), lower, "the username is not lower-cased");
    cr_assert_str_eq(jstr(reg, "role"), "user");
    assert_rfc3339(jstr(reg, "created_at"));
    cr_assert_null(cJSON_GetObjectItemCaseSensitive(reg, "password"));
    cr_assert_null(strstr(r.body, "argon2"), "the password hash leaked: %s", r.body);
    response_free(&r);
    free(b);

    /* the same name again, in another case: 409 */
    b = cred_body(upper, PW2);
    call("POST", "/v1/auth/register", NULL, b, 409, &r);
    assert_header(&r, "Content-Type", "application/problem+json");
    response_free(&r);
    free(b);

    /* login: token, Bearer, expires_at */
    b = cred_body(name, PW1);
    call("POST", "/v1/auth/login", NULL, b, 200, &r);
    cJSON *lj = json_of(&r);
    char *token = harness_strdup(jstr(lj, "token"));
    cr_assert_str_eq(jstr(lj, "token_type"), "Bearer");
    assert_rfc3339(jstr(lj, "expires_at"));
    cr_assert(strlen(token) >= 32, "token too short: %s", token);
    cJSON_Delete(lj);
    response_free(&r);
    free(b);

    /* me */
    call("GET", "/v1/me", token, NULL, 200, &r);
    cJSON *me = json_of(&r);
    cr_assert_eq(jint(me, "id"), id);
    cr_assert_str_eq(jstr(me, "username"), lower);
    cr_assert_str_eq(jstr(me, "role"), "user");
    cr_assert_str_eq(jstr(me, "created_at"), jstr(reg, "created_at"));
    cJSON_Delete(me);
    response_free(&r);

    /* HEAD is served by GET routes */
    struct rq head = { .method = "HEAD", .path = "/v1/me", .token = token };
    do_req(&head, &r);
    cr_assert_eq(r.status, 200);
    response_free(&r);

    /* logout: 204, then the token fails at once */
    call("POST", "/v1/auth/logout", token, NULL, 204, &r);
    cr_assert_eq(r.body_len, 0, "204 with a body: %s", r.body);
    response_free(&r);
    struct rq q = { .path = "/v1/me", .token = token };
    do_req(&q, &r);
    assert_401_challenge(&r, true, "GET /v1/me after logout");
    response_free(&r);
    q = (struct rq){ .method = "POST", .path = "/v1/auth/logout", .token = token };
    do_req(&q, &r);
    assert_401_challenge(&r, true, "second logout");
    response_free(&r);
    q = (struct rq){ .path = "/v1/notes", .token = token };
    do_req(&q, &r);
    assert_401_challenge(&r, true, "GET /v1/notes after logout");
    response_free(&r);

    /* no token at all */
    q = (struct rq){ .path = "/v1/me" };
    do_req(&q, &r);
    assert_401_challenge(&r, false, "GET /v1/me without a token");
    assert_header(&r, "Content-Type", "application/problem+json");
    response_free(&r);

    /* logging in again works (a new session) */
    char *token2 = login(upper, PW1);
    call_free("GET", "/v1/me", token2, NULL, 200);
    cr_assert_str_neq(token, token2);

    /* wrong password, unknown user, malformed name: the same 401 */
    char unknown[40];
    harness_marker(unknown, sizeof(unknown), "nobody_");
    const char *bodies[3][2] = { { name, "wrong-Password-0000" }, { unknown, "wrong-Password-0000" },
                                 { "x", "wrong-Password-0000" } };
    struct response fail[3];
    for (int i = 0; i < 3; i++) {
        b = cred_body(bodies[i][0], bodies[i][1]);
        struct rq lq = { .method = "POST", .path = "/v1/auth/login", .body = b };
        do_req(&lq, &fail[i]);
        cr_assert_eq(fail[i].status, 401, "login case %d: %ld %s", i, fail[i].status, fail[i].body);
        assert_header(&fail[i], "Content-Type", "application/problem+json");
        free(b);
    }
    assert_same_except_request_id(&fail[0], &fail[1], "login: wrong password vs unknown user");
    assert_same_except_request_id(&fail[0], &fail[2], "login: wrong password vs malformed username");
    for (int i = 0; i < 3; i++)
        response_free(&fail[i]);

    cJSON_Delete(reg);
    free(token);
    free(token2);
}

/* GET `path` with `auth` ("Authorization: ..." or NULL) on k's connection;
 * returns the status and asserts the connection was reused after the first. */
static long ka_get(struct keepalive *k, const char *path, const char *auth, bool first)
{
    long status = ka_send(k, "GET", path, auth, NULL), connects = -1;
    curl_easy_getinfo(k->c, CURLINFO_NUM_CONNECTS, &connects);
    cr_assert_eq(connects, first ? 1 : 0, "GET %s: the keep-alive connection was not reused", path);
    return status;
}

/* The server may remember a connection's token between requests (router.c);
 * that must never let a token through that the database no longer accepts,
 * nor mix up two tokens sent on one connection. */
Test(auth, one_connection_follows_every_token_it_sends, .init = start_open, .fini = finish)
{
    char a_name[40], b_name[40], a_auth[128], b_auth[128], forged[128], me_a[32];
    harness_marker(a_name, sizeof(a_name), "ka_a_");
    harness_marker(b_name, sizeof(b_name), "ka_b_");
    int64_t a_id = register_user(a_name, PW1), b_id = register_user(b_name, PW2);
    char *a = login(a_name, PW1), *b = login(b_name, PW2);
    snprintf(a_auth, sizeof(a_auth), "Authorization: Bearer %s", a);
    snprintf(b_auth, sizeof(b_auth), "Authorization: Bearer %s", b);
    snprintf(forged, sizeof(forged), "%s", a_auth);
    char *last = forged + strlen(forged) - 1;
    *last = *last == 'A' ? 'B' : 'A';    /* same length and alphabet, one character off */
    snprintf(me_a, sizeof(me_a), "\"id\":%lld,", (long long)a_id);

    struct keepalive k;
    ka_open(&k);
    cr_assert_eq(ka_get(&k, "/v1/me", a_auth, true), 200);
    cr_assert_not_null(strstr(k.r.body, me_a), "not A's account: %s", k.r.body);
    cr_assert_eq(ka_get(&k, "/v1/me", forged, false), 401, "a token one character off was accepted");
    cr_assert_eq(ka_get(&k, "/v1/me", a_auth, false), 200);
    cr_assert_eq(ka_get(&k, "/v1/me", b_auth, false), 200);
    cJSON *j = json_of(&k.r);
    cr_assert_eq(jint(j, "id"), b_id, "B's token answered for someone else: %s", k.r.body);
    cJSON_Delete(j);
    cr_assert_eq(ka_get(&k, "/v1/me", a_auth, false), 200);
    j = json_of(&k.r);
    cr_assert_eq(jint(j, "id"), a_id);
    cJSON_Delete(j);
    cr_assert_eq(ka_get(&k, "/v1/me", NULL, false), 401);

    /* A logs out elsewhere: this connection's next request with A's token fails at once */
    call_free("POST", "/v1/auth/logout", a, NULL, 204);
    cr_assert_eq(ka_get(&k, "/v1/me", a_auth, false), 401, "a revoked token still worked on a kept connection");
    cr_assert_eq(ka_get(&k, "/v1/me", b_auth, false), 200);
    ka_close(&k);
    free(a);
    free(b);
}

Test(auth, registration_is_closed_by_default, .init = start_default, .fini = finish)
{
    char name[40];
    harness_marker(name, sizeof(name), "closed_");
    char *b = cred_body(name, PW1);
    struct response r;
    call("POST", "/v1/auth/register", NULL, b, 403, &r);
    assert_header(&r, "Content-Type", "application/problem+json");
    response_free(&r);
    /* nothing was created: the name cannot log in */
    cr_assert_eq(login_status(name, PW1), 401);
    free(b);
    /* an operator-made account works on a closed server */
    cr_assert_eq(cli_add_user(name, "user", PW1), 0, "notesd user add failed:\n%s", harness_stderr(&srv));
    char *tok = login(name, PW1);
    call_free("GET", "/v1/me", tok, NULL, 200);
    free(tok);
}

Test(auth, password_change_revokes_other_sessions, .init = start_open, .fini = finish)
{
    char name[40];
    harness_marker(name, sizeof(name), "bob_");
    register_user(name, PW1);
    char *current = login(name, PW1);
    char *other = login(name, PW1);

    /* wrong current password: 403, and nothing changes */
    char *b = body2("current_password", "not-the-Password-123", "new_password", PW2);
    struct response r;
    call("POST", "/v1/auth/password", current, b, 403, &r);
    assert_header(&r, "Content-Type", "application/problem+json");
    response_free(&r);
    free(b);
    call_free("GET", "/v1/me", other, NULL, 200);

    /* a common new password: 400 naming new_password, "too common" */
    b = body2("current_password", PW1, "new_password", "Password1234");
    call("POST", "/v1/auth/password", current, b, 400, &r);
    assert_400_fields(&r, "new_password", "too common", "common new password");
    response_free(&r);
    free(b);
    call_free("GET", "/v1/me", other, NULL, 200);

    /* anonymous: 401 */
    b = body2("current_password", PW1, "new_password", PW2);
    struct rq q = { .method = "POST", .path = "/v1/auth/password", .body = b };
    do_req(&q, &r);
    assert_401_challenge(&r, false, "anonymous password change");
    response_free(&r);

    /* the change: 204 */
    call("POST", "/v1/auth/password", current, b, 204, &r);
    response_free(&r);
    free(b);

    call_free("GET", "/v1/me", current, NULL, 200);
    q = (struct rq){ .path = "/v1/me", .token = other };
    do_req(&q, &r);
    assert_401_challenge(&r, true, "other session after a password change");
    response_free(&r);

    cr_assert_eq(login_status(name, PW1), 401, "the old password still logs in");
    char *fresh = login(name, PW2);
    call_free("GET", "/v1/me", fresh, NULL, 200);
    /* the session that changed the password still works after the new login */
    call_free("GET", "/v1/notes", current, NULL, 200);
    free(current);
    free(other);
    free(fresh);
}

static void start_short_tokens(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    harness_prepare(&srv);
    harness_setenv(&srv, "NOTES_REGISTRATION", "open");
    harness_setenv(&srv, "NOTES_TOKEN_LIFETIME", "600");
    harness_setenv(&srv, "NOTES_TOKEN_IDLE", "120");
    harness_start(&srv);
}

Test(auth, expired_and_idle_tokens_are_refused, .init = start_short_tokens, .fini = finish)
{
    char name[40];
    harness_marker(name, sizeof(name), "exp_");
    int64_t uid = register_user(name, PW1);

    /* expires_at honours NOTES_TOKEN_LIFETIME */
    char *b = cred_body(name, PW1);
    struct response r;
    time_t before = time(NULL);
    call("POST", "/v1/auth/login", NULL, b, 200, &r);
    cJSON *j = json_of(&r);
    char *tok = harness_strdup(jstr(j, "token"));
    struct tm tm = { 0 };
    const char *end = strptime(jstr(j, "expires_at"), "%Y-%m-%dT%H:%M:%SZ", &tm);
    cr_assert(end && *end == 0, "expires_at: %s", jstr(j, "expires_at"));
    time_t exp = timegm(&tm);
    cr_assert(exp >= before + 600 - 2 && exp <= time(NULL) + 600 + 2, "expires_at %s is not now + 600 s",
              jstr(j, "expires_at"));
    cJSON_Delete(j);
    response_free(&r);
    free(b);

    /* absolute lifetime over: 401 */
    int64_t now = (int64_t)time(NULL);
    cr_assert_eq(db_exec("UPDATE sessions SET expires_at = ? WHERE user_id = ?", now + 30, uid), 1);
    call_free("GET", "/v1/me", tok, NULL, 200);   /* control: still inside it */
    cr_assert_eq(db_exec("UPDATE sessions SET expires_at = ? WHERE user_id = ?", now - 1, uid), 1);
    struct rq q = { .path = "/v1/me", .token = tok };
    do_req(&q, &r);
    assert_401_challenge(&r, true, "token past expires_at");
    response_free(&r);
    /* and it stays dead even if the clock were to allow it again */
    db_exec("UPDATE sessions SET expires_at = ? WHERE user_id = ?", now + 300, uid);
    do_req(&q, &r);
    assert_401_challenge(&r, true, "expired token, second use");
    response_free(&r);
    free(tok);

    /* idle too long: 401 (control: idle a little less is fine) */
    tok = login(name, PW1);
    q.token = tok;
    now = (int64_t)time(NULL);
    cr_assert_eq(db_exec("UPDATE sessions SET last_seen = ? WHERE user_id = ?", now - 100, uid), 1);
    call_free("GET", "/v1/me", tok, NULL, 200);
    now = (int64_t)time(NULL);
    cr_assert_eq(db_exec("UPDATE sessions SET last_seen = ? WHERE user_id = ?", now - 125, uid), 1);
    do_req(&q, &r);
    assert_401_challenge(&r, true, "token idle past NOTES_TOKEN_IDLE");
    response_free(&r);
    free(tok);
}

/* Raising the argon2id parameters upgrades each stored hash at its owner's
 * next successful login (and only then). */
Test(auth, login_rehashes_when_argon2_parameters_were_raised, .init = start_open, .fini = finish, .timeout = 120)
{
    char name[40];
    harness_marker(name, sizeof(name), "rehash");
    int64_t id = register_user(name, PW1);
    cr_assert_eq(db_exec("SELECT count(*) FROM users WHERE id = ? AND password_hash LIKE '%t=2,%'", id, 0), 1);
    harness_setenv(&srv, "NOTES_ARGON2_TIME", "3");
    restart();
    cr_assert_eq(login_status(name, "wrong-password-entirely"), 401);
    cr_assert_eq(db_exec("SELECT count(*) FROM users WHERE id = ? AND password_hash LIKE '%t=2,%'", id, 0), 1,
                 "a failed login must not rehash");
    char *tok = login(name, PW1);
    cr_assert_eq(db_exec("SELECT count(*) FROM users WHERE id = ? AND password_hash LIKE '%t=3,%'", id, 0), 1,
                 "the hash was not upgraded to t=3");
    free(tok);
    free(login(name, PW1));   /* the upgraded hash still verifies */
}
