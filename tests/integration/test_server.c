/*
 * Integration tests of the walking skeleton: the real binary on a loopback
 * port, spoken to by libcurl. TLS versions and suites, /healthz, security
 * headers, problem bodies, clean shutdown, and every start-up refusal.
 */
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "crypto.h"
#include "harness.h"
#include "../security_headers.h"
#include "tls_certgen.h"

static struct server srv;

static void start(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    harness_prepare(&srv);
    harness_start(&srv);
}

static void prepare_only(void)
{
    harness_prepare(&srv);
}

static void finish(void)
{
    harness_cleanup(&srv);
}

static void assert_header(const struct response *r, const char *name, const char *want)
{
    char *v = response_header(r, name);
    cr_assert(v, "missing header %s in:\n%s", name, r->headers);
    cr_assert_str_eq(v, want, "header %s", name);
    free(v);
}

static void assert_security_headers(const struct response *r)
{
    for (size_t i = 0; i < N_EXPECTED_SECURITY_HEADERS; i++)
        assert_header(r, expected_security_headers[i][0], expected_security_headers[i][1]);
    char *server = response_header(r, "Server");
    char *powered = response_header(r, "X-Powered-By");
    cr_assert_null(server, "a Server header discloses the implementation");
    cr_assert_null(powered);
}

Test(server, healthz_over_tls13_with_every_security_header, .init = start, .fini = finish)
{
    struct response r;
    harness_request(&srv, "/healthz", NULL, &r);
    cr_assert_eq(r.curl_code, CURLE_OK, "curl error %d", r.curl_code);
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(r.body, "{\"status\":\"ok\"}");
    cr_assert_str_eq(r.tls_version, "TLSv1.3");
    assert_security_headers(&r);
    assert_header(&r, "Content-Type", "application/json; charset=utf-8");
    response_free(&r);
}

Test(server, tls12_negotiates_an_ecdhe_aead_suite, .init = start, .fini = finish)
{
    struct request_opts o = { .tls_min = CURL_SSLVERSION_TLSv1_2, .tls_max = CURL_SSLVERSION_MAX_TLSv1_2 };
    struct response r;
    harness_request(&srv, "/healthz", &o, &r);
    cr_assert_eq(r.curl_code, CURLE_OK, "curl error %d", r.curl_code);
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(r.tls_version, "TLSv1.2");
    cr_assert(strncmp(r.tls_cipher, "ECDHE-ECDSA-", 12) == 0, "suite %s", r.tls_cipher);
    cr_assert(strstr(r.tls_cipher, "GCM") || strstr(r.tls_cipher, "CHACHA20"), "suite %s", r.tls_cipher);
    assert_security_headers(&r);
    response_free(&r);
}

/* Mozilla's profile: the client chooses among the allowed suites (it knows
 * whether it has AES hardware). Each order a client offers is the one it
 * gets. */
Test(server, tls12_the_client_chooses_among_the_allowed_suites, .init = start, .fini = finish)
{
    static const char *const orders[][2] = {
        { "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-ECDSA-AES128-GCM-SHA256" },
        { "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384" },
        { "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-ECDSA-CHACHA20-POLY1305" },
    };
    for (size_t i = 0; i < sizeof(orders) / sizeof(orders[0]); i++) {
        struct request_opts o = { .tls_min = CURL_SSLVERSION_TLSv1_2, .tls_max = CURL_SSLVERSION_MAX_TLSv1_2,
                                  .cipher_list = orders[i][0] };
        struct response r;
        harness_request(&srv, "/healthz", &o, &r);
        cr_assert_eq(r.curl_code, CURLE_OK, "curl error %d for %s", r.curl_code, orders[i][0]);
        cr_assert_str_eq(r.tls_cipher, orders[i][1], "offered %s", orders[i][0]);
        response_free(&r);
    }
}

Test(server, tls12_cbc_and_non_forward_secret_suites_are_refused, .init = start, .fini = finish)
{
    static const char *weak[] = {
        "ECDHE-ECDSA-AES128-SHA256",  /* CBC */
        "ECDHE-ECDSA-AES256-SHA",     /* CBC, SHA-1 */
        "AES128-GCM-SHA256",          /* RSA key exchange: no forward secrecy */
    };
    for (size_t i = 0; i < sizeof(weak) / sizeof(weak[0]); i++) {
        struct request_opts o = { .tls_min = CURL_SSLVERSION_TLSv1_2,
                                  .tls_max = CURL_SSLVERSION_MAX_TLSv1_2, .cipher_list = weak[i] };
        struct response r;
        harness_request(&srv, "/healthz", &o, &r);
        cr_assert_neq(r.curl_code, CURLE_OK, "suite %s was accepted", weak[i]);
        cr_assert_eq(r.status, 0);
        response_free(&r);
    }
}

Test(server, unknown_path_is_a_404_problem, .init = start, .fini = finish)
{
    struct response r;
    harness_request(&srv, "/nope", NULL, &r);
    cr_assert_eq(r.status, 404);
    assert_header(&r, "Content-Type", "application/problem+json");
    assert_security_headers(&r);
    cr_assert(strstr(r.body, "\"status\":404"), "%s", r.body);
    cr_assert(strstr(r.body, "\"title\":\"Not Found\""), "%s", r.body);
    cr_assert(strstr(r.body, "\"type\":"), "%s", r.body);
    cr_assert(strstr(r.body, "\"detail\":"), "%s", r.body);
    char *id = response_header(&r, "X-Request-Id");
    cr_assert(id);
    char want[64];
    snprintf(want, sizeof(want), "\"request_id\":\"%s\"", id);
    cr_assert(strstr(r.body, want), "%s", r.body);
    free(id);
    response_free(&r);
}

Test(server, wrong_method_is_a_405_with_allow, .init = start, .fini = finish)
{
    struct request_opts o = { .method = "POST", .body = "{}" };
    struct response r;
    harness_request(&srv, "/healthz", &o, &r);
    cr_assert_eq(r.status, 405);
    assert_header(&r, "Allow", "GET, HEAD");
    assert_header(&r, "Content-Type", "application/problem+json");
    assert_security_headers(&r);
    cr_assert(strstr(r.body, "\"status\":405"), "%s", r.body);
    response_free(&r);
}

Test(server, sigterm_exits_zero_after_closing, .init = start, .fini = finish)
{
    struct response r;
    harness_request(&srv, "/healthz", NULL, &r);
    cr_assert_eq(r.status, 200);
    response_free(&r);
    cr_assert_eq(harness_stop(&srv), 0);
    char *err = harness_stderr(&srv);
    cr_assert(strstr(err, "stopped"), "%s", err);
    free(err);
}

static void assert_refused(const char *var, const char *why);
static char *env_value(const struct server *s, const char *name);

/* ---- the audit trail's durability modes -------------------------------------- */

static size_t count_in_audit_log(const char *needle)
{
    char path[600];
    snprintf(path, sizeof(path), "%s/audit.log", harness_getenv(&srv, "NOTES_AUDIT_DIR"));
    size_t len = 0, n = 0;
    char *log = harness_read_file(path, &len);
    cr_assert_not_null(log);
    for (const char *p = log; (p = strstr(p, needle)) != NULL; p++)
        n++;
    free(log);
    return n;
}

/* Under NOTES_AUDIT_SYNC=always a response that wrote an audit line is held
 * until an fsync on the thread pool covers it: each must still arrive. */
Test(audit, sync_always_releases_each_response_after_its_line_is_synced, .init = prepare_only, .fini = finish)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    harness_setenv(&srv, "NOTES_AUDIT_SYNC", "always");
    harness_start(&srv);
    for (int i = 0; i < 5; i++) {
        struct response r;
        harness_request(&srv, "/v1/me", NULL, &r);
        cr_assert_eq(r.status, 401, "request %d: curl %d", i, r.curl_code);
        response_free(&r);
    }
    struct response h;
    harness_request(&srv, "/healthz", NULL, &h);   /* no line: never held */
    cr_assert_eq(h.status, 200);
    response_free(&h);
    cr_assert_eq(harness_stop(&srv), 0);
    cr_assert_eq(count_in_audit_log("\"event\":\"authz.deny\""), 5);
    cr_assert_eq(count_in_audit_log("\"event\":\"server.start\""), 1);
}

Test(refuse, audit_dir_that_is_not_a_folder, .init = prepare_only, .fini = finish)
{
    char path[400];
    snprintf(path, sizeof(path), "%s/not-a-folder", srv.dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fclose(f);
    harness_setenv(&srv, "NOTES_AUDIT_DIR", path);
    assert_refused("NOTES_AUDIT_DIR", NULL);
}

/* ---- start-up refusals: exit 78, one line naming the variable -------------- */

static char *env_value(const struct server *s, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < s->n_env; i++)
        if (strncmp(s->env[i], name, n) == 0 && s->env[i][n] == '=')
            return strdup(s->env[i] + n + 1);
    return NULL;
}

/* Runs serve, expects 78 and a message naming `var`, and checks that no
 * key's value appears anywhere in what the server printed. */
static void assert_refused(const char *var, const char *why)
{
    char *keys[3] = { env_value(&srv, "NOTES_DATA_KEY"), env_value(&srv, "NOTES_TOKEN_KEY"),
                      env_value(&srv, "NOTES_AUDIT_KEY") };
    int st = harness_run(&srv, (const char *[]){ "serve", NULL });
    char *err = harness_stderr(&srv);
    cr_assert_eq(st, 78, "exit %d, stderr:\n%s", st, err);
    cr_assert(strstr(err, var), "stderr does not name %s:\n%s", var, err);
    if (why)
        cr_assert(strstr(err, why), "stderr does not say '%s':\n%s", why, err);
    for (int i = 0; i < 3; i++) {
        if (keys[i])
            cr_assert_null(strstr(err, keys[i]), "a key value leaked to stderr");
        free(keys[i]);
    }
    free(err);
}

/* ---- open files: every connection is a socket --------------------------- */

/* This test process (and so the server it starts) gets `soft` and `hard`
 * open files. */
static void limit_files(rlim_t soft, rlim_t hard)
{
    struct rlimit rl = { soft, hard };
    cr_assert_eq(setrlimit(RLIMIT_NOFILE, &rl), 0, "setrlimit(%llu, %llu)", (unsigned long long)soft,
                 (unsigned long long)hard);
}

/* The soft open-file limit of process `pid`, from /proc/PID/limits. */
static unsigned long long files_soft_limit(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%ld/limits", (long)pid);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "%s", path);
    unsigned long long soft = 0;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "Max open files %llu", &soft) == 1)
            break;
    fclose(f);
    return soft;
}

/* Past the open-file limit accept() fails and so does the audit trail's
 * next file: caps that cannot be met are refused at start-up, by name. */
Test(refuse, connection_caps_past_the_open_file_limit, .init = prepare_only, .fini = finish)
{
    limit_files(512, 512);
    harness_setenv(&srv, "NOTES_MAX_CONNECTIONS", "1000");
    assert_refused("NOTES_MAX_CONNECTIONS", "open files");
}

/* The redirect listener holds up to as many connections again: 400 each
 * and the reserve need 864 files, past a limit of 512 that 400 alone fit. */
Test(refuse, both_listeners_caps_past_the_open_file_limit, .init = prepare_only, .fini = finish)
{
    limit_files(512, 512);
    harness_setenv(&srv, "NOTES_MAX_CONNECTIONS", "400");
    harness_setenv(&srv, "NOTES_REDIRECT_LISTEN", "127.0.0.1:0");
    assert_refused("NOTES_MAX_CONNECTIONS", "redirect listener");
}

/* The same caps under a soft limit the hard one allows to raise: the server
 * raises it to what they need (1000 sockets and a reserve) and serves. */
Test(server, the_soft_open_file_limit_is_raised_to_what_the_caps_need, .init = prepare_only, .fini = finish)
{
    struct rlimit rl;
    cr_assert_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    cr_assert(rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= 2048, "hard open-file limit %llu is too low here",
              (unsigned long long)rl.rlim_max);
    limit_files(256, rl.rlim_max);
    harness_setenv(&srv, "NOTES_MAX_CONNECTIONS", "1000");
    harness_start(&srv);
    cr_assert_gt(files_soft_limit(srv.pid), 1000, "the server serves 1000 connections with %llu open files "
                 "and none for its database and audit trail", files_soft_limit(srv.pid));
    cr_assert_eq(harness_stop(&srv), 0);
}

Test(refuse, missing_token_key_exits_78_naming_it, .init = prepare_only, .fini = finish)
{
    harness_setenv(&srv, "NOTES_TOKEN_KEY", NULL);
    assert_refused("NOTES_TOKEN_KEY", "missing");
}

Test(refuse, short_data_key, .init = prepare_only, .fini = finish)
{
    harness_setenv(&srv, "NOTES_DATA_KEY", "c2hvcnQga2V5IG9mIDIwIGJ5dGVz");
    assert_refused("NOTES_DATA_KEY", "too short");
}

Test(refuse, same_key_for_two_purposes, .init = prepare_only, .fini = finish)
{
    char *data = env_value(&srv, "NOTES_DATA_KEY");
    harness_setenv(&srv, "NOTES_AUDIT_KEY", data);
    free(data);
    assert_refused("NOTES_AUDIT_KEY", "same key");
}

Test(refuse, key_file_readable_by_others, .init = prepare_only, .fini = finish)
{
    cr_assert_eq(chmod(srv.key, 0644), 0);
    assert_refused("NOTES_TLS_KEY", "group or others");
}

/* The TLS key is a secret file too: a 0600 key.pem of another user (nobody)
 * is that user's to replace, so a server started as root refuses it. */
Test(refuse, key_file_owned_by_another_user, .init = prepare_only, .fini = finish)
{
    if (geteuid() != 0)
        cr_skip("needs root to give a file to another user (CI runs as root)");
    cr_assert_eq(chown(srv.key, 65534, 65534), 0);
    assert_refused("NOTES_TLS_KEY", "belongs to");
    int st = harness_run(&srv, (const char *[]){ "check-config", NULL });
    cr_assert_eq(st, 78, "check-config exit %d", st);
}

/* Every handshake message must fit one output record (4 KiB): a chain
 * that cannot is refused at start-up, not at each client's handshake. */
Test(refuse, certificate_chain_too_large_for_a_handshake_record, .init = prepare_only, .fini = finish)
{
    size_t len = 0;
    char *pem = harness_read_file(srv.cert, &len);
    cr_assert_not_null(pem);
    char path[600];
    snprintf(path, sizeof(path), "%s/long-chain.pem", srv.dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    for (int i = 0; i < 12; i++)   /* about 12 x 500 bytes of DER */
        fwrite(pem, 1, len, f);
    fclose(f);
    free(pem);
    harness_setenv(&srv, "NOTES_TLS_CERT", path);
    assert_refused("NOTES_TLS_CERT", "too large");
}

Test(refuse, key_that_does_not_match_the_certificate, .init = prepare_only, .fini = finish)
{
    char other[400], why[256];
    snprintf(other, sizeof(other), "%s/other", srv.dir);
    cr_assert_eq(crypto_init(), 0);
    cr_assert_eq(tls_gen_cert("localhost", other, why, sizeof(why)), 0, "%s", why);
    char key[420];
    snprintf(key, sizeof(key), "%s/key.pem", other);
    harness_setenv(&srv, "NOTES_TLS_KEY", key);
    assert_refused("NOTES_TLS_KEY", "does not match");
}

Test(refuse, expired_certificate, .init = prepare_only, .fini = finish)
{
    char dir[400], why[256], cert[420], key[420];
    snprintf(dir, sizeof(dir), "%s/expired", srv.dir);
    time_t now = time(NULL);
    cr_assert_eq(crypto_init(), 0);
    cr_assert_eq(tls_gen_cert_valid("localhost", dir, now - 10 * 86400, now - 86400, why, sizeof(why)), 0);
    snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
    snprintf(key, sizeof(key), "%s/key.pem", dir);
    harness_setenv(&srv, "NOTES_TLS_CERT", cert);
    harness_setenv(&srv, "NOTES_TLS_KEY", key);
    assert_refused("NOTES_TLS_CERT", "expired");
}

Test(refuse, missing_certificate_file, .init = prepare_only, .fini = finish)
{
    harness_setenv(&srv, "NOTES_TLS_CERT", "/nonexistent/cert.pem");
    assert_refused("NOTES_TLS_CERT", NULL);
}

Test(refuse, certificate_setting_absent, .init = prepare_only, .fini = finish)
{
    harness_setenv(&srv, "NOTES_TLS_CERT", NULL);
    assert_refused("NOTES_TLS_CERT", "missing");
}

/* systemd may name its notify socket in the abstract namespace ("@..."):
 * the readiness datagram must still arrive once the sandbox (Landlock's
 * scopes forbid reaching abstract sockets made outside it) is on. */
Test(startup, readiness_reaches_an_abstract_notify_socket, .init = prepare_only, .fini = finish)
{
    srv.notify_abstract = true;
    harness_start(&srv);
    cr_assert_gt(srv.port, 0);
    cr_assert_eq(harness_stop(&srv), 0);
}

Test(startup, logs_the_tls_profile_and_the_settings_but_no_secret, .init = start, .fini = finish)
{
    cr_assert_eq(harness_stop(&srv), 0);
    char *err = harness_stderr(&srv);
    cr_assert(strstr(err, "TLS 1.3 and 1.2; groups x25519"), "%s", err);
    cr_assert(strstr(err, "configuration: NOTES_LISTEN=127.0.0.1:0"), "%s", err);
    cr_assert(strstr(err, "NOTES_AUDIT_SYNC=batch"), "%s", err);
    cr_assert(strstr(err, "listening on https://127.0.0.1:"), "%s", err);
    const char *keys[] = { "NOTES_DATA_KEY", "NOTES_TOKEN_KEY", "NOTES_AUDIT_KEY" };
    for (size_t i = 0; i < 3; i++) {
        char *v = env_value(&srv, keys[i]);
        cr_assert_not_null(v);
        cr_assert_null(strstr(err, v), "the value of %s is in the log", keys[i]);
        char name[64];
        snprintf(name, sizeof(name), "%s=", keys[i]);
        cr_assert_null(strstr(err, name), "%s is listed with the settings", keys[i]);
        free(v);
    }
    free(err);
}

Test(startup, unknown_notes_variable_is_warned_about, .init = start, .fini = finish)
{
    cr_assert_eq(harness_stop(&srv), 0);
    harness_setenv(&srv, "NOTES_LISTN", "127.0.0.1:1");
    harness_start(&srv);
    char *err = harness_stderr(&srv);
    /* One JSON line (the default NOTES_LOG_FORMAT) at level warning. */
    const char *msg = strstr(err, "\"msg\":\"unknown setting NOTES_LISTN");
    cr_assert(msg, "%s", err);
    const char *line = msg;
    while (line > err && line[-1] != '\n')
        line--;
    const char *level = strstr(line, "\"level\":\"warning\"");
    cr_assert(strncmp(line, "{\"ts\":", 6) == 0 && level && level < msg, "%s", err);
    free(err);
}

Test(startup, check_config_accepts_a_good_configuration, .init = prepare_only, .fini = finish)
{
    cr_assert_eq(harness_run(&srv, (const char *[]){ "check-config", NULL }), 0);
}

Test(startup, version_names_every_linked_library, .init = prepare_only, .fini = finish)
{
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "%s --version", harness_bin());
    FILE *p = popen(cmd, "r");
    cr_assert(p);
    char out[1024] = "";
    size_t n = fread(out, 1, sizeof(out) - 1, p);
    out[n] = 0;
    cr_assert_eq(pclose(p), 0);
    static const char *libs[] = { "notesd ", "mbedTLS 3.6.", "llhttp 9.2.", "SQLite 3.", "libuv 1.", "cJSON 1.7." };
    for (size_t i = 0; i < sizeof(libs) / sizeof(libs[0]); i++)
        cr_assert(strstr(out, libs[i]), "missing %s in:\n%s", libs[i], out);
}
