/*
 * test_audit.c - audit.c and audit_verify.c: the line encoding, the chain
 * and its MAC, tamper detection, rotation, retention, failure and recovery,
 * privacy of actors and addresses, and `notesd audit verify`.
 *
 * Each test runs in its own process (Criterion forks), with its own audit
 * directory under /tmp. Lines are parsed back with cJSON and the chain is
 * recomputed with mbedTLS's legacy HKDF, HMAC and SHA-256, independently of
 * crypto.c, so a format change fails here instead of orphaning old logs.
 */
#include <criterion/criterion.h>

#include <cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <mbedtls/base64.h>
#include <mbedtls/hkdf.h>
#include <mbedtls/md.h>

#include "audit.h"
#include "audit_int.h"
#include "cli.h"
#include "config.h"
#include "crypto.h"
#include "err.h"

#define MAX_LINES 4096

static char root[64];
static char dir[128];
static char path_buf[256];
static struct config cfg;
static struct crypto *crypto;

static const uint8_t V4[16] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 77 };
static const uint8_t V6[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6 };

/* ---- fixture ------------------------------------------------------------- */

/* Fixed, random-looking key bytes (xorshift): the CLI tests pass these keys
 * through the environment, where config.c refuses a counter. */
static void fill_secret(struct config_secret *s, unsigned seed, size_t len)
{
    uint32_t x = seed * 2654435761u + 0x9e3779b9u;
    for (size_t i = 0; i < len; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        s->bytes[i] = (uint8_t)(x >> 24);
    }
    s->len = len;
}

static struct crypto *make_crypto(unsigned seed)
{
    struct config c = cfg;
    struct crypto *k = NULL;
    char err[CONFIG_ERR_MAX] = "";
    fill_secret(&c.audit_key, seed, 48);
    cr_assert_eq(crypto_new(&k, &c, err, sizeof(err)), 0, "%s", err);
    return k;
}

static void setup(void)
{
    cr_assert_eq(crypto_init(), 0);
    snprintf(root, sizeof(root), "/tmp/notesd-audit-XXXXXX");
    cr_assert_not_null(mkdtemp(root));
    snprintf(dir, sizeof(dir), "%s/audit", root);
    memset(&cfg, 0, sizeof(cfg));
    fill_secret(&cfg.data_key, 1, 32);
    fill_secret(&cfg.token_key, 2, 32);
    fill_secret(&cfg.audit_key, 3, 48);
    cfg.argon2_m_kib = 19456;
    cfg.argon2_t = 2;
    cfg.argon2_p = 1;
    cfg.audit_dir = dir;
    cfg.audit_max_bytes = 10485760;
    cfg.audit_max_files = 10;
    cfg.audit_retention_days = 90;
    cfg.audit_sync = CONFIG_AUDIT_SYNC_BATCH;
    cfg.audit_ip = CONFIG_AUDIT_IP_FULL;
    crypto = make_crypto(3);
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(p);
}

static void teardown(void)
{
    crypto_free(crypto);
    nftw(root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(audit, .init = setup, .fini = teardown);

static const char *in_dir(const char *name)
{
    snprintf(path_buf, sizeof(path_buf), "%s/%s", dir, name);
    return path_buf;
}

static struct audit *open_log(void)
{
    struct audit *a = NULL;
    char err[CONFIG_ERR_MAX] = "";
    int rc = audit_open(&a, &cfg, crypto, err, sizeof(err));
    cr_assert_eq(rc, 0, "audit_open: %s", err);
    return a;
}

static void record(struct audit *a, const char *event, int64_t id)
{
    struct audit_event ev = { .event = event, .actor_id = 7, .role = "user", .request_id = "req-1",
                              .resource_type = "note", .resource_id = id, .result = AUDIT_SUCCESS,
                              .status = 200, .ip = V4 };
    cr_assert_eq(audit_record(a, &ev), 0);
}

static void record_n(struct audit *a, int n)
{
    for (int i = 0; i < n; i++)
        record(a, "note.read", i + 1);
}

/* The whole of a file, NUL-terminated. */
static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "open %s", path);
    char *p = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (cap - n < 4097) {
            cap = cap ? 2 * cap : 8192;
            p = realloc(p, cap);
            cr_assert_not_null(p);
        }
        size_t got = fread(p + n, 1, cap - n - 1, f);
        if (got == 0)
            break;
        n += got;
    }
    fclose(f);
    p[n] = '\0';
    if (len)
        *len = n;
    return p;
}

static void spit(const char *path, const char *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(p, 1, n, f), n);
    cr_assert_eq(fclose(f), 0);
}

struct lines {
    char *text;
    size_t n;
    char *at[MAX_LINES];     /* each NUL-terminated, newline removed */
};

static void read_lines(const char *path, struct lines *l)
{
    size_t len;
    l->text = slurp(path, &len);
    l->n = 0;
    for (char *p = l->text; *p && l->n < MAX_LINES;) {
        char *nl = strchr(p, '\n');
        l->at[l->n++] = p;
        if (!nl)
            break;
        *nl = '\0';
        p = nl + 1;
    }
}

/* Write lines back, each with its newline (the last without when `torn`). */
static void write_lines(const char *path, const struct lines *l, bool torn)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    for (size_t i = 0; i < l->n; i++)
        fprintf(f, "%s%s", l->at[i], torn && i + 1 == l->n ? "" : "\n");
    cr_assert_eq(fclose(f), 0);
}

static int verify(char **report)
{
    size_t n = 0;
    FILE *f = open_memstream(report, &n);
    cr_assert_not_null(f);
    int rc = audit_verify_dir(dir, crypto, NULL, f);
    fclose(f);
    return rc;
}

static void assert_verifies(void)
{
    char *report = NULL;
    int rc = verify(&report);
    cr_assert_eq(rc, 0, "verify failed:\n%s", report);
    cr_assert(strstr(report, "OK: ") != NULL, "%s", report);
    free(report);
}

static void assert_problem(const char *expect)
{
    char *report = NULL;
    int rc = verify(&report);
    cr_assert_eq(rc, ERR_INVALID, "verify passed:\n%s", report);
    cr_assert(strstr(report, expect) != NULL, "expected \"%s\" in:\n%s", expect, report);
    free(report);
}

static cJSON *parse_line(const char *line)
{
    cJSON *j = cJSON_Parse(line);
    cr_assert_not_null(j, "not JSON: %s", line);
    return j;
}

static const char *str_of(const cJSON *j, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static double num_of(const cJSON *j, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    cr_assert(cJSON_IsNumber(v), "no number %s", key);
    return v->valuedouble;
}

static size_t count_rotated(void)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    struct audit_file *f = NULL;
    size_t n = 0;
    cr_assert_eq(audit_list_rotated(fd, &f, &n), 0);
    close(fd);
    free(f);
    return n;
}

static struct audit_file nth_rotated(size_t i)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    struct audit_file *f = NULL, r;
    size_t n = 0;
    cr_assert_eq(audit_list_rotated(fd, &f, &n), 0);
    close(fd);
    cr_assert_lt(i, n);
    r = f[i];
    free(f);
    return r;
}

static size_t count_events(const char *event)
{
    size_t hits = 0;
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    struct audit_file *f = NULL;
    size_t n = 0;
    cr_assert_eq(audit_list_rotated(fd, &f, &n), 0);
    close(fd);
    for (size_t i = 0; i <= n; i++) {
        const char *name = i < n ? f[i].name : AUDIT_CURRENT;
        char want[80], *text = slurp(in_dir(name), NULL);
        snprintf(want, sizeof(want), "\"event\":\"%s\"", event);
        for (char *p = text; (p = strstr(p, want)) != NULL; p++)
            hits++;
        free(text);
    }
    free(f);
    return hits;
}

/* ---- the line encoding --------------------------------------------------- */

static char *escaped(const char *s, size_t n)
{
    static char out[1024];
    struct buf b;
    buf_init(&b, sizeof(out) - 1);
    cr_assert_eq(audit_escape(&b, (const uint8_t *)s, n), 0);
    memcpy(out, b.data, b.len);
    out[b.len] = '\0';
    buf_cleanup(&b);
    return out;
}

Test(audit, escapes_quotes_backslashes_and_controls)
{
    cr_assert_str_eq(escaped("a\"b\\c", 5), "\"a\\\"b\\\\c\"");
    cr_assert_str_eq(escaped("\n\r\t", 3), "\"\\n\\r\\t\"");
    cr_assert_str_eq(escaped("\x01\x1f\x7f", 3), "\"\\u0001\\u001f\\u007f\"");
    cr_assert_str_eq(escaped("plain </x>", 10), "\"plain </x>\"");
}

Test(audit, escapes_unicode_as_ascii_and_replaces_invalid_utf8)
{
    cr_assert_str_eq(escaped("\xc3\xa9", 2), "\"\\u00e9\"");                   /* é */
    cr_assert_str_eq(escaped("\xe2\x82\xac", 3), "\"\\u20ac\"");               /* € */
    cr_assert_str_eq(escaped("\xe2\x80\xa8", 3), "\"\\u2028\"");               /* line separator */
    cr_assert_str_eq(escaped("\xf0\x9f\x98\x80", 4), "\"\\ud83d\\ude00\"");    /* U+1F600 */
    cr_assert_str_eq(escaped("\xc0\xaf", 2), "\"\\ufffd\\ufffd\"");            /* overlong '/' */
    cr_assert_str_eq(escaped("\xe0\x80\xaf", 3), "\"\\ufffd\\ufffd\\ufffd\""); /* overlong, 3 bytes */
    cr_assert_str_eq(escaped("\xf0\x80\x80\xaf", 4), "\"\\ufffd\\ufffd\\ufffd\\ufffd\"");
    cr_assert_str_eq(escaped("\xed\xa0\x80", 3), "\"\\ufffd\\ufffd\\ufffd\""); /* surrogate */
    cr_assert_str_eq(escaped("\xf4\x90\x80\x80", 4), "\"\\ufffd\\ufffd\\ufffd\\ufffd\"");
    cr_assert_str_eq(escaped("\x80x", 2), "\"\\ufffdx\"");                     /* stray */
    cr_assert_str_eq(escaped("\xe2\x82", 2), "\"\\ufffd\\ufffd\"");            /* cut short */
    cr_assert_str_eq(escaped("\xc3\x28", 2), "\"\\ufffd(\"");
    cr_assert_str_eq(escaped("\xff\xfe", 2), "\"\\ufffd\\ufffd\"");
}

Test(audit, hostile_text_stays_one_valid_line)
{
    static const char hostile[] = "x\",\"seq\":999,\"result\":\"success\"}\n{\"forged\":\"\r\x01\\\x7f"
                                  "\xc0\xaf\xed\xa0\x80\xe2\x80\xa8\xf0\x9f\x98\x80";
    struct audit *a = open_log();
    struct audit_event ev = { .event = "input.rejected", .role = "anonymous", .request_id = hostile,
                              .result = AUDIT_DENY, .status = 400, .reason = hostile,
                              .detail = hostile };
    cr_assert_eq(audit_record(a, &ev), 0);
    audit_close(a);

    size_t n;
    char *text = slurp(in_dir(AUDIT_CURRENT), &n);
    cr_assert_gt(n, 0);
    cr_assert_eq(text[n - 1], '\n');
    for (size_t i = 0; i + 1 < n; i++)
        cr_assert(text[i] >= 0x20 && text[i] < 0x7f, "byte %zu is 0x%02x", i, (unsigned char)text[i]);
    text[n - 1] = '\0';
    cJSON *j = parse_line(text);
    cr_assert_eq(num_of(j, "seq"), 1);
    cr_assert_str_eq(str_of(j, "result"), "deny");
    cr_assert_null(cJSON_GetObjectItemCaseSensitive(j, "forged"));
    /* The valid parts come back exactly; invalid bytes as U+FFFD. */
    const char *want = "x\",\"seq\":999,\"result\":\"success\"}\n{\"forged\":\"\r\x01\\\x7f"
                       "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
                       "\xe2\x80\xa8\xf0\x9f\x98\x80";
    cr_assert_str_eq(str_of(j, "reason"), want);
    cr_assert_str_eq(str_of(j, "detail"), want);
    cJSON_Delete(j);
    free(text);
    assert_verifies();
}

Test(audit, long_fields_are_cut_to_a_bounded_size)
{
    char big[1000];
    memset(big, 'A', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    struct audit *a = open_log();
    struct audit_event ev = { .event = "input.rejected", .reason = big, .detail = big };
    cr_assert_eq(audit_record(a, &ev), 0);
    audit_close(a);
    struct lines l;
    read_lines(in_dir(AUDIT_CURRENT), &l);
    cJSON *j = parse_line(l.at[0]);
    cr_assert_eq(strlen(str_of(j, "reason")), AUDIT_FIELD_MAX);
    cr_assert_eq(strlen(str_of(j, "detail")), AUDIT_FIELD_MAX);
    cJSON_Delete(j);
    free(l.text);
}

/* ---- the chain ----------------------------------------------------------- */

static void hex_of(const uint8_t *p, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", p[i]);
}

Test(audit, fields_prev_and_mac_follow_the_documented_format)
{
    struct audit *a = open_log();
    record_n(a, 3);
    audit_close(a);

    /* The chain key, derived here with the legacy API. */
    const mbedtls_md_info_t *md = mbedtls_md_info_from_type(MBEDTLS_MD_SHA256);
    static const char info[] = "notesd audit chain v1";
    uint8_t key[32], mac[32], hash[32];
    cr_assert_eq(mbedtls_hkdf(md, NULL, 0, cfg.audit_key.bytes, cfg.audit_key.len,
                              (const uint8_t *)info, sizeof(info) - 1, key, sizeof(key)), 0);

    struct lines l;
    char want_prev[65], hex[65];
    memset(want_prev, '0', 64);
    want_prev[64] = '\0';
    read_lines(in_dir(AUDIT_CURRENT), &l);
    cr_assert_eq(l.n, 3);
    for (size_t i = 0; i < l.n; i++) {
        cJSON *j = parse_line(l.at[i]);
        const char *ts = str_of(j, "ts");
        cr_assert(ts && strlen(ts) == 24 && ts[10] == 'T' && ts[19] == '.' && ts[23] == 'Z', "ts %s", ts);
        cr_assert_eq(num_of(j, "seq"), (double)(i + 1));
        cr_assert_str_eq(str_of(j, "event"), "note.read");
        cr_assert_str_eq(str_of(j, "role"), "user");
        cr_assert_str_eq(str_of(j, "request_id"), "req-1");
        char res[32];
        snprintf(res, sizeof(res), "note:%zu", i + 1);
        cr_assert_str_eq(str_of(j, "resource"), res);
        cr_assert_str_eq(str_of(j, "result"), "success");
        cr_assert_eq(num_of(j, "status"), 200);
        cr_assert_null(cJSON_GetObjectItemCaseSensitive(j, "reason"));
        cr_assert_str_eq(str_of(j, "prev"), want_prev);
        /* mac = HMAC(chain key, the bytes before ,"mac":) */
        char *m = strstr(l.at[i], ",\"mac\":\"");
        cr_assert_not_null(m);
        cr_assert_eq(mbedtls_md_hmac(md, key, sizeof(key), (const uint8_t *)l.at[i],
                                     (size_t)(m - l.at[i]), mac), 0);
        hex_of(mac, sizeof(mac), hex);
        cr_assert_str_eq(str_of(j, "mac"), hex);
        cr_assert_str_eq(m + 8 + 64, "\"}");
        /* the next prev = SHA-256 of this line without its newline */
        cr_assert_eq(mbedtls_md(md, (const uint8_t *)l.at[i], strlen(l.at[i]), hash), 0);
        hex_of(hash, sizeof(hash), want_prev);
        cJSON_Delete(j);
    }
    free(l.text);
    assert_verifies();
}

Test(audit, chain_mac_key_is_not_the_pseudonym_key)
{
    /* A line's MAC under the raw NOTES_AUDIT_KEY (the pseudonym key) must
     * not be what the line carries. */
    struct audit *a = open_log();
    record_n(a, 1);
    audit_close(a);
    struct lines l;
    read_lines(in_dir(AUDIT_CURRENT), &l);
    const mbedtls_md_info_t *md = mbedtls_md_info_from_type(MBEDTLS_MD_SHA256);
    uint8_t mac[32];
    char hex[65];
    char *m = strstr(l.at[0], ",\"mac\":\"");
    cr_assert_eq(mbedtls_md_hmac(md, cfg.audit_key.bytes, cfg.audit_key.len, (const uint8_t *)l.at[0],
                                 (size_t)(m - l.at[0]), mac), 0);
    hex_of(mac, sizeof(mac), hex);
    cr_assert(strncmp(m + 8, hex, 64) != 0);
    free(l.text);
}

Test(audit, another_key_does_not_verify)
{
    struct audit *a = open_log();
    record_n(a, 2);
    audit_close(a);
    crypto_free(crypto);
    crypto = make_crypto(99);
    assert_problem("audit.log:1: changed");
}

/* ---- privacy ------------------------------------------------------------- */

Test(audit, actor_is_a_pseudonym_never_the_id)
{
    char p42[CRYPTO_PSEUDONYM_LEN + 1], p9[CRYPTO_PSEUDONYM_LEN + 1];
    cr_assert_eq(crypto_pseudonym(crypto, 42, p42), 0);
    cr_assert_eq(crypto_pseudonym(crypto, 9, p9), 0);
    struct audit *a = open_log();
    struct audit_event evs[] = {
        { .event = "user.export", .actor_id = 42, .role = "user", .resource_type = "user", .resource_id = 42 },
        { .event = "auth.login", .role = "anonymous", .result = AUDIT_DENY, .reason = "bad_password" },
        { .event = "user.add", .role = "cli", .resource_type = "user", .resource_id = 9 },
        { .event = "server.start", .role = "system" },
    };
    for (size_t i = 0; i < 4; i++)
        cr_assert_eq(audit_record(a, &evs[i]), 0);
    audit_close(a);
    struct lines l;
    read_lines(in_dir(AUDIT_CURRENT), &l);
    cJSON *j = parse_line(l.at[0]);
    cr_assert_str_eq(str_of(j, "actor"), p42);
    char want[40];
    snprintf(want, sizeof(want), "user:%s", p42);
    cr_assert_str_eq(str_of(j, "resource"), want);
    /* The id is no field's value (a search of the text could match inside
     * the hex of prev or mac by chance). */
    for (const cJSON *f = j->child; f; f = f->next) {
        if (cJSON_IsString(f) && strcmp(f->string, "ts") != 0)   /* a time may read :42 */
            cr_assert(strcmp(f->valuestring, "42") != 0 && !strstr(f->valuestring, ":42"), "%s", l.at[0]);
        else if (cJSON_IsNumber(f) && strcmp(f->string, "seq") != 0)
            cr_assert_neq(f->valuedouble, 42.0, "%s", l.at[0]);
    }
    cJSON_Delete(j);
    j = parse_line(l.at[1]);
    cr_assert_str_eq(str_of(j, "actor"), "anonymous");
    cr_assert_null(cJSON_GetObjectItemCaseSensitive(j, "resource"));
    cJSON_Delete(j);
    j = parse_line(l.at[2]);
    cr_assert_str_eq(str_of(j, "actor"), "cli");
    snprintf(want, sizeof(want), "user:%s", p9);
    cr_assert_str_eq(str_of(j, "resource"), want);
    cJSON_Delete(j);
    j = parse_line(l.at[3]);
    cr_assert_str_eq(str_of(j, "actor"), "system");
    cJSON_Delete(j);
    free(l.text);
    /* Under another audit key the same user has another pseudonym. */
    struct crypto *other = make_crypto(77);
    char q42[CRYPTO_PSEUDONYM_LEN + 1];
    cr_assert_eq(crypto_pseudonym(other, 42, q42), 0);
    cr_assert_str_neq(q42, p42);
    crypto_free(other);
}

/* Record `ev` alone in a fresh handle; the text of field `key` of its line. */
static char *field_written(const struct audit_event *ev, const char *key)
{
    static char got[96];
    struct audit *a = open_log();
    cr_assert_eq(audit_record(a, ev), 0);
    audit_close(a);
    struct lines l;
    read_lines(in_dir(AUDIT_CURRENT), &l);
    cJSON *j = parse_line(l.at[l.n - 1]);
    const char *s = str_of(j, key);
    snprintf(got, sizeof(got), "%s", s ? s : "(none)");
    cJSON_Delete(j);
    free(l.text);
    return got;
}

static char *ip_written(enum config_audit_ip mode, const uint8_t *ip)
{
    cfg.audit_ip = mode;
    struct audit_event ev = { .event = "auth.login", .ip = ip };
    return field_written(&ev, "ip");
}

Test(audit, ip_modes)
{
    cr_assert_str_eq(ip_written(CONFIG_AUDIT_IP_FULL, V4), "192.0.2.77");
    cr_assert_str_eq(ip_written(CONFIG_AUDIT_IP_TRUNCATED, V4), "192.0.2.0/24");
    cr_assert_str_eq(ip_written(CONFIG_AUDIT_IP_NONE, V4), "(none)");
    cr_assert_str_eq(ip_written(CONFIG_AUDIT_IP_FULL, V6), "2001:db8:1:2:3:4:5:6");
    cr_assert_str_eq(ip_written(CONFIG_AUDIT_IP_TRUNCATED, V6), "2001:db8:1::/48");
    cr_assert_str_eq(ip_written(CONFIG_AUDIT_IP_NONE, V6), "(none)");
    cr_assert_str_eq(ip_written(CONFIG_AUDIT_IP_FULL, NULL), "(none)");
    assert_verifies();
}

static char *resource_written(const char *type, int64_t id)
{
    struct audit_event ev = { .event = "note.read", .resource_type = type, .resource_id = id };
    return field_written(&ev, "resource");
}

/* Numbers in the ip and resource fields are written digit by digit (no
 * printf): the extremes must come out as printf would write them. */
Test(audit, numbers_in_addresses_and_resources_are_plain_decimal)
{
    static const uint8_t zero[16] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 0, 0 };
    static const uint8_t ones[16] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 255, 255, 255, 255 };
    static const uint8_t mixed[16] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 100, 9 };
    cr_assert_str_eq(ip_written(CONFIG_AUDIT_IP_FULL, zero), "0.0.0.0");
    cr_assert_str_eq(ip_written(CONFIG_AUDIT_IP_FULL, ones), "255.255.255.255");
    cr_assert_str_eq(ip_written(CONFIG_AUDIT_IP_TRUNCATED, ones), "255.255.255.0/24");
    cr_assert_str_eq(ip_written(CONFIG_AUDIT_IP_FULL, mixed), "10.0.100.9");
    cr_assert_str_eq(resource_written("note", 17), "note:17");
    cr_assert_str_eq(resource_written("note", 0), "note");
    cr_assert_str_eq(resource_written("note", INT64_MAX), "note:9223372036854775807");
    cr_assert_str_eq(resource_written("note", INT64_MIN), "note:-9223372036854775808");
    cr_assert_str_eq(resource_written("note", -1), "note:-1");
    char *long_type = resource_written("abcdefghijklmnopqrstuvwxyz0123456789", 5);
    cr_assert_str_eq(long_type, "abcdefghijklmnopqrstuvwxyz012345:5", "the type is cut at 32 bytes");
    assert_verifies();
}

/* ---- tampering ----------------------------------------------------------- */

static void six_lines(struct lines *l)
{
    struct audit *a = open_log();
    record_n(a, 6);
    audit_close(a);
    assert_verifies();
    read_lines(in_dir(AUDIT_CURRENT), l);
    cr_assert_eq(l->n, 6);
}

Test(audit, verify_pinpoints_an_edited_byte)
{
    struct lines l;
    six_lines(&l);
    char *p = strstr(l.at[2], "note.read");
    p[5] = 'w';                           /* note.read -> note.wead */
    write_lines(in_dir(AUDIT_CURRENT), &l, false);
    assert_problem("audit.log:3: changed");
    free(l.text);
}

Test(audit, verify_pinpoints_an_edited_mac)
{
    struct lines l;
    six_lines(&l);
    char *p = strstr(l.at[4], ",\"mac\":\"") + 8;
    p[0] = p[0] == '0' ? '1' : '0';
    write_lines(in_dir(AUDIT_CURRENT), &l, false);
    assert_problem("audit.log:5: changed");
    free(l.text);
}

Test(audit, verify_pinpoints_a_deleted_line)
{
    struct lines l;
    six_lines(&l);
    memmove(&l.at[2], &l.at[3], 3 * sizeof(l.at[0]));
    l.n = 5;
    write_lines(in_dir(AUDIT_CURRENT), &l, false);
    assert_problem("audit.log:3: missing line(s) before: seq 4 follows 2: 1 line(s) gone");
    free(l.text);
}

Test(audit, verify_pinpoints_a_deleted_first_line)
{
    struct lines l;
    six_lines(&l);
    memmove(&l.at[0], &l.at[1], 5 * sizeof(l.at[0]));
    l.n = 5;
    write_lines(in_dir(AUDIT_CURRENT), &l, false);
    assert_problem("audit.log:1: missing line(s) before");
    free(l.text);
}

Test(audit, verify_pinpoints_swapped_lines)
{
    struct lines l;
    six_lines(&l);
    char *t = l.at[2];
    l.at[2] = l.at[3];
    l.at[3] = t;
    write_lines(in_dir(AUDIT_CURRENT), &l, false);
    assert_problem("audit.log:3: reordered");
    free(l.text);
}

Test(audit, verify_pinpoints_a_line_moved_far)
{
    struct lines l;
    six_lines(&l);
    char *t = l.at[1];
    l.at[1] = l.at[4];
    l.at[4] = t;
    write_lines(in_dir(AUDIT_CURRENT), &l, false);
    assert_problem("audit.log:2: reordered");
    free(l.text);
}

/* A line moved later, past the one after the next: what its place lacks
 * comes later, so it was reordered, not removed. */
Test(audit, verify_tells_a_line_moved_later_from_a_removed_one)
{
    struct lines l;
    six_lines(&l);
    char *t = l.at[1];                          /* seqs 1 3 4 5 2 6 */
    memmove(&l.at[1], &l.at[2], 3 * sizeof(l.at[0]));
    l.at[4] = t;
    write_lines(in_dir(AUDIT_CURRENT), &l, false);
    assert_problem("audit.log:2: reordered: seq 3 where 2 was expected (seq 2 is at audit.log:5)");
    l.n = 4;                                    /* seqs 1 3 4 5: 2 is gone */
    write_lines(in_dir(AUDIT_CURRENT), &l, false);
    assert_problem("audit.log:2: missing line(s) before");
    free(l.text);
}

Test(audit, verify_pinpoints_an_inserted_line)
{
    struct lines l;
    six_lines(&l);
    /* A copy of line 2 claiming seq 3: right shape, no key. */
    static char forged[2048];
    snprintf(forged, sizeof(forged), "%s", l.at[1]);
    char *seq = strstr(forged, "\"seq\":2,");
    seq[6] = '3';
    memmove(&l.at[3], &l.at[2], 4 * sizeof(l.at[0]));
    l.at[2] = forged;
    l.n = 7;
    write_lines(in_dir(AUDIT_CURRENT), &l, false);
    assert_problem("audit.log:3: inserted");
    free(l.text);
}

Test(audit, verify_pinpoints_a_replayed_line)
{
    struct lines l;
    six_lines(&l);
    memmove(&l.at[4], &l.at[3], 3 * sizeof(l.at[0]));   /* line 4 twice */
    l.n = 7;
    write_lines(in_dir(AUDIT_CURRENT), &l, false);
    assert_problem("audit.log:5: reordered");
    free(l.text);
}

Test(audit, verify_pinpoints_a_truncated_last_line)
{
    struct lines l;
    six_lines(&l);
    l.at[5][strlen(l.at[5]) - 30] = '\0';
    write_lines(in_dir(AUDIT_CURRENT), &l, true);
    assert_problem("audit.log:6: torn last line");
    free(l.text);
}

Test(audit, a_torn_tail_is_explained_on_reopen_and_the_chain_goes_on)
{
    struct lines l;
    six_lines(&l);
    l.at[5][strlen(l.at[5]) - 30] = '\0';
    write_lines(in_dir(AUDIT_CURRENT), &l, true);
    free(l.text);
    struct audit *a = open_log();
    record_n(a, 1);
    audit_close(a);
    char *report = NULL;
    cr_assert_eq(verify(&report), 0, "%s", report);
    cr_assert(strstr(report, "note: audit.log:6: torn line from an interrupted write (explained at "
                             "audit.log:7)") != NULL, "%s", report);
    free(report);
    read_lines(in_dir(AUDIT_CURRENT), &l);
    cr_assert_eq(l.n, 8);
    cJSON *j = parse_line(l.at[6]);
    cr_assert_str_eq(str_of(j, "event"), AUDIT_EV_TORN);
    cr_assert_eq(num_of(j, "seq"), 6);         /* the torn line's seq, reused */
    cJSON_Delete(j);
    free(l.text);
}

/* A crash leaves a prefix of a line. Bytes appended after the last line
 * that form a whole record, MAC field and all, are not a crash's: a forged
 * record must not pass as "a torn line, explained" (log tooling would read
 * it as a real event). Only a whole line that really is signed may be the
 * one a crash cut just before its newline. */
Test(audit, a_forged_whole_record_is_not_explained_as_a_torn_line)
{
    struct lines l;
    six_lines(&l);
    free(l.text);
    FILE *f = fopen(in_dir(AUDIT_CURRENT), "ab");
    cr_assert_not_null(f);
    fprintf(f, "{\"ts\":\"2026-01-01T00:00:00.000Z\",\"seq\":7,\"event\":\"user.set_role\",\"actor\":\"anonymous\","
               "\"role\":\"system\",\"result\":\"success\",\"prev\":\"%064d\",\"mac\":\"%064d\"}", 0, 0);
    cr_assert_eq(fclose(f), 0);
    struct audit *a = open_log();
    record_n(a, 1);
    audit_close(a);
    assert_problem("audit.log:7: inserted");
}

/* Bytes appended after the last line, and a writer that records them as a
 * torn tail (at open): the audit.torn_tail record names their length and
 * hash whatever they are, so verify must judge them itself. */
static void appended_then_recorded(const char *bytes, size_t n)
{
    struct lines l;
    six_lines(&l);
    free(l.text);
    FILE *f = fopen(in_dir(AUDIT_CURRENT), "ab");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(bytes, 1, n, f), n);
    cr_assert_eq(fclose(f), 0);
    struct audit *a = open_log();
    record_n(a, 1);
    audit_close(a);
}

/* A copy of an earlier signed line, appended without its newline while the
 * writer runs, is signed: but not with the seq and prev of the record that
 * takes its place, as a line a crash cut always is. Log tools would read it
 * as a second genuine event. */
Test(audit, a_replayed_line_without_its_newline_is_not_explained_as_torn)
{
    struct lines l;
    six_lines(&l);
    struct audit *a = open_log();
    record_n(a, 1);                            /* seq 7 */
    FILE *f = fopen(in_dir(AUDIT_CURRENT), "ab");
    cr_assert_not_null(f);
    fputs(l.at[2], f);                         /* seq 3 again, no newline */
    cr_assert_eq(fclose(f), 0);
    free(l.text);
    record_n(a, 1);                            /* the writer notices the size */
    audit_close(a);
    read_lines(in_dir(AUDIT_CURRENT), &l);
    cr_assert_eq(l.n, 10);
    cJSON *j = parse_line(l.at[8]);
    cr_assert_str_eq(str_of(j, "event"), AUDIT_EV_TORN);
    cJSON_Delete(j);
    free(l.text);
    assert_problem("audit.log:8: reordered: seq 3 where 8 was expected");
}

/* A complete JSON object is no crash's prefix, even when it does not end
 * like a record (here a field after the MAC). */
Test(audit, a_complete_object_is_not_explained_as_torn)
{
    static char forged[1024];
    int n = snprintf(forged, sizeof(forged),
                     "{\"ts\":\"2026-01-01T00:00:00.000Z\",\"seq\":7,\"event\":\"user.set_role\","
                     "\"actor\":\"anonymous\",\"role\":\"system\",\"result\":\"success\",\"prev\":\"%064d\","
                     "\"mac\":\"%064d\",\"x\":1}", 0, 0);
    appended_then_recorded(forged, (size_t)n);
    assert_problem("audit.log:7: inserted");
}

/* The writer escapes every byte it writes to printable ASCII: raw control
 * bytes (a terminal's escape sequences) were never part of a line. */
Test(audit, raw_control_bytes_are_not_explained_as_torn)
{
    static const char forged[] = "{\"ts\":\"2026-01-01T00:00:00.000Z\",\"seq\":7,\"event\":\"\x1b[2J\x1b[1;1Huser.set_role";
    appended_then_recorded(forged, sizeof(forged) - 1);
    assert_problem("audit.log:7: inserted");
}

/* A torn line holding another seq than the record that replaced it, or not
 * beginning as every line does, was not cut by a crash. */
Test(audit, a_prefix_with_another_seq_or_start_is_not_explained_as_torn)
{
    static const char other_seq[] = "{\"ts\":\"2026-01-01T00:00:00.000Z\",\"seq\":3,\"event\":\"note.delete\"";
    appended_then_recorded(other_seq, sizeof(other_seq) - 1);
    assert_problem("audit.log:7: inserted");
    teardown();
    setup();
    static const char other_start[] = "note.delete by admin";
    appended_then_recorded(other_start, sizeof(other_start) - 1);
    assert_problem("audit.log:7: inserted");
}

/* What a crash does leave is still explained: a prefix cut inside its seq,
 * a prefix followed by the NULs power loss leaves, NULs alone, and a whole
 * signed line cut just before its newline. */
Test(audit, what_a_crash_leaves_is_still_explained)
{
    static const char in_seq[] = "{\"ts\":\"2026-01-01T00:00:00.000Z\",\"se";
    static const char *const cuts[] = { "{\"ts\":\"2026-01-01T00:00:00.000Z\",\"seq\":7", in_seq, "{\"t", "" };
    for (size_t i = 0; i < 4; i++) {
        char bytes[128] = { 0 };
        size_t n = strlen(cuts[i]);
        memcpy(bytes, cuts[i], n);
        appended_then_recorded(bytes, i == 2 || i == 3 ? n + 40 : n);   /* + NULs */
        char *report = NULL;
        cr_assert_eq(verify(&report), 0, "cut %zu:\n%s", i, report);
        cr_assert(strstr(report, "note: audit.log:7: torn line") != NULL, "%s", report);
        free(report);
        teardown();
        setup();
    }
    struct lines l;
    six_lines(&l);
    write_lines(in_dir(AUDIT_CURRENT), &l, true);
    free(l.text);
    struct audit *a = open_log();
    record_n(a, 1);
    audit_close(a);
    char *report = NULL;
    cr_assert_eq(verify(&report), 0, "%s", report);
    cr_assert(strstr(report, "note: audit.log:6: torn line") != NULL, "%s", report);
    free(report);
}

/* A crash can cut the record that explains a torn line too: it is one
 * write, the newline ending the torn line and then the record. What that
 * leaves (the torn line ended, and none or part of the record) must open,
 * be explained by the next writer's record, and verify. */
Test(audit, a_crash_while_a_torn_line_is_explained_is_explained_too)
{
    static const char cut[] = "{\"ts\":\"2026-01-01T00:00:00.000Z\",\"seq\":7,\"event\":\"user.se";
    /* Bytes of the record that reached the disk; SIZE_MAX: all but its newline. */
    static const size_t kept[] = { 0, 1, 100, SIZE_MAX };
    for (size_t i = 0; i < sizeof(kept) / sizeof(kept[0]); i++) {
        appended_then_recorded(cut, sizeof(cut) - 1);
        size_t n = 0;
        char *text = slurp(in_dir(AUDIT_CURRENT), &n);
        char *torn = strstr(text, cut);
        cr_assert_not_null(torn);
        char *record = torn + sizeof(cut) - 1 + 1;
        size_t keep = (size_t)(record - text) + (kept[i] == SIZE_MAX ? strcspn(record, "\n") : kept[i]);
        cr_assert_lt(keep, n);
        spit(in_dir(AUDIT_CURRENT), text, keep);
        free(text);
        struct audit *a = open_log();
        record_n(a, 1);
        audit_close(a);
        char *report = NULL;
        cr_assert_eq(verify(&report), 0, "%zu bytes of the record kept:\n%s", kept[i], report);
        cr_assert(strstr(report, "note: audit.log:7: torn line") != NULL, "%s", report);
        free(report);
        teardown();
        setup();
    }
}

/* Lines a crash left all carry the seq of the record that replaces them:
 * the start of a line with another seq after a torn line is not explained
 * with it, though the writer records them together. */
Test(audit, a_cut_line_with_another_seq_after_a_torn_line_is_not_explained)
{
    static const char bytes[] = "{\"ts\":\"2026-01-01T00:00:00.000Z\",\"seq\":7,\"event\":\"user.se\n"
                                "{\"ts\":\"2026-01-01T00:00:00.000Z\",\"seq\":3,\"event\":\"user.delete\"\n";
    appended_then_recorded(bytes, sizeof(bytes) - 1);
    assert_problem("audit.log:7: changed");
}

/* Only what a crash can leave is explained that way: a whole line of
 * something else after a torn line still is not. */
Test(audit, a_line_after_a_torn_line_that_no_crash_left_is_not_explained)
{
    static const char bytes[] = "{\"ts\":\"2026-01-01T00:00:00.000Z\",\"seq\":7,\"event\":\"user.se\n"
                                "note.delete by admin\n";
    struct lines l;
    six_lines(&l);
    free(l.text);
    FILE *f = fopen(in_dir(AUDIT_CURRENT), "ab");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(bytes, 1, sizeof(bytes) - 1, f), sizeof(bytes) - 1);
    cr_assert_eq(fclose(f), 0);
    struct audit *a = NULL;
    char err[CONFIG_ERR_MAX] = "";
    cr_assert_eq(audit_open(&a, &cfg, crypto, err, sizeof(err)), ERR_IO);
    cr_assert(strstr(err, "not an audit record") != NULL, "%s", err);
    assert_problem("audit.log:7: changed");
}

Test(audit, verify_survives_hostile_files)
{
    struct lines l;
    six_lines(&l);
    free(l.text);
    /* A line far longer than the walk's buffer, NULs, random bytes, in a
     * rotated file that sorts first and in audit.log itself. */
    size_t n = 200000;
    char *junk = malloc(n);
    cr_assert_not_null(junk);
    srand(7);
    for (size_t i = 0; i < n; i++)
        junk[i] = (char)(i % 50000 == 49999 ? '\n' : rand());
    memset(junk + 1000, 'x', 100000);
    spit(in_dir("audit-20000101T000000Z-00000000000000000000.log"), junk, n);
    assert_problem("audit-20000101T000000Z-00000000000000000000.log:");
    cr_assert_eq(unlink(in_dir("audit-20000101T000000Z-00000000000000000000.log")), 0);
    char *text = slurp(in_dir(AUDIT_CURRENT), &n);
    char *mixed = malloc(n + 150000);
    memcpy(mixed, text, n);
    memset(mixed + n, '{', 150000);
    spit(in_dir(AUDIT_CURRENT), mixed, n + 100);
    assert_problem("audit.log:7: torn last line");
    spit(in_dir(AUDIT_CURRENT), mixed, n + 150000);       /* no writer's line is this long */
    assert_problem("audit.log:7: changed");
    mixed[n + 149999] = '\n';
    spit(in_dir(AUDIT_CURRENT), mixed, n + 150000);
    assert_problem("audit.log:7: changed");
    free(mixed);
    free(text);
    free(junk);
}

Test(audit, an_empty_directory_does_not_verify)
{
    cr_assert_eq(mkdir(dir, 0700), 0);
    assert_problem("no audit record");
}

Test(audit, refuses_a_log_that_ends_in_something_else)
{
    cr_assert_eq(mkdir(dir, 0700), 0);
    spit(in_dir(AUDIT_CURRENT), "not an audit line\n", 18);
    struct audit *a = NULL;
    char err[CONFIG_ERR_MAX] = "";
    cr_assert_eq(audit_open(&a, &cfg, crypto, err, sizeof(err)), ERR_IO);
    cr_assert_null(a);
    cr_assert(strstr(err, "not an audit record") != NULL, "%s", err);
}

/* ---- rotation and retention ---------------------------------------------- */

/* 60 lines at a 4 KiB cap, written one by one or queued (`hold`, as the
 * server does for a loop turn): files within the cap, private, each new one
 * naming its predecessor, one chain. */
static void rotate_sixty(bool hold)
{
    cfg.audit_max_bytes = 4096;
    cfg.audit_max_files = 100;
    struct audit *a = open_log();
    audit_hold(a, hold);
    record_n(a, 60);
    audit_close(a);
    size_t n = count_rotated();
    cr_assert_geq(n, 3);
    for (size_t i = 0; i < n; i++) {
        struct stat st;
        cr_assert_eq(stat(in_dir(nth_rotated(i).name), &st), 0);
        cr_assert_leq(st.st_size, 4096);
        cr_assert_eq(st.st_mode & 0777, 0600);
    }
    struct lines l;
    read_lines(in_dir(AUDIT_CURRENT), &l);
    cJSON *j = parse_line(l.at[0]);
    cr_assert_str_eq(str_of(j, "event"), AUDIT_EV_ROTATE);
    cr_assert_str_eq(str_of(j, "file"), nth_rotated(n - 1).name);
    cJSON_Delete(j);
    free(l.text);
    cr_assert_eq(count_events(AUDIT_EV_ROTATE), n);
    cr_assert_eq(count_events("note.read"), 60);
    assert_verifies();
}

Test(audit, rotation_keeps_the_chain_across_files)
{
    rotate_sixty(false);
}

Test(audit, a_removed_middle_file_is_found)
{
    cfg.audit_max_bytes = 4096;
    cfg.audit_max_files = 100;
    struct audit *a = open_log();
    record_n(a, 60);
    audit_close(a);
    cr_assert_geq(count_rotated(), 3);
    char gone[AUDIT_NAME_MAX + 1], next[AUDIT_NAME_MAX + 8];
    snprintf(gone, sizeof(gone), "%s", nth_rotated(1).name);
    snprintf(next, sizeof(next), "%s:1:", nth_rotated(2).name);
    cr_assert_eq(unlink(in_dir(gone)), 0);
    assert_problem(next);
    assert_problem("missing line(s) before");
}

Test(audit, a_renamed_file_is_found)
{
    cfg.audit_max_bytes = 4096;
    cfg.audit_max_files = 100;
    struct audit *a = open_log();
    record_n(a, 60);
    audit_close(a);
    cr_assert_geq(count_rotated(), 3);
    /* Same seq, so the same place in the order, and every line intact: only
     * the rotation record of the next file still names the old file. */
    struct audit_file f = nth_rotated(1);
    char from[sizeof(path_buf)], to[AUDIT_NAME_MAX + 1], want[AUDIT_NAME_MAX + 8];
    snprintf(from, sizeof(from), "%s", in_dir(f.name));
    snprintf(to, sizeof(to), "%s", f.name);
    memcpy(to + 6, "1999", 4);
    cr_assert_eq(rename(from, in_dir(to)), 0);
    snprintf(want, sizeof(want), "%s:1:", nth_rotated(2).name);
    assert_problem(want);
    assert_problem("does not begin by naming audit-1999");
}

Test(audit, max_files_prunes_the_oldest_and_records_it)
{
    cfg.audit_max_bytes = 4096;
    cfg.audit_max_files = 3;
    struct audit *a = open_log();
    record_n(a, 100);
    audit_close(a);
    cr_assert_eq(count_rotated(), 2);
    cr_assert_geq(count_events(AUDIT_EV_PRUNE), 1);
    char *report = NULL;
    cr_assert_eq(verify(&report), 0, "%s", report);
    cr_assert(strstr(report, "head pruned by retention (record at ") != NULL, "%s", report);
    free(report);
    /* Deleting the oldest kept file by hand is not a prune. */
    cr_assert_eq(unlink(in_dir(nth_rotated(0).name)), 0);
    assert_problem("missing line(s) before: the log starts at seq");
}

/* A trail of 4 KiB files, at most `max_files` of them, after `lines` lines:
 * the files retention pruned wait for a sync (NOTES_AUDIT_SYNC=batch). */
static struct audit *pruning_log(unsigned max_files, int lines)
{
    cfg.audit_max_bytes = 4096;
    cfg.audit_max_files = max_files;
    struct audit *a = open_log();
    record_n(a, lines);
    return a;
}

/* The files the audit.retention_prune records name, and how many of them
 * are still in the folder. */
static size_t pruned_still_there(size_t *named)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    struct audit_file *f = NULL;
    size_t n = 0, there = 0;
    static char seen[64][AUDIT_NAME_MAX + 1];
    cr_assert_eq(audit_list_rotated(fd, &f, &n), 0);
    close(fd);
    *named = 0;
    for (size_t k = 0; k <= n; k++) {
        struct lines l;
        char name[AUDIT_NAME_MAX + 1];
        snprintf(name, sizeof(name), "%s", k < n ? f[k].name : AUDIT_CURRENT);
        read_lines(in_dir(name), &l);
        for (size_t i = 0; i < l.n; i++) {
            cJSON *j = parse_line(l.at[i]);
            if (strcmp(str_of(j, "event"), AUDIT_EV_PRUNE) == 0) {
                struct stat st;
                const char *file = str_of(j, "file");
                for (size_t s = 0; s < *named && s < 64; s++)
                    cr_assert_str_neq(seen[s], file, "two prune records name %s", file);
                if (*named < 64)
                    snprintf(seen[*named], sizeof(seen[0]), "%s", file);
                (*named)++;
                there += stat(in_dir(file), &st) == 0;
            }
            cJSON_Delete(j);
        }
        free(l.text);
    }
    free(f);
    return there;
}

/* A crash must never leave a file deleted whose prune record is lost: the
 * record is written on the loop, but the deletion waits for the sync that
 * puts the record on disk (on the thread pool). */
Test(audit, a_pruned_file_goes_only_once_a_sync_has_its_record)
{
    struct audit *a = pruning_log(2, 40);   /* four files: the oldest two go */
    size_t named = 0;
    size_t there = pruned_still_there(&named);
    cr_assert_geq(named, 1, "no prune record");
    cr_assert_eq(there, named, "%zu of %zu pruned files were deleted before a sync", named - there, named);
    cr_assert_eq(audit_sync(a), 0);
    cr_assert_eq(pruned_still_there(&named), 0, "a sync covered the records, the files stayed");
    audit_close(a);
    assert_verifies();
}

/* Retention running while a sync (and the deletions it carries) is still
 * on the thread pool must not prune those files a second time. */
Test(audit, a_file_waiting_for_a_running_sync_is_pruned_once)
{
    struct audit *a = pruning_log(3, 40);   /* prunes: their files wait for a sync */
    struct audit_sync s;
    cr_assert(audit_sync_begin(a, &s));
    record_n(a, 15);                      /* a rotation, and retention, meanwhile */
    audit_sync_run(&s);
    audit_sync_end(a, &s);
    audit_close(a);
    size_t named = 0;
    cr_assert_eq(pruned_still_there(&named), 0);   /* asserts each is named once */
    cr_assert_geq(named, 2);
    assert_verifies();
}

/* A failed sync may have lost the records it carried (Linux reports a lost
 * write-back once: a later fsync of the same file succeeds). So it deletes
 * nothing, and the files it carried go back to retention, which records
 * them again before a later sync deletes them. */
Test(audit, a_failed_sync_deletes_nothing_and_retention_records_again)
{
    struct audit *a = pruning_log(2, 40);
    size_t named = 0, there = pruned_still_there(&named);
    cr_assert_geq(named, 1);
    struct audit_sync s;
    cr_assert(audit_sync_begin(a, &s));
    s.rc = ERR_IO;                        /* as an fsync that failed */
    audit_sync_run(&s);
    audit_sync_end(a, &s);
    cr_assert_eq(pruned_still_there(&named), there, "a failed sync deleted files");
    size_t records = count_events(AUDIT_EV_PRUNE);
    cr_assert_eq(audit_enforce_retention(a, time(NULL)), 0);
    cr_assert_gt(count_events(AUDIT_EV_PRUNE), records, "retention did not record the files again");
    cr_assert_eq(audit_sync(a), 0);
    audit_close(a);
    cr_assert_eq(count_rotated(), 1, "%zu rotated files left, max_files 2", count_rotated());
}

/* A pruned file the sync cannot delete (here a folder put in its place)
 * goes back to retention's hourly judgement: it does not make every later
 * sync try again. */
Test(audit, a_file_the_sync_cannot_delete_is_not_retried_by_every_sync)
{
    struct audit *a = pruning_log(2, 40);   /* prunes waiting for a sync */
    struct audit_file first = nth_rotated(0);   /* the oldest: pruned on record */
    size_t named = 0, there = pruned_still_there(&named);
    cr_assert_eq(there, named);
    cr_assert_geq(named, 1);
    /* A folder in its place: unlinkat(..., 0) fails (EISDIR). */
    char path[256];
    snprintf(path, sizeof(path), "%s", in_dir(first.name));
    cr_assert_eq(unlink(path), 0);
    cr_assert_eq(mkdir(path, 0700), 0);
    cr_assert_eq(audit_sync(a), 0);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    struct audit_sync s;
    cr_assert(!audit_sync_begin(a, &s), "a sync was wanted with nothing written since the last one");
    cr_assert_eq(rmdir(path), 0);
    audit_close(a);
}

/* At most AUDIT_DOOMED_MAX pruned files wait for one sync; retention
 * holds off past that and catches up once a sync has deleted them. */
Test(audit, at_most_sixteen_pruned_files_wait_for_a_sync)
{
    struct audit *a = pruning_log(2, 300);     /* ~25 files, no sync */
    size_t named = 0, there = pruned_still_there(&named);
    cr_assert_eq(there, named);
    cr_assert_eq(there, AUDIT_DOOMED_MAX, "%zu pruned files wait for one sync", there);
    cr_assert_gt(count_rotated(), AUDIT_DOOMED_MAX + 1, "retention did not hold off");
    cr_assert_eq(audit_sync(a), 0);
    cr_assert_eq(audit_enforce_retention(a, time(NULL)), 0);
    cr_assert_eq(audit_sync(a), 0);
    cr_assert_eq(count_rotated(), 1, "%zu rotated files left, max_files 2", count_rotated());
    audit_close(a);
    assert_verifies();
}

Test(audit, without_sync_a_pruned_file_goes_at_once)
{
    cfg.audit_sync = CONFIG_AUDIT_SYNC_OFF;
    struct audit *a = pruning_log(2, 40);
    size_t named = 0;
    cr_assert_eq(pruned_still_there(&named), 0);
    cr_assert_geq(named, 1, "no prune record");
    audit_close(a);
    assert_verifies();
}

Test(audit, max_files_one_keeps_only_the_current_file)
{
    cfg.audit_max_bytes = 4096;
    cfg.audit_max_files = 1;
    struct audit *a = open_log();
    record_n(a, 40);
    audit_close(a);
    cr_assert_eq(count_rotated(), 0);
    char *report = NULL;
    cr_assert_eq(verify(&report), 0, "%s", report);
    cr_assert(strstr(report, "head pruned by retention") != NULL, "%s", report);
    free(report);
}

static void backdate(const char *name, int days)
{
    struct timespec t[2] = { { time(NULL) - days * 86400, 0 }, { time(NULL) - days * 86400, 0 } };
    cr_assert_eq(utimensat(AT_FDCWD, in_dir(name), t, 0), 0);
}

Test(audit, retention_deletes_old_files_and_records_each)
{
    cfg.audit_max_bytes = 4096;
    cfg.audit_max_files = 100;
    struct audit *a = open_log();
    record_n(a, 60);
    size_t n = count_rotated();
    cr_assert_geq(n, 3);
    struct audit_file f0 = nth_rotated(0), f1 = nth_rotated(1);
    backdate(f0.name, 91);
    backdate(f1.name, 120);
    cr_assert_eq(audit_enforce_retention(a, time(NULL)), 0);
    audit_close(a);
    cr_assert_eq(count_rotated(), n - 2);
    cr_assert_eq(access(in_dir(f0.name), F_OK), -1);
    cr_assert_eq(access(in_dir(f1.name), F_OK), -1);
    cr_assert_eq(count_events(AUDIT_EV_PRUNE), 2);
    /* The record names the file, its seqs and the hash of its last line. */
    struct lines l;
    read_lines(in_dir(AUDIT_CURRENT), &l);
    cJSON *j = parse_line(l.at[l.n - 1]);
    cr_assert_str_eq(str_of(j, "event"), AUDIT_EV_PRUNE);
    cr_assert_str_eq(str_of(j, "file"), f1.name);
    cr_assert_str_eq(str_of(j, "reason"), "retention");
    cr_assert_eq(num_of(j, "last_seq"), (double)f1.seq);
    cr_assert_gt(num_of(j, "first_seq"), 1);
    cr_assert_eq(strlen(str_of(j, "last_hash")), 64);
    cJSON_Delete(j);
    free(l.text);
    char *report = NULL;
    cr_assert_eq(verify(&report), 0, "%s", report);
    cr_assert(strstr(report, "head pruned by retention") != NULL, "%s", report);
    free(report);
}

Test(audit, retention_keeps_a_young_file_and_everything_after_it)
{
    cfg.audit_max_bytes = 4096;
    cfg.audit_max_files = 100;
    struct audit *a = open_log();
    record_n(a, 60);
    size_t n = count_rotated();
    backdate(nth_rotated(1).name, 200);   /* old, but a younger file precedes it */
    cr_assert_eq(audit_enforce_retention(a, time(NULL)), 0);
    cr_assert_eq(count_rotated(), n);
    /* Ninety days later, by `now`, both go. */
    cr_assert_eq(audit_enforce_retention(a, time(NULL) + 91 * 86400), 0);
    audit_close(a);
    cr_assert_eq(count_rotated(), 0);
    assert_verifies();
}

/* `lines` records at a 4 KiB cap with at most `max_files` files, the
 * writer closed; how many rotated files there are. */
static size_t rotated_trail(unsigned max_files, int lines)
{
    cfg.audit_max_bytes = 4096;
    cfg.audit_max_files = max_files;
    struct audit *a = open_log();
    record_n(a, lines);
    audit_close(a);
    return count_rotated();
}

/* Someone who can write the audit folder must not be able to make the
 * trail delete its own files on a signed record. Files planted under a
 * rotated file's name (empty, or anything whose last line this trail did
 * not sign with that seq) do not count toward max_files, and are never
 * pruned: `audit verify` reports them. */
Test(audit, planted_files_do_not_push_real_ones_out)
{
    size_t real = rotated_trail(5, 40);
    cr_assert_geq(real, 2);
    cr_assert_leq(real, 4);
    size_t prunes = count_events(AUDIT_EV_PRUNE);
    for (int i = 0; i < 6; i++) {
        char name[AUDIT_NAME_MAX + 1];
        snprintf(name, sizeof(name), "audit-20990101T000000Z-%020d.log", 900000 + i);
        int fd = open(in_dir(name), O_WRONLY | O_CREAT | O_EXCL, 0600);
        cr_assert_geq(fd, 0);
        close(fd);
    }
    struct audit *a = open_log();         /* retention runs at open */
    audit_close(a);
    cr_assert_eq(count_events(AUDIT_EV_PRUNE), prunes, "a real file was pruned to make room for planted ones");
    cr_assert_eq(count_rotated(), real + 6);
}

/* A file edited and then backdated must not be deleted by retention on a
 * signed record (which would turn the evidence into a clean prune): a file
 * due by age goes only if every line of it still verifies. */
Test(audit, an_edited_file_is_kept_for_verify_even_when_due)
{
    cfg.audit_max_bytes = 4096;
    cfg.audit_max_files = 100;
    struct audit *a = open_log();
    record_n(a, 60);
    cr_assert_geq(count_rotated(), 3);
    struct audit_file f0 = nth_rotated(0);
    struct lines l;
    read_lines(in_dir(f0.name), &l);
    char *p = strstr(l.at[3], "note.read");
    cr_assert_not_null(p);
    p[5] = 'w';
    write_lines(in_dir(f0.name), &l, false);
    free(l.text);
    backdate(f0.name, 120);
    cr_assert_eq(audit_enforce_retention(a, time(NULL)), 0);
    audit_close(a);
    cr_assert_eq(access(in_dir(f0.name), F_OK), 0, "the edited file was deleted by retention");
    cr_assert_eq(count_events(AUDIT_EV_PRUNE), 0);
    char want[AUDIT_NAME_MAX + 32];
    snprintf(want, sizeof(want), "%s:4: changed", f0.name);
    assert_problem(want);
}

/* Serving, the whole-file check of a file due by age runs in parts on the
 * thread pool (audit_check_*, as server_chores.c drives it): retention
 * prunes nothing before the verdict, then acts on it. */
static void run_check(struct audit *a)
{
    struct audit_check *c = audit_check_begin(a);
    cr_assert_not_null(c, "retention wants no check");
    cr_assert_null(audit_check_begin(a), "a second check while one is in flight");
    do
        audit_check_read(c);
    while (audit_check_next(c));
    cr_assert(audit_check_end(a, c, false), "the check kept no verdict");
}

Test(audit, a_deferred_check_lets_a_due_file_go_once_it_verifies)
{
    cfg.audit_max_bytes = 4096;
    cfg.audit_max_files = 100;
    struct audit *a = open_log();
    record_n(a, 60);
    size_t n = count_rotated();
    audit_defer_checks(a);
    struct audit_file f0 = nth_rotated(0);
    backdate(f0.name, 120);
    backdate(nth_rotated(1).name, 120);
    cr_assert_eq(audit_enforce_retention(a, time(NULL)), 0);
    cr_assert_eq(count_events(AUDIT_EV_PRUNE), 0, "a file went before its check");
    run_check(a);
    cr_assert_eq(audit_enforce_retention(a, time(NULL)), 0);
    cr_assert_eq(audit_sync(a), 0);          /* which deletes what was pruned */
    cr_assert_eq(count_rotated(), n - 1);
    cr_assert_eq(access(in_dir(f0.name), F_OK), -1);
    /* The next one waits for its own check: one file per verdict. */
    run_check(a);
    cr_assert_eq(audit_enforce_retention(a, time(NULL)), 0);
    cr_assert_eq(audit_sync(a), 0);
    cr_assert_eq(count_rotated(), n - 2);
    cr_assert_null(audit_check_begin(a), "a check wanted with nothing due");
    /* A cancelled check keeps no verdict and is wanted again. */
    backdate(nth_rotated(0).name, 120);
    cr_assert_eq(audit_enforce_retention(a, time(NULL)), 0);
    struct audit_check *c = audit_check_begin(a);
    cr_assert_not_null(c);
    cr_assert_not(audit_check_end(a, c, true));
    cr_assert_eq(audit_enforce_retention(a, time(NULL)), 0);
    cr_assert_eq(count_rotated(), n - 2);
    run_check(a);
    cr_assert_eq(audit_enforce_retention(a, time(NULL)), 0);
    cr_assert_eq(audit_sync(a), 0);
    cr_assert_eq(count_rotated(), n - 3);
    audit_close(a);
    cr_assert_eq(count_events(AUDIT_EV_PRUNE), 3);
    assert_verifies();
}

/* A verdict holds for the file as it was checked. One byte changed after a
 * good check, with the same size and its mtime put back (only the ctime
 * tells), and the file is checked again before it may go: it stays. */
Test(audit, a_file_changed_after_a_good_check_is_checked_again_and_kept)
{
    cfg.audit_max_bytes = 4096;
    cfg.audit_max_files = 100;
    struct audit *a = open_log();
    record_n(a, 60);
    cr_assert_geq(count_rotated(), 3);
    audit_defer_checks(a);
    struct audit_file f0 = nth_rotated(0);
    backdate(f0.name, 120);
    cr_assert_eq(audit_enforce_retention(a, time(NULL)), 0);
    run_check(a);                            /* intact */

    struct stat was, now;
    cr_assert_eq(stat(in_dir(f0.name), &was), 0);
    /* Until the kernel's (coarse) clock is past the file's ctime, so the
     * change cannot carry the same one: a few milliseconds at most. */
    struct timespec t;
    do
        cr_assert_eq(clock_gettime(CLOCK_REALTIME_COARSE, &t), 0);
    while (t.tv_sec < was.st_ctim.tv_sec || (t.tv_sec == was.st_ctim.tv_sec && t.tv_nsec <= was.st_ctim.tv_nsec));
    struct lines l;
    read_lines(in_dir(f0.name), &l);
    char *p = strstr(l.at[3], "note.read");
    cr_assert_not_null(p);
    p[5] = 'w';
    write_lines(in_dir(f0.name), &l, false);
    free(l.text);
    struct timespec times[2] = { was.st_atim, was.st_mtim };
    cr_assert_eq(utimensat(AT_FDCWD, in_dir(f0.name), times, 0), 0);
    cr_assert_eq(stat(in_dir(f0.name), &now), 0);
    cr_assert(now.st_size == was.st_size && now.st_ino == was.st_ino &&
              now.st_mtim.tv_sec == was.st_mtim.tv_sec && now.st_mtim.tv_nsec == was.st_mtim.tv_nsec);

    cr_assert_eq(audit_enforce_retention(a, time(NULL)), 0);
    cr_assert_eq(count_events(AUDIT_EV_PRUNE), 0, "pruned on the verdict about the file before its change");
    run_check(a);                            /* checked again: changed */
    cr_assert_eq(audit_enforce_retention(a, time(NULL)), 0);
    cr_assert_null(audit_check_begin(a), "the unchanged file is checked again");
    audit_close(a);
    cr_assert_eq(access(in_dir(f0.name), F_OK), 0, "the changed file was deleted by retention");
    cr_assert_eq(count_events(AUDIT_EV_PRUNE), 0);
    char want[AUDIT_NAME_MAX + 32];
    snprintf(want, sizeof(want), "%s:4: changed", f0.name);
    assert_problem(want);
}

Test(audit, retention_runs_at_open)
{
    cfg.audit_max_bytes = 4096;
    cfg.audit_max_files = 100;
    struct audit *a = open_log();
    record_n(a, 40);
    audit_close(a);
    size_t n = count_rotated();
    backdate(nth_rotated(0).name, 100);
    a = open_log();
    audit_close(a);
    cr_assert_eq(count_rotated(), n - 1);
    assert_verifies();
}

/* The end of the chain has no successor to give it away: a rotated file
 * cut at its end (with audit.log removed, nothing chains to it) must still
 * be found, by the seq its name promises; and a missing audit.log is a
 * finding, not a note. */
Test(audit, lines_cut_from_the_newest_file_are_found)
{
    size_t n = rotated_trail(100, 60);
    cr_assert_geq(n, 2);
    cr_assert_eq(unlink(in_dir(AUDIT_CURRENT)), 0);
    assert_problem("there is no audit.log");
    struct audit_file last = nth_rotated(n - 1);
    struct lines l;
    read_lines(in_dir(last.name), &l);
    cr_assert_geq(l.n, 4);
    l.n -= 3;
    write_lines(in_dir(last.name), &l, false);
    free(l.text);
    char want[AUDIT_NAME_MAX + 64];
    snprintf(want, sizeof(want), "%s:%zu: missing line(s) after", last.name, (size_t)0);
    want[strlen(last.name)] = '\0';
    assert_problem(want);
    assert_problem("missing line(s) after");
}

/* With the newest rotated files removed, audit.log cut to nothing names no
 * file before it, so the check that each file begins by naming the one
 * before it never runs: as with a missing audit.log, lines after the last
 * rotated file may be gone. */
Test(audit, an_emptied_audit_log_after_rotated_files_is_found)
{
    size_t n = rotated_trail(100, 60);
    cr_assert_geq(n, 3);
    cr_assert_eq(unlink(in_dir(nth_rotated(n - 1).name)), 0);
    cr_assert_eq(truncate(in_dir(AUDIT_CURRENT), 0), 0);
    char want[80];
    snprintf(want, sizeof(want), "audit.log holds no record: lines after seq %llu may be gone",
             (unsigned long long)nth_rotated(n - 2).seq);
    assert_problem(want);
}

static size_t count_in(const char *text, const char *needle);

static size_t prunes_in_current(void)
{
    char *text = slurp(in_dir(AUDIT_CURRENT), NULL);
    size_t hits = count_in(text, "\"event\":\"" AUDIT_EV_PRUNE "\"");
    free(text);
    return hits;
}

/* Copies and hard links of a real rotated file under other rotated-file
 * names (another time, the same seq) end in a line this trail signed with
 * the seq of their name. They must not count toward max_files, which would
 * push real files out on genuine prune records, nor be pruned themselves:
 * verify reports them. */
Test(audit, copies_of_a_real_file_do_not_push_real_ones_out)
{
    size_t real = rotated_trail(5, 40);
    cr_assert_geq(real, 2);
    cr_assert_leq(real, 4);
    size_t prunes = prunes_in_current();
    struct audit_file f[4];
    for (size_t i = 0; i < real; i++)
        f[i] = nth_rotated(i);
    for (size_t i = 0; i < real; i++) {
        for (int k = 0; k < 3; k++) {
            char from[512], to[512];
            snprintf(from, sizeof(from), "%s/%s", dir, f[i].name);
            snprintf(to, sizeof(to), "%s/audit-2000010%dT000000Z-%020llu.log", dir, k + 1,
                     (unsigned long long)f[i].seq);
            if (k == 0) {
                cr_assert_eq(link(from, to), 0, "%s", strerror(errno));
            } else {
                size_t len;
                char *copy = slurp(from, &len);
                spit(to, copy, len);
                cr_assert_eq(chmod(to, 0600), 0);
                free(copy);
            }
        }
    }
    struct audit *a = open_log();          /* retention runs at open */
    audit_close(a);
    cr_assert_eq(prunes_in_current(), prunes, "a file was pruned to make room for copies");
    cr_assert_eq(count_rotated(), 4 * real);
    for (size_t i = 0; i < real; i++)
        cr_assert_eq(access(in_dir(f[i].name), F_OK), 0, "%s is gone", f[i].name);
    char *report = NULL;
    cr_assert_eq(verify(&report), ERR_INVALID, "%s", report);
    cr_assert(strstr(report, "the same seq") != NULL, "%s", report);
    free(report);
}

/* ---- anchors: the newest lines, checked against a copy kept elsewhere ---- */

/* The anchor the OK line offers ("anchor SEQ:SHA256"), copied out. */
static void anchor_of_report(char out[128])
{
    char *report = NULL;
    cr_assert_eq(verify(&report), 0, "%s", report);
    const char *p = strstr(report, "anchor ");
    cr_assert_not_null(p, "no anchor in:\n%s", report);
    cr_assert_eq(sscanf(p + 7, "%127s", out), 1);
    free(report);
}

static int verify_anchored(const char *anchor, char **report)
{
    struct audit_anchor an;
    cr_assert_eq(audit_anchor_parse(anchor, &an), 0, "%s", anchor);
    size_t n = 0;
    FILE *f = open_memstream(report, &n);
    cr_assert_not_null(f);
    int rc = audit_verify_dir(dir, crypto, &an, f);
    fclose(f);
    return rc;
}

/* Cutting whole lines off the end of audit.log leaves a shorter chain that
 * verifies on its own; an anchor taken earlier (the OK line's, shipped off
 * the machine) finds the cut. */
Test(audit, an_anchor_finds_lines_cut_from_the_end)
{
    struct lines l;
    six_lines(&l);
    char anchor[128], *report = NULL;
    anchor_of_report(anchor);
    cr_assert(strncmp(anchor, "6:", 2) == 0, "%s", anchor);
    cr_assert_eq(strlen(anchor), 2 + 64);
    cr_assert_eq(verify_anchored(anchor, &report), 0, "%s", report);
    cr_assert(strstr(report, "OK: ") && strstr(report, "anchor seq 6 found"), "%s", report);
    free(report);

    l.n -= 2;                                  /* seq 5 and 6 go */
    write_lines(in_dir(AUDIT_CURRENT), &l, false);
    assert_verifies();                         /* alone, nothing shows it */
    cr_assert_eq(verify_anchored(anchor, &report), ERR_INVALID, "%s", report);
    cr_assert(strstr(report, "missing line(s) after: the anchor names seq 6, the log ends at seq 4"), "%s",
              report);
    free(report);
    free(l.text);
}

/* An anchor shipped off the machine must name a line on disk: one only
 * written could be lost in a crash, and the anchor would then make the
 * crash look like a cut. */
Test(audit, the_anchor_of_a_running_trail_is_its_newest_synced_line)
{
    struct audit *a = open_log();
    struct audit_anchor an;
    record_n(a, 3);
    cr_assert(!audit_anchor_now(a, &an) || an.seq == 0, "an anchor before any sync: seq %llu",
              (unsigned long long)an.seq);
    cr_assert_eq(audit_sync(a), 0);
    cr_assert(audit_anchor_now(a, &an));
    cr_assert_eq(an.seq, 3);
    record_n(a, 2);                            /* written, not synced */
    cr_assert(audit_anchor_now(a, &an));
    cr_assert_eq(an.seq, 3, "the anchor moved to seq %llu before a sync", (unsigned long long)an.seq);
    cr_assert_eq(audit_sync(a), 0);
    cr_assert(audit_anchor_now(a, &an));
    cr_assert_eq(an.seq, 5);
    audit_close(a);
    char text[80], *report = NULL;
    snprintf(text, sizeof(text), "5:");
    for (size_t i = 0; i < sizeof(an.hash); i++)
        snprintf(text + 2 + 2 * i, 3, "%02x", an.hash[i]);
    cr_assert_eq(verify_anchored(text, &report), 0, "%s", report);
    free(report);
}

Test(audit, an_anchor_with_another_hash_is_a_change)
{
    struct lines l;
    six_lines(&l);
    char anchor[128], *report = NULL;
    anchor_of_report(anchor);
    anchor[2] = anchor[2] == '0' ? '1' : '0';
    cr_assert_eq(verify_anchored(anchor, &report), ERR_INVALID, "%s", report);
    cr_assert(strstr(report, "audit.log:6: changed: the line of seq 6 is not the anchored one"), "%s", report);
    free(report);
    free(l.text);
}

/* After retention, an anchor older than the kept log is checked where the
 * trail still says what that line was: the first kept line's prev, and
 * each prune record's last_seq/last_hash; deeper ones are noted. */
static void expect_anchor(unsigned long long seq, const char *hex, bool flip, int want, const char *say)
{
    char text[128], *report = NULL;
    snprintf(text, sizeof(text), "%llu:%s", seq, hex);
    if (flip)
        text[strlen(text) - 1] = text[strlen(text) - 1] == '0' ? '1' : '0';
    cr_assert_eq(verify_anchored(text, &report), want, "%s:\n%s", text, report);
    cr_assert(strstr(report, say), "%s: expected \"%s\" in:\n%s", text, say, report);
    free(report);
}

Test(audit, an_anchor_before_the_kept_log_is_checked_where_the_trail_still_names_it)
{
    struct audit *a = pruning_log(2, 40);
    cr_assert_eq(audit_sync(a), 0);
    audit_close(a);
    struct lines l;
    read_lines(in_dir(nth_rotated(0).name), &l);
    cJSON *first = parse_line(l.at[0]);
    unsigned long long head = (unsigned long long)num_of(first, "seq");
    cr_assert_gt(head, 2, "nothing was pruned");
    char prev[65];
    snprintf(prev, sizeof(prev), "%s", str_of(first, "prev"));
    cJSON_Delete(first);
    free(l.text);
    expect_anchor(head - 1, prev, false, 0, "checked");
    expect_anchor(head - 1, prev, true, ERR_INVALID, "changed");
    /* A prune record names the last line of the file it removed. */
    cJSON *rec = NULL;
    for (size_t k = 0, n = count_rotated(); k <= n && !rec; k++) {
        char name[AUDIT_NAME_MAX + 1];
        snprintf(name, sizeof(name), "%s", k < n ? nth_rotated(k).name : AUDIT_CURRENT);
        read_lines(in_dir(name), &l);
        for (size_t i = 0; i < l.n && !rec; i++) {
            cJSON *j = parse_line(l.at[i]);
            if (strcmp(str_of(j, "event"), AUDIT_EV_PRUNE) == 0 &&
                (unsigned long long)num_of(j, "last_seq") + 1 < head)
                rec = j;
            else
                cJSON_Delete(j);
        }
        free(l.text);
    }
    cr_assert_not_null(rec, "no prune record of a file before the one the head follows");
    {
        unsigned long long last = (unsigned long long)num_of(rec, "last_seq");
        char hash[65];
        snprintf(hash, sizeof(hash), "%s", str_of(rec, "last_hash"));
        cJSON_Delete(rec);
        expect_anchor(last, hash, false, 0, "checked");
        expect_anchor(last, hash, true, ERR_INVALID, "changed");
    }
    char zeros[65];
    memset(zeros, '0', 64);
    zeros[64] = '\0';
    expect_anchor(1, zeros, false, 0, "not checked");
}

Test(audit, anchors_are_parsed_strictly)
{
    struct audit_anchor an;
    char ok[80];
    snprintf(ok, sizeof(ok), "12:%064d", 7);
    cr_assert_eq(audit_anchor_parse(ok, &an), 0);
    cr_assert_eq(an.seq, 12);
    const char *bad[] = { "", "12", "12:", ":00", "x:00", "12:abc", "-1:00",
                          "0:0000000000000000000000000000000000000000000000000000000000000000", "12:0000000000000000000000000000000000000000000000000000000000000000x",
                          "99999999999999999999999:0000000000000000000000000000000000000000000000000000000000000000",
                          "12:000000000000000000000000000000000000000000000000000000000000000G" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_eq(audit_anchor_parse(bad[i], &an), ERR_INVALID, "accepted \"%s\"", bad[i]);
}

Test(audit, a_crash_between_rename_and_create_is_continued)
{
    struct audit *a = open_log();
    record_n(a, 5);
    audit_close(a);
    /* As if rotation died right after the rename. */
    char from[sizeof(path_buf)];
    snprintf(from, sizeof(from), "%s", in_dir(AUDIT_CURRENT));
    cr_assert_eq(rename(from, in_dir("audit-20240101T000000Z-00000000000000000005.log")), 0);
    cr_assert_eq(access(from, F_OK), -1);
    a = open_log();
    record_n(a, 2);
    audit_close(a);
    struct lines l;
    read_lines(in_dir(AUDIT_CURRENT), &l);
    cJSON *j = parse_line(l.at[0]);
    cr_assert_str_eq(str_of(j, "event"), AUDIT_EV_ROTATE);
    cr_assert_eq(num_of(j, "seq"), 6);
    cJSON_Delete(j);
    free(l.text);
    assert_verifies();
}

/* ---- several writers ----------------------------------------------------- */

Test(audit, two_writers_share_one_chain)
{
    cfg.audit_max_bytes = 4096;
    cfg.audit_max_files = 100;
    struct audit *a = open_log(), *b = open_log();
    for (int i = 0; i < 40; i++)
        record(i % 3 ? a : b, "note.read", i);
    audit_close(a);
    audit_close(b);
    cr_assert_geq(count_rotated(), 2);
    cr_assert_eq(count_events("note.read"), 40);
    assert_verifies();
}

Test(audit, removing_audit_log_under_a_writer_leaves_a_visible_gap)
{
    cfg.audit_max_bytes = 4096;
    cfg.audit_max_files = 100;
    struct audit *a = open_log();
    record_n(a, 30);
    cr_assert_geq(count_rotated(), 1);
    cr_assert_eq(unlink(in_dir(AUDIT_CURRENT)), 0);
    record_n(a, 1);
    audit_close(a);
    assert_problem("audit.log:1: missing line(s) before");
}

/* ---- lines queued while the lock is held (the server's loop) ------------- */

static off_t size_of(const char *name)
{
    struct stat st;
    cr_assert_eq(stat(in_dir(name), &st), 0);
    return st.st_size;
}

Test(audit, held_lines_wait_for_one_flush_and_keep_the_chain)
{
    struct audit *a = open_log();
    record_n(a, 1);
    off_t before = size_of(AUDIT_CURRENT);
    audit_hold(a, true);
    record_n(a, 3);
    cr_assert_eq(size_of(AUDIT_CURRENT), before, "queued lines reached the file early");
    cr_assert_eq(audit_seq(a), 4);
    cr_assert_eq(audit_written_seq(a), 1);
    cr_assert_eq(audit_flush(a), 0);
    cr_assert_gt(size_of(AUDIT_CURRENT), before);
    cr_assert_eq(audit_written_seq(a), 4);
    cr_assert_eq(audit_flush(a), 0, "nothing queued: nothing to do");
    record_n(a, 2);
    audit_release(a);              /* what is queued goes before the lock */
    cr_assert_eq(audit_written_seq(a), 6);
    audit_close(a);
    cr_assert_eq(count_events("note.read"), 6);
    assert_verifies();
}

/* The queue of one loop turn is bounded: past AUDIT_BATCH_BYTES the queued
 * lines are written before the next one joins them, so a turn that answers
 * many requests never holds more than that in memory. */
Test(audit, the_queue_is_written_before_it_passes_its_bound)
{
    struct audit *a = open_log();
    audit_hold(a, true);
    off_t before = size_of(AUDIT_CURRENT);
    uint64_t lines = 0;
    while (size_of(AUDIT_CURRENT) == before) {
        record(a, "note.read", (int64_t)lines + 1);
        lines++;
        cr_assert_lt(lines, 10000, "nothing was written while queueing");
        cr_assert_leq((audit_seq(a) - audit_written_seq(a)) * 200, (uint64_t)AUDIT_BATCH_BYTES,
                      "more queued than the bound allows");
    }
    off_t written = size_of(AUDIT_CURRENT) - before;
    cr_assert_leq(written, (off_t)AUDIT_BATCH_BYTES);
    cr_assert_gt(written, (off_t)AUDIT_BATCH_BYTES / 2, "written long before the bound (%lld bytes)",
                 (long long)written);
    cr_assert_lt(audit_written_seq(a), audit_seq(a), "the line that did not fit waits in the queue");
    audit_close(a);
    cr_assert_eq(count_events("note.read"), lines);
    assert_verifies();
}

Test(audit, a_sync_covers_only_lines_in_the_file)
{
    struct audit *a = open_log();
    struct audit_sync s;
    audit_hold(a, true);
    record_n(a, 2);
    cr_assert_eq(audit_flush(a), 0);
    record_n(a, 1);                /* queued, not written */
    cr_assert(audit_sync_begin(a, &s));
    audit_sync_run(&s);
    audit_sync_end(a, &s);
    cr_assert_eq(audit_synced_seq(a), 2);
    audit_close(a);
    assert_verifies();
}

/* Another process (the CLI) appends between two of the server's batches:
 * the lock is given back only with nothing queued, so the chain holds. */
Test(audit, a_second_writer_between_batches_continues_the_chain)
{
    struct audit *a = open_log(), *b = open_log();
    audit_hold(a, true);
    for (int round = 0; round < 3; round++) {
        record_n(a, 2);
        audit_release(a);
        record(b, "user.add", round);
    }
    audit_close(a);
    audit_close(b);
    cr_assert_eq(count_events("note.read"), 6);
    cr_assert_eq(count_events("user.add"), 3);
    assert_verifies();
}

Test(audit, queued_lines_rotate_into_the_file_they_were_meant_for)
{
    rotate_sixty(true);
}

/* ---- failure and recovery ------------------------------------------------ */

static int capture_stderr(char *path, size_t n)
{
    snprintf(path, n, "%s/stderr", root);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    cr_assert_geq(fd, 0);
    int saved = dup(2);
    cr_assert_eq(dup2(fd, 2), 2);
    close(fd);
    return saved;
}

/* A file-size limit `above` bytes past audit.log's size: the next write is
 * cut short by the kernel (a short write), later ones refused (EFBIG). */
static struct rlimit cap_file_size(off_t above)
{
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit old, lim;
    cr_assert_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
    lim = old;
    lim.rlim_cur = (rlim_t)(size_of(AUDIT_CURRENT) + above);
    cr_assert_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
    return old;
}

static size_t count_in(const char *text, const char *needle);

/* audit.log has `n` lines and line `at` is the audit.recovered record that
 * counts `lost` events; the line after it is `next`. */
static void expect_recovery_line(size_t n, size_t at, double lost, const char *next)
{
    struct lines l;
    read_lines(in_dir(AUDIT_CURRENT), &l);
    cr_assert_eq(l.n, n);
    cJSON *j = parse_line(l.at[at]);
    cr_assert_str_eq(str_of(j, "event"), AUDIT_EV_RECOVERED);
    cr_assert_eq(num_of(j, "count"), lost);
    cr_assert_eq(num_of(j, "seq"), (double)at + 1, "the recovery takes the first seq not written");
    cJSON_Delete(j);
    j = parse_line(l.at[at + 1]);
    cr_assert_str_eq(str_of(j, "event"), next);
    cJSON_Delete(j);
    free(l.text);
}

/* Give stderr back (see capture_stderr) and check what it said: the outage
 * reported once, the recovery once, no key name. */
static void expect_one_outage(int saved, const char *err_path)
{
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    char *log = slurp(err_path, NULL);
    cr_assert_eq(count_in(log, "cannot record events"), 1, "%s", log);
    cr_assert_eq(count_in(log, "can be written again"), 1, "%s", log);
    cr_assert(strstr(log, "NOTES_AUDIT_KEY") == NULL);
    free(log);
}

static size_t count_in(const char *text, const char *needle)
{
    size_t hits = 0;
    for (const char *p = text; (p = strstr(p, needle)) != NULL; p++)
        hits++;
    return hits;
}

Test(audit, a_failed_write_turns_unhealthy_and_recovers)
{
    struct audit *a = open_log();
    record_n(a, 3);
    struct stat st;
    cr_assert_eq(stat(in_dir(AUDIT_CURRENT), &st), 0);
    off_t before = st.st_size;

    char err_path[128];
    int saved = capture_stderr(err_path, sizeof(err_path));
    struct rlimit old = cap_file_size(50);
    struct audit_event ev = { .event = "note.create", .actor_id = 7, .role = "user" };
    cr_assert_eq(audit_record(a, &ev), ERR_IO);
    cr_assert_not(audit_healthy(a));
    cr_assert_eq(audit_record(a, &ev), ERR_IO);
    cr_assert_not(audit_healthy(a));
    cr_assert_eq(stat(in_dir(AUDIT_CURRENT), &st), 0);
    cr_assert_eq(st.st_size, before, "a failed line left bytes behind");

    cr_assert_eq(setrlimit(RLIMIT_FSIZE, &old), 0);
    cr_assert_eq(audit_record(a, &ev), 0);
    cr_assert(audit_healthy(a));
    audit_close(a);
    expect_one_outage(saved, err_path);
    expect_recovery_line(5, 3, 2, "note.create");
    assert_verifies();
}

/* A batch that cannot be written leaves nothing behind, takes the chain head
 * back, and counts each of its events in the audit.recovered record. */
Test(audit, a_failed_batch_is_dropped_whole_and_counted)
{
    struct audit *a = open_log();
    record_n(a, 2);
    off_t before = size_of(AUDIT_CURRENT);
    char err_path[128];
    int saved = capture_stderr(err_path, sizeof(err_path));
    struct rlimit old = cap_file_size(50);
    audit_hold(a, true);
    record_n(a, 3);
    cr_assert(audit_healthy(a), "nothing was written yet");
    cr_assert_eq(audit_flush(a), ERR_IO);
    cr_assert_not(audit_healthy(a));
    cr_assert_eq(size_of(AUDIT_CURRENT), before, "a failed batch left bytes behind");
    cr_assert_eq(audit_seq(a), 2);
    cr_assert_eq(audit_written_seq(a), 2);
    audit_release(a);
    cr_assert_eq(setrlimit(RLIMIT_FSIZE, &old), 0);
    record(a, "note.create", 9);
    audit_release(a);
    cr_assert(audit_healthy(a));
    audit_close(a);
    expect_one_outage(saved, err_path);
    expect_recovery_line(4, 2, 3, "note.create");
    assert_verifies();
}

/* After a failed batch the lock is given back at once, so the next line
 * (of any process) starts from what is really in the file. A second handle
 * is another open file description: it would wait for the first's flock. */
Test(audit, a_failed_flush_gives_the_lock_back, .timeout = 20)
{
    struct audit *a = open_log(), *b = open_log();
    record_n(a, 1);
    char err_path[128];
    int saved = capture_stderr(err_path, sizeof(err_path));
    struct rlimit old = cap_file_size(50);
    audit_hold(a, true);
    record_n(a, 2);
    cr_assert_eq(audit_flush(a), ERR_IO);
    cr_assert_eq(setrlimit(RLIMIT_FSIZE, &old), 0);
    record(b, "user.add", 1);      /* blocks for good if a kept the lock */
    audit_close(b);
    record(a, "note.read", 3);     /* and a recovers after b's line */
    audit_close(a);
    expect_one_outage(saved, err_path);
    assert_verifies();
}

Test(audit, a_write_to_a_full_disk_fails)
{
    struct audit *a = open_log();
    record_n(a, 1);
    audit_close(a);
    /* /dev/full in place of the log: every write is ENOSPC. It is not a
     * regular file, so audit_open refuses it outright. */
    cr_assert_eq(unlink(in_dir(AUDIT_CURRENT)), 0);
    cr_assert_eq(symlink("/dev/full", in_dir(AUDIT_CURRENT)), 0);
    char err[CONFIG_ERR_MAX] = "";
    cr_assert_neq(audit_open(&a, &cfg, crypto, err, sizeof(err)), 0);
    cr_assert_null(a);
}

Test(audit, a_bad_event_is_refused_without_turning_unhealthy)
{
    struct audit *a = open_log();
    struct audit_event ev = { .event = NULL };
    cr_assert_eq(audit_record(a, &ev), ERR_INVALID);
    cr_assert(audit_healthy(a));
    cr_assert_eq(audit_record(NULL, &ev), 0);
    cr_assert(audit_healthy(NULL));
    audit_close(a);
}

/* ---- files and syncing --------------------------------------------------- */

Test(audit, creates_private_files_and_tightens_loose_ones)
{
    struct audit *a = open_log();
    record_n(a, 1);
    audit_close(a);
    struct stat st;
    cr_assert_eq(stat(dir, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0700);
    cr_assert_eq(stat(in_dir(AUDIT_CURRENT), &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0600);
    cr_assert_eq(chmod(dir, 0755), 0);
    cr_assert_eq(chmod(in_dir(AUDIT_CURRENT), 0644), 0);
    a = open_log();
    audit_close(a);
    cr_assert_eq(stat(dir, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0700);
    cr_assert_eq(stat(in_dir(AUDIT_CURRENT), &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0600);
}

Test(audit, batch_sync_covers_what_was_written)
{
    struct audit *a = open_log();
    struct audit_sync s;
    record_n(a, 2);
    cr_assert_eq(audit_seq(a), 2);
    cr_assert_eq(audit_synced_seq(a), 0);
    cr_assert(audit_sync_begin(a, &s));
    cr_assert_geq(s.n, 1);
    audit_sync_run(&s);
    cr_assert_eq(s.rc, 0);
    audit_sync_end(a, &s);
    cr_assert_eq(audit_synced_seq(a), 2);
    cr_assert_not(audit_sync_begin(a, &s), "nothing new to sync");
    record_n(a, 1);
    cr_assert_eq(audit_sync(a), 0);
    cr_assert_eq(audit_synced_seq(a), 3);
    audit_close(a);
}

Test(audit, sync_off_never_syncs)
{
    cfg.audit_sync = CONFIG_AUDIT_SYNC_OFF;
    struct audit *a = open_log();
    struct audit_sync s;
    record_n(a, 2);
    cr_assert_not(audit_sync_begin(a, &s));
    audit_close(a);
}

/* ---- configuration and the command --------------------------------------- */

static char env_keys[3][128];

static void key_env(size_t i, const char *name, const struct config_secret *s)
{
    size_t olen = 0;
    int n = snprintf(env_keys[i], sizeof(env_keys[i]), "%s=", name);
    cr_assert_eq(mbedtls_base64_encode((unsigned char *)env_keys[i] + n, sizeof(env_keys[i]) - (size_t)n,
                                       &olen, s->bytes, s->len), 0);
}

/* The environment `notesd audit verify` runs with here: the keys and this
 * test's folder. */
static char **verify_env(void)
{
    static char dir_env[160], *envp[5];
    snprintf(dir_env, sizeof(dir_env), "NOTES_AUDIT_DIR=%s", dir);
    key_env(0, "NOTES_DATA_KEY", &cfg.data_key);
    key_env(1, "NOTES_TOKEN_KEY", &cfg.token_key);
    key_env(2, "NOTES_AUDIT_KEY", &cfg.audit_key);
    envp[0] = env_keys[0], envp[1] = env_keys[1], envp[2] = env_keys[2], envp[3] = dir_env, envp[4] = NULL;
    return envp;
}

static int run_verify(char *arg)
{
    char **envp = verify_env();
    char verb[] = "verify";
    char *argv[] = { verb, arg, NULL };
    fflush(stdout);
    int rc = cli_audit(arg ? 2 : 1, argv, envp);
    fflush(stdout);
    return rc;
}

Test(audit, cli_verify_exit_status)
{
    struct lines l;
    six_lines(&l);
    cr_assert_eq(run_verify(NULL), 0);
    cr_assert_eq(run_verify(dir), 0);
    l.at[1][10] ^= 1;
    write_lines(in_dir(AUDIT_CURRENT), &l, false);
    cr_assert_eq(run_verify(NULL), 1);
    char missing[160];
    snprintf(missing, sizeof(missing), "%s/nope", root);
    cr_assert_eq(run_verify(missing), 74);
    char bad[] = "check";
    char *argv[] = { bad, NULL };
    cr_assert_eq(cli_audit(1, argv, NULL), 64);
    free(l.text);
}

Test(audit, cli_verify_takes_an_anchor)
{
    struct lines l;
    six_lines(&l);
    char anchor[128];
    anchor_of_report(anchor);
    char **envp = verify_env();
    char verb[] = "verify", opt[] = "--anchor", junk[] = "6:nothex";
    char *argv[] = { verb, opt, anchor, NULL };
    fflush(stdout);
    cr_assert_eq(cli_audit(3, argv, envp), 0);
    l.n -= 1;
    write_lines(in_dir(AUDIT_CURRENT), &l, false);
    cr_assert_eq(cli_audit(3, argv, envp), 1);
    char *with_dir[] = { verb, dir, opt, anchor, NULL };
    cr_assert_eq(cli_audit(4, with_dir, envp), 1);
    char *bad[] = { verb, opt, junk, NULL };
    cr_assert_eq(cli_audit(3, bad, envp), 64);
    char *missing[] = { verb, opt, NULL };
    cr_assert_eq(cli_audit(2, missing, envp), 64);
    char bogus[] = "--bogus";
    char *twice[] = { verb, opt, anchor, opt, anchor, NULL };
    cr_assert_eq(cli_audit(5, twice, envp), 64, "two anchors");
    char *unknown[] = { verb, bogus, NULL };
    cr_assert_eq(cli_audit(2, unknown, envp), 64, "an unknown option");
    char *two_dirs[] = { verb, dir, dir, NULL };
    cr_assert_eq(cli_audit(3, two_dirs, envp), 64, "two folders");
    char help[] = "--help";
    char *asked[] = { verb, help, NULL };
    cr_assert_eq(cli_audit(2, asked, envp), 0, "verify --help is not an error");
    fflush(stdout);
    free(l.text);
}

Test(audit, config_reads_the_audit_settings)
{
    key_env(0, "NOTES_DATA_KEY", &cfg.data_key);
    key_env(1, "NOTES_TOKEN_KEY", &cfg.token_key);
    key_env(2, "NOTES_AUDIT_KEY", &cfg.audit_key);
    char *envp[] = { env_keys[0], env_keys[1], env_keys[2], NULL, NULL, NULL };
    struct config c;
    char err[CONFIG_ERR_MAX];
    cr_assert_eq(config_load(&c, envp, NULL, 0, CONFIG_NEED_NO_TLS, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(c.audit_max_bytes, 10485760);
    cr_assert_eq(c.audit_max_files, 10);
    cr_assert_eq(c.audit_retention_days, 90);
    cr_assert_eq(c.audit_sync, CONFIG_AUDIT_SYNC_BATCH);
    cr_assert_eq(c.audit_ip, CONFIG_AUDIT_IP_FULL);
    config_free(&c);

    char s1[] = "NOTES_AUDIT_SYNC=always", s2[] = "NOTES_AUDIT_IP=truncated";
    envp[3] = s1, envp[4] = s2;
    cr_assert_eq(config_load(&c, envp, NULL, 0, CONFIG_NEED_NO_TLS, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(c.audit_sync, CONFIG_AUDIT_SYNC_ALWAYS);
    cr_assert_eq(c.audit_ip, CONFIG_AUDIT_IP_TRUNCATED);
    config_free(&c);

    static const char *bad[] = { "NOTES_AUDIT_SYNC=sometimes", "NOTES_AUDIT_IP=half",
                                 "NOTES_AUDIT_MAX_BYTES=4095", "NOTES_AUDIT_MAX_FILES=0",
                                 "NOTES_AUDIT_RETENTION_DAYS=0" };
    for (size_t i = 0; i < 5; i++) {
        char v[64];
        snprintf(v, sizeof(v), "%s", bad[i]);
        envp[3] = v, envp[4] = NULL;
        cr_assert_eq(config_load(&c, envp, NULL, 0, CONFIG_NEED_NO_TLS, err, sizeof(err)), ERR_CONFIG,
                     "%s accepted", bad[i]);
        cr_assert(strncmp(err, bad[i], strcspn(bad[i], "=")) == 0, "%s", err);
    }
}
