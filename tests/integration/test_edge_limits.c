/*
 * Edge tests of the size limits, each at its edge and before
 * authentication: request target (414), field, header block and field count
 * (431), body by Content-Length and by chunks (413), trailer fields.
 * Fixtures and helpers: edge_support.h.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "edge_support.h"

/* ---- size limits at their edges, before authentication --------------------- */

static const char *const small_limits[] = {
    "NOTES_MAX_TARGET", "64",
    "NOTES_MAX_FIELD", "64",
    "NOTES_MAX_HEADERS_SIZE", "256",
    "NOTES_MAX_HEADERS", "5",
    "NOTES_MAX_BODY", "1024",
    NULL,
};

/* At the edge: answered (not with `refused`), and the connection stays usable. */
static void expect_passes(const char *what, const char *req, size_t len, int refused)
{
    struct rawconn c;
    tls_open(&c);
    struct raw_resp r;
    exchange(&c, req, len, &r);
    cr_assert_neq(r.status, refused, "%s: at the limit, yet refused with %d:\n%s\n%s", what, refused, r.head,
                  r.body);
    cr_assert_eq(r.status, 401, "%s: want the route's 401 (the limit passed), got %d:\n%s\n%s", what, r.status,
                 r.head, r.body);
    raw_resp_free(&r);
    cr_assert_eq(get_status(&c, GOOD), 200, "%s: the connection is not usable after an at-limit request", what);
    raw_close(&c);
}

static void expect_refused(const char *what, const char *req, size_t len, int status)
{
    struct rawconn c;
    tls_open(&c);
    char *why = refusal_outcome(&c, req, len, status, NULL);
    raw_close(&c);
    char *shown = visible(req, len);
    cr_assert_null(why, "%s: input \"%s\": %s", what, shown, why);
    free(shown);
}

Test(edge, target_limit_edge_414_before_auth, .init = prep, .fini = finish)
{
    start_with(small_limits);
    /* "/v1/notes/" (10) + 54 = 64 bytes: at the limit. */
    char *id = repeat('a', 54);
    char *at = harness_fmt("GET /v1/notes/%s HTTP/1.1\r\nHost: localhost\r\n\r\n", id);
    char *over = harness_fmt("GET /v1/notes/%sa HTTP/1.1\r\nHost: localhost\r\n\r\n", id);
    char *query = harness_fmt("GET /v1/notes?limit=5&%s HTTP/1.1\r\nHost: localhost\r\n\r\n", id);  /* 10+8+... = 72 */
    expect_passes("target of 64 bytes", at, strlen(at), 414);
    expect_refused("target of 65 bytes", over, strlen(over), 414);
    expect_refused("target over the limit in its query", query, strlen(query), 414);
    free(at);
    free(over);
    free(query);
    free(id);

    /* Refused while it streams in: the request line never ends. */
    struct rawconn c;
    tls_open(&c);
    char *tail = repeat('a', 200);
    char *open_line = harness_fmt("GET /v1/notes/%s", tail);
    raw_send(&c, open_line, strlen(open_line), 5000, NULL);
    struct rawbuf out = { 0 };
    enum raw_io e = raw_read_until_close(&c, &out, 5000);
    struct raw_resp r = { 0 };
    size_t k = raw_parse_response(out.p, out.len, &r);
    cr_assert(k != 0 && k != (size_t)-1, "an over-long target must be refused as it streams in (%s):\n%s",
              raw_io_name(e), out.p);
    cr_assert_eq(r.status, 414);
    cr_assert_neq(e, RAW_TIMEOUT, "still open after the 414");
    raw_resp_free(&r);
    rawbuf_free(&out);
    raw_close(&c);
    free(tail);
    free(open_line);
}

Test(edge, field_limit_edge_431_before_auth, .init = prep, .fini = finish)
{
    start_with(small_limits);
    char *v61 = repeat('v', 61), *v62 = repeat('v', 62), *n65 = repeat('N', 65);
    /* name + value: "X-A" (3) + 61 = 64. */
    char *at = harness_fmt("GET /v1/notes HTTP/1.1\r\nHost: localhost\r\nX-A: %s\r\n\r\n", v61);
    char *over = harness_fmt("GET /v1/notes HTTP/1.1\r\nHost: localhost\r\nX-A: %s\r\n\r\n", v62);
    char *name = harness_fmt("GET /v1/notes HTTP/1.1\r\nHost: localhost\r\n%s: v\r\n\r\n", n65);
    expect_passes("field of 64 bytes", at, strlen(at), 431);
    expect_refused("field of 65 bytes", over, strlen(over), 431);
    expect_refused("field name of 65 bytes", name, strlen(name), 431);
    free(v61);
    free(v62);
    free(n65);
    free(at);
    free(over);
    free(name);
}

/* Whitespace before a value is not part of it, but it is bytes of the field
 * and of the header block that the client made the server read. */
Test(edge, field_and_block_limits_count_leading_whitespace, .init = prep, .fini = finish)
{
    start_with(small_limits);
    char *ws = repeat(' ', 4096);
    char *req = harness_fmt("GET /v1/notes HTTP/1.1\r\nHost: localhost\r\nX-A:%sv\r\n\r\n", ws);
    expect_refused("a field of 4 KiB (all but one byte leading whitespace) under 64/256-byte limits", req,
                   strlen(req), 431);
    free(ws);
    free(req);
}

/* Host: localhost (4+9) + 3 x 64 + (3 + 48) = 256 bytes of names and values in 5 fields. */
static char *block_request(size_t last_value_len)
{
    char *v61 = repeat('v', 61), *last = repeat('w', last_value_len);
    char *req = harness_fmt("GET /v1/notes HTTP/1.1\r\nHost: localhost\r\nX-A: %s\r\nX-B: %s\r\nX-C: %s\r\nX-D: %s\r\n\r\n",
                    v61, v61, v61, last);
    free(v61);
    free(last);
    return req;
}

Test(edge, header_block_limit_edge_431_before_auth, .init = prep, .fini = finish)
{
    start_with(small_limits);
    char *at = block_request(48), *over = block_request(49);
    expect_passes("header block of 256 bytes", at, strlen(at), 431);
    expect_refused("header block of 257 bytes (each field <= 64, 5 fields)", over, strlen(over), 431);
    free(at);
    free(over);
}

Test(edge, field_count_limit_edge_431_before_auth, .init = prep, .fini = finish)
{
    start_with(small_limits);
    static const char at[] = "GET /v1/notes HTTP/1.1\r\nHost: localhost\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n";
    static const char over[] = "GET /v1/notes HTTP/1.1\r\nHost: localhost\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5\r\n\r\n";
    expect_passes("5 fields", at, sizeof(at) - 1, 431);
    expect_refused("6 fields", over, sizeof(over) - 1, 431);
}

Test(edge, body_limit_by_content_length_413_before_the_body_is_sent, .init = prep, .fini = finish)
{
    start_with(small_limits);
    char *body = repeat('b', 1024);
    char *at = harness_fmt("POST /v1/notes HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                   "Content-Length: 1024\r\n\r\n%s", body);
    expect_passes("Content-Length body of 1024 bytes", at, strlen(at), 413);

    /* Only the header block goes out: the 413 must not wait for the body. */
    struct rawconn c;
    tls_open(&c);
    static const char head[] = "POST /v1/notes HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                               "Content-Length: 1025\r\n\r\n";
    cr_assert_eq(raw_send(&c, head, sizeof(head) - 1, 5000, NULL), RAW_OK);
    struct rawbuf out = { 0 };
    enum raw_io e = raw_read_responses(&c, &out, 1, 3000);
    struct raw_resp r = { 0 };
    size_t k = raw_parse_response(out.p, out.len, &r);
    cr_assert(k != 0 && k != (size_t)-1, "no 413 before the body was sent (%s):\n%s", raw_io_name(e), out.p);
    cr_assert_eq(r.status, 413, "got %d:\n%s\n%s", r.status, r.head, r.body);
    char *conn = raw_header(&r, "Connection");
    cr_assert(conn && strcmp(conn, "close") == 0, "413 without Connection: close:\n%s", r.head);
    free(conn);
    raw_resp_free(&r);
    /* The body sent now is never parsed as requests, nor is what follows. */
    raw_send(&c, body, 1024, 2000, NULL);
    raw_send(&c, GOOD, sizeof(GOOD) - 1, 2000, NULL);
    rawbuf_free(&out);
    e = raw_read_until_close(&c, &out, 5000);
    cr_assert_neq(e, RAW_TIMEOUT, "the connection stayed open after the 413");
    cr_assert_eq(raw_count_responses(out.p, out.len, NULL, NULL), 0, "answered after the 413:\n%s", out.p);
    rawbuf_free(&out);
    raw_close(&c);

    static const char huge[] = "POST /v1/notes HTTP/1.1\r\nHost: localhost\r\n"
                               "Content-Length: 18446744073709551615\r\n\r\n";
    expect_refused("Content-Length 2^64-1", huge, sizeof(huge) - 1, 413);
    free(body);
    free(at);
}

Test(edge, body_limit_by_chunked_413_before_auth, .init = prep, .fini = finish)
{
    start_with(small_limits);
    char *kib = repeat('c', 1024);
    char *at = harness_fmt("POST /v1/notes HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                   "Transfer-Encoding: chunked\r\n\r\n200\r\n%.512s\r\n200\r\n%.512s\r\n0\r\n\r\n", kib, kib);
    char *over = harness_fmt("POST /v1/notes HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                     "Transfer-Encoding: chunked\r\n\r\n400\r\n%s\r\n1\r\nX\r\n0\r\n\r\n", kib);
    /* One chunk announced larger than the limit: refused before its data all arrived. */
    char *big = harness_fmt("POST /v1/notes HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                    "Transfer-Encoding: chunked\r\n\r\n100000\r\n%sc", kib);
    expect_passes("chunked body of 1024 bytes", at, strlen(at), 413);
    expect_refused("chunked body of 1025 bytes", over, strlen(over), 413);

    struct rawconn c;
    tls_open(&c);
    raw_send(&c, big, strlen(big), 5000, NULL);
    struct rawbuf out = { 0 };
    enum raw_io e = raw_read_until_close(&c, &out, 5000);
    struct raw_resp r = { 0 };
    size_t k = raw_parse_response(out.p, out.len, &r);
    cr_assert(k != 0 && k != (size_t)-1, "a 1 MiB chunk was not refused once 1025 bytes of it exceeded the 1024 limit (%s):\n%s",
              raw_io_name(e), out.p);
    cr_assert_eq(r.status, 413);
    cr_assert_neq(e, RAW_TIMEOUT);
    raw_resp_free(&r);
    rawbuf_free(&out);
    raw_close(&c);
    free(kib);
    free(at);
    free(over);
    free(big);
}

/* Trailer fields are discarded, but they are header bytes all the same. */
Test(edge, trailer_fields_count_against_the_header_block, .init = prep, .fini = finish)
{
    start_with(small_limits);
    char *v = repeat('t', 300);
    char *req = harness_fmt("POST /v1/notes HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                    "Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\nX-T: %s\r\n\r\n", v);
    expect_refused("300-byte trailer field over a 256-byte header block", req, strlen(req), 431);
    free(v);
    free(req);
}

Test(edge, trailer_fields_count_leading_whitespace, .init = prep, .fini = finish)
{
    start_with(small_limits);
    char *ws = repeat(' ', 64 * 1024);
    char *req = harness_fmt("POST /v1/notes HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                    "Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\nX-T:%sv\r\n\r\n", ws);
    expect_refused("a 64 KiB trailer field (all but one byte leading whitespace) over a 256-byte header block",
                   req, strlen(req), 431);
    free(ws);
    free(req);
}

/* Each limit is met on its own, so all of them met at once must pass too:
 * target 64/64, 20/20 fields, each <= 64, names and values 256/256. */
Test(edge, limits_all_at_their_edges_together_are_accepted, .init = prep, .fini = finish)
{
    start_with((const char *const[]){ "NOTES_MAX_TARGET", "64", "NOTES_MAX_FIELD", "64", "NOTES_MAX_HEADERS_SIZE",
                                      "256", "NOTES_MAX_HEADERS", "20", NULL });
    char *id = repeat('a', 54), *v61 = repeat('v', 61);
    struct rawbuf req = { 0 };
    char *line = harness_fmt("GET /v1/notes/%s HTTP/1.1\r\nHost: localhost\r\n", id);   /* target 64; 13 */
    rawbuf_append(&req, line, strlen(line));
    free(line);
    for (int i = 0; i < 3; i++) {   /* 3 x 64 = 192 */
        line = harness_fmt("X-%c: %s\r\n", 'A' + i, v61);
        rawbuf_append(&req, line, strlen(line));
        free(line);
    }
    for (int i = 0; i < 15; i++) {   /* 15 x 3 = 45 */
        line = harness_fmt("Y%c: z\r\n", 'a' + i);
        rawbuf_append(&req, line, strlen(line));
        free(line);
    }
    rawbuf_append(&req, "Zz: 1234\r\n\r\n", 12);   /* 6: 13 + 192 + 45 + 6 = 256 in 20 fields */
    expect_passes("target, field count, field size and header block all exactly at their limits", req.p, req.len,
                  431);
    rawbuf_free(&req);
    free(id);
    free(v61);
}
