/*
 * Integration tests of rate limits (suite limits): the per-address burst,
 * login and password-change throttling per account, registrations per name
 * note writes per user, and exports per user and address. Fixtures and
 * helpers: api_support.h.
 */
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_support.h"

/* The same from another loopback source address (127.0.0.0/8 is all the
 * loopback interface; the server still listens on 127.0.0.1 only): a second
 * client address for the per-address limits. */
static void ka_open_from(struct keepalive *k, const char *source)
{
    ka_open(k);
    char iface[64];
    snprintf(iface, sizeof(iface), "host!%s", source);
    cr_assert_eq(curl_easy_setopt(k->c, CURLOPT_INTERFACE, iface), CURLE_OK);
}

/* Prepared with open registration and the rate limits on, the per-address
 * request limit at `ip` a second with a burst of `burst`. */
static void prepare_limits(const char *ip, const char *burst)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    harness_prepare(&srv);
    harness_setenv(&srv, "NOTES_REGISTRATION", "open");
    harness_setenv(&srv, "NOTES_RATE_LIMITS", "on");
    harness_setenv(&srv, "NOTES_RATE_IP", ip);
    harness_setenv(&srv, "NOTES_RATE_IP_BURST", burst);
}

static void start_limited(void)
{
    prepare_limits("1", "3");
    harness_start(&srv);
}

/* The same request on k, as fast as the answers come, until one is not
 * `ok` (it stays in k->r) or `max` were; returns how many were `ok`. *ms
 * runs from before the first request to after the last answer. One kept
 * connection: no handshake per request lets a token refill meanwhile. */
static int ka_until_refused(struct keepalive *k, const char *method, const char *path, const char *auth,
                            const char *body, long ok, int max, long *ms)
{
    long t0 = harness_now_ms();
    int n = 0;
    while (n < max && ka_send(k, method, path, auth, body) == ok)
        n++;
    *ms = harness_now_ms() - t0;
    return n;
}

/* A fresh token bucket of `burst` refilled at `rate`/s lets the whole burst
 * through, then only what refilled: every answer that passed took a token,
 * so however slow the runner, no more than burst + rate * ms can have
 * passed in ms. What stopped the run is a 429 with Retry-After (at 1/s a
 * token is back within 1 s; 2 allows rounding). */
static void assert_bucket(const struct keepalive *k, int passed, long ms, int burst, int rate, const char *what)
{
    cr_assert_eq(k->r.status, 429, "%s: %d passed in %ld ms, then %ld (burst %d, %d/s)", what, passed, ms,
                 k->r.status, burst, rate);
    cr_assert_geq(passed, burst, "%s: refused after %d, inside the burst of %d", what, passed, burst);
    cr_assert_leq(passed, burst + rate * ms / 1000, "%s: %d passed in %ld ms (burst %d, %d/s)", what, passed, ms,
                  burst, rate);
    char *retry = response_header(&k->r, "Retry-After");
    cr_assert(retry, "%s: 429 without Retry-After", what);
    cr_assert(atoi(retry) >= 1 && atoi(retry) <= 2, "%s: Retry-After %s", what, retry);
    cr_assert(strstr(k->r.body, "\"status\":429"), "%s: %s", what, k->r.body);
    free(retry);
}

Test(limits, requests_past_the_burst_get_429_with_retry_after, .init = start_limited, .fini = finish)
{
    struct keepalive k;
    ka_open(&k);
    long ms;
    int passed = ka_until_refused(&k, "GET", "/healthz", NULL, NULL, 200, 10, &ms);
    assert_bucket(&k, passed, ms, 3, 1, "GET /healthz");
    ka_close(&k);
}

static void start_throttled(void)
{
    prepare_limits("1000", "1000");
    harness_setenv(&srv, "NOTES_RATE_AUTH_PER_MIN", "1000");
    harness_setenv(&srv, "NOTES_RATE_AUTH_BURST", "1000");
    harness_setenv(&srv, "NOTES_RATE_WRITES", "1");
    harness_setenv(&srv, "NOTES_RATE_WRITES_BURST", "2");
    harness_start(&srv);
}

/* ---- throttles ----
 * A throttle's delay runs from a failure the server records after its hash
 * check; the client knows only that this came after the failing request
 * began. An attempt let through proves the throttle wrong only if it came
 * before the delay could have run out: after that (a stalled runner) it
 * proves nothing, and the test runs its round again. */

/* `status` of an attempt the throttle should hold, `delay_ms` after a
 * failure that began at `since`: true on 429. Otherwise asserts that it got
 * `late` (the answer when let through) and only after the delay could
 * have passed, and returns false. Call it as soon as the answer is in. */
static bool held(long status, long late, long since, long delay_ms, const char *what)
{
    if (status == 429)
        return true;
    long after = harness_now_ms() - since;
    cr_assert_eq(status, late, "%s: got %ld", what, status);
    cr_assert_geq(after, delay_ms, "%s was let through %ld ms after the failure began (delay %ld ms)", what,
                  after, delay_ms);
    cr_log_warn("%s came %ld ms after the failure began (delay %ld ms): too late to tell", what, after, delay_ms);
    return false;
}

static void assert_retry_after(const struct keepalive *k, const char *what)
{
    char *retry = response_header(&k->r, "Retry-After");
    cr_assert(retry && atoi(retry) >= 1, "%s: Retry-After %s", what, retry ? retry : "(none)");
    free(retry);
}

static void swap_pw(const char **pw, const char **next)
{
    const char *t = *pw;
    *pw = *next;
    *next = t;
}

/* Ten failed logins for `name` on k; returns when the tenth began. */
static long ten_failed_logins(struct keepalive *k, const char *name)
{
    char *bad = cred_body(name, "not-the-password-at-all");
    long began = 0;
    for (int i = 0; i < 10; i++) {
        began = harness_now_ms();
        cr_assert_eq(ka_send(k, "POST", "/v1/auth/login", NULL, bad), 401, "failure %d: %s", i, k->r.body);
    }
    free(bad);
    return began;
}

/* After ten failures the victim waits, even with the right password (429
 * with Retry-After), while another account logs in from the same address;
 * the victim still waits after that, so the other login came inside the
 * delay. false when an attempt came too late to tell (a success then
 * started the victim's count again). */
static bool victim_waits_bystander_passes(struct keepalive *k, const char *victim, const char *bystander)
{
    char *right = cred_body(victim, PW1), *other = cred_body(bystander, PW2);
    long since = ten_failed_logins(k, victim);
    bool ok = held(ka_send(k, "POST", "/v1/auth/login", NULL, right), 200, since, 1000, "the right password");
    if (ok) {
        assert_retry_after(k, "the right password");
        cr_assert_eq(ka_send(k, "POST", "/v1/auth/login", NULL, other), 200,
                     "another account from the same address waited too: %s", k->r.body);
        ok = held(ka_send(k, "POST", "/v1/auth/login", NULL, right), 200, since, 1000, "the right password again");
    }
    free(other);
    free(right);
    return ok;
}

Test(limits, one_account_is_throttled_while_another_logs_in_from_the_same_address,
     .init = start_throttled, .fini = finish, .timeout = 120)
{
    char a[40], b[40];
    harness_marker(a, sizeof(a), "victim");
    harness_marker(b, sizeof(b), "bystander");
    register_user(a, PW1);
    register_user(b, PW2);
    struct keepalive k;
    ka_open(&k);
    bool shown = false;
    for (int round = 0; round < 3 && !shown; round++)
        shown = victim_waits_bystander_passes(&k, a, b);
    cr_assert(shown, "three rounds each came too late after the tenth failure to tell (delay 1 s)");
    ka_close(&k);
}

/* Ten wrong current passwords from a token's holder, five password changes
 * and five erasures (one throttle for both); returns when the tenth began. */
static long ten_wrong_current(struct keepalive *k, const char *auth, const char *change)
{
    long began = 0;
    for (int i = 0; i < 10; i++) {
        began = harness_now_ms();
        long st = i < 5 ? ka_send(k, "POST", "/v1/auth/password", auth, change)
                        : ka_send(k, "DELETE", "/v1/me", auth, "{\"password\":\"not-the-password-at-all\"}");
        cr_assert_eq(st, 403, "wrong current password %d: %s", i, k->r.body);
    }
    return began;
}

/* After ten wrong current passwords the token's holder waits: a further
 * guess gets 429 with Retry-After (a guess let through late counts, and
 * doubles the delay), so does the right password, and the owner still logs
 * in; the right password waits after that too, so the login came inside
 * the delay. false when an attempt came too late to tell: the password
 * changed then, from *pw to *next, which swap. */
static bool guesses_wait_owner_logs_in(struct keepalive *k, const char *name, const char *auth, const char **pw,
                                       const char **next)
{
    char *wrong = body2("current_password", "not-the-password-at-all", "new_password", *next);
    char *right = body2("current_password", *pw, "new_password", *next), *cred = cred_body(name, *pw);
    long since = ten_wrong_current(k, auth, wrong), delay = 1000;
    for (int i = 0; i < 4; i++, delay *= 2) {   /* 1, 2, 4, 8 s */
        long began = harness_now_ms();
        if (held(ka_send(k, "POST", "/v1/auth/password", auth, wrong), 403, since, delay, "a wrong guess"))
            break;
        since = began;
    }
    cr_assert_eq(k->r.status, 429, "four wrong guesses in a row were let through late");
    assert_retry_after(k, "a wrong guess");
    bool ok = held(ka_send(k, "POST", "/v1/auth/password", auth, right), 204, since, delay, "the right password");
    if (ok) {
        cr_assert_eq(ka_send(k, "POST", "/v1/auth/login", NULL, cred), 200,
                     "wrong current passwords locked the owner out of logging in: %s", k->r.body);
        ok = held(ka_send(k, "POST", "/v1/auth/password", auth, right), 204, since, delay,
                  "the right password again");
    }
    if (!ok)
        swap_pw(pw, next);
    free(cred);
    free(right);
    free(wrong);
    return ok;
}

/* The other way round: after ten failed logins the owner waits to log in
 * (429), yet changes the password with the session it has (204); a login
 * with the new password still waits, so the change came inside the delay.
 * false when a login came too late to tell; *pw is the password then. */
static bool logins_wait_owner_changes(struct keepalive *k, const char *name, const char *auth, const char **pw,
                                      const char **next)
{
    char *change = body2("current_password", *pw, "new_password", *next), *cred = cred_body(name, *pw);
    long since = ten_failed_logins(k, name);
    bool ok = held(ka_send(k, "POST", "/v1/auth/login", NULL, cred), 200, since, 1000, "the owner's login");
    if (ok) {
        cr_assert_eq(ka_send(k, "POST", "/v1/auth/password", auth, change), 204,
                     "failed logins held up a password change: %s", k->r.body);
        swap_pw(pw, next);
        free(cred);
        cred = cred_body(name, *pw);
        ok = held(ka_send(k, "POST", "/v1/auth/login", NULL, cred), 200, since, 1000, "a login after the change");
    }
    free(cred);
    free(change);
    return ok;
}

/* A stolen token must not let its holder guess the account's password
 * faster than login does: wrong current passwords (password change,
 * erasure) are throttled like failed logins, with the same back-off. Kept
 * apart from the login throttle: whoever knows only the username cannot
 * fail logins to stop the owner from changing the password, and the token's
 * holder cannot lock the owner out of logging in. */
Test(limits, wrong_current_passwords_are_throttled_apart_from_logins,
     .init = start_throttled, .fini = finish, .timeout = 120)
{
    char a[40], b[40], auth[128];
    harness_marker(a, sizeof(a), "stolen");
    harness_marker(b, sizeof(b), "owner");
    register_user(a, PW1);
    register_user(b, PW2);
    struct keepalive k;
    ka_open(&k);
    const char *pw = PW1, *next = "brand new password 1";
    char *tok = login(a, pw);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", tok);
    bool shown = false;
    for (int round = 0; round < 3 && !shown; round++)
        shown = guesses_wait_owner_logs_in(&k, a, auth, &pw, &next);
    cr_assert(shown, "three rounds each came too late after the tenth wrong password to tell");
    free(tok);

    pw = PW2;
    next = "brand new password 2";
    tok = login(b, pw);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", tok);
    shown = false;
    for (int round = 0; round < 3 && !shown; round++)
        shown = logins_wait_owner_changes(&k, b, auth, &pw, &next);
    cr_assert(shown, "three rounds each came too late after the tenth failed login to tell");
    free(tok);
    ka_close(&k);
}

/* Guesses sent together: each one waiting for its hash check must count
 * against the throttle when it is let in, not only once its check is done,
 * or everything queued behind the hashing slots is checked (30 of 30 were:
 * the back-off and the hourly cap bound nothing for a stolen token, nor for
 * logins spread over a few addresses). Ten are free; after them the next
 * waits a second, the one after two more: within T seconds no more than
 * 10 + T can be let in. */
#define TOGETHER 30

struct guess {
    struct keepalive k;
    const char *auth, *body;
    pthread_barrier_t *go;
    long status;
};

static void *guess_run(void *arg)
{
    struct guess *g = arg;
    pthread_barrier_wait(g->go);
    g->status = ka_send(&g->k, "POST", "/v1/auth/password", g->auth, g->body);
    return NULL;
}

/* A new account (name from `prefix`) logged in: *tok and its Authorization
 * header in auth; returns a password change with a wrong current password. */
static char *stolen_token(const char *prefix, char **tok, char auth[128])
{
    char a[40];
    harness_marker(a, sizeof(a), prefix);
    register_user(a, PW1);
    *tok = login(a, PW1);
    snprintf(auth, 128, "Authorization: Bearer %s", *tok);
    return body2("current_password", "not-the-password-at-all", "new_password", "brand new password 1");
}

Test(limits, wrong_current_passwords_sent_together_are_throttled_as_they_arrive,
     .init = start_throttled, .fini = finish, .timeout = 120)
{
    char auth[128], *tok = NULL;
    char *wrong = stolen_token("together", &tok, auth);
    static struct guess g[TOGETHER];
    pthread_t th[TOGETHER];
    pthread_barrier_t go;
    cr_assert_eq(pthread_barrier_init(&go, NULL, TOGETHER), 0);
    for (int i = 0; i < TOGETHER; i++) {
        g[i] = (struct guess){ .auth = auth, .body = wrong, .go = &go };
        ka_open(&g[i].k);
        cr_assert_eq(ka_send(&g[i].k, "GET", "/healthz", NULL, NULL), 200);   /* connected before the race */
    }
    long t0 = harness_now_ms();
    for (int i = 0; i < TOGETHER; i++)
        cr_assert_eq(pthread_create(&th[i], NULL, guess_run, &g[i]), 0);
    int checked = 0, held_back = 0;
    for (int i = 0; i < TOGETHER; i++) {
        pthread_join(th[i], NULL);
        checked += g[i].status == 403;
        held_back += g[i].status == 429;
        ka_close(&g[i].k);
    }
    long secs = (harness_now_ms() - t0 + 999) / 1000;
    pthread_barrier_destroy(&go);
    cr_assert_eq(checked + held_back, TOGETHER, "answers other than 403 and 429");
    cr_assert_leq(checked, 10 + secs, "%d of %d wrong guesses sent together were checked in %ld s", checked,
                  TOGETHER, secs);
    free(wrong);
    free(tok);
}

/* A run of throttled attempts leaves one ratelimit.block line, as a run of
 * refusals by any other limit does, not one per refused request. */
Test(limits, a_run_of_throttled_guesses_is_audited_once, .init = start_throttled, .fini = finish,
     .timeout = 120)
{
    char auth[128], *tok = NULL;
    char *wrong = stolen_token("blocked", &tok, auth);
    struct keepalive k;
    ka_open(&k);
    (void)ten_wrong_current(&k, auth, wrong);
    unsigned long long sum = 0;
    size_t before = harness_audit_lines(&srv, "ratelimit.block", "password_throttled", &sum);
    /* A guess let in once its delay ran out (a slow machine) ends a run. */
    int refused = 0, runs = 0;
    long prev = 403;
    for (int i = 0; i < 20; i++) {
        long st = ka_send(&k, "POST", "/v1/auth/password", auth, wrong);
        cr_assert(st == 429 || st == 403, "guess %d: %ld", i, st);
        refused += st == 429;
        runs += st == 429 && prev != 429;
        prev = st;
    }
    size_t after = harness_audit_lines(&srv, "ratelimit.block", "password_throttled", &sum);
    cr_assert_geq(refused, 1, "none of 20 guesses after ten wrong ones was throttled");
    cr_assert_eq(after - before, (size_t)runs, "%zu ratelimit.block lines for %d run(s) of %d throttled guesses",
                 after - before, runs, refused);
    ka_close(&k);
    free(wrong);
    free(tok);
}

/* Rate limits on with the shipped login and register limits (5 a minute,
 * burst 5), the per-address request limit out of the way. */
static void start_auth_limited(void)
{
    prepare_limits("1000", "1000");
    harness_start(&srv);
}

/* A stranger who spends a username's login limit with wrong passwords must
 * not lock its owner out: from another address the owner's right password
 * gets in at once. Guessing from many addresses is bounded by the account's
 * failure throttle, which counts every address. */
Test(limits, failed_logins_from_another_address_do_not_lock_the_owner_out, .init = start_auth_limited,
     .fini = finish, .timeout = 120)
{
    char name[40];
    harness_marker(name, sizeof(name), "owner");
    register_user(name, PW1);
    char *bad = cred_body(name, "not-the-password-at-all"), *good = cred_body(name, PW1);
    struct keepalive stranger, owner;
    ka_open_from(&stranger, "127.0.0.2");
    int failed = 0;
    while (failed < 10 && ka_send(&stranger, "POST", "/v1/auth/login", NULL, bad) == 401)
        failed++;
    cr_assert_eq(stranger.r.status, 429, "the stranger was never limited (%d failures): %s", failed,
                 stranger.r.body);
    ka_open(&owner);
    cr_assert_eq(ka_send(&owner, "POST", "/v1/auth/login", NULL, good), 200,
                 "%d failed logins from another address locked the owner out: %s", failed, owner.r.body);
    ka_close(&owner);
    ka_close(&stranger);
    free(good);
    free(bad);
}

/* Registrations of one name are limited per name, whichever address they
 * come from (5 a minute, burst 5): six attempts alternated between two
 * addresses, three from each (inside the per-address limit), meet a 429 at
 * the sixth. */
Test(limits, registrations_of_one_name_are_limited_across_addresses, .init = start_auth_limited,
     .fini = finish, .timeout = 120)
{
    char name[40];
    harness_marker(name, sizeof(name), "taken");
    char *cred = cred_body(name, PW1);
    struct keepalive here, there;
    ka_open(&here);
    ka_open_from(&there, "127.0.0.2");
    for (int i = 0; i < 6; i++) {
        struct keepalive *k = i % 2 ? &there : &here;
        long want = i == 0 ? 201 : i < 5 ? 409 : 429;
        cr_assert_eq(ka_send(k, "POST", "/v1/auth/register", NULL, cred), want, "registration %d of one name: %s",
                     i + 1, k->r.body);
    }
    ka_close(&there);
    ka_close(&here);
    free(cred);
}

Test(limits, note_writes_are_limited_per_user, .init = start_throttled, .fini = finish)
{
    char a[40], auth[128];
    harness_marker(a, sizeof(a), "writer");
    register_user(a, PW1);
    char *tok = login(a, PW1);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", tok);
    char *body = note_body("t", "c");
    struct keepalive k;
    ka_open(&k);
    long t0 = harness_now_ms(), ms;
    int passed = ka_until_refused(&k, "POST", "/v1/notes", auth, body, 201, 10, &ms);
    assert_bucket(&k, passed, ms, 2, 1, "POST /v1/notes");
    /* Reads are not write-limited. The refusal left less than one token, so
     * a write limit on reads would pass fewer than 1 + s reads in the s
     * seconds since t0: read until more than that have passed. */
    int reads = 0;
    long since;
    do {
        cr_assert_eq(ka_send(&k, "GET", "/v1/notes", auth, NULL), 200, "read %d after the write limit", reads + 1);
        reads++;
        since = harness_now_ms() - t0;
    } while (reads < 20 && reads < 2 + since / 1000);
    cr_assert_geq(reads, 2 + since / 1000, "%d reads in %ld ms: too slow to tell", reads, since);
    ka_close(&k);
    free(body);
    free(tok);
}

/* An export is built on the event loop: a full account's is ~90 ms, and
 * nothing but the per-address request limit (20/s) bounded how often one
 * could be asked for, so one signed-in client stalled every other for
 * seconds. Now a bucket per user and one per address. */
static void start_export_limited(void)
{
    prepare_limits("1000", "1000");
    harness_setenv(&srv, "NOTES_RATE_AUTH_PER_MIN", "1000");
    harness_setenv(&srv, "NOTES_RATE_AUTH_BURST", "1000");
    harness_setenv(&srv, "NOTES_RATE_EXPORTS_PER_MIN", "1");
    harness_setenv(&srv, "NOTES_RATE_EXPORTS_BURST", "2");
    harness_start(&srv);
}

static char *auth_of(const char *user, char *auth, size_t cap)
{
    register_user(user, PW1);
    char *tok = login(user, PW1);
    snprintf(auth, cap, "Authorization: Bearer %s", tok);
    return tok;
}

Test(limits, exports_are_limited_per_user_and_per_address, .init = start_export_limited, .fini = finish)
{
    char a[40], b[40], c[40], auth_a[128], auth_b[128], auth_c[128];
    harness_marker(a, sizeof(a), "expa");
    harness_marker(b, sizeof(b), "expb");
    harness_marker(c, sizeof(c), "expc");
    char *ta = auth_of(a, auth_a, sizeof(auth_a)), *tb = auth_of(b, auth_b, sizeof(auth_b));
    char *tc = auth_of(c, auth_c, sizeof(auth_c));
    struct keepalive k, other;
    ka_open(&k);
    long ms;
    int passed = ka_until_refused(&k, "GET", "/v1/me/export", auth_a, NULL, 200, 10, &ms);
    cr_assert_lt(ms, 60000, "too slow to tell (%ld ms)", ms);
    cr_assert_eq(passed, 2, "%d exports passed in %ld ms (burst 2, 1/min)", passed, ms);
    cr_assert_eq(k.r.status, 429);
    char *retry = response_header(&k.r, "Retry-After");
    cr_assert(retry && atoi(retry) >= 1 && atoi(retry) <= 61, "Retry-After %s", retry ? retry : "(none)");
    free(retry);
    /* Another account from the same address: that address's bucket is empty. */
    cr_assert_eq(ka_send(&k, "GET", "/v1/me/export", auth_b, NULL), 429, "a second account exported");
    /* Other requests of the same user are not export-limited. */
    cr_assert_eq(ka_send(&k, "GET", "/v1/me", auth_a, NULL), 200);
    /* Another address and another account export. */
    ka_open_from(&other, "127.0.0.2");
    cr_assert_eq(ka_send(&other, "GET", "/v1/me/export", auth_c, NULL), 200);
    ka_close(&other);
    ka_close(&k);
    free(ta);
    free(tb);
    free(tc);
}

/* Only an export that will be built spends the limit: refused requests
 * (here 400 for a query the route does not take) took tokens too, so a
 * client's own mistakes, or another user's refusals, used up its exports. */
Test(limits, refused_export_requests_do_not_spend_the_export_limit, .init = start_export_limited, .fini = finish)
{
    char a[40], auth_a[128];
    harness_marker(a, sizeof(a), "expr");
    char *ta = auth_of(a, auth_a, sizeof(auth_a));
    struct keepalive k;
    ka_open(&k);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(ka_send(&k, "GET", "/v1/me/export?format=zip", auth_a, NULL), 400, "refusal %d", i + 1);
    for (int i = 0; i < 2; i++)
        cr_assert_eq(ka_send(&k, "GET", "/v1/me/export", auth_a, NULL), 200, "export %d of a burst of 2", i + 1);
    ka_close(&k);
    free(ta);
}
