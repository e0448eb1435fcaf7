/*
 * Shared fixtures and helpers of the test_api program (test_api_*.c): the
 * server each test starts, requests with status checks, JSON and problem-body
 * assertions, accounts and notes, the keep-alive client, and direct reads of
 * the server's database files. Everything here asserts with Criterion.
 */
#ifndef NOTESD_TEST_API_SUPPORT_H
#define NOTESD_TEST_API_SUPPORT_H

#include <cJSON.h>
#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "harness.h"

/* These helpers were static in one file before it was split: hidden keeps
 * them out of the executable's dynamic symbol table, where a name such as
 * login() would otherwise preempt the C library's. */
#pragma GCC visibility push(hidden)

/* ---- fixtures ---------------------------------------------------------- */

/* The server of the running test: start_open() starts it, finish() ends it. */
extern struct server srv;

/* Passwords the tests share. */
#define PW1 "violet-Anchor-7392-lamp"
#define PW2 "quiet_River_5518_stone"
#define PW3 "Marble+Falcon+2046+tide"
#define PW_ADMIN "admin-Glacier-8841-ember"

/* Open registration, otherwise the defaults. */
void start_open(void);
void finish(void);

/* A string of n copies of c. */
char *repeat(char c, size_t n);

/* ---- requests and answers ------------------------------------------------ */

struct rq {
    const char *method;   /* NULL: GET */
    const char *path;
    const char *token;    /* sent as "Authorization: Bearer <token>" */
    const char *body;
    const char *ctype;    /* NULL: application/json when there is a body; "": none */
    const char *auth;     /* a raw Authorization header line (overrides token) */
    const char *extra;    /* one more raw header line */
};

void do_req(const struct rq *q, struct response *r);

/* One request; asserts the status (and never a 500 unless asked for). */
void call(const char *method, const char *path, const char *token, const char *body, long want,
          struct response *r);

void call_free(const char *method, const char *path, const char *token, const char *body, long want);

cJSON *json_of(const struct response *r);

const char *jstr(const cJSON *o, const char *key);

int64_t jint(const cJSON *o, const char *key);

void assert_header(const struct response *r, const char *name, const char *want);

void assert_rfc3339(const char *t);

void assert_same_except_request_id(const struct response *a, const struct response *b, const char *what);

/* 401 answers carry WWW-Authenticate: Bearer, with error="invalid_token"
 * exactly when a token was presented. */
void assert_401_challenge(const struct response *r, bool token_given, const char *what);

/* A 400 problem whose "errors" array names `field` (alternatives split by
 * '|'); with `detail`, that entry's detail must contain it. */
bool errors_name(const cJSON *errs, const char *field, const char *detail);

/* `fields`: required names separated by ',' each with '|' alternatives. */
void assert_400_fields(const struct response *r, const char *fields, const char *detail, const char *what);

/* ---- JSON bodies, accounts, notes -------------------------------------------- */

/* {"k1":"v1"} or {"k1":"v1","k2":"v2"} (k2 NULL: one member); caller frees. */
char *body2(const char *k1, const char *v1, const char *k2, const char *v2);

char *cred_body(const char *user, const char *pw);

char *note_body(const char *title, const char *content);

int64_t register_user(const char *name, const char *pw);

/* Returns the token (caller frees). */
char *login(const char *name, const char *pw);

long login_status(const char *name, const char *pw);

/* `notesd user add NAME --role ROLE` with the password on stdin. */
int cli_add_user(const char *name, const char *role, const char *pw);

int64_t create_note(const char *token, const char *title, const char *content);

void note_path(char *out, size_t cap, int64_t id);

/* GET a note and check its title and content. */
void assert_note(const char *token, int64_t id, const char *title, const char *content);

/* ---- database files ------------------------------------------------------ */

/* The server's NOTES_DB path with `suffix` appended ("" or "-wal"). */
void db_path(char *out, size_t cap, const char *suffix);

/* Occurrences of `needle` in notes.db plus notes.db-wal (when present). */
size_t db_hits_bytes(const void *needle, size_t nl);

size_t db_hits(const char *needle);

/* Run one statement with up to two integer parameters on the server's
 * database (WAL: safe while it serves); returns the rows changed. */
int db_exec(const char *sql, int64_t a, int64_t b);

/* Stop the server cleanly and start it again on the same folder. */
void restart(void);

/* ---- one kept-alive connection ----------------------------------------- */

/* One libcurl handle keeps one TLS connection alive across requests. */
struct keepalive {
    CURL *c;
    struct curl_slist *resolve;   /* its own: curl reads it at each request */
    struct response r;   /* the last answer: status, header lines, body */
};

/* `method` `path` on k's connection with `auth` ("Authorization: ..." or
 * NULL) and a JSON `body` (or NULL); returns the status, the answer is in
 * k->r. */
long ka_send(struct keepalive *k, const char *method, const char *path, const char *auth, const char *body);

void ka_open(struct keepalive *k);

void ka_close(struct keepalive *k);

/* ---- RBAC paths and tampering --------------------------------------------- */

/* Ids that stand for {a} {b} {adm} {da} {m} {uid_a} in a path template. */
struct rbac_ids {
    int64_t a, b, adm, da, m, uid_a;
};

/* `tpl` with each {name} replaced by its id in `ids`, into out[cap]. */
void expand(const char *tpl, const struct rbac_ids *ids, char *out, size_t cap);

/* Flip the last byte (inside the GCM tag) of a note's sealed title. */
void tamper_title(int64_t id);

#pragma GCC visibility pop

#endif
