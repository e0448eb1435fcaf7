/*
 * harness.c - the real binary, a real port, a real TLS client.
 * See harness.h. Uses only loopback addresses and bounded waits.
 */
#include "harness.h"

#include <criterion/criterion.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define WAIT_MS 15000

const char *harness_bin(void)
{
    const char *bin = getenv("NOTESD_BIN");
    cr_assert(bin && *bin, "NOTESD_BIN must name the notesd binary (meson test sets it)");
    return bin;
}

long harness_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait for `pid` at most `ms`; returns exit status, -signal, or -1000 on timeout. */
static int wait_exit(pid_t pid, long ms)
{
    long deadline = harness_now_ms() + ms;
    for (;;) {
        int st;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st);
        if (r < 0 || harness_now_ms() > deadline)
            return -1000;
        /* Polling a child's exit: waitpid has no timeout form. */
        struct timespec ts = { 0, 5 * 1000 * 1000 };
        nanosleep(&ts, NULL);
    }
}

/* exec wants char *const[]; copies keep our const argument lists honest. */
static char **dup_argv(const char *const *argv)
{
    size_t n = 0;
    while (argv[n])
        n++;
    char **out = calloc(n + 1, sizeof(*out));
    for (size_t i = 0; i < n; i++)
        out[i] = strdup(argv[i]);
    return out;
}

/* Run a command with the current environment, capturing stdout. */
static char *capture(const char *const *argv)
{
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        execv(argv[0], dup_argv(argv));
        _exit(127);
    }
    close(fds[1]);
    size_t cap = 4096, len = 0;
    char *out = malloc(cap);
    ssize_t n;
    while ((n = read(fds[0], out + len, cap - len - 1)) > 0)
        len += (size_t)n;
    out[len] = 0;
    close(fds[0]);
    cr_assert_eq(wait_exit(pid, WAIT_MS), 0, "%s failed", argv[1]);
    return out;
}

void harness_setenv(struct server *s, const char *name, const char *value)
{
    size_t nl = strlen(name);
    for (size_t i = 0; i < s->n_env; i++) {
        if (strncmp(s->env[i], name, nl) == 0 && s->env[i][nl] == '=') {
            free(s->env[i]);
            s->env[i] = s->env[--s->n_env];
            s->env[s->n_env] = NULL;
            break;
        }
    }
    if (!value)
        return;
    cr_assert_lt(s->n_env, HARNESS_MAX_ENV - 1);
    size_t len = nl + strlen(value) + 2;
    char *e = malloc(len);
    snprintf(e, len, "%s=%s", name, value);
    s->env[s->n_env++] = e;
    s->env[s->n_env] = NULL;
}

void harness_prepare(struct server *s)
{
    memset(s, 0, sizeof(*s));
    snprintf(s->dir, sizeof(s->dir), "/tmp/notesd-test-XXXXXX");
    cr_assert(mkdtemp(s->dir), "mkdtemp: %s", strerror(errno));
    /* Run as root, notesd drops to NOTES_USER (nobody): it must still be
     * able to pass through this folder to its data (but not list it). */
    cr_assert_eq(chmod(s->dir, 0711), 0);
    char certs[300], data[300], audit[320], db[320];
    snprintf(certs, sizeof(certs), "%s/certs", s->dir);
    snprintf(s->cert, sizeof(s->cert), "%s/cert.pem", certs);
    snprintf(s->key, sizeof(s->key), "%s/key.pem", certs);
    snprintf(s->stderr_path, sizeof(s->stderr_path), "%s/stderr.log", s->dir);
    snprintf(data, sizeof(data), "%s/data", s->dir);
    snprintf(db, sizeof(db), "%s/notes.db", data);
    snprintf(audit, sizeof(audit), "%s/audit", data);
    mkdir(data, 0700);

    const char *gen_cert[] = { harness_bin(), "gen-cert", "--host", "localhost", "--out", certs, NULL };
    free(capture(gen_cert));
    const char *gen_secrets[] = { harness_bin(), "gen-secrets", NULL };
    char *secrets = capture(gen_secrets);
    for (char *line = strtok(secrets, "\n"); line; line = strtok(NULL, "\n")) {
        char *eq = strchr(line, '=');
        cr_assert(eq);
        *eq = 0;
        harness_setenv(s, line, eq + 1);
    }
    free(secrets);
    harness_setenv(s, "NOTES_TLS_CERT", s->cert);
    harness_setenv(s, "NOTES_TLS_KEY", s->key);
    harness_setenv(s, "NOTES_LISTEN", "127.0.0.1:0");
    harness_setenv(s, "NOTES_DB", db);
    harness_setenv(s, "NOTES_AUDIT_DIR", audit);
    harness_setenv(s, "NOTES_LOG_LEVEL", "debug");
    harness_setenv(s, "NOTES_SHUTDOWN_GRACE", "2");
    /* Suites fire requests faster than any client should; the rate-limit
     * tests turn the limits back on. */
    harness_setenv(s, "NOTES_RATE_LIMITS", "off");
    harness_setenv(s, "PATH", "/usr/bin:/bin");
}

static pid_t spawn(struct server *s, const char *const *args)
{
    const char *argv[32] = { harness_bin() };
    size_t n = 1;
    for (; args && args[n - 1] && n < 31; n++)
        argv[n] = args[n - 1];
    argv[n] = NULL;
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        int fd = open(s->stderr_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
        int null = open("/dev/null", O_RDWR);
        if (fd < 0 || null < 0)
            _exit(126);
        dup2(null, 0);
        dup2(null, 1);
        dup2(fd, 2);
        if (s->fsize_limit > 0) {   /* a "full disk" for every file it writes */
            struct rlimit rl;
            if (getrlimit(RLIMIT_FSIZE, &rl) != 0)
                _exit(126);
            rl.rlim_cur = (rlim_t)s->fsize_limit;
            if (setrlimit(RLIMIT_FSIZE, &rl) != 0)
                _exit(126);
        }
        execve(argv[0], dup_argv(argv), s->env);
        _exit(127);
    }
    return pid;
}

static int notify_socket(struct server *s)
{
    char path[300];
    if (s->notify_abstract)
        snprintf(path, sizeof(path), "@%s/notify", s->dir);   /* unique: the folder is */
    else
        snprintf(path, sizeof(path), "%s/notify.sock", s->dir);
    if (!s->notify_abstract)
        unlink(path);   /* left by an earlier start of this server */
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(fd, 0);
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    size_t len = strlen(path);
    cr_assert_lt(len, sizeof(sa.sun_path));
    memcpy(sa.sun_path, path, len);
    if (s->notify_abstract)
        sa.sun_path[0] = '\0';
    socklen_t salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
    cr_assert_eq(bind(fd, (struct sockaddr *)&sa, salen), 0, "bind notify: %s", strerror(errno));
    /* A server that dropped root (to nobody) sends READY=1 after the drop. */
    cr_assert(s->notify_abstract || chmod(path, 0666) == 0);
    harness_setenv(s, "NOTIFY_SOCKET", path);
    return fd;
}

void harness_start(struct server *s)
{
    int nfd = notify_socket(s);
    s->port = 0;
    s->pid = spawn(s, (const char *[]){ "serve", NULL });
    long deadline = harness_now_ms() + WAIT_MS;
    while (s->port == 0) {
        long left = deadline - harness_now_ms();
        cr_assert_gt(left, 0, "notesd did not become ready in time:\n%s", harness_stderr(s));
        struct pollfd p = { .fd = nfd, .events = POLLIN };
        int r = poll(&p, 1, (int)(left < 200 ? left : 200));
        if (r == 0) {
            int st;
            cr_assert_eq(waitpid(s->pid, &st, WNOHANG), 0, "notesd exited before ready:\n%s",
                         harness_stderr(s));
            continue;
        }
        char msg[512];
        ssize_t n = recv(nfd, msg, sizeof(msg) - 1, 0);
        if (n <= 0)
            continue;
        msg[n] = 0;
        char *port = strstr(msg, "X_NOTESD_PORT=");
        char *redirect = strstr(msg, "X_NOTESD_REDIRECT_PORT=");
        if (redirect)
            s->redirect_port = atoi(redirect + strlen("X_NOTESD_REDIRECT_PORT="));
        if (strstr(msg, "READY=1") && port)
            s->port = atoi(port + strlen("X_NOTESD_PORT="));
    }
    close(nfd);
    harness_setenv(s, "NOTIFY_SOCKET", NULL);
}

int harness_run(struct server *s, const char *const *args)
{
    pid_t pid = spawn(s, args);
    int st = wait_exit(pid, WAIT_MS);
    if (st == -1000) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        cr_assert_fail("notesd did not finish in time");
    }
    return st;
}

int harness_stop(struct server *s)
{
    if (s->pid <= 0)
        return -1;
    kill(s->pid, SIGTERM);
    int st = wait_exit(s->pid, WAIT_MS);
    if (st == -1000) {
        kill(s->pid, SIGKILL);
        waitpid(s->pid, NULL, 0);
    }
    s->pid = 0;
    return st;
}

void harness_cleanup(struct server *s)
{
    if (s->pid > 0)
        harness_stop(s);
    for (size_t i = 0; i < s->n_env; i++)
        free(s->env[i]);
    s->n_env = 0;
    if (s->dir[0]) {
        char cmd[400];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", s->dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", s->dir);
    }
}

char *harness_stderr(const struct server *s)
{
    FILE *f = fopen(s->stderr_path, "r");
    if (!f)
        return strdup("");
    char *out = calloc(1, 1 << 20);
    size_t n = fread(out, 1, (1 << 20) - 1, f);
    out[n] = 0;
    fclose(f);
    return out;
}

size_t harness_log_count(const struct server *s, const char *what)
{
    char *err = harness_stderr(s);
    size_t n = 0;
    for (const char *p = err ? strstr(err, what) : NULL; p; p = strstr(p + 1, what))
        n++;
    free(err);
    return n;
}

void harness_await_log(const struct server *s, const char *what, size_t times, long secs)
{
    time_t until = time(NULL) + secs;
    while (harness_log_count(s, what) < times) {
        cr_assert(time(NULL) < until, "the server never said \"%s\"", what);
        nanosleep(&(struct timespec){ 0, 1000000 }, NULL);
    }
}

/* ---- libcurl client ------------------------------------------------------ */

struct sink {
    char *p;
    size_t len;
};

static size_t collect(char *data, size_t size, size_t n, void *arg)
{
    struct sink *s = arg;
    size_t add = size * n;
    s->p = realloc(s->p, s->len + add + 1);
    memcpy(s->p + s->len, data, add);
    s->len += add;
    s->p[s->len] = 0;
    return add;
}

/* curl logs "SSL connection using TLSv1.3 / TLS_AES_256_GCM_SHA384". */
static int debug_cb(CURL *h, curl_infotype type, char *data, size_t size, void *arg)
{
    (void)h;
    struct response *r = arg;
    static const char tag[] = "SSL connection using ";
    if (type != CURLINFO_TEXT || size < sizeof(tag) || memcmp(data, tag, sizeof(tag) - 1) != 0)
        return 0;
    char line[128];
    size_t n = size < sizeof(line) - 1 ? size : sizeof(line) - 1;
    memcpy(line, data, n);
    line[n] = 0;
    sscanf(line + sizeof(tag) - 1, "%31s / %63s", r->tls_version, r->tls_cipher);
    return 0;
}

void harness_request(const struct server *s, const char *path, const struct request_opts *o,
                     struct response *r)
{
    static const struct request_opts defaults = { 0 };
    if (!o)
        o = &defaults;
    memset(r, 0, sizeof(*r));
    CURL *h = curl_easy_init();
    cr_assert(h);
    char url[512], resolve[128];
    snprintf(url, sizeof(url), "https://localhost:%d%s", s->port, path);
    snprintf(resolve, sizeof(resolve), "localhost:%d:127.0.0.1", s->port);
    struct curl_slist *res_list = curl_slist_append(NULL, resolve);
    struct curl_slist *hdrs = NULL;
    for (const char *const *p = o->headers; p && *p; p++)
        hdrs = curl_slist_append(hdrs, *p);
    struct sink head = { 0 }, body = { 0 };
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_RESOLVE, res_list);
    curl_easy_setopt(h, CURLOPT_CAINFO, s->cert);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, o->timeout_ms > 0 ? o->timeout_ms : 10000L);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, collect);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &head);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);
    curl_easy_setopt(h, CURLOPT_DEBUGFUNCTION, debug_cb);
    curl_easy_setopt(h, CURLOPT_DEBUGDATA, r);
    curl_easy_setopt(h, CURLOPT_VERBOSE, 1L);
    curl_easy_setopt(h, CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_1_1);
    if (o->method && strcmp(o->method, "HEAD") == 0)
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    else if (o->method)
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, o->method);
    if (o->body)
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, o->body);
    if (hdrs)
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    if (o->tls_min || o->tls_max)
        curl_easy_setopt(h, CURLOPT_SSLVERSION, o->tls_min | o->tls_max);
    if (o->cipher_list)
        curl_easy_setopt(h, CURLOPT_SSL_CIPHER_LIST, o->cipher_list);
    r->curl_code = (int)curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
    r->headers = head.p ? head.p : strdup("");
    r->body = body.p ? body.p : strdup("");
    r->body_len = body.len;
    curl_slist_free_all(res_list);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
}

void response_free(struct response *r)
{
    free(r->headers);
    free(r->body);
    r->headers = r->body = NULL;
}

char *response_header(const struct response *r, const char *name)
{
    size_t nl = strlen(name);
    for (const char *line = r->headers; line && *line;) {
        const char *end = strstr(line, "\r\n");
        size_t len = end ? (size_t)(end - line) : strlen(line);
        if (len > nl && strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
            const char *v = line + nl + 1;
            while (*v == ' ')
                v++;
            return strndup(v, (size_t)(line + len - v));
        }
        line += len + (end ? 2 : 0);
    }
    return NULL;
}

/* ---- helpers added for test_api_*.c ---------------------------------------- */

int harness_run_stdin(struct server *s, const char *const *args, const char *input)
{
    char in_path[300];
    snprintf(in_path, sizeof(in_path), "%s/stdin.txt", s->dir);
    int in = open(in_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    cr_assert_geq(in, 0, "open %s: %s", in_path, strerror(errno));
    size_t len = strlen(input);
    cr_assert_eq(write(in, input, len), (ssize_t)len);
    close(in);
    const char *argv[32] = { harness_bin() };
    size_t n = 1;
    for (; args && args[n - 1] && n < 31; n++)
        argv[n] = args[n - 1];
    argv[n] = NULL;
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        int fd = open(s->stderr_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
        int src = open(in_path, O_RDONLY);
        int null = open("/dev/null", O_RDWR);
        if (fd < 0 || src < 0 || null < 0)
            _exit(126);
        dup2(src, 0);
        dup2(null, 1);
        dup2(fd, 2);
        execve(argv[0], dup_argv(argv), s->env);
        _exit(127);
    }
    int st = wait_exit(pid, WAIT_MS);
    unlink(in_path);
    if (st == -1000) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        cr_assert_fail("notesd did not finish in time");
    }
    return st;
}

const char *harness_getenv(const struct server *s, const char *name)
{
    size_t nl = strlen(name);
    for (size_t i = 0; i < s->n_env; i++)
        if (strncmp(s->env[i], name, nl) == 0 && s->env[i][nl] == '=')
            return s->env[i] + nl + 1;
    return NULL;
}

char *harness_read_file(const char *path, size_t *len)
{
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, n = 0, got;
    char *out = malloc(cap + 1);
    cr_assert(out);
    while ((got = fread(out + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            cap *= 2;
            out = realloc(out, cap + 1);
            cr_assert(out);
        }
    }
    fclose(f);
    out[n] = 0;
    *len = n;
    return out;
}

void harness_marker(char *out, size_t cap, const char *prefix)
{
    uint8_t rnd[8];
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    cr_assert_geq(fd, 0);
    cr_assert_eq(read(fd, rnd, sizeof(rnd)), (ssize_t)sizeof(rnd));
    close(fd);
    char hex[17];
    for (size_t i = 0; i < sizeof(rnd); i++)
        snprintf(hex + 2 * i, 3, "%02x", rnd[i]);
    snprintf(out, cap, "%s%s", prefix, hex);
}

char *harness_strdup(const char *s)
{
    char *d = strdup(s);
    cr_assert(d);
    return d;
}

char *harness_fmt(const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    int n = vsnprintf(NULL, 0, f, ap);
    va_end(ap);
    cr_assert_geq(n, 0);
    char *s = malloc((size_t)n + 1);
    cr_assert_not_null(s);
    va_start(ap, f);
    vsnprintf(s, (size_t)n + 1, f, ap);
    va_end(ap);
    return s;
}

void harness_pace_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

void harness_call(const struct server *s, const char *method, const char *path, const char *token,
                  const char *body, long timeout_ms, struct response *r)
{
    const char *hdrs[4];
    size_t n = 0;
    char auth[256];
    hdrs[n++] = "Expect:";
    if (token) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
        hdrs[n++] = auth;
    }
    if (body)
        hdrs[n++] = "Content-Type: application/json";
    hdrs[n] = NULL;
    struct request_opts o = { .method = method, .body = body, .headers = hdrs, .timeout_ms = timeout_ms };
    harness_request(s, path, &o, r);
}

/* One JSON request; the body of the answer (caller frees). */
static char *json_call(struct server *s, const char *method, const char *path, const char *token,
                       const char *body, long want)
{
    struct response r;
    harness_call(s, method, path, token, body, 0, &r);
    cr_assert_eq(r.status, want, "%s %s: %ld %.200s", method, path, r.status, r.body ? r.body : "");
    char *out = harness_strdup(r.body ? r.body : "");
    response_free(&r);
    return out;
}

char *harness_user_with_big_notes(struct server *s, const char *prefix, int notes)
{
    char user[40], cred[160];
    harness_marker(user, sizeof(user), prefix);
    snprintf(cred, sizeof(cred), "{\"username\":\"%s\",\"password\":\"violet-Anchor-7392-lamp\"}", user);
    free(json_call(s, "POST", "/v1/auth/register", NULL, cred, 201));
    char *login = json_call(s, "POST", "/v1/auth/login", NULL, cred, 200);
    char *t = strstr(login, "\"token\":\"");
    cr_assert_not_null(t);
    t += strlen("\"token\":\"");
    char *token = strndup(t, strcspn(t, "\""));
    cr_assert_not_null(token);
    enum { QUOTES = 60000 };
    static const char head[] = "{\"title\":\"big\",\"content\":\"", tail[] = "\"}";
    char *note = malloc(sizeof(head) - 1 + QUOTES + sizeof(tail));
    cr_assert_not_null(note);
    memcpy(note, head, sizeof(head) - 1);
    for (int i = 0; i < QUOTES; i += 2)
        memcpy(note + sizeof(head) - 1 + i, "\\\"", 2);   /* \" in the JSON body */
    memcpy(note + sizeof(head) - 1 + QUOTES, tail, sizeof(tail));
    for (int i = 0; i < notes; i++)
        free(json_call(s, "POST", "/v1/notes", token, note, 201));
    free(note);
    free(login);
    return token;
}

void harness_preload_shim(struct server *s, const char *shim_var, const char *flag_var, const char *flag_name,
                          char *flag, size_t cap)
{
    const char *shim = getenv(shim_var);
    cr_assert(shim && *shim, "%s is not set (meson sets it)", shim_var);
    snprintf(flag, cap, "%s/%s", s->dir, flag_name);
    harness_setenv(s, "LD_PRELOAD", shim);
    harness_setenv(s, flag_var, flag);
    /* Under ASan (make test-asan) the preloaded shim comes before libasan
     * in the list of libraries, which ASan refuses unless told. */
    harness_setenv(s, "ASAN_OPTIONS", "verify_asan_link_order=0");
}

size_t harness_audit_lines(const struct server *s, const char *event, const char *also, unsigned long long *sum)
{
    char path[600], want_ev[128];
    snprintf(path, sizeof(path), "%s/audit.log", harness_getenv(s, "NOTES_AUDIT_DIR"));
    snprintf(want_ev, sizeof(want_ev), "\"event\":\"%s\"", event);
    size_t len = 0;
    char *log = harness_read_file(path, &len);
    cr_assert_not_null(log, "no audit log at %s", path);
    size_t n = 0;
    *sum = 0;
    for (char *line = log, *nl; line && *line; line = nl ? nl + 1 : NULL) {
        nl = strchr(line, '\n');
        if (nl)
            *nl = 0;
        if (!strstr(line, want_ev) || !strstr(line, also))
            continue;
        n++;
        const char *c = strstr(line, "\"count\":");
        *sum += c ? strtoull(c + 8, NULL, 10) : 1;
    }
    free(log);
    return n;
}
