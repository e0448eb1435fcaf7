/*
 * Integration tests of the Note API: the real notesd binary on a loopback
 * port, spoken to by libcurl, checked against the product specification
 * (accounts, sessions, notes, RBAC, validation, key rotation, erasure and
 * encryption at rest). Every test starts its own server in a fresh folder;
 * every wait is bounded (harness.c, curl's 10 s timeout).
 *
 * Argon2 costs ~50-100 ms per register/login, so each test shares a few
 * users instead of creating many.
 */
#include <criterion/criterion.h>
#include <cJSON.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

static struct server srv;

/* ---- fixtures --------------------------------------------------------------- */

static void start_open(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    harness_prepare(&srv);
    harness_setenv(&srv, "NOTES_REGISTRATION", "open");
    harness_start(&srv);
}

static void start_default(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    harness_prepare(&srv);
    harness_start(&srv);
}

static void finish(void)
{
    harness_cleanup(&srv);
}

/* ---- small utilities ------------------------------------------------------- */


/* A string of n copies of c. */
static char *repeat(char c, size_t n)
{
    char *s = malloc(n + 1);
    cr_assert(s);
    memset(s, c, n);
    s[n] = 0;
    return s;
}

/* ---- requests ------------------------------------------------------------------ */

struct rq {
    const char *method;   /* NULL: GET */
    const char *path;
    const char *token;    /* sent as "Authorization: Bearer <token>" */
    const char *body;
    const char *ctype;    /* NULL: application/json when there is a body; "": none */
    const char *auth;     /* a raw Authorization header line (overrides token) */
    const char *extra;    /* one more raw header line */
};

static void do_req(const struct rq *q, struct response *r)
{
    const char *hdrs[8];
    size_t n = 0;
    char auth[256], ct[128];
    hdrs[n++] = "Expect:";   /* no 100-continue round trip for large bodies */
    if (q->auth) {
        hdrs[n++] = q->auth;
    } else if (q->token) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", q->token);
        hdrs[n++] = auth;
    }
    if (q->body) {
        if (!q->ctype) {
            hdrs[n++] = "Content-Type: application/json";
        } else if (!*q->ctype) {
            hdrs[n++] = "Content-Type:";   /* curl: drop its default */
        } else {
            snprintf(ct, sizeof(ct), "Content-Type: %s", q->ctype);
            hdrs[n++] = ct;
        }
    }
    if (q->extra)
        hdrs[n++] = q->extra;
    hdrs[n] = NULL;
    struct request_opts o = { .method = q->method, .body = q->body, .headers = hdrs };
    harness_request(&srv, q->path, &o, r);
    cr_assert_eq(r->curl_code, CURLE_OK, "%s %s: curl error %d", q->method ? q->method : "GET", q->path,
                 r->curl_code);
}

/* One request; asserts the status (and never a 500 unless asked for). */
static void call(const char *method, const char *path, const char *token, const char *body, long want,
                 struct response *r)
{
    struct rq q = { .method = method, .path = path, .token = token, .body = body };
    do_req(&q, r);
    cr_assert_eq(r->status, want, "%s %s%s%.300s\n  expected %ld, got %ld: %.600s", method ? method : "GET", path,
                 body ? " body=" : "", body ? body : "", want, r->status, r->body);
}

static void call_free(const char *method, const char *path, const char *token, const char *body, long want)
{
    struct response r;
    call(method, path, token, body, want, &r);
    response_free(&r);
}

static cJSON *json_of(const struct response *r)
{
    cJSON *j = cJSON_ParseWithLength(r->body, r->body_len);
    cr_assert(j, "response body is not JSON: %.400s", r->body);
    return j;
}

static const char *jstr(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    cr_assert(cJSON_IsString(v), "\"%s\" is not a string in the response", key);
    return v->valuestring;
}

static int64_t jint(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    cr_assert(cJSON_IsNumber(v), "\"%s\" is not a number in the response", key);
    return (int64_t)v->valuedouble;
}

static void assert_header(const struct response *r, const char *name, const char *want)
{
    char *v = response_header(r, name);
    cr_assert(v, "missing header %s in:\n%s", name, r->headers);
    cr_assert_str_eq(v, want, "header %s", name);
    free(v);
}

static void assert_rfc3339(const char *t)
{
    cr_assert_eq(strlen(t), 20, "not an RFC 3339 UTC time: %s", t);
    cr_assert(t[4] == '-' && t[7] == '-' && t[10] == 'T' && t[13] == ':' && t[16] == ':' && t[19] == 'Z',
              "not an RFC 3339 UTC time: %s", t);
}

/* The body with its "request_id" member removed, for comparing two answers. */
static char *strip_request_id(const struct response *r)
{
    char *s = harness_strdup(r->body);
    char *p = strstr(s, ",\"request_id\":\"");
    if (p) {
        char *end = strchr(p + 15, '"');
        cr_assert(end);
        memmove(p, end + 1, strlen(end + 1) + 1);
    }
    return s;
}

static void assert_same_except_request_id(const struct response *a, const struct response *b, const char *what)
{
    char *x = strip_request_id(a), *y = strip_request_id(b);
    cr_assert_eq(a->status, b->status, "%s: status %ld vs %ld", what, a->status, b->status);
    cr_assert_str_eq(x, y, "%s: the two answers differ", what);
    char *ca = response_header(a, "Content-Type"), *cb = response_header(b, "Content-Type");
    cr_assert(ca && cb && strcmp(ca, cb) == 0, "%s: Content-Type differs", what);
    char *wa = response_header(a, "WWW-Authenticate"), *wb = response_header(b, "WWW-Authenticate");
    cr_assert((!wa && !wb) || (wa && wb && strcmp(wa, wb) == 0), "%s: WWW-Authenticate differs", what);
    free(x);
    free(y);
    free(ca);
    free(cb);
    free(wa);
    free(wb);
}

/* 401 answers carry WWW-Authenticate: Bearer, with error="invalid_token"
 * exactly when a token was presented. */
static void assert_401_challenge(const struct response *r, bool token_given, const char *what)
{
    cr_assert_eq(r->status, 401, "%s: expected 401, got %ld: %s", what, r->status, r->body);
    char *w = response_header(r, "WWW-Authenticate");
    cr_assert(w, "%s: 401 without WWW-Authenticate", what);
    cr_assert(strncmp(w, "Bearer", 6) == 0, "%s: WWW-Authenticate: %s", what, w);
    if (token_given)
        cr_assert(strstr(w, "error=\"invalid_token\""), "%s: WWW-Authenticate: %s", what, w);
    else
        cr_assert_null(strstr(w, "error="), "%s: WWW-Authenticate: %s", what, w);
    free(w);
}

/* A 400 problem whose "errors" array names `field` (alternatives split by
 * '|'); with `detail`, that entry's detail must contain it. */
static bool errors_name(const cJSON *errs, const char *field, const char *detail)
{
    char alts[128];
    snprintf(alts, sizeof(alts), "%s", field);
    for (char *save = NULL, *f = strtok_r(alts, "|", &save); f; f = strtok_r(NULL, "|", &save)) {
        const cJSON *e;
        cJSON_ArrayForEach(e, errs) {
            const cJSON *name = cJSON_GetObjectItemCaseSensitive(e, "field");
            const cJSON *why = cJSON_GetObjectItemCaseSensitive(e, "detail");
            if (cJSON_IsString(name) && strcmp(name->valuestring, f) == 0 &&
                (!detail || (cJSON_IsString(why) && strstr(why->valuestring, detail))))
                return true;
        }
    }
    return false;
}

/* `fields`: required names separated by ',' each with '|' alternatives. */
static void assert_400_fields(const struct response *r, const char *fields, const char *detail, const char *what)
{
    cr_assert_eq(r->status, 400, "%s: expected 400, got %ld: %.500s", what, r->status, r->body);
    assert_header(r, "Content-Type", "application/problem+json");
    cJSON *j = json_of(r);
    const cJSON *errs = cJSON_GetObjectItemCaseSensitive(j, "errors");
    cr_assert(cJSON_IsArray(errs) && cJSON_GetArraySize(errs) > 0, "%s: no \"errors\" array: %s", what, r->body);
    if (fields) {
        char list[256];
        snprintf(list, sizeof(list), "%s", fields);
        for (char *save = NULL, *f = strtok_r(list, ",", &save); f; f = strtok_r(NULL, ",", &save))
            cr_assert(errors_name(errs, f, detail), "%s: \"errors\" does not name %s%s%s: %s", what, f,
                      detail ? " with " : "", detail ? detail : "", r->body);
    }
    cJSON_Delete(j);
}

/* ---- JSON bodies ---------------------------------------------------------------- */

static char *body2(const char *k1, const char *v1, const char *k2, const char *v2)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, k1, v1);
    if (k2)
        cJSON_AddStringToObject(o, k2, v2);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    cr_assert(s);
    return s;
}

static char *cred_body(const char *user, const char *pw)
{
    return body2("username", user, "password", pw);
}

static char *note_body(const char *title, const char *content)
{
    return body2("title", title, "content", content);
}

/* ---- accounts, sessions, notes ------------------------------------------------------ */

static int64_t register_user(const char *name, const char *pw)
{
    char *b = cred_body(name, pw);
    struct response r;
    call("POST", "/v1/auth/register", NULL, b, 201, &r);
    cJSON *j = json_of(&r);
    int64_t id = jint(j, "id");
    cr_assert_gt(id, 0);
    cJSON_Delete(j);
    response_free(&r);
    free(b);
    return id;
}

/* Returns the token (caller frees). */
static char *login(const char *name, const char *pw)
{
    char *b = cred_body(name, pw);
    struct response r;
    call("POST", "/v1/auth/login", NULL, b, 200, &r);
    cJSON *j = json_of(&r);
    char *tok = harness_strdup(jstr(j, "token"));
    cJSON_Delete(j);
    response_free(&r);
    free(b);
    return tok;
}

static long login_status(const char *name, const char *pw)
{
    char *b = cred_body(name, pw);
    struct rq q = { .method = "POST", .path = "/v1/auth/login", .body = b };
    struct response r;
    do_req(&q, &r);
    long st = r.status;
    response_free(&r);
    free(b);
    return st;
}

/* `notesd user add NAME --role ROLE` with the password on stdin. */
static int cli_add_user(const char *name, const char *role, const char *pw)
{
    char input[256];
    snprintf(input, sizeof(input), "%s\n", pw);
    const char *args[] = { "user", "add", name, "--role", role, NULL };
    return harness_run_stdin(&srv, args, input);
}

static int cli(const char *a, const char *b, const char *c, const char *d)
{
    const char *args[] = { a, b, c, d, NULL };
    return harness_run(&srv, args);
}

static int64_t create_note(const char *token, const char *title, const char *content)
{
    char *b = note_body(title, content);
    struct response r;
    call("POST", "/v1/notes", token, b, 201, &r);
    cJSON *j = json_of(&r);
    int64_t id = jint(j, "id");
    cr_assert_str_eq(jstr(j, "title"), title);
    cr_assert_str_eq(jstr(j, "content"), content);
    cJSON_Delete(j);
    response_free(&r);
    free(b);
    return id;
}

static void note_path(char *out, size_t cap, int64_t id)
{
    snprintf(out, cap, "/v1/notes/%lld", (long long)id);
}

/* GET a note and check its title and content. */
static void assert_note(const char *token, int64_t id, const char *title, const char *content)
{
    char path[64];
    note_path(path, sizeof(path), id);
    struct response r;
    call("GET", path, token, NULL, 200, &r);
    cJSON *j = json_of(&r);
    cr_assert_eq(jint(j, "id"), id);
    cr_assert_str_eq(jstr(j, "title"), title, "note %lld", (long long)id);
    cr_assert_str_eq(jstr(j, "content"), content, "note %lld", (long long)id);
    cJSON_Delete(j);
    response_free(&r);
}

/* ---- database files ------------------------------------------------------------------- */

static void db_path(char *out, size_t cap, const char *suffix)
{
    const char *db = harness_getenv(&srv, "NOTES_DB");
    cr_assert(db);
    snprintf(out, cap, "%s%s", db, suffix);
}

/* Occurrences of `needle` in notes.db plus notes.db-wal (when present). */
static size_t db_hits_bytes(const void *needle, size_t nl)
{
    static const char *const suffixes[] = { "", "-wal" };
    size_t hits = 0;
    for (size_t i = 0; i < 2; i++) {
        char path[600];
        db_path(path, sizeof(path), suffixes[i]);
        size_t len;
        char *data = harness_read_file(path, &len);
        if (i == 0)
            cr_assert(data, "cannot read %s", path);
        if (!data)
            continue;
        for (const char *p = data; (size_t)(p - data) + nl <= len;) {
            const char *m = memmem(p, len - (size_t)(p - data), needle, nl);
            if (!m)
                break;
            hits++;
            p = m + 1;
        }
        free(data);
    }
    return hits;
}

static size_t db_hits(const char *needle)
{
    return db_hits_bytes(needle, strlen(needle));
}

/* Run one statement with up to two integer parameters on the server's
 * database (WAL: safe while it serves); returns the rows changed. */
static int db_exec(const char *sql, int64_t a, int64_t b)
{
    char path[600];
    db_path(path, sizeof(path), "");
    sqlite3 *db = NULL;
    /* queries open read-only: such a connection never checkpoints or
     * removes the WAL when it closes */
    int flags = strncmp(sql, "SELECT", 6) == 0 ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE;
    cr_assert_eq(sqlite3_open_v2(path, &db, flags, NULL), SQLITE_OK, "open %s", path);
    sqlite3_busy_timeout(db, 5000);
    sqlite3_stmt *st = NULL;
    cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK, "%s: %s", sql, sqlite3_errmsg(db));
    if (sqlite3_bind_parameter_count(st) >= 1)
        sqlite3_bind_int64(st, 1, a);
    if (sqlite3_bind_parameter_count(st) >= 2)
        sqlite3_bind_int64(st, 2, b);
    int rc = sqlite3_step(st), out;
    cr_assert(rc == SQLITE_DONE || rc == SQLITE_ROW, "%s: %s", sql, sqlite3_errmsg(db));
    out = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : sqlite3_changes(db);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return out;
}

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

static void restart(void)
{
    cr_assert_eq(harness_stop(&srv), 0, "notesd did not stop cleanly");
    harness_start(&srv);
}

/* ======================================================================== */
/* 1. register / login / me / logout                                           */
/* ======================================================================== */

#define PW1 "violet-Anchor-7392-lamp"
#define PW2 "quiet_River_5518_stone"
#define PW3 "Marble+Falcon+2046+tide"
#define PW_ADMIN "admin-Glacier-8841-ember"

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

/* One libcurl handle keeps one TLS connection alive across requests. */
struct keepalive {
    CURL *c;
    struct curl_slist *resolve;   /* its own: curl reads it at each request */
    struct response r;   /* the last answer: status, header lines, body */
};

static size_t ka_body(char *p, size_t size, size_t n, void *arg)
{
    struct response *r = arg;
    size_t len = size * n;
    char *b = realloc(r->body, r->body_len + len + 1);
    cr_assert_not_null(b);
    memcpy(b + r->body_len, p, len);
    r->body = b;
    r->body_len += len;
    r->body[r->body_len] = 0;
    return len;
}

/* libcurl hands over one header line at a time; response_header() reads
 * the block they make. */
static size_t ka_head(char *p, size_t size, size_t n, void *arg)
{
    struct response *r = arg;
    size_t len = size * n, had = r->headers ? strlen(r->headers) : 0;
    char *h = realloc(r->headers, had + len + 1);
    cr_assert_not_null(h);
    memcpy(h + had, p, len);
    h[had + len] = 0;
    r->headers = h;
    return len;
}

/* `method` `path` on k's connection with `auth` ("Authorization: ..." or
 * NULL) and a JSON `body` (or NULL); returns the status, the answer is in
 * k->r. */
static long ka_send(struct keepalive *k, const char *method, const char *path, const char *auth, const char *body)
{
    char url[256];
    snprintf(url, sizeof(url), "https://localhost:%d%s", srv.port, path);
    struct curl_slist *h = curl_slist_append(NULL, "Expect:");
    if (auth)
        h = curl_slist_append(h, auth);
    if (body)
        h = curl_slist_append(h, "Content-Type: application/json");
    response_free(&k->r);
    k->r.body_len = 0;
    curl_easy_setopt(k->c, CURLOPT_URL, url);
    curl_easy_setopt(k->c, CURLOPT_HTTPHEADER, h);
    if (body)
        curl_easy_setopt(k->c, CURLOPT_POSTFIELDS, body);
    else
        curl_easy_setopt(k->c, CURLOPT_HTTPGET, 1L);   /* no body left over from the last request */
    curl_easy_setopt(k->c, CURLOPT_CUSTOMREQUEST, method);
    CURLcode rc = curl_easy_perform(k->c);
    curl_slist_free_all(h);
    cr_assert_eq(rc, CURLE_OK, "%s %s: %s", method, path, curl_easy_strerror(rc));
    curl_easy_getinfo(k->c, CURLINFO_RESPONSE_CODE, &k->r.status);
    return k->r.status;
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

static void ka_open(struct keepalive *k)
{
    char resolve[64];
    snprintf(resolve, sizeof(resolve), "localhost:%d:127.0.0.1", srv.port);
    k->resolve = curl_slist_append(NULL, resolve);
    k->c = curl_easy_init();
    cr_assert_not_null(k->c);
    memset(&k->r, 0, sizeof(k->r));
    curl_easy_setopt(k->c, CURLOPT_RESOLVE, k->resolve);
    curl_easy_setopt(k->c, CURLOPT_CAINFO, srv.cert);
    curl_easy_setopt(k->c, CURLOPT_WRITEFUNCTION, ka_body);
    curl_easy_setopt(k->c, CURLOPT_WRITEDATA, &k->r);
    curl_easy_setopt(k->c, CURLOPT_HEADERFUNCTION, ka_head);
    curl_easy_setopt(k->c, CURLOPT_HEADERDATA, &k->r);
    curl_easy_setopt(k->c, CURLOPT_TIMEOUT_MS, 10000L);
}

/* The same from another loopback source address (127.0.0.0/8 is all the
 * loopback interface; the server still listens on 127.0.0.1 only): a second
 * client address for the per-address limits. */
static void ka_open_from(struct keepalive *k, const char *source)
{
    ka_open(k);
    char iface[64];
    snprintf(iface, sizeof(iface), "host!%s", source);
    cr_assert_eq(curl_easy_setopt(k->c, CURLOPT_INTERFACE, iface), CURLE_OK);
}

static void ka_close(struct keepalive *k)
{
    response_free(&k->r);
    curl_easy_cleanup(k->c);
    curl_slist_free_all(k->resolve);
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

/* ======================================================================== */
/* 2. password change                                                          */
/* ======================================================================== */

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

/* ======================================================================== */
/* 3. notes CRUD and paging                                                    */
/* ======================================================================== */

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

/* ======================================================================== */
/* 4. RBAC matrix                                                              */
/* ======================================================================== */

enum who { ANON, FORGED, USER_A, USER_B, ADMIN, N_WHO };
static const char *const who_name[N_WHO] = { "anonymous", "forged token", "user A", "user B", "admin" };

#define SKIP 0

struct rbac_row {
    const char *method;
    const char *path;   /* {a} {b} {adm} {da} {m} {uid_a}: see expand() */
    const char *body;
    int want[N_WHO];    /* in the order the loop runs: anon, forged, A, B, admin */
};

struct rbac_ids {
    int64_t a, b, adm, da, m, uid_a;
};

static void expand(const char *tpl, const struct rbac_ids *ids, char *out, size_t cap)
{
    static const char *const names[] = { "{a}", "{b}", "{adm}", "{da}", "{m}", "{uid_a}" };
    const int64_t vals[] = { ids->a, ids->b, ids->adm, ids->da, ids->m, ids->uid_a };
    size_t o = 0;
    while (*tpl && o + 1 < cap) {
        size_t k = 0;
        for (; k < sizeof(names) / sizeof(names[0]); k++)
            if (strncmp(tpl, names[k], strlen(names[k])) == 0)
                break;
        if (k < sizeof(names) / sizeof(names[0])) {
            int w = snprintf(out + o, cap - o, "%lld", (long long)vals[k]);
            cr_assert(w > 0 && (size_t)w < cap - o);
            o += (size_t)w;
            tpl += strlen(names[k]);
        } else {
            out[o++] = *tpl++;
        }
    }
    out[o] = 0;
}

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

/* ======================================================================== */
/* 5. validation                                                               */
/* ======================================================================== */

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

/* ======================================================================== */
/* 6. SQL injection                                                            */
/* ======================================================================== */

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

/* ======================================================================== */
/* 7. token key rotation                                                       */
/* ======================================================================== */

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

/* ======================================================================== */
/* 8. administrators and the user CLI                                          */
/* ======================================================================== */

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

/* ======================================================================== */
/* 9. export and erasure                                                       */
/* ======================================================================== */

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

/* ======================================================================== */
/* 10. no plaintext at rest                                                    */
/* ======================================================================== */

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

/* ======================================================================== */
/* 11. data key rotation                                                       */
/* ======================================================================== */

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

/* Rekey runs beside the server, whose WAL truncation follows only its own
 * changes: the notes' values under the old key stayed in notes.db (and in
 * the -wal) until some later checkpoint, so dropping the old key from the
 * environment did not yet put them out of reach of a copy of the files. */
Test(keys, rekey_leaves_no_old_ciphertext_in_the_files, .init = start_open, .fini = finish)
{
    char name[40];
    harness_marker(name, sizeof(name), "rw_");
    register_user(name, PW1);
    char *tok = login(name, PW1);
    int64_t id = create_note(tok, "sealed under the first key", "rekeyed content");
    size_t len;
    uint8_t *old = sealed_content(id, &len);

    char *old_key = harness_strdup(harness_getenv(&srv, "NOTES_DATA_KEY"));
    char *new_key = fresh_key("NOTES_DATA_KEY");
    cr_assert_eq(harness_stop(&srv), 0);
    harness_setenv(&srv, "NOTES_DATA_KEY", new_key);
    harness_setenv(&srv, "NOTES_DATA_KEY_PREVIOUS", old_key);
    harness_start(&srv);
    assert_note(tok, id, "sealed under the first key", "rekeyed content");
    cr_assert_gt(db_hits_bytes(old, len), 0, "the sealed value is not in notes.db / -wal: the search is blind");

    int st = harness_run(&srv, (const char *[]){ "rekey", NULL });
    cr_assert_eq(st, 0, "notesd rekey exited %d:\n%s", st, harness_stderr(&srv));
    cr_assert_eq(db_hits_bytes(old, len), 0, "the value under the old key is still in notes.db or its -wal");
    assert_note(tok, id, "sealed under the first key", "rekeyed content");
    free(old);
    free(old_key);
    free(new_key);
    free(tok);
}

/* ======================================================================== */
/* 12. a tampered row                                                          */
/* ======================================================================== */

/* Flip the last byte (inside the GCM tag) of a note's sealed title. */
static void tamper_title(int64_t id)
{
    char path[600];
    db_path(path, sizeof(path), "");
    sqlite3 *db = NULL;
    cr_assert_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK, "open %s", path);
    sqlite3_busy_timeout(db, 5000);
    sqlite3_stmt *st = NULL;
    cr_assert_eq(sqlite3_prepare_v2(db, "SELECT title FROM notes WHERE id = ?", -1, &st, NULL), SQLITE_OK,
                 "the notes table has no title column: %s", sqlite3_errmsg(db));
    sqlite3_bind_int64(st, 1, id);
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW, "note %lld not in the table", (long long)id);
    int n = sqlite3_column_bytes(st, 0);
    cr_assert_gt(n, 16, "the title is not a sealed blob (%d bytes)", n);
    uint8_t *blob = malloc((size_t)n);
    memcpy(blob, sqlite3_column_blob(st, 0), (size_t)n);
    sqlite3_finalize(st);
    blob[n - 1] ^= 0x01;
    cr_assert_eq(sqlite3_prepare_v2(db, "UPDATE notes SET title = ? WHERE id = ?", -1, &st, NULL), SQLITE_OK);
    sqlite3_bind_blob(st, 1, blob, n, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, id);
    cr_assert_eq(sqlite3_step(st), SQLITE_DONE, "%s", sqlite3_errmsg(db));
    cr_assert_eq(sqlite3_changes(db), 1);
    sqlite3_finalize(st);
    sqlite3_close(db);
    free(blob);
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

/* ======================================================================== */
/* 13. expired tokens (absolute and idle lifetimes)                            */
/* ======================================================================== */

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

static long elapsed_login_ms(const char *name)
{
    long t0 = harness_now_ms();
    cr_assert_eq(login_status(name, "wrong-password-entirely"), 401);
    return harness_now_ms() - t0;
}

static int cmp_long(const void *x, const void *y)
{
    long a = *(const long *)x, b = *(const long *)y;
    return a < b ? -1 : a > b;
}

/* After the argon2 settings are raised, an account whose hash predates the
 * raise verifies a wrong password much faster than the check an unknown
 * name gets: the time told which names exist. A failed login now takes at
 * least as long as a check under the current settings.
 *
 * The server pads to a running mean of its earlier current-settings checks
 * (api_auth_jobs.c check_login), and a mean is never below its smallest
 * sample: every padded login lasts at least the fastest unknown-name check
 * before it. So the minima are compared, not the medians: if load rises
 * during the test, later unknown-name checks slow down while the padding
 * still follows the older, faster ones, and a median ratio could fail with
 * the padding working. The margin is wide: unpadded, the ratio is about
 * 0.2 (t=2 against t=12). */
Test(auth, a_failed_login_takes_as_long_for_an_old_hash_as_for_an_unknown_name, .init = start_open,
     .fini = finish, .timeout = 120)
{
    char name[40], nobody[40];
    harness_marker(name, sizeof(name), "oldhash");
    harness_marker(nobody, sizeof(nobody), "nobody");
    register_user(name, PW1);
    harness_setenv(&srv, "NOTES_ARGON2_TIME", "12");
    restart();
    enum { N = 5 };
    long known[N], unknown[N];
    for (int i = 0; i < N; i++) {
        unknown[i] = elapsed_login_ms(nobody);   /* first: the padding has a measured target */
        known[i] = elapsed_login_ms(name);
    }
    qsort(known, N, sizeof(long), cmp_long);
    qsort(unknown, N, sizeof(long), cmp_long);
    cr_log_info("failed logins, min/median/max ms: old hash %ld/%ld/%ld, unknown name %ld/%ld/%ld", known[0],
                known[N / 2], known[N - 1], unknown[0], unknown[N / 2], unknown[N - 1]);
    cr_assert_geq(known[0] * 10, unknown[0] * 6,
                  "a wrong password for an existing account with an old hash answers in %ld ms at the fastest, "
                  "for an unknown name in %ld ms", known[0], unknown[0]);
}

/* The other way round: after the settings are lowered, an account whose
 * hash predates that costs more to check than an unknown name's dummy
 * hash, and its failed logins took longer. The server now times a check
 * under each stored setting once it runs (readiness: its log line) and pads
 * every failed login to the costliest (it was about 0.15 of it before).
 * Minima: each padded login lasts at least the running mean of earlier
 * checks times that factor. The account's next successful login rehashes
 * it to the current settings. */
Test(auth, a_failed_login_takes_as_long_for_an_unknown_name_as_for_a_costlier_old_hash, .init = start_open,
     .fini = finish, .timeout = 120)
{
    char name[40], nobody[40];
    harness_marker(name, sizeof(name), "dearhash");
    harness_marker(nobody, sizeof(nobody), "nobody");
    harness_setenv(&srv, "NOTES_ARGON2_TIME", "16");
    restart();
    int64_t id = register_user(name, PW1);
    harness_setenv(&srv, "NOTES_ARGON2_TIME", "2");
    restart();
    harness_await_log(&srv, "stored password hashes under other argon2id settings cost up to", 1, 60);
    enum { N = 5 };
    long known[N], unknown[N];
    for (int i = 0; i < N; i++) {
        unknown[i] = elapsed_login_ms(nobody);
        known[i] = elapsed_login_ms(name);
    }
    qsort(known, N, sizeof(long), cmp_long);
    qsort(unknown, N, sizeof(long), cmp_long);
    cr_log_info("failed logins, least ms: costlier old hash %ld, unknown name %ld", known[0], unknown[0]);
    cr_assert_geq(unknown[0] * 10, known[0] * 6,
                  "a wrong password for an account with a costlier old hash answers in %ld ms at least, for an "
                  "unknown name in %ld ms", known[0], unknown[0]);
    free(login(name, PW1));
    cr_assert_eq(db_exec("SELECT count(*) FROM users WHERE id = ? AND password_hash LIKE '%t=2,%'", id, 0), 1,
                 "the costlier hash was not rehashed to t=2");
}

/* ======================================================================== */
/* Abuse limits                                                                 */
/* ======================================================================== */

/* Prepared with open registration and the rate limits on, the per-address
 * request limit at `ip` a second with a burst of `burst`. */
static void prepare_limits(const char *ip, const char *burst)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    harness_prepare(&srv);
    harness_setenv(&srv, "NOTES_REGISTRATION", "open");
    harness_setenv(&srv, "NOTES_RATE_LIMITS", "on");
    harness_setenv(&srv, "NOTES_RATE_IP", ip);
    harness_setenv(&srv, "NOTES_RATE_IP_BURST", burst);
}

static void start_limited(void)
{
    prepare_limits("1", "3");
    harness_start(&srv);
}

/* The same request on k, as fast as the answers come, until one is not
 * `ok` (it stays in k->r) or `max` were; returns how many were `ok`. *ms
 * runs from before the first request to after the last answer. One kept
 * connection: no handshake per request lets a token refill meanwhile. */
static int ka_until_refused(struct keepalive *k, const char *method, const char *path, const char *auth,
                            const char *body, long ok, int max, long *ms)
{
    long t0 = harness_now_ms();
    int n = 0;
    while (n < max && ka_send(k, method, path, auth, body) == ok)
        n++;
    *ms = harness_now_ms() - t0;
    return n;
}

/* A fresh token bucket of `burst` refilled at `rate`/s lets the whole burst
 * through, then only what refilled: every answer that passed took a token,
 * so however slow the runner, no more than burst + rate * ms can have
 * passed in ms. What stopped the run is a 429 with Retry-After (at 1/s a
 * token is back within 1 s; 2 allows rounding). */
static void assert_bucket(const struct keepalive *k, int passed, long ms, int burst, int rate, const char *what)
{
    cr_assert_eq(k->r.status, 429, "%s: %d passed in %ld ms, then %ld (burst %d, %d/s)", what, passed, ms,
                 k->r.status, burst, rate);
    cr_assert_geq(passed, burst, "%s: refused after %d, inside the burst of %d", what, passed, burst);
    cr_assert_leq(passed, burst + rate * ms / 1000, "%s: %d passed in %ld ms (burst %d, %d/s)", what, passed, ms,
                  burst, rate);
    char *retry = response_header(&k->r, "Retry-After");
    cr_assert(retry, "%s: 429 without Retry-After", what);
    cr_assert(atoi(retry) >= 1 && atoi(retry) <= 2, "%s: Retry-After %s", what, retry);
    cr_assert(strstr(k->r.body, "\"status\":429"), "%s: %s", what, k->r.body);
    free(retry);
}

Test(limits, requests_past_the_burst_get_429_with_retry_after, .init = start_limited, .fini = finish)
{
    struct keepalive k;
    ka_open(&k);
    long ms;
    int passed = ka_until_refused(&k, "GET", "/healthz", NULL, NULL, 200, 10, &ms);
    assert_bucket(&k, passed, ms, 3, 1, "GET /healthz");
    ka_close(&k);
}

static void start_throttled(void)
{
    prepare_limits("1000", "1000");
    harness_setenv(&srv, "NOTES_RATE_AUTH_PER_MIN", "1000");
    harness_setenv(&srv, "NOTES_RATE_AUTH_BURST", "1000");
    harness_setenv(&srv, "NOTES_RATE_WRITES", "1");
    harness_setenv(&srv, "NOTES_RATE_WRITES_BURST", "2");
    harness_start(&srv);
}

/* ---- throttles ----
 * A throttle's delay runs from a failure the server records after its hash
 * check; the client knows only that this came after the failing request
 * began. An attempt let through proves the throttle wrong only if it came
 * before the delay could have run out: after that (a stalled runner) it
 * proves nothing, and the test runs its round again. */

/* `status` of an attempt the throttle should hold, `delay_ms` after a
 * failure that began at `since`: true on 429. Otherwise asserts that it got
 * `late` (the answer when let through) and only after the delay could
 * have passed, and returns false. Call it as soon as the answer is in. */
static bool held(long status, long late, long since, long delay_ms, const char *what)
{
    if (status == 429)
        return true;
    long after = harness_now_ms() - since;
    cr_assert_eq(status, late, "%s: got %ld", what, status);
    cr_assert_geq(after, delay_ms, "%s was let through %ld ms after the failure began (delay %ld ms)", what,
                  after, delay_ms);
    cr_log_warn("%s came %ld ms after the failure began (delay %ld ms): too late to tell", what, after, delay_ms);
    return false;
}

static void assert_retry_after(const struct keepalive *k, const char *what)
{
    char *retry = response_header(&k->r, "Retry-After");
    cr_assert(retry && atoi(retry) >= 1, "%s: Retry-After %s", what, retry ? retry : "(none)");
    free(retry);
}

static void swap_pw(const char **pw, const char **next)
{
    const char *t = *pw;
    *pw = *next;
    *next = t;
}

/* Ten failed logins for `name` on k; returns when the tenth began. */
static long ten_failed_logins(struct keepalive *k, const char *name)
{
    char *bad = cred_body(name, "not-the-password-at-all");
    long began = 0;
    for (int i = 0; i < 10; i++) {
        began = harness_now_ms();
        cr_assert_eq(ka_send(k, "POST", "/v1/auth/login", NULL, bad), 401, "failure %d: %s", i, k->r.body);
    }
    free(bad);
    return began;
}

/* After ten failures the victim waits, even with the right password (429
 * with Retry-After), while another account logs in from the same address;
 * the victim still waits after that, so the other login came inside the
 * delay. false when an attempt came too late to tell (a success then
 * started the victim's count again). */
static bool victim_waits_bystander_passes(struct keepalive *k, const char *victim, const char *bystander)
{
    char *right = cred_body(victim, PW1), *other = cred_body(bystander, PW2);
    long since = ten_failed_logins(k, victim);
    bool ok = held(ka_send(k, "POST", "/v1/auth/login", NULL, right), 200, since, 1000, "the right password");
    if (ok) {
        assert_retry_after(k, "the right password");
        cr_assert_eq(ka_send(k, "POST", "/v1/auth/login", NULL, other), 200,
                     "another account from the same address waited too: %s", k->r.body);
        ok = held(ka_send(k, "POST", "/v1/auth/login", NULL, right), 200, since, 1000, "the right password again");
    }
    free(other);
    free(right);
    return ok;
}

Test(limits, one_account_is_throttled_while_another_logs_in_from_the_same_address,
     .init = start_throttled, .fini = finish, .timeout = 120)
{
    char a[40], b[40];
    harness_marker(a, sizeof(a), "victim");
    harness_marker(b, sizeof(b), "bystander");
    register_user(a, PW1);
    register_user(b, PW2);
    struct keepalive k;
    ka_open(&k);
    bool shown = false;
    for (int round = 0; round < 3 && !shown; round++)
        shown = victim_waits_bystander_passes(&k, a, b);
    cr_assert(shown, "three rounds each came too late after the tenth failure to tell (delay 1 s)");
    ka_close(&k);
}

/* Ten wrong current passwords from a token's holder, five password changes
 * and five erasures (one throttle for both); returns when the tenth began. */
static long ten_wrong_current(struct keepalive *k, const char *auth, const char *change)
{
    long began = 0;
    for (int i = 0; i < 10; i++) {
        began = harness_now_ms();
        long st = i < 5 ? ka_send(k, "POST", "/v1/auth/password", auth, change)
                        : ka_send(k, "DELETE", "/v1/me", auth, "{\"password\":\"not-the-password-at-all\"}");
        cr_assert_eq(st, 403, "wrong current password %d: %s", i, k->r.body);
    }
    return began;
}

/* After ten wrong current passwords the token's holder waits: a further
 * guess gets 429 with Retry-After (a guess let through late counts, and
 * doubles the delay), so does the right password, and the owner still logs
 * in; the right password waits after that too, so the login came inside
 * the delay. false when an attempt came too late to tell: the password
 * changed then, from *pw to *next, which swap. */
static bool guesses_wait_owner_logs_in(struct keepalive *k, const char *name, const char *auth, const char **pw,
                                       const char **next)
{
    char *wrong = body2("current_password", "not-the-password-at-all", "new_password", *next);
    char *right = body2("current_password", *pw, "new_password", *next), *cred = cred_body(name, *pw);
    long since = ten_wrong_current(k, auth, wrong), delay = 1000;
    for (int i = 0; i < 4; i++, delay *= 2) {   /* 1, 2, 4, 8 s */
        long began = harness_now_ms();
        if (held(ka_send(k, "POST", "/v1/auth/password", auth, wrong), 403, since, delay, "a wrong guess"))
            break;
        since = began;
    }
    cr_assert_eq(k->r.status, 429, "four wrong guesses in a row were let through late");
    assert_retry_after(k, "a wrong guess");
    bool ok = held(ka_send(k, "POST", "/v1/auth/password", auth, right), 204, since, delay, "the right password");
    if (ok) {
        cr_assert_eq(ka_send(k, "POST", "/v1/auth/login", NULL, cred), 200,
                     "wrong current passwords locked the owner out of logging in: %s", k->r.body);
        ok = held(ka_send(k, "POST", "/v1/auth/password", auth, right), 204, since, delay,
                  "the right password again");
    }
    if (!ok)
        swap_pw(pw, next);
    free(cred);
    free(right);
    free(wrong);
    return ok;
}

/* The other way round: after ten failed logins the owner waits to log in
 * (429), yet changes the password with the session it has (204); a login
 * with the new password still waits, so the change came inside the delay.
 * false when a login came too late to tell; *pw is the password then. */
static bool logins_wait_owner_changes(struct keepalive *k, const char *name, const char *auth, const char **pw,
                                      const char **next)
{
    char *change = body2("current_password", *pw, "new_password", *next), *cred = cred_body(name, *pw);
    long since = ten_failed_logins(k, name);
    bool ok = held(ka_send(k, "POST", "/v1/auth/login", NULL, cred), 200, since, 1000, "the owner's login");
    if (ok) {
        cr_assert_eq(ka_send(k, "POST", "/v1/auth/password", auth, change), 204,
                     "failed logins held up a password change: %s", k->r.body);
        swap_pw(pw, next);
        free(cred);
        cred = cred_body(name, *pw);
        ok = held(ka_send(k, "POST", "/v1/auth/login", NULL, cred), 200, since, 1000, "a login after the change");
    }
    free(cred);
    free(change);
    return ok;
}

/* A stolen token must not let its holder guess the account's password
 * faster than login does: wrong current passwords (password change,
 * erasure) are throttled like failed logins, with the same back-off. Kept
 * apart from the login throttle: whoever knows only the username cannot
 * fail logins to stop the owner from changing the password, and the token's
 * holder cannot lock the owner out of logging in. */
Test(limits, wrong_current_passwords_are_throttled_apart_from_logins,
     .init = start_throttled, .fini = finish, .timeout = 120)
{
    char a[40], b[40], auth[128];
    harness_marker(a, sizeof(a), "stolen");
    harness_marker(b, sizeof(b), "owner");
    register_user(a, PW1);
    register_user(b, PW2);
    struct keepalive k;
    ka_open(&k);
    const char *pw = PW1, *next = "brand new password 1";
    char *tok = login(a, pw);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", tok);
    bool shown = false;
    for (int round = 0; round < 3 && !shown; round++)
        shown = guesses_wait_owner_logs_in(&k, a, auth, &pw, &next);
    cr_assert(shown, "three rounds each came too late after the tenth wrong password to tell");
    free(tok);

    pw = PW2;
    next = "brand new password 2";
    tok = login(b, pw);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", tok);
    shown = false;
    for (int round = 0; round < 3 && !shown; round++)
        shown = logins_wait_owner_changes(&k, b, auth, &pw, &next);
    cr_assert(shown, "three rounds each came too late after the tenth failed login to tell");
    free(tok);
    ka_close(&k);
}

/* Rate limits on with the shipped login and register limits (5 a minute,
 * burst 5), the per-address request limit out of the way. */
static void start_auth_limited(void)
{
    prepare_limits("1000", "1000");
    harness_start(&srv);
}

/* A stranger who spends a username's login limit with wrong passwords must
 * not lock its owner out: from another address the owner's right password
 * gets in at once. Guessing from many addresses is bounded by the account's
 * failure throttle, which counts every address. */
Test(limits, failed_logins_from_another_address_do_not_lock_the_owner_out, .init = start_auth_limited,
     .fini = finish, .timeout = 120)
{
    char name[40];
    harness_marker(name, sizeof(name), "owner");
    register_user(name, PW1);
    char *bad = cred_body(name, "not-the-password-at-all"), *good = cred_body(name, PW1);
    struct keepalive stranger, owner;
    ka_open_from(&stranger, "127.0.0.2");
    int failed = 0;
    while (failed < 10 && ka_send(&stranger, "POST", "/v1/auth/login", NULL, bad) == 401)
        failed++;
    cr_assert_eq(stranger.r.status, 429, "the stranger was never limited (%d failures): %s", failed,
                 stranger.r.body);
    ka_open(&owner);
    cr_assert_eq(ka_send(&owner, "POST", "/v1/auth/login", NULL, good), 200,
                 "%d failed logins from another address locked the owner out: %s", failed, owner.r.body);
    ka_close(&owner);
    ka_close(&stranger);
    free(good);
    free(bad);
}

/* Registrations of one name are limited per name, whichever address they
 * come from (5 a minute, burst 5): six attempts alternated between two
 * addresses, three from each (inside the per-address limit), meet a 429 at
 * the sixth. */
Test(limits, registrations_of_one_name_are_limited_across_addresses, .init = start_auth_limited,
     .fini = finish, .timeout = 120)
{
    char name[40];
    harness_marker(name, sizeof(name), "taken");
    char *cred = cred_body(name, PW1);
    struct keepalive here, there;
    ka_open(&here);
    ka_open_from(&there, "127.0.0.2");
    for (int i = 0; i < 6; i++) {
        struct keepalive *k = i % 2 ? &there : &here;
        long want = i == 0 ? 201 : i < 5 ? 409 : 429;
        cr_assert_eq(ka_send(k, "POST", "/v1/auth/register", NULL, cred), want, "registration %d of one name: %s",
                     i + 1, k->r.body);
    }
    ka_close(&there);
    ka_close(&here);
    free(cred);
}

Test(limits, note_writes_are_limited_per_user, .init = start_throttled, .fini = finish)
{
    char a[40], auth[128];
    harness_marker(a, sizeof(a), "writer");
    register_user(a, PW1);
    char *tok = login(a, PW1);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", tok);
    char *body = note_body("t", "c");
    struct keepalive k;
    ka_open(&k);
    long t0 = harness_now_ms(), ms;
    int passed = ka_until_refused(&k, "POST", "/v1/notes", auth, body, 201, 10, &ms);
    assert_bucket(&k, passed, ms, 2, 1, "POST /v1/notes");
    /* Reads are not write-limited. The refusal left less than one token, so
     * a write limit on reads would pass fewer than 1 + s reads in the s
     * seconds since t0: read until more than that have passed. */
    int reads = 0;
    long since;
    do {
        cr_assert_eq(ka_send(&k, "GET", "/v1/notes", auth, NULL), 200, "read %d after the write limit", reads + 1);
        reads++;
        since = harness_now_ms() - t0;
    } while (reads < 20 && reads < 2 + since / 1000);
    cr_assert_geq(reads, 2 + since / 1000, "%d reads in %ld ms: too slow to tell", reads, since);
    ka_close(&k);
    free(body);
    free(tok);
}

/* ======================================================================== */
/* 14. what one account may hold                                               */
/* ======================================================================== */

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
