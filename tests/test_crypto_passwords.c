/*
 * Unit tests of crypto.c's argon2id passwords: hashing and verifying,
 * rehash decisions, refused PHC strings and parameters, the dummy hash
 * and the timed check. Argon2 tests are few on purpose: each hash or
 * verify costs ~50 ms. Fixture and helpers: crypto_support.h.
 */
#include <criterion/criterion.h>
#include <argon2.h>
#include <string.h>
#include <stdint.h>

#include "err.h"
#include "crypto_support.h"

/* ---- passwords ---------------------------------------------------------- */

static const struct crypto_argon2 OWASP = { 19456, 2, 1 };

Test(crypto, password_round_trip_with_long_multibyte_password)
{
    /* 128 characters, 256 bytes of UTF-8 ("é" is two bytes). */
    char pw[257];
    for (size_t i = 0; i < 128; i++)
        memcpy(pw + 2 * i, "\xc3\xa9", 2);
    pw[256] = '\0';
    uint8_t salt[CRYPTO_SALT_LEN];
    char phc[CRYPTO_PHC_MAX];
    cr_assert_eq(crypto_random(salt, sizeof(salt)), 0);
    cr_assert_eq(crypto_password_hash(&OWASP, pw, 256, salt, phc), 0);
    cr_assert_eq(strncmp(phc, "$argon2id$v=19$m=19456,t=2,p=1$", 31), 0, "%s", phc);

    bool rehash = true;
    cr_assert_eq(crypto_password_verify(phc, pw, 256, &OWASP, &rehash), 0);
    cr_assert_not(rehash, "equal parameters need no rehash");
    /* The last byte counts: nothing is truncated. */
    rehash = true;
    cr_assert_eq(crypto_password_verify(phc, pw, 255, &OWASP, &rehash), ERR_INVALID);
    cr_assert_not(rehash);
    pw[0] = 'x';
    cr_assert_eq(crypto_password_verify(phc, pw, 256, &OWASP, &rehash), ERR_INVALID);
}

Test(crypto, weaker_stored_parameters_need_rehash)
{
    uint8_t salt[CRYPTO_SALT_LEN] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };
    char phc[CRYPTO_PHC_MAX];
    cr_assert_eq(crypto_password_hash(&OWASP, "correct horse", 13, salt, phc), 0);
    const struct crypto_argon2 stronger = { 19456, 3, 1 };
    bool rehash = false;
    cr_assert_eq(crypto_password_verify(phc, "correct horse", 13, &stronger, &rehash), 0);
    cr_assert(rehash, "t=2 stored, t=3 wanted");
    /* The same salt and password give the same PHC: hashing is deterministic. */
    char again[CRYPTO_PHC_MAX];
    cr_assert_eq(crypto_password_hash(&OWASP, "correct horse", 13, salt, again), 0);
    cr_assert_str_eq(phc, again);
}

Test(crypto, verify_refuses_other_types_versions_and_garbage)
{
    /* A genuine argon2i string, cheap parameters: libargon2 itself accepts
     * it, so its refusal below is notesd's type check. */
    char i_phc[CRYPTO_PHC_MAX];
    const uint8_t salt[16] = { 0 };
    cr_assert_eq(argon2i_hash_encoded(2, 64, 1, "pw", 2, salt, 16, 32, i_phc, sizeof(i_phc)),
                 ARGON2_OK);
    cr_assert_eq(argon2i_verify(i_phc, "pw", 2), ARGON2_OK);
    cr_assert_eq(crypto_password_verify(i_phc, "pw", 2, &OWASP, NULL), ERR_INVALID);

    const char *bad[] = {
        "",
        "garbage",
        "$argon2d$v=19$m=64,t=2,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "$argon2id$v=16$m=64,t=2,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "$argon2id$m=64,t=2,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "$argon2id$v=19$m=064,t=2,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "$argon2id$v=19$m=4294967295,t=2,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "$argon2id$v=19$m=64,t=4294967296,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "$argon2id$v=19$m=64,t=2,p=1$AAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "$argon2id$v=19$m=64,t=2,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAA",
        "$argon2id$v=19$m=64,t=2,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA$",
        "$argon2id$v=19$m=64,t=2$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        bool rehash = true;
        cr_assert_eq(crypto_password_verify(bad[i], "pw", 2, &OWASP, &rehash), ERR_INVALID,
                     "accepted: %s", bad[i]);
        cr_assert_not(rehash);
    }
}

Test(crypto, weak_but_valid_argon2id_verifies_and_asks_for_rehash)
{
    /* The control for the test above: the same shape as argon2id, cheap
     * parameters, is accepted, so refusals there are about type and form. */
    char phc[CRYPTO_PHC_MAX];
    const uint8_t salt[16] = { 7 };
    cr_assert_eq(argon2id_hash_encoded(2, 64, 1, "pw", 2, salt, 16, 32, phc, sizeof(phc)), ARGON2_OK);
    bool rehash = false;
    cr_assert_eq(crypto_password_verify(phc, "pw", 2, &OWASP, &rehash), 0, "%s", phc);
    cr_assert(rehash, "m=64 stored, m=19456 wanted");
}

Test(crypto, hash_refuses_parameters_out_of_range)
{
    const uint8_t salt[CRYPTO_SALT_LEN] = { 0 };
    char phc[CRYPTO_PHC_MAX];
    const struct crypto_argon2 bad[] = {
        { 19455, 2, 1 }, { 19456, 1, 1 }, { 19456, 2, 0 }, { 19456, 101, 1 },
        { 19456, 2, 17 }, { 4194305, 2, 1 },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_eq(crypto_password_hash(&bad[i], "pw", 2, salt, phc), ERR_INVALID, "case %zu", i);
}

/* The unknown-user hash must cost what a real user's costs: it carries the
 * configured parameters, and a fresh salt and hash per process. */
Test(crypto, dummy_phc_carries_the_configured_cost)
{
    struct config cfg;
    make_cfg(&cfg, 1);
    cfg.argon2_m_kib = 19457;
    cfg.argon2_t = 3;
    cfg.argon2_p = 2;
    struct crypto *a = new_crypto(&cfg), *b = new_crypto(&cfg);
    const char *d = crypto_dummy_phc(a);
    cr_assert_eq(strncmp(d, "$argon2id$v=19$m=19457,t=3,p=2$", 31), 0, "%s", d);
    cr_assert_str_neq(d, crypto_dummy_phc(b), "two processes share one dummy hash");
    struct crypto_argon2 want = { 19457, 3, 2 };
    bool rehash = true;
    cr_assert_eq(crypto_password_verify(d, "password", 8, &want, &rehash), ERR_INVALID);
    crypto_free(a);
    crypto_free(b);
    cfg.argon2_t = 1;
    struct crypto *c = NULL;
    char err[CONFIG_ERR_MAX] = "";
    cr_assert_eq(crypto_new(&c, &cfg, err, sizeof(err)), ERR_CONFIG, "t=1 accepted");
    cr_assert_null(c);
}

Test(crypto, dummy_phc_is_argon2id_that_matches_nothing)
{
    struct crypto *c = crypto_seeded(1);
    const char *d = crypto_dummy_phc(c);
    cr_assert_eq(strncmp(d, "$argon2id$v=19$m=19456,t=2,p=1$", 31), 0, "%s", d);
    /* 22 salt characters, '$', 43 hash characters. */
    cr_assert_eq(strlen(d), 31 + 22 + 1 + 43, "%s", d);
    bool rehash = true;
    cr_assert_eq(crypto_password_verify(d, "password", 8, &OWASP, &rehash), ERR_INVALID);
    cr_assert_eq(crypto_password_verify(d, "", 0, &OWASP, &rehash), ERR_INVALID);
    /* libargon2 parses it as argon2id: it is a real hash, not a placeholder
     * that fails early (which would make unknown users fast to detect). */
    cr_assert_eq(argon2id_verify(d, "password", 8), ARGON2_VERIFY_MISMATCH);
    crypto_free(c);
}

/* The parameters' part of a PHC string, parsed as strictly as the whole
 * string is: start-up reads the stored hashes' settings with it. */
Test(crypto, password_params_parse_exactly_m_t_p)
{
    struct crypto_argon2 p = { 0, 0, 0 };
    cr_assert_eq(crypto_password_params("m=19456,t=2,p=1", &p), 0);
    cr_assert_eq(p.m_kib, 19456);
    cr_assert_eq(p.t, 2);
    cr_assert_eq(p.p, 1);
    cr_assert_eq(crypto_password_params("m=65536,t=12,p=4", &p), 0);
    cr_assert(p.m_kib == 65536 && p.t == 12 && p.p == 4);
    static const char *const bad[] = {
        "", "m=19456,t=2", "m=19456,t=2,p=1$", "m=019456,t=2,p=1", "t=2,m=19456,p=1", "m=19456,t=2,p=1x",
        "m=,t=2,p=1", "m=-1,t=2,p=1", "m=4294967296,t=2,p=1", "M=19456,t=2,p=1", " m=19456,t=2,p=1",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct crypto_argon2 q = { 7, 7, 7 };
        cr_assert_eq(crypto_password_params(bad[i], &q), ERR_INVALID, "accepted \"%s\"", bad[i]);
        cr_assert(q.m_kib == 7 && q.t == 7 && q.p == 7, "\"%s\" wrote its output", bad[i]);
    }
    cr_assert_eq(crypto_password_params(NULL, &p), ERR_INVALID);
}

/* What the stored-settings timing job times: a dummy under the given
 * settings, checked to its end (a mismatch), never a string libargon2
 * refuses at once (that would time nothing). How long it takes is
 * argon2's business and is not asserted here. */
Test(crypto, a_timed_check_runs_the_whole_argon2_of_a_dummy)
{
    struct crypto *c = crypto_seeded(1);     /* PSA is up for the salt */
    struct crypto_argon2 dear = { CRYPTO_ARGON2_M_MIN, 3, 2 };
    char phc[CRYPTO_PHC_MAX];
    cr_assert_eq(crypto_password_dummy(&dear, phc), 0);
    cr_assert_eq(strncmp(phc, "$argon2id$v=19$m=19456,t=3,p=2$", 31), 0, "%s", phc);
    cr_assert_eq(argon2id_verify(phc, "x", 1), ARGON2_VERIFY_MISMATCH, "not a whole argon2id check");
    uint64_t ms = 99999;
    cr_assert_eq(crypto_password_check_ms(phc, &ms), 0);
    cr_assert_lt(ms, 99999);
    struct crypto_argon2 floor = { CRYPTO_ARGON2_M_MIN, 1, 1 };
    cr_assert_eq(crypto_password_dummy(&floor, phc), ERR_INVALID, "t=1 is below the floor");
    cr_assert_eq(crypto_password_check_ms("$argon2id$v=19$m=19456,t=2,p=1$!!$!!", &ms), ERR_CRYPTO);
    cr_assert_eq(crypto_password_check_ms("$argon2i$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaA", &ms), ERR_CRYPTO,
                 "another argon2 type");
    cr_assert_eq(crypto_password_check_ms(NULL, &ms), ERR_INVALID);
    crypto_free(c);
}

/* Settings changed either way rehash at the next login: raised ones make
 * the hash stronger, lowered ones end what an old hash costs (and the
 * padding of failed logins it asks for). */
Test(crypto, stronger_stored_parameters_are_rehashed_to_the_current_ones)
{
    uint8_t salt[CRYPTO_SALT_LEN] = { 9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 1, 2, 3, 4, 5, 6 };
    const struct crypto_argon2 stronger = { 19456, 3, 1 };
    char phc[CRYPTO_PHC_MAX];
    cr_assert_eq(crypto_password_hash(&stronger, "correct horse", 13, salt, phc), 0);
    bool rehash = false;
    cr_assert_eq(crypto_password_verify(phc, "correct horse", 13, &OWASP, &rehash), 0);
    cr_assert(rehash, "t=3 stored, t=2 wanted");
    rehash = true;
    cr_assert_eq(crypto_password_verify(phc, "correct horse", 13, &stronger, &rehash), 0);
    cr_assert_not(rehash, "the same settings");
}
