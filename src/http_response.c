/*
 * http_response.c - response writing: the status line, the security
 * headers every response carries (HSTS only over TLS), RFC 9457 problem
 * documents for every error, and the buffers a handler fills.
 *
 * A response is written whole or replaced by a 500: never sent half.
 * Nothing here reads the request beyond its id and HTTP version.
 */
#include "http_int.h"
#include "err.h"
#include "json.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#define HTTP_EXTRA_HEADERS_MAX 4096

static const char *reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    }
    return status < 500 ? "Bad Request" : "Internal Server Error";
}

/* The headers every response carries (OWASP REST and Secure Headers); HSTS
 * only over TLS. */
static const char hsts_header[] = "Strict-Transport-Security: max-age=63072000; includeSubDomains\r\n";
static const char security_headers[] =
    "X-Content-Type-Options: nosniff\r\n"
    "Content-Security-Policy: default-src 'none'; frame-ancestors 'none'\r\n"
    "X-Frame-Options: DENY\r\n"
    "Referrer-Policy: no-referrer\r\n"
    "Cache-Control: no-store\r\n"
    "Cross-Origin-Resource-Policy: same-origin\r\n";

static void format_date(char out[32])
{
    static time_t cached_at;
    static char cached[32];
    time_t now = time(NULL);
    if (now != cached_at || !cached[0]) {
        /* gmtime_r fails only for years past 2^31, and strftime only when
         * the text does not fit (it then leaves `cached` undefined): keep a
         * well-formed Date either way rather than bytes from nowhere. */
        struct tm tm;
        if (!gmtime_r(&now, &tm) ||
            strftime(cached, sizeof(cached), "%a, %d %b %Y %H:%M:%S GMT", &tm) == 0)
            memcpy(cached, "Thu, 01 Jan 1970 00:00:00 GMT", sizeof("Thu, 01 Jan 1970 00:00:00 GMT"));
        cached_at = now;
    }
    memcpy(out, cached, 32);
}

static bool has_body(int status, bool head)
{
    return !head && status != 204 && status != 304 && status >= 200;
}

static int write_head_and_body(struct http_conn *h, const struct http_response *res, bool head);

bool http_response_fits(const struct http_response *res)
{
    const struct http_out_budget *b = res->budget;
    size_t n = res->body.len;
    return n < HTTP_BIG_BODY || !b || (b->queued <= b->max && n <= b->max - b->queued);
}

void http_unavailable(struct http_response *res, const char *detail, const char *retry_after)
{
    http_response_clear(res);
    http_problem(res, 503, NULL, detail);
    (void)http_add_header(res, "Retry-After", retry_after);
}

void http_refuse_busy(struct http_response *res)
{
    http_unavailable(res, "The server is busy sending large answers; try again later.", "5");
}

static int write_response(struct http_conn *h, const struct http_response *res, bool head);

/* The answer counts against the output budget from here on: the next
 * request's http_response_fits(), pipelined in the same read or held with
 * this one for its audit line, sees it before any byte of it is sent. */
int http_write_response(struct http_conn *h, const struct http_response *res, bool head)
{
    int rc = write_response(h, res, head);
    http_out_count(h);
    return rc;
}

/* A response that does not fit is replaced by a 500 (never sent half). A
 * large one past the output budget, which its handler did not ask about,
 * is replaced by a 503. */
static int write_response(struct http_conn *h, const struct http_response *res, bool head)
{
    if (!http_response_fits(res)) {
        struct http_response busy;
        http_response_init(&busy, res->request_id);
        busy.close = res->close;
        http_refuse_busy(&busy);
        int rc = write_response(h, &busy, head);
        http_response_cleanup(&busy);
        return rc;
    }
    size_t start = h->out.len;
    int rc = write_head_and_body(h, res, head);
    if (rc == 0)
        return 0;
    h->out.len = start;
    struct http_response fallback;
    memset(&fallback, 0, sizeof(fallback));
    fallback.request_id = res->request_id;
    fallback.close = true;
    buf_init(&fallback.body, 1024);
    http_problem(&fallback, 500, NULL, "The response could not be sent.");
    rc = write_head_and_body(h, &fallback, head);
    buf_cleanup(&fallback.body);
    h->close_after = true;
    return rc;
}

static int write_head_and_body(struct http_conn *h, const struct http_response *res, bool head)
{
    char date[32];
    format_date(date);
    struct buf *o = &h->out;
    int rc = buf_append_str(o, "HTTP/1.1 ");
    rc = rc ? rc : buf_append_u64(o, (uint64_t)res->status);
    rc = rc ? rc : buf_append_str(o, " ");
    rc = rc ? rc : buf_append_str(o, reason(res->status));
    rc = rc ? rc : buf_append_str(o, "\r\nDate: ");
    rc = rc ? rc : buf_append_str(o, date);
    rc = rc ? rc : buf_append_str(o, "\r\n");
    if (!h->plain)
        rc = rc ? rc : buf_append(o, hsts_header, sizeof(hsts_header) - 1);
    rc = rc ? rc : buf_append(o, security_headers, sizeof(security_headers) - 1);
    if (has_body(res->status, false)) {
        rc = rc ? rc : buf_append_str(o, "Content-Type: ");
        rc = rc ? rc : buf_append_str(o, res->content_type ? res->content_type
                                                           : "application/json; charset=utf-8");
        rc = rc ? rc : buf_append_str(o, "\r\nContent-Length: ");
        rc = rc ? rc : buf_append_u64(o, res->body.len);
        rc = rc ? rc : buf_append_str(o, "\r\n");
    }
    rc = rc ? rc : buf_append_str(o, "X-Request-Id: ");
    rc = rc ? rc : buf_append_str(o, h->id);
    rc = rc ? rc : buf_append_str(o, "\r\n");
    rc = rc ? rc : buf_append(o, res->headers.data, res->headers.len);
    if (res->close)
        rc = rc ? rc : buf_append_str(o, "Connection: close\r\n");
    else if (h->parser.http_minor == 0)
        rc = rc ? rc : buf_append_str(o, "Connection: keep-alive\r\n");
    rc = rc ? rc : buf_append_str(o, "\r\n");
    if (has_body(res->status, head))
        rc = rc ? rc : buf_append(o, res->body.data, res->body.len);
    return rc;
}

void http_response_init(struct http_response *res, const char *id)
{
    memset(res, 0, sizeof(*res));
    res->status = 500;
    res->request_id = id;
    buf_init(&res->body, HTTP_BODY_MAX);
    buf_init(&res->headers, HTTP_EXTRA_HEADERS_MAX);
}

void http_response_cleanup(struct http_response *res)
{
    buf_cleanup_wipe(&res->body);   /* may have held note content */
    buf_cleanup(&res->headers);
}

void http_response_clear(struct http_response *res)
{
    buf_reset(&res->body);
    buf_reset(&res->headers);
    res->status = 500;
    res->content_type = NULL;
}

void http_problem(struct http_response *res, int status, const char *field, const char *detail)
{
    struct buf *b = &res->body;
    buf_reset(b);
    res->status = status;
    res->content_type = "application/problem+json";
    int rc = buf_append_str(b, "{\"type\":\"about:blank\",\"title\":");
    rc = rc ? rc : json_append_string(b, reason(status), strlen(reason(status)));
    rc = rc ? rc : buf_append_str(b, ",\"status\":");
    rc = rc ? rc : buf_append_u64(b, (uint64_t)status);
    rc = rc ? rc : buf_append_str(b, ",\"detail\":");
    rc = rc ? rc : json_append_string(b, detail, strlen(detail));
    if (field) {
        rc = rc ? rc : buf_append_str(b, ",\"field\":");
        rc = rc ? rc : json_append_string(b, field, strlen(field));
    }
    if (res->request_id) {
        rc = rc ? rc : buf_append_str(b, ",\"request_id\":");
        rc = rc ? rc : json_append_string(b, res->request_id, strlen(res->request_id));
    }
    rc = rc ? rc : buf_append_str(b, "}");
    if (rc) {
        /* The body cap is far above any problem document; keep a valid one. */
        buf_reset(b);
        (void)buf_append_str(b, "{\"type\":\"about:blank\",\"status\":500}");
        res->status = 500;
    }
}

void http_problem_fields(struct http_response *res, const struct http_field_error *errs, size_t n)
{
    char detail[512];
    size_t used = 0;
    detail[0] = 0;
    for (size_t i = 0; i < n; i++) {
        int k = snprintf(detail + used, sizeof(detail) - used, "%s%s: %s", i ? "; " : "",
                         errs[i].field, errs[i].why);
        if (k < 0 || (size_t)k >= sizeof(detail) - used)
            break;
        used += (size_t)k;
    }
    http_problem(res, 400, n ? errs[0].field : NULL, n ? detail : "The request is not valid.");
    if (res->status != 400 || res->body.len == 0)
        return;
    /* Reopen the object to add the list: {"...","request_id":"..."} → ...,"errors":[...]} */
    struct buf *b = &res->body;
    b->len--;
    int rc = buf_append_str(b, ",\"errors\":[");
    for (size_t i = 0; i < n && rc == 0; i++) {
        rc = buf_append_str(b, i ? ",{\"field\":" : "{\"field\":");
        rc = rc ? rc : json_append_string(b, errs[i].field, strlen(errs[i].field));
        rc = rc ? rc : buf_append_str(b, ",\"detail\":");
        rc = rc ? rc : json_append_string(b, errs[i].why, strlen(errs[i].why));
        rc = rc ? rc : buf_append_str(b, "}");
    }
    rc = rc ? rc : buf_append_str(b, "]}");
    if (rc)
        http_problem(res, 400, NULL, "The request is not valid.");
}

int http_set_json(struct http_response *res, int status, const char *json, size_t len)
{
    buf_reset(&res->body);
    res->status = status;
    res->content_type = NULL;
    return buf_append(&res->body, json, len);
}

int http_add_header(struct http_response *res, const char *name, const char *value)
{
    int rc = buf_append_str(&res->headers, name);
    rc = rc ? rc : buf_append_str(&res->headers, ": ");
    rc = rc ? rc : buf_append_str(&res->headers, value);
    return rc ? rc : buf_append_str(&res->headers, "\r\n");
}
