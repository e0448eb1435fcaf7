/*
 * Unit tests of config.c's key sources other than the environment: key
 * files (permissions, owner, content, size, symlinks) and the systemd
 * credentials directory. Fixture and helpers: config_support.h.
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config_support.h"

/* ---- NAME_FILE ---------------------------------------------------------------- */

Test(config, refuses_key_and_key_file_both_set)
{
    char path[128], content[FILE_MAX];
    tmp_path(path, sizeof(path), "data.key");
    snprintf(content, sizeof(content), "%s\n", data_b64);
    write_str(path, content, 0600);
    env_set("NOTES_DATA_KEY_FILE", path);
    assert_refused(load(), "NOTES_DATA_KEY", "not both");
    assert_no_leak_str(err, data_b64);
}

Test(config, refuses_key_file_that_does_not_exist)
{
    char path[128];
    tmp_path(path, sizeof(path), "no-such.key");
    env_unset("NOTES_TOKEN_KEY");
    env_set("NOTES_TOKEN_KEY_FILE", path);
    assert_refused(load(), "NOTES_TOKEN_KEY_FILE", NULL);
    assert_no_leak_str(err, token_b64);
}

Test(config, refuses_key_file_accessible_by_group_or_others)
{
    static const mode_t modes[] = { 0644, 0640, 0604, 0660, 0602, 0620, 0601, 0610 };
    char path[128], name[32], content[FILE_MAX];
    snprintf(content, sizeof(content), "%s\n", audit_b64);
    env_unset("NOTES_AUDIT_KEY");
    for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
        snprintf(name, sizeof(name), "audit-%o.key", (unsigned)modes[i]);
        tmp_path(path, sizeof(path), name);
        write_str(path, content, modes[i]);
        env_set("NOTES_AUDIT_KEY_FILE", path);
        assert_refused(load(), "NOTES_AUDIT_KEY_FILE", NULL);
        cr_assert(strstr(err, "group") || strstr(err, "others"),
                  "mode %o: error '%s' should mention group or others", (unsigned)modes[i], err);
        assert_no_leak_str(err, content);
    }
}

/* uid 65534 (nobody): any user but root and the one running the tests. */
#define OTHER_UID 65534

static void need_root(void)
{
    if (geteuid() != 0)
        cr_skip("needs root to give a file to another user (CI runs as root)");
}

/* A 0600 file of another user is that user's to rewrite, and so is the
 * key: a secret file must belong to the user notesd runs as, or to root. */
Test(config, refuses_key_file_owned_by_another_user)
{
    need_root();
    char path[128], content[FILE_MAX];
    tmp_path(path, sizeof(path), "data.key");
    snprintf(content, sizeof(content), "%s\n", data_b64);
    write_str(path, content, 0600);
    cr_assert_eq(chown(path, OTHER_UID, OTHER_UID), 0);
    env_unset("NOTES_DATA_KEY");
    env_set("NOTES_DATA_KEY_FILE", path);
    assert_refused(load(), "NOTES_DATA_KEY_FILE", "belongs to");
    assert_no_leak_str(err, content);
}

Test(config, accepts_key_file_0600_with_trailing_newline)
{
    char path[128], content[FILE_MAX];
    tmp_path(path, sizeof(path), "data.key");
    snprintf(content, sizeof(content), "%s\n", data_b64);
    write_str(path, content, 0600);
    env_unset("NOTES_DATA_KEY");
    env_set("NOTES_DATA_KEY_FILE", path);
    assert_loaded(load());
    assert_secret_is(&cfg.data_key, data_raw, 32);
}

Test(config, accepts_key_file_0400_without_newline)
{
    char path[128];
    tmp_path(path, sizeof(path), "token.key");
    write_str(path, token_b64, 0400);
    env_unset("NOTES_TOKEN_KEY");
    env_set("NOTES_TOKEN_KEY_FILE", path);
    assert_loaded(load());
    assert_secret_is(&cfg.token_key, token_raw, 32);
}

/* Documented: "one trailing newline is ignored"; the file must otherwise be
 * strict base64, like the variable. */
Test(config, refuses_key_file_with_two_trailing_newlines)
{
    char path[128], content[FILE_MAX];
    tmp_path(path, sizeof(path), "data.key");
    snprintf(content, sizeof(content), "%s\n\n", data_b64);
    write_str(path, content, 0600);
    env_unset("NOTES_DATA_KEY");
    env_set("NOTES_DATA_KEY_FILE", path);
    assert_refused(load(), "NOTES_DATA_KEY", "base64");
    assert_no_leak_str(err, data_b64);
}

Test(config, refuses_key_file_with_invalid_content)
{
    char path[128], content[FILE_MAX], v[B64_MAX];
    gen_key(v, sizeof(v), 36, 7001, NULL);
    /* A "KEY=value" line, as if someone pointed _FILE at an env file. */
    snprintf(content, sizeof(content), "DATAKEY=%s\n", v);
    tmp_path(path, sizeof(path), "data.key");
    write_str(path, content, 0600);
    env_unset("NOTES_DATA_KEY");
    env_set("NOTES_DATA_KEY_FILE", path);
    assert_refused(load(), "NOTES_DATA_KEY", "base64");
    assert_no_leak_str(err, content);
}

Test(config, refuses_key_file_with_weak_key)
{
    char path[128], content[FILE_MAX], v[B64_MAX];
    uint8_t raw[32];
    memset(raw, 0, sizeof(raw));
    b64(v, sizeof(v), raw, sizeof(raw));
    snprintf(content, sizeof(content), "%s\n", v);
    tmp_path(path, sizeof(path), "audit.key");
    write_str(path, content, 0600);
    env_unset("NOTES_AUDIT_KEY");
    env_set("NOTES_AUDIT_KEY_FILE", path);
    assert_refused(load(), "NOTES_AUDIT_KEY", "same value");
}

Test(config, refuses_key_file_that_is_a_directory)
{
    char path[128];
    tmp_path(path, sizeof(path), "keydir");
    cr_assert_eq(mkdir(path, 0700), 0);
    env_unset("NOTES_DATA_KEY");
    env_set("NOTES_DATA_KEY_FILE", path);
    assert_refused(load(), "NOTES_DATA_KEY_FILE", "regular file");
}

Test(config, refuses_key_file_too_large)
{
    char path[128];
    static char content[8192];
    char v[B64_MAX];
    gen_key(v, sizeof(v), 36, 8001, NULL);
    size_t vl = strlen(v), n = 0;
    while (n + vl < sizeof(content) - 1) {
        memcpy(content + n, v, vl);
        n += vl;
    }
    content[n] = 0;
    tmp_path(path, sizeof(path), "big.key");
    write_file(path, content, n, 0600);
    env_unset("NOTES_TOKEN_KEY");
    env_set("NOTES_TOKEN_KEY_FILE", path);
    assert_refused(load(), "NOTES_TOKEN_KEY_FILE", "too large");
    assert_no_leak(err, content, n);
}

Test(config, key_file_follows_symlink_to_private_file)
{
    char target[128], link[128], content[FILE_MAX];
    tmp_path(target, sizeof(target), "real.key");
    tmp_path(link, sizeof(link), "link.key");
    snprintf(content, sizeof(content), "%s\n", audit_b64);
    write_str(target, content, 0600);
    cr_assert_eq(symlink(target, link), 0);
    env_unset("NOTES_AUDIT_KEY");
    env_set("NOTES_AUDIT_KEY_FILE", link);
    assert_loaded(load());
    assert_secret_is(&cfg.audit_key, audit_raw, 32);
}

/* ---- systemd credentials ------------------------------------------------------ */

static void make_cred_dir(char *dir, size_t cap)
{
    tmp_path(dir, cap, "credentials");
    cr_assert_eq(mkdir(dir, 0700), 0);
    env_set("CREDENTIALS_DIRECTORY", dir);
}

Test(config, accepts_key_from_credentials_directory)
{
    char dir[128], path[192], content[FILE_MAX];
    make_cred_dir(dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/NOTES_TOKEN_KEY", dir);
    snprintf(content, sizeof(content), "%s\n", token_b64);
    write_str(path, content, 0400);
    env_unset("NOTES_TOKEN_KEY");
    assert_loaded(load());
    assert_secret_is(&cfg.token_key, token_raw, 32);
}

Test(config, all_keys_from_credentials_directory)
{
    char dir[128], path[192];
    make_cred_dir(dir, sizeof(dir));
    const char *names[] = { "NOTES_DATA_KEY", "NOTES_TOKEN_KEY", "NOTES_AUDIT_KEY" };
    const char *vals[] = { data_b64, token_b64, audit_b64 };
    for (size_t i = 0; i < 3; i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        write_str(path, vals[i], 0400);
        env_unset(names[i]);
    }
    assert_loaded(load());
    assert_secret_is(&cfg.data_key, data_raw, 32);
    assert_secret_is(&cfg.token_key, token_raw, 32);
    assert_secret_is(&cfg.audit_key, audit_raw, 32);
}

Test(config, refuses_credentials_directory_without_the_key)
{
    char dir[128], path[192];
    make_cred_dir(dir, sizeof(dir));
    /* Another key's credential is there, this one's is not. */
    snprintf(path, sizeof(path), "%s/NOTES_DATA_KEY", dir);
    write_str(path, data_b64, 0400);
    env_unset("NOTES_DATA_KEY");
    env_unset("NOTES_AUDIT_KEY");
    assert_refused(load(), "NOTES_AUDIT_KEY", "missing");
    assert_no_leak_str(err, data_b64);
}

Test(config, refuses_credential_accessible_by_others)
{
    char dir[128], path[192];
    make_cred_dir(dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/NOTES_DATA_KEY", dir);
    write_str(path, data_b64, 0644);
    env_unset("NOTES_DATA_KEY");
    assert_refused(load(), "NOTES_DATA_KEY", NULL);
    cr_assert(strstr(err, "group") || strstr(err, "others"), "error '%s'", err);
    assert_no_leak_str(err, data_b64);
}

/* systemd makes credentials root's (or, where it cannot give the service
 * user an ACL, that user's); another user's is refused like a _FILE. */
Test(config, refuses_credential_owned_by_another_user)
{
    need_root();
    char dir[128], path[192];
    make_cred_dir(dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/NOTES_TOKEN_KEY", dir);
    write_str(path, token_b64, 0400);
    cr_assert_eq(chown(path, OTHER_UID, OTHER_UID), 0);
    env_unset("NOTES_TOKEN_KEY");
    assert_refused(load(), "NOTES_TOKEN_KEY", "belongs to");
    assert_no_leak_str(err, token_b64);
}

/* ... and one of the user that reads it (notesd started as that user) is
 * taken: the file is read here with effective uid OTHER_UID. */
Test(config, accepts_credential_owned_by_the_user_reading_it)
{
    need_root();
    char dir[128], path[192];
    make_cred_dir(dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/NOTES_TOKEN_KEY", dir);
    write_str(path, token_b64, 0400);
    cr_assert_eq(chown(path, OTHER_UID, OTHER_UID), 0);
    cr_assert_eq(chown(dir, OTHER_UID, OTHER_UID), 0);
    cr_assert_eq(chmod(tmpdir, 0711), 0);
    env_unset("NOTES_TOKEN_KEY");
    cr_assert_eq(seteuid(OTHER_UID), 0);
    int rc = load();
    cr_assert_eq(seteuid(0), 0);
    assert_loaded(rc);
    assert_secret_is(&cfg.token_key, token_raw, 32);
}

Test(config, refuses_invalid_credential_content)
{
    char dir[128], path[192], v[B64_MAX];
    make_cred_dir(dir, sizeof(dir));
    gen_key(v, sizeof(v), 31, 9001, NULL);
    snprintf(path, sizeof(path), "%s/NOTES_TOKEN_KEY", dir);
    write_str(path, v, 0400);
    env_unset("NOTES_TOKEN_KEY");
    assert_refused(load(), "NOTES_TOKEN_KEY", "too short");
    assert_no_leak_str(err, v);
}
