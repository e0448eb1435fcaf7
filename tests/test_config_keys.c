/*
 * Unit tests of config.c's key values: missing, malformed, short or long
 * keys, weak keys (low variety, progressions, passphrases), previous data
 * keys, keys shared between roles, and wiping keys on free and on refusal.
 * Fixture and helpers: config_support.h.
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "config_support.h"

Test(config, accepts_512_byte_key)
{
    uint8_t raw[512];
    char text[B64_MAX];
    gen_key(text, sizeof(text), 512, 777, raw);
    env_set("NOTES_AUDIT_KEY", text);
    assert_loaded(load());
    assert_secret_is(&cfg.audit_key, raw, 512);
}

/* `n` bytes holding exactly `values` distinct byte values in no pattern: a
 * shuffled pick of `values` byte values, each used once, then drawn from
 * again at random. */
static void key_with_values(uint8_t *out, size_t n, size_t values, uint32_t seed)
{
    uint8_t pool[256];
    uint32_t s = seed * 2654435761u + 0x7f4a7c15u;
    cr_assert(values >= 1 && values <= 256 && values <= n);
    for (size_t i = 0; i < 256; i++)
        pool[i] = (uint8_t)i;
    for (size_t i = 255; i > 0; i--) {
        size_t j = xorshift(&s) % (i + 1);
        uint8_t t = pool[i];
        pool[i] = pool[j];
        pool[j] = t;
    }
    for (size_t i = 0; i < n; i++)
        out[i] = pool[i < values ? i : xorshift(&s) % values];
}

/* The floor is half the bytes (a quarter plus 48 past 192 bytes): a key
 * right at it is taken, whatever its length. */
Test(config, accepts_key_with_as_many_distinct_values_as_the_floor)
{
    static const size_t cases[][2] = { { 32, 16 }, { 100, 50 }, { 256, 112 }, { 512, 176 } };
    uint8_t raw[512];
    char text[B64_MAX];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        key_with_values(raw, cases[i][0], cases[i][1], 40 + (uint32_t)i);
        b64(text, sizeof(text), raw, cases[i][0]);
        env_set("NOTES_DATA_KEY", text);
        assert_loaded(load());
        assert_secret_is(&cfg.data_key, raw, cases[i][0]);
    }
}

/* ---- missing keys ---------------------------------------------------------- */

static void check_missing_key(const char *name)
{
    env_unset(name);
    assert_refused(load(), name, "missing");
}

Test(config, refuses_missing_data_key)
{
    check_missing_key("NOTES_DATA_KEY");
}

Test(config, refuses_missing_token_key)
{
    check_missing_key("NOTES_TOKEN_KEY");
}

Test(config, refuses_missing_audit_key)
{
    check_missing_key("NOTES_AUDIT_KEY");
}

Test(config, empty_key_counts_as_missing)
{
    static const char *const names[] = { "NOTES_DATA_KEY", "NOTES_TOKEN_KEY", "NOTES_AUDIT_KEY" };
    for (size_t i = 0; i < 3; i++) {
        env_set("NOTES_DATA_KEY", data_b64);
        env_set("NOTES_TOKEN_KEY", token_b64);
        env_set("NOTES_AUDIT_KEY", audit_b64);
        env_set(names[i], "");
        assert_refused(load(), names[i], "missing");
    }
}

Test(config, empty_key_file_variable_counts_as_unset)
{
    env_unset("NOTES_DATA_KEY");
    env_set("NOTES_DATA_KEY_FILE", "");
    assert_refused(load(), "NOTES_DATA_KEY", "missing");
}

/* ---- malformed keys --------------------------------------------------------- */

/* Replace the key `name` with `value`, expect a refusal naming `name` and
 * mentioning `what`, and no trace of `value` in the message. */
static void check_bad_key(const char *name, const char *value, const char *what)
{
    env_set(name, value);
    assert_refused(load(), name, what);
    assert_no_leak_str(err, value);
}

Test(config, refuses_key_with_invalid_characters)
{
    char v[B64_MAX];
    static const char bad[] = { '!', '-', '_', '.', '*', '"', '\x7f', '\xc3' };
    for (size_t i = 0; i < sizeof(bad); i++) {
        gen_key(v, sizeof(v), 32, 1000 + (uint32_t)i, NULL);
        v[13] = bad[i];
        check_bad_key("NOTES_TOKEN_KEY", v, "base64");
    }
}

Test(config, refuses_key_with_bad_length)
{
    char v[B64_MAX];
    gen_key(v, sizeof(v), 33, 2001, NULL); /* 44 chars, no padding */
    v[strlen(v) - 1] = 0;                   /* 43: not a multiple of 4 */
    check_bad_key("NOTES_DATA_KEY", v, "base64");

    gen_key(v, sizeof(v), 32, 2002, NULL); /* "...=" */
    v[strlen(v) - 1] = 0;                   /* padding dropped */
    check_bad_key("NOTES_DATA_KEY", v, "base64");

    gen_key(v, sizeof(v), 33, 2003, NULL);
    strcat(v, "A");                         /* one extra char */
    check_bad_key("NOTES_DATA_KEY", v, "base64");
}

Test(config, refuses_key_with_embedded_whitespace)
{
    static const char ws[] = { ' ', '\n', '\t', '\r' };
    char v[B64_MAX], w[FILE_MAX];
    for (size_t i = 0; i < sizeof(ws); i++) {
        gen_key(v, sizeof(v), 36, 3000 + (uint32_t)i, NULL); /* 48 chars */
        /* One whitespace in the middle; drop one char so the length still
         * is a multiple of 4 and only the whitespace is wrong. */
        snprintf(w, sizeof(w), "%.20s%c%s", v, ws[i], v + 21);
        cr_assert_eq(strlen(w) % 4, 0);
        check_bad_key("NOTES_AUDIT_KEY", w, "base64");
        /* Leading and trailing whitespace, too. */
        snprintf(w, sizeof(w), "%c%s", ws[i], v + 1);
        check_bad_key("NOTES_AUDIT_KEY", w, "base64");
        snprintf(w, sizeof(w), "%.47s%c", v, ws[i]);
        check_bad_key("NOTES_AUDIT_KEY", w, "base64");
    }
    /* Whitespace a lenient decoder would skip: with it the length is still a
     * multiple of 4, and without it the base64 is valid. */
    gen_key(v, sizeof(v), 33, 3100, NULL); /* 44 chars, no padding */
    snprintf(w, sizeof(w), "%s    ", v);
    check_bad_key("NOTES_AUDIT_KEY", w, "base64");
    snprintf(w, sizeof(w), "%.22s\r\n%s\r\n", v, v + 22);
    check_bad_key("NOTES_AUDIT_KEY", w, "base64");
    snprintf(w, sizeof(w), "%.11s\n%.11s\n%.11s\n%s\n", v, v + 11, v + 22, v + 33);
    check_bad_key("NOTES_AUDIT_KEY", w, "base64");
    snprintf(w, sizeof(w), "%.22s  \n %s", v, v + 22);
    check_bad_key("NOTES_AUDIT_KEY", w, "base64");
}

Test(config, refuses_key_with_misplaced_padding)
{
    char v[B64_MAX];
    gen_key(v, sizeof(v), 36, 4001, NULL);
    v[8] = '=';
    check_bad_key("NOTES_DATA_KEY", v, "base64");

    gen_key(v, sizeof(v), 34, 4002, NULL); /* ends "AB==" style */
    size_t n = strlen(v);
    v[n - 3] = '='; /* three padding characters */
    check_bad_key("NOTES_DATA_KEY", v, "base64");
}

Test(config, refuses_short_key_31_bytes)
{
    char v[B64_MAX];
    gen_key(v, sizeof(v), 31, 5001, NULL);
    check_bad_key("NOTES_TOKEN_KEY", v, "too short");
}

Test(config, refuses_long_key_513_bytes)
{
    char v[B64_MAX];
    gen_key(v, sizeof(v), 513, 6001, NULL);
    check_bad_key("NOTES_DATA_KEY", v, "too long");
}

Test(config, refuses_very_long_key)
{
    char v[B64_MAX];
    gen_key(v, sizeof(v), 700, 6002, NULL);
    check_bad_key("NOTES_AUDIT_KEY", v, "too long");
}

Test(config, refuses_all_same_byte_key)
{
    static const uint8_t fill[] = { 0x00, 0x5a, 0xff };
    uint8_t raw[32];
    char v[B64_MAX];
    for (size_t i = 0; i < sizeof(fill); i++) {
        memset(raw, fill[i], sizeof(raw));
        b64(v, sizeof(v), raw, sizeof(raw));
        check_bad_key("NOTES_DATA_KEY", v, "same value");
    }
    /* A long one too: length does not make it random. */
    env_set("NOTES_DATA_KEY", data_b64);
    uint8_t big[200];
    memset(big, 0x42, sizeof(big));
    b64(v, sizeof(v), big, sizeof(big));
    check_bad_key("NOTES_TOKEN_KEY", v, "same value");
}

Test(config, refuses_low_variety_key)
{
    uint8_t raw[32];
    char v[B64_MAX];
    static const uint8_t four[] = { 0x13, 0x9c, 0xe7, 0x42 };
    for (size_t i = 0; i < sizeof(raw); i++)
        raw[i] = four[i % 4];
    b64(v, sizeof(v), raw, sizeof(raw));
    check_bad_key("NOTES_AUDIT_KEY", v, "distinct");

    /* 7 distinct values is still too few. */
    for (size_t i = 0; i < sizeof(raw); i++)
        raw[i] = (uint8_t)(0x21 * (i % 7) + 5);
    b64(v, sizeof(v), raw, sizeof(raw));
    check_bad_key("NOTES_AUDIT_KEY", v, "distinct");
}

/* 32 random bytes hold about 30 distinct values, and fewer than 16 with
 * probability 2^-54: a short counter repeated (bytes(range(8)) * 4) is not
 * a key, nor is one value short of the floor at any length. */
Test(config, refuses_key_with_fewer_distinct_values_than_the_floor)
{
    uint8_t raw[512];
    char v[B64_MAX];
    for (size_t i = 0; i < 32; i++)
        raw[i] = (uint8_t)(i % 8);
    b64(v, sizeof(v), raw, 32);
    check_bad_key("NOTES_DATA_KEY", v, "weak: too few distinct");
    env_set("NOTES_DATA_KEY", data_b64);
    static const size_t cases[][2] = { { 32, 15 }, { 100, 49 }, { 256, 111 }, { 512, 175 } };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        key_with_values(raw, cases[i][0], cases[i][1], 40 + (uint32_t)i);
        b64(v, sizeof(v), raw, cases[i][0]);
        check_bad_key("NOTES_TOKEN_KEY", v, "weak: too few distinct");
    }
}

/* Counters: every byte steps from the one before by the same amount, up or
 * down, for the whole key or for a stretch of nine bytes inside random ones.
 * They hold 32 distinct values and are not text, so nothing else sees them. */
Test(config, refuses_key_whose_bytes_run_in_arithmetic_progression)
{
    uint8_t raw[64];
    char v[B64_MAX];
    for (size_t i = 0; i < 32; i++)
        raw[i] = (uint8_t)i;                       /* 00 01 02 ... 1f */
    b64(v, sizeof(v), raw, 32);
    check_bad_key("NOTES_DATA_KEY", v, "weak: ");
    cr_assert_not_null(strstr(err, "progression"), "'%s'", err);
    for (size_t i = 0; i < 32; i++)
        raw[i] = (uint8_t)(0xff - i);              /* ff fe fd ... e0 */
    b64(v, sizeof(v), raw, 32);
    check_bad_key("NOTES_DATA_KEY", v, "progression");
    for (size_t i = 0; i < 48; i++)
        raw[i] = (uint8_t)(0x35 + 0x4d * i);       /* wraps around: still a counter */
    b64(v, sizeof(v), raw, 48);
    check_bad_key("NOTES_DATA_KEY", v, "progression");
    key_bytes(raw, 64, 61);
    for (size_t i = 0; i < 9; i++)
        raw[20 + i] = (uint8_t)(0x90 + 3 * i);     /* nine bytes: eight equal steps */
    b64(v, sizeof(v), raw, 64);
    check_bad_key("NOTES_DATA_KEY", v, "progression");
}

/* The refusal starts at nine bytes: nine that step alike come by chance
 * with probability below 2^-47 even among 512 random bytes. Eight are
 * taken. */
Test(config, accepts_key_with_eight_bytes_in_arithmetic_progression)
{
    uint8_t raw[64];
    char v[B64_MAX];
    key_bytes(raw, 64, 61);
    for (size_t i = 0; i < 8; i++)
        raw[20 + i] = (uint8_t)(0x90 + 3 * i);
    raw[28] = (uint8_t)(raw[27] + 4);              /* the ninth steps differently */
    b64(v, sizeof(v), raw, 64);
    env_set("NOTES_DATA_KEY", v);
    assert_loaded(load());
    assert_secret_is(&cfg.data_key, raw, 64);
}

/* A passphrase in base64 decodes to printable text: it passes the length
 * and variety checks, and is not a key. Random bytes are all printable
 * with probability (95/256)^32, about 2^-46. */
Test(config, refuses_a_passphrase_given_as_a_key)
{
    static const char phrase[] = "notesd-data-key-for-production-2024";
    char v[B64_MAX];
    b64(v, sizeof(v), (const uint8_t *)phrase, strlen(phrase));
    check_bad_key("NOTES_DATA_KEY", v, "printable");
    env_set("NOTES_DATA_KEY", data_b64);
    char longer[300];
    memset(longer, 0, sizeof(longer));
    for (size_t i = 0; i + 1 < sizeof(longer); i++)
        longer[i] = (char)(' ' + (i * 37) % 95);
    b64(v, sizeof(v), (const uint8_t *)longer, strlen(longer));
    check_bad_key("NOTES_TOKEN_KEY", v, "printable");
}

/* `echo 'a passphrase' | base64` keeps the newline echo adds: one byte
 * that is not 0x20..0x7e must not make text pass for a key. */
Test(config, refuses_a_passphrase_with_its_trailing_newline)
{
    static const char phrase[] = "correct horse battery staple 2024\n";
    char v[B64_MAX];
    b64(v, sizeof(v), (const uint8_t *)phrase, strlen(phrase));
    check_bad_key("NOTES_DATA_KEY", v, "weak: ");
    cr_assert_not_null(strstr(err, "printable"), "'%s'", err);
    /* Words between tabs, as a pasted table or a TSV field would be. */
    char words[8 * 9 + 1];
    for (size_t i = 0; i < 8; i++)
        memcpy(words + 9 * i, "password\t", 9);
    words[8 * 9] = 0;
    env_set("NOTES_DATA_KEY", data_b64);
    b64(v, sizeof(v), (const uint8_t *)words, strlen(words));
    check_bad_key("NOTES_AUDIT_KEY", v, "printable");
}

/* Most bytes text, not all: a passphrase with accented letters (UTF-8) or
 * text with a few stray bytes. 3/4 printable with 8 bytes to spare is
 * reached by 32..512 random bytes with probability below 2^-43. */
Test(config, refuses_a_key_that_is_mostly_printable_text)
{
    uint8_t raw[512];
    char v[B64_MAX];
    static const size_t cases[][2] = { { 64, 8 }, { 100, 17 }, { 512, 120 } };
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        size_t n = cases[c][0], odd = cases[c][1];
        for (size_t i = 0; i < n; i++)
            raw[i] = (uint8_t)(' ' + (i * 37 + c) % 95);
        for (size_t i = 0; i < odd; i++)           /* spread out, 0x80..0xff */
            raw[i * n / odd] = (uint8_t)(0x80 | (i * 29));
        b64(v, sizeof(v), raw, n);
        check_bad_key("NOTES_DATA_KEY", v, "printable");
        env_set("NOTES_DATA_KEY", data_b64);
    }
}

/* The other side of every threshold: random keys (the kernel's, as
 * notesd gen-secrets makes them) are never refused as weak. Each is
 * refused with probability below 2^-43; one of these 2500, below 2^-31. */
Test(config, random_keys_are_never_refused_as_weak)
{
    uint8_t raw[512];
    char v[B64_MAX];
    for (size_t i = 0; i < 2500; i++) {
        size_t n = 32;
        if (i >= 2000) {                           /* and 500 of 33..512 bytes */
            uint16_t r;
            cr_assert_eq(getrandom(&r, sizeof(r), 0), (ssize_t)sizeof(r));
            n = 33 + r % 480;
        }
        cr_assert_eq(getrandom(raw, n, 0), (ssize_t)n);
        b64(v, sizeof(v), raw, n);
        env_set("NOTES_DATA_KEY", v);
        int rc = load();
        cr_assert_eq(rc, 0, "random key %zu (%zu bytes) refused: '%s'", i, n, err);
    }
}

/* A deployment whose data key was a passphrase must still be able to move
 * it to the previous keys and rekey its notes under a random one: there it
 * is accepted (with a warning), never as the current key. */
Test(config, a_passphrase_is_still_read_as_a_previous_data_key)
{
    static const char phrase[] = "notesd-data-key-for-production-2024";
    char v[B64_MAX];
    b64(v, sizeof(v), (const uint8_t *)phrase, strlen(phrase));
    env_set("NOTES_DATA_KEY_PREVIOUS", v);
    assert_loaded(load());
    cr_assert_eq(cfg.n_data_key_previous, 1);
    assert_secret_is(&cfg.data_key_previous[0], (const uint8_t *)phrase, strlen(phrase));
}

/* So is a key the stricter checks refuse that older notesd took (a
 * counter): it reads old notes, with a warning saying what is wrong. One
 * that was never accepted (below 8 distinct values) is still refused. */
Test(config, a_patterned_previous_data_key_is_read_with_a_warning, .init = setup_capture_stderr)
{
    uint8_t raw[32];
    char v[B64_MAX], log[8192];
    for (size_t i = 0; i < sizeof(raw); i++)
        raw[i] = (uint8_t)i;
    b64(v, sizeof(v), raw, sizeof(raw));
    env_set("NOTES_DATA_KEY_PREVIOUS", v);
    assert_loaded(load());
    cr_assert_eq(cfg.n_data_key_previous, 1);
    assert_secret_is(&cfg.data_key_previous[0], raw, sizeof(raw));
    read_stderr(log, sizeof(log));
    cr_assert_not_null(strstr(log, "NOTES_DATA_KEY_PREVIOUS"), "no warning: '%s'", log);
    cr_assert_not_null(strstr(log, "weak: "), "the warning does not say what is wrong: '%s'", log);
    assert_no_leak_str(log, v);
    memset(raw, 0, sizeof(raw));
    b64(v, sizeof(v), raw, sizeof(raw));
    check_bad_key("NOTES_DATA_KEY_PREVIOUS", v, "same value");
}

/* ---- keys shared between purposes ------------------------------------------ */

Test(config, refuses_token_key_equal_to_data_key)
{
    env_set("NOTES_TOKEN_KEY", data_b64);
    assert_refused(load(), "NOTES_TOKEN_KEY", "NOTES_DATA_KEY");
    assert_no_leak_str(err, data_b64);
}

Test(config, refuses_audit_key_equal_to_data_key)
{
    env_set("NOTES_AUDIT_KEY", data_b64);
    assert_refused(load(), "NOTES_AUDIT_KEY", "NOTES_DATA_KEY");
    assert_no_leak_str(err, data_b64);
}

Test(config, refuses_audit_key_equal_to_token_key)
{
    env_set("NOTES_AUDIT_KEY", token_b64);
    assert_refused(load(), "NOTES_AUDIT_KEY", "NOTES_TOKEN_KEY");
    assert_no_leak_str(err, token_b64);
}

/* HMAC pads a key shorter than its block (64 bytes) with zeros: a key and
 * the same key with zero bytes after it are one HMAC key. */
Test(config, refuses_audit_key_equal_to_token_key_padded_with_zeros)
{
    uint8_t raw[34];
    memcpy(raw, token_raw, sizeof(token_raw));
    raw[32] = raw[33] = 0;
    char v[B64_MAX];
    b64(v, sizeof(v), raw, sizeof(raw));
    env_set("NOTES_AUDIT_KEY", v);
    assert_refused(load(), "NOTES_AUDIT_KEY", "NOTES_TOKEN_KEY");
    assert_no_leak_str(err, v);
}

Test(config, refuses_shared_key_given_through_different_sources)
{
    char path[128], content[FILE_MAX];
    tmp_path(path, sizeof(path), "token.key");
    snprintf(content, sizeof(content), "%s\n", data_b64);
    write_str(path, content, 0600);
    env_unset("NOTES_TOKEN_KEY");
    env_set("NOTES_TOKEN_KEY_FILE", path);
    assert_refused(load(), "NOTES_TOKEN_KEY", "NOTES_DATA_KEY");
    assert_no_leak_str(err, data_b64);
}

/* ---- wiping ---------------------------------------------------------------------- */

Test(config, config_free_wipes_keys)
{
    assert_loaded(load());
    cr_assert_not(all_zero(cfg.data_key.bytes, cfg.data_key.len));
    cr_assert_not(all_zero(cfg.token_key.bytes, cfg.token_key.len));
    cr_assert_not(all_zero(cfg.audit_key.bytes, cfg.audit_key.len));
    config_free(&cfg);
    assert_keys_wiped();
    cr_assert_null(cfg.listen);
    cr_assert_null(cfg.db_path);
    cr_assert_null(cfg.audit_dir);
    cr_assert_null(cfg.tls_cert);
    cr_assert_null(cfg.tls_key);
    cr_assert_null(cfg.notify_socket);
}

Test(config, config_free_is_safe_twice_and_on_zeroed_struct)
{
    struct config z;
    memset(&z, 0, sizeof(z));
    config_free(&z);
    cr_assert(all_zero(&z, sizeof(z)));
    assert_loaded(load());
    config_free(&cfg);
    config_free(&cfg);
    assert_keys_wiped();
}

/* A refusal after some keys were decoded leaves none of them behind. */
Test(config, refusal_wipes_keys_already_decoded)
{
    char v[B64_MAX];
    gen_key(v, sizeof(v), 31, 1234, NULL);
    env_set("NOTES_AUDIT_KEY", v); /* the last key: the other two are decoded */
    memset(&cfg, 0xa5, sizeof(cfg));
    int rc = config_load(&cfg, env, NULL, 0, CONFIG_NEED_ALL, err, sizeof(err));
    assert_refused(rc, "NOTES_AUDIT_KEY", "too short");
    cr_assert(all_zero(&cfg, sizeof(cfg)), "cfg not wiped after a refusal");
}

Test(config, refusal_after_keys_wipes_them)
{
    env_set("NOTES_SHUTDOWN_GRACE", "never"); /* parsed after every key */
    int rc = load();
    assert_refused(rc, "NOTES_SHUTDOWN_GRACE", NULL);
    cr_assert(all_zero(&cfg, sizeof(cfg)), "cfg not wiped after a refusal");
}
