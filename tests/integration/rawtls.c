/*
 * rawtls.c - raw request bytes over TLS (libcurl CONNECT_ONLY) or plain TCP,
 * with bounded waits. See rawtls.h.
 */
#include "rawtls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

const char *raw_io_name(enum raw_io r)
{
    switch (r) {
    case RAW_OK: return "ok";
    case RAW_CLOSED: return "closed";
    case RAW_RESET: return "reset/error";
    case RAW_TIMEOUT: return "timeout (still open)";
    }
    return "?";
}

long raw_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

CURLcode raw_tls_connect(struct rawconn *c, int port, const char *cafile, CURLSH *share, long timeout_ms)
{
    memset(c, 0, sizeof(*c));
    c->fd = -1;
    c->curl = curl_easy_init();
    if (!c->curl)
        return CURLE_FAILED_INIT;
    char url[128], resolve[128];
    snprintf(url, sizeof(url), "https://localhost:%d/", port);
    snprintf(resolve, sizeof(resolve), "localhost:%d:127.0.0.1", port);
    c->resolve = curl_slist_append(NULL, resolve);
    curl_easy_setopt(c->curl, CURLOPT_URL, url);
    curl_easy_setopt(c->curl, CURLOPT_RESOLVE, c->resolve);
    curl_easy_setopt(c->curl, CURLOPT_CAINFO, cafile);
    curl_easy_setopt(c->curl, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(c->curl, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(c->curl, CURLOPT_CONNECT_ONLY, 1L);
    curl_easy_setopt(c->curl, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
    curl_easy_setopt(c->curl, CURLOPT_ERRORBUFFER, c->err);
    curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L);
    if (share)
        curl_easy_setopt(c->curl, CURLOPT_SHARE, share);
    CURLcode rc = curl_easy_perform(c->curl);
    if (rc != CURLE_OK) {
        if (!c->err[0])
            snprintf(c->err, sizeof(c->err), "%s", curl_easy_strerror(rc));
        return rc;
    }
    curl_socket_t s = CURL_SOCKET_BAD;
    rc = curl_easy_getinfo(c->curl, CURLINFO_ACTIVESOCKET, &s);
    if (rc != CURLE_OK || s == CURL_SOCKET_BAD) {
        snprintf(c->err, sizeof(c->err), "no active socket");
        return rc != CURLE_OK ? rc : CURLE_COULDNT_CONNECT;
    }
    c->fd = (int)s;
    return CURLE_OK;
}

int raw_tcp_connect(struct rawconn *c, int port)
{
    memset(c, 0, sizeof(*c));
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        return -1;
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    /* Loopback connects complete (or are refused) at once. */
    if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        snprintf(c->err, sizeof(c->err), "connect: %s", strerror(errno));
        close(c->fd);
        c->fd = -1;
        return -1;
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
    return 0;
}

void raw_close(struct rawconn *c)
{
    if (c->curl) {
        curl_easy_cleanup(c->curl);   /* closes the socket too */
        c->curl = NULL;
        c->fd = -1;
    }
    if (c->resolve) {
        curl_slist_free_all(c->resolve);
        c->resolve = NULL;
    }
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
}

/* Wait for `events` on the socket until `deadline`; false when it passed. */
static bool wait_fd(int fd, short events, long deadline)
{
    for (;;) {
        long left = deadline - raw_now_ms();
        if (left < 0)
            left = 0;
        struct pollfd p = { .fd = fd, .events = events };
        int r = poll(&p, 1, (int)left);
        if (r > 0)
            return true;
        if (r == 0)
            return false;
        if (errno != EINTR)
            return true;   /* let the next call report the error */
    }
}

enum raw_io raw_send(struct rawconn *c, const void *p, size_t n, long timeout_ms, size_t *sent)
{
    const char *at = p;
    size_t done = 0;
    long deadline = raw_now_ms() + timeout_ms;
    enum raw_io result = RAW_OK;
    if (c->fd < 0)
        result = RAW_RESET;
    while (result == RAW_OK && done < n) {
        size_t k = 0;
        if (c->curl) {
            CURLcode rc = curl_easy_send(c->curl, at + done, n - done, &k);
            if (rc == CURLE_AGAIN) {
                if (!wait_fd(c->fd, POLLOUT, deadline))
                    result = RAW_TIMEOUT;
                continue;
            }
            if (rc != CURLE_OK) {
                result = RAW_RESET;
                continue;
            }
        } else {
            ssize_t w = send(c->fd, at + done, n - done, MSG_NOSIGNAL);
            if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
                if (!wait_fd(c->fd, POLLOUT, deadline))
                    result = RAW_TIMEOUT;
                continue;
            }
            if (w < 0) {
                result = RAW_RESET;
                continue;
            }
            k = (size_t)w;
        }
        done += k;
    }
    if (sent)
        *sent = done;
    return result;
}

enum raw_io raw_recv(struct rawconn *c, void *buf, size_t cap, size_t *got, long timeout_ms)
{
    long deadline = raw_now_ms() + timeout_ms;
    *got = 0;
    if (c->fd < 0)
        return RAW_RESET;
    for (;;) {
        if (c->curl) {
            /* Ask curl first: TLS may hold decrypted bytes poll() cannot see. */
            CURLcode rc = curl_easy_recv(c->curl, buf, cap, got);
            if (rc == CURLE_OK)
                return *got > 0 ? RAW_OK : RAW_CLOSED;
            if (rc != CURLE_AGAIN)
                return RAW_RESET;
        } else {
            ssize_t r = recv(c->fd, buf, cap, 0);
            if (r > 0) {
                *got = (size_t)r;
                return RAW_OK;
            }
            if (r == 0)
                return RAW_CLOSED;
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                return RAW_RESET;
        }
        if (raw_now_ms() >= deadline || !wait_fd(c->fd, POLLIN, deadline))
            return RAW_TIMEOUT;
    }
}

void rawbuf_append(struct rawbuf *b, const void *p, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *q = realloc(b->p, cap);
        if (!q)
            abort();
        b->p = q;
        b->cap = cap;
    }
    if (n)
        memcpy(b->p + b->len, p, n);
    b->len += n;
    b->p[b->len] = 0;
}

void rawbuf_free(struct rawbuf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

enum raw_io raw_read_until_close(struct rawconn *c, struct rawbuf *out, long timeout_ms)
{
    long deadline = raw_now_ms() + timeout_ms;
    char tmp[16384];
    rawbuf_append(out, "", 0);
    for (;;) {
        long left = deadline - raw_now_ms();
        size_t got = 0;
        enum raw_io r = raw_recv(c, tmp, sizeof(tmp), &got, left > 0 ? left : 0);
        if (r == RAW_OK) {
            rawbuf_append(out, tmp, got);
            continue;
        }
        return r;
    }
}

enum raw_io raw_read_responses(struct rawconn *c, struct rawbuf *out, size_t n, long timeout_ms)
{
    long deadline = raw_now_ms() + timeout_ms;
    char tmp[16384];
    rawbuf_append(out, "", 0);
    for (;;) {
        bool bad = false;
        if (raw_count_responses(out->p, out->len, NULL, &bad) >= n || bad)
            return RAW_OK;
        long left = deadline - raw_now_ms();
        size_t got = 0;
        enum raw_io r = raw_recv(c, tmp, sizeof(tmp), &got, left > 0 ? left : 0);
        if (r != RAW_OK)
            return r;
        rawbuf_append(out, tmp, got);
    }
}

/* ---- responses ------------------------------------------------------------ */

static const char *find_mem(const char *p, size_t len, const char *needle)
{
    size_t nl = strlen(needle);
    for (size_t i = 0; i + nl <= len; i++)
        if (memcmp(p + i, needle, nl) == 0)
            return p + i;
    return NULL;
}

/* Content-Length in a header block (strict digits), or 0 when absent. */
static bool content_length(const char *head, size_t *out)
{
    *out = 0;
    for (const char *line = head; line && *line;) {
        const char *end = strstr(line, "\r\n");
        size_t len = end ? (size_t)(end - line) : strlen(line);
        if (len > 15 && strncasecmp(line, "Content-Length:", 15) == 0) {
            size_t v = 0, i = 15;
            while (i < len && line[i] == ' ')
                i++;
            if (i == len)
                return false;
            for (; i < len; i++) {
                if (line[i] < '0' || line[i] > '9')
                    return false;
                v = v * 10 + (size_t)(line[i] - '0');
            }
            *out = v;
        }
        line = end ? end + 2 : NULL;
    }
    return true;
}

size_t raw_parse_response(const char *p, size_t len, struct raw_resp *r)
{
    static const char prefix[] = "HTTP/1.1 ";
    size_t pl = sizeof(prefix) - 1;
    if (len < pl)
        return memcmp(p, prefix, len) == 0 ? 0 : (size_t)-1;
    if (memcmp(p, prefix, pl) != 0)
        return (size_t)-1;
    const char *end = find_mem(p, len, "\r\n\r\n");
    if (!end)
        return 0;
    size_t head_len = (size_t)(end - p);
    char *head = strndup(p, head_len);
    if (!head)
        abort();
    int status = 0;
    if (head_len < pl + 3 || sscanf(head + pl, "%3d", &status) != 1) {
        free(head);
        return (size_t)-1;
    }
    size_t body_len = 0;
    if (!content_length(head, &body_len)) {
        free(head);
        return (size_t)-1;
    }
    size_t total = head_len + 4 + body_len;
    if (total > len) {
        free(head);
        return 0;
    }
    r->status = status;
    r->head = head;
    r->body = strndup(p + head_len + 4, body_len);
    if (!r->body)
        abort();
    r->body_len = body_len;
    return total;
}

size_t raw_count_responses(const char *p, size_t len, size_t *rest, bool *bad)
{
    size_t n = 0, off = 0;
    if (bad)
        *bad = false;
    while (off < len) {
        struct raw_resp r;
        size_t k = raw_parse_response(p + off, len - off, &r);
        if (k == (size_t)-1 && bad)
            *bad = true;
        if (k == 0 || k == (size_t)-1)
            break;
        raw_resp_free(&r);
        off += k;
        n++;
    }
    if (rest)
        *rest = off;
    return n;
}

char *raw_header(const struct raw_resp *r, const char *name)
{
    size_t nl = strlen(name);
    const char *line = strstr(r->head, "\r\n");   /* skip the status line */
    while (line) {
        line += 2;
        const char *end = strstr(line, "\r\n");
        size_t len = end ? (size_t)(end - line) : strlen(line);
        if (len > nl && strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
            const char *v = line + nl + 1;
            while (*v == ' ')
                v++;
            return strndup(v, (size_t)(line + len - v));
        }
        line = end;
    }
    return NULL;
}

void raw_resp_free(struct raw_resp *r)
{
    free(r->head);
    free(r->body);
    r->head = r->body = NULL;
}

long raw_rss_kib(int pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long kib = -1;
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, "VmRSS:", 6) == 0) {
            kib = strtol(line + 6, NULL, 10);
            break;
        }
    fclose(f);
    return kib;
}
