/*
 * Integration tests of NOTES_AUDIT_SYNC=always on a disk whose fsync fails:
 * the real notesd binary with fsync_shim.so preloaded, which makes fsync(2)
 * and fdatasync(2) fail with EIO while a flag file exists and says so on
 * the server's stderr once per call.
 *
 * While the syncs fail, held answers are released (threat model §6) and
 * reads, refusals and changes' 503s answer at once; the server retries the
 * sync on a timer, not in a loop; once the disk works again, changes are
 * accepted. Readiness comes from the server's log (harness_await_log); the
 * one fixed wait measures the retry rate over a window. Every wait is
 * bounded.
 */
#include <criterion/criterion.h>
#include <cJSON.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define PW "violet-Anchor-7392-lamp"
#define SHIM_LINE "fsync-shim: EIO"
/* An answer that does not wait for the disk comes in milliseconds; this
 * leaves room for a slow, loaded machine, and is far below forever. */
#define PROMPT_MS 4000L
#define WINDOW_MS 1000L
/* Calls to fsync in WINDOW_MS while it fails. A retry every AUDIT_BATCH_MS
 * (100 ms) syncs two descriptors (the log and its folder): about 20. The
 * loop this test was written for made thousands. */
#define MAX_FAILED_SYNCS 60

static struct server srv;
static char flag[300];

static void start_always(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    harness_prepare(&srv);
    harness_preload_shim(&srv, "NOTESD_FSYNC_SHIM", "NOTESD_TEST_FSYNC_FLAG", "fsync-fails", flag, sizeof(flag));
    harness_setenv(&srv, "NOTES_AUDIT_SYNC", "always");
    harness_setenv(&srv, "NOTES_REGISTRATION", "open");
    harness_start(&srv);
}

static void finish(void)
{
    if (flag[0])
        unlink(flag);
    harness_cleanup(&srv);
}

static void set_flag(bool on)
{
    if (on) {
        int fd = open(flag, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        cr_assert_geq(fd, 0, "%s: %s", flag, strerror(errno));
        close(fd);
    } else {
        cr_assert_eq(unlink(flag), 0, "%s: %s", flag, strerror(errno));
    }
}

/* One request with a deadline of `timeout_ms`; asserts it was answered
 * with `want` and returns the body (caller frees). */
static char *req(const char *method, const char *path, const char *token, const char *body, long want,
                 long timeout_ms)
{
    struct response r;
    long t0 = harness_now_ms();
    harness_call(&srv, method, path, token, body, timeout_ms, &r);
    long took = harness_now_ms() - t0;
    cr_assert_eq(r.curl_code, CURLE_OK, "%s %s: no answer within %ld ms (curl error %d, after %ld ms)",
                 method ? method : "GET", path, timeout_ms, r.curl_code, took);
    cr_assert_eq(r.status, want, "%s %s: expected %ld, got %ld: %.400s", method ? method : "GET", path, want,
                 r.status, r.body);
    char *out = harness_strdup(r.body ? r.body : "");
    response_free(&r);
    return out;
}

static char *json_str(const char *k1, const char *v1, const char *k2, const char *v2)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, k1, v1);
    cJSON_AddStringToObject(o, k2, v2);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    cr_assert(s);
    return s;
}

static char *register_and_login(void)
{
    char user[40];
    harness_marker(user, sizeof(user), "sync");
    char *b = json_str("username", user, "password", PW);
    free(req("POST", "/v1/auth/register", NULL, b, 201, 120000));
    char *body = req("POST", "/v1/auth/login", NULL, b, 200, 120000);
    free(b);
    cJSON *j = cJSON_Parse(body);
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "token");
    cr_assert(cJSON_IsString(t), "no token: %s", body);
    char *tok = harness_strdup(t->valuestring);
    cJSON_Delete(j);
    free(body);
    return tok;
}

static size_t count_notes(const char *token)
{
    char *body = req("GET", "/v1/notes", token, NULL, 200, PROMPT_MS);
    cJSON *j = cJSON_Parse(body);
    size_t n = (size_t)cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j, "notes"));
    cJSON_Delete(j);
    free(body);
    return n;
}

/* utime + stime of the process, in clock ticks. */
static long cpu_ticks(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f);
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = 0;
    const char *p = strrchr(buf, ')');   /* the command may hold spaces */
    cr_assert(p);
    unsigned long utime = 0, stime = 0;
    /* after ")": state, then fields 4..13, then utime (14) and stime (15) */
    cr_assert_eq(sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime), 2);
    return (long)(utime + stime);
}

Test(sync_fails, answers_leave_the_server_rests_and_changes_resume_once_it_syncs, .init = start_always,
     .fini = finish, .timeout = 120)
{
    char *tok = register_and_login();
    char *note = json_str("title", "before", "content", "the disk works");
    free(req("POST", "/v1/notes", tok, note, 201, PROMPT_MS));
    free(note);
    cr_assert_eq(harness_log_count(&srv, SHIM_LINE), 0, "the shim failed a sync before its flag existed");

    /* The disk fails. The first answer held for a sync is released when it
     * fails: a 401 writes its token.rejected line and waits for the sync. */
    set_flag(true);
    free(req("GET", "/v1/notes", NULL, NULL, 401, PROMPT_MS));
    harness_await_log(&srv, "cannot sync the audit log", 1, 10);

    /* Reads, refusals and liveness answer while the sync keeps failing. */
    free(req("GET", "/healthz", NULL, NULL, 200, PROMPT_MS));
    free(req("GET", "/v1/notes", NULL, NULL, 401, PROMPT_MS));
    free(req("GET", "/v1/notes/999999", tok, NULL, 404, PROMPT_MS));
    cr_assert_eq(count_notes(tok), 1);
    note = json_str("title", "during", "content", "refused");
    free(req("POST", "/v1/notes", tok, note, 503, PROMPT_MS));
    free(note);

    /* Idle, it retries the sync on a timer, not in a loop. */
    size_t calls0 = harness_log_count(&srv, SHIM_LINE);
    long cpu0 = cpu_ticks(srv.pid), t0 = harness_now_ms();
    nanosleep(&(struct timespec){ WINDOW_MS / 1000, (WINDOW_MS % 1000) * 1000000L }, NULL);
    size_t calls = harness_log_count(&srv, SHIM_LINE) - calls0;
    long cpu_ms = (cpu_ticks(srv.pid) - cpu0) * 1000 / sysconf(_SC_CLK_TCK), took = harness_now_ms() - t0;
    cr_assert_leq(calls, MAX_FAILED_SYNCS, "%zu failed fsync calls in %ld ms: the server spins", calls, took);
    cr_assert_gt(calls, 0, "no sync was tried in %ld ms: nothing would notice the disk working again", took);
    cr_assert_lt(cpu_ms * 4, took, "the server used %ld ms of CPU in %ld ms while idle", cpu_ms, took);
    /* ... and answers still leave */
    free(req("GET", "/v1/notes", NULL, NULL, 401, PROMPT_MS));

    /* The disk works again: the next sync succeeds and changes go through. */
    set_flag(false);
    harness_await_log(&srv, "can be synced again", 1, 10);
    note = json_str("title", "after", "content", "the disk works again");
    free(req("POST", "/v1/notes", tok, note, 201, PROMPT_MS));
    free(note);
    cr_assert_eq(count_notes(tok), 2, "the refused change was made, or the accepted one lost");
    cr_assert_eq(harness_log_count(&srv, "cannot sync the audit log"), 1, "the failure was not reported once");
    cr_assert_eq(harness_stop(&srv), 0);

    /* The trail holds the refusal, then the change, and its chain verifies. */
    char path[400];
    snprintf(path, sizeof(path), "%s/audit.log", harness_getenv(&srv, "NOTES_AUDIT_DIR"));
    size_t len = 0;
    char *trail = harness_read_file(path, &len);
    cr_assert(trail, "%s: cannot read", path);
    const char *refused = strstr(trail, "\"event\":\"request.refused\"");
    cr_assert(refused, "no request.refused line in the trail");
    cr_assert(strstr(refused, "\"reason\":\"audit_unavailable\""));
    const char *created = strstr(refused, "\"event\":\"note.create\"");
    cr_assert(created && strstr(created, "\"result\":\"success\""), "no note.create after the refusal");
    /* The trail itself says its lines were not durable for a while. */
    const char *recovered = strstr(refused, "\"event\":\"audit.recovered\"");
    cr_assert(recovered && recovered < created, "no audit.recovered line between the refusal and the change");
    const char *eol = strchr(recovered, '\n');
    const char *why = strstr(recovered, "\"reason\":\"sync_failed\"");
    cr_assert(why && eol && why < eol, "the audit.recovered line does not say the sync failed");
    free(trail);
    const char *verify[] = { "audit", "verify", harness_getenv(&srv, "NOTES_AUDIT_DIR"), NULL };
    cr_assert_eq(harness_run(&srv, verify), 0, "notesd audit verify failed");
    free(tok);
}

/* The event loop never syncs. A rotated file waits for the sync in flight
 * (four at most); rotations past those, under a slow disk and a small
 * NOTES_AUDIT_MAX_BYTES, used to be synced on the loop, and every client
 * waited for the disk. Here the pool's sync is held (the shim's hold file)
 * while ~20 rotations happen; the loop must sync none of them, answer
 * every request, the file system must be synced (syncfs) once the disk
 * moves again, and the trail must verify. */
static char hold[320];

static void start_slow_disk(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    harness_prepare(&srv);
    harness_preload_shim(&srv, "NOTESD_FSYNC_SHIM", "NOTESD_TEST_FSYNC_FLAG", "fsync-fails", flag, sizeof(flag));
    snprintf(hold, sizeof(hold), "%s/fsync-hold", srv.dir);
    harness_setenv(&srv, "NOTESD_TEST_FSYNC_HOLD", hold);
    harness_setenv(&srv, "NOTES_AUDIT_SYNC", "batch");
    harness_setenv(&srv, "NOTES_AUDIT_MAX_BYTES", "4096");
    harness_start(&srv);
}

static void finish_slow_disk(void)
{
    unlink(hold);
    finish();
}

Test(slow_disk, rotations_past_the_waiting_files_are_not_synced_on_the_loop, .init = start_slow_disk,
     .fini = finish_slow_disk, .timeout = 120)
{
    int fd = open(hold, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    cr_assert_geq(fd, 0, "%s: %s", hold, strerror(errno));
    close(fd);
    for (int i = 0; i < 200; i++)         /* an authz.deny line each, ~10 to a file */
        free(req("GET", "/v1/notes", NULL, NULL, 401, PROMPT_MS));
    size_t on_loop = harness_log_count(&srv, "fsync-shim: on the loop");
    cr_assert_eq(unlink(hold), 0);
    cr_assert_eq(on_loop, 0, "the event loop synced %zu times while the disk was slow", on_loop);
    /* The files closed unsynced reach the disk with their file system. */
    harness_await_log(&srv, "fsync-shim: syncfs", 1, 10);
    free(req("GET", "/healthz", NULL, NULL, 200, PROMPT_MS));
    cr_assert_eq(harness_stop(&srv), 0);
    const char *verify[] = { "audit", "verify", harness_getenv(&srv, "NOTES_AUDIT_DIR"), NULL };
    cr_assert_eq(harness_run(&srv, verify), 0, "notesd audit verify failed");
}
