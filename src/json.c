/*
 * json.c - JSON string escaping and the cJSON-backed body parser.
 *
 * The only file that includes cJSON.h. It owns nothing beyond one call:
 * the parse tree and a NUL-terminated copy of the body are wiped and freed
 * before json_object_each() returns. It must never accept a body that cJSON
 * would silently read differently from a strict RFC 8259 parser, because the
 * validators above trust that what they see is what the client sent.
 */
#include "json.h"
#include "err.h"

#include <stdlib.h>
#include <string.h>
#include <cJSON.h>
#include <mbedtls/platform_util.h>

/* Bytes that go out as they are; runs of them are copied in one append. */
static bool json_plain(unsigned char c)
{
    return c >= 0x20 && c != 0x7f && c != '"' && c != '\\';
}

static int json_escape_byte(struct buf *b, unsigned char c)
{
    static const char hex[] = "0123456789abcdef";
    if (c == '"' || c == '\\') {
        char esc[2] = { '\\', (char)c };
        return buf_append(b, esc, 2);
    }
    /* The controls a note may hold (validate.h) in two bytes each, so an
     * export is at most twice the size of what it holds. */
    if (c == '\n')
        return buf_append(b, "\\n", 2);
    if (c == '\t')
        return buf_append(b, "\\t", 2);
    if (c == '\r')
        return buf_append(b, "\\r", 2);
    char esc[6] = { '\\', 'u', '0', '0', hex[c >> 4], hex[c & 15] };
    return buf_append(b, esc, 6);
}

int json_append_string(struct buf *b, const char *s, size_t n)
{
    int rc = buf_append(b, "\"", 1);
    for (size_t i = 0; i < n && rc == 0;) {
        size_t run = i;
        while (run < n && json_plain((unsigned char)s[run]))
            run++;
        rc = buf_append(b, s + i, run - i);
        if (rc == 0 && run < n)
            rc = json_escape_byte(b, (unsigned char)s[run++]);
        i = run;
    }
    return rc ? rc : buf_append(b, "\"", 1);
}

const char *json_library_version(void)
{
    return cJSON_Version();
}

/* ---- strict lexical pre-check ---------------------------------------------- */

static int hex_value(uint8_t c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Length of the escape at p[0] == '\\', or 0 when it is one we refuse.
 * cJSON turns a \u escape with non-hex digits into code point 0 and "\u0000"
 * into a NUL byte; either would truncate the C string it hands back, so the
 * value we validate would differ from the value the client sent. */
static size_t escape_len(const uint8_t *p, size_t n)
{
    if (n < 2)
        return 0;
    switch (p[1]) {
    case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
        return 2;
    case 'u':
        break;
    default:
        return 0;
    }
    if (n < 6)
        return 0;
    unsigned v = 0;
    for (size_t i = 2; i < 6; i++) {
        int h = hex_value(p[i]);
        if (h < 0)
            return 0;
        v = v << 4 | (unsigned)h;
    }
    return v == 0 ? 0 : 6;
}

/* cJSON treats every byte <= 0x20 (NUL included) as whitespace and copies
 * raw control bytes into strings; RFC 8259 allows neither. Outside strings
 * only printable ASCII and the four whitespace bytes may appear (so no BOM,
 * which cJSON would skip). Backslashes only occur inside strings in valid
 * JSON; one outside a string makes cJSON fail anyway. */
static int lex_check(const uint8_t *p, size_t n)
{
    bool in_string = false;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = p[i];
        if (!in_string) {
            in_string = c == '"';
            if (c >= 0x7f || (c < 0x20 && c != '\t' && c != '\n' && c != '\r'))
                return ERR_INVALID;
        } else if (c == '"') {
            in_string = false;
        } else if (c < 0x20) {
            return ERR_INVALID;
        } else if (c == '\\') {
            size_t len = escape_len(p + i, n - i);
            if (len == 0)
                return ERR_INVALID;
            i += len - 1;
        }
    }
    return 0;
}

/* ---- parse and walk --------------------------------------------------------- */

/* Wipe every decoded string in the tree before cJSON_Delete frees it. */
static void wipe_tree(cJSON *item)
{
    for (; item; item = item->next) {
        if (item->valuestring)
            mbedtls_platform_zeroize(item->valuestring, strlen(item->valuestring));
        if (item->string)
            mbedtls_platform_zeroize(item->string, strlen(item->string));
        wipe_tree(item->child);
    }
}

static int walk(const cJSON *root, json_member_cb cb, void *arg)
{
    if (!cJSON_IsObject(root))
        return ERR_INVALID;
    for (const cJSON *c = root->child; c; c = c->next) {
        bool is_str = cJSON_IsString(c) && c->valuestring;
        struct json_member m = {
            .name = c->string ? c->string : "",
            .name_len = c->string ? strlen(c->string) : 0,
            .value = is_str ? c->valuestring : NULL,
            .value_len = is_str ? strlen(c->valuestring) : 0,
            .is_string = is_str,
        };
        int rc = cb(arg, &m);
        if (rc)
            return rc;
    }
    return 0;
}

int json_object_each(struct slice body, json_member_cb cb, void *arg)
{
    if (body.len == 0 || body.len == SIZE_MAX || !body.p)
        return ERR_INVALID;
    int rc = lex_check(body.p, body.len);
    if (rc)
        return rc;
    /* cJSON's require_null_terminated wants the NUL inside the length it is
     * given, and the body slice has none: parse a terminated copy. */
    char *copy = malloc(body.len + 1);
    if (!copy)
        return ERR_NOMEM;
    memcpy(copy, body.p, body.len);
    copy[body.len] = '\0';
    cJSON *root = cJSON_ParseWithLengthOpts(copy, body.len + 1, NULL, 1);
    rc = root ? walk(root, cb, arg) : ERR_INVALID;
    if (root) {
        wipe_tree(root);
        cJSON_Delete(root);
    }
    mbedtls_platform_zeroize(copy, body.len);
    free(copy);
    return rc;
}
