/*
 * Integration tests of audit retention by age on a serving notesd: a
 * rotated file due by age goes only once every line of it verifies, and
 * that whole-file check must not stop the event loop. read_shim.so,
 * preloaded into notesd, holds read(2) of the one file of a size the test
 * names while a flag file exists (and says "read-shim: holding" on the
 * server's stderr), so the test can ask the server for answers while the
 * check waits for the disk.
 *
 * Retention runs at start-up (blocking, before serving: not what these
 * tests are about), at every rotation and hourly. The tests backdate a
 * file after start-up and make the server rotate with requests that each
 * write an audit line at a 4 KiB cap. Readiness comes from the server's
 * log (harness_await_log); every wait is bounded; nothing sleeps to
 * synchronise.
 */
#include <criterion/criterion.h>
#include <cJSON.h>
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define PW "violet-Anchor-7392-lamp"
#define HOLDING "read-shim: holding"
#define NAME_LEN 47             /* audit-YYYYMMDDTHHMMSSZ-<20 digits>.log */
#define MAX_FILES 128
/* An answer that does not wait for the disk comes in milliseconds; this
 * leaves room for a slow, loaded (or sanitized) machine, and is far below
 * forever. */
#define PROMPT_MS 4000L
/* Requests that may queue behind argon2 jobs. */
#define SLOW_MS 120000L

static struct server srv;
static char flag[300];

static void prep(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    harness_prepare(&srv);
    harness_preload_shim(&srv, "NOTESD_READ_SHIM", "NOTESD_TEST_READ_FLAG", "reads-stall", flag, sizeof(flag));
    harness_setenv(&srv, "NOTES_REGISTRATION", "open");
    harness_setenv(&srv, "NOTES_AUDIT_MAX_BYTES", "4096");
    harness_setenv(&srv, "NOTES_AUDIT_MAX_FILES", "100");
}

static void finish(void)
{
    if (flag[0])
        unlink(flag);          /* a held read goes on, so the server can stop */
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

static const char *audit_dir(void)
{
    const char *d = harness_getenv(&srv, "NOTES_AUDIT_DIR");
    cr_assert(d);
    return d;
}

static void in_dir(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", audit_dir(), name);
}

/* ---- requests ------------------------------------------------------------ */

/* One request with a deadline; the status, or 0 when no answer came in time. */
static long try_req(const char *method, const char *path, const char *token, const char *body, long timeout_ms,
                    char **out)
{
    struct response r;
    harness_call(&srv, method, path, token, body, timeout_ms, &r);
    long status = r.curl_code == CURLE_OK ? r.status : 0;
    if (out)
        *out = harness_strdup(r.body ? r.body : "");
    response_free(&r);
    return status;
}

/* Asserts an answer `want` within `timeout_ms`; the body (caller frees). */
static char *req(const char *method, const char *path, const char *token, const char *body, long want,
                 long timeout_ms)
{
    char *out = NULL;
    long t0 = harness_now_ms();
    long status = try_req(method, path, token, body, timeout_ms, &out);
    cr_assert_neq(status, 0, "%s %s: no answer within %ld ms (after %ld ms): the event loop is stuck",
                  method ? method : "GET", path, timeout_ms, harness_now_ms() - t0);
    cr_assert_eq(status, want, "%s %s: expected %ld, got %ld: %.400s", method ? method : "GET", path, want,
                 status, out);
    return out;
}

static char *login(const char *user)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "username", user);
    cJSON_AddStringToObject(o, "password", PW);
    char *b = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    char *body = req("POST", "/v1/auth/login", NULL, b, 200, SLOW_MS);
    free(b);
    cJSON *j = cJSON_Parse(body);
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "token");
    cr_assert(cJSON_IsString(t), "no token: %s", body);
    char *tok = harness_strdup(t->valuestring);
    cJSON_Delete(j);
    free(body);
    return tok;
}

static void register_user(char *user, size_t cap)
{
    harness_marker(user, cap, "ret");
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "username", user);
    cJSON_AddStringToObject(o, "password", PW);
    char *b = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    free(req("POST", "/v1/auth/register", NULL, b, 201, SLOW_MS));
    free(b);
}

/* An authenticated read: it looks the session up in the store. */
static void read_notes(const char *token)
{
    char *body = req("GET", "/v1/notes", token, NULL, 200, PROMPT_MS);
    cJSON *j = cJSON_Parse(body);
    cr_assert(cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(j, "notes")), "%s", body);
    cJSON_Delete(j);
    free(body);
}

/* ---- the audit folder ---------------------------------------------------- */

static bool rotated_name(const char *n)
{
    return strlen(n) == NAME_LEN && strncmp(n, "audit-", 6) == 0 && strcmp(n + 43, ".log") == 0;
}

static int by_seq(const void *a, const void *b)
{
    return strcmp((const char *)a + 23, (const char *)b + 23);
}

/* The rotated files, oldest first. */
static size_t rotated(char names[][64])
{
    DIR *d = opendir(audit_dir());
    cr_assert(d, "opendir %s: %s", audit_dir(), strerror(errno));
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (rotated_name(e->d_name)) {
            cr_assert_lt(n, MAX_FILES);
            snprintf(names[n++], 64, "%s", e->d_name);
        }
    closedir(d);
    qsort(names, n, sizeof(names[0]), by_seq);
    return n;
}

static bool exists(const char *name)
{
    char path[700];
    struct stat st;
    in_dir(path, sizeof(path), name);
    return stat(path, &st) == 0;
}

static long long size_of(const char *name)
{
    char path[700];
    struct stat st;
    in_dir(path, sizeof(path), name);
    cr_assert_eq(stat(path, &st), 0, "stat %s: %s", path, strerror(errno));
    return (long long)st.st_size;
}

static void backdate(const char *name, int days)
{
    char path[700];
    in_dir(path, sizeof(path), name);
    time_t old = time(NULL) - (time_t)days * 86400;
    struct timespec ts[2] = { { old, 0 }, { old, 0 } };
    cr_assert_eq(utimensat(AT_FDCWD, path, ts, 0), 0, "utimensat %s: %s", path, strerror(errno));
}

/* Lines of audit.log that are retention prune records naming `name`, and
 * of them those with reason "retention". */
static size_t prune_records(const char *name, size_t *by_age)
{
    char path[700];
    size_t len, n = 0;
    in_dir(path, sizeof(path), "audit.log");
    char *text = harness_read_file(path, &len);
    cr_assert(text, "cannot read %s", path);
    char file[80];
    snprintf(file, sizeof(file), "\"file\":\"%s\"", name);
    *by_age = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n"))
        if (strstr(line, "\"event\":\"audit.retention_prune\"") && strstr(line, file)) {
            n++;
            *by_age += strstr(line, "\"reason\":\"retention\"") != NULL;
        }
    free(text);
    return n;
}

/* Requests that each write an audit line (a refused token), until the
 * server's log says `what` `times` times: a rotation and its retention
 * run. The one that rotates may wait for that; none is asserted on. */
static void rotate_until(const char *what, size_t times)
{
    for (int i = 0; i < 400 && harness_log_count(&srv, what) < times; i++)
        (void)try_req("GET", "/v1/notes", NULL, NULL, PROMPT_MS, NULL);
    harness_await_log(&srv, what, times, 10);
}

/* A trail of at least three rotated files and a user, from a first run. */
static size_t first_run(char names[][64], char *user, size_t cap)
{
    harness_start(&srv);
    register_user(user, cap);
    for (int i = 0; i < 60; i++)
        free(req("GET", "/v1/notes", NULL, NULL, 401, PROMPT_MS));
    cr_assert_eq(harness_stop(&srv), 0);
    size_t n = rotated(names);
    cr_assert_geq(n, 3, "only %zu rotated file(s)", n);
    return n;
}

/* The server on a first run's trail, retention by age at one day (and
 * `extra` settings, name and value pairs); then the oldest file falls due
 * and its check is held at its first read. How many rotated files the
 * first run left. */
static size_t start_with_a_due_file_held(char names[][64], char *user, size_t cap, const char *const *extra)
{
    size_t n = first_run(names, user, cap);
    char size[32];
    snprintf(size, sizeof(size), "%lld", size_of(names[0]));
    harness_setenv(&srv, "NOTESD_TEST_READ_SIZE", size);
    harness_setenv(&srv, "NOTES_AUDIT_RETENTION_DAYS", "1");
    for (size_t i = 0; extra && extra[i]; i += 2)
        harness_setenv(&srv, extra[i], extra[i + 1]);
    harness_start(&srv);
    set_flag(true);
    backdate(names[0], 3);
    rotate_until(HOLDING, 1);
    return n;
}

/* ---- the tests ----------------------------------------------------------- */

/* The check of a file due by age read the whole file and checked every
 * line's MAC on the event loop: 341 ms per 10 MiB file, and as long as the
 * disk takes, during which nothing was answered. */
Test(retention_check, the_server_answers_while_a_due_file_is_checked, .init = prep, .fini = finish,
     .timeout = 120)
{
    char names[MAX_FILES][64], user[40];
    /* The oldest file is due from now on; its check waits for the flag. */
    size_t n = start_with_a_due_file_held(names, user, sizeof(user), NULL);
    char *tok = login(user);

    free(req("GET", "/healthz", NULL, NULL, 200, PROMPT_MS));
    read_notes(tok);
    free(req("GET", "/v1/notes", NULL, NULL, 401, PROMPT_MS));   /* writes an audit line too */
    cr_assert(exists(names[0]), "%s went before its check was done", names[0]);

    /* The disk answers: the check finds every line intact and the file goes
     * on record, as retention did before. */
    char verdict[160];
    snprintf(verdict, sizeof(verdict), "audit: checked %s for retention: every line verifies", names[0]);
    set_flag(false);
    harness_await_log(&srv, verdict, 1, 30);
    free(req("GET", "/healthz", NULL, NULL, 200, PROMPT_MS));
    free(tok);
    cr_assert_eq(harness_stop(&srv), 0);

    size_t by_age = 0;
    cr_assert_eq(prune_records(names[0], &by_age), 1, "no single retention_prune record names %s", names[0]);
    cr_assert_eq(by_age, 1, "%s was pruned for another reason than its age", names[0]);
    cr_assert(!exists(names[0]), "%s was not deleted", names[0]);
    for (size_t i = 1; i < n; i++)
        cr_assert(exists(names[i]), "%s (recent) was deleted", names[i]);
    const char *args[] = { "audit", "verify", audit_dir(), NULL };
    cr_assert_eq(harness_run(&srv, args), 0, "the trail does not verify after the prune");
}

/* With NOTES_AUDIT_SYNC=always only a held answer started a sync: a prune
 * made by a check's verdict (or by the hourly run) with no request after it
 * left its record unsynced and the file undeleted until some client came. */
Test(retention_check, under_always_sync_a_prune_without_a_request_is_synced_and_done, .init = prep,
     .fini = finish, .timeout = 120)
{
    char names[MAX_FILES][64], user[40];
    start_with_a_due_file_held(names, user, sizeof(user), (const char *const[]){ "NOTES_AUDIT_SYNC", "always", NULL });
    char verdict[160], deleted[160];
    snprintf(verdict, sizeof(verdict), "audit: checked %s for retention: every line verifies", names[0]);
    snprintf(deleted, sizeof(deleted), "audit: deleted %s", names[0]);
    size_t before = harness_log_count(&srv, deleted);
    set_flag(false);                   /* from here on, no request at all */
    harness_await_log(&srv, verdict, 1, 30);
    harness_await_log(&srv, deleted, before + 1, 10);
    cr_assert(!exists(names[0]), "%s is still there", names[0]);
    size_t by_age = 0;
    cr_assert_eq(prune_records(names[0], &by_age), 1, "no single retention_prune record names %s", names[0]);
}

/* A file whose ctime moved while it was read (a chmod to its own mode, a
 * hard link, an xattr: no byte changed) got a verdict of "not intact" for
 * its new state, which nothing would change again: it stayed for good, and
 * retention by age stopped behind it for the whole trail. */
Test(retention_check, a_file_touched_while_it_is_checked_is_checked_again, .init = prep, .fini = finish,
     .timeout = 120)
{
    char names[MAX_FILES][64], user[40];
    start_with_a_due_file_held(names, user, sizeof(user), NULL);
    char path[700];
    in_dir(path, sizeof(path), names[0]);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(chmod(path, st.st_mode & 07777), 0);   /* the same mode: only the ctime moves */
    set_flag(false);
    char changed[200];
    snprintf(changed, sizeof(changed), "audit: %s changed while it was checked for retention", names[0]);
    harness_await_log(&srv, changed, 1, 30);
    /* The next retention run checks it again and, intact, it goes. */
    char verdict[160];
    snprintf(verdict, sizeof(verdict), "audit: checked %s for retention: every line verifies", names[0]);
    rotate_until(verdict, 1);
    cr_assert_eq(harness_stop(&srv), 0);
    size_t by_age = 0;
    cr_assert_eq(prune_records(names[0], &by_age), 1, "no single retention_prune record names %s", names[0]);
    cr_assert(!exists(names[0]), "the intact file was kept after a chmod during its check");
    const char *args[] = { "audit", "verify", audit_dir(), NULL };
    cr_assert_eq(harness_run(&srv, args), 0, "the trail does not verify after the prune");
}

/* Every retention run (each rotation) read the last 64 KiB of every
 * rotated file and checked its last line's MAC on the loop, to know the
 * file is the trail's: with thousands of files allowed, a long stall each
 * time. A file already known, unchanged since, is not read again. */
Test(retention_check, a_known_file_is_not_read_again_at_each_rotation, .init = prep, .fini = finish,
     .timeout = 120)
{
    char names[MAX_FILES][64], user[40];
    first_run(names, user, sizeof(user));
    char size[32];
    snprintf(size, sizeof(size), "%lld", size_of(names[1]));
    harness_setenv(&srv, "NOTESD_TEST_READ_SIZE", size);
    harness_setenv(&srv, "NOTESD_TEST_PREAD_LOG", "1");
    harness_start(&srv);
    size_t at_start = harness_log_count(&srv, "read-shim: pread");
    cr_assert_geq(at_start, 1, "the start-up's retention run did not read %s: the count is blind", names[1]);
    size_t n0 = rotated(names), n = n0;
    for (int i = 0; i < 400 && n < n0 + 3; i++) {
        (void)try_req("GET", "/v1/notes", NULL, NULL, PROMPT_MS, NULL);
        n = rotated(names);
    }
    cr_assert_geq(n, n0 + 3, "three rotations did not happen");
    /* The shim counts reads of every file of that size: a new file of the
     * same length (one line is as long as the next) is read twice, by the
     * rotation that continues it and by the retention run that learns it. */
    size_t fresh = 0;
    for (size_t i = n0; i < n; i++)
        fresh += size_of(names[i]) == atoll(size);
    size_t reads = harness_log_count(&srv, "read-shim: pread") - at_start;
    cr_assert_leq(reads, 2 * fresh, "files of %s bytes were read %zu times in %zu rotations, %zu of them new", size,
                  reads, n - n0, fresh);
}

/* Changed, then backdated: the check on the thread pool finds the change,
 * the file stays as evidence (the warning as before), and the verdict
 * stands for the file as it is: the next rotation does not read it again. */
Test(retention_check, an_edited_file_due_by_age_is_kept_and_not_read_again, .init = prep, .fini = finish,
     .timeout = 120)
{
    char names[MAX_FILES][64], user[40];
    first_run(names, user, sizeof(user));
    harness_setenv(&srv, "NOTES_AUDIT_RETENTION_DAYS", "1");
    harness_start(&srv);

    /* One byte of its third line: that line's MAC fails; its last line,
     * which retention reads to know the file is the trail's, is intact. */
    char path[700];
    size_t len;
    in_dir(path, sizeof(path), names[0]);
    char *text = harness_read_file(path, &len);
    cr_assert(text);
    char *line = text;
    for (int i = 0; i < 2; i++)
        line = strchr(line, '\n') + 1;
    char *p = strstr(line, "\"result\":\"");
    cr_assert(p && p < strchr(line, '\n'));
    p[10] = p[10] == 'd' ? 'e' : 'd';
    int fd = open(path, O_WRONLY | O_TRUNC);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, text, len), (ssize_t)len);
    close(fd);
    free(text);
    backdate(names[0], 3);

    char checking[160], verdict[160], kept[200];
    snprintf(checking, sizeof(checking), "audit: %s is due for retention: checking it", names[0]);
    snprintf(verdict, sizeof(verdict), "audit: checked %s for retention: it does not verify", names[0]);
    snprintf(kept, sizeof(kept), "audit: %s is due for retention but does not verify; kept for audit verify",
             names[0]);
    rotate_until(verdict, 1);
    harness_await_log(&srv, kept, 1, 10);
    /* Two more rotations: the file is judged again, not read again. */
    size_t rotations = harness_log_count(&srv, kept);
    rotate_until(kept, rotations + 2);
    free(req("GET", "/healthz", NULL, NULL, 200, PROMPT_MS));
    cr_assert_eq(harness_stop(&srv), 0);
    cr_assert_eq(harness_log_count(&srv, checking), 1, "the unchanged file was read again");
    cr_assert_eq(harness_log_count(&srv, verdict), 1);

    size_t by_age = 0;
    cr_assert_eq(prune_records(names[0], &by_age), 0, "the edited file was pruned on record");
    cr_assert(exists(names[0]), "the edited file was deleted");
    const char *args[] = { "audit", "verify", audit_dir(), NULL };
    cr_assert_eq(harness_run(&srv, args), 1, "verify does not find the edit");
}

/* Stopped while a check reads: the server waits for that read (the loop
 * runs until no pool request is left), acts on no verdict any more, and
 * stops cleanly; the file stays for the next run. */
Test(retention_check, a_stop_waits_for_the_check_in_flight_and_prunes_nothing_after_it, .init = prep,
     .fini = finish, .timeout = 120)
{
    char names[MAX_FILES][64], user[40];
    start_with_a_due_file_held(names, user, sizeof(user), NULL);

    cr_assert_eq(kill(srv.pid, SIGTERM), 0);
    harness_await_log(&srv, "stopping: waiting for retention's check of a file to finish its read", 1, 10);
    cr_assert_eq(kill(srv.pid, 0), 0, "the server ended while its check was still reading");
    set_flag(false);
    char cancelled[160];
    snprintf(cancelled, sizeof(cancelled), "audit: the check of %s for retention was cancelled", names[0]);
    /* Not harness_stop(): a second SIGTERM, once the server closed its
     * signal handlers, would end it by the default action. */
    int st = 0;
    pid_t got = 0;
    for (long t0 = harness_now_ms(); got == 0 && harness_now_ms() - t0 < 15000;) {
        got = waitpid(srv.pid, &st, WNOHANG);
        if (got == 0)
            nanosleep(&(struct timespec){ 0, 2000000 }, NULL);
    }
    cr_assert_eq(got, srv.pid, "the server did not stop within 15 s of its check's read");
    srv.pid = 0;
    int status = WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st);
    char *err = harness_stderr(&srv);
    cr_assert_eq(status, 0, "the server did not stop cleanly (%d):\n%s", status, err);
    cr_assert(strstr(err, cancelled) != NULL, "no verdict should be kept while stopping:\n%s", err);
    free(err);
    size_t by_age = 0;
    cr_assert_eq(prune_records(names[0], &by_age), 0, "%s was pruned while the server stopped", names[0]);
    cr_assert(exists(names[0]));
    const char *args[] = { "audit", "verify", audit_dir(), NULL };
    cr_assert_eq(harness_run(&srv, args), 0, "the trail does not verify after the stop");
}
