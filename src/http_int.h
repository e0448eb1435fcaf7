/*
 * http_int.h - what the three parts of the HTTP module share, and nothing
 * outside it may include: the connection's state (http.c), the parser
 * callbacks and the wire-byte scan that fill it (http_parse.c), and the
 * response writer (http_response.c).
 */
#ifndef NOTESD_HTTP_INT_H
#define NOTESD_HTTP_INT_H

#include "http.h"

#include <llhttp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HTTP_CHUNK_EXT_MAX 256            /* chunk extensions per chunk (CVE-2024-22019) */

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
    /* What this connection added to limits->budget for the answers in
     * `out`: out.len (0 without a budget), kept by http_out_count(), given
     * back whole when the server takes the output or the connection is
     * freed. */
    size_t out_counted;
};

/** Bring the output budget up to date with h->out after it changed: what
 *  the connection counts there becomes h->out.len. (http.c) */
void http_out_count(struct http_conn *h);

/* ---- http_parse.c -------------------------------------------------------- */

/** The llhttp callbacks of every connection (set up on first use; the
 *  loop thread only). */
const llhttp_settings_t *http_parse_settings(void);

/** A fresh request id into out (HTTP_ID_LEN hex characters and a NUL). */
void http_new_request_id(char out[HTTP_ID_LEN + 1]);

/** Frees the field arrays and the head buffer: what only a request in
 *  progress needs. */
void http_free_request_state(struct http_conn *h);

/** The bytes [off, off + len) of the request head, borrowed from h. */
struct slice http_head_slice(const struct http_conn *h, size_t off, size_t len);
/** The first of `n` fields named `name` (case-insensitive), or NULL; how
 *  many are so named. The request's and the parser's lookups. */
const struct http_header *http_fields_find(const struct http_header *f, size_t n, const char *name);
size_t http_fields_count(const struct http_header *f, size_t n, const char *name);

/** Bounds the head on the wire bytes p[0..n) before llhttp sees them;
 *  -1 with h->error_status set when a limit is passed, else 0. */
int http_scan_head(struct http_conn *h, const uint8_t *p, size_t n);

/** Starts the wire-byte scan over for the next message. */
void http_scan_restart(struct http_conn *h);

/* ---- http_response.c ----------------------------------------------------- */

/** An empty response (status 500 until a handler sets one) whose bodies
 *  are capped; release with http_response_cleanup(). */
void http_response_init(struct http_response *res, const char *id);

/** Wipes the body (it may hold note content) and frees both buffers. */
void http_response_cleanup(struct http_response *res);

/** Appends res, with the security headers, to h->out, where it counts
 *  against the output budget until the server takes it; one that does not
 *  fit is replaced whole by a 500 and the connection set to close.
 *  0, or the error of writing even the 500. */
int http_write_response(struct http_conn *h, const struct http_response *res, bool head);

#endif
