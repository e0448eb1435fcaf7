/*
 * Integration tests of the Note API: the real notesd binary on a loopback
 * port, spoken to by libcurl, checked against the product specification
 * (accounts, sessions, notes, RBAC, validation, key rotation, erasure and
 * encryption at rest). Every test starts its own server in a fresh folder;
 * every wait is bounded (harness.c, curl's 10 s timeout).
 *
 * Argon2 costs ~50-100 ms per register/login, so each test shares a few
 * users instead of creating many.
 *
 * This file holds what the test_api_*.c files share (api_support.h).
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

struct server srv;

/* ---- fixtures --------------------------------------------------------------- */

void start_open(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    harness_prepare(&srv);
    harness_setenv(&srv, "NOTES_REGISTRATION", "open");
    harness_start(&srv);
}

void finish(void)
{
    harness_cleanup(&srv);
}

/* ---- small utilities ------------------------------------------------------- */

char *repeat(char c, size_t n)
{
    char *s = malloc(n + 1);
    cr_assert(s);
    memset(s, c, n);
    s[n] = 0;
    return s;
}

void do_req(const struct rq *q, struct response *r)
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

void call(const char *method, const char *path, const char *token, const char *body, long want,
          struct response *r)
{
    struct rq q = { .method = method, .path = path, .token = token, .body = body };
    do_req(&q, r);
    cr_assert_eq(r->status, want, "%s %s%s%.300s\n  expected %ld, got %ld: %.600s", method ? method : "GET", path,
                 body ? " body=" : "", body ? body : "", want, r->status, r->body);
}

void call_free(const char *method, const char *path, const char *token, const char *body, long want)
{
    struct response r;
    call(method, path, token, body, want, &r);
    response_free(&r);
}

cJSON *json_of(const struct response *r)
{
    cJSON *j = cJSON_ParseWithLength(r->body, r->body_len);
    cr_assert(j, "response body is not JSON: %.400s", r->body);
    return j;
}

const char *jstr(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    cr_assert(cJSON_IsString(v), "\"%s\" is not a string in the response", key);
    return v->valuestring;
}

int64_t jint(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    cr_assert(cJSON_IsNumber(v), "\"%s\" is not a number in the response", key);
    return (int64_t)v->valuedouble;
}

void assert_header(const struct response *r, const char *name, const char *want)
{
    char *v = response_header(r, name);
    cr_assert(v, "missing header %s in:\n%s", name, r->headers);
    cr_assert_str_eq(v, want, "header %s", name);
    free(v);
}

void assert_rfc3339(const char *t)
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

void assert_same_except_request_id(const struct response *a, const struct response *b, const char *what)
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

void assert_401_challenge(const struct response *r, bool token_given, const char *what)
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

bool errors_name(const cJSON *errs, const char *field, const char *detail)
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

void assert_400_fields(const struct response *r, const char *fields, const char *detail, const char *what)
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

char *body2(const char *k1, const char *v1, const char *k2, const char *v2)
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

char *cred_body(const char *user, const char *pw)
{
    return body2("username", user, "password", pw);
}

char *note_body(const char *title, const char *content)
{
    return body2("title", title, "content", content);
}

/* ---- accounts, sessions, notes ------------------------------------------------------ */

int64_t register_user(const char *name, const char *pw)
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

char *login(const char *name, const char *pw)
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

long login_status(const char *name, const char *pw)
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

int cli_add_user(const char *name, const char *role, const char *pw)
{
    char input[256];
    snprintf(input, sizeof(input), "%s\n", pw);
    const char *args[] = { "user", "add", name, "--role", role, NULL };
    return harness_run_stdin(&srv, args, input);
}

int64_t create_note(const char *token, const char *title, const char *content)
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

void note_path(char *out, size_t cap, int64_t id)
{
    snprintf(out, cap, "/v1/notes/%lld", (long long)id);
}

void assert_note(const char *token, int64_t id, const char *title, const char *content)
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

void db_path(char *out, size_t cap, const char *suffix)
{
    const char *db = harness_getenv(&srv, "NOTES_DB");
    cr_assert(db);
    snprintf(out, cap, "%s%s", db, suffix);
}

size_t db_hits_bytes(const void *needle, size_t nl)
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

size_t db_hits(const char *needle)
{
    return db_hits_bytes(needle, strlen(needle));
}

int db_exec(const char *sql, int64_t a, int64_t b)
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

void restart(void)
{
    cr_assert_eq(harness_stop(&srv), 0, "notesd did not stop cleanly");
    harness_start(&srv);
}

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

long ka_send(struct keepalive *k, const char *method, const char *path, const char *auth, const char *body)
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

void ka_open(struct keepalive *k)
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

void ka_close(struct keepalive *k)
{
    response_free(&k->r);
    curl_easy_cleanup(k->c);
    curl_slist_free_all(k->resolve);
}

void expand(const char *tpl, const struct rbac_ids *ids, char *out, size_t cap)
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

void tamper_title(int64_t id)
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
