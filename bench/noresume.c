/* LD_PRELOAD shim for wrk (OpenSSL client): controls TLS session resumption
 * and counts what the client saw.
 *
 * wrk keeps one SSL object per connection and calls SSL_clear() between
 * connections, which keeps the last session, so every reconnect offers it
 * (session id or TLS 1.3 ticket) and the server resumes. With
 * BENCH_TLS_RESUME=0 this shim drops that session just before each new
 * handshake starts, so every connection is a full handshake. Either way it
 * counts handshakes and resumed ones and, at exit, appends
 * "handshakes=N resumed=M" to the file named by BENCH_TLS_STATS (if set).
 * The server's own count is what the harness trusts; this is a cross-check.
 *
 * No OpenSSL headers are needed: only opaque pointers cross this file. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct ssl_st SSL;
typedef struct ssl_session_st SSL_SESSION;

int SSL_set_session(SSL *ssl, SSL_SESSION *session);
int SSL_in_before(const SSL *ssl);
int SSL_session_reused(const SSL *ssl);

static int (*real_connect)(SSL *);
static int resume = 1;
static atomic_ulong handshakes, resumed;

__attribute__((constructor)) static void shim_init(void)
{
    real_connect = (int (*)(SSL *))dlsym(RTLD_NEXT, "SSL_connect");
    const char *r = getenv("BENCH_TLS_RESUME");
    resume = !(r && r[0] == '0');
}

int SSL_connect(SSL *ssl)
{
    if (!real_connect)
        return -1;
    /* Before the ClientHello is written: forget the previous session. */
    if (!resume && SSL_in_before(ssl))
        SSL_set_session(ssl, NULL);
    int rc = real_connect(ssl);
    if (rc == 1) {
        atomic_fetch_add(&handshakes, 1);
        if (SSL_session_reused(ssl))
            atomic_fetch_add(&resumed, 1);
    }
    return rc;
}

__attribute__((destructor)) static void shim_report(void)
{
    const char *path = getenv("BENCH_TLS_STATS");
    if (!path || !*path)
        return;
    FILE *f = fopen(path, "a");
    if (!f)
        return;
    fprintf(f, "handshakes=%lu resumed=%lu\n", (unsigned long)atomic_load(&handshakes),
            (unsigned long)atomic_load(&resumed));
    fclose(f);
}
