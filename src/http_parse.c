/*
 * http_parse.c - the llhttp callbacks that assemble a request, the framing
 * rules a strict origin server adds to llhttp's own, and the scan of the
 * raw head bytes that bounds what llhttp skips without a callback.
 *
 * Everything here writes only into the connection it was called for, and
 * refuses by recording a status in it (refuse()): the caller answers and
 * closes. llhttp runs in strict mode: no llhttp_set_lenient_* call exists
 * in this program.
 */
#include "http_int.h"
#include "crypto.h"
#include "err.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define HTTP_REQUEST_LINE_SLACK 32        /* method, spaces and version beside the target */

/* ---- request ids ------------------------------------------------------- */

static uint64_t id_seed;
static uint32_t id_counter;

/* A random per-process prefix and a counter: unique, unguessable across
 * restarts, and free of any information about the request. */
void http_new_request_id(char out[HTTP_ID_LEN + 1])
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
    http_new_request_id(h->id);
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
void http_free_request_state(struct http_conn *h)
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

struct slice http_head_slice(const struct http_conn *h, size_t off, size_t len)
{
    return (struct slice){ len ? h->head.data + off : (const uint8_t *)"", len };
}

static size_t count_headers(const struct http_conn *h, const char *name)
{
    return http_fields_count(h->headers, h->n_fields, name);
}

static const struct http_header *find_in(const struct http_conn *h, const char *name)
{
    return http_fields_find(h->headers, h->n_fields, name);
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
    struct slice target = http_head_slice(h, h->target_off, h->target_len);
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
        struct slice v = http_head_slice(h, h->fields[i].value_off, h->fields[i].value_len);
        while (v.len > 0 && (v.p[v.len - 1] == ' ' || v.p[v.len - 1] == '\t'))
            v.len--;   /* llhttp strips leading whitespace only (RFC 9110 §5.5) */
        h->headers[i].name = http_head_slice(h, h->fields[i].name_off, h->fields[i].name_len);
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

const llhttp_settings_t *http_parse_settings(void)
{
    if (settings.on_message_begin)
        return &settings;
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
    return &settings;
}

/* Bound the header block on the wire bytes themselves: the request line by
 * the target limit, each field line by the field limit, the block by the
 * block limit. Runs ahead of llhttp over the bytes of one message's head.
 * The counts live in locals while it runs: the bytes are uint8_t, which may
 * alias anything, so fields of `h` would be reloaded and stored per byte. */
int http_scan_head(struct http_conn *h, const uint8_t *p, size_t n)
{
    const struct http_limits *lim = h->limits;
    /* Names and values are bounded exactly by the callbacks; here the wire
     * form also has ": " and CR on every line. */
    const size_t block_max = lim->max_header_block + lim->max_target + HTTP_REQUEST_LINE_SLACK + 3 * lim->max_fields;
    const size_t target_max = lim->max_target + HTTP_REQUEST_LINE_SLACK;
    const size_t field_max = lim->max_field + 2;   /* ": " */
    size_t line = h->scan_line, block = h->scan_block, lines = h->scan_lines;
    bool head = h->scan_head, seen = h->scan_line_seen;
    int over = 0;
    for (size_t i = 0; i < n && head && !over; i++) {
        if (p[i] != '\n') {
            line += p[i] != '\r';
            size_t line_max = lines == 0 ? target_max : field_max;   /* the request line, a field */
            over = ++block > block_max ? 1 : line > line_max ? (lines == 0 ? 2 : 3) : 0;
            continue;
        }
        if (line == 0 && seen) {
            head = false;                  /* the blank line: the body follows */
        } else if (line > 0) {
            lines++;
            seen = true;
        }
        line = 0;
    }
    h->scan_line = line;
    h->scan_block = block;
    h->scan_lines = lines;
    h->scan_head = head;
    h->scan_line_seen = seen;
    if (over == 1)
        return refuse(h, 431, NULL, "The header block is too large.");
    if (over == 2)
        return refuse(h, 414, NULL, "The request target is too long.");
    return over ? refuse(h, 431, NULL, "A header field is too large.") : 0;
}

void http_scan_restart(struct http_conn *h)
{
    h->scan_head = true;
    h->scan_line_seen = false;
    h->scan_line = h->scan_block = h->scan_lines = 0;
}
