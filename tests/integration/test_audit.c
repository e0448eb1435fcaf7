/*
 * Integration tests of the audit trail (issue 5): the real notesd binary on
 * a loopback port, its audit directory read back and parsed with cJSON.
 *
 * Every event the issue names appears after its request with the right
 * fields (and the request id of the response); rotation at a 4 KiB cap;
 * retention by age and by file count, recorded and explained to `notesd
 * audit verify`; verify pinpoints an edited, removed, reordered or inserted
 * line; a full session with canary values leaves none of them in any log;
 * and a "full disk" (RLIMIT_FSIZE on the server) refuses changes with 503,
 * changes nothing, reports once, and recovers once there is room again.
 *
 * No sleeps: the harness waits for readiness, each audit line is written
 * before its response, and after harness_stop() the log is complete
 * (server.stop is written at SIGTERM). Every wait is bounded.
 */
#include <criterion/criterion.h>
#include <cJSON.h>
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <grp.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "rawtls.h"

#define RID_MAX 80
#define PSEUDONYM_HEX 16        /* crypto.h: CRYPTO_PSEUDONYM_LEN */
#define CAP_MIN 4096            /* NOTES_AUDIT_MAX_BYTES' minimum */
#define MAX_LOG_FILES 128
#define NAME_LEN 47             /* audit-YYYYMMDDTHHMMSSZ-<20 digits>.log */

#define PW_ALICE "violet-Anchor-7392-lamp"
#define PW_ALICE2 "quiet_River_5518_stone"
#define PW_BOB "Marble+Falcon+2046+tide"
#define PW_ADMIN "admin-Glacier-8841-ember"
#define SQLI "x' OR 1=1--"

static struct server srv;
static time_t t_begin;

/* ---- fixtures ------------------------------------------------------------ */

static void prep(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    harness_prepare(&srv);
    t_begin = time(NULL);
}

static void start_open(void)
{
    prep();
    harness_setenv(&srv, "NOTES_REGISTRATION", "open");
    harness_start(&srv);
}

static void finish(void)
{
    harness_cleanup(&srv);
}

static const char *audit_dir(void)
{
    const char *d = harness_getenv(&srv, "NOTES_AUDIT_DIR");
    cr_assert(d);
    return d;
}

/* ---- small utilities ----------------------------------------------------- */



static bool all_hex(const char *s, size_t n)
{
    if (strlen(s) != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

static size_t count_hits(const char *data, size_t len, const char *needle, bool icase)
{
    size_t nl = strlen(needle), hits = 0;
    if (nl == 0 || len < nl)
        return 0;
    for (size_t i = 0; i + nl <= len; i++)
        if (icase ? strncasecmp(data + i, needle, nl) == 0 : memcmp(data + i, needle, nl) == 0)
            hits++;
    return hits;
}

static off_t file_size(const char *path)
{
    struct stat st;
    cr_assert_eq(stat(path, &st), 0, "stat %s: %s", path, strerror(errno));
    return st.st_size;
}

/* ---- requests ------------------------------------------------------------ */

/* One request; asserts the status; the response's X-Request-Id in rid. */
/* Requests here may wait for several argon2 jobs queued ahead of them: on a
 * slow or loaded machine that is longer than the harness's 10 s. The
 * test's own .timeout is the bound. */
#define REQ_TIMEOUT_MS 120000L

static void req(const char *method, const char *path, const char *token, const char *body,
                const char *ctype, long want, char rid[RID_MAX], struct response *out)
{
    const char *hdrs[6];
    size_t n = 0;
    char auth[256], ct[128];
    hdrs[n++] = "Expect:";
    if (token) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
        hdrs[n++] = auth;
    }
    if (body) {
        snprintf(ct, sizeof(ct), "Content-Type: %s", ctype ? ctype : "application/json");
        hdrs[n++] = ct;
    }
    hdrs[n] = NULL;
    struct request_opts o = { .method = method, .body = body, .headers = hdrs, .timeout_ms = REQ_TIMEOUT_MS };
    struct response r;
    harness_request(&srv, path, &o, &r);
    cr_assert_eq(r.curl_code, CURLE_OK, "%s %s: curl error %d", method ? method : "GET", path, r.curl_code);
    cr_assert_eq(r.status, want, "%s %s: expected %ld, got %ld: %.400s", method ? method : "GET", path, want,
                 r.status, r.body);
    if (rid) {
        char *id = response_header(&r, "X-Request-Id");
        cr_assert(id && *id && strlen(id) < RID_MAX, "%s %s: no X-Request-Id", method ? method : "GET", path);
        snprintf(rid, RID_MAX, "%s", id);
        free(id);
    }
    if (out)
        *out = r;
    else
        response_free(&r);
}

static cJSON *json_of(const struct response *r)
{
    cJSON *j = cJSON_ParseWithLength(r->body, r->body_len);
    cr_assert(j, "response body is not JSON: %.400s", r->body);
    return j;
}

static char *body2(const char *k1, const char *v1, const char *k2, const char *v2)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, k1, v1);
    if (k2)
        cJSON_AddStringToObject(o, k2, v2);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    cr_assert(s);
    return s;
}

static void do_register(const char *name, const char *pw, long want, char rid[RID_MAX])
{
    char *b = body2("username", name, "password", pw);
    req("POST", "/v1/auth/register", NULL, b, NULL, want, rid, NULL);
    free(b);
}

/* Login; on 200 returns the token (caller frees), else NULL. */
static char *do_login(const char *name, const char *pw, long want, char rid[RID_MAX])
{
    char *b = body2("username", name, "password", pw);
    struct response r;
    req("POST", "/v1/auth/login", NULL, b, NULL, want, rid, &r);
    free(b);
    char *tok = NULL;
    if (want == 200) {
        cJSON *j = json_of(&r);
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "token");
        cr_assert(cJSON_IsString(t));
        tok = harness_strdup(t->valuestring);
        cJSON_Delete(j);
    }
    response_free(&r);
    return tok;
}

static int64_t do_create(const char *token, const char *title, const char *content, char rid[RID_MAX])
{
    char *b = body2("title", title, "content", content);
    struct response r;
    req("POST", "/v1/notes", token, b, NULL, 201, rid, &r);
    free(b);
    cJSON *j = json_of(&r);
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(j, "id");
    cr_assert(cJSON_IsNumber(id));
    int64_t out = (int64_t)id->valuedouble;
    cJSON_Delete(j);
    response_free(&r);
    return out;
}

static int cli_add_user(const char *name, const char *role, const char *pw)
{
    char input[256];
    snprintf(input, sizeof(input), "%s\n", pw);
    const char *args[] = { "user", "add", name, "--role", role, NULL };
    return harness_run_stdin(&srv, args, input);
}

/* Fresh keys from `notesd gen-secrets`: the value of `name`. */
static char *fresh_key(const char *name)
{
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "'%s' gen-secrets", harness_bin());
    FILE *p = popen(cmd, "r");
    cr_assert(p);
    char line[512], *out = NULL;
    size_t nl = strlen(name);
    while (fgets(line, sizeof(line), p))
        if (strncmp(line, name, nl) == 0 && line[nl] == '=') {
            line[strcspn(line, "\r\n")] = 0;
            free(out);
            out = harness_strdup(line + nl + 1);
        }
    cr_assert_eq(pclose(p), 0);
    cr_assert(out, "gen-secrets printed no %s", name);
    return out;
}

/* ---- many requests on one keep-alive connection -------------------------- */

struct hit {
    long status;
    char rid[RID_MAX];
};

static size_t rid_header(char *data, size_t size, size_t n, void *arg)
{
    static const char name[] = "x-request-id:";
    char *rid = arg;
    size_t len = size * n, k = sizeof(name) - 1;
    if (len > k && strncasecmp(data, name, k) == 0) {
        const char *v = data + k;
        size_t vl = len - k;
        while (vl && *v == ' ')
            v++, vl--;
        while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
            vl--;
        if (vl >= RID_MAX)
            vl = RID_MAX - 1;
        memcpy(rid, v, vl);
        rid[vl] = 0;
    }
    return len;
}

static size_t discard(char *d, size_t size, size_t n, void *arg)
{
    (void)d;
    (void)arg;
    return size * n;
}

/* n GETs of `path`, reusing one connection (curl reconnects if the server
 * closes it): fast traffic for the log. */
static void blast(const char *path, const char *token, int n, struct hit *out)
{
    CURL *h = curl_easy_init();
    cr_assert(h);
    char url[512], resolve[128], auth[256], rid[RID_MAX];
    snprintf(url, sizeof(url), "https://localhost:%d%s", srv.port, path);
    snprintf(resolve, sizeof(resolve), "localhost:%d:127.0.0.1", srv.port);
    struct curl_slist *res_list = curl_slist_append(NULL, resolve), *hdrs = NULL;
    if (token) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
        hdrs = curl_slist_append(hdrs, auth);
    }
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_RESOLVE, res_list);
    curl_easy_setopt(h, CURLOPT_CAINFO, srv.cert);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(h, CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, rid_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, rid);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
    if (hdrs)
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    for (int i = 0; i < n; i++) {
        rid[0] = 0;
        CURLcode rc = curl_easy_perform(h);
        cr_assert_eq(rc, CURLE_OK, "request %d of %s: curl error %d", i, path, (int)rc);
        long st = 0;
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &st);
        if (out) {
            out[i].status = st;
            snprintf(out[i].rid, RID_MAX, "%s", rid);
        }
    }
    curl_slist_free_all(res_list);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
}

/* ---- running notesd with its stdout captured ----------------------------- */

/* `notesd args...` with the server's environment; stdout into *out (caller
 * frees), stderr appended to the server's stderr file. Exit status, or
 * -signal. Bounded: 15 s. */
static int run_out(const char *const *args, char **out)
{
    char *argv[16];
    size_t n = 0;
    argv[n++] = harness_strdup(harness_bin());
    for (; args[n - 1] && n < 15; n++)
        argv[n] = harness_strdup(args[n - 1]);
    argv[n] = NULL;
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        int err = open(srv.stderr_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
        int null = open("/dev/null", O_RDWR);
        if (err < 0 || null < 0)
            _exit(126);
        dup2(null, 0);
        dup2(fds[1], 1);
        dup2(err, 2);
        close(fds[0]);
        execve(argv[0], argv, srv.env);
        _exit(127);
    }
    close(fds[1]);
    for (size_t i = 0; i < n; i++)
        free(argv[i]);
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    cr_assert(buf);
    long deadline = harness_now_ms() + 15000;
    bool eof = false;
    while (!eof) {
        long left = deadline - harness_now_ms();
        if (left <= 0)
            break;
        struct pollfd p = { .fd = fds[0], .events = POLLIN };
        if (poll(&p, 1, (int)left) <= 0)
            continue;
        if (len + 4096 > cap) {
            cap *= 2;
            buf = realloc(buf, cap);
            cr_assert(buf);
        }
        ssize_t got = read(fds[0], buf + len, cap - len - 1);
        if (got < 0 && errno == EINTR)
            continue;
        eof = got <= 0;
        if (got > 0)
            len += (size_t)got;
    }
    close(fds[0]);
    buf[len] = 0;
    if (!eof)
        kill(pid, SIGKILL);
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert(eof, "notesd %s did not finish in time", args[0]);
    *out = buf;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st);
}

/* `notesd audit verify DIR`: exit status, report in *report. */
static int verify(const char *dir, char **report)
{
    const char *args[] = { "audit", "verify", dir, NULL };
    return run_out(args, report);
}

/* ---- the audit directory ------------------------------------------------- */

static bool rotated_name(const char *n)
{
    if (strlen(n) != NAME_LEN || strncmp(n, "audit-", 6) != 0 || strcmp(n + 43, ".log") != 0 || n[22] != '-')
        return false;
    for (size_t i = 23; i < 43; i++)
        if (n[i] < '0' || n[i] > '9')
            return false;
    return true;
}

static int by_seq(const void *a, const void *b)
{
    return strcmp((const char *)a + 23, (const char *)b + 23);
}

/* The log's files in chain order: rotated ones by seq, then audit.log. */
static size_t chain_files(const char *dir, char names[][64])
{
    DIR *d = opendir(dir);
    cr_assert(d, "opendir %s: %s", dir, strerror(errno));
    size_t n = 0;
    bool current = false;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, "audit.log") == 0)
            current = true;
        else if (rotated_name(e->d_name)) {
            cr_assert_lt(n, MAX_LOG_FILES - 1);
            snprintf(names[n++], 64, "%s", e->d_name);
        }
    }
    closedir(d);
    qsort(names, n, sizeof(names[0]), by_seq);
    if (current)
        snprintf(names[n++], 64, "audit.log");
    return n;
}

struct line {
    cJSON *o;
    char *raw;
    size_t file;            /* index into alog.names */
    size_t lineno;          /* 1-based */
};

struct alog {
    char names[MAX_LOG_FILES][64];
    off_t sizes[MAX_LOG_FILES];
    size_t n_files;
    struct line *l;
    size_t n;
};

static const char *const field_order[] = {
    "ts", "seq", "event", "actor", "role", "ip", "request_id", "resource", "result", "status", "reason",
    "detail", "count", "file", "first_seq", "last_seq", "last_hash", "bytes", "torn_hash", "prev", "mac",
};
#define N_FIELDS (sizeof(field_order) / sizeof(field_order[0]))

/* Printable ASCII, a JSON object, known keys in the documented order. */
static cJSON *parse_line(const char *raw, const char *where)
{
    for (const char *p = raw; *p; p++)
        cr_assert((unsigned char)*p >= 0x20 && (unsigned char)*p < 0x7f, "%s: byte 0x%02x is not printable ASCII",
                  where, (unsigned char)*p);
    cJSON *o = cJSON_Parse(raw);
    cr_assert(cJSON_IsObject(o), "%s: not a JSON object: %s", where, raw);
    size_t last = 0;
    bool first = true;
    const cJSON *f;
    cJSON_ArrayForEach(f, o) {
        size_t k = 0;
        while (k < N_FIELDS && strcmp(field_order[k], f->string) != 0)
            k++;
        cr_assert_lt(k, N_FIELDS, "%s: unknown field \"%s\"", where, f->string);
        cr_assert(first || k > last, "%s: field \"%s\" out of order (or repeated): %s", where, f->string, raw);
        last = k;
        first = false;
    }
    return o;
}

static void log_load(const char *dir, struct alog *lg)
{
    memset(lg, 0, sizeof(*lg));
    lg->n_files = chain_files(dir, lg->names);
    size_t cap = 0;
    for (size_t i = 0; i < lg->n_files; i++) {
        char path[700];
        snprintf(path, sizeof(path), "%s/%s", dir, lg->names[i]);
        size_t len;
        char *data = harness_read_file(path, &len);
        cr_assert(data, "cannot read %s", path);
        lg->sizes[i] = (off_t)len;
        cr_assert(len == 0 || data[len - 1] == '\n', "%s does not end with a newline", path);
        size_t lineno = 0;
        for (char *p = data; p < data + len;) {
            char *nl = memchr(p, '\n', (size_t)(data + len - p));
            cr_assert(nl);
            *nl = 0;
            lineno++;
            char where[800];
            snprintf(where, sizeof(where), "%s:%zu", lg->names[i], lineno);
            cr_assert_eq(strlen(p), (size_t)(nl - p), "%s: NUL byte in a line", where);
            if (lg->n == cap) {
                cap = cap ? 2 * cap : 256;
                lg->l = realloc(lg->l, cap * sizeof(*lg->l));
                cr_assert(lg->l);
            }
            lg->l[lg->n++] = (struct line){ parse_line(p, where), harness_strdup(p), i, lineno };
            p = nl + 1;
        }
        free(data);
    }
}

static void log_free(struct alog *lg)
{
    for (size_t i = 0; i < lg->n; i++) {
        cJSON_Delete(lg->l[i].o);
        free(lg->l[i].raw);
    }
    free(lg->l);
    lg->l = NULL;
    lg->n = 0;
}

static const char *fstr(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!v)
        return NULL;
    cr_assert(cJSON_IsString(v), "field \"%s\" is not a string", k);
    return v->valuestring;
}

static bool fnum(const cJSON *o, const char *k, uint64_t *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!v)
        return false;
    cr_assert(cJSON_IsNumber(v) && v->valuedouble >= 0, "field \"%s\" is not a number", k);
    *out = (uint64_t)v->valuedouble;
    return true;
}

static bool is_machine_code(const char *s)
{
    if (!s || !*s || strlen(s) > 64)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || *s == '_' || (*s >= '0' && *s <= '9')))
            return false;
    return true;
}

static bool is_event_name(const char *s)
{
    bool dot = false;
    if (!s || !*s || *s == '.')
        return false;
    for (; *s; s++) {
        if (*s == '.')
            dot = true;
        else if (!((*s >= 'a' && *s <= 'z') || *s == '_'))
            return false;
    }
    return dot;
}

/* "2024-05-01T12:00:00.123Z": UTC with milliseconds; its time in *t. */
static bool parse_ts(const char *s, time_t *t)
{
    static const char shape[] = "dddd-dd-ddTdd:dd:dd.dddZ";
    if (strlen(s) != sizeof(shape) - 1)
        return false;
    for (size_t i = 0; shape[i]; i++)
        if (shape[i] == 'd' ? !(s[i] >= '0' && s[i] <= '9') : s[i] != shape[i])
            return false;
    struct tm tm = { 0 };
    tm.tm_year = atoi(s) - 1900;
    tm.tm_mon = atoi(s + 5) - 1;
    tm.tm_mday = atoi(s + 8);
    tm.tm_hour = atoi(s + 11);
    tm.tm_min = atoi(s + 14);
    tm.tm_sec = atoi(s + 17);
    if (tm.tm_mon > 11 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60)
        return false;
    *t = timegm(&tm);
    return true;
}

static bool is_resource(const char *r)
{
    if (strcmp(r, "note") == 0 || strcmp(r, "user") == 0)
        return true;
    if (strncmp(r, "user:", 5) == 0)
        return all_hex(r + 5, PSEUDONYM_HEX);
    if (strncmp(r, "note:", 5) == 0 && r[5] && r[5] != '0') {
        for (const char *p = r + 5; *p; p++)
            if (*p < '0' || *p > '9')
                return false;
        return true;
    }
    return false;
}

/*
 * What every line must satisfy: a time of this test run, seq +1 from the
 * line before (the first one `first_seq` unless 0), an event name, an actor
 * that is a pseudonym or one of the fixed words (with the matching role), an
 * address of the configured form `ip` (NULL: none at all), known results,
 * a reason code with every deny and error, and hex chain fields.
 */
static void check_all_lines(const struct alog *lg, uint64_t first_seq, const char *ip)
{
    time_t now = time(NULL);
    cr_assert_gt(lg->n, 0, "the audit log is empty");
    for (size_t i = 0; i < lg->n; i++) {
        const cJSON *o = lg->l[i].o;
        char where[200];
        snprintf(where, sizeof(where), "%s:%zu", lg->names[lg->l[i].file], lg->l[i].lineno);
        const char *ts = fstr(o, "ts"), *ev = fstr(o, "event"), *actor = fstr(o, "actor"),
                   *role = fstr(o, "role"), *result = fstr(o, "result"), *reason = fstr(o, "reason");
        time_t t;
        cr_assert(ts && parse_ts(ts, &t), "%s: ts is not RFC 3339 UTC with milliseconds: %s", where,
                  ts ? ts : "(none)");
        cr_assert(t >= t_begin - 1 && t <= now + 1, "%s: ts %s is not of this run", where, ts);
        uint64_t seq = 0;
        cr_assert(fnum(o, "seq", &seq), "%s: no seq", where);
        if (i > 0) {
            uint64_t before = 0;
            fnum(lg->l[i - 1].o, "seq", &before);
            cr_assert_eq(seq, before + 1, "%s: seq %llu after %llu", where, (unsigned long long)seq,
                         (unsigned long long)before);
        } else if (first_seq) {
            cr_assert_eq(seq, first_seq, "%s: the log starts at seq %llu", where, (unsigned long long)seq);
        }
        cr_assert(is_event_name(ev), "%s: event %s", where, ev ? ev : "(none)");
        cr_assert(actor && role, "%s: actor and role are required", where);
        if (strcmp(actor, "anonymous") == 0 || strcmp(actor, "cli") == 0 || strcmp(actor, "system") == 0)
            cr_assert_str_eq(role, actor, "%s: actor %s with role %s", where, actor, role);
        else
            cr_assert(all_hex(actor, PSEUDONYM_HEX) && (strcmp(role, "user") == 0 || strcmp(role, "admin") == 0),
                      "%s: actor \"%s\" (role %s) is not a pseudonym", where, actor, role);
        const char *addr = fstr(o, "ip"), *rid = fstr(o, "request_id");
        if (addr)
            cr_assert(ip && strcmp(addr, ip) == 0, "%s: ip %s, expected %s", where, addr, ip ? ip : "none");
        if (rid) {
            cr_assert(*rid && strlen(rid) < RID_MAX, "%s: request_id", where);
            if (ip)
                cr_assert(addr, "%s: a request's event without ip", where);
        }
        const char *res = fstr(o, "resource");
        cr_assert(!res || is_resource(res), "%s: resource \"%s\"", where, res);
        cr_assert(result && (strcmp(result, "success") == 0 || strcmp(result, "deny") == 0 ||
                             strcmp(result, "error") == 0),
                  "%s: result %s", where, result ? result : "(none)");
        if (strcmp(result, "success") != 0)
            cr_assert(is_machine_code(reason), "%s: a %s without a reason code", where, result);
        else if (reason)
            cr_assert(is_machine_code(reason), "%s: reason \"%s\"", where, reason);
        uint64_t status;
        if (fnum(o, "status", &status))
            cr_assert(status >= 100 && status <= 599, "%s: status %llu", where, (unsigned long long)status);
        const char *prev = fstr(o, "prev"), *mac = fstr(o, "mac");
        cr_assert(prev && all_hex(prev, 64), "%s: prev", where);
        cr_assert(mac && all_hex(mac, 64), "%s: mac", where);
    }
}

/* The single line carrying this request id. */
static const cJSON *by_rid(const struct alog *lg, const char *rid, size_t *index)
{
    const cJSON *found = NULL;
    for (size_t i = 0; i < lg->n; i++) {
        const char *r = fstr(lg->l[i].o, "request_id");
        if (r && strcmp(r, rid) == 0) {
            cr_assert_null(found, "two audit lines carry request id %s", rid);
            found = lg->l[i].o;
            if (index)
                *index = i;
        }
    }
    cr_assert(found, "no audit line carries request id %s", rid);
    return found;
}

static size_t count_event(const struct alog *lg, const char *event)
{
    size_t n = 0;
    for (size_t i = 0; i < lg->n; i++)
        n += strcmp(fstr(lg->l[i].o, "event"), event) == 0;
    return n;
}

#define ANY "\001any"

/* Expected fields of one line; NULL: the field must be absent; ANY: any. */
struct want {
    const char *event, *actor, *role, *resource, *result, *reason, *detail;
    long status;             /* 0: absent */
};

static void expect_field(const cJSON *o, const char *k, const char *want, const char *what)
{
    const char *got = fstr(o, k);
    if (want == NULL)
        cr_assert_null(got, "%s: \"%s\" should be absent, is \"%s\"", what, k, got);
    else if (strcmp(want, ANY) != 0)
        cr_assert(got && strcmp(got, want) == 0, "%s: \"%s\" is \"%s\", expected \"%s\"", what, k,
                  got ? got : "(absent)", want);
}

static void expect_line(const cJSON *o, const struct want *w, const char *what)
{
    expect_field(o, "event", w->event, what);
    expect_field(o, "actor", w->actor, what);
    expect_field(o, "role", w->role, what);
    expect_field(o, "resource", w->resource, what);
    expect_field(o, "result", w->result, what);
    expect_field(o, "reason", w->reason, what);
    expect_field(o, "detail", w->detail, what);
    uint64_t st = 0;
    bool has = fnum(o, "status", &st);
    if (w->status)
        cr_assert(has && st == (uint64_t)w->status, "%s: status %llu, expected %ld", what,
                  (unsigned long long)st, w->status);
    else
        cr_assert(!has, "%s: status should be absent", what);
}

/* Occurrences of `needle` in every file of the audit directory. */
static size_t hits_in_audit_dir(const char *needle, bool icase, char *first_file, size_t cap)
{
    DIR *d = opendir(audit_dir());
    cr_assert(d);
    size_t hits = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[700];
        snprintf(path, sizeof(path), "%s/%s", audit_dir(), e->d_name);
        size_t len;
        char *data = harness_read_file(path, &len);
        if (!data)
            continue;
        size_t h = count_hits(data, len, needle, icase);
        if (h && first_file && !hits)
            snprintf(first_file, cap, "%.100s", e->d_name);
        hits += h;
        free(data);
    }
    closedir(d);
    return hits;
}

static char *read_stderr(size_t *len)
{
    char *s = harness_read_file(srv.stderr_path, len);
    if (!s) {
        *len = 0;
        return harness_strdup("");
    }
    return s;
}

/* ======================================================================== */
/* 1. Every event, with its fields                                           */
/* ======================================================================== */

Test(events, every_event_appears_with_its_fields, .init = start_open, .fini = finish, .timeout = 120)
{
    char alice[40], admin[40], bob[40];
    harness_marker(alice, sizeof(alice), "alice");
    harness_marker(admin, sizeof(admin), "boss");
    harness_marker(bob, sizeof(bob), "bob");
    struct {
        char reg[RID_MAX], sqli_reg[RID_MAX], sqli_login[RID_MAX], bad_pw[RID_MAX], unknown[RID_MAX],
            login[RID_MAX], create[RID_MAX], read[RID_MAX], list[RID_MAX], update[RID_MAX], bad_type[RID_MAX],
            bad_body[RID_MAX], deny403[RID_MAX], deny401[RID_MAX], bad_token[RID_MAX], admin_login[RID_MAX],
            admin_create[RID_MAX], admin_list[RID_MAX], admin_read[RID_MAX], del[RID_MAX], pw[RID_MAX],
            pw_bad[RID_MAX], export[RID_MAX], logout[RID_MAX], login2[RID_MAX], del_me[RID_MAX];
    } rid;

    cr_assert_eq(cli_add_user(admin, "admin", PW_ADMIN), 0, "notesd user add (admin)");
    cr_assert_eq(cli_add_user(bob, "user", PW_BOB), 0, "notesd user add (user)");
    do_register(alice, PW_ALICE, 201, rid.reg);
    do_register(SQLI, PW_ALICE, 400, rid.sqli_reg);
    do_login(SQLI, PW_ALICE, 401, rid.sqli_login);
    do_login(alice, "not-the-Password-77", 401, rid.bad_pw);
    do_login("nobody-here", "not-the-Password-77", 401, rid.unknown);
    char *tok = do_login(alice, PW_ALICE, 200, rid.login);
    int64_t id = do_create(tok, "a title", "a content", rid.create);
    char path[64];
    snprintf(path, sizeof(path), "/v1/notes/%lld", (long long)id);
    req("GET", path, tok, NULL, NULL, 200, rid.read, NULL);
    req("GET", "/v1/notes", tok, NULL, NULL, 200, rid.list, NULL);
    char *nb = body2("title", "new title", "content", "new content");
    req("PUT", path, tok, nb, NULL, 200, rid.update, NULL);
    req("POST", "/v1/notes", tok, nb, "text/plain", 415, rid.bad_type, NULL);
    req("POST", "/v1/notes", tok, "{\"title\":\"t\",\"content\":42}", NULL, 400, rid.bad_body, NULL);
    req("GET", "/v1/admin/notes", tok, NULL, NULL, 403, rid.deny403, NULL);
    req("GET", "/v1/notes", NULL, NULL, NULL, 401, rid.deny401, NULL);
    req("GET", "/v1/notes", "nt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", NULL, NULL, 401, rid.bad_token, NULL);
    char *atok = do_login(admin, PW_ADMIN, 200, rid.admin_login);
    do_create(atok, "admin title", "admin content", rid.admin_create);
    req("GET", "/v1/admin/notes", atok, NULL, NULL, 200, rid.admin_list, NULL);
    char apath[80];
    snprintf(apath, sizeof(apath), "/v1/admin/notes/%lld", (long long)id);
    req("GET", apath, atok, NULL, NULL, 200, rid.admin_read, NULL);
    req("DELETE", path, tok, NULL, NULL, 204, rid.del, NULL);
    char *pwb = body2("current_password", "wrong-Password-123", "new_password", PW_ALICE2);
    req("POST", "/v1/auth/password", tok, pwb, NULL, 403, rid.pw_bad, NULL);
    free(pwb);
    pwb = body2("current_password", PW_ALICE, "new_password", PW_ALICE2);
    req("POST", "/v1/auth/password", tok, pwb, NULL, 204, rid.pw, NULL);
    req("GET", "/v1/me/export", tok, NULL, NULL, 200, rid.export, NULL);
    req("POST", "/v1/auth/logout", tok, NULL, NULL, 204, rid.logout, NULL);
    char *tok2 = do_login(alice, PW_ALICE2, 200, rid.login2);
    char *db = body2("password", PW_ALICE2, NULL, NULL);
    req("DELETE", "/v1/me", tok2, db, NULL, 204, rid.del_me, NULL);
    const char *set_role[] = { "user", "set-role", bob, "admin", NULL };
    cr_assert_eq(harness_run(&srv, set_role), 0, "notesd user set-role");
    const char *disable[] = { "user", "disable", bob, NULL };
    cr_assert_eq(harness_run(&srv, disable), 0, "notesd user disable");
    cr_assert_eq(harness_stop(&srv), 0, "notesd did not stop cleanly");
    /* a new data key: rekey (server stopped) moves the admin's note to it */
    char *new_key = fresh_key("NOTES_DATA_KEY");
    char *old_key = harness_strdup(harness_getenv(&srv, "NOTES_DATA_KEY"));
    harness_setenv(&srv, "NOTES_DATA_KEY", new_key);
    harness_setenv(&srv, "NOTES_DATA_KEY_PREVIOUS", old_key);
    const char *rekey[] = { "rekey", NULL };
    cr_assert_eq(harness_run(&srv, rekey), 0, "notesd rekey");

    struct alog lg;
    log_load(audit_dir(), &lg);
    check_all_lines(&lg, 1, "127.0.0.1");

    /* server.start first, with a digest of the configuration */
    const cJSON *start = lg.l[0].o;
    expect_line(start, &(struct want){ "server.start", "system", "system", NULL, "success", NULL, ANY, 0 },
                "server.start");
    const char *digest = fstr(start, "detail");
    cr_assert(digest && strncmp(digest, "config:", 7) == 0 && strlen(digest) >= 7 + 16 &&
                  all_hex(digest + 7, strlen(digest + 7)),
              "server.start detail \"%s\" is not config:<hex>", digest ? digest : "");
    cr_assert_null(fstr(start, "ip"));
    cr_assert_null(fstr(start, "request_id"));

    /* the CLI's user.add lines: actor and role "cli", the user a pseudonym */
    const cJSON *add_admin = lg.l[1].o, *add_bob = lg.l[2].o;
    expect_line(add_admin, &(struct want){ "user.add", "cli", "cli", ANY, "success", NULL, NULL, 0 }, "user.add");
    expect_line(add_bob, &(struct want){ "user.add", "cli", "cli", ANY, "success", NULL, NULL, 0 }, "user.add");
    const char *r_admin = fstr(add_admin, "resource"), *r_bob = fstr(add_bob, "resource");
    cr_assert(r_admin && strncmp(r_admin, "user:", 5) == 0 && all_hex(r_admin + 5, PSEUDONYM_HEX), "%s", r_admin);
    cr_assert(r_bob && strncmp(r_bob, "user:", 5) == 0 && strcmp(r_bob, r_admin) != 0, "%s", r_bob);
    cr_assert_null(fstr(add_admin, "ip"));
    cr_assert_null(fstr(add_admin, "request_id"));
    const char *admin_p = r_admin + 5;

    /* registration: anonymous actor, the new account as a pseudonymous resource */
    const cJSON *o = by_rid(&lg, rid.reg, NULL);
    expect_line(o, &(struct want){ "auth.register", "anonymous", "anonymous", ANY, "success", NULL, NULL, 201 },
                "auth.register");
    const char *r_alice = fstr(o, "resource");
    cr_assert(r_alice && strncmp(r_alice, "user:", 5) == 0 && all_hex(r_alice + 5, PSEUDONYM_HEX), "%s", r_alice);
    const char *alice_p = r_alice + 5;
    cr_assert_str_eq(fstr(o, "ip"), "127.0.0.1");

    struct {
        const char *rid, *what;
        struct want w;
    } cases[] = {
        { rid.sqli_reg, "input.rejected (register)",
          { "input.rejected", "anonymous", "anonymous", NULL, "deny", "validation", "username", 400 } },
        { rid.sqli_login, "auth.login (malformed name)",
          { "auth.login", "anonymous", "anonymous", NULL, "deny", "unknown_user", NULL, 401 } },
        /* Whoever tried is not logged in: the actor is anonymous, the
         * account tried is the resource. */
        { rid.bad_pw, "auth.login (wrong password)",
          { "auth.login", "anonymous", "anonymous", r_alice, "deny", "bad_password", NULL, 401 } },
        { rid.unknown, "auth.login (unknown user)",
          { "auth.login", "anonymous", "anonymous", NULL, "deny", "unknown_user", NULL, 401 } },
        { rid.login, "auth.login", { "auth.login", alice_p, "user", r_alice, "success", NULL, NULL, 200 } },
        { rid.create, "note.create", { "note.create", alice_p, "user", ANY, "success", NULL, NULL, 201 } },
        { rid.read, "note.read", { "note.read", alice_p, "user", ANY, "success", NULL, NULL, 200 } },
        { rid.list, "note.list", { "note.list", alice_p, "user", NULL, "success", NULL, NULL, 200 } },
        { rid.update, "note.update", { "note.update", alice_p, "user", ANY, "success", NULL, NULL, 200 } },
        { rid.bad_type, "input.rejected (media type)",
          { "input.rejected", alice_p, "user", NULL, "deny", "media_type", "Content-Type", 415 } },
        { rid.bad_body, "input.rejected (content)",
          { "input.rejected", alice_p, "user", NULL, "deny", "validation", "content", 400 } },
        { rid.deny403, "authz.deny (403)", { "authz.deny", alice_p, "user", NULL, "deny", "forbidden", NULL, 403 } },
        { rid.deny401, "authz.deny (401)",
          { "authz.deny", "anonymous", "anonymous", NULL, "deny", "no_token", NULL, 401 } },
        { rid.bad_token, "token.rejected",
          { "token.rejected", "anonymous", "anonymous", NULL, "deny", "invalid_token", NULL, 401 } },
        { rid.admin_login, "auth.login (admin)",
          { "auth.login", admin_p, "admin", r_admin, "success", NULL, NULL, 200 } },
        { rid.admin_create, "note.create (admin)",
          { "note.create", admin_p, "admin", ANY, "success", NULL, NULL, 201 } },
        { rid.admin_list, "note.list.admin",
          { "note.list.admin", admin_p, "admin", NULL, "success", NULL, NULL, 200 } },
        { rid.admin_read, "note.read.admin",
          { "note.read.admin", admin_p, "admin", ANY, "success", NULL, NULL, 200 } },
        { rid.del, "note.delete", { "note.delete", alice_p, "user", ANY, "success", NULL, NULL, 204 } },
        { rid.pw_bad, "auth.password_change (wrong password)",
          { "auth.password_change", alice_p, "user", r_alice, "deny", "bad_password", NULL, 403 } },
        { rid.pw, "auth.password_change",
          { "auth.password_change", alice_p, "user", r_alice, "success", NULL, NULL, 204 } },
        { rid.export, "user.export", { "user.export", alice_p, "user", r_alice, "success", NULL, NULL, 200 } },
        { rid.logout, "auth.logout", { "auth.logout", alice_p, "user", r_alice, "success", NULL, NULL, 204 } },
        { rid.login2, "auth.login (new password)",
          { "auth.login", alice_p, "user", r_alice, "success", NULL, NULL, 200 } },
        { rid.del_me, "user.delete", { "user.delete", alice_p, "user", r_alice, "success", NULL, NULL, 204 } },
    };
    char note_res[64];
    snprintf(note_res, sizeof(note_res), "note:%lld", (long long)id);
    size_t last_index = 0;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t index = 0;
        o = by_rid(&lg, cases[i].rid, &index);
        expect_line(o, &cases[i].w, cases[i].what);
        cr_assert_str_eq(fstr(o, "ip"), "127.0.0.1", "%s: ip", cases[i].what);
        cr_assert_gt(index, last_index, "%s: its line is out of request order", cases[i].what);
        last_index = index;
        const char *ev = fstr(o, "event");
        if (strcmp(ev, "note.read") == 0 || strcmp(ev, "note.update") == 0 || strcmp(ev, "note.delete") == 0 ||
            strcmp(ev, "note.read.admin") == 0 || (strcmp(ev, "note.create") == 0 && cases[i].rid == rid.create))
            cr_assert_str_eq(fstr(o, "resource"), note_res, "%s: resource", cases[i].what);
    }

    /* after the requests: the CLI's set-role and disable, then the stop, then rekey */
    size_t n = lg.n;
    cr_assert_geq(n, last_index + 5);
    expect_line(lg.l[last_index + 1].o,
                &(struct want){ "user.set_role", "cli", "cli", r_bob, "success", NULL, NULL, 0 }, "user.set_role");
    expect_line(lg.l[last_index + 2].o,
                &(struct want){ "user.disable", "cli", "cli", r_bob, "success", NULL, NULL, 0 }, "user.disable");
    expect_line(lg.l[n - 2].o, &(struct want){ "server.stop", "system", "system", NULL, "success", NULL, NULL, 0 },
                "server.stop");
    expect_line(lg.l[n - 1].o, &(struct want){ "key.rekey", "cli", "cli", NULL, "success", NULL, NULL, 0 },
                "key.rekey");
    uint64_t count = 0;
    cr_assert(fnum(lg.l[n - 1].o, "count", &count) && count == 1, "key.rekey count %llu, expected 1 note",
              (unsigned long long)count);
    cr_assert_eq(count_event(&lg, "server.start"), 1);
    cr_assert_eq(count_event(&lg, "server.stop"), 1);

    /* no username, no injection payload, anywhere in the trail */
    const char *never[] = { alice, admin, bob, SQLI, "1=1", "x'", "nobody-here", "a title", "new content" };
    for (size_t i = 0; i < sizeof(never) / sizeof(never[0]); i++) {
        char f[128] = "";
        size_t h = hits_in_audit_dir(never[i], true, f, sizeof(f));
        cr_assert_eq(h, 0, "\"%s\" appears %zu time(s) in the audit log (%s)", never[i], h, f);
    }
    /* the search itself finds what is there */
    cr_assert_gt(hits_in_audit_dir(alice_p, false, NULL, 0), 0);

    char *report = NULL;
    cr_assert_eq(verify(audit_dir(), &report), 0, "audit verify failed:\n%s", report);
    cr_assert(strstr(report, "OK:"), "%s", report);
    free(report);
    log_free(&lg);
    free(new_key);
    free(old_key);
    free(db);
    free(nb);
    free(pwb);
    free(tok);
    free(tok2);
    free(atok);
}

/* The client address is configurable: truncated to a /24, or left out. */
static void ip_mode(const char *mode, const char *want)
{
    prep();
    harness_setenv(&srv, "NOTES_AUDIT_IP", mode);
    harness_start(&srv);
    char rid[RID_MAX];
    req("GET", "/v1/notes", NULL, NULL, NULL, 401, rid, NULL);
    cr_assert_eq(harness_stop(&srv), 0);
    struct alog lg;
    log_load(audit_dir(), &lg);
    check_all_lines(&lg, 1, want);
    const cJSON *o = by_rid(&lg, rid, NULL);
    expect_line(o, &(struct want){ "authz.deny", "anonymous", "anonymous", NULL, "deny", "no_token", NULL, 401 },
                "authz.deny");
    if (want)
        cr_assert_str_eq(fstr(o, "ip"), want);
    else
        cr_assert_null(fstr(o, "ip"), "NOTES_AUDIT_IP=none still writes an address");
    cr_assert_eq(hits_in_audit_dir(want ? "127.0.0.1" : "127.0.0.", false, NULL, 0), 0,
                 "the full address is in the log");
    log_free(&lg);
}

Test(events, ip_truncated_to_24, .fini = finish)
{
    ip_mode("truncated", "127.0.0.0/24");
}

Test(events, ip_none, .fini = finish)
{
    ip_mode("none", NULL);
}

/* A run of refused requests is one ratelimit.block line, not one per
 * request. A run ends when a request gets through again (a token refilled,
 * at 1/s); the client sees the same runs, so the check does not depend on
 * how fast the requests go. */
Test(events, rate_limit_block_is_one_line_per_run, .init = prep, .fini = finish)
{
    enum { N = 14 };
    harness_setenv(&srv, "NOTES_RATE_LIMITS", "on");
    harness_setenv(&srv, "NOTES_RATE_IP", "1");
    harness_setenv(&srv, "NOTES_RATE_IP_BURST", "2");
    harness_start(&srv);
    struct hit h[N];
    blast("/healthz", NULL, N, h);
    size_t refused = 0, runs = 0;
    bool first_of_run[N];
    for (size_t i = 0; i < N; i++) {
        cr_assert(h[i].status == 200 || h[i].status == 429, "request %zu: %ld", i, h[i].status);
        first_of_run[i] = h[i].status == 429 && (i == 0 || h[i - 1].status != 429);
        refused += h[i].status == 429;
        runs += first_of_run[i];
        cr_assert(h[i].rid[0], "request %zu: no X-Request-Id", i);
    }
    cr_assert_eq(h[0].status, 200);
    cr_assert_eq(h[1].status, 200);
    cr_assert_geq(refused, 8, "only %zu of %d requests were refused", refused, N);
    cr_assert_lt(runs, refused, "no run of refusals to sum up");
    cr_assert_eq(harness_stop(&srv), 0);
    struct alog lg;
    log_load(audit_dir(), &lg);
    check_all_lines(&lg, 1, "127.0.0.1");
    cr_assert_eq(count_event(&lg, "ratelimit.block"), runs, "%zu refused requests in %zu run(s) gave %zu lines",
                 refused, runs, count_event(&lg, "ratelimit.block"));
    for (size_t i = 0; i < N; i++) {
        if (first_of_run[i]) {
            const cJSON *o = by_rid(&lg, h[i].rid, NULL);
            expect_line(o,
                        &(struct want){ "ratelimit.block", "anonymous", "anonymous", NULL, "deny", "rate_limited",
                                        ANY, 429 },
                        "ratelimit.block");
            continue;
        }
        for (size_t k = 0; k < lg.n; k++) {
            const char *r = fstr(lg.l[k].o, "request_id");
            cr_assert(!r || strcmp(r, h[i].rid) != 0, "request %zu (%ld) has a line of its own: %s", i, h[i].status,
                      lg.l[k].raw);
        }
    }
    log_free(&lg);
}

/* ======================================================================== */
/* 2. Rotation at the size cap                                               */
/* ======================================================================== */

static bool is_audit_record(const cJSON *o)
{
    return strncmp(fstr(o, "event"), "audit.", 6) == 0;
}

Test(rotation, files_rotate_before_the_cap_and_the_chain_verifies, .init = prep, .fini = finish)
{
    harness_setenv(&srv, "NOTES_AUDIT_MAX_BYTES", "4096");
    harness_start(&srv);
    blast("/v1/notes", NULL, 70, NULL);   /* 70 authz.deny lines, ~330 bytes each */
    cr_assert_eq(harness_stop(&srv), 0);

    struct alog lg;
    log_load(audit_dir(), &lg);
    check_all_lines(&lg, 1, "127.0.0.1");
    cr_assert_geq(lg.n_files, 5, "only %zu file(s) after ~25 KiB of lines", lg.n_files);
    cr_assert_str_eq(lg.names[lg.n_files - 1], "audit.log");
    cr_assert_eq(count_event(&lg, "authz.deny"), 70);
    cr_assert_eq(count_event(&lg, "audit.rotate"), lg.n_files - 1);

    struct stat st;
    cr_assert_eq(stat(audit_dir(), &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0700, "audit directory mode %o", st.st_mode & 0777);
    size_t li = 0;
    for (size_t f = 0; f < lg.n_files; f++) {
        char path[700];
        snprintf(path, sizeof(path), "%s/%s", audit_dir(), lg.names[f]);
        cr_assert_eq(stat(path, &st), 0);
        cr_assert_eq(st.st_mode & 0777, 0600, "%s: mode %o", lg.names[f], st.st_mode & 0777);
        size_t first = li;
        while (li < lg.n && lg.l[li].file == f)
            li++;
        cr_assert_gt(li, first, "%s holds no line", lg.names[f]);
        /* Under the cap; audit.h allows more only by the one event after the
         * file's own rotation records. */
        if (lg.sizes[f] > CAP_MIN) {
            for (size_t k = first; k + 1 < li; k++)
                cr_assert(is_audit_record(lg.l[k].o), "%s is %lld bytes, past the 4096-byte cap", lg.names[f],
                          (long long)lg.sizes[f]);
        }
        if (f > 0) {
            /* a file begins by naming the one before it */
            expect_line(lg.l[first].o,
                        &(struct want){ "audit.rotate", "system", "system", NULL, "success", NULL, NULL, 0 },
                        lg.names[f]);
            cr_assert_str_eq(fstr(lg.l[first].o, "file"), lg.names[f - 1], "%s's first line", lg.names[f]);
        }
        if (f + 1 < lg.n_files) {
            /* a rotated file's name carries its last seq ... */
            uint64_t last = 0;
            fnum(lg.l[li - 1].o, "seq", &last);
            char want[32];
            snprintf(want, sizeof(want), "%020llu", (unsigned long long)last);
            cr_assert(strncmp(lg.names[f] + 23, want, 20) == 0, "%s holds seq up to %llu", lg.names[f],
                      (unsigned long long)last);
            /* ... and it was full: the next event would have passed the cap */
            size_t k = li;
            while (k < lg.n && is_audit_record(lg.l[k].o))
                k++;
            cr_assert_lt(k, lg.n);
            cr_assert_gt((size_t)lg.sizes[f] + strlen(lg.l[k].raw) + 1, CAP_MIN, "%s (%lld bytes) rotated early",
                         lg.names[f], (long long)lg.sizes[f]);
        }
    }
    char *report = NULL;
    cr_assert_eq(verify(audit_dir(), &report), 0, "audit verify failed:\n%s", report);
    cr_assert(strstr(report, "OK:") && strstr(report, "chain intact"), "%s", report);
    free(report);
    log_free(&lg);
}

/* glibc's qsort() asks the kernel for the memory size (sysinfo) the first
 * time it sorts 60 or more of the trail's file entries; past the sandbox,
 * the seccomp filter killed the server for it when the 61st rotated file
 * came while it served. */
Test(rotation, more_than_sixty_rotated_files_keep_the_sandboxed_server_up, .init = prep, .fini = finish,
     .timeout = 90)
{
    harness_setenv(&srv, "NOTES_AUDIT_MAX_BYTES", "4096");
    harness_setenv(&srv, "NOTES_AUDIT_MAX_FILES", "100");
    harness_start(&srv);
    blast("/v1/notes", NULL, 900, NULL);   /* ~12 lines a file: ~75 files */
    int status = harness_stop(&srv);
    char *err = harness_stderr(&srv);
    cr_assert_eq(status, 0, "the server did not stop cleanly (%d):\n%s", status, err);
    free(err);

    struct alog lg;
    log_load(audit_dir(), &lg);
    cr_assert_gt(lg.n_files, 62, "only %zu file(s)", lg.n_files);
    cr_assert_eq(count_event(&lg, "authz.deny"), 900);
    log_free(&lg);
}

/* ======================================================================== */
/* 3. Retention                                                              */
/* ======================================================================== */

/* audit.retention_prune lines naming `name`; the last one in *out. */
static size_t prune_records(const struct alog *lg, const char *name, const cJSON **out)
{
    size_t n = 0;
    for (size_t i = 0; i < lg->n; i++)
        if (strcmp(fstr(lg->l[i].o, "event"), "audit.retention_prune") == 0 && fstr(lg->l[i].o, "file") &&
            strcmp(fstr(lg->l[i].o, "file"), name) == 0) {
            n++;
            *out = lg->l[i].o;
        }
    return n;
}

static bool exists_in_audit_dir(const char *name)
{
    char path[700];
    struct stat st;
    snprintf(path, sizeof(path), "%s/%s", audit_dir(), name);
    return stat(path, &st) == 0;
}

/* First and last seq of a rotated file, read before it goes. */
static void seq_range(const char *name, uint64_t *first, uint64_t *last)
{
    char path[700];
    snprintf(path, sizeof(path), "%s/%s", audit_dir(), name);
    size_t len;
    char *data = harness_read_file(path, &len);
    cr_assert(data && len > 0);
    cJSON *a = cJSON_ParseWithOpts(data, NULL, false);
    cr_assert(a);
    fnum(a, "seq", first);
    cJSON_Delete(a);
    data[len - 1] = 0;
    char *lastline = strrchr(data, '\n');
    cJSON *b = cJSON_Parse(lastline ? lastline + 1 : data);
    cr_assert(b);
    fnum(b, "seq", last);
    cJSON_Delete(b);
    free(data);
}

static void check_pruned(const struct alog *lg, const char *name, const char *why, uint64_t first, uint64_t last)
{
    const cJSON *o = NULL;
    cr_assert_eq(prune_records(lg, name, &o), 1, "no single audit.retention_prune record names %s", name);
    expect_line(o, &(struct want){ "audit.retention_prune", "system", "system", NULL, "success", why, NULL, 0 },
                name);
    uint64_t f = 0, l = 0;
    cr_assert(fnum(o, "first_seq", &f) && f == first, "%s: first_seq %llu, expected %llu", name,
              (unsigned long long)f, (unsigned long long)first);
    cr_assert(fnum(o, "last_seq", &l) && l == last, "%s: last_seq %llu, expected %llu", name, (unsigned long long)l,
              (unsigned long long)last);
    const char *h = fstr(o, "last_hash");
    cr_assert(h && all_hex(h, 64), "%s: last_hash", name);
    cr_assert(!exists_in_audit_dir(name), "%s was not deleted", name);
}

Test(retention, old_files_and_files_past_the_count_are_pruned_on_record, .init = prep, .fini = finish,
     .timeout = 60)
{
    harness_setenv(&srv, "NOTES_AUDIT_MAX_BYTES", "4096");
    harness_start(&srv);
    blast("/v1/notes", NULL, 80, NULL);
    cr_assert_eq(harness_stop(&srv), 0);
    char names[MAX_LOG_FILES][64];
    size_t n = chain_files(audit_dir(), names);
    cr_assert_geq(n, 7, "only %zu file(s)", n);
    size_t rotated = n - 1;

    /* the two oldest were last modified three days ago; the limit is one day */
    uint64_t first[2], last[2];
    time_t old = time(NULL) - 3 * 86400;
    for (size_t i = 0; i < 2; i++) {
        seq_range(names[i], &first[i], &last[i]);
        char path[700];
        snprintf(path, sizeof(path), "%s/%s", audit_dir(), names[i]);
        struct timespec ts[2] = { { old, 0 }, { old, 0 } };
        cr_assert_eq(utimensat(AT_FDCWD, path, ts, 0), 0, "utimensat %s: %s", path, strerror(errno));
    }
    harness_setenv(&srv, "NOTES_AUDIT_RETENTION_DAYS", "1");
    harness_start(&srv);   /* retention runs at start-up */
    cr_assert(!exists_in_audit_dir(names[0]) && !exists_in_audit_dir(names[1]), "backdated files are still there");
    for (size_t i = 2; i < rotated; i++)
        cr_assert(exists_in_audit_dir(names[i]), "%s (recent) was deleted", names[i]);
    cr_assert_eq(harness_stop(&srv), 0);

    struct alog lg;
    log_load(audit_dir(), &lg);
    check_all_lines(&lg, 0, "127.0.0.1");
    for (size_t i = 0; i < 2; i++)
        check_pruned(&lg, names[i], "retention", first[i], last[i]);
    /* written at start-up, before the server started serving */
    size_t prune_at = lg.n, start_at = lg.n;
    for (size_t i = 0; i < lg.n; i++) {
        const char *ev = fstr(lg.l[i].o, "event");
        if (strcmp(ev, "audit.retention_prune") == 0 && prune_at == lg.n)
            prune_at = i;
        if (strcmp(ev, "server.start") == 0)
            start_at = i;
    }
    cr_assert_lt(prune_at, start_at, "the prune records follow the second server.start");
    log_free(&lg);
    char *report = NULL;
    cr_assert_eq(verify(audit_dir(), &report), 0, "verify after retention:\n%s", report);
    cr_assert(strstr(report, "head pruned by retention") && strstr(report, "OK:"),
              "verify does not explain the pruned head:\n%s", report);
    free(report);

    /* at most NOTES_AUDIT_MAX_FILES files, audit.log included */
    n = chain_files(audit_dir(), names);
    cr_assert_gt(n, 3);
    size_t goes = n - 3;
    uint64_t f3[MAX_LOG_FILES], l3[MAX_LOG_FILES];
    for (size_t i = 0; i < goes; i++)
        seq_range(names[i], &f3[i], &l3[i]);
    harness_setenv(&srv, "NOTES_AUDIT_MAX_FILES", "3");
    harness_start(&srv);
    cr_assert_eq(harness_stop(&srv), 0);
    char now_names[MAX_LOG_FILES][64];
    cr_assert_eq(chain_files(audit_dir(), now_names), 3, "NOTES_AUDIT_MAX_FILES=3 kept more files");
    log_load(audit_dir(), &lg);
    check_all_lines(&lg, 0, "127.0.0.1");
    for (size_t i = 0; i < goes; i++)
        check_pruned(&lg, names[i], "max_files", f3[i], l3[i]);
    log_free(&lg);
    cr_assert_eq(verify(audit_dir(), &report), 0, "verify after max_files:\n%s", report);
    cr_assert(strstr(report, "head pruned by retention") && strstr(report, "OK:"), "%s", report);
    free(report);
}

/* A FIFO under a trail file's name: opening it for reading waited for a
 * writer that never comes, so start-up, the CLI and `notesd audit verify`
 * hung, and the running server's event loop stopped at its next rotation
 * (only SIGKILL ended it). Planted as the folder's owner (the server runs
 * as NOTES_USER), with a name that sorts before the real files. */
#define FIFO_NAME "audit-20000101T000000Z-00000000000000000001.log"

static void plant_fifo(const char *name)
{
    char path[700];
    struct stat st;
    cr_assert_eq(stat(audit_dir(), &st), 0);
    snprintf(path, sizeof(path), "%s/%s", audit_dir(), name);
    cr_assert_eq(mkfifo(path, 0600), 0, "mkfifo %s: %s", path, strerror(errno));
    cr_assert_eq(chown(path, st.st_uid, st.st_gid), 0, "chown %s: %s", path, strerror(errno));
}

Test(retention, a_fifo_planted_while_serving_does_not_stop_rotation, .init = prep, .fini = finish, .timeout = 90)
{
    harness_setenv(&srv, "NOTES_AUDIT_MAX_BYTES", "4096");
    harness_setenv(&srv, "NOTES_AUDIT_MAX_FILES", "100");
    harness_start(&srv);
    blast("/v1/notes", NULL, 2, NULL);
    plant_fifo(FIFO_NAME);
    blast("/v1/notes", NULL, 40, NULL);      /* three rotations or more */
    int status = harness_stop(&srv);
    char *err = harness_stderr(&srv);
    cr_assert_eq(status, 0, "the server did not stop cleanly (%d):\n%s", status, err);
    cr_assert(strstr(err, FIFO_NAME " is not a regular file") != NULL, "no warning about the FIFO:\n%s", err);
    free(err);
    char *report = NULL;
    cr_assert_eq(verify(audit_dir(), &report), 1, "%s", report);
    cr_assert(strstr(report, FIFO_NAME ": not a regular file") != NULL, "%s", report);
    free(report);
}

Test(retention, a_fifo_in_the_folder_neither_hangs_start_up_nor_verify, .init = prep, .fini = finish,
     .timeout = 90)
{
    harness_start(&srv);
    cr_assert_eq(harness_stop(&srv), 0);
    plant_fifo(FIFO_NAME);
    int status = harness_run(&srv, (const char *[]){ "serve", NULL });
    char *err = harness_stderr(&srv);
    cr_assert_neq(status, 0, "the server started with a FIFO in its audit folder:\n%s", err);
    cr_assert(strstr(err, FIFO_NAME " is not a regular file") != NULL, "%s", err);
    free(err);
    char *report = NULL;
    cr_assert_eq(verify(audit_dir(), &report), 1, "%s", report);
    cr_assert(strstr(report, FIFO_NAME ": not a regular file") != NULL, "%s", report);
    free(report);
    /* audit.log and audit.lock, which verify opens too */
    char path[700];
    snprintf(path, sizeof(path), "%s/%s", audit_dir(), FIFO_NAME);
    cr_assert_eq(unlink(path), 0);
    for (size_t i = 0; i < 2; i++) {
        const char *name = i == 0 ? "audit.log" : "audit.lock";
        snprintf(path, sizeof(path), "%s/%s", audit_dir(), name);
        char aside[720];
        snprintf(aside, sizeof(aside), "%s.aside", path);
        cr_assert_eq(rename(path, aside), 0);
        plant_fifo(name);
        cr_assert_eq(verify(audit_dir(), &report), 1, "%s", report);
        char want[40];
        snprintf(want, sizeof(want), "%s: not a regular file", name);
        cr_assert(strstr(report, want) != NULL, "%s", report);
        free(report);
        cr_assert_eq(unlink(path), 0);
        cr_assert_eq(rename(aside, path), 0);
    }
}

/* ======================================================================== */
/* 4. verify pinpoints tampering                                             */
/* ======================================================================== */

struct text {
    char **l;
    size_t n;
};

static void text_read(const char *path, struct text *t)
{
    size_t len;
    char *data = harness_read_file(path, &len);
    cr_assert(data, "read %s", path);
    t->l = NULL;
    t->n = 0;
    for (char *p = data; p < data + len;) {
        char *nl = memchr(p, '\n', (size_t)(data + len - p));
        size_t k = nl ? (size_t)(nl - p) : (size_t)(data + len - p);
        t->l = realloc(t->l, (t->n + 1) * sizeof(*t->l));
        t->l[t->n++] = strndup(p, k);
        p += k + 1;
    }
    free(data);
}

static void text_write(const char *path, const struct text *t, bool last_newline)
{
    FILE *f = fopen(path, "w");
    cr_assert(f, "write %s", path);
    for (size_t i = 0; i < t->n; i++)
        fprintf(f, "%s%s", t->l[i], i + 1 < t->n || last_newline ? "\n" : "");
    cr_assert_eq(fclose(f), 0);
}

static void text_free(struct text *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->l[i]);
    free(t->l);
}

/* A fresh copy of the audit directory; its path (caller frees). */
static char *copy_log(const char *tag)
{
    char *to = harness_fmt("%s/copy-%s", srv.dir, tag);
    cr_assert_eq(mkdir(to, 0700), 0, "mkdir %s", to);
    DIR *d = opendir(audit_dir());
    cr_assert(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char from[700], dst[700];
        snprintf(from, sizeof(from), "%s/%s", audit_dir(), e->d_name);
        snprintf(dst, sizeof(dst), "%s/%s", to, e->d_name);
        size_t len;
        char *data = harness_read_file(from, &len);
        cr_assert(data);
        int fd = open(dst, O_WRONLY | O_CREAT | O_EXCL, 0600);
        cr_assert_geq(fd, 0);
        cr_assert_eq(write(fd, data, len), (ssize_t)len);
        close(fd);
        free(data);
    }
    closedir(d);
    return to;
}

static void replace_once(char **line, const char *from, const char *to)
{
    char *p = strstr(*line, from);
    cr_assert(p, "\"%s\" not in line %s", from, *line);
    char *s = harness_fmt("%.*s%s%s", (int)(p - *line), *line, to, p + strlen(from));
    free(*line);
    *line = s;
}

enum tamper { T_EDIT, T_DELETE, T_SWAP, T_INSERT, T_EDIT_LAST, T_DROP_HEAD, T_TORN };

/* Tamper with a copy of the log; verify must exit 1 and say "FILE:LINE: kind". */
static void tampered(enum tamper how, const char *file, const char *kind)
{
    static const char *const tags[] = { "edit", "delete", "swap", "insert", "edit-last", "drop-head", "torn" };
    char *dir = copy_log(tags[how]);
    char *path = harness_fmt("%s/%s", dir, file);
    struct text t;
    text_read(path, &t);
    bool mid = how == T_EDIT || how == T_DELETE || how == T_SWAP || how == T_INSERT;
    cr_assert_geq(t.n, mid ? 7 : 1, "%s has too few lines", file);
    bool newline = true;
    char *tmp;
    size_t lineno = 5;
    switch (how) {
    case T_EDIT:       /* a deny made to look like a success */
        replace_once(&t.l[4], "\"result\":\"deny\"", "\"result\":\"success\"");
        break;
    case T_DELETE:
        free(t.l[4]);
        memmove(&t.l[4], &t.l[5], (t.n - 5) * sizeof(*t.l));
        t.n--;
        break;
    case T_SWAP:
        tmp = t.l[4];
        t.l[4] = t.l[5];
        t.l[5] = tmp;
        break;
    case T_INSERT:     /* a forged line after line 4, built from it */
        t.l = realloc(t.l, (t.n + 1) * sizeof(*t.l));
        memmove(&t.l[5], &t.l[4], (t.n - 4) * sizeof(*t.l));
        t.n++;
        t.l[4] = harness_strdup(t.l[3]);
        replace_once(&t.l[4], "\"event\":\"authz.deny\"", "\"event\":\"note.delete\"");
        break;
    case T_EDIT_LAST:
        lineno = t.n;
        replace_once(&t.l[t.n - 1], "\"event\":\"server.stop\"", "\"event\":\"server.stap\"");
        break;
    case T_DROP_HEAD:
        cr_assert_eq(unlink(path), 0);
        break;
    case T_TORN:       /* the last line cut in half: a crash during a write */
        lineno = t.n;
        t.l[t.n - 1][strlen(t.l[t.n - 1]) / 2] = 0;
        newline = false;
        break;
    }
    if (how != T_DROP_HEAD)
        text_write(path, &t, newline);
    char *expect = how == T_DROP_HEAD ? harness_strdup(kind) : harness_fmt("%s:%zu: %s", file, lineno, kind);
    char *report = NULL;
    int rc = verify(dir, &report);
    cr_assert_eq(rc, 1, "%s: verify exited %d:\n%s", tags[how], rc, report);
    cr_assert(strstr(report, expect), "%s: the report does not say \"%s\":\n%s", tags[how], expect, report);
    free(report);
    free(expect);
    text_free(&t);
    free(path);
    free(dir);
}

/* The server logs an anchor (the newest line's seq and SHA-256) once the
 * trail's first line of a run is written, hourly and at the end, so that
 * shipping its log off the machine is enough to find lines cut from the
 * trail's end later, which verify alone cannot. */
Test(verify, the_server_logs_anchors_that_find_lines_cut_later, .init = prep, .fini = finish, .timeout = 60)
{
    harness_start(&srv);
    blast("/v1/notes", NULL, 5, NULL);
    cr_assert_eq(harness_stop(&srv), 0);
    char *err = harness_stderr(&srv);
    const char *last = NULL;
    size_t n = 0;
    for (const char *p = strstr(err, "audit anchor "); p; p = strstr(p + 1, "audit anchor "))
        last = p, n++;
    cr_assert_geq(n, 2, "no anchors at start and at stop (%zu):\n%s", n, err);
    char anchor[128] = "";
    cr_assert_eq(sscanf(last + 13, "%127[0-9a-f:]", anchor), 1);
    free(err);
    const char *args[] = { "audit", "verify", "--anchor", anchor, NULL };
    char *report = NULL;
    cr_assert_eq(run_out(args, &report), 0, "the last anchor does not verify:\n%s", report);
    free(report);

    /* Cut the last line (server.stop): alone the chain still verifies. */
    char *path = harness_fmt("%s/audit.log", audit_dir());
    FILE *f = fopen(path, "r+");
    cr_assert_not_null(f);
    static char text[1 << 20];
    size_t len = fread(text, 1, sizeof(text) - 1, f);
    text[len] = '\0';
    cr_assert(len > 1 && text[len - 1] == '\n');
    text[len - 1] = '\0';
    char *cut = strrchr(text, '\n');
    cr_assert_not_null(cut);
    cr_assert_eq(ftruncate(fileno(f), (off_t)(cut + 1 - text)), 0);
    fclose(f);
    free(path);
    cr_assert_eq(verify(audit_dir(), &report), 0, "%s", report);
    free(report);
    cr_assert_eq(run_out(args, &report), 1, "the anchor did not find the cut:\n%s", report);
    cr_assert(strstr(report, "missing line(s) after"), "%s", report);
    free(report);
}

Test(verify, pinpoints_edited_deleted_reordered_and_inserted_lines, .init = prep, .fini = finish, .timeout = 60)
{
    harness_setenv(&srv, "NOTES_AUDIT_MAX_BYTES", "4096");
    harness_start(&srv);
    blast("/v1/notes", NULL, 30, NULL);
    cr_assert_eq(harness_stop(&srv), 0);
    char names[MAX_LOG_FILES][64];
    size_t n = chain_files(audit_dir(), names);
    cr_assert_geq(n, 3, "expected rotated files, found %zu file(s)", n);
    const char *mid = names[1];   /* a rotated file in the middle of the chain */

    char *report = NULL;
    cr_assert_eq(verify(audit_dir(), &report), 0, "clean log:\n%s", report);
    cr_assert(strstr(report, "OK:"), "%s", report);
    free(report);

    tampered(T_EDIT, mid, "changed");
    tampered(T_DELETE, mid, "missing line(s) before");
    tampered(T_SWAP, mid, "reordered");
    tampered(T_INSERT, mid, "inserted");
    tampered(T_EDIT_LAST, "audit.log", "changed");
    tampered(T_TORN, "audit.log", "torn last line");
    /* the oldest file removed without a retention record */
    tampered(T_DROP_HEAD, names[0], "missing line(s) before");

    /* the original is untouched and still verifies */
    cr_assert_eq(verify(audit_dir(), &report), 0, "%s", report);
    free(report);
}

/* ======================================================================== */
/* 5. Canaries: no secret, token, password, note text or username in a log   */
/* ======================================================================== */

static size_t b64_decode(const char *in, uint8_t *out, size_t cap)
{
    static const char std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    static const char url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    uint32_t acc = 0;
    int bits = 0;
    size_t n = 0;
    for (; *in && *in != '='; in++) {
        const char *p = strchr(std, *in);
        int v = p ? (int)(p - std) : -1;
        if (v < 0 && (p = strchr(url, *in)) != NULL)
            v = (int)(p - url);
        cr_assert_geq(v, 0, "not base64: %c", *in);
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            cr_assert_lt(n, cap);
            out[n++] = (uint8_t)(acc >> bits);
        }
    }
    return n;
}

#define CANARY_MAX 2048

struct canaries {
    const char *name[CANARY_MAX];
    char *value[CANARY_MAX];
    size_t n;
};

static void canary_add(struct canaries *c, const char *name, const char *value)
{
    cr_assert_lt(c->n, CANARY_MAX);
    c->name[c->n] = name;
    c->value[c->n++] = harness_strdup(value);
}

/* A secret: itself, every 12-character window of it (in both base64
 * alphabets), and every 8-byte window of what it encodes, in hex. A masked
 * prefix ("nt_ab...") is shorter than a window. */
static void canary_secret(struct canaries *c, const char *name, const char *value, bool has_prefix)
{
    const char *body = has_prefix ? value + 3 : value;   /* "nt_" */
    canary_add(c, name, value);
    uint8_t raw[128];
    size_t n = b64_decode(body, raw, sizeof(raw));
    char hex[257];
    for (size_t i = 0; i < n; i++)
        snprintf(hex + 2 * i, 3, "%02x", raw[i]);
    char w[20];
    for (size_t i = 0; i + 16 <= 2 * n; i += 2) {
        snprintf(w, sizeof(w), "%.16s", hex + i);
        canary_add(c, name, w);
    }
    size_t bl = strlen(body);
    for (size_t i = 0; i + 12 <= bl; i++) {
        snprintf(w, sizeof(w), "%.12s", body + i);
        canary_add(c, name, w);
        for (char *p = w; *p; p++)
            *p = *p == '-' ? '+' : *p == '_' ? '/' : *p == '+' ? '-' : *p == '/' ? '_' : *p;
        canary_add(c, name, w);
    }
}

Test(privacy, canaries_appear_in_no_log, .init = start_open, .fini = finish, .timeout = 120)
{
    char user[40], admin[40], pw[80], pw2[80], pw_bad[80], pw_admin[80], title[64], content[64], title2[64],
        content2[64], title3[64], forged[128], m1[40], m2[40];
    harness_marker(user, sizeof(user), "cnryuser");
    harness_marker(admin, sizeof(admin), "cnryadmin");
    harness_marker(m1, sizeof(m1), "Pw-");
    snprintf(pw, sizeof(pw), "%s-Cnry", m1);
    harness_marker(m1, sizeof(m1), "Pw2-");
    snprintf(pw2, sizeof(pw2), "%s-Cnry", m1);
    harness_marker(m1, sizeof(m1), "Bad-");
    snprintf(pw_bad, sizeof(pw_bad), "%s-Cnry", m1);
    harness_marker(m1, sizeof(m1), "Adm-");
    snprintf(pw_admin, sizeof(pw_admin), "%s-Cnry", m1);
    harness_marker(title, sizeof(title), "cnrytitle");
    harness_marker(content, sizeof(content), "cnrycontent");
    harness_marker(title2, sizeof(title2), "cnrytitletwo");
    harness_marker(content2, sizeof(content2), "cnrycontenttwo");
    harness_marker(title3, sizeof(title3), "cnrytitlethree");
    harness_marker(m1, sizeof(m1), "");
    harness_marker(m2, sizeof(m2), "");
    snprintf(forged, sizeof(forged), "nt_%s%s%.11s", m1, m2, m1);   /* 43 base64url characters */

    cr_assert_eq(cli_add_user(admin, "admin", pw_admin), 0);
    do_register(user, pw, 201, NULL);
    do_login(user, pw_bad, 401, NULL);
    char *tok = do_login(user, pw, 200, NULL);
    int64_t id = do_create(tok, title, content, NULL);
    char path[64];
    snprintf(path, sizeof(path), "/v1/notes/%lld", (long long)id);
    req("GET", path, tok, NULL, NULL, 200, NULL, NULL);
    req("GET", "/v1/notes", tok, NULL, NULL, 200, NULL, NULL);
    char *b = body2("title", title2, "content", content2);
    req("PUT", path, tok, b, NULL, 200, NULL, NULL);
    free(b);
    b = harness_fmt("{\"title\":\"%s\",\"content\":7}", title3);   /* refused: the body is not logged */
    req("POST", "/v1/notes", tok, b, NULL, 400, NULL, NULL);
    free(b);
    b = body2("username", user, "password", pw);   /* a body where none belongs */
    req("GET", "/v1/notes", tok, b, NULL, 400, NULL, NULL);
    free(b);
    req("GET", "/v1/notes", forged, NULL, NULL, 401, NULL, NULL);
    char *atok = do_login(admin, pw_admin, 200, NULL);
    char apath[80];
    snprintf(apath, sizeof(apath), "/v1/admin/notes/%lld", (long long)id);
    req("GET", apath, atok, NULL, NULL, 200, NULL, NULL);
    do_create(atok, title3, content2, NULL);
    b = body2("current_password", pw, "new_password", pw2);
    req("POST", "/v1/auth/password", tok, b, NULL, 204, NULL, NULL);
    free(b);
    req("GET", "/v1/me/export", tok, NULL, NULL, 200, NULL, NULL);
    req("POST", "/v1/auth/logout", tok, NULL, NULL, 204, NULL, NULL);
    req("GET", "/v1/notes", tok, NULL, NULL, 401, NULL, NULL);   /* a revoked token */
    char *tok2 = do_login(user, pw2, 200, NULL);
    b = body2("password", pw2, NULL, NULL);
    req("DELETE", "/v1/me", tok2, b, NULL, 204, NULL, NULL);
    free(b);
    const char *disable[] = { "user", "disable", admin, NULL };
    cr_assert_eq(harness_run(&srv, disable), 0);
    cr_assert_eq(harness_stop(&srv), 0);
    char *new_key = fresh_key("NOTES_DATA_KEY");
    char *old_key = harness_strdup(harness_getenv(&srv, "NOTES_DATA_KEY"));
    harness_setenv(&srv, "NOTES_DATA_KEY", new_key);
    harness_setenv(&srv, "NOTES_DATA_KEY_PREVIOUS", old_key);
    const char *rekey[] = { "rekey", NULL };
    cr_assert_eq(harness_run(&srv, rekey), 0);

    static struct canaries c;
    c.n = 0;
    canary_add(&c, "username", user);
    canary_add(&c, "admin username", admin);
    canary_add(&c, "password", pw);
    canary_add(&c, "new password", pw2);
    canary_add(&c, "wrong password", pw_bad);
    canary_add(&c, "admin password", pw_admin);
    canary_add(&c, "title", title);
    canary_add(&c, "content", content);
    canary_add(&c, "new title", title2);
    canary_add(&c, "new content", content2);
    canary_add(&c, "refused title", title3);
    canary_secret(&c, "token", tok, true);
    canary_secret(&c, "second token", tok2, true);
    canary_secret(&c, "admin token", atok, true);
    canary_secret(&c, "forged token", forged, true);
    canary_secret(&c, "NOTES_DATA_KEY (old)", old_key, false);
    canary_secret(&c, "NOTES_DATA_KEY (new)", new_key, false);
    canary_secret(&c, "NOTES_TOKEN_KEY", harness_getenv(&srv, "NOTES_TOKEN_KEY"), false);
    canary_secret(&c, "NOTES_AUDIT_KEY", harness_getenv(&srv, "NOTES_AUDIT_KEY"), false);

    size_t err_len;
    char *err = read_stderr(&err_len);
    cr_assert_gt(err_len, 0, "no stderr captured");
    struct alog lg;
    log_load(audit_dir(), &lg);
    check_all_lines(&lg, 1, "127.0.0.1");
    cr_assert_gt(lg.n, 20, "the session left only %zu lines", lg.n);
    cr_assert_eq(count_event(&lg, "user.delete"), 1);
    /* the search finds what is there (so zero hits mean something) */
    cr_assert_gt(hits_in_audit_dir("note.create", false, NULL, 0), 0);
    cr_assert_gt(count_hits(err, err_len, "notesd", false), 0);
    for (size_t i = 0; i < c.n; i++) {
        char where[128] = "";
        bool icase = strstr(c.name[i], "username") != NULL;
        size_t in_log = hits_in_audit_dir(c.value[i], icase, where, sizeof(where));
        size_t in_err = count_hits(err, err_len, c.value[i], icase);
        cr_assert_eq(in_log, 0, "the %s (\"%s\") appears in the audit log (%s)", c.name[i], c.value[i], where);
        cr_assert_eq(in_err, 0, "the %s (\"%s\") appears on stderr", c.name[i], c.value[i]);
    }
    for (size_t i = 0; i < c.n; i++)
        free(c.value[i]);
    log_free(&lg);
    free(err);
    free(new_key);
    free(old_key);
    free(tok);
    free(tok2);
    free(atok);
}

/* ======================================================================== */
/* 6. Full disk: changes refused with 503, nothing changed, one report        */
/* ======================================================================== */

/* One value from the server's database (read-only connection), as text. */
static char *db_text(const char *sql)
{
    const char *path = harness_getenv(&srv, "NOTES_DB");
    sqlite3 *db = NULL;
    cr_assert_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    sqlite3_stmt *st = NULL;
    cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK, "%s: %s", sql, sqlite3_errmsg(db));
    int rc = sqlite3_step(st);
    cr_assert(rc == SQLITE_ROW, "%s: %s", sql, sqlite3_errmsg(db));
    const unsigned char *t = sqlite3_column_text(st, 0);
    char *out = harness_strdup(t ? (const char *)t : "(null)");
    sqlite3_finalize(st);
    sqlite3_close(db);
    return out;
}

static char *db_snapshot(void)
{
    return db_text("SELECT (SELECT count(*) FROM users) || '|' || (SELECT count(*) FROM sessions) || '|' ||"
                   " (SELECT group_concat(x, ';') FROM (SELECT id || ':' || hex(title) || ':' || hex(content) ||"
                   " ':' || updated_at AS x FROM notes ORDER BY id)) || '|' ||"
                   " (SELECT group_concat(key_id || ':' || encryptions) FROM key_usage)");
}

static long max_other_file(const char *dir, const char *skip)
{
    DIR *d = opendir(dir);
    cr_assert(d);
    long max = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || strcmp(e->d_name, skip) == 0)
            continue;
        char path[1024];
        struct stat st;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > max)
            max = (long)st.st_size;
    }
    closedir(d);
    return max;
}

/* One of the server's id lines in /proc ("Uid:" or "Gid:"): the real id. */
static long proc_id(pid_t pid, const char *which)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f);
    long id = -1;
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, which, strlen(which)) == 0)
            id = strtol(line + strlen(which), NULL, 10);
    fclose(f);
    cr_assert_geq(id, 0, "no %s line", which);
    return id;
}

/* Lift the server's file-size limit to its hard limit, as if space were
 * freed. A server started as root has dropped to NOTES_USER (and this test
 * may lack CAP_SYS_RESOURCE, as in a container): a child with the server's
 * ids may change its limits, as prlimit(2) allows. */
static void raise_fsize_limit(pid_t pid)
{
    uid_t uid = (uid_t)proc_id(pid, "Uid:");
    gid_t gid = (gid_t)proc_id(pid, "Gid:");
    pid_t child = fork();
    cr_assert_geq(child, 0);
    if (child == 0) {
        if (geteuid() != uid && (setgroups(0, NULL) != 0 || setresgid(gid, gid, gid) != 0 ||
                                 setresuid(uid, uid, uid) != 0))
            _exit(2);
        struct rlimit rl;
        if (prlimit(pid, RLIMIT_FSIZE, NULL, &rl) != 0)
            _exit(3);
        rl.rlim_cur = rl.rlim_max;
        _exit(prlimit(pid, RLIMIT_FSIZE, &rl, NULL) == 0 ? 0 : 4);
    }
    int st = 0;
    cr_assert_eq(waitpid(child, &st, 0), child);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "could not raise the server's file-size limit (%d)", st);
}

Test(disk_full, changes_get_503_nothing_changes_reads_go_on_and_it_recovers, .init = start_open, .fini = finish,
     .timeout = 60)
{
    char user[40], rid[RID_MAX];
    harness_marker(user, sizeof(user), "full");
    do_register(user, PW_ALICE, 201, NULL);
    char *tok = do_login(user, PW_ALICE, 200, NULL);
    int64_t id = do_create(tok, "kept title", "kept content", NULL);
    /* grow audit.log past every other file the server writes */
    blast("/v1/notes", tok, 300, NULL);
    cr_assert_eq(harness_stop(&srv), 0);

    char log_path[700], data_dir[700];
    snprintf(log_path, sizeof(log_path), "%s/audit.log", audit_dir());
    snprintf(data_dir, sizeof(data_dir), "%s/data", srv.dir);
    long a = (long)file_size(log_path);
    size_t len;
    char *text = harness_read_file(log_path, &len);
    cr_assert(text);
    long start_line = (long)(strchr(text, '\n') - text) + 1;   /* server.start, seq 1 */
    free(text);
    /* Room for the next server.start (its seq has a few more digits) and
     * not for one more line: the first request's record hits the limit. */
    long limit = a + start_line + 24;
    long other = max_other_file(data_dir, "audit");
    cr_assert_lt(other + 16384, limit, "the database (%ld bytes) is too close to the limit %ld", other, limit);
    char *before = db_snapshot();

    snprintf(srv.stderr_path, sizeof(srv.stderr_path), "%s/stderr-full.log", srv.dir);
    srv.fsize_limit = limit;
    harness_start(&srv);
    srv.fsize_limit = 0;
    long started = (long)file_size(log_path);
    cr_assert_gt(started, a, "server.start was not written");

    char path[64];
    snprintf(path, sizeof(path), "/v1/notes/%lld", (long long)id);
    char *nb = body2("title", "changed title", "content", "changed content");
    struct response r;
    req("POST", "/v1/notes", tok, nb, NULL, 503, NULL, &r);
    char *retry = response_header(&r, "Retry-After");
    cr_assert(retry, "503 without Retry-After");
    free(retry);
    response_free(&r);
    req("PUT", path, tok, nb, NULL, 503, NULL, NULL);
    req("DELETE", path, tok, NULL, NULL, 503, NULL, NULL);
    req("GET", "/v1/me/export", tok, NULL, NULL, 503, NULL, NULL);   /* an export is refused too */
    req("POST", "/v1/auth/logout", tok, NULL, NULL, 503, NULL, NULL);
    /* reads go on, and show nothing changed */
    req("GET", path, tok, NULL, NULL, 200, NULL, &r);
    cJSON *j = json_of(&r);
    cr_assert_str_eq(cJSON_GetObjectItemCaseSensitive(j, "title")->valuestring, "kept title");
    cr_assert_str_eq(cJSON_GetObjectItemCaseSensitive(j, "content")->valuestring, "kept content");
    cJSON_Delete(j);
    response_free(&r);
    req("GET", "/v1/notes", tok, NULL, NULL, 200, NULL, &r);
    j = json_of(&r);
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j, "notes")), 1);
    cJSON_Delete(j);
    response_free(&r);
    char *during = db_snapshot();
    cr_assert_str_eq(during, before, "the database changed while the audit log could not be written");
    /* no partial line was left behind */
    cr_assert_eq((long)file_size(log_path), started, "audit.log changed size while full");
    size_t err_len;
    char *err = read_stderr(&err_len);
    cr_assert_eq(count_hits(err, err_len, "cannot record events", false), 1,
                 "the condition is not reported exactly once:\n%s", err);
    free(err);

    /* room again (the limit raised, as if space were freed): the next change
     * goes through and the trail records what it lost */
    raise_fsize_limit(srv.pid);
    int64_t id2 = do_create(tok, "after", "recovery", rid);
    cr_assert_gt(id2, id);
    err = read_stderr(&err_len);
    cr_assert_eq(count_hits(err, err_len, "can be written again", false), 1, "no single recovery report:\n%s", err);
    cr_assert_eq(count_hits(err, err_len, "cannot record events", false), 1, "%s", err);
    free(err);
    cr_assert_eq(harness_stop(&srv), 0);

    struct alog lg;
    log_load(audit_dir(), &lg);
    check_all_lines(&lg, 1, "127.0.0.1");
    size_t at = 0;
    const cJSON *o = by_rid(&lg, rid, &at);
    expect_line(o, &(struct want){ "note.create", ANY, "user", ANY, "success", NULL, NULL, 201 }, "note.create");
    const cJSON *rec = lg.l[at - 1].o;
    expect_line(rec, &(struct want){ "audit.recovered", "system", "system", NULL, "error", "write_failed", NULL, 0 },
                "audit.recovered");
    uint64_t lost = 0;
    /* five refused changes (each tried to record its refusal) and two reads */
    cr_assert(fnum(rec, "count", &lost) && lost >= 7,
              "audit.recovered counts %llu lost events (five refusals and two reads)", (unsigned long long)lost);
    expect_line(lg.l[at - 2].o, &(struct want){ "server.start", "system", "system", NULL, "success", NULL, ANY, 0 },
                "server.start under the limit");
    log_free(&lg);
    char *report = NULL;
    cr_assert_eq(verify(audit_dir(), &report), 0, "%s", report);
    free(report);
    free(before);
    free(during);
    free(nb);
    free(tok);
}

/* Take the database's write lock as another writer would. The server's
 * own writers (a chore's session purge, say) may hold it for a moment:
 * wait for them rather than fail. */
static sqlite3 *hold_write_lock(void)
{
    sqlite3 *db = NULL;
    cr_assert_eq(sqlite3_open_v2(harness_getenv(&srv, "NOTES_DB"), &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    cr_assert_eq(sqlite3_busy_timeout(db, 10000), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK, "%s", sqlite3_errmsg(db));
    return db;
}

/* The guard's write transaction could not begin (another writer held the
 * database past the busy timeout): the handler must not run at all. It
 * used to run without a transaction, so its statements committed one by
 * one once the lock was free, while the client was told 503 and "nothing
 * changed". Here the other writer holds the lock throughout: the handler's
 * own statement then fails too, which shows as its audit line. */
Test(guard, a_busy_store_refuses_the_change_before_the_handler_runs, .init = start_open, .fini = finish,
     .timeout = 60)
{
    char user[40], rid[RID_MAX];
    harness_marker(user, sizeof(user), "busy");
    do_register(user, PW_ALICE, 201, NULL);
    char *tok = do_login(user, PW_ALICE, 200, NULL);
    int64_t id = do_create(tok, "kept title", "kept content", NULL);
    char path[64];
    snprintf(path, sizeof(path), "/v1/notes/%lld", (long long)id);

    sqlite3 *db = hold_write_lock();
    struct response r;
    req("DELETE", path, tok, NULL, NULL, 503, rid, &r);
    char *retry = response_header(&r, "Retry-After");
    cr_assert(retry, "503 without Retry-After");
    free(retry);
    response_free(&r);
    cr_assert_eq(sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);

    req("GET", path, tok, NULL, NULL, 200, NULL, NULL);
    struct alog lg;
    log_load(audit_dir(), &lg);
    expect_line(by_rid(&lg, rid, NULL), &(struct want){ .event = "request.refused", .actor = ANY, .role = "user",
                                                        .resource = ANY, .result = "error", .reason = "store_busy",
                                                        .status = 503 }, "busy DELETE");
    cr_assert_eq(count_event(&lg, "note.delete"), 0, "the DELETE handler ran without the guard's transaction");
    log_free(&lg);
    free(tok);
}

/* ---- password hashing is bounded ------------------------------------------ */

/* Handler jobs hash passwords on the thread pool: at most two at once, so a
 * login storm can neither take every pool thread (a held write would wait
 * behind argon2 for its audit sync) nor more than two argon2 buffers of
 * memory. Argon2 is made slow (t=40) and four unknown-user logins are sent
 * at once; the server's RSS is sampled until they are answered, and a note
 * is created while they hash. Once answered, the buffers are given back. */
#define STORM_LOGINS 4
#define ARGON2_M_KIB 19456

static long rss_kib(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f);
    long kib = -1;
    while (kib < 0 && fgets(line, sizeof(line), f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            kib = strtol(line + 6, NULL, 10);
    fclose(f);
    return kib;
}

/* A login on a thread of its own: its status and request id once
 * answered, and `finished` (if any) counted up then. */
struct bg_login {
    pthread_t thread;
    char name[40];
    const char *pw;
    long status;
    char rid[RID_MAX];
    atomic_int *finished;
};

static void *bg_login_run(void *arg)
{
    struct bg_login *l = arg;
    char *body = body2("username", l->name, "password", l->pw);
    const char *hdrs[] = { "Expect:", "Content-Type: application/json", NULL };
    struct request_opts o = { .method = "POST", .body = body, .headers = hdrs, .timeout_ms = REQ_TIMEOUT_MS };
    struct response r;
    harness_request(&srv, "/v1/auth/login", &o, &r);
    l->status = r.curl_code == CURLE_OK ? r.status : -1;
    char *id = response_header(&r, "X-Request-Id");
    snprintf(l->rid, sizeof(l->rid), "%s", id ? id : "");
    free(id);
    response_free(&r);
    free(body);
    if (l->finished)
        atomic_fetch_add(l->finished, 1);
    return NULL;
}

/* Start a login of `name` (NULL: a new unknown name) with `pw` (NULL: a
 * wrong one). */
static void bg_login_start(struct bg_login *l, const char *name, const char *pw, atomic_int *finished)
{
    *l = (struct bg_login){ .pw = pw ? pw : "Not-the-password-0", .finished = finished };
    if (name)
        snprintf(l->name, sizeof(l->name), "%s", name);
    else
        harness_marker(l->name, sizeof(l->name), "nobody_");
    cr_assert_eq(pthread_create(&l->thread, NULL, bg_login_run, l), 0);
}

Test(jobs, a_login_storm_hashes_two_passwords_at_a_time, .init = prep, .fini = finish, .timeout = 120)
{
    harness_setenv(&srv, "NOTES_REGISTRATION", "open");
    harness_setenv(&srv, "NOTES_ARGON2_TIME", "40");
    harness_setenv(&srv, "NOTES_AUDIT_SYNC", "always");
    harness_start(&srv);
    char name[40];
    harness_marker(name, sizeof(name), "poster_");
    do_register(name, PW_ALICE, 201, NULL);
    char *token = do_login(name, PW_ALICE, 200, NULL);
    long base = rss_kib(srv.pid);
    cr_assert_gt(base, 0);

    atomic_int finished = 0;
    struct bg_login logins[STORM_LOGINS];
    for (size_t i = 0; i < STORM_LOGINS; i++)
        bg_login_start(&logins[i], NULL, NULL, &finished);
    /* Readiness: argon2 buffers in the server's memory. Then sample the
     * peak until every login is answered (bounded: the test's timeout). */
    long peak = base;
    bool posted = false;
    while (atomic_load(&finished) < STORM_LOGINS) {
        long now = rss_kib(srv.pid);
        peak = now > peak ? now : peak;
        if (!posted && now >= base + ARGON2_M_KIB) {
            do_create(token, "during the storm", "written while passwords hash", NULL);
            posted = true;
        }
        nanosleep(&(struct timespec){ 0, 1000000 }, NULL);
    }
    for (size_t i = 0; i < STORM_LOGINS; i++)
        pthread_join(logins[i].thread, NULL);
    for (size_t i = 0; i < STORM_LOGINS; i++)
        cr_assert_eq(logins[i].status, 401, "login %zu: %ld", i, logins[i].status);
    cr_assert(posted, "no password was ever hashed (peak RSS %ld KiB, base %ld)", peak, base);
    cr_assert_lt(peak, base + 3 * ARGON2_M_KIB, "more than two passwords hashed at once: RSS %ld KiB over %ld",
                 peak - base, base);
    long after = rss_kib(srv.pid);
    cr_assert_lt(after, base + ARGON2_M_KIB / 2, "the hash buffers stayed resident: RSS %ld KiB over %ld",
                 after - base, base);
    free(token);
}

/* A server for the password-job races: open registration, argon2 at
 * `passes` passes (slow enough to overlap), and the debug line each job
 * start writes, which the tests wait for. */
static void start_for_jobs(const char *passes)
{
    harness_setenv(&srv, "NOTES_REGISTRATION", "open");
    harness_setenv(&srv, "NOTES_ARGON2_TIME", passes);
    harness_setenv(&srv, "NOTES_LOG_LEVEL", "debug");
    harness_start(&srv);
}

/* What the server logs once it has timed checks under stored argon2
 * settings that cost more than the current ones (app_passwords.c). */
#define TIMED_LINE "stored password hashes under other argon2id settings cost up to"

/* Restart the server at `passes`, lower than the hashes it stores, and wait
 * until its one-time timing of them is done: that job hashes on the pool
 * too, and would skew the races that order jobs by cost. */
static void restart_lower(const char *passes)
{
    size_t timed = harness_log_count(&srv, TIMED_LINE);
    cr_assert_eq(harness_stop(&srv), 0);
    harness_setenv(&srv, "NOTES_ARGON2_TIME", passes);
    harness_start(&srv);
    harness_await_log(&srv, TIMED_LINE, timed + 1, 60);
}

/* Register a new account (name from `prefix`, password PW_ALICE) under the
 * running server's argon2 time, then restart it at a lower `passes`: the
 * account's hash was made under costlier settings than the current ones. */
static void register_then_restart(char *name, size_t cap, const char *prefix, const char *passes)
{
    harness_marker(name, cap, prefix);
    do_register(name, PW_ALICE, 201, NULL);
    restart_lower(passes);
}

/* ---- a login that overlaps a password change ------------------------------- */

/* A password change (`from` to `to`) or, with `to` NULL, an erasure
 * (DELETE /v1/me confirmed with `from`), sent with `token`. */
struct bg_change {
    pthread_t thread;
    const char *token, *from, *to;
    long status;
};

static void *bg_change_run(void *arg)
{
    struct bg_change *c = arg;
    char *body = c->to ? body2("current_password", c->from, "new_password", c->to) : body2("password", c->from, NULL, NULL);
    char auth[256];
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", c->token);
    const char *hdrs[] = { "Expect:", "Content-Type: application/json", auth, NULL };
    struct request_opts o = { .method = c->to ? "POST" : "DELETE", .body = body, .headers = hdrs,
                              .timeout_ms = REQ_TIMEOUT_MS };
    struct response r;
    harness_request(&srv, c->to ? "/v1/auth/password" : "/v1/me", &o, &r);
    c->status = r.curl_code == CURLE_OK ? r.status : -1;
    response_free(&r);
    free(body);
    return NULL;
}

static size_t log_count(const char *what)
{
    return harness_log_count(&srv, what);
}

/* Handler jobs the server has started on its pool so far. */
static size_t jobs_started(void)
{
    return log_count("handler job started");
}

/* Handler jobs that have reached the server, started or queued (a queued
 * one that starts later counts again). */
static size_t jobs_arrived(void)
{
    return jobs_started() + log_count("handler job queued");
}

/* Wait (bounded) until count() reaches `want`. */
static void await_count(size_t (*count)(void), size_t want, long secs, const char *what)
{
    time_t until = time(NULL) + secs;
    while (count() < want) {
        cr_assert(time(NULL) < until, "%s never happened", what);
        nanosleep(&(struct timespec){ 0, 1000000 }, NULL);
    }
}

/* Wait (bounded) until the server has started `want` handler jobs in all. */
static void await_jobs(size_t want, long secs, const char *what)
{
    await_count(jobs_started, want, secs, what);
}

/* Does a thread of `pid` run at nice `nice`? (/proc/PID/task/TID/stat,
 * field 19, after the command name's closing parenthesis.) */
static bool a_thread_at_nice(pid_t pid, long nice)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
    DIR *d = opendir(path);
    cr_assert_not_null(d);
    bool found = false;
    for (struct dirent *e; !found && (e = readdir(d));) {
        char stat[320], line[512];
        if (e->d_name[0] == '.')
            continue;
        snprintf(stat, sizeof(stat), "/proc/%d/task/%s/stat", (int)pid, e->d_name);
        FILE *f = fopen(stat, "r");
        if (!f)
            continue;                     /* the thread ended meanwhile */
        size_t n = fread(line, 1, sizeof(line) - 1, f);
        fclose(f);
        line[n] = '\0';
        char *p = strrchr(line, ')');
        for (int field = 2; p && field < 19; field++)
            p = strchr(p + 1, ' ');
        found = p && strtol(p + 1, NULL, 10) == nice;
    }
    closedir(d);
    return found;
}

/* argon2id runs at nice 10 (crypto_password.c) when the server runs at 0, so
 * a login storm leaves the CPU to the event loop; seccomp allows setpriority
 * on the calling thread only. */
Test(jobs, passwords_hash_on_a_thread_at_nice_10, .init = prep, .fini = finish, .timeout = 120)
{
    harness_setenv(&srv, "NOTES_ARGON2_TIME", "40");
    harness_setenv(&srv, "NOTES_LOG_LEVEL", "debug");
    errno = 0;
    int base = getpriority(PRIO_PROCESS, 0);      /* the server inherits ours */
    if (errno == 0 && base >= 10)
        cr_skip_test("this test runs at nice %d already: there is nothing to lower", base);
    harness_start(&srv);
    cr_assert(!a_thread_at_nice(srv.pid, 10), "a thread ran at nice 10 before any password job");
    /* A pool thread keeps the nice value it set (and libuv keeps its
     * threads), so it is still there once the login is answered. */
    struct bg_login l;
    bg_login_start(&l, NULL, NULL, NULL);
    pthread_join(l.thread, NULL);
    cr_assert_eq(l.status, 401);
    cr_assert(a_thread_at_nice(srv.pid, 10), "no thread of the server runs at nice 10");
}

/* Ten steps below the server's own priority, not an absolute nice 10: a
 * unit that starts the server at Nice=-5 must not leave its password jobs
 * at nice 10, ~1/1000 of the loop's weight instead of ~1/10, where a busy
 * loop starves every login (a bench run at nice -19 saw none in 30 s).
 * Raising a priority needs root: the test's own priority is raised for the
 * start only, which the server inherits, then put back. */
Test(jobs, passwords_hash_ten_steps_below_the_servers_own_priority, .init = prep, .fini = finish,
     .timeout = 120)
{
    errno = 0;
    int base = getpriority(PRIO_PROCESS, 0);
    cr_assert_eq(errno, 0);
    if (setpriority(PRIO_PROCESS, 0, -5) != 0)
        cr_skip_test("cannot raise this test's priority to nice -5 (not root)");
    harness_start(&srv);
    cr_assert_eq(setpriority(PRIO_PROCESS, 0, base), 0);
    struct bg_login l;
    bg_login_start(&l, NULL, NULL, NULL);
    pthread_join(l.thread, NULL);
    cr_assert_eq(l.status, 401);
    cr_assert(a_thread_at_nice(srv.pid, 5), "no thread of a server started at nice -5 runs at nice 5");
    cr_assert(!a_thread_at_nice(srv.pid, 10), "a thread of a server started at nice -5 runs at nice 10");
}

/* A login checks the hash it read when it arrived; a password change may
 * commit while that check runs. The login must then fail: it used to make
 * a session for the old password after the change had revoked every other
 * one (and, had the hash needed upgrading, write the old password back).
 * The login must be hashed only after the victim's change has committed,
 * or 200 is the right answer. So both hashing slots are filled first (the
 * server's debug log says when each job started): one by another account's
 * change whose stored hash was made at 4x the cost, then by the victim's
 * change. The login, read at once, queues for the slot the victim's change
 * frees, and the change commits on the loop before that slot's next job can
 * answer. (With two changes of equal cost, the other one could free the
 * slot first and the login outrun the victim's change: CI saw a 200.) */
Test(jobs, a_login_with_a_password_changed_meanwhile_fails, .init = prep, .fini = finish, .timeout = 120)
{
    start_for_jobs("48");
    char victim[40], other[40];
    harness_marker(other, sizeof(other), "other_");
    do_register(other, PW_ALICE, 201, NULL);
    char *to = do_login(other, PW_ALICE, 200, NULL);   /* now: after the restart it would rehash at 12 */
    restart_lower("12");
    harness_marker(victim, sizeof(victim), "victim_");
    do_register(victim, PW_ALICE, 201, NULL);
    char *tv = do_login(victim, PW_ALICE, 200, NULL);
    size_t started = jobs_started();

    struct bg_change ch[2] = { { .token = to, .from = PW_ALICE, .to = PW_ALICE2 },
                               { .token = tv, .from = PW_ALICE, .to = PW_ALICE2 } };
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(pthread_create(&ch[i].thread, NULL, bg_change_run, &ch[i]), 0);
        await_jobs(started + 1 + (size_t)i, 60, i ? "the victim's password change" : "the slow password change");
    }
    char *stale = do_login(victim, PW_ALICE, 401, NULL);   /* the old password, read before the change */
    free(stale);
    for (int i = 0; i < 2; i++) {
        pthread_join(ch[i].thread, NULL);
        cr_assert_eq(ch[i].status, 204, "password change %d: %ld", i, ch[i].status);
    }
    char *fresh = do_login(victim, PW_ALICE2, 200, NULL);
    free(fresh);
    free(tv);
    free(to);
}

/* A failed login of a made-up name is padded to what a check of the
 * costliest stored hash takes (here an account hashed at t=24 under
 * settings now at t=2: ~12x a current check). It must hold its hashing
 * slot through the padding, as a failed login of such an account holds its
 * slot through its check: otherwise the moment a slot comes free tells the
 * two apart (two failed logins of one name fill both slots, and a correct
 * login of one's own account is answered after one check when the name is
 * unknown, after ~12 when it exists). A review of a change that freed the
 * slot before the padding found this. Both slots are filled by failed
 * logins of made-up names (readiness: both started); a correct login must
 * then be answered only after one of them. */
Test(jobs, a_padded_failed_login_holds_its_slot_as_a_costlier_check_would, .init = prep, .fini = finish,
     .timeout = 120)
{
    start_for_jobs("24");
    char dear[40], quick[40];
    register_then_restart(dear, sizeof(dear), "dear_", "2");
    harness_marker(quick, sizeof(quick), "quick_");
    do_register(quick, PW_ALICE, 201, NULL);

    atomic_int finished = 0;
    size_t started = jobs_started();
    struct bg_login fail[2];
    for (int i = 0; i < 2; i++)
        bg_login_start(&fail[i], NULL, NULL, &finished);
    await_jobs(started + 2, 60, "the two failed logins");
    char *token = do_login(quick, PW_ALICE, 200, NULL);
    int answered = atomic_load(&finished);
    for (int i = 0; i < 2; i++) {
        pthread_join(fail[i].thread, NULL);
        cr_assert_eq(fail[i].status, 401, "failed login %d: %ld", i, fail[i].status);
    }
    cr_assert_geq(answered, 1, "a correct login was answered while both failed logins still waited for their "
                  "padding: their slots came free before it");
    free(token);
}

/* Two password changes of one account, sent with two of its tokens while
 * both hash at once: the first to finish changes the password and revokes
 * the other session; the second checked a password that is no longer the
 * current one, with a token that no longer exists, and must change
 * nothing. Both used to succeed: the later one took the account back. */
Test(jobs, of_two_overlapping_password_changes_only_one_succeeds, .init = prep, .fini = finish, .timeout = 120)
{
    start_for_jobs("12");
    char owner[40];
    harness_marker(owner, sizeof(owner), "owner_");
    do_register(owner, PW_ALICE, 201, NULL);
    char *t1 = do_login(owner, PW_ALICE, 200, NULL);
    char *t2 = do_login(owner, PW_ALICE, 200, NULL);
    struct bg_change ch[2] = { { .token = t1, .from = PW_ALICE, .to = PW_ALICE2 },
                               { .token = t2, .from = PW_ALICE, .to = "thief-Chose-This-4411" } };
    for (int i = 0; i < 2; i++)
        cr_assert_eq(pthread_create(&ch[i].thread, NULL, bg_change_run, &ch[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(ch[i].thread, NULL);
    int won = ch[0].status == 204 ? 0 : 1;
    cr_assert_eq(ch[won].status, 204, "neither change succeeded: %ld, %ld", ch[0].status, ch[1].status);
    cr_assert_neq(ch[1 - won].status, 204, "both changes succeeded: the later one overrode the first");
    char *fresh = do_login(owner, ch[won].to, 200, NULL);
    free(fresh);
    free(t1);
    free(t2);
}

/* An erasure checks the password it read on arrival; a login may upgrade
 * that hash (same password, current settings) meanwhile. The erasure must
 * still go through: it used to compare the stored hash itself and answer
 * 403 "changed meanwhile" for a password nobody changed. Order: a slow job
 * (an account hashed at 4x the cost) and a fast one (a current hash) fill
 * both hashing slots; the login queues, then the erasure, which reads the
 * old hash now. The fast slot frees first and takes the login, and the
 * erasure takes the login's slot, whose upgrade commits on the loop as that
 * slot is handed on: before the erasure's own check can end. */
Test(jobs, an_erasure_survives_a_login_upgrading_the_hash, .init = prep, .fini = finish, .timeout = 120)
{
    start_for_jobs("2");                       /* the minimum: the hash made now is old later */
    char user[40], slow[40], fast[40];
    harness_marker(user, sizeof(user), "erased_");
    do_register(user, PW_ALICE, 201, NULL);
    char *token = do_login(user, PW_ALICE, 200, NULL);   /* before the restart: no upgrade yet */
    cr_assert_eq(harness_stop(&srv), 0);
    harness_setenv(&srv, "NOTES_ARGON2_TIME", "48");
    harness_start(&srv);
    register_then_restart(slow, sizeof(slow), "slow_", "12");
    harness_marker(fast, sizeof(fast), "fast_");
    do_register(fast, PW_ALICE, 201, NULL);

    /* Both blockers succeed: a failed login would be padded to the costliest
     * stored hash's time (48 passes here), the fast one too. */
    size_t started = jobs_started();
    struct bg_login block[2], up;
    bg_login_start(&block[0], slow, PW_ALICE, NULL);                 /* 48 passes */
    await_jobs(started + 1, 60, "the slow job");
    bg_login_start(&block[1], fast, PW_ALICE, NULL);                 /* 12 passes */
    await_jobs(started + 2, 60, "the fast job");
    /* The login is in the server, queued or (the fast job already done)
     * hashing: either way the erasure, read now, waits for its slot. */
    size_t arrived = jobs_arrived();
    bg_login_start(&up, user, PW_ALICE, NULL);
    await_count(jobs_arrived, arrived + 1, 60, "the login's arrival");
    struct bg_change erase = { .token = token, .from = PW_ALICE };
    cr_assert_eq(pthread_create(&erase.thread, NULL, bg_change_run, &erase), 0);
    pthread_join(up.thread, NULL);
    pthread_join(erase.thread, NULL);
    for (int i = 0; i < 2; i++)
        pthread_join(block[i].thread, NULL);
    cr_assert_eq(up.status, 200, "the upgrading login: %ld", up.status);
    cr_assert_eq(erase.status, 204, "the erasure after the upgrade: %ld", erase.status);
    char *gone = do_login(user, PW_ALICE, 401, NULL);
    free(gone);
    free(token);
}

/* A login whose job finds the store busy when it is done: another writer
 * takes the database once the job has started (its debug line) and holds
 * it until the answer is in; l holds the answer. */
static void login_on_a_busy_store(struct bg_login *l, const char *user, const char *pw)
{
    size_t started = jobs_started();
    bg_login_start(l, user, pw, NULL);
    await_jobs(started + 1, 30, "the login job");
    sqlite3 *db = hold_write_lock();
    pthread_join(l->thread, NULL);
    cr_assert_eq(sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

/* The guard opens a second transaction when a password job finishes. If
 * another writer holds the database past the busy timeout then, the job
 * must change nothing: no session for a login, the answer a 503 recorded
 * as store_busy. (Without the refusal its statements ran in autocommit.)
 * Readiness: the debug line that the job started; the lock is taken while
 * it hashes (the account's hash was made at 4x the current cost, so that
 * takes a while) and held until the answer arrives. */
Test(jobs, a_job_finishing_on_a_busy_store_changes_nothing, .init = prep, .fini = finish, .timeout = 60)
{
    start_for_jobs("48");
    char user[40], rid[RID_MAX];
    register_then_restart(user, sizeof(user), "busy_", "12");
    char *before = db_text("SELECT count(*) FROM sessions");
    struct bg_login l;
    login_on_a_busy_store(&l, user, PW_ALICE);
    cr_assert_eq(l.status, 503, "login on a busy store: %ld", l.status);
    char *after = db_text("SELECT count(*) FROM sessions");
    cr_assert_str_eq(after, before, "a session was made while the guard had no transaction");
    char *kept = db_text("SELECT count(*) FROM users WHERE password_hash LIKE '%t=48,%'");
    cr_assert_str_eq(kept, "1", "the login's rehash was written while the guard had no transaction");
    free(kept);
    snprintf(rid, sizeof(rid), "%s", l.rid);
    struct alog lg;
    log_load(audit_dir(), &lg);
    expect_line(by_rid(&lg, rid, NULL), &(struct want){ .event = "auth.login", .actor = ANY, .role = ANY,
                                                        .resource = ANY, .result = "error", .reason = "store_busy",
                                                        .status = 503 }, "login on a busy store");
    log_free(&lg);
    free(before);
    free(after);
}

/* A wrong login once its account's back-off lets it in (Retry-After
 * paces the retries; a few at most): the status and when it was sent. */
static long wrong_login_let_in(const char *name, long *sent_ms)
{
    char *b = body2("username", name, "password", "not-the-password-at-all");
    long status = 0;
    for (int i = 0; i < 5; i++) {
        struct response r;
        *sent_ms = harness_now_ms();
        harness_call(&srv, "POST", "/v1/auth/login", NULL, b, 60000, &r);
        status = r.status;
        char *retry = status == 429 ? response_header(&r, "Retry-After") : NULL;
        response_free(&r);
        if (!retry)
            break;
        harness_pace_ms(atol(retry) * 1000);
        free(retry);
    }
    free(b);
    return status;
}

/* A wrong guess whose answer a busy store turned into a 503 was checked
 * all the same (the guard refuses after the job ran): it counts for the
 * account's throttle. It was handed back as never checked: a free guess
 * whenever the store was busy. The count shows in the back-off: 12
 * failures make the next attempt wait 4 s, 13 make it wait 8 s; 6 s after
 * the 13th attempt the 14th must still wait. */
Test(jobs, a_wrong_guess_answered_503_by_a_busy_store_still_counts, .init = prep, .fini = finish,
     .timeout = 120)
{
    harness_setenv(&srv, "NOTES_RATE_LIMITS", "on");
    harness_setenv(&srv, "NOTES_RATE_IP", "1000");
    harness_setenv(&srv, "NOTES_RATE_IP_BURST", "1000");
    harness_setenv(&srv, "NOTES_RATE_AUTH_PER_MIN", "1000");
    harness_setenv(&srv, "NOTES_RATE_AUTH_BURST", "1000");
    start_for_jobs("24");
    char user[40];
    register_then_restart(user, sizeof(user), "counted_", "6");   /* its checks take a while */
    long sent = 0;
    for (int i = 0; i < 11; i++)
        cr_assert_eq(wrong_login_let_in(user, &sent), 401, "wrong login %d", i + 1);
    harness_pace_ms(2200 - (harness_now_ms() - sent));              /* the 11th's back-off: 2 s */
    struct bg_login l;
    login_on_a_busy_store(&l, user, "not-the-password-at-all");    /* the 12th: checked, then 503 */
    cr_assert_eq(l.status, 503, "a wrong login on a busy store: %ld", l.status);
    cr_assert_eq(wrong_login_let_in(user, &sent), 401, "the 13th wrong login");
    long since = sent;
    harness_pace_ms(since + 6000 - harness_now_ms());
    char *b = body2("username", user, "password", "not-the-password-at-all");
    struct response r;
    harness_call(&srv, "POST", "/v1/auth/login", NULL, b, 60000, &r);
    long after = harness_now_ms() - since;
    cr_assert(r.status == 429 || after >= 8000, "the 14th attempt, %ld ms after the 13th, got %ld: the guess "
              "answered 503 did not count", after, r.status);
    response_free(&r);
    free(b);
}

/* After the argon2 settings are raised, a login upgrades the account's
 * hash. Two logins that both checked the old hash (both queued behind
 * other password jobs, so both read it on arrival) must both succeed: the
 * second used to find the first one's upgrade, take it for a password
 * change, answer 401 and count a failure against the account. */
Test(jobs, two_logins_upgrading_one_old_hash_both_succeed, .init = prep, .fini = finish, .timeout = 120)
{
    start_for_jobs("2");                       /* the minimum: the hash made now is old later */
    char user[40];
    harness_marker(user, sizeof(user), "upgrade_");
    do_register(user, PW_ALICE, 201, NULL);
    cr_assert_eq(harness_stop(&srv), 0);
    harness_setenv(&srv, "NOTES_ARGON2_TIME", "12");
    harness_start(&srv);

    size_t started = jobs_started();
    struct bg_login block[2], l[2];
    for (int i = 0; i < 2; i++)
        bg_login_start(&block[i], NULL, NULL, NULL);
    await_jobs(started + 2, 60, "the two blocking logins");
    size_t arrived = jobs_arrived();
    for (int i = 0; i < 2; i++) {   /* in order, each read while the blocking logins hash */
        bg_login_start(&l[i], user, PW_ALICE, NULL);
        await_count(jobs_arrived, arrived + 1 + (size_t)i, 60, "a login's arrival");
    }
    for (int i = 0; i < 2; i++) {
        pthread_join(l[i].thread, NULL);
        pthread_join(block[i].thread, NULL);
    }
    cr_assert_eq(l[0].status, 200, "first login: %ld", l[0].status);
    cr_assert_eq(l[1].status, 200, "second login: %ld", l[1].status);
    char *again = do_login(user, PW_ALICE, 200, NULL);
    free(again);
}

/* ---- jobs whose clients left, and the cap on waiting ones ----------------- */

/* Handler jobs queued for a hashing slot so far. */
static size_t jobs_queued(void)
{
    return log_count("handler job queued");
}

/* A login of a made-up name with a wrong password, sent on a raw TLS
 * connection of its own whose answer is not read yet. */
static void raw_login(struct rawconn *c)
{
    CURLcode rc = raw_tls_connect(c, srv.port, srv.cert, NULL, 5000);
    cr_assert_eq(rc, CURLE_OK, "TLS connect failed: %s (%s)", curl_easy_strerror(rc), c->err);
    char name[40];
    harness_marker(name, sizeof(name), "nobody_");
    char *body = body2("username", name, "password", "Not-the-password-0");
    char *msg = harness_fmt("POST /v1/auth/login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                    "Content-Length: %zu\r\n\r\n%s", strlen(body), body);
    cr_assert_eq(raw_send_str(c, msg, 5000), RAW_OK, "sending a login failed");
    free(msg);
    free(body);
}

/* Both hashing slots taken by failed logins of made-up names, padded to the
 * costliest stored hash (an account hashed at 4x the current cost): they
 * hold their slots for a while. Returns once both have started. */
static void fill_slots(struct bg_login block[2])
{
    char dear[40];
    /* 8x the current cost: the slots must stay taken while the queue fills
     * (64 TLS handshakes), also under ASan beside other test programs. */
    start_for_jobs("96");
    register_then_restart(dear, sizeof(dear), "dear_", "12");
    size_t started = jobs_started();
    for (int i = 0; i < 2; i++)
        bg_login_start(&block[i], NULL, NULL, NULL);
    await_jobs(started + 2, 60, "the two blocking logins");
}

/* Send `n` logins on raw connections and wait until each is queued. */
static void queue_logins(struct rawconn *c, size_t n)
{
    size_t queued = jobs_queued();
    for (size_t i = 0; i < n; i++) {
        raw_login(&c[i]);
        await_count(jobs_queued, queued + i + 1, 30, "a login's place in the queue");
    }
}

/* A job still waiting for a hashing slot when its client hangs up has not
 * started: nothing was checked or changed. It must be taken off the queue,
 * not hashed later for nobody: a review sent 500 logins whose clients left
 * at once, and every one of them ran argon2id while a real login waited
 * 11.9 s behind them. Readiness: the debug lines of queued, cancelled and
 * started jobs. Every other client resets its connection as it leaves. */
#define LEAVERS 4

Test(jobs, a_waiting_job_whose_client_left_never_runs, .init = prep, .fini = finish, .timeout = 120)
{
    struct bg_login block[2];
    fill_slots(block);
    size_t started = jobs_started();
    struct rawconn gone[LEAVERS];
    queue_logins(gone, LEAVERS);
    for (size_t i = 0; i < LEAVERS; i++) {
        struct linger reset = { 1, 0 };
        if (i % 2)
            cr_assert_eq(setsockopt(gone[i].fd, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset)), 0);
        raw_close(&gone[i]);
    }
    harness_await_log(&srv, "handler job cancelled", LEAVERS, 30);
    char nobody[40];
    harness_marker(nobody, sizeof(nobody), "nobody_");
    char *none = do_login(nobody, "Not-the-password-0", 401, NULL);
    free(none);
    for (int i = 0; i < 2; i++) {
        pthread_join(block[i].thread, NULL);
        cr_assert_eq(block[i].status, 401, "blocking login %d: %ld", i, block[i].status);
    }
    cr_assert_eq(jobs_started(), started + 1, "jobs of clients that had left were hashed: %zu started, not 1",
                 jobs_started() - started);
}

/* At most JOBS_WAIT_MAX jobs wait for a hashing slot (server_int.h:
 * SERVER_JOBS_WAIT_MAX); the next request that would wait is answered 503
 * at once, with Retry-After and a problem body, and the refusals are
 * audited summed up (request.refused, hashing_busy). Without the cap a
 * flood from many addresses queued without bound (memory, and minutes of
 * argon2 for everyone behind it). The waiting clients then leave, so
 * their jobs never run. */
#define JOBS_WAIT_MAX 64

Test(jobs, past_the_wait_cap_a_login_is_refused_at_once, .init = prep, .fini = finish, .timeout = 180)
{
    harness_setenv(&srv, "NOTES_MAX_CONNECTIONS_PER_IP", "200");
    struct bg_login block[2];
    fill_slots(block);
    struct rawconn wait[JOBS_WAIT_MAX], extra;
    queue_logins(wait, JOBS_WAIT_MAX);
    size_t queued = jobs_queued();
    raw_login(&extra);
    struct rawbuf in = { 0 };
    enum raw_io e = raw_read_responses(&extra, &in, 1, 10000);
    cr_assert_eq(e, RAW_OK, "a login past %d waiting jobs was not answered at once: %s", JOBS_WAIT_MAX,
                 raw_io_name(e));
    struct raw_resp r;
    cr_assert_gt(raw_parse_response(in.p, in.len, &r), 0);
    cr_assert_eq(r.status, 503, "a login past the cap: %d\n%s", r.status, r.body);
    char *retry = raw_header(&r, "Retry-After"), *ctype = raw_header(&r, "Content-Type");
    cr_assert(retry && *retry, "503 without Retry-After");
    cr_assert(ctype && strstr(ctype, "application/problem+json"), "503 without a problem body: %s", ctype);
    cr_assert_eq(jobs_queued(), queued, "the refused login was queued anyway");
    free(retry);
    free(ctype);
    raw_resp_free(&r);
    rawbuf_free(&in);
    raw_close(&extra);
    for (size_t i = 0; i < JOBS_WAIT_MAX; i++)
        raw_close(&wait[i]);
    harness_await_log(&srv, "handler job cancelled", JOBS_WAIT_MAX, 30);
    for (int i = 0; i < 2; i++)
        pthread_join(block[i].thread, NULL);
    cr_assert_eq(harness_stop(&srv), 0);
    struct alog lg;
    log_load(audit_dir(), &lg);
    size_t lines = 0;
    uint64_t count = 0;
    for (size_t i = 0; i < lg.n; i++) {
        const char *ev = fstr(lg.l[i].o, "event"), *why = fstr(lg.l[i].o, "reason");
        if (strcmp(ev, "request.refused") == 0 && why && strcmp(why, "hashing_busy") == 0) {
            lines++;
            cr_assert(fnum(lg.l[i].o, "count", &count), "request.refused hashing_busy without a count");
        }
    }
    log_free(&lg);
    cr_assert_eq(lines, 1, "%zu request.refused hashing_busy lines, not one", lines);
    cr_assert_eq(count, 1);
}
