/*
 * validate_head.c - allow-list validation of what a request carries in its
 * head rather than its body: ids in the path, the query string and its
 * parameters (limit, cursor), and the Authorization header; plus the
 * cursors the list answers hand out.
 *
 * Everything here is ASCII: nothing is percent-decoded or UTF-8-decoded,
 * so no decoder can disagree with what was checked, and utf8proc stays
 * validate.c's alone. It owns no state beyond constant tables. It must
 * never echo client bytes into an error, nor accept a second spelling of
 * one value (a sign or leading zero, '%' or '+' escapes, padding, nonzero
 * unused cursor bits).
 */
#include "validate.h"
#include "validate_int.h"
#include "err.h"

#include <string.h>

/* The fixed phrases of the query and its parameters (validate.c has the
 * others). None of them quotes the request. */
#define WHY_QUERY_MALFORMED "is malformed"
#define WHY_QUERY_UNKNOWN "has an unknown parameter"
#define WHY_REPEATED "must not be repeated"
#define WHY_LIMIT "must be a whole number from 1 to 100"
#define WHY_CURSOR "is not a valid cursor"

/* ---- numbers ----------------------------------------------------------------- */

/* A strict decimal in 1..max: digits only, no sign, no leading zero. */
static int parse_decimal(struct slice s, uint64_t max, uint64_t *out)
{
    if (!s.p || s.len == 0 || s.len > 19 || s.p[0] == '0')
        return ERR_INVALID;
    uint64_t v = 0;
    for (size_t i = 0; i < s.len; i++) {
        if (s.p[i] < '0' || s.p[i] > '9')
            return ERR_INVALID;
        v = v * 10 + (uint64_t)(s.p[i] - '0');   /* 19 digits fit in 64 bits */
    }
    if (v > max)
        return ERR_INVALID;
    *out = v;
    return 0;
}

int validate_id(struct slice s, int64_t *out)
{
    uint64_t v;
    if (parse_decimal(s, INT64_MAX, &v) != 0)
        return ERR_INVALID;
    *out = (int64_t)v;
    return 0;
}

int validate_limit(struct slice s, int *out, struct validate_errors *errs)
{
    uint64_t v;
    if (parse_decimal(s, VALIDATE_LIMIT_MAX, &v) != 0)
        return validate_fail(errs, "limit", WHY_LIMIT);
    *out = (int)v;
    return 0;
}

/* ---- query strings ----------------------------------------------------------- */

/* Printable ASCII without '%' and '+' (nothing we accept needs decoding,
 * so a decoder cannot disagree with us) and without '#'. */
static bool query_bytes_ok(struct slice q)
{
    for (size_t i = 0; i < q.len; i++)
        if (q.p[i] < 0x21 || q.p[i] > 0x7E || q.p[i] == '%' || q.p[i] == '+' || q.p[i] == '#')
            return false;
    return true;
}

/* One "name=value" pair (no '&' inside). */
static int take_pair(struct slice pair, struct validate_param *params, size_t n,
                     struct validate_errors *errs)
{
    const uint8_t *eq = pair.len ? memchr(pair.p, '=', pair.len) : NULL;
    if (!eq)
        return validate_fail(errs, "query", WHY_QUERY_MALFORMED);
    struct slice name = { pair.p, (size_t)(eq - pair.p) };
    struct slice value = { eq + 1, pair.len - name.len - 1 };
    if (memchr(value.p, '=', value.len))
        return validate_fail(errs, "query", WHY_QUERY_MALFORMED);
    for (size_t i = 0; i < n; i++) {
        if (!slice_eq(name, slice_str(params[i].name)))
            continue;
        if (params[i].present)
            return validate_fail(errs, params[i].name, WHY_REPEATED);
        params[i].present = true;
        params[i].value = value;
        return 0;
    }
    return validate_fail(errs, "query", WHY_QUERY_UNKNOWN);
}

int validate_query(struct slice query, struct validate_param *params, size_t n,
                   struct validate_errors *errs)
{
    for (size_t i = 0; i < n; i++) {
        params[i].present = false;
        params[i].value = (struct slice){ NULL, 0 };
    }
    if (query.len == 0)
        return 0;
    if (!query_bytes_ok(query))
        return validate_fail(errs, "query", WHY_QUERY_MALFORMED);
    size_t start = 0;
    while (start <= query.len) {
        const uint8_t *amp = memchr(query.p + start, '&', query.len - start);
        size_t end = amp ? (size_t)(amp - query.p) : query.len;
        int rc = take_pair((struct slice){ query.p + start, end - start }, params, n, errs);
        if (rc)
            return rc;
        start = end + 1;
    }
    return 0;
}

/* ---- cursors ----------------------------------------------------------------- */

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static int b64url_value(uint8_t c)
{
    const char *p = c ? strchr(b64url, c) : NULL;      /* c != 0: never the NUL */
    return p ? (int)(p - b64url) : -1;
}

/* base64url of the 8-byte big-endian id: ten characters carry the top 60
 * bits, the eleventh the last 4 bits followed by two zero bits. */
void validate_cursor_encode(int64_t id, char out[VALIDATE_CURSOR_LEN + 1])
{
    uint64_t v = (uint64_t)id;
    for (size_t i = 0; i < VALIDATE_CURSOR_LEN - 1; i++)
        out[i] = b64url[(v >> (58 - 6 * i)) & 63];
    out[VALIDATE_CURSOR_LEN - 1] = b64url[(v & 15) << 2];
    out[VALIDATE_CURSOR_LEN] = '\0';
}

int validate_cursor(struct slice s, int64_t *out, struct validate_errors *errs)
{
    if (!s.p || s.len != VALIDATE_CURSOR_LEN)
        return validate_fail(errs, "cursor", WHY_CURSOR);
    uint64_t v = 0;
    for (size_t i = 0; i < VALIDATE_CURSOR_LEN; i++) {
        int d = b64url_value(s.p[i]);
        /* Nonzero unused bits would give a second spelling of one id. */
        if (d < 0 || (i == VALIDATE_CURSOR_LEN - 1 && (d & 3)))
            return validate_fail(errs, "cursor", WHY_CURSOR);
        v = i < VALIDATE_CURSOR_LEN - 1 ? v << 6 | (uint64_t)d : v << 4 | (uint64_t)(d >> 2);
    }
    if (v == 0 || v > INT64_MAX)
        return validate_fail(errs, "cursor", WHY_CURSOR);
    *out = (int64_t)v;
    return 0;
}

/* ---- Authorization ----------------------------------------------------------- */

static bool token_char(uint8_t c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '_';
}

int validate_bearer(struct slice header_value, char token[VALIDATE_TOKEN_LEN + 1])
{
    static const char scheme[] = "Bearer ";
    const size_t scheme_len = sizeof(scheme) - 1, prefix_len = sizeof(VALIDATE_TOKEN_PREFIX) - 1;
    token[0] = '\0';
    if (!header_value.p || header_value.len != scheme_len + VALIDATE_TOKEN_LEN ||
        memcmp(header_value.p, scheme, scheme_len) != 0)
        return ERR_INVALID;
    const uint8_t *t = header_value.p + scheme_len;
    if (memcmp(t, VALIDATE_TOKEN_PREFIX, prefix_len) != 0)
        return ERR_INVALID;
    for (size_t i = prefix_len; i < VALIDATE_TOKEN_LEN; i++)
        if (!token_char(t[i]))
            return ERR_INVALID;
    memcpy(token, t, VALIDATE_TOKEN_LEN);
    token[VALIDATE_TOKEN_LEN] = '\0';
    return 0;
}
