/*
 * validate.c - allow-list validation of every client input.
 *
 * Each function here decides whether one piece of client input is exactly
 * what the API accepts, and says why not in a fixed English phrase; this
 * file has the body and the text fields (JSON bodies, usernames, passwords,
 * titles, contents), validate_head.c the ASCII-only pieces of the request
 * head (path ids, query strings, cursors, the Authorization header). It owns
 * no state: the only data are constant tables and the compiled-in list of
 * common passwords. It must never echo client bytes into an error, never
 * repair input by truncating or dropping characters (the one transformation
 * is the documented canonical form: ASCII lower-case for usernames, NFC for
 * titles), and never keep a copy of a password it did not hand to the
 * caller: scratch copies are wiped.
 *
 * UTF-8 is decoded by one strict decoder (utf8_next) rather than trusting
 * cJSON or utf8proc to have refused overlong forms, surrogates and code
 * points past U+10FFFF; utf8proc is used for what it is for: NFC, general
 * categories and case mapping.
 */
#include "validate.h"
#include "validate_int.h"
#include "err.h"
#include "json.h"

#include <stdlib.h>
#include <string.h>
#include <mbedtls/platform_util.h>
#include <utf8proc.h>

/* The zxcvbn list compiled in by the build: lower-case ASCII, sorted by
 * strcmp() so it can be binary-searched. */
extern const char *const common_passwords[];
extern const size_t common_passwords_count;

/* The fixed phrases. None of them quotes the request. */
#define WHY_USERNAME "must be 3 to 32 characters of a-z, 0-9, _ . -"
#define WHY_PASSWORD_LEN "must be 12 to 128 characters"
#define WHY_COMMON "is too common"
#define WHY_TITLE_LEN "must be 1 to 200 characters"
#define WHY_NOT_ALLOWED "contains characters that are not allowed"
#define WHY_SPACE "must not start or end with a space"
#define WHY_MARK "must not start with a combining mark"
#define WHY_CONTENT_LEN "must be at most 65536 bytes"
#define WHY_CONTROL "contains control characters"
#define WHY_UTF8 "is not valid UTF-8"
#define WHY_OBJECT "must be a JSON object"
#define WHY_UNKNOWN "has an unknown field"
#define WHY_DUPLICATE "has a duplicate field"
#define WHY_STRING "must be a string"
#define WHY_REQUIRED "is required"
#define WHY_TOO_LONG "is too long"
#define WHY_NOMEM "could not be processed"

/* No character's full canonical decomposition is longer than four code
 * points (U+1F82 is alpha + three marks), and an input has no more code
 * points than its NFD, which is the NFD of its NFC. So NFC keeps at least a
 * quarter of the code points, and an input of more than four times the title
 * limit cannot normalise to a valid title: refusing it first bounds the
 * normalisation work by the limit rather than by the input. */
#define TITLE_NFC_SHRINK 4

void validate_add(struct validate_errors *errs, const char *field, const char *why)
{
    if (!errs)
        return;
    /* The same complaint twice (three unknown members, say) tells the client
     * nothing more and would crowd out the other fields' errors. */
    for (size_t i = 0; i < errs->n && i < VALIDATE_MAX_ERRORS; i++)
        if (strcmp(errs->e[i].field, field) == 0 && strcmp(errs->e[i].why, why) == 0)
            return;
    if (errs->n >= VALIDATE_MAX_ERRORS)
        return;
    errs->e[errs->n].field = field;
    errs->e[errs->n].why = why;
    errs->n++;
}

/* Record the error and return ERR_INVALID, so callers can `return validate_fail(...)`. */
int validate_fail(struct validate_errors *errs, const char *field, const char *why)
{
    validate_add(errs, field, why);
    return ERR_INVALID;
}

/* ---- UTF-8 ------------------------------------------------------------------ */

static bool is_cont(uint8_t c)
{
    return (c & 0xC0) == 0x80;
}

/*
 * Decode the code point at s[*i] (n bytes in all) and advance *i. Refuses
 * what RFC 3629 forbids: stray continuation bytes, C0/C1 and F5..FF leads,
 * overlong forms, UTF-16 surrogates, code points past U+10FFFF and truncated
 * sequences. NUL is a valid code point here; callers refuse it as a control.
 */
static bool utf8_next(const uint8_t *s, size_t n, size_t *i, int32_t *cp)
{
    static const int32_t min_for_len[5] = { 0, 0, 0x80, 0x800, 0x10000 };
    uint8_t c = s[*i];
    size_t len = c < 0x80 ? 1 : c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3
                 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
    if (len == 0 || n - *i < len)
        return false;
    int32_t v = len == 1 ? c : c & (0x7F >> len);
    for (size_t k = 1; k < len; k++) {
        if (!is_cont(s[*i + k]))
            return false;
        v = v << 6 | (s[*i + k] & 0x3F);
    }
    if (v < min_for_len[len] || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return false;
    *i += len;
    *cp = v;
    return true;
}

/* C0, DEL and C1: the Cc category. */
static bool is_control(int32_t cp)
{
    return cp < 0x20 || (cp >= 0x7F && cp <= 0x9F);
}

enum scan { SCAN_OK, SCAN_BAD_UTF8, SCAN_CONTROL };

/* Check s as UTF-8 without controls (TAB, LF and CR allowed when
 * `allow_breaks`) and count its code points into *count. A bad sequence
 * wins over a control, whichever comes first, so the answer does not depend
 * on the order of the two problems in the input. */
static enum scan scan_text(const char *s, size_t n, bool allow_breaks, size_t *count)
{
    const uint8_t *p = (const uint8_t *)s;
    bool control = false;
    size_t i = 0, k = 0;
    if (!s)
        n = 0;
    while (i < n) {
        int32_t cp;
        if (!utf8_next(p, n, &i, &cp))
            return SCAN_BAD_UTF8;
        bool allowed_break = allow_breaks && (cp == '\t' || cp == '\n' || cp == '\r');
        control |= is_control(cp) && !allowed_break;
        k++;
    }
    *count = k;
    return control ? SCAN_CONTROL : SCAN_OK;
}

/* Valid UTF-8 with no NUL: what every JSON member name and value must be. */
static bool utf8_text_ok(const char *s, size_t n)
{
    size_t i = 0;
    int32_t cp;
    while (i < n)
        if (!utf8_next((const uint8_t *)s, n, &i, &cp) || cp == 0)
            return false;
    return true;
}

/* Append cp as UTF-8 to out (room for 4 bytes guaranteed by the caller). */
static size_t utf8_put(int32_t cp, char *out)
{
    uint8_t *o = (uint8_t *)out;
    if (cp < 0x80) {
        o[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (uint8_t)(0xC0 | cp >> 6);
        o[1] = (uint8_t)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (uint8_t)(0xE0 | cp >> 12);
        o[1] = (uint8_t)(0x80 | (cp >> 6 & 0x3F));
        o[2] = (uint8_t)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (uint8_t)(0xF0 | cp >> 18);
    o[1] = (uint8_t)(0x80 | (cp >> 12 & 0x3F));
    o[2] = (uint8_t)(0x80 | (cp >> 6 & 0x3F));
    o[3] = (uint8_t)(0x80 | (cp & 0x3F));
    return 4;
}

/* ---- JSON bodies ------------------------------------------------------------ */

/* Fields tracked by a bit each; no body of ours has anywhere near 64. */
#define MAX_BODY_FIELDS 64

struct body_walk {
    struct validate_field *fields;
    size_t n;
    uint64_t seen;
    bool failed;
    struct validate_errors *errs;
};

static size_t find_field(const struct body_walk *w, const char *name, size_t len)
{
    for (size_t i = 0; i < w->n; i++)
        if (strlen(w->fields[i].name) == len && memcmp(w->fields[i].name, name, len) == 0)
            return i;
    return w->n;
}

/* The checks for one field's value; the name is known and seen once. */
static const char *value_problem(const struct validate_field *f, const struct json_member *m)
{
    if (!m->is_string)
        return WHY_STRING;
    if (m->value_len > f->max_bytes)
        return WHY_TOO_LONG;
    if (!utf8_text_ok(m->value, m->value_len))
        return WHY_UTF8;
    return NULL;
}

/* Record a problem with the body and keep walking: one 400 names every bad
 * field. */
static int member_fail(struct body_walk *w, const char *field, const char *why)
{
    w->failed = true;
    validate_add(w->errs, field, why);
    return 0;
}

static int member_cb(void *arg, const struct json_member *m)
{
    struct body_walk *w = arg;
    if (!utf8_text_ok(m->name, m->name_len))
        return member_fail(w, "body", WHY_UTF8);
    size_t i = find_field(w, m->name, m->name_len);
    if (i == w->n)
        return member_fail(w, "body", WHY_UNKNOWN);   /* the name is the client's: not echoed */
    if (w->seen & (UINT64_C(1) << i))
        return member_fail(w, "body", WHY_DUPLICATE);
    w->seen |= UINT64_C(1) << i;
    struct validate_field *f = &w->fields[i];
    const char *why = value_problem(f, m);
    if (why)
        return member_fail(w, f->name, why);
    if (!(f->value = malloc(m->value_len + 1)))
        return ERR_NOMEM;
    memcpy(f->value, m->value, m->value_len);
    f->value[m->value_len] = '\0';
    f->len = m->value_len;
    return 0;
}

int validate_json_object(struct slice body, struct validate_field *fields, size_t n,
                         struct validate_errors *errs)
{
    for (size_t i = 0; i < n; i++) {
        fields[i].value = NULL;
        fields[i].len = 0;
    }
    if (n > MAX_BODY_FIELDS) {
        validate_add(errs, "body", WHY_NOMEM);   /* a caller bug, refused all the same */
        return ERR_INTERNAL;
    }
    struct body_walk w = { fields, n, 0, false, errs };
    int rc = json_object_each(body, member_cb, &w);
    if (rc == ERR_NOMEM) {
        /* Callers decide on errs->n; recording the failure keeps one that
         * ignores the return value from going on with missing fields. */
        validate_add(errs, "body", WHY_NOMEM);
        return ERR_NOMEM;
    }
    if (rc != 0)
        return validate_fail(errs, "body", WHY_OBJECT);
    for (size_t i = 0; i < n; i++) {
        if (fields[i].required && !(w.seen & (UINT64_C(1) << i))) {
            w.failed = true;
            validate_add(errs, fields[i].name, WHY_REQUIRED);
        }
    }
    return w.failed ? ERR_INVALID : 0;
}

void validate_fields_free(struct validate_field *fields, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (fields[i].value) {
            mbedtls_platform_zeroize(fields[i].value, fields[i].len);
            free(fields[i].value);
        }
        fields[i].value = NULL;
        fields[i].len = 0;
    }
}

/* ---- username ---------------------------------------------------------------- */

static bool username_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
}

int validate_username(const char *in, size_t n, char out[VALIDATE_USERNAME_MAX + 1],
                      const char *field, struct validate_errors *errs)
{
    out[0] = '\0';
    if (!in || n < VALIDATE_USERNAME_MIN || n > VALIDATE_USERNAME_MAX)
        return validate_fail(errs, field, WHY_USERNAME);
    for (size_t i = 0; i < n; i++) {
        /* Lower-casing is ASCII only, so a non-ASCII byte stays >= 0x80
         * and is refused below, never folded into a look-alike. */
        char c = in[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        out[i] = c;
        if (!username_char(out[i])) {
            out[0] = '\0';
            return validate_fail(errs, field, WHY_USERNAME);
        }
    }
    out[n] = '\0';
    return 0;
}

/* ---- password ---------------------------------------------------------------- */

static int compare_entry(const void *key, const void *entry)
{
    return strcmp(key, *(const char *const *)entry);
}

/* Whether the lower-cased password is on the list. Lower-casing is Unicode's
 * simple mapping, so "PASSWORD" and "passwor\u212A" (KELVIN SIGN) are caught
 * like "password". The scratch copy is a password too, so it is wiped. */
static bool is_common(const char *pw, size_t n)
{
    char lower[VALIDATE_PASSWORD_MAX * 4 + 1];
    size_t i = 0, len = 0;
    int32_t cp;
    /* The caller checked UTF-8 and at most VALIDATE_PASSWORD_MAX code
     * points, and no code point takes more than four bytes. */
    while (i < n && utf8_next((const uint8_t *)pw, n, &i, &cp))
        len += utf8_put(utf8proc_tolower(cp), lower + len);
    lower[len] = '\0';
    bool found = bsearch(lower, common_passwords, common_passwords_count,
                         sizeof(common_passwords[0]), compare_entry) != NULL;
    mbedtls_platform_zeroize(lower, sizeof(lower));
    return found;
}

int validate_password(const char *pw, size_t n, const char *field, struct validate_errors *errs)
{
    size_t count = 0;
    enum scan s = scan_text(pw, n, false, &count);
    if (s == SCAN_BAD_UTF8)
        return validate_fail(errs, field, WHY_UTF8);
    if (s == SCAN_CONTROL)
        return validate_fail(errs, field, WHY_CONTROL);
    if (count < VALIDATE_PASSWORD_MIN || count > VALIDATE_PASSWORD_MAX)
        return validate_fail(errs, field, WHY_PASSWORD_LEN);
    if (is_common(pw, n))
        return validate_fail(errs, field, WHY_COMMON);
    return 0;
}

/* ---- title ------------------------------------------------------------------- */

/* Letters, marks, numbers, punctuation, symbols and space separators. Not
 * controls, format characters (ZWJ, bidi overrides), surrogates, private
 * use, unassigned code points, or line and paragraph separators. */
static bool title_category_ok(int32_t cp)
{
    utf8proc_category_t c = utf8proc_category(cp);
    return (c >= UTF8PROC_CATEGORY_LU && c <= UTF8PROC_CATEGORY_SO) || c == UTF8PROC_CATEGORY_ZS;
}

static bool is_mark(int32_t cp)
{
    utf8proc_category_t c = utf8proc_category(cp);
    return c >= UTF8PROC_CATEGORY_MN && c <= UTF8PROC_CATEGORY_ME;
}

static bool is_space(int32_t cp)
{
    return utf8proc_category(cp) == UTF8PROC_CATEGORY_ZS;
}

/* What is wrong with an NFC title, or NULL. */
static const char *title_problem(const uint8_t *s, size_t n)
{
    size_t i = 0, count = 0;
    int32_t cp = 0, first = 0;
    bool bad = false;
    while (i < n && utf8_next(s, n, &i, &cp)) {
        if (count++ == 0)
            first = cp;
        bad |= !title_category_ok(cp);
    }
    if (i != n)
        return WHY_UTF8;   /* utf8proc wrote something our decoder refuses */
    if (count < 1 || count > VALIDATE_TITLE_MAX)
        return WHY_TITLE_LEN;
    if (bad)
        return WHY_NOT_ALLOWED;
    if (is_space(first) || is_space(cp))
        return WHY_SPACE;
    /* A leading combining mark has no base of its own and renders on top
     * of whatever the client shows before the title: refused. */
    if (is_mark(first))
        return WHY_MARK;
    return NULL;
}

int validate_title(const char *in, size_t n, struct buf *out, const char *field,
                   struct validate_errors *errs)
{
    size_t count = 0;
    buf_reset(out);
    if (scan_text(in, n, false, &count) == SCAN_BAD_UTF8)
        return validate_fail(errs, field, WHY_UTF8);
    if (count < 1 || count > (size_t)VALIDATE_TITLE_MAX * TITLE_NFC_SHRINK)
        return validate_fail(errs, field, WHY_TITLE_LEN);
    uint8_t *nfc = NULL;
    utf8proc_ssize_t len = utf8proc_map((const uint8_t *)in, (utf8proc_ssize_t)n, &nfc,
                                        (utf8proc_option_t)(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
    if (len < 0) {
        /* Our decoder accepted the input, so this is memory (or a utf8proc
         * disagreement, refused all the same). */
        validate_add(errs, field, len == UTF8PROC_ERROR_NOMEM ? WHY_NOMEM : WHY_UTF8);
        return len == UTF8PROC_ERROR_NOMEM ? ERR_NOMEM : ERR_INVALID;
    }
    const char *why = title_problem(nfc, (size_t)len);
    int rc = why ? validate_fail(errs, field, why) : buf_append(out, nfc, (size_t)len);
    if (rc != 0 && !why)
        validate_add(errs, field, WHY_NOMEM);
    mbedtls_platform_zeroize(nfc, (size_t)len);
    free(nfc);
    return rc;
}

/* ---- content ----------------------------------------------------------------- */

int validate_content(const char *in, size_t n, const char *field, struct validate_errors *errs)
{
    size_t count = 0;
    if (n > VALIDATE_CONTENT_MAX)
        return validate_fail(errs, field, WHY_CONTENT_LEN);
    enum scan s = scan_text(in, n, true, &count);
    if (s == SCAN_BAD_UTF8)
        return validate_fail(errs, field, WHY_UTF8);
    if (s == SCAN_CONTROL)
        return validate_fail(errs, field, WHY_CONTROL);
    return 0;
}

const char *validate_utf8proc_version(void)
{
    return utf8proc_version();
}

const char *validate_unicode_version(void)
{
    return utf8proc_unicode_version();
}

size_t validate_common_password_count(void)
{
    return common_passwords_count;
}
