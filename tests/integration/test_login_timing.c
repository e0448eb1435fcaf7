/*
 * Failed logins take as long whatever the reason (suite auth): an old hash
 * against an unknown name, both ways round. A program of its own, run one
 * test at a time and with no other test program beside it
 * (tests/integration/meson.build): it compares argon2id check times with
 * the server's padding, which other tests hashing on the same two cores
 * would stretch unevenly. Fixtures and helpers: api_support.h.
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>

#include "api_support.h"

static long elapsed_login_ms(const char *name)
{
    long t0 = harness_now_ms();
    cr_assert_eq(login_status(name, "wrong-password-entirely"), 401);
    return harness_now_ms() - t0;
}

static int cmp_long(const void *x, const void *y)
{
    long a = *(const long *)x, b = *(const long *)y;
    return a < b ? -1 : a > b;
}

/* After the argon2 settings are raised, an account whose hash predates the
 * raise verifies a wrong password much faster than the check an unknown
 * name gets: the time told which names exist. A failed login now takes at
 * least as long as a check under the current settings.
 *
 * The server pads to a running mean of its earlier current-settings checks
 * (api_auth_jobs.c check_login), and a mean is never below its smallest
 * sample: every padded login lasts at least the fastest unknown-name check
 * before it. So the minima are compared, not the medians: if load rises
 * during the test, later unknown-name checks slow down while the padding
 * still follows the older, faster ones, and a median ratio could fail with
 * the padding working. The margin is wide: unpadded, the ratio is about
 * 0.2 (t=2 against t=12). */
Test(auth, a_failed_login_takes_as_long_for_an_old_hash_as_for_an_unknown_name, .init = start_open,
     .fini = finish, .timeout = 120)
{
    char name[40], nobody[40];
    harness_marker(name, sizeof(name), "oldhash");
    harness_marker(nobody, sizeof(nobody), "nobody");
    register_user(name, PW1);
    harness_setenv(&srv, "NOTES_ARGON2_TIME", "12");
    restart();
    enum { N = 5 };
    long known[N], unknown[N];
    for (int i = 0; i < N; i++) {
        unknown[i] = elapsed_login_ms(nobody);   /* first: the padding has a measured target */
        known[i] = elapsed_login_ms(name);
    }
    qsort(known, N, sizeof(long), cmp_long);
    qsort(unknown, N, sizeof(long), cmp_long);
    cr_log_info("failed logins, min/median/max ms: old hash %ld/%ld/%ld, unknown name %ld/%ld/%ld", known[0],
                known[N / 2], known[N - 1], unknown[0], unknown[N / 2], unknown[N - 1]);
    cr_assert_geq(known[0] * 10, unknown[0] * 6,
                  "a wrong password for an existing account with an old hash answers in %ld ms at the fastest, "
                  "for an unknown name in %ld ms", known[0], unknown[0]);
}

/* The other way round: after the settings are lowered, an account whose
 * hash predates that costs more to check than an unknown name's dummy
 * hash, and its failed logins took longer. The server now times a check
 * under each stored setting once it runs (readiness: its log line) and pads
 * every failed login to the costliest (it was about 0.15 of it before).
 * Minima: each padded login lasts at least the running mean of earlier
 * checks times that factor. The account's next successful login rehashes
 * it to the current settings. */
Test(auth, a_failed_login_takes_as_long_for_an_unknown_name_as_for_a_costlier_old_hash, .init = start_open,
     .fini = finish, .timeout = 120)
{
    char name[40], nobody[40];
    harness_marker(name, sizeof(name), "dearhash");
    harness_marker(nobody, sizeof(nobody), "nobody");
    harness_setenv(&srv, "NOTES_ARGON2_TIME", "16");
    restart();
    int64_t id = register_user(name, PW1);
    harness_setenv(&srv, "NOTES_ARGON2_TIME", "2");
    restart();
    harness_await_log(&srv, "stored password hashes under other argon2id settings cost up to", 1, 60);
    enum { N = 5 };
    long known[N], unknown[N];
    for (int i = 0; i < N; i++) {
        unknown[i] = elapsed_login_ms(nobody);
        known[i] = elapsed_login_ms(name);
    }
    qsort(known, N, sizeof(long), cmp_long);
    qsort(unknown, N, sizeof(long), cmp_long);
    cr_log_info("failed logins, least ms: costlier old hash %ld, unknown name %ld", known[0], unknown[0]);
    cr_assert_geq(unknown[0] * 10, known[0] * 6,
                  "a wrong password for an account with a costlier old hash answers in %ld ms at least, for an "
                  "unknown name in %ld ms", known[0], unknown[0]);
    free(login(name, PW1));
    cr_assert_eq(db_exec("SELECT count(*) FROM users WHERE id = ? AND password_hash LIKE '%t=2,%'", id, 0), 1,
                 "the costlier hash was not rehashed to t=2");
}
