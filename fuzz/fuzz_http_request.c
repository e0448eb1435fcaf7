/*
 * fuzz_http_request.c - libFuzzer target for the request layer: arbitrary
 * bytes, cut into fuzzer-chosen pieces, fed to http_conn_feed() exactly as
 * server.c feeds decrypted TLS plaintext, with no socket and no TLS.
 *
 * Reached: llhttp in strict mode with our settings, the wire-byte scan and
 * every size limit, framing rules, pipelining, deferred jobs (the thread-pool
 * path, with bytes held while a job runs), timeouts, draining, response
 * writing and problem documents; then, per request, either the router (only
 * where it needs no app: see use_router()) or the query, path-id, limit,
 * cursor and bearer validators.
 *
 * Every input runs twice: under the smallest limits config.c accepts and
 * under http_default_limits. The target aborts (a finding) when:
 *  - a dispatched request breaks a limit it was assembled under, or its
 *    path/query split does not add up to its target;
 *  - a request is dispatched after the connection was marked to close
 *    ("no later byte is ever parsed");
 *  - the output grows past RESPONSE_MAX per answer that can have been
 *    written since the last drain, or answers outnumber what the bytes fed
 *    could hold (at most one per MIN_REQUEST bytes, plus one error or
 *    timeout response);
 *  - output does not start with a status line;
 *  - a validator contradicts itself (a cursor that does not re-encode to
 *    itself, an id of 0).
 * ASan/UBSan/LSan catch the rest.
 *
 * Input layout: byte 0 holds flags (below), bytes 1..8 the piece sizes
 * (cycled; 0 means "all that is left"); the rest is the byte stream.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "err.h"
#include "http.h"
#include "router.h"
#include "validate.h"

#define N_SPLITS 8
#define HEADER_BYTES (1 + N_SPLITS)

#define F_ROUTER 0x01      /* answer through router_dispatch() where it is safe */
#define F_PLAIN 0x02       /* redirect-listener mode (no HSTS) */
#define F_DRAIN 0x04       /* server draining from the start */
#define F_LAZY_JOBS 0x08   /* finish a deferred job one piece later */
#define F_ABANDON 0x10     /* never start a job deferred by the last piece:
                            * http_conn_free() must let it free itself */
#define F_TIMEOUT 0x20     /* end with a header/body timeout */
#define F_PEER 0x40        /* set a peer address */

/* Bounds on what one answer can add to the output. Our dispatcher never
 * echoes client bytes, so a response is a status line, the fixed security
 * headers, a request id, at most a few router headers (Allow,
 * WWW-Authenticate) and a problem document with at most
 * VALIDATE_MAX_ERRORS fixed phrases: well under 2 KiB. The smallest
 * complete request, "GET / HTTP/1.0\r\n\r\n", is 18 bytes; 16 leaves margin. */
#define RESPONSE_MAX 2048
#define MIN_REQUEST 16

/* The smallest limits config.c accepts (NOTES_MAX_* minimums), where every
 * limit is easy to reach. */
static const struct http_limits small_limits = {
    .max_target = 64,
    .max_field = 64,
    .max_header_block = 256,
    .max_fields = 4,
    .max_body = 1024,
};

struct run {
    const struct http_limits *lim;
    unsigned flags;
    struct http_conn *h;
    bool closed;             /* should_close was seen: nothing may be dispatched */
    size_t answers;          /* answers written to the output since the last drain */
    size_t fed;              /* bytes given to http_conn_feed() on this connection */
    size_t dispatched;       /* dispatch calls on this connection */
};

struct fuzz_job {
    struct http_job base;
    size_t seq;
};

static void check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_http_request: invariant broken: %s\n", what);
        abort();
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (crypto_init() != 0) {
        fprintf(stderr, "crypto_init failed\n");
        abort();
    }
    check(http_parser_version()[0] != 0, "llhttp version");
    return 0;
}

/* ---- deferred jobs ------------------------------------------------------- */

static void job_work(struct http_job *job)
{
    (void)job;   /* argon2 would run here; nothing to do */
}

static void job_done(struct http_job *job, struct http_response *res)
{
    struct fuzz_job *j = (struct fuzz_job *)job;
    char json[48];
    int n = snprintf(json, sizeof(json), "{\"job\":%zu}", j->seq);
    if (res && http_set_json(res, 200, json, (size_t)n) != 0)
        http_problem(res, 500, NULL, "The response could not be built.");
    free(j);
}

/* ---- dispatch ------------------------------------------------------------ */

static bool slice_is(struct slice s, const char *lit)
{
    size_t n = strlen(lit);
    return s.len == n && memcmp(s.p, lit, n) == 0;
}

static bool has_prefix(struct slice s, const char *lit)
{
    size_t n = strlen(lit);
    return s.len >= n && memcmp(s.p, lit, n) == 0;
}

/* router_dispatch() with no app is safe only where it never reaches app
 * state: every protected route answers 503 without an app (fail closed),
 * and /healthz needs nothing. The public
 * handlers that use the app (register, login) are kept out. A new public
 * route that uses the app must be added here, or this target crashes on a
 * NULL app, which is a harness bug, not a finding. */
static bool use_router(const struct run *r, const struct http_request *req)
{
    if (!(r->flags & F_ROUTER) || http_find_header(req, "authorization"))
        return false;
    return !slice_is(req->path, "/v1/auth/register") && !slice_is(req->path, "/v1/auth/login");
}

static void check_request(const struct run *r, const struct http_request *req)
{
    const struct http_limits *lim = r->lim;
    check(!r->closed, "a request was dispatched after the connection was marked to close");
    check(req->target.len >= 1 && req->target.len <= lim->max_target, "target length within limit");
    check(req->n_headers <= lim->max_fields && req->n_headers <= HTTP_MAX_FIELDS_CAP,
          "header count within limit");
    check(req->body.len <= lim->max_body, "body within limit");
    size_t block = 0;
    for (size_t i = 0; i < req->n_headers; i++) {
        size_t field = req->headers[i].name.len + req->headers[i].value.len;
        check(field <= lim->max_field, "header field within limit");
        block += field;
    }
    check(block <= lim->max_header_block, "header block within limit");
    check(req->path.p == req->target.p, "path starts the target");
    if (req->query.len > 0)
        check(req->path.len + 1 + req->query.len == req->target.len && req->query.p[-1] == '?',
              "path '?' query is the target");
    else
        check(req->path.len == req->target.len || req->path.len + 1 == req->target.len,
              "path is the target when there is no query");
    check(req->id && strlen(req->id) == HTTP_ID_LEN, "request id length");
}

/* What a handler would check before doing anything: the query parameters of
 * the admin list (the widest set), the numeric path id, the bearer token. */
static void validate_inputs(const struct http_request *req, struct http_response *res)
{
    struct validate_errors errs = { 0 };
    struct validate_param params[] = { { .name = "limit" }, { .name = "cursor" }, { .name = "owner" } };
    if (validate_query(req->query, params, 3, &errs) == 0) {
        int limit = 0;
        int64_t cursor = 0, owner = 0;
        if (params[0].present && validate_limit(params[0].value, &limit, &errs) == 0)
            check(limit >= 1 && limit <= VALIDATE_LIMIT_MAX, "validate_limit range");
        if (params[1].present && validate_cursor(params[1].value, &cursor, &errs) == 0) {
            char again[VALIDATE_CURSOR_LEN + 1];
            validate_cursor_encode(cursor, again);
            check(cursor >= 1 && params[1].value.len == VALIDATE_CURSOR_LEN &&
                      memcmp(again, params[1].value.p, VALIDATE_CURSOR_LEN) == 0,
                  "an accepted cursor re-encodes to itself");
        }
        if (params[2].present) {
            if (validate_id(params[2].value, &owner) == 0)
                check(owner >= 1, "validate_id range");
            else
                validate_add(&errs, "owner", "must be a decimal number");
        }
    }
    /* The last path segment as an id, like /v1/notes/{id}. */
    const uint8_t *slash = req->path.p;
    for (size_t i = 0; i < req->path.len; i++)
        if (req->path.p[i] == '/')
            slash = req->path.p + i + 1;
    struct slice seg = { slash, req->path.len - (size_t)(slash - req->path.p) };
    int64_t id = 0;
    if (seg.len && validate_id(seg, &id) == 0)
        check(id >= 1, "validate_id range");
    const struct http_header *auth = http_find_header(req, "authorization");
    if (auth) {
        char token[VALIDATE_TOKEN_LEN + 1];
        if (validate_bearer(auth->value, token) == 0)
            check(strlen(token) == VALIDATE_TOKEN_LEN, "bearer token length");
        else
            validate_add(&errs, "Authorization", "must be a bearer token");
    }
    if (errs.n) {
        struct http_field_error list[VALIDATE_MAX_ERRORS];
        for (size_t i = 0; i < errs.n; i++)
            list[i] = (struct http_field_error){ errs.e[i].field, errs.e[i].why };
        http_problem_fields(res, list, errs.n);
    } else {
        static const char ok[] = "{\"ok\":true}";
        if (http_set_json(res, 200, ok, sizeof(ok) - 1) != 0)
            http_problem(res, 500, NULL, "The response could not be built.");
    }
}

static void fuzz_dispatch(void *arg, const struct http_request *req, struct http_response *res)
{
    struct run *r = arg;
    check_request(r, req);
    r->dispatched++;
    if (has_prefix(req->path, "/job")) {
        struct fuzz_job *j = calloc(1, sizeof(*j));
        if (!j) {
            http_problem(res, 500, NULL, "out of memory");
            return;
        }
        j->base.work = job_work;
        j->base.done = job_done;
        j->seq = r->dispatched;
        res->job = &j->base;
        return;   /* answered when the job is done */
    }
    r->answers++;
    if (use_router(r, req))
        router_dispatch(NULL, req, res);
    else
        validate_inputs(req, res);
}

/* ---- the connection -------------------------------------------------------- */

/* What the server does with the output: check it, then send it all. */
static void drain(struct run *r)
{
    struct buf *out = http_conn_output(r->h);
    check(r->dispatched <= r->fed / MIN_REQUEST, "more requests than the bytes fed can hold");
    check(out->len <= (r->answers + 1) * RESPONSE_MAX, "output larger than the answers written");
    if (out->len > 0)
        check(out->len >= 9 && memcmp(out->data, "HTTP/1.1 ", 9) == 0, "output starts with a status line");
    http_conn_output_sent(r->h);
    r->answers = 0;
    if (http_conn_should_close(r->h))
        r->closed = true;
}

/* Run the job a handler deferred, as server_jobs.c does on the thread pool. */
static int finish_jobs(struct run *r)
{
    struct http_job *job;
    int rc = 0;
    while (rc == 0 && (job = http_conn_take_job(r->h)) != NULL) {
        job->work(job);
        r->answers++;
        /* Writes the job's answer, then parses the bytes held meanwhile
         * (already counted in r->fed when they were fed). */
        rc = http_conn_job_done(r->h);
    }
    return rc;
}

static void run_one(const struct http_limits *lim, unsigned flags, const uint8_t *splits,
                    const uint8_t *p, size_t n)
{
    struct run r = { .lim = lim, .flags = flags };
    r.h = http_conn_new(lim, fuzz_dispatch, &r);
    if (!r.h)
        return;
    if (flags & F_PLAIN)
        http_conn_set_plain(r.h);
    if (flags & F_DRAIN)
        http_conn_set_draining(r.h);
    if (flags & F_PEER) {
        static const uint8_t v4mapped[16] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 1 };
        http_conn_set_peer(r.h, v4mapped);
    }
    size_t k = 0;
    int rc = 0;
    while (n > 0 && rc == 0) {
        size_t piece = splits[k++ % N_SPLITS];
        if (piece == 0 || piece > n)
            piece = n;
        bool was_closed = http_conn_should_close(r.h);
        size_t before = r.dispatched;
        r.fed += piece;
        rc = http_conn_feed(r.h, p, piece);
        if (was_closed)
            check(r.dispatched == before, "bytes parsed after the connection was marked to close");
        p += piece;
        n -= piece;
        (void)http_conn_phase(r.h);
        (void)http_conn_in_request(r.h);
        (void)http_conn_requests(r.h);
        bool later = n > 0 ? (flags & F_LAZY_JOBS) != 0 : (flags & F_ABANDON) != 0;
        if (rc == 0 && !later)
            rc = finish_jobs(&r);
        else if (http_conn_waiting(r.h))
            check(http_conn_phase(r.h) == HTTP_PHASE_WAITING, "a waiting connection is in the waiting phase");
        drain(&r);
    }
    if (rc == 0 && !(flags & F_ABANDON))
        rc = finish_jobs(&r);
    if (flags & F_TIMEOUT) {
        http_conn_timed_out(r.h);
        r.answers++;
    }
    drain(&r);
    http_conn_free(r.h);   /* frees an abandoned job through its done() */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < HEADER_BYTES)
        return 0;
    unsigned flags = data[0];
    const uint8_t *splits = data + 1;
    run_one(&small_limits, flags, splits, data + HEADER_BYTES, size - HEADER_BYTES);
    run_one(&http_default_limits, flags, splits, data + HEADER_BYTES, size - HEADER_BYTES);
    return 0;
}
