/*
 * http.c - one HTTP/1.1 connection: the bytes of the request being
 * assembled (target and fields in `head`, the body in `body`, both bounded
 * by http_limits), the dispatch of each complete request, the plaintext
 * output, and the input held while a handler's job runs.
 *
 * Parsing is in http_parse.c, response writing in http_response.c; the
 * three share struct http_conn through http_int.h. Requests are answered
 * one at a time in arrival order; after a framing error the connection
 * closes and nothing more is parsed.
 */
#include "http_int.h"
#include "err.h"

#include <mbedtls/platform_util.h>
#include <stdlib.h>
#include <string.h>

/* Queued response bytes: room for the largest response (an export, capped
 * by its handler below HTTP_BODY_MAX) plus pipelined small ones. */
#define HTTP_OUT_MAX (20u * 1024 * 1024)
#define HTTP_PENDING_MAX (64 * 1024)      /* input held while a job runs */

const struct http_limits http_default_limits = {
    .max_target = 8 * 1024,
    .max_field = 8 * 1024,
    .max_header_block = 32 * 1024,
    .max_fields = 100,
    .max_body = 256 * 1024,
};

const struct http_header *http_fields_find(const struct http_header *f, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (slice_eq_nocase(f[i].name, slice_str(name)))
            return &f[i];
    return NULL;
}

size_t http_fields_count(const struct http_header *f, size_t n, const char *name)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += slice_eq_nocase(f[i].name, slice_str(name));
    return k;
}

const struct http_header *http_find_header(const struct http_request *req, const char *name)
{
    return http_fields_find(req->headers, req->n_headers, name);
}

size_t http_count_headers(const struct http_request *req, const char *name)
{
    return http_fields_count(req->headers, req->n_headers, name);
}

/* ---- connection ---------------------------------------------------------- */

struct http_conn *http_conn_new(const struct http_limits *limits, http_dispatch_cb dispatch, void *arg)
{
    struct http_conn *h = calloc(1, sizeof(*h));
    if (!h)
        return NULL;
    h->limits = limits;
    h->dispatch = dispatch;
    h->arg = arg;
    buf_init(&h->head, limits->max_target + limits->max_header_block);
    buf_init(&h->body, limits->max_body);
    buf_init(&h->out, HTTP_OUT_MAX);
    buf_init(&h->pending_in, HTTP_PENDING_MAX);
    http_scan_restart(h);
    llhttp_init(&h->parser, HTTP_REQUEST, http_parse_settings());
    h->parser.data = h;
    return h;
}

/* ---- the output budget ----------------------------------------------------
 *
 * An answer counts against the output budget from the moment it is written
 * into `out` (http_write_response()) until the server has taken it: then
 * its ciphertext counts where it went (server.c: flush(), on_write()). A
 * connection gives back exactly what it added (out_counted), on every path
 * that empties `out`: the server taking it, or the connection freed with
 * answers unsent (closed while they were held for their audit line, or
 * while its client read nothing). So the budget cannot drift, and it reads
 * 0 again once every connection is gone. */

void http_out_count(struct http_conn *h)
{
    struct http_out_budget *b = h->limits->budget;
    if (b) {
        b->queued -= h->out_counted;   /* never below: it was added before */
        b->queued += h->out.len;
    }
    h->out_counted = b ? h->out.len : 0;
}

void http_conn_output_sent(struct http_conn *h)
{
    buf_reset(&h->out);
    http_out_count(h);
}

void http_conn_take_output(struct http_conn *h, struct buf *into)
{
    *into = h->out;
    buf_init(&h->out, into->max);
    http_out_count(h);
}

void http_conn_free(struct http_conn *h)
{
    if (!h)
        return;
    http_free_request_state(h);
    buf_cleanup_wipe(&h->body);
    buf_cleanup_wipe(&h->out);
    http_out_count(h);   /* answers never sent give their share back */
    buf_cleanup_wipe(&h->pending_in);
    mbedtls_platform_zeroize(&h->memo, sizeof(h->memo));
    if (h->waiting && !h->job_taken && h->res.job) {
        h->res.job->cancelled = true;            /* never started: let it free itself */
        h->res.job->done(h->res.job, &h->res);
    }
    http_response_cleanup(&h->res);
    free(h);
}

static enum http_method method_of(uint8_t m)
{
    switch (m) {
    case HTTP_GET: return HTTP_M_GET;
    case HTTP_HEAD: return HTTP_M_HEAD;
    case HTTP_POST: return HTTP_M_POST;
    case HTTP_PUT: return HTTP_M_PUT;
    case HTTP_DELETE: return HTTP_M_DELETE;
    case HTTP_PATCH: return HTTP_M_PATCH;
    case HTTP_OPTIONS: return HTTP_M_OPTIONS;
    }
    return HTTP_M_OTHER;
}

static void build_request(struct http_conn *h, struct http_request *req)
{
    memset(req, 0, sizeof(*req));
    req->method = method_of(h->parser.method);
    req->target = http_head_slice(h, h->target_off, h->target_len);
    req->path = req->target;
    const uint8_t *q = memchr(req->target.p, '?', req->target.len);
    if (q) {
        req->path.len = (size_t)(q - req->target.p);
        req->query = (struct slice){ q + 1, req->target.len - req->path.len - 1 };
    } else {
        req->query = (struct slice){ (const uint8_t *)"", 0 };
    }
    req->headers = h->headers;
    req->n_headers = h->n_fields;
    req->body = slice_of(&h->body);
    req->id = h->id;
    req->keep_alive = llhttp_should_keep_alive(&h->parser) && !h->draining;
    req->peer = h->peer;
    req->memo = &h->memo;
}

/* Queue the response to the request in h->req / h->res and forget both. */
static int finish_answer(struct http_conn *h)
{
    if (!h->req.keep_alive)
        h->res.close = true;
    int rc = http_write_response(h, &h->res, h->req.method == HTTP_M_HEAD);
    if (h->res.close)
        h->close_after = true;
    http_response_cleanup(&h->res);
    buf_cleanup_wipe(&h->body);      /* request bodies hold user content */
    h->in_message = false;
    return rc == ERR_NOMEM ? ERR_NOMEM : 0;
}

static int answer(struct http_conn *h)
{
    build_request(h, &h->req);
    http_response_init(&h->res, h->id);
    h->res.budget = h->limits->budget;
    h->dispatch(h->arg, &h->req, &h->res);
    if (h->res.job) {
        h->waiting = true;
        h->job_taken = false;
        return 0;
    }
    return finish_answer(h);
}

static int answer_error(struct http_conn *h, llhttp_errno_t e)
{
    struct http_response res;
    if (!h->in_message)
        http_new_request_id(h->id);
    http_response_init(&res, h->id);
    if (h->error_status)
        http_problem(&res, h->error_status, h->error_field, h->error_detail);
    else if (e == HPE_INVALID_METHOD)
        http_problem(&res, 400, NULL, "The request method is not valid.");
    else
        http_problem(&res, 400, NULL, "The request is not valid HTTP/1.1.");
    res.close = true;
    h->rejected = res.status;
    int rc = http_write_response(h, &res, false);
    http_response_cleanup(&res);
    h->close_after = true;
    h->in_message = false;
    return rc == ERR_NOMEM ? ERR_NOMEM : 0;
}

int http_conn_feed(struct http_conn *h, const uint8_t *p, size_t n)
{
    if (h->waiting && !h->close_after)
        return buf_append(&h->pending_in, p, n) == 0 ? 0 : ERR_LIMIT;
    while (n > 0 && !h->close_after) {
        if (http_scan_head(h, p, n) != 0)
            return answer_error(h, HPE_USER);
        h->exec_base = p;
        llhttp_errno_t e = llhttp_execute(&h->parser, (const char *)p, n);
        if (e == HPE_OK) {
            h->exec_abs += n;
            return 0;
        }
        if (e != HPE_PAUSED || !h->complete)
            return answer_error(h, e);
        size_t used = (size_t)((const uint8_t *)llhttp_get_error_pos(&h->parser) - p);
        h->exec_abs += used;
        llhttp_resume(&h->parser);
        http_scan_restart(h);   /* the next message starts at p + used */
        int rc = answer(h);
        if (rc)
            return rc;
        p += used;
        n -= used;
        if (h->waiting)
            return buf_append(&h->pending_in, p, n) == 0 ? 0 : ERR_LIMIT;
    }
    return 0;
}

struct http_job *http_conn_take_job(struct http_conn *h)
{
    if (!h->waiting || h->job_taken)
        return NULL;
    h->job_taken = true;
    return h->res.job;
}

bool http_conn_waiting(const struct http_conn *h)
{
    return h->waiting;
}

/* The job's done() makes the answer, or with `refused` set it only frees
 * the job and a 503 saying `refused` takes the answer's place. */
static int job_finish(struct http_conn *h, const char *refused, const char *retry_after)
{
    struct http_job *job = h->res.job;
    h->res.job = NULL;
    h->waiting = false;
    job->done(job, &h->res);
    if (refused)
        http_unavailable(&h->res, refused, retry_after);
    int rc = finish_answer(h);
    if (rc)
        return rc;
    /* Parse what arrived meanwhile; feeding may defer again and refill. */
    struct buf held = h->pending_in;
    buf_init(&h->pending_in, HTTP_PENDING_MAX);
    rc = http_conn_feed(h, held.data, held.len);
    buf_cleanup_wipe(&held);
    return rc;
}

int http_conn_job_done(struct http_conn *h)
{
    return job_finish(h, NULL, NULL);
}

int http_conn_refuse_job(struct http_conn *h, const char *detail, const char *retry_after)
{
    if (!h->waiting || !h->res.job)
        return 0;
    h->res.job->cancelled = true;   /* never ran: done() must change nothing */
    return job_finish(h, detail, retry_after);
}

bool http_conn_holds_input(const struct http_conn *h)
{
    return h->pending_in.len > 0;
}

void http_conn_cancel_job(struct http_conn *h)
{
    struct http_job *job = h->res.job;
    if (!h->waiting || !job)
        return;
    h->res.job = NULL;
    h->waiting = false;
    h->close_after = true;
    job->cancelled = true;
    job->done(job, &h->res);
}

void http_conn_discard_input(struct http_conn *h)
{
    buf_cleanup_wipe(&h->pending_in);
    buf_init(&h->pending_in, HTTP_PENDING_MAX);
    h->close_after = true;
}

struct buf *http_conn_output(struct http_conn *h)
{
    return &h->out;
}

bool http_conn_should_close(const struct http_conn *h)
{
    return h->close_after;
}

bool http_conn_in_request(const struct http_conn *h)
{
    return h->in_message;
}

void http_conn_set_draining(struct http_conn *h)
{
    h->draining = true;
}

enum http_phase http_conn_phase(const struct http_conn *h)
{
    if (h->waiting)
        return HTTP_PHASE_WAITING;
    if (!h->in_message)
        return HTTP_PHASE_IDLE;
    return h->in_trailers ? HTTP_PHASE_BODY : HTTP_PHASE_HEADERS;
}

void http_conn_trim(struct http_conn *h)
{
    if (h->in_message || h->waiting || h->out.len || h->pending_in.len)
        return;
    http_free_request_state(h);
    buf_cleanup_wipe(&h->out);   /* responses held note content; nothing counted */
    buf_cleanup(&h->pending_in);
}

int http_conn_rejected(const struct http_conn *h)
{
    return h->rejected;
}

uint64_t http_conn_requests(const struct http_conn *h)
{
    return h->requests;
}

void http_conn_timed_out(struct http_conn *h)
{
    if (h->close_after || h->waiting)
        return;
    h->error_status = 408;
    h->error_field = NULL;
    h->error_detail = "The request did not arrive in time.";
    answer_error(h, HPE_USER);
}

void http_conn_set_peer(struct http_conn *h, const uint8_t addr[16])
{
    memcpy(h->peer, addr, 16);
}

void http_conn_set_plain(struct http_conn *h)
{
    h->plain = true;
}

#define STR2(x) #x
#define STR(x) STR2(x)

const char *http_parser_version(void)
{
    return STR(LLHTTP_VERSION_MAJOR) "." STR(LLHTTP_VERSION_MINOR) "." STR(LLHTTP_VERSION_PATCH);
}
