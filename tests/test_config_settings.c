/*
 * Unit tests of config.c's settings other than keys: loading, defaults and
 * overrides, TLS paths, listen forms, log level and format, shutdown grace,
 * account caps, the sandbox switches, and warnings about unknown NOTES_
 * variables. Fixture and helpers: config_support.h.
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "err.h"
#include "config_support.h"

/* ---- valid configurations ----------------------------------------------- */

Test(config, loads_valid_env)
{
    assert_loaded(load());
    cr_assert_str_eq(err, "");
    assert_secret_is(&cfg.data_key, data_raw, 32);
    assert_secret_is(&cfg.token_key, token_raw, 32);
    assert_secret_is(&cfg.audit_key, audit_raw, 32);
    cr_assert_str_eq(cfg.tls_cert, cert_path);
    cr_assert_str_eq(cfg.tls_key, key_path);
    cr_assert_null(cfg.notify_socket);
}

Test(config, applies_defaults)
{
    assert_loaded(load());
    cr_assert_str_eq(cfg.listen, "127.0.0.1:8443");
    cr_assert_str_eq(cfg.listen_host, "127.0.0.1");
    cr_assert_eq(cfg.listen_port, 8443);
    cr_assert_str_eq(cfg.db_path, "./data/notes.db");
    cr_assert_str_eq(cfg.audit_dir, "./data/audit");
    cr_assert_eq(cfg.log_level, LOG_INFO);
    cr_assert_eq(cfg.shutdown_grace_ms, 5000);
}

Test(config, empty_optional_values_fall_back_to_defaults)
{
    env_set("NOTES_LISTEN", "");
    env_set("NOTES_DB", "");
    env_set("NOTES_LOG_LEVEL", "");
    env_set("NOTES_SHUTDOWN_GRACE", "");
    assert_loaded(load());
    cr_assert_str_eq(cfg.listen, "127.0.0.1:8443");
    cr_assert_str_eq(cfg.db_path, "./data/notes.db");
    cr_assert_eq(cfg.log_level, LOG_INFO);
    cr_assert_eq(cfg.shutdown_grace_ms, 5000);
}

Test(config, env_values_replace_defaults)
{
    env_set("NOTES_LISTEN", "[::1]:9000");
    env_set("NOTES_DB", "/var/lib/notesd/n.db");
    env_set("NOTES_AUDIT_DIR", "/var/log/notesd-audit");
    env_set("NOTES_LOG_LEVEL", "debug");
    env_set("NOTES_SHUTDOWN_GRACE", "30");
    env_set("NOTIFY_SOCKET", "/run/systemd/notify");
    assert_loaded(load());
    cr_assert_str_eq(cfg.listen, "[::1]:9000");
    cr_assert_str_eq(cfg.listen_host, "::1");
    cr_assert_eq(cfg.listen_port, 9000);
    cr_assert_str_eq(cfg.db_path, "/var/lib/notesd/n.db");
    cr_assert_str_eq(cfg.audit_dir, "/var/log/notesd-audit");
    cr_assert_eq(cfg.log_level, LOG_DEBUG);
    cr_assert_eq(cfg.shutdown_grace_ms, 30000);
    cr_assert_str_eq(cfg.notify_socket, "/run/systemd/notify");
}

Test(config, overrides_win_over_env)
{
    env_set("NOTES_LISTEN", "127.0.0.1:1111");
    env_set("NOTES_DB", "/env/notes.db");
    env_set("NOTES_AUDIT_DIR", "/env/audit");
    env_set("NOTES_LOG_LEVEL", "error");
    const struct config_override ov[] = {
        { "NOTES_LISTEN", "0.0.0.0:2222" },
        { "NOTES_DB", "/flag/notes.db" },
        { "NOTES_AUDIT_DIR", "/flag/audit" },
        { "NOTES_TLS_CERT", "/flag/cert.pem" },
        { "NOTES_TLS_KEY", "/flag/key.pem" },
        { "NOTES_LOG_LEVEL", "warning" },
    };
    assert_loaded(load_with(ov, sizeof(ov) / sizeof(ov[0]), CONFIG_NEED_ALL));
    cr_assert_str_eq(cfg.listen, "0.0.0.0:2222");
    cr_assert_str_eq(cfg.listen_host, "0.0.0.0");
    cr_assert_eq(cfg.listen_port, 2222);
    cr_assert_str_eq(cfg.db_path, "/flag/notes.db");
    cr_assert_str_eq(cfg.audit_dir, "/flag/audit");
    cr_assert_str_eq(cfg.tls_cert, "/flag/cert.pem");
    cr_assert_str_eq(cfg.tls_key, "/flag/key.pem");
    cr_assert_eq(cfg.log_level, LOG_WARN);
}

Test(config, last_override_wins)
{
    const struct config_override ov[] = {
        { "NOTES_DB", "/first.db" },
        { "NOTES_DB", "/second.db" },
    };
    assert_loaded(load_with(ov, 2, CONFIG_NEED_ALL));
    cr_assert_str_eq(cfg.db_path, "/second.db");
}

Test(config, override_supplies_required_setting_missing_from_env)
{
    env_unset("NOTES_TLS_CERT");
    const struct config_override ov[] = { { "NOTES_TLS_CERT", "/flag/cert.pem" } };
    assert_loaded(load_with(ov, 1, CONFIG_NEED_ALL));
    cr_assert_str_eq(cfg.tls_cert, "/flag/cert.pem");
}

Test(config, override_is_validated_like_env)
{
    const struct config_override ov[] = { { "NOTES_LISTEN", "localhost:80" } };
    assert_refused(load_with(ov, 1, CONFIG_NEED_ALL), "NOTES_LISTEN", NULL);
}

/* Secrets come only from the environment, never from the command line. */
Test(config, overrides_never_supply_secrets)
{
    env_unset("NOTES_DATA_KEY");
    const struct config_override ov[] = { { "NOTES_DATA_KEY", data_b64 } };
    assert_refused(load_with(ov, 1, CONFIG_NEED_ALL), "NOTES_DATA_KEY", "missing");
    assert_no_leak_str(err, data_b64);
}

Test(config, no_tls_needs_neither_cert_nor_key)
{
    env_unset("NOTES_TLS_CERT");
    env_unset("NOTES_TLS_KEY");
    assert_loaded(load_with(NULL, 0, CONFIG_NEED_NO_TLS));
    cr_assert_null(cfg.tls_cert);
    cr_assert_null(cfg.tls_key);
    assert_secret_is(&cfg.data_key, data_raw, 32);
}

Test(config, no_tls_still_requires_keys)
{
    env_unset("NOTES_TLS_CERT");
    env_unset("NOTES_TLS_KEY");
    env_unset("NOTES_TOKEN_KEY");
    assert_refused(load_with(NULL, 0, CONFIG_NEED_NO_TLS), "NOTES_TOKEN_KEY", "missing");
}

/* ---- TLS paths ---------------------------------------------------------------- */

Test(config, refuses_missing_tls_cert)
{
    env_unset("NOTES_TLS_CERT");
    assert_refused(load(), "NOTES_TLS_CERT", "missing");
}

Test(config, refuses_missing_tls_key)
{
    env_unset("NOTES_TLS_KEY");
    assert_refused(load(), "NOTES_TLS_KEY", "missing");
}

Test(config, empty_tls_paths_count_as_missing)
{
    env_set("NOTES_TLS_CERT", "");
    assert_refused(load(), "NOTES_TLS_CERT", "missing");
    env_set("NOTES_TLS_CERT", cert_path);
    env_set("NOTES_TLS_KEY", "");
    assert_refused(load(), "NOTES_TLS_KEY", "missing");
}

/* ---- NOTES_LISTEN ------------------------------------------------------------- */

Test(config, refuses_bad_listen_forms)
{
    static const char *const bad[] = {
        "localhost:80", "1.2.3.4", "1.2.3.4:65536", "1.2.3.4:-1", "[::1]8443",
        "1.2.3.4:80x", ":80", "1.2.3.4:", "[::1]:", "[::1", "[]:80", "1.2.3.4:123456",
        "1.2.3.4: 80", " 1.2.3.4:80", "1.2.3.4:+80", "1.2.3.256:80", "[::g]:80",
        "[::1]:99999", "example.com:443", "1.2.3.4:0x50",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        env_set("NOTES_LISTEN", bad[i]);
        int rc = load();
        cr_assert_eq(rc, ERR_CONFIG, "NOTES_LISTEN '%s' was accepted", bad[i]);
        assert_refused(rc, "NOTES_LISTEN", NULL);
        cr_assert_null(strstr(err, bad[i]), "error '%s' echoes the value", err);
    }
}

/* The documented forms are IPv4:PORT and [IPv6]:PORT. "2001:db8::1:443" is
 * itself a complete IPv6 address; reading it as [2001:db8::1]:443 would bind
 * a different address than the operator wrote. */
Test(config, refuses_unbracketed_ipv6_listen)
{
    static const char *const bad[] = { "::1:8443", "2001:db8::1:443", "::443" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        env_set("NOTES_LISTEN", bad[i]);
        int rc = load();
        cr_assert_eq(rc, ERR_CONFIG, "unbracketed IPv6 NOTES_LISTEN '%s' was accepted as host '%s' "
                     "port %u", bad[i], cfg.listen_host, (unsigned)cfg.listen_port);
        assert_refused(rc, "NOTES_LISTEN", NULL);
    }
}

Test(config, accepts_good_listen_forms)
{
    static const struct { const char *v, *host; uint16_t port; } good[] = {
        { "[::1]:0", "::1", 0 },
        { "0.0.0.0:443", "0.0.0.0", 443 },
        { "127.0.0.1:65535", "127.0.0.1", 65535 },
        { "[::]:8443", "::", 8443 },
        { "[2001:db8::1]:443", "2001:db8::1", 443 },
        { "10.0.0.1:0", "10.0.0.1", 0 },
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        env_set("NOTES_LISTEN", good[i].v);
        int rc = load();
        cr_assert_eq(rc, 0, "'%s' refused: %s", good[i].v, err);
        cr_assert_str_eq(cfg.listen, good[i].v);
        cr_assert_str_eq(cfg.listen_host, good[i].host);
        cr_assert_eq(cfg.listen_port, good[i].port, "'%s'", good[i].v);
    }
}

/* ---- NOTES_LOG_LEVEL and NOTES_SHUTDOWN_GRACE ------------------------------------ */

Test(config, refuses_invalid_log_level)
{
    static const char *const bad[] = { "verbose", "INFO", "warn", " info", "info ", "0", "trace" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        env_set("NOTES_LOG_LEVEL", bad[i]);
        int rc = load();
        cr_assert_eq(rc, ERR_CONFIG, "NOTES_LOG_LEVEL '%s' was accepted", bad[i]);
        assert_refused(rc, "NOTES_LOG_LEVEL", NULL);
    }
}

Test(config, accepts_each_log_level)
{
    static const struct { const char *v; enum log_level l; } good[] = {
        { "debug", LOG_DEBUG }, { "info", LOG_INFO }, { "warning", LOG_WARN }, { "error", LOG_ERROR },
    };
    for (size_t i = 0; i < 4; i++) {
        env_set("NOTES_LOG_LEVEL", good[i].v);
        assert_loaded(load());
        cr_assert_eq(cfg.log_level, good[i].l, "'%s'", good[i].v);
    }
}

Test(config, refuses_invalid_shutdown_grace)
{
    static const char *const bad[] = {
        "abc", "-1", "1.5", "86401", "99999", "100000", "5s", " 5", "5 ", "+5", "0x10",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        env_set("NOTES_SHUTDOWN_GRACE", bad[i]);
        int rc = load();
        cr_assert_eq(rc, ERR_CONFIG, "NOTES_SHUTDOWN_GRACE '%s' was accepted", bad[i]);
        assert_refused(rc, "NOTES_SHUTDOWN_GRACE", NULL);
    }
}

/* What one account may hold can go lower, never past what its export can
 * carry in one response (config.h: CONFIG_USER_*_CAP). */
Test(config, account_caps_stay_within_what_an_export_carries)
{
    static const struct { const char *name, *bad_low, *bad_high, *max; } caps[] = {
        { "NOTES_USER_MAX_NOTES", "0", "10001", "10000" },
        { "NOTES_USER_MAX_KIB", "63", "6145", "6144" },
        { "NOTES_USER_MAX_SESSIONS", "0", "65", "64" },
    };
    for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
        env_set(caps[i].name, caps[i].bad_low);
        assert_refused(load(), caps[i].name, NULL);
        env_set(caps[i].name, caps[i].bad_high);
        assert_refused(load(), caps[i].name, NULL);
        env_set(caps[i].name, caps[i].max);
        assert_loaded(load());
        env_unset(caps[i].name);
    }
    assert_loaded(load());   /* the defaults */
    cr_assert_eq(cfg.user_max_notes, CONFIG_USER_NOTES_CAP);
    cr_assert_eq(cfg.user_max_kib, CONFIG_USER_KIB_CAP);
    cr_assert_eq(cfg.user_max_sessions, 16);
}

/* The records a connection's TLS keys may carry can go lower, never past
 * 2^24 (TLS 1.3's AES-GCM limit is 2^24.5 per key; config.h). */
Test(config, the_record_threshold_stays_under_the_aes_gcm_limit)
{
    env_set("NOTES_TLS_MAX_RECORDS", "16777217");
    assert_refused(load(), "NOTES_TLS_MAX_RECORDS", NULL);
    env_set("NOTES_TLS_MAX_RECORDS", "0");
    assert_refused(load(), "NOTES_TLS_MAX_RECORDS", NULL);
    env_set("NOTES_TLS_MAX_RECORDS", "1");
    assert_loaded(load());
    cr_assert_eq(cfg.tls_max_records, 1);
    env_unset("NOTES_TLS_MAX_RECORDS");
    assert_loaded(load());   /* the default: the most */
    cr_assert_eq(cfg.tls_max_records, CONFIG_TLS_RECORDS_CAP);
    cr_assert_eq(CONFIG_TLS_RECORDS_CAP, 1u << 24);
}

Test(config, accepts_shutdown_grace_bounds)
{
    env_set("NOTES_SHUTDOWN_GRACE", "0");
    assert_loaded(load());
    cr_assert_eq(cfg.shutdown_grace_ms, 0);
    env_set("NOTES_SHUTDOWN_GRACE", "86400");
    assert_loaded(load());
    cr_assert_eq(cfg.shutdown_grace_ms, 86400000u);
}

/* ---- unknown NOTES_* variables ------------------------------------------------- */

Test(config, warns_about_unknown_notes_variable, .init = setup_capture_stderr)
{
    char canary[B64_MAX], log[8192];
    gen_key(canary, sizeof(canary), 30, 4242, NULL);
    env_set("NOTES_FOO", canary);
    assert_loaded(load());
    read_stderr(log, sizeof(log));
    cr_assert_not_null(strstr(log, "NOTES_FOO"), "no warning naming NOTES_FOO: '%s'", log);
    cr_assert_not_null(strstr(log, "warning"), "not logged as a warning: '%s'", log);
    assert_no_leak_str(log, canary);
}

Test(config, does_not_report_key_file_variable_as_unknown, .init = setup_capture_stderr)
{
    char path[128], content[FILE_MAX], log[8192];
    tmp_path(path, sizeof(path), "data.key");
    snprintf(content, sizeof(content), "%s\n", data_b64);
    write_str(path, content, 0600);
    env_unset("NOTES_DATA_KEY");
    env_set("NOTES_DATA_KEY_FILE", path);
    env_set("NOTES_LISTEN", "127.0.0.1:0");
    env_set("NOTES_DB", "/tmp/x.db");
    env_set("NOTES_AUDIT_DIR", "/tmp/audit");
    env_set("NOTES_LOG_LEVEL", "info");
    env_set("NOTES_SHUTDOWN_GRACE", "1");
    env_set("NOTES_BAR", "1"); /* proves the capture sees warnings */
    assert_loaded(load());
    read_stderr(log, sizeof(log));
    cr_assert_not_null(strstr(log, "NOTES_BAR"), "capture saw no warning: '%s'", log);
    cr_assert_null(strstr(log, "NOTES_DATA_KEY"), "a known variable was reported: '%s'", log);
    static const char *const known[] = { "NOTES_LISTEN", "NOTES_DB", "NOTES_AUDIT_DIR",
                                         "NOTES_LOG_LEVEL", "NOTES_SHUTDOWN_GRACE",
                                         "NOTES_TLS_CERT", "NOTES_TLS_KEY", "NOTES_TOKEN_KEY",
                                         "NOTES_AUDIT_KEY" };
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        cr_assert_null(strstr(log, known[i]), "%s was reported: '%s'", known[i], log);
    /* Exactly one line: the NOTES_BAR warning. */
    char *nl = strchr(log, '\n');
    cr_assert(nl && nl[1] == 0, "expected exactly one warning line: '%s'", log);
}

Test(config, warns_about_file_variant_of_non_secret, .init = setup_capture_stderr)
{
    char log[8192];
    env_set("NOTES_LISTEN_FILE", "/tmp/listen");
    env_set("NOTES_DB_FILE", "/tmp/db");
    assert_loaded(load());
    read_stderr(log, sizeof(log));
    cr_assert_not_null(strstr(log, "NOTES_LISTEN_FILE"), "'%s'", log);
    cr_assert_not_null(strstr(log, "NOTES_DB_FILE"), "'%s'", log);
}

Test(config, warns_about_misspelled_key_without_its_value, .init = setup_capture_stderr)
{
    char canary[B64_MAX], log[8192];
    gen_key(canary, sizeof(canary), 32, 5151, NULL);
    env_set("NOTES_DATA_KEYS", canary);
    env_add_raw("NOTES_NO_EQUALS_SIGN");
    assert_loaded(load());
    read_stderr(log, sizeof(log));
    cr_assert_not_null(strstr(log, "NOTES_DATA_KEYS"), "'%s'", log);
    cr_assert_not_null(strstr(log, "NOTES_NO_EQUALS_SIGN"), "'%s'", log);
    assert_no_leak_str(log, canary);
    assert_no_leak_str(log, data_b64);
    assert_no_leak_str(log, token_b64);
    assert_no_leak_str(log, audit_b64);
}

Test(config, ignores_non_notes_variables, .init = setup_capture_stderr)
{
    char log[8192];
    env_add_raw("NOTESX=1");
    env_add_raw("notes_foo=1");
    env_add_raw("MY_NOTES_FOO=1");
    env_set("NOTES_ZZZ", "1"); /* proves the capture sees warnings */
    assert_loaded(load());
    read_stderr(log, sizeof(log));
    cr_assert_not_null(strstr(log, "NOTES_ZZZ"), "'%s'", log);
    cr_assert_null(strstr(log, "NOTESX"), "'%s'", log);
    cr_assert_null(strstr(log, "notes_foo"), "'%s'", log);
    cr_assert_null(strstr(log, "MY_NOTES_FOO"), "'%s'", log);
}

Test(config, is_known_names_only_settings)
{
    cr_assert(config_is_known("NOTES_LISTEN"));
    cr_assert(config_is_known("NOTES_TLS_KEY"));
    cr_assert(config_is_known("NOTES_DATA_KEY"));
    cr_assert(config_is_known("NOTES_SHUTDOWN_GRACE"));
    cr_assert_not(config_is_known("NOTES_FOO"));
    cr_assert_not(config_is_known("NOTES_LISTE"));
    cr_assert_not(config_is_known("NOTES_LISTENX"));
    cr_assert_not(config_is_known("notes_listen"));
    cr_assert_not(config_is_known(""));
}

/* ---- least privilege and the log format (issue 6) ------------------------ */

Test(config, sandbox_and_log_format_default_to_on_and_json)
{
    assert_loaded(load());
    cr_assert(cfg.seccomp_on);
    cr_assert(cfg.landlock_on);
    cr_assert_str_eq(cfg.run_user, "");
    cr_assert_eq(cfg.log_format, LOG_FORMAT_JSON);
}

Test(config, sandbox_and_log_format_can_be_set)
{
    env_set("NOTES_SECCOMP", "off");
    env_set("NOTES_LANDLOCK", "off");
    env_set("NOTES_USER", "nobody");
    env_set("NOTES_LOG_FORMAT", "text");
    assert_loaded(load());
    cr_assert_not(cfg.seccomp_on);
    cr_assert_not(cfg.landlock_on);
    cr_assert_str_eq(cfg.run_user, "nobody");
    cr_assert_eq(cfg.log_format, LOG_FORMAT_TEXT);
    log_set_format(LOG_FORMAT_JSON);   /* config_load applied it; undo for the next test */
}

Test(config, seccomp_switch_accepts_only_on_or_off)
{
    env_set("NOTES_SECCOMP", "no");
    assert_refused(load(), "NOTES_SECCOMP", "must be on or off");
}

Test(config, landlock_switch_accepts_only_on_or_off)
{
    env_set("NOTES_LANDLOCK", "1");
    assert_refused(load(), "NOTES_LANDLOCK", "must be on or off");
}

Test(config, log_format_accepts_only_json_or_text)
{
    env_set("NOTES_LOG_FORMAT", "xml");
    assert_refused(load(), "NOTES_LOG_FORMAT", "must be json or text");
}
