/*
 * Integration tests of what the server refuses or treats as data: bad
 * bodies, ids, queries and headers (suite validation), SQL injection and
 * tampered rows (suite security). Fixtures and helpers: api_support.h.
 */
#include <criterion/criterion.h>
#include <cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_support.h"

struct vrow {
    const char *method;
    const char *path;      /* "{a}": the user's note id */
    const char *ctype;     /* NULL: application/json (when a body is sent); "": none */
    const char *body;
    long want;
    const char *fields;    /* for 400: required names ("a|b" alternatives, "x,y" both) */
    const char *detail;    /* substring of that entry's detail, or NULL */
};

/* Content-Type may appear only once (RFC 9110 §8.3 is no list): a second
 * one, even the same media type again, means the body's type is not known. */
Test(validation, a_second_content_type_is_refused, .init = start_open, .fini = finish)
{
    char name[40];
    harness_marker(name, sizeof(name), "ctype");
    register_user(name, PW1);
    char *tok = login(name, PW1);
    const char *second[] = { "Content-Type: text/html", "Content-Type: application/json" };
    for (size_t i = 0; i < 2; i++) {
        struct rq q = { .method = "POST", .path = "/v1/notes", .token = tok,
                        .body = "{\"title\":\"t\",\"content\":\"c\"}", .extra = second[i] };
        struct response r;
        do_req(&q, &r);
        cr_assert_eq(r.status, 415, "application/json and then \"%s\": %ld %s", second[i], r.status, r.body);
        cr_assert(strstr(r.body, "Content-Type"), "the problem does not name Content-Type: %s", r.body);
        response_free(&r);
    }
    free(tok);
}

Test(validation, bad_bodies_ids_queries_and_headers, .init = start_open, .fini = finish)
{
    char name[40];
    harness_marker(name, sizeof(name), "val_");
    register_user(name, PW1);
    char *tok = login(name, PW1);
    int64_t nid = create_note(tok, "valid", "valid");
    struct rbac_ids ids = { .a = nid };

    char *t200 = repeat('a', 200), *t201 = repeat('a', 201);
    char *c64k = repeat('c', 65536), *c64k1 = repeat('c', 65537);
    char *ok200 = note_body(t200, "x"), *bad201 = note_body(t201, "x");
    char *ok64k = note_body("big", c64k), *bad64k = note_body("big", c64k1);
    /* 200 × "e" + U+0301 is 400 code points before NFC and 200 after */
    size_t nfc_len = 200 * 3;
    char *nfc = malloc(nfc_len + 1);
    for (size_t i = 0; i < 200; i++)
        memcpy(nfc + 3 * i, "e\xcc\x81", 3);
    nfc[nfc_len] = 0;
    char *ok_nfc = note_body(nfc, "x");
    char *u33 = repeat('u', 33), *p129 = repeat('p', 129);
    char *reg_u33 = cred_body(u33, PW1), *reg_p129 = cred_body("fine_name", p129);
    char *u300 = repeat('u', 300), *p2000 = repeat('p', 2000);
    char *reg_u300 = cred_body(u300, PW1), *login_p2000 = cred_body("fine_name", p2000);
    /* U+1D160 is one code point that NFC turns into three (a composition
     * exclusion): 66 of them are 198 after NFC, 67 are 201, 1024 fill the
     * title's byte cap and triple under NFC. */
    char *sym66 = malloc(4 * 1024 + 1), *sym67 = malloc(4 * 1024 + 1), *sym1024 = malloc(4 * 1024 + 1);
    for (size_t i = 0; i < 1024; i++) {
        memcpy(sym1024 + 4 * i, "\xf0\x9d\x85\xa0", 4);
        if (i < 66)
            memcpy(sym66 + 4 * i, "\xf0\x9d\x85\xa0", 4);
        if (i < 67)
            memcpy(sym67 + 4 * i, "\xf0\x9d\x85\xa0", 4);
    }
    sym66[4 * 66] = sym67[4 * 67] = sym1024[4 * 1024] = 0;
    char *ok_sym66 = note_body(sym66, "x"), *bad_sym67 = note_body(sym67, "x"), *bad_sym1024 = note_body(sym1024, "x");
    /* nesting far deeper than any parser should recurse */
    size_t depth = 50000;
    char *deep = malloc(2 * depth + 64);
    size_t dl = (size_t)snprintf(deep, 64, "{\"title\":");
    memset(deep + dl, '[', depth);
    memset(deep + dl + depth, ']', depth);
    snprintf(deep + dl + 2 * depth, 32, ",\"content\":\"c\"}");

    const struct vrow rows[] = {
        /* media type */
        { "POST", "/v1/notes", "text/plain", "{\"title\":\"t\",\"content\":\"c\"}", 415, NULL, NULL },
        { "POST", "/v1/notes", "", "{\"title\":\"t\",\"content\":\"c\"}", 415, NULL, NULL },
        { "POST", "/v1/notes", "application/x-www-form-urlencoded", "title=t&content=c", 415, NULL, NULL },
        { "PUT", "/v1/notes/{a}", "text/plain", "{\"title\":\"t\",\"content\":\"c\"}", 415, NULL, NULL },
        { "POST", "/v1/notes", "application/jsonx", "{\"title\":\"t\",\"content\":\"c\"}", 415, NULL, NULL },
        { "POST", "/v1/notes", "application/xml", "{\"title\":\"t\",\"content\":\"c\"}", 415, NULL, NULL },
        { "POST", "/v1/notes", "application/json; charset=utf-8", "{\"title\":\"t\",\"content\":\"c\"}", 201, NULL,
          NULL },
        { "POST", "/v1/auth/login", "text/plain", "{\"username\":\"abc\",\"password\":\"x\"}", 415, NULL, NULL },
        { "POST", "/v1/auth/register", "text/plain", "{\"username\":\"abc\",\"password\":\"x\"}", 415, NULL, NULL },
        /* body shape */
        { "POST", "/v1/notes", NULL, "not json", 400, "body", NULL },
        { "POST", "/v1/notes", NULL, "", 400, "body", NULL },
        { "POST", "/v1/notes", NULL, "[]", 400, "body", NULL },
        { "POST", "/v1/notes", NULL, "\"a string\"", 400, "body", NULL },
        { "POST", "/v1/notes", NULL, "{\"title\":\"t\",\"content\":\"c\"} {}", 400, "body", NULL },
        { "POST", "/v1/notes", NULL, "{\"title\":\"t\",\"content\":\"c\"", 400, "body", NULL },
        { "POST", "/v1/notes", NULL, "{\"title\":\"t\",\"content\":\"c\",\"extra\":\"x\"}", 400, "body", NULL },
        { "POST", "/v1/notes", NULL, "{\"title\":\"t\",\"content\":\"c\",\"owner_id\":\"1\"}", 400, "body", NULL },
        { "POST", "/v1/notes", NULL, "{\"title\":\"t\",\"title\":\"u\",\"content\":\"c\"}", 400, "title|body", NULL },
        /* types and presence */
        { "POST", "/v1/notes", NULL, "{\"title\":1,\"content\":\"c\"}", 400, "title", NULL },
        { "POST", "/v1/notes", NULL, "{\"title\":null,\"content\":\"c\"}", 400, "title", NULL },
        { "POST", "/v1/notes", NULL, "{\"title\":\"t\",\"content\":[\"c\"]}", 400, "content", NULL },
        { "POST", "/v1/notes", NULL, "{\"title\":\"t\",\"content\":{}}", 400, "content", NULL },
        { "POST", "/v1/notes", NULL, "{\"title\":true,\"content\":\"c\"}", 400, "title", NULL },
        { "POST", "/v1/notes", NULL, "{\"content\":\"c\"}", 400, "title", NULL },
        { "POST", "/v1/notes", NULL, "{\"title\":\"t\"}", 400, "content", NULL },
        { "POST", "/v1/notes", NULL, "{}", 400, "title,content", NULL },
        /* title rules */
        { "POST", "/v1/notes", NULL, "{\"title\":\"\",\"content\":\"c\"}", 400, "title", NULL },
        { "POST", "/v1/notes", NULL, "{\"title\":\" lead\",\"content\":\"c\"}", 400, "title", NULL },
        { "POST", "/v1/notes", NULL, "{\"title\":\"trail \",\"content\":\"c\"}", 400, "title", NULL },
        { "POST", "/v1/notes", NULL, "{\"title\":\"a\\u0007b\",\"content\":\"c\"}", 400, "title", NULL },
        { "POST", "/v1/notes", NULL, "{\"title\":\"a\\nb\",\"content\":\"c\"}", 400, "title", NULL },
        { "POST", "/v1/notes", NULL, "{\"title\":\"a\\tb\",\"content\":\"c\"}", 400, "title", NULL },
        { "POST", "/v1/notes", NULL, "{\"title\":\"a\\u200bb\",\"content\":\"c\"}", 400, "title", NULL },
        { "POST", "/v1/notes", NULL, "{\"title\":\"a\\u202eb\",\"content\":\"c\"}", 400, "title", NULL },
        { "POST", "/v1/notes", NULL, "{\"title\":\"a\\u0000b\",\"content\":\"c\"}", 400, "title|body", NULL },
        { "POST", "/v1/notes", NULL, bad201, 400, "title", NULL },
        { "POST", "/v1/notes", NULL, ok200, 201, NULL, NULL },
        { "POST", "/v1/notes", NULL, ok_nfc, 201, NULL, NULL },
        { "POST", "/v1/notes", NULL, ok_sym66, 201, NULL, NULL },
        { "POST", "/v1/notes", NULL, bad_sym67, 400, "title", NULL },
        { "POST", "/v1/notes", NULL, bad_sym1024, 400, "title", NULL },
        { "POST", "/v1/notes", NULL, deep, 400, "title|body", NULL },
        /* content rules */
        { "POST", "/v1/notes", NULL, bad64k, 400, "content", NULL },
        { "POST", "/v1/notes", NULL, ok64k, 201, NULL, NULL },
        { "POST", "/v1/notes", NULL, "{\"title\":\"t\",\"content\":\"a\\u0000b\"}", 400, "content|body", NULL },
        { "POST", "/v1/notes", NULL, "{\"title\":\"t\",\"content\":\"a\\u0001b\"}", 400, "content", NULL },
        { "POST", "/v1/notes", NULL, "{\"title\":\"t\",\"content\":\"a\xff" "b\"}", 400, "content|body", NULL },
        { "POST", "/v1/notes", NULL, "{\"title\":\"t\",\"content\":\"a\xc0\xaf" "b\"}", 400, "content|body", NULL },
        { "POST", "/v1/notes", NULL, "{\"title\":\"t\",\"content\":\"\\ud800\"}", 400, "content|body", NULL },
        { "POST", "/v1/notes", NULL, "{\"title\":\"t\",\"content\":\"x\\u0007\"}", 400, "content", NULL },
        { "POST", "/v1/notes", NULL, "{\"title\":\" \",\"content\":\"\\u0002\"}", 400, "title,content", NULL },
        { "PUT", "/v1/notes/{a}", NULL, "{\"title\":\"\",\"content\":\"c\"}", 400, "title", NULL },
        { "PUT", "/v1/notes/{a}", NULL, "{\"title\":\"t\",\"content\":\"c\",\"id\":\"5\"}", 400, "body", NULL },
        /* path ids */
        { "GET", "/v1/notes/01", NULL, NULL, 400, "id", NULL },
        { "GET", "/v1/notes/0", NULL, NULL, 400, "id", NULL },
        { "GET", "/v1/notes/00", NULL, NULL, 400, "id", NULL },
        { "GET", "/v1/notes/-1", NULL, NULL, 400, "id", NULL },
        { "GET", "/v1/notes/+1", NULL, NULL, 400, "id", NULL },
        { "GET", "/v1/notes/1a", NULL, NULL, 400, "id", NULL },
        { "GET", "/v1/notes/0x10", NULL, NULL, 400, "id", NULL },
        { "GET", "/v1/notes/1e3", NULL, NULL, 400, "id", NULL },
        { "GET", "/v1/notes/%31", NULL, NULL, 400, "id", NULL },
        { "GET", "/v1/notes/9223372036854775808", NULL, NULL, 400, "id", NULL },
        { "GET", "/v1/notes/18446744073709551617", NULL, NULL, 400, "id", NULL },
        { "GET", "/v1/notes/99999999999999999999999999", NULL, NULL, 400, "id", NULL },
        { "GET", "/v1/notes/9223372036854775807", NULL, NULL, 404, NULL, NULL },
        { "PUT", "/v1/notes/01", NULL, "{\"title\":\"t\",\"content\":\"c\"}", 400, "id", NULL },
        { "DELETE", "/v1/notes/0", NULL, NULL, 400, "id", NULL },
        { "GET", "/v1/notes/", NULL, NULL, 404, NULL, NULL },
        /* query strings */
        { "GET", "/v1/notes?limit=0", NULL, NULL, 400, "limit", NULL },
        { "GET", "/v1/notes?limit=101", NULL, NULL, 400, "limit", NULL },
        { "GET", "/v1/notes?limit=-1", NULL, NULL, 400, "limit", NULL },
        { "GET", "/v1/notes?limit=01", NULL, NULL, 400, "limit", NULL },
        { "GET", "/v1/notes?limit=abc", NULL, NULL, 400, "limit", NULL },
        { "GET", "/v1/notes?limit=", NULL, NULL, 400, "limit", NULL },
        { "GET", "/v1/notes?limit=1.5", NULL, NULL, 400, "limit", NULL },
        { "GET", "/v1/notes?limit=99999999999999999999", NULL, NULL, 400, "limit", NULL },
        { "GET", "/v1/notes?limit=1", NULL, NULL, 200, NULL, NULL },
        { "GET", "/v1/notes?limit=100", NULL, NULL, 200, NULL, NULL },
        { "GET", "/v1/notes?cursor=bogus", NULL, NULL, 400, "cursor", NULL },
        { "GET", "/v1/notes?cursor=", NULL, NULL, 400, "cursor", NULL },
        { "GET", "/v1/notes?cursor=1", NULL, NULL, 400, "cursor", NULL },
        { "GET", "/v1/notes?cursor=AAAAAAAAAAAAAAAAAAAAAAAAAAAA", NULL, NULL, 400, "cursor", NULL },
        { "GET", "/v1/notes?cursor=%41", NULL, NULL, 400, "query|cursor", NULL },
        { "GET", "/v1/notes?cursor=AAAAAAAAAAA", NULL, NULL, 400, "cursor", NULL },   /* id 0 */
        { "GET", "/v1/notes?cursor=__________8", NULL, NULL, 400, "cursor", NULL },   /* > 2^63-1 */
        { "GET", "/v1/notes?cursor=AAAAAAAAAAB", NULL, NULL, 400, "cursor", NULL },   /* stray low bits */
        { "GET", "/v1/notes?cursor=AAAAAAAAAA=", NULL, NULL, 400, "query|cursor", NULL },
        { "GET", "/v1/notes?cursor=f_________8", NULL, NULL, 200, NULL, NULL },      /* 2^63-1 */
        { "GET", "/v1/notes?cursor=AAAAAAAAAAE&limit=5", NULL, NULL, 200, NULL, NULL },
        { "GET", "/v1/notes?", NULL, NULL, 200, NULL, NULL },
        { "GET", "/v1/notes?&", NULL, NULL, 400, "query", NULL },
        { "GET", "/v1/notes?limit=+1", NULL, NULL, 400, "query|limit", NULL },
        { "GET", "/v1/notes?foo=1", NULL, NULL, 400, "query", NULL },
        { "GET", "/v1/notes?limit=2&limit=3", NULL, NULL, 400, "query|limit", NULL },
        { "GET", "/v1/notes?limit", NULL, NULL, 400, "query|limit", NULL },
        { "GET", "/v1/notes?limit=2&&cursor=x", NULL, NULL, 400, "query", NULL },
        { "GET", "/v1/notes?owner=1", NULL, NULL, 400, "query", NULL },
        { "GET", "/v1/me?x=1", NULL, NULL, 400, "query", NULL },
        { "GET", "/v1/me/export?format=csv", NULL, NULL, 400, "query", NULL },
        { "GET", "/v1/notes/{a}?x=1", NULL, NULL, 400, "query", NULL },
        { "POST", "/v1/notes?x=1", NULL, "{\"title\":\"t\",\"content\":\"c\"}", 400, "query", NULL },
        /* bodies where none belongs */
        { "DELETE", "/v1/notes/{a}", NULL, "{}", 400, "body", NULL },
        { "GET", "/v1/notes/{a}", NULL, NULL, 200, NULL, NULL },
        { "GET", "/v1/me", NULL, "{}", 400, "body", NULL },
        /* account bodies */
        { "POST", "/v1/auth/password", NULL, "{\"current_password\":\"x\",\"new_password\":\"short\"}", 400,
          "new_password", NULL },
        { "POST", "/v1/auth/password", NULL, "{\"current_password\":\"x\",\"new_password\":\"password1234\"}", 400,
          "new_password", "too common" },
        { "POST", "/v1/auth/password", NULL, "{\"new_password\":\"fresh-Password-8812\"}", 400, "current_password",
          NULL },
        { "POST", "/v1/auth/password", NULL,
          "{\"current_password\":\"x\",\"new_password\":\"fresh-Password-8812\",\"role\":\"admin\"}", 400, "body", NULL },
        { "DELETE", "/v1/me", NULL, "{}", 400, "password", NULL },
        { "DELETE", "/v1/me", NULL, "{\"password\":1}", 400, "password", NULL },
        { "DELETE", "/v1/me", "text/plain", "{\"password\":\"x\"}", 415, NULL, NULL },
        /* registration */
        { "POST", "/v1/auth/register", NULL, "{\"username\":\"ab\",\"password\":\"" PW1 "\"}", 400, "username", NULL },
        { "POST", "/v1/auth/register", NULL, reg_u33, 400, "username", NULL },
        { "POST", "/v1/auth/register", NULL, reg_u300, 400, "username", NULL },
        { "POST", "/v1/auth/register", NULL, "{\"username\":\"has space\",\"password\":\"" PW1 "\"}", 400, "username",
          NULL },
        { "POST", "/v1/auth/register", NULL, "{\"username\":\"sl/ash\",\"password\":\"" PW1 "\"}", 400, "username",
          NULL },
        { "POST", "/v1/auth/register", NULL, "{\"username\":\"\xc3\xbcmlaut\",\"password\":\"" PW1 "\"}", 400,
          "username", NULL },
        { "POST", "/v1/auth/register", NULL, "{\"username\":\"fine_name\",\"password\":\"short\"}", 400, "password",
          NULL },
        { "POST", "/v1/auth/register", NULL, reg_p129, 400, "password", NULL },
        { "POST", "/v1/auth/register", NULL, "{\"username\":\"fine_name\",\"password\":\"password1234\"}", 400,
          "password", "too common" },
        { "POST", "/v1/auth/register", NULL, "{\"username\":\"fine_name\",\"password\":\"PASSWORD1234\"}", 400,
          "password", "too common" },
        { "POST", "/v1/auth/register", NULL, "{\"username\":\"fine_name\",\"password\":\"qwertyuiop12\"}", 400,
          "password", "too common" },
        { "POST", "/v1/auth/register", NULL, "{\"username\":\"fine_name\",\"password\":\"abc\\u0001defghijklmn\"}",
          400, "password", NULL },
        { "POST", "/v1/auth/register", NULL, "{\"username\":\"fine_name\"}", 400, "password", NULL },
        { "POST", "/v1/auth/register", NULL, "{\"username\":\"ab\",\"password\":\"short\"}", 400, "username,password",
          NULL },
        { "POST", "/v1/auth/register", NULL,
          "{\"username\":\"fine_name\",\"password\":\"" PW1 "\",\"role\":\"admin\"}", 400, "body", NULL },
        { "POST", "/v1/auth/register", NULL, "{\"username\":[\"fine_name\"],\"password\":\"" PW1 "\"}", 400,
          "username", NULL },
        /* login */
        { "POST", "/v1/auth/login", NULL, "{}", 400, "username|password", NULL },
        { "POST", "/v1/auth/login", NULL, "{\"username\":\"abc\"}", 400, "password", NULL },
        { "POST", "/v1/auth/login", NULL, "{\"username\":\"abc\",\"password\":\"\"}", 400, "password", NULL },
        { "POST", "/v1/auth/login", NULL, "{\"username\":1,\"password\":\"x\"}", 400, "username", NULL },
        { "POST", "/v1/auth/login", NULL, login_p2000, 400, "password", NULL },
        { "POST", "/v1/auth/login", NULL, "{\"username\":\"abc\",\"password\":\"x\",\"remember\":\"1\"}", 400, "body",
          NULL },
    };

    int failures = 0;
    char report[16384] = "";
    size_t used = 0;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        char path[256];
        expand(rows[i].path, &ids, path, sizeof(path));
        struct rq q = { .method = rows[i].method, .path = path, .token = tok, .body = rows[i].body,
                        .ctype = rows[i].ctype };
        struct response r;
        do_req(&q, &r);
        bool ok = r.status == rows[i].want;
        if (ok && r.status == 400) {
            assert_header(&r, "Content-Type", "application/problem+json");
            cJSON *j = cJSON_ParseWithLength(r.body, r.body_len);
            const cJSON *errs = j ? cJSON_GetObjectItemCaseSensitive(j, "errors") : NULL;
            ok = cJSON_IsArray(errs) && cJSON_GetArraySize(errs) > 0;
            char list[128];
            snprintf(list, sizeof(list), "%s", rows[i].fields ? rows[i].fields : "");
            for (char *save = NULL, *f = strtok_r(list, ",", &save); ok && f; f = strtok_r(NULL, ",", &save))
                ok = errors_name(errs, f, rows[i].detail);
            cJSON_Delete(j);
        }
        if (!ok) {
            failures++;
            const char *b = rows[i].body ? rows[i].body : "";
            int k = snprintf(report + used, sizeof(report) - used,
                             "  [%zu] %s %s body=%.60s%s: expected %ld%s%s, got %ld %.220s\n", i, rows[i].method,
                             path, b, strlen(b) > 60 ? "..." : "", rows[i].want, rows[i].fields ? " naming " : "",
                             rows[i].fields ? rows[i].fields : "", r.status, r.body);
            if (k > 0 && (size_t)k < sizeof(report) - used)
                used += (size_t)k;
        }
        response_free(&r);
    }
    cr_assert_eq(failures, 0, "%d validation rows wrong:\n%s", failures, report);

    /* the NFC title is stored normalised: 200 × U+00E9 */
    struct response r;
    call("GET", "/v1/notes?limit=100", tok, NULL, 200, &r);
    cJSON *j = json_of(&r);
    bool found_nfc = false;
    const cJSON *n;
    cJSON_ArrayForEach(n, cJSON_GetObjectItemCaseSensitive(j, "notes")) {
        const char *t = jstr(n, "title");
        if (strncmp(t, "\xc3\xa9", 2) == 0) {
            found_nfc = true;
            cr_assert_eq(strlen(t), 400, "the title is not NFC: %zu bytes", strlen(t));
            for (size_t i = 0; i < 400; i += 2)
                cr_assert(t[i] == '\xc3' && t[i + 1] == '\xa9', "the title is not NFC");
        }
    }
    cr_assert(found_nfc, "the NFC title note is not listed");
    cJSON_Delete(j);
    response_free(&r);
    /* a rejected registration created nothing */
    cr_assert_eq(login_status("fine_name", PW1), 401);

    /* Authorization forms: all 401 with a Bearer challenge */
    char long_tok[128], short_tok[128], two_space[160], good[160], bad_alpha[128], lower[160], token_scheme[160];
    snprintf(long_tok, sizeof(long_tok), "Authorization: Bearer %sA", tok);
    snprintf(short_tok, sizeof(short_tok), "Authorization: Bearer %.*s", (int)strlen(tok) - 1, tok);
    snprintf(two_space, sizeof(two_space), "Authorization: Bearer  %s", tok);
    snprintf(good, sizeof(good), "Authorization: Bearer %s", tok);
    snprintf(bad_alpha, sizeof(bad_alpha), "Authorization: Bearer nt_%s", "*******************************************");
    snprintf(lower, sizeof(lower), "Authorization: Bearer %s", "nt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    snprintf(token_scheme, sizeof(token_scheme), "Authorization: Token %s", tok);
    struct {
        const char *auth, *extra;
        bool token_like;
    } forms[] = {
        { "Authorization: Basic dXNlcjpwYXNzd29yZA==", NULL, false },
        { "Authorization: Bearer", NULL, false },
        { "Authorization: Bearer ", NULL, false },
        { "Authorization;", NULL, false },
        { token_scheme, NULL, false },
        { long_tok, NULL, true },
        { short_tok, NULL, true },
        { two_space, NULL, false },
        { bad_alpha, NULL, true },
        { lower, NULL, true },
        { good, good, false },   /* two Authorization headers */
    };
    for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
        struct rq q = { .path = "/v1/me", .auth = forms[i].auth, .extra = forms[i].extra };
        do_req(&q, &r);
        char what[200];
        snprintf(what, sizeof(what), "Authorization form %zu (%.60s%s)", i, forms[i].auth,
                 forms[i].extra ? " twice" : "");
        cr_assert_eq(r.status, 401, "%s: got %ld %s", what, r.status, r.body);
        char *w = response_header(&r, "WWW-Authenticate");
        cr_assert(w && strncmp(w, "Bearer", 6) == 0, "%s: WWW-Authenticate %s", what, w ? w : "(none)");
        if (forms[i].token_like)
            cr_assert(strstr(w, "error=\"invalid_token\""), "%s: WWW-Authenticate %s", what, w);
        free(w);
        response_free(&r);
    }
    /* control: the well-formed header works */
    struct rq q = { .path = "/v1/me", .auth = good };
    do_req(&q, &r);
    cr_assert_eq(r.status, 200);
    response_free(&r);

    free(tok);
    free(t200);
    free(t201);
    free(c64k);
    free(c64k1);
    free(ok200);
    free(bad201);
    free(ok64k);
    free(bad64k);
    free(nfc);
    free(ok_nfc);
    free(u33);
    free(p129);
    free(reg_u33);
    free(reg_p129);
    free(u300);
    free(p2000);
    free(reg_u300);
    free(login_p2000);
    free(sym66);
    free(sym67);
    free(sym1024);
    free(ok_sym66);
    free(bad_sym67);
    free(bad_sym1024);
    free(deep);
}

static const char *const sqli[] = {
    "' OR 1=1 --",
    "x'); DROP TABLE notes;--",
    "\" OR \"\"=\"",
    "1; DELETE FROM users; --",
    "' UNION SELECT password_hash FROM users --",
};
#define N_SQLI (sizeof(sqli) / sizeof(sqli[0]))

Test(security, sql_injection_is_stored_verbatim_or_rejected, .init = start_open, .fini = finish)
{
    char name[40];
    harness_marker(name, sizeof(name), "sqli_");
    register_user(name, PW1);
    char *tok = login(name, PW1);
    int64_t ids[N_SQLI];

    for (size_t i = 0; i < N_SQLI; i++) {
        char content[256];
        snprintf(content, sizeof(content), "%s\n%s", sqli[i], sqli[(i + 1) % N_SQLI]);
        ids[i] = create_note(tok, sqli[i], content);
        assert_note(tok, ids[i], sqli[i], content);
    }
    /* update with a payload too */
    char path[64];
    note_path(path, sizeof(path), ids[0]);
    char *b = note_body(sqli[1], sqli[2]);
    call_free("PUT", path, tok, b, 200);
    free(b);
    assert_note(tok, ids[0], sqli[1], sqli[2]);

    /* everything is still there and listable */
    struct response r;
    call("GET", "/v1/notes", tok, NULL, 200, &r);
    cJSON *j = json_of(&r);
    const cJSON *notes = cJSON_GetObjectItemCaseSensitive(j, "notes");
    cr_assert_eq(cJSON_GetArraySize(notes), (int)N_SQLI, "%s", r.body);
    for (size_t i = 1; i < N_SQLI; i++) {
        bool found = false;
        const cJSON *n;
        cJSON_ArrayForEach(n, notes) found |= jint(n, "id") == ids[i] && strcmp(jstr(n, "title"), sqli[i]) == 0;
        cr_assert(found, "note with title %s missing from the list", sqli[i]);
    }
    cJSON_Delete(j);
    response_free(&r);

    /* as usernames: refused by validation; at login: the ordinary 401 */
    for (size_t i = 0; i < N_SQLI; i++) {
        b = cred_body(sqli[i], PW2);
        call("POST", "/v1/auth/register", NULL, b, 400, &r);
        assert_400_fields(&r, "username", NULL, sqli[i]);
        response_free(&r);
        free(b);
        cr_assert_eq(login_status(sqli[i], PW1), 401, "login as %s", sqli[i]);
        cr_assert_eq(login_status(name, sqli[i]), 401, "login with password %s", sqli[i]);
    }
    char *admin_or = cred_body("admin' --", "x' OR '1'='1");
    call_free("POST", "/v1/auth/login", NULL, admin_or, 401);
    free(admin_or);

    /* as a password: stored as a hash, works exactly */
    char name2[40];
    harness_marker(name2, sizeof(name2), "sqlp_");
    const char *pw_sql = "' OR '1'='1' -- padded";
    register_user(name2, pw_sql);
    char *tok2 = login(name2, pw_sql);
    cr_assert_eq(login_status(name2, "' OR '1'='1"), 401);
    call_free("GET", "/v1/me", tok2, NULL, 200);

    /* in ids and query strings: refused */
    call_free("GET", "/v1/notes/1%20OR%201=1", tok, NULL, 400);
    call_free("GET", "/v1/notes/1'%20OR%20'1'='1", tok, NULL, 400);
    call_free("GET", "/v1/notes?cursor=1'OR'1'='1", tok, NULL, 400);
    call_free("GET", "/v1/notes?limit=1;DROP", tok, NULL, 400);

    /* the database and the other user are intact */
    call("GET", "/v1/notes", tok, NULL, 200, &r);
    j = json_of(&r);
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j, "notes")), (int)N_SQLI);
    cJSON_Delete(j);
    response_free(&r);
    call("GET", "/v1/notes", tok2, NULL, 200, &r);
    j = json_of(&r);
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j, "notes")), 0, "%s", r.body);
    cJSON_Delete(j);
    response_free(&r);
    char *again = login(name, PW1);
    free(again);
    free(tok);
    free(tok2);
}

Test(security, tampered_row_is_a_generic_500, .init = start_open, .fini = finish)
{
    char name[40];
    harness_marker(name, sizeof(name), "tamper_");
    register_user(name, PW1);
    char *tok = login(name, PW1);
    int64_t bad = create_note(tok, "to be tampered", "content");
    int64_t good = create_note(tok, "untouched", "fine");
    tamper_title(bad);

    char path[64];
    note_path(path, sizeof(path), bad);
    struct response r;
    call("GET", path, tok, NULL, 500, &r);
    assert_header(&r, "Content-Type", "application/problem+json");
    cJSON *j = json_of(&r);
    cr_assert_eq(jint(j, "status"), 500);
    const char *detail = jstr(j, "detail");
    static const char *const leaks[] = { "key", "Key", "KEY", "decrypt", "tamper", "crypt", "GCM", "NOTES_",
                                         "sqlite", "SQL", "tag" };
    for (size_t i = 0; i < sizeof(leaks) / sizeof(leaks[0]); i++)
        cr_assert_null(strstr(detail, leaks[i]), "the 500 detail names '%s': %s", leaks[i], detail);
    const char *data_key = harness_getenv(&srv, "NOTES_DATA_KEY");
    cr_assert_null(strstr(r.body, data_key), "the data key is in the response");
    cJSON_Delete(j);
    response_free(&r);

    /* the server keeps serving, the other note too */
    call_free("GET", "/healthz", NULL, NULL, 200);
    assert_note(tok, good, "untouched", "fine");
    call_free("GET", "/v1/me", tok, NULL, 200);
    char *err = harness_stderr(&srv);
    cr_assert_null(strstr(err, data_key), "the data key is in the server's log");
    free(err);
    free(tok);
}
