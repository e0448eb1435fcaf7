/*
 * harness.h - start the real notesd binary on a loopback port and talk to
 * it with libcurl (an independent TLS stack: OpenSSL under curl).
 *
 * Each server gets a fresh temporary folder with its own certificate (made
 * by `notesd gen-cert`) and fresh keys (from `notesd gen-secrets`). Start-up
 * waits for the server's sd_notify READY=1 datagram, which also carries the
 * port it bound (NOTES_LISTEN=127.0.0.1:0), so no test sleeps or guesses a
 * port. Every wait is bounded.
 */
#ifndef NOTESD_TEST_HARNESS_H
#define NOTESD_TEST_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define HARNESS_MAX_ENV 64

struct server {
    pid_t pid;
    int port;
    int redirect_port;      /* NOTES_REDIRECT_LISTEN's bound port, 0 if off */
    char dir[256];          /* temporary folder for this server */
    char cert[512];         /* dir/certs/cert.pem */
    char key[512];
    char stderr_path[512];  /* everything the server wrote on stderr */
    char *env[HARNESS_MAX_ENV];
    size_t n_env;
    long fsize_limit;       /* > 0: RLIMIT_FSIZE soft limit in bytes for the
                             * commands harness_start/harness_run spawn next */
    bool notify_abstract;   /* harness_start: NOTIFY_SOCKET in the abstract
                             * namespace ("@name"), as systemd may give it */
};

/** Path of the notesd binary under test (from $NOTESD_BIN). */
const char *harness_bin(void);

/** Create the folder, certificate and keys and fill a default environment
 *  (keys, cert, key, NOTES_LISTEN=127.0.0.1:0, data under the folder). */
void harness_prepare(struct server *s);
/** Set or replace NAME=value in the environment; value NULL removes NAME. */
void harness_setenv(struct server *s, const char *name, const char *value);
/** Start notesd serve and wait (at most 15 s) for readiness. Asserts. */
void harness_start(struct server *s);
/** Run notesd with `args` (NULL-terminated, without argv[0]) and the
 *  prepared environment to completion (at most 15 s); return its exit
 *  status and put its stderr in s->stderr_path. */
int harness_run(struct server *s, const char *const *args);
/** SIGTERM, then wait at most 15 s; returns the exit status (or -signal). */
int harness_stop(struct server *s);
/** Remove the temporary folder and free the environment. */
void harness_cleanup(struct server *s);
/** The server's stderr so far, NUL-terminated (caller frees). */
char *harness_stderr(const struct server *s);
/** CLOCK_MONOTONIC in milliseconds: for timing what the server does. */
long harness_now_ms(void);
/** How many times the server's stderr says `what` so far. */
size_t harness_log_count(const struct server *s, const char *what);
/** Wait (bounded by `secs`, asserting) until the server's stderr says
 *  `what` at least `times` times: a readiness signal from its log. */
void harness_await_log(const struct server *s, const char *what, size_t times, long secs);

struct response {
    long status;
    char *headers;           /* raw header block, NUL-terminated */
    char *body;              /* NUL-terminated */
    size_t body_len;
    char tls_version[32];    /* e.g. "TLSv1.3", from curl's handshake log */
    char tls_cipher[64];
    int curl_code;           /* CURLE_OK when a response arrived */
};

struct request_opts {
    const char *method;      /* default GET */
    const char *body;
    const char *const *headers; /* NULL-terminated "Name: value" list */
    long tls_min, tls_max;   /* CURL_SSLVERSION_* (0: default) */
    const char *cipher_list; /* TLS 1.2 cipher list for the client */
    long timeout_ms;         /* the whole request (0: 10 s) */
};

/** One HTTPS request to the server at https://localhost:PORT + path. */
void harness_request(const struct server *s, const char *path, const struct request_opts *o,
                     struct response *r);
void response_free(struct response *r);
/** harness_request() of an API call: `token` (or NULL) as a bearer token,
 *  a JSON `body` (or NULL), no Expect: 100-continue, `timeout_ms` (0: 10 s). */
void harness_call(const struct server *s, const char *method, const char *path, const char *token,
                  const char *body, long timeout_ms, struct response *r);
/** Value of a response header (case-insensitive name), or NULL; caller frees. */
char *response_header(const struct response *r, const char *name);

/* ---- helpers added for test_api_*.c ---------------------------------------- */

/** Like harness_run, with `input` written to the command's standard input
 *  (e.g. the password for `notesd user add`). */
int harness_run_stdin(struct server *s, const char *const *args, const char *input);
/** Value of NAME in the prepared environment, or NULL (not a copy). */
const char *harness_getenv(const struct server *s, const char *name);
/** A fresh lower-case hex marker (prefix + 16 hex digits), unique across
 *  runs: usernames and canaries no two tests share. Asserts. */
void harness_marker(char *out, size_t cap, const char *prefix);
/** strdup that asserts. */
char *harness_strdup(const char *s);
/** printf into a new string (caller frees); asserts on failure. */
__attribute__((format(printf, 1, 2))) char *harness_fmt(const char *f, ...);
/** Let `ms` milliseconds pass: a client's own pace (a slow reader, an idle
 *  spell a deadline must notice), never to wait for the server. */
void harness_pace_ms(long ms);
/** A new user (name `prefix` + random) with `notes` notes of 30,000 quotes
 *  each: 30 KB stored, 60,000 bytes each in an export (a quote is escaped).
 *  Needs open registration. Its token (caller frees). */
char *harness_user_with_big_notes(struct server *s, const char *prefix, int notes);
/** Preload the shim library named by the environment variable `shim_var`
 *  (meson sets it) into the server, and tell it its flag file: `flag_name`
 *  in the test's folder, whose path goes to `flag` and to the server's
 *  `flag_var`. The folder is one NOTES_USER may pass through (0711), so the
 *  shim finds the flag after the server dropped root. */
void harness_preload_shim(struct server *s, const char *shim_var, const char *flag_var, const char *flag_name,
                          char *flag, size_t cap);
/** Lines of the server's audit.log naming `event` and holding `also` (a
 *  literal piece of the line; "" for any); *sum adds up their "count"
 *  fields (1 for a line without one). Asserts the log can be read. */
size_t harness_audit_lines(const struct server *s, const char *event, const char *also, unsigned long long *sum);
/** The whole file (NUL-terminated; may contain NULs), its size in *len;
 *  NULL when it cannot be opened. Caller frees. */
char *harness_read_file(const char *path, size_t *len);

#endif
