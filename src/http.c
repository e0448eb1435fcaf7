/*
 * http.c - strict HTTP/1.1 request assembly (llhttp) and response writing.
 *
 * Owns one llhttp parser per connection, the bytes of the request being
 * assembled (target and fields in `head`, the body in `body`, both bounded by
 * http_limits) and the plaintext output. llhttp runs in strict mode: no
 * llhttp_set_lenient_* call exists in this program. On top of it this file
 * refuses what llhttp lets through but a strict origin server must not
 * accept (see check_framing()). Every response, errors included, carries
 * the security headers; every error body is an RFC 9457 problem document.
 * After a framing error the connection closes and nothing more is parsed.
 */
#include "http.h"
#include "crypto.h"
#include "err.h"
#include "json.h"

#include <llhttp.h>
#include <mbedtls/platform_util.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Queued response bytes: room for the largest response (an export, capped
 * by its handler below HTTP_BODY_MAX) plus pipelined small ones. */
#define HTTP_OUT_MAX (20u * 1024 * 1024)
#define HTTP_EXTRA_HEADERS_MAX 4096
#define HTTP_PENDING_MAX (64 * 1024)      /* input held while a job runs */
#define HTTP_CHUNK_EXT_MAX 256            /* chunk extensions per chunk (CVE-2024-22019) */
#define HTTP_REQUEST_LINE_SLACK 32        /* method, spaces and version beside the target */

const struct http_limits http_default_limits = {
    .max_target = 8 * 1024,
    .max_field = 8 * 1024,
    .max_header_block = 32 * 1024,
    .max_fields = 100,
    .max_body = 256 * 1024,
};

struct field_span {
    size_t name_off, name_len, value_off, value_len;
};

struct http_conn {
    llhttp_t parser;
    const struct http_limits *limits;
    http_dispatch_cb dispatch;
    void *arg;

    struct buf head;              /* target, then field names and values */
    size_t target_off, target_len;
    /* Allocated at a message's first field and kept while requests keep
     * coming; http_conn_trim() frees them when the connection goes idle. */
    struct field_span *fields;    /* fields_cap of each */
    struct http_header *headers;
    size_t n_fields, fields_cap;
    size_t header_bytes;
    bool in_value;                /* last span was a value (next name starts a field) */
    bool in_trailers;             /* header block done: fields now are trailers */
    size_t n_trailer_spans;
    struct buf body;

    int error_status;             /* set by a callback that refused the request */
    int rejected;                 /* the status a refusal at the edge answered */
    const char *error_field;
    const char *error_detail;
    bool complete;                /* on_message_complete ran */
    bool in_message;
    bool close_after;
    bool draining;
    bool plain;                   /* redirect listener: no HSTS */
    uint8_t peer[16];
    struct http_memo memo;
    uint64_t requests;
    size_t chunk_ext_bytes;

    /* Raw header bytes, counted before llhttp sees them: llhttp drops the
     * whitespace around values without a callback, so only a scan of the
     * wire bytes bounds a field padded with it. */
    bool scan_head;               /* between a message start and its blank line */
    /* Bytes llhttp skips without a callback (the whitespace around values,
     * in trailers too) are found as gaps between the spans it reports:
     * positions are counted from the start of the connection. */
    const uint8_t *exec_base;     /* the buffer of the current llhttp_execute */
    uint64_t exec_abs;            /* its offset in the connection's byte stream */
    uint64_t last_end_abs;        /* end of the last span of this message */
    bool last_end_valid;
    bool scan_line_seen;          /* a non-empty line was seen in this head */
    size_t scan_line, scan_block, scan_lines;
    char id[HTTP_ID_LEN + 1];

    /* While a handler's job runs, the request and response live here and
     * bytes behind the request wait in `pending_in`. */
    struct http_request req;
    struct http_response res;
    bool waiting;
    bool job_taken;
    struct buf pending_in;

    struct buf out;
};

/* ---- request ids ------------------------------------------------------- */

static uint64_t id_seed;
static uint32_t id_counter;

/* A random per-process prefix and a counter: unique, unguessable across
 * restarts, and free of any information about the request. */
static void new_request_id(char out[HTTP_ID_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    if (id_seed == 0 && crypto_random(&id_seed, sizeof(id_seed)) != 0)
        id_seed = (uint64_t)time(NULL) * 2654435761u;
    uint64_t a = id_seed;
    uint32_t b = ++id_counter;
    for (int i = 15; i >= 0; i--, a >>= 4)
        out[i] = hex[a & 15];
    for (int i = 23; i >= 16; i--, b >>= 4)
        out[i] = hex[b & 15];
    out[HTTP_ID_LEN] = 0;
}

/* ---- parser callbacks ---------------------------------------------------- */

static struct http_conn *conn_of(llhttp_t *p)
{
    return p->data;
}

static int refuse(struct http_conn *h, int status, const char *field, const char *detail)
{
    if (!h->error_status) {
        h->error_status = status;
        h->error_field = field;
        h->error_detail = detail;
    }
    return -1;
}

static int on_message_begin(llhttp_t *p)
{
    struct http_conn *h = conn_of(p);
    buf_reset(&h->head);
    buf_reset(&h->body);
    h->target_off = h->target_len = 0;
    h->n_fields = 0;
    h->header_bytes = 0;
    h->in_value = false;
    h->in_trailers = false;
    h->n_trailer_spans = 0;
    h->last_end_valid = false;
    h->complete = false;
    h->in_message = true;
    h->requests++;
    new_request_id(h->id);
    return 0;
}

static uint64_t abs_of(const struct http_conn *h, const char *at)
{
    return h->exec_abs + (uint64_t)((const uint8_t *)at - h->exec_base);
}

static void mark_end(struct http_conn *h, const char *at, size_t len)
{
    h->last_end_abs = abs_of(h, at) + len;
    h->last_end_valid = true;
}

/* Padding beyond `allowed` separator bytes since the last span counts
 * against the header block: a field padded with whitespace is still large. */
static int count_padding(struct http_conn *h, const char *at, uint64_t allowed)
{
    if (!h->last_end_valid)
        return 0;
    uint64_t gap = abs_of(h, at) - h->last_end_abs;
    if (gap <= allowed)
        return 0;
    if (gap - allowed > h->limits->max_header_block - h->header_bytes)
        return refuse(h, 431, NULL, "The header block is too large.");
    h->header_bytes += (size_t)(gap - allowed);
    return 0;
}

/* Separators llhttp may skip between spans: " HTTP/1.1\r\n" before the first
 * field, ":" and one space before a value, ": \r\n" after an empty value, and
 * the last chunk's size line (extensions capped separately) before a trailer. */
#define GAP_AFTER_TARGET 16
#define GAP_BEFORE_VALUE 2
#define GAP_BEFORE_FIELD 4
#define GAP_BEFORE_TRAILER (64 + HTTP_CHUNK_EXT_MAX)

static int on_url(llhttp_t *p, const char *at, size_t len)
{
    struct http_conn *h = conn_of(p);
    mark_end(h, at, len);
    if (h->target_len + len > h->limits->max_target)
        return refuse(h, 414, NULL, "The request target is too long.");
    if (h->target_len == 0)
        h->target_off = h->head.len;
    if (buf_append(&h->head, at, len) != 0)
        return refuse(h, 414, NULL, "The request target is too long.");
    h->target_len += len;
    return 0;
}

static int add_header_bytes(struct http_conn *h, size_t len, size_t field_len)
{
    if (field_len > h->limits->max_field)
        return refuse(h, 431, NULL, "A header field is too large.");
    if (h->header_bytes + len > h->limits->max_header_block)
        return refuse(h, 431, NULL, "The header block is too large.");
    h->header_bytes += len;
    return 0;
}

/* Trailer fields of a chunked body are discarded (RFC 9110 §6.5.1 allows
 * it); they still count against the header block limit. */
static int on_trailer_bytes(struct http_conn *h, size_t len)
{
    if (h->header_bytes + len > h->limits->max_header_block)
        return refuse(h, 431, NULL, "The trailer fields are too large.");
    h->header_bytes += len;
    return 0;
}

/* Room for one more field. The arrays start small and double up to the
 * cap: a typical request has a handful of fields, and these arrays are
 * made anew for each request of a connection that went idle in between, so
 * zeroing room for the maximum every time cost ~4% of a note read. Only
 * entries below n_fields are ever read. */
#define FIELDS_FIRST 16

static int grow_fields(struct http_conn *h)
{
    if (h->n_fields < h->fields_cap)
        return 0;
    size_t n = h->fields_cap ? 2 * h->fields_cap : FIELDS_FIRST;
    if (n > HTTP_MAX_FIELDS_CAP)
        n = HTTP_MAX_FIELDS_CAP;
    struct field_span *f = realloc(h->fields, n * sizeof(*f));
    if (!f)
        return ERR_NOMEM;
    h->fields = f;
    struct http_header *hd = realloc(h->headers, n * sizeof(*hd));
    if (!hd)
        return ERR_NOMEM;
    h->headers = hd;
    h->fields_cap = n;
    return 0;
}

/* Drop what only a request in progress needs. */
static void free_request_state(struct http_conn *h)
{
    free(h->fields);
    free(h->headers);
    h->fields = NULL;
    h->headers = NULL;
    h->n_fields = h->fields_cap = 0;
    buf_cleanup(&h->head);
}

static int on_header_field(llhttp_t *p, const char *at, size_t len)
{
    struct http_conn *h = conn_of(p);
    uint64_t allowed = h->in_trailers ? (h->n_trailer_spans == 0 ? GAP_BEFORE_TRAILER : GAP_BEFORE_FIELD)
                       : h->n_fields == 0 ? GAP_AFTER_TARGET : GAP_BEFORE_FIELD;
    if (count_padding(h, at, allowed) != 0)
        return -1;
    mark_end(h, at, len);
    if (h->in_trailers) {
        h->n_trailer_spans++;
        return on_trailer_bytes(h, len);
    }
    if (h->n_fields == 0 || h->in_value) {
        if (h->n_fields >= h->limits->max_fields || h->n_fields >= HTTP_MAX_FIELDS_CAP)
            return refuse(h, 431, NULL, "Too many header fields.");
        if (grow_fields(h) != 0)
            return refuse(h, 503, NULL, "The server is out of memory.");
        struct field_span *f = &h->fields[h->n_fields++];
        f->name_off = h->head.len;
        f->name_len = f->value_len = 0;
        f->value_off = 0;
        h->in_value = false;
    }
    struct field_span *f = &h->fields[h->n_fields - 1];
    if (add_header_bytes(h, len, f->name_len + len) != 0 || buf_append(&h->head, at, len) != 0)
        return refuse(h, 431, NULL, "The header block is too large.");
    f->name_len += len;
    return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t len)
{
    struct http_conn *h = conn_of(p);
    if (count_padding(h, at, GAP_BEFORE_VALUE) != 0)
        return -1;
    mark_end(h, at, len);
    if (h->in_trailers)
        return on_trailer_bytes(h, len);
    struct field_span *f = &h->fields[h->n_fields - 1];
    if (!h->in_value) {
        f->value_off = h->head.len;
        h->in_value = true;
    }
    if (add_header_bytes(h, len, f->name_len + f->value_len + len) != 0 ||
        buf_append(&h->head, at, len) != 0)
        return refuse(h, 431, NULL, "The header block is too large.");
    f->value_len += len;
    return 0;
}

static struct slice head_slice(const struct http_conn *h, size_t off, size_t len)
{
    return (struct slice){ len ? h->head.data + off : (const uint8_t *)"", len };
}

static size_t count_headers(const struct http_conn *h, const char *name)
{
    size_t n = 0;
    for (size_t i = 0; i < h->n_fields; i++)
        n += slice_eq_nocase(h->headers[i].name, slice_str(name));
    return n;
}

static const struct http_header *find_in(const struct http_conn *h, const char *name)
{
    for (size_t i = 0; i < h->n_fields; i++)
        if (slice_eq_nocase(h->headers[i].name, slice_str(name)))
            return &h->headers[i];
    return NULL;
}

static bool valid_host(struct slice v)
{
    /* host [":" port] with a reg-name, IPv4 or bracketed IPv6 host. */
    size_t i = 0;
    if (v.len == 0)
        return false;
    if (v.p[0] == '[') {
        while (i < v.len && v.p[i] != ']')
            i++;
        if (i == v.len || i == 1)
            return false;
        for (size_t k = 1; k < i; k++)
            if (!strchr("0123456789abcdefABCDEF:.", v.p[k]))
                return false;
        i++;
    } else {
        for (; i < v.len && v.p[i] != ':'; i++) {
            unsigned char c = v.p[i];
            if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '.'))
                return false;
        }
        if (i == 0)
            return false;
    }
    if (i == v.len)
        return true;
    if (v.p[i] != ':' || v.len - i - 1 > 5)
        return false;
    unsigned long port = 0;
    for (size_t k = i + 1; k < v.len; k++) {
        if (v.p[k] < '0' || v.p[k] > '9')
            return false;
        port = port * 10 + (unsigned long)(v.p[k] - '0');
    }
    return port <= 65535;
}

/* Rules a strict origin server adds to llhttp's own (RFC 9112 §3.2, §6). */
static int check_framing(struct http_conn *h, llhttp_t *p)
{
    if (p->http_major != 1 || p->http_minor > 1)
        return refuse(h, 400, NULL, "Only HTTP/1.0 and HTTP/1.1 are supported.");
    struct slice target = head_slice(h, h->target_off, h->target_len);
    bool options_star = p->method == HTTP_OPTIONS && target.len == 1 && target.p[0] == '*';
    if (target.len == 0 || (target.p[0] != '/' && !options_star))
        return refuse(h, 400, NULL, "The request target must be an absolute path.");
    size_t hosts = count_headers(h, "host");
    const struct http_header *host = find_in(h, "host");
    if (p->http_minor == 1 && hosts != 1)
        return refuse(h, 400, "Host", "HTTP/1.1 requests need exactly one Host header.");
    if (hosts > 1 || (host && !valid_host(host->value)))
        return refuse(h, 400, "Host", "The Host header is not a valid host[:port].");
    size_t te = count_headers(h, "transfer-encoding");
    const struct http_header *te_field = find_in(h, "transfer-encoding");
    if (te_field) {
        if (p->http_minor == 0)
            return refuse(h, 400, "Transfer-Encoding", "Transfer-Encoding is not allowed in HTTP/1.0.");
        if (te > 1 || !slice_eq_nocase(te_field->value, SLICE_LIT("chunked")))
            return refuse(h, 400, "Transfer-Encoding", "Only 'Transfer-Encoding: chunked' is accepted.");
        if (count_headers(h, "content-length") > 0)
            return refuse(h, 400, "Content-Length", "Content-Length and Transfer-Encoding together are refused.");
    }
    return 0;
}

static int on_headers_complete(llhttp_t *p)
{
    struct http_conn *h = conn_of(p);
    h->in_trailers = true;   /* `head` must not move from here on */
    for (size_t i = 0; i < h->n_fields; i++) {
        struct slice v = head_slice(h, h->fields[i].value_off, h->fields[i].value_len);
        while (v.len > 0 && (v.p[v.len - 1] == ' ' || v.p[v.len - 1] == '\t'))
            v.len--;   /* llhttp strips leading whitespace only (RFC 9110 §5.5) */
        h->headers[i].name = head_slice(h, h->fields[i].name_off, h->fields[i].name_len);
        h->headers[i].value = v;
    }
    if (check_framing(h, p) != 0)
        return -1;
    if ((p->flags & F_CONTENT_LENGTH) && p->content_length > h->limits->max_body)
        return refuse(h, 413, NULL, "The request body is too large.");
    /* notesd never switches protocols; Upgrade is ignored (RFC 9110 §7.8). */
    p->upgrade = 0;
    return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
    struct http_conn *h = conn_of(p);
    mark_end(h, at, len);
    if (h->body.len + len > h->limits->max_body || buf_append(&h->body, at, len) != 0)
        return refuse(h, 413, NULL, "The request body is too large.");
    return 0;
}

static int on_chunk_header(llhttp_t *p)
{
    conn_of(p)->chunk_ext_bytes = 0;
    return 0;
}

static int on_chunk_ext(llhttp_t *p, const char *at, size_t len)
{
    struct http_conn *h = conn_of(p);
    mark_end(h, at, len);
    h->chunk_ext_bytes += len;
    if (h->chunk_ext_bytes > HTTP_CHUNK_EXT_MAX)
        return refuse(h, 400, NULL, "A chunk extension is too long.");
    return 0;
}

static int on_message_complete(llhttp_t *p)
{
    struct http_conn *h = conn_of(p);
    h->complete = true;
    /* Pause so each request is answered before the next one is parsed. */
    return HPE_PAUSED;
}

static llhttp_settings_t settings;

static void init_settings(void)
{
    if (settings.on_message_begin)
        return;
    llhttp_settings_init(&settings);
    settings.on_message_begin = on_message_begin;
    settings.on_url = on_url;
    settings.on_header_field = on_header_field;
    settings.on_header_value = on_header_value;
    settings.on_headers_complete = on_headers_complete;
    settings.on_body = on_body;
    settings.on_message_complete = on_message_complete;
    settings.on_chunk_header = on_chunk_header;
    settings.on_chunk_extension_name = on_chunk_ext;
    settings.on_chunk_extension_value = on_chunk_ext;
}

/* ---- responses ----------------------------------------------------------- */

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

/* A response that does not fit is replaced by a 500 (never sent half). */
static int write_response(struct http_conn *h, const struct http_response *res, bool head)
{
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

static void response_init(struct http_response *res, const char *id)
{
    memset(res, 0, sizeof(*res));
    res->status = 500;
    res->request_id = id;
    buf_init(&res->body, HTTP_BODY_MAX);
    buf_init(&res->headers, HTTP_EXTRA_HEADERS_MAX);
}

static void response_cleanup(struct http_response *res)
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

const struct http_header *http_find_header(const struct http_request *req, const char *name)
{
    for (size_t i = 0; i < req->n_headers; i++)
        if (slice_eq_nocase(req->headers[i].name, slice_str(name)))
            return &req->headers[i];
    return NULL;
}

/* ---- connection ---------------------------------------------------------- */

static void scan_restart(struct http_conn *h);

struct http_conn *http_conn_new(const struct http_limits *limits, http_dispatch_cb dispatch, void *arg)
{
    init_settings();
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
    scan_restart(h);
    llhttp_init(&h->parser, HTTP_REQUEST, &settings);
    h->parser.data = h;
    return h;
}

void http_conn_free(struct http_conn *h)
{
    if (!h)
        return;
    free_request_state(h);
    buf_cleanup_wipe(&h->body);
    buf_cleanup_wipe(&h->out);
    buf_cleanup_wipe(&h->pending_in);
    mbedtls_platform_zeroize(&h->memo, sizeof(h->memo));
    if (h->waiting && !h->job_taken && h->res.job)
        h->res.job->done(h->res.job, &h->res);   /* never started: let it free itself */
    response_cleanup(&h->res);
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
    req->target = head_slice(h, h->target_off, h->target_len);
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
    int rc = write_response(h, &h->res, h->req.method == HTTP_M_HEAD);
    if (h->res.close)
        h->close_after = true;
    response_cleanup(&h->res);
    buf_cleanup_wipe(&h->body);      /* request bodies hold user content */
    h->in_message = false;
    return rc == ERR_NOMEM ? ERR_NOMEM : 0;
}

static int answer(struct http_conn *h)
{
    build_request(h, &h->req);
    response_init(&h->res, h->id);
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
        new_request_id(h->id);
    response_init(&res, h->id);
    if (h->error_status)
        http_problem(&res, h->error_status, h->error_field, h->error_detail);
    else if (e == HPE_INVALID_METHOD)
        http_problem(&res, 400, NULL, "The request method is not valid.");
    else
        http_problem(&res, 400, NULL, "The request is not valid HTTP/1.1.");
    res.close = true;
    h->rejected = res.status;
    int rc = write_response(h, &res, false);
    response_cleanup(&res);
    h->close_after = true;
    h->in_message = false;
    return rc == ERR_NOMEM ? ERR_NOMEM : 0;
}

/* Bound the header block on the wire bytes themselves: the request line by
 * the target limit, each field line by the field limit, the block by the
 * block limit. Runs ahead of llhttp over the bytes of one message's head. */
static int scan_head(struct http_conn *h, const uint8_t *p, size_t n)
{
    const struct http_limits *lim = h->limits;
    for (size_t i = 0; i < n && h->scan_head; i++) {
        if (p[i] != '\n') {
            if (p[i] != '\r')
                h->scan_line++;
            /* Names and values are bounded exactly by the callbacks; here
             * the wire form also has ": " and CR on every line. */
            if (++h->scan_block > lim->max_header_block + lim->max_target + HTTP_REQUEST_LINE_SLACK +
                                      3 * lim->max_fields)
                return refuse(h, 431, NULL, "The header block is too large.");
            if (h->scan_lines == 0 && h->scan_line > lim->max_target + HTTP_REQUEST_LINE_SLACK)
                return refuse(h, 414, NULL, "The request target is too long.");
            if (h->scan_lines > 0 && h->scan_line > lim->max_field + 2)   /* ": " */
                return refuse(h, 431, NULL, "A header field is too large.");
            continue;
        }
        if (h->scan_line == 0 && h->scan_line_seen) {
            h->scan_head = false;          /* the blank line: the body follows */
        } else if (h->scan_line > 0) {
            h->scan_lines++;
            h->scan_line_seen = true;
        }
        h->scan_line = 0;
    }
    return 0;
}

static void scan_restart(struct http_conn *h)
{
    h->scan_head = true;
    h->scan_line_seen = false;
    h->scan_line = h->scan_block = h->scan_lines = 0;
}

int http_conn_feed(struct http_conn *h, const uint8_t *p, size_t n)
{
    if (h->waiting && !h->close_after)
        return buf_append(&h->pending_in, p, n) == 0 ? 0 : ERR_LIMIT;
    while (n > 0 && !h->close_after) {
        if (scan_head(h, p, n) != 0)
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
        scan_restart(h);   /* the next message starts at p + used */
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

int http_conn_job_done(struct http_conn *h)
{
    struct http_job *job = h->res.job;
    h->res.job = NULL;
    h->waiting = false;
    job->done(job, &h->res);
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
    free_request_state(h);
    buf_cleanup_wipe(&h->out);   /* responses held note content */
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
