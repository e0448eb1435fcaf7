/*
 * Integration tests of least privilege (issue 6): the real binary, as the
 * harness starts it, runs under no_new_privs and the seccomp filter with no
 * capability left, still serves the whole note lifecycle, and stops cleanly
 * on SIGTERM under the filter. Started by root (as CI is), it runs as
 * NOTES_USER (nobody) and its database files belong to that user. Nothing
 * a client sends (password, token, note text, username) reaches its log.
 *
 * That a forbidden call kills the process is proved in tests/test_sandbox.c
 * with the same filter-installing function, since the server has (and must
 * have) no way to be asked to make one.
 */
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

static struct server srv;

static void prepare(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    harness_prepare(&srv);
    harness_setenv(&srv, "NOTES_REGISTRATION", "open");
}

static void start(void)
{
    prepare();
    harness_start(&srv);
}

static void finish(void)
{
    harness_cleanup(&srv);
}

/* The value of "Name:" in /proc/PID/status, tabs and all (caller frees). */
static char *status_line(pid_t pid, const char *name)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
    size_t len;
    char *all = harness_read_file(path, &len);
    cr_assert_not_null(all, "cannot read %s", path);
    char key[64];
    snprintf(key, sizeof(key), "\n%s:", name);
    char *at = strstr(all, key);
    cr_assert_not_null(at, "%s has no %s line", path, name);
    at += strlen(key);
    while (*at == '\t' || *at == ' ')
        at++;
    char *out = strndup(at, strcspn(at, "\n"));
    free(all);
    return out;
}

static void assert_status(const char *name, const char *want)
{
    char *v = status_line(srv.pid, name);
    cr_assert_str_eq(v, want, "/proc/%ld/status %s", (long)srv.pid, name);
    free(v);
}

static long request(const char *method, const char *path, const char *token, const char *body, char **out)
{
    char auth[256];
    const char *hdrs[4] = { "Content-Type: application/json", "Expect:", NULL, NULL };
    if (token) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
        hdrs[2] = auth;
    }
    struct request_opts o = { .method = method, .body = body, .headers = hdrs };
    struct response r;
    harness_request(&srv, path, &o, &r);
    cr_assert_eq(r.curl_code, CURLE_OK, "%s %s: curl error %d", method, path, r.curl_code);
    long status = r.status;
    if (out)
        *out = strdup(r.body);
    response_free(&r);
    return status;
}

/* The value of "key":"..." or "key":N in a small JSON body (caller frees). */
static char *field(const char *body, const char *key)
{
    char k[64];
    snprintf(k, sizeof(k), "\"%s\":", key);
    const char *at = strstr(body, k);
    cr_assert_not_null(at, "no %s in %s", key, body);
    at += strlen(k);
    if (*at == '"')
        return strndup(at + 1, strcspn(at + 1, "\""));
    return strndup(at, strcspn(at, ",}"));
}

#define USER "sandboxcanaryuser"
#define PASSWORD "canary-password-7f3a9c"
#define TITLE "canary-title-51d2"
#define CONTENT "canary-content-e8b0"

/* Register, log in, create, read, update, list and delete a note. Returns
 * the token (caller frees). */
static char *note_lifecycle(void)
{
    const char *cred = "{\"username\":\"" USER "\",\"password\":\"" PASSWORD "\"}";
    cr_assert_eq(request("POST", "/v1/auth/register", NULL, cred, NULL), 201);
    char *body;
    cr_assert_eq(request("POST", "/v1/auth/login", NULL, cred, &body), 200, "%s", body);
    char *token = field(body, "token");
    free(body);
    cr_assert_eq(request("POST", "/v1/notes", token, "{\"title\":\"" TITLE "\",\"content\":\"" CONTENT "\"}", &body),
                 201, "%s", body);
    char *id = field(body, "id"), path[64];
    free(body);
    snprintf(path, sizeof(path), "/v1/notes/%s", id);
    cr_assert_eq(request("GET", path, token, NULL, &body), 200);
    cr_assert(strstr(body, CONTENT), "%s", body);
    free(body);
    cr_assert_eq(request("PUT", path, token, "{\"title\":\"" TITLE "2\",\"content\":\"" CONTENT "\"}", NULL), 200);
    cr_assert_eq(request("GET", "/v1/notes?limit=10", token, NULL, &body), 200);
    cr_assert(strstr(body, TITLE "2"), "%s", body);
    free(body);
    cr_assert_eq(request("DELETE", path, token, NULL, NULL), 204);
    cr_assert_eq(request("GET", path, token, NULL, NULL), 404);
    free(id);
    return token;
}

Test(sandbox, server_runs_filtered_without_privileges_and_serves_notes, .init = start, .fini = finish)
{
    assert_status("NoNewPrivs", "1");
    assert_status("Seccomp", "2");   /* SECCOMP_MODE_FILTER */
    assert_status("CapEff", "0000000000000000");
    assert_status("CapPrm", "0000000000000000");
    assert_status("CapAmb", "0000000000000000");
    free(note_lifecycle());
    /* The filter holds on every thread, the pool's included. */
    assert_status("Seccomp", "2");
    /* SIGTERM: draining, closing and exiting all stay inside the filter. */
    cr_assert_eq(harness_stop(&srv), 0);
    char *err = harness_stderr(&srv);
    cr_assert(strstr(err, "\"msg\":\"sandbox entered\""), "%s", err);
    cr_assert(strstr(err, "\"msg\":\"stopped\""), "%s", err);
    free(err);
}

/* Once the keys are in the PSA key store, no copy of their text is left in
 * the environment block the process started with (what /proc/PID/environ
 * and a core dump show), and the process makes no core dump at all. */
Test(sandbox, no_key_text_is_left_in_the_environment_and_no_core_is_dumped, .init = start, .fini = finish)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%ld/environ", (long)srv.pid);
    size_t len = 0;
    char *env = harness_read_file(path, &len);
    if (env) {
        static const char *const keys[] = { "NOTES_DATA_KEY", "NOTES_TOKEN_KEY", "NOTES_AUDIT_KEY" };
        for (size_t i = 0; i < 3; i++) {
            const char *v = harness_getenv(&srv, keys[i]);
            cr_assert(v && strlen(v) >= 40, "%s not set by the harness", keys[i]);
            cr_assert_null(memmem(env, len, v, strlen(v)), "the text of %s is still in %s", keys[i], path);
        }
        free(env);
    } else {
        cr_assert_neq(geteuid(), 0, "root cannot read %s", path);   /* not dumpable: only root may */
    }
    snprintf(path, sizeof(path), "/proc/%ld/limits", (long)srv.pid);
    char *limits = harness_read_file(path, &len);
    cr_assert_not_null(limits);
    char *core = strstr(limits, "Max core file size");
    cr_assert_not_null(core);
    unsigned long soft = 1, hard = 1;
    cr_assert_eq(sscanf(core + strlen("Max core file size"), " %lu %lu", &soft, &hard), 2, "%.80s", core);
    cr_assert_eq(soft, 0, "core files allowed: %.80s", core);
    cr_assert_eq(hard, 0, "core files allowed: %.80s", core);
    free(limits);
}

Test(sandbox, nothing_a_client_sent_reaches_the_log, .init = start, .fini = finish)
{
    char *token = note_lifecycle();
    cr_assert_eq(harness_stop(&srv), 0);
    char *err = harness_stderr(&srv);
    const char *canaries[] = { USER, PASSWORD, TITLE, CONTENT, token, harness_getenv(&srv, "NOTES_DATA_KEY"),
                               harness_getenv(&srv, "NOTES_TOKEN_KEY"), harness_getenv(&srv, "NOTES_AUDIT_KEY") };
    for (size_t i = 0; i < sizeof(canaries) / sizeof(canaries[0]); i++)
        cr_assert_null(strstr(err, canaries[i]), "'%s' is in the log:\n%s", canaries[i], err);
    /* Every line is one JSON object (NOTES_LOG_FORMAT defaults to json). */
    for (char *line = strtok(err, "\n"); line; line = strtok(NULL, "\n"))
        cr_assert(line[0] == '{' && line[strlen(line) - 1] == '}', "not a JSON line: %s", line);
    free(err);
    free(token);
}

Test(sandbox, seccomp_off_is_loud_and_leaves_no_filter, .init = prepare, .fini = finish)
{
    harness_setenv(&srv, "NOTES_SECCOMP", "off");
    harness_start(&srv);
    assert_status("Seccomp", "0");
    assert_status("NoNewPrivs", "1");
    char *err = harness_stderr(&srv);
    cr_assert(strstr(err, "\"level\":\"warning\"") && strstr(err, "SECCOMP IS OFF"), "%s", err);
    free(err);
}

/* ---- started by root -------------------------------------------------------- */

static void need_root(void)
{
    if (geteuid() != 0)
        cr_skip("needs root (CI runs as root)");
}

static void assert_owned_by(const char *path, uid_t uid)
{
    struct stat st;
    cr_assert_eq(stat(path, &st), 0, "%s is missing", path);
    cr_assert_eq(st.st_uid, uid, "%s belongs to uid %u, not %u", path, (unsigned)st.st_uid, (unsigned)uid);
}

Test(sandbox, root_start_runs_as_nobody_and_writes_its_database, .init = prepare, .fini = finish)
{
    need_root();
    struct passwd *pw = getpwnam("nobody");
    cr_assert_not_null(pw);
    harness_setenv(&srv, "NOTES_USER", "nobody");
    harness_start(&srv);
    char want[64];
    snprintf(want, sizeof(want), "%u\t%u\t%u\t%u", pw->pw_uid, pw->pw_uid, pw->pw_uid, pw->pw_uid);
    assert_status("Uid", want);
    snprintf(want, sizeof(want), "%u\t%u\t%u\t%u", pw->pw_gid, pw->pw_gid, pw->pw_gid, pw->pw_gid);
    assert_status("Gid", want);
    assert_status("Groups", "");
    char *token = note_lifecycle();
    /* Its update and delete (changes 1 and 2) have the WAL truncated; a note
     * made after that is in the WAL again, and nothing truncates it. */
    harness_await_log(&srv, "changes up to 2)", 1, 10);
    cr_assert_eq(request("POST", "/v1/notes", token, "{\"title\":\"after\",\"content\":\"the truncation\"}", NULL),
                 201);
    free(token);
    /* What it wrote as nobody is nobody's: the WAL holds the new rows. */
    const char *db = harness_getenv(&srv, "NOTES_DB");
    char wal[600];
    snprintf(wal, sizeof(wal), "%s-wal", db);
    assert_owned_by(db, pw->pw_uid);
    assert_owned_by(wal, pw->pw_uid);
    struct stat st;
    cr_assert_eq(stat(wal, &st), 0);
    cr_assert_gt(st.st_size, 0, "nothing was written to the WAL");
    cr_assert_eq(harness_stop(&srv), 0);
    /* A second start as root finds the folders already handed over. */
    harness_start(&srv);
    cr_assert_eq(request("GET", "/healthz", NULL, NULL, NULL), 200);
}

/* An operator's `notesd user ...` run as root may rotate the trail: the new
 * audit.log must still belong to the user the server runs as, or the next
 * server could not write it (and would refuse every change). */
Test(sandbox, root_cli_rotation_leaves_the_trail_to_the_server_user, .init = prepare, .fini = finish, .timeout = 60)
{
    need_root();
    struct passwd *pw = getpwnam("nobody");
    cr_assert_not_null(pw);
    harness_setenv(&srv, "NOTES_USER", "nobody");
    harness_setenv(&srv, "NOTES_AUDIT_MAX_BYTES", "4096");
    harness_start(&srv);
    cr_assert_eq(harness_stop(&srv), 0);
    char log[600];
    snprintf(log, sizeof(log), "%s/audit.log", harness_getenv(&srv, "NOTES_AUDIT_DIR"));
    struct stat st;
    cr_assert_eq(stat(log, &st), 0);
    ino_t first = st.st_ino;
    /* user.add lines until the CLI (root) rotates the file (bounded) */
    for (int i = 0; i < 40 && st.st_ino == first; i++) {
        char name[32];
        snprintf(name, sizeof(name), "rotor%d", i);
        int rc = harness_run_stdin(&srv, (const char *[]){ "user", "add", name, "--role", "user", NULL },
                                   "a long enough password 7\n");
        cr_assert_eq(rc, 0, "notesd user add failed");
        cr_assert_eq(stat(log, &st), 0);
    }
    cr_assert_neq(st.st_ino, first, "the CLI never rotated the trail");
    assert_owned_by(log, pw->pw_uid);
    /* and the server, as nobody, can record changes in it */
    harness_start(&srv);
    free(note_lifecycle());
}

/* Runs `cmd`, expects the configuration refusal (78) saying `why`, and no
 * line about a stop signal nobody sent. */
static void assert_refused(const char *cmd, const char *why)
{
    int st = harness_run(&srv, (const char *[]){ cmd, NULL });
    char *err = harness_stderr(&srv);
    cr_assert_eq(st, 78, "%s: exit %d, stderr:\n%s", cmd, st, err);
    cr_assert(strstr(err, why), "%s: stderr does not say '%s':\n%s", cmd, why, err);
    cr_assert_null(strstr(err, "received SIGTERM"), "%s: a refused start logs a stop signal:\n%s", cmd, err);
    free(err);
}

Test(sandbox, root_start_refuses_an_unknown_user, .init = prepare, .fini = finish)
{
    need_root();
    harness_setenv(&srv, "NOTES_USER", "no-such-user-notesd");
    assert_refused("serve", "NOTES_USER: no such user");
}

/* check-config, run as root, checks the account serve would drop to. */
Test(sandbox, root_check_config_refuses_an_unknown_user, .init = prepare, .fini = finish)
{
    need_root();
    harness_setenv(&srv, "NOTES_USER", "no-such-user-notesd");
    assert_refused("check-config", "NOTES_USER: no such user");
}

/* A step of the sandbox that fails once the server listens (here: handing
 * a database folder with a stranger's file in it to NOTES_USER) is a
 * configuration refusal too. */
Test(sandbox, a_refused_hand_over_exits_78_without_a_stop_signal, .init = prepare, .fini = finish)
{
    need_root();
    harness_setenv(&srv, "NOTES_USER", "nobody");
    char stray[600];
    snprintf(stray, sizeof(stray), "%s/data/stray.txt", srv.dir);
    FILE *f = fopen(stray, "w");
    cr_assert_not_null(f);
    fclose(f);
    assert_refused("serve", "not notesd's");
}
