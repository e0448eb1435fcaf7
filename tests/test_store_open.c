/*
 * Unit tests of store.c opening a database: the private folder and file,
 * reopening, the schema version and refusing a newer one, WAL and foreign
 * keys, several connections and processes, error strings without SQL, and
 * migrations from older schemas. Fixture and helpers: store_support.h.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <sqlite3.h>

#include "err.h"
#include "store_support.h"

/* Whole file into memory; NULL (and *len 0) when it does not exist. */
static uint8_t *slurp(const char *path, size_t *len)
{
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        cr_assert_eq(errno, ENOENT, "fopen %s: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    cr_assert_eq(fstat(fileno(f), &st), 0);
    uint8_t *p = malloc((size_t)st.st_size + 1);
    cr_assert_not_null(p);
    *len = fread(p, 1, (size_t)st.st_size, f);
    cr_assert_eq(*len, (size_t)st.st_size);
    fclose(f);
    return p;
}

static uint32_t be32_at(const char *path, size_t off)
{
    size_t len;
    uint8_t *p = slurp(path, &len);
    cr_assert_not_null(p);
    cr_assert_gt(len, off + 4);
    uint32_t v = (uint32_t)p[off] << 24 | (uint32_t)p[off + 1] << 16 | (uint32_t)p[off + 2] << 8 | p[off + 3];
    free(p);
    return v;
}

static void put_be32_at(const char *path, long off, uint32_t v)
{
    uint8_t b[4] = { (uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v };
    FILE *f = fopen(path, "r+b");
    cr_assert_not_null(f);
    cr_assert_eq(fseek(f, off, SEEK_SET), 0);
    cr_assert_eq(fwrite(b, 1, 4, f), 4);
    cr_assert_eq(fclose(f), 0);
}

static mode_t mode_of(const char *path)
{
    struct stat st;
    cr_assert_eq(stat(path, &st), 0, "stat %s: %s", path, strerror(errno));
    return st.st_mode & 07777;
}

/* No SQL keyword a statement would carry may leak into an error string. */
static void assert_no_sql(const char *err)
{
    static const char *const words[] = { "SELECT", "INSERT", "UPDATE", "PRAGMA", "CREATE TABLE",
                                         "DELETE FROM", "sqlite_" };
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
        cr_assert_null(strcasestr(err, words[i]), "error string leaks SQL (%s): %s", words[i], err);
}

/* ---- opening, files, schema ---------------------------------------------- */

Test(store, open_creates_private_folder_and_file)
{
    struct store *s = open_db();
    cr_assert_eq(mode_of(dbdir), 0700, "folder mode %o", mode_of(dbdir));
    cr_assert_eq(mode_of(dbpath), 0600, "file mode %o", mode_of(dbpath));
    add_user(s, "alice", "user");        /* makes SQLite create -wal and -shm */
    char wal[200], shm[200];
    sidecar(wal, sizeof(wal), "-wal");
    sidecar(shm, sizeof(shm), "-shm");
    cr_assert_eq(mode_of(wal), 0600, "wal mode %o", mode_of(wal));
    cr_assert_eq(mode_of(shm), 0600, "shm mode %o", mode_of(shm));
    store_close(s);
}

Test(store, open_creates_nested_missing_folders)
{
    char deep[200];
    snprintf(deep, sizeof(deep), "%s/a/b/c/notes.db", tmpdir);
    struct store *s = open_at(deep);
    store_close(s);
    char dir[200];
    snprintf(dir, sizeof(dir), "%s/a/b", tmpdir);
    cr_assert_eq(mode_of(dir), 0700);
    cr_assert_eq(mode_of(deep), 0600);
}

Test(store, open_narrows_group_readable_existing_file)
{
    cr_assert_eq(mkdir(dbdir, 0755), 0);
    int fd = open(dbpath, O_CREAT | O_WRONLY, 0644);
    cr_assert_geq(fd, 0);
    cr_assert_eq(fchmod(fd, 0644), 0);
    close(fd);
    struct store *s = open_db();
    store_close(s);
    cr_assert_eq(mode_of(dbpath), 0600, "file mode %o", mode_of(dbpath));
}

Test(store, reopen_keeps_data)
{
    struct store *s = open_db();
    int64_t uid = add_user(s, "alice", "admin");
    int64_t nid = add_note(s, uid, "t", "persisted content", 7);
    store_close(s);

    s = open_db();
    struct store_user u;
    cr_assert_eq(store_user_get(s, uid, &u), 0);
    cr_assert_str_eq(u.username, "alice");
    cr_assert_str_eq(u.role, "admin");
    struct store_note n;
    store_note_init(&n);
    cr_assert_eq(store_note_get_own(s, nid, uid, &n), 0);
    cr_assert_eq(n.content.len, strlen("persisted content"));
    cr_assert_eq(memcmp(n.content.data, "persisted content", n.content.len), 0);
    cr_assert_eq(n.key_id, 7);
    store_note_cleanup(&n);
    store_close(s);
}

Test(store, user_version_is_set)
{
    store_close(open_db());
    /* The header keeps PRAGMA user_version at offset 60, big-endian. */
    cr_assert_eq(be32_at(dbpath, 60), 3);
}

Test(store, refuses_newer_schema_and_leaves_it_alone)
{
    store_close(open_db());
    put_be32_at(dbpath, 60, 999);
    char err[512] = "";
    struct store *s = (struct store *)1;
    int rc = store_open(&s, dbpath, err, sizeof(err));
    cr_assert_eq(rc, ERR_IO);
    cr_assert_null(s);
    cr_assert_not_null(strstr(err, "newer than this notesd"), "err: %s", err);
    cr_assert_not_null(strstr(err, dbpath), "err: %s", err);
    assert_no_sql(err);
    cr_assert_eq(be32_at(dbpath, 60), 999);
}

Test(store, wal_mode_is_on)
{
    struct store *s = open_db();
    add_user(s, "alice", "user");
    char wal[200];
    sidecar(wal, sizeof(wal), "-wal");
    cr_assert_eq(access(wal, F_OK), 0, "no -wal file while open");
    store_close(s);
    /* Header bytes 18 and 19 (file format write/read version) are 2 in WAL. */
    size_t len;
    uint8_t *p = slurp(dbpath, &len);
    cr_assert_not_null(p);
    cr_assert_eq(p[18], 2);
    cr_assert_eq(p[19], 2);
    free(p);
}

Test(store, foreign_keys_are_enforced)
{
    struct store *s = open_db();
    uint8_t h[STORE_HASH_LEN];
    hash_of(h, 1);
    int64_t id = 0;
    cr_assert_eq(store_session_insert(s, h, 4242, 1, 2, 16), ERR_NOT_FOUND);
    cr_assert_eq(store_note_insert(s, 4242, 1, &id), ERR_NOT_FOUND);
    store_close(s);
}

Test(store, two_connections_see_each_other)
{
    struct store *a = open_db();
    struct store *b = open_db();
    int64_t uid = add_user(a, "alice", "user");
    struct store_user u;
    cr_assert_eq(store_user_get(b, uid, &u), 0);
    cr_assert_str_eq(u.username, "alice");
    store_close(a);
    store_close(b);
}

struct opener {
    pthread_t thread;
    int rc;
    char err[512];
};

static void *open_thread(void *arg)
{
    struct opener *o = arg;
    struct store *s = NULL;
    o->rc = store_open(&s, dbpath, o->err, sizeof(o->err));
    store_close(s);
    return NULL;
}

/* Threads (and processes) may open a fresh file at the same moment: one
 * creates and migrates it, the others wait on the busy timeout. */
Test(store, concurrent_first_opens_all_succeed)
{
    struct opener o[6];
    for (int i = 0; i < 6; i++)
        cr_assert_eq(pthread_create(&o[i].thread, NULL, open_thread, &o[i]), 0);
    for (int i = 0; i < 6; i++) {
        cr_assert_eq(pthread_join(o[i].thread, NULL), 0);
        cr_assert_eq(o[i].rc, 0, "thread %d: store_open %d: %s", i, o[i].rc, o[i].err);
    }
    /* Closing together, no thread may have been the last connection that
     * checkpoints; a lone open and close settles the WAL into the file. */
    struct store *s = open_db();
    add_user(s, "alice", "user");
    store_close(s);
    cr_assert_eq(be32_at(dbpath, 60), 3);
}

/* Run fn in a child process (its own connection, like the CLI) and return
 * its exit status. */
static int in_child(int (*fn)(const char *), const char *arg)
{
    fflush(NULL);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0)
        _exit(fn(arg));
    int status = 0;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status));
    return WEXITSTATUS(status);
}

/* Exit 0 when another process holds a read lock on SQLite's shared-lock
 * range of the database file (file format: the lock-byte page at 1 GiB;
 * SHARED locks are bytes PENDING_BYTE + 2 .. + 511). This is how a second
 * process's connection decides whether it is the last one, and so whether
 * it may checkpoint and delete the WAL on close. */
static int child_sees_shared_lock(const char *path)
{
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return 10;
    struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0x40000000 + 2, .l_len = 510 };
    int rc = fcntl(fd, F_GETLK, &fl);
    close(fd);
    if (rc != 0)
        return 11;
    return fl.l_type == F_RDLCK ? 0 : 1;
}

static int child_add_user(const char *name)
{
    char err[512];
    struct store *s = NULL;
    int64_t id;
    if (store_open(&s, dbpath, err, sizeof(err)) != 0)
        return 10;
    int rc = store_user_insert(s, name, "user", "phc", 1, &id);
    store_close(s);
    return rc == 0 ? 0 : 11;
}

/*
 * Regression: store_open() used to open() and close() the database file to
 * fix its mode. POSIX locks belong to the process, so that close() dropped
 * the locks of every other connection in the process (the server's, when an
 * erasure job opened its own connection). A CLI process then believed it
 * was the last connection, checkpointed and deleted the WAL under the
 * server, and the server's next read said "database disk image is
 * malformed" (integration test cli_and_server_share_the_database_after_an_
 * erasure).
 */
Test(store, second_open_in_process_keeps_first_connections_locks)
{
    struct store *server = open_db();
    cr_assert_eq(store_set_autocheckpoint(server, false), 0);
    add_user(server, "first", "user");
    cr_assert_eq(in_child(child_sees_shared_lock, dbpath), 0, "no lock to begin with: the test could not fail");
    store_close(open_db());                 /* e.g. the erasure job's connection */
    cr_assert_eq(in_child(child_sees_shared_lock, dbpath), 0,
                 "a second store_open() dropped the first connection's lock");
    /* And the end-to-end effect: CLI writes stay visible to the server. */
    cr_assert_eq(in_child(child_add_user, "from_cli_1"), 0);
    add_user(server, "second", "user");
    cr_assert_eq(in_child(child_add_user, "from_cli_2"), 0);
    struct store_user u;
    cr_assert_eq(store_user_get_by_name(server, "from_cli_2", &u), 0, "the server lost sight of the database");
    cr_assert_eq(store_user_get_by_name(server, "from_cli_1", &u), 0);
    cr_assert_eq(store_user_get_by_name(server, "second", &u), 0);
    store_close(server);
}

Test(store, error_strings_name_the_path_and_carry_no_sql)
{
    /* A regular file where the folder should be. */
    char file[200], under[260];
    snprintf(file, sizeof(file), "%s/plain", tmpdir);
    FILE *f = fopen(file, "w");
    cr_assert_not_null(f);
    fclose(f);
    snprintf(under, sizeof(under), "%s/notes.db", file);
    char err[512] = "";
    struct store *s = NULL;
    cr_assert_eq(store_open(&s, under, err, sizeof(err)), ERR_IO);
    cr_assert_null(s);
    cr_assert_not_null(strstr(err, under), "err: %s", err);
    assert_no_sql(err);

    /* A file that is not a database at all. */
    cr_assert_eq(mkdir(dbdir, 0700), 0);
    f = fopen(dbpath, "w");
    cr_assert_not_null(f);
    for (int i = 0; i < 4096; i++)
        fputc('J', f);
    fclose(f);
    err[0] = '\0';
    cr_assert_eq(store_open(&s, dbpath, err, sizeof(err)), ERR_IO);
    cr_assert_null(s);
    cr_assert_not_null(strstr(err, "not a database"), "err: %s", err);
    assert_no_sql(err);

    /* Tiny error buffers are truncated, never overrun. */
    char tiny[8];
    memset(tiny, 'x', sizeof(tiny));
    cr_assert_eq(store_open(&s, dbpath, tiny, 5), ERR_IO);
    cr_assert_eq(strlen(tiny), 4);
    cr_assert_eq(tiny[5], 'x');
}

Test(store, error_string_cannot_forge_log_lines)
{
    char path[200];
    snprintf(path, sizeof(path), "%s/plain\nFORGED/notes.db", tmpdir);
    char file[200];
    snprintf(file, sizeof(file), "%s/plain\nFORGED", tmpdir);
    FILE *f = fopen(file, "w");
    cr_assert_not_null(f);
    fclose(f);
    char err[512] = "";
    struct store *s = NULL;
    cr_assert_eq(store_open(&s, path, err, sizeof(err)), ERR_IO);
    cr_assert_null(strchr(err, '\n'), "err: %s", err);
    cr_assert_not_null(strstr(err, "plain?FORGED"), "err: %s", err);
}

Test(store, empty_path_is_refused)
{
    char err[128] = "";
    struct store *s = NULL;
    cr_assert_eq(store_open(&s, "", err, sizeof(err)), ERR_IO);
    cr_assert_null(s);
    cr_assert_neq(err[0], '\0');
    cr_assert_eq(store_open(&s, NULL, err, sizeof(err)), ERR_IO);
    store_close(NULL);
}

Test(store, library_version_and_autocheckpoint)
{
    cr_assert_eq(strncmp(store_library_version(), "3.", 2), 0);
    struct store *s = open_db();
    cr_assert_eq(store_set_autocheckpoint(s, false), 0);
    cr_assert_eq(store_set_autocheckpoint(s, true), 0);
    store_close(s);
}

/* Take the closed database back to an older schema: `sql` undoes what the
 * later migrations added, and user_version says `version`. */
static void downgrade(const char *sql, int version)
{
    sqlite3 *db = NULL;
    cr_assert_eq(sqlite3_open(dbpath, &db), SQLITE_OK);
    char *all = sqlite3_mprintf("%s; PRAGMA user_version = %d", sql, version);
    cr_assert_eq(sqlite3_exec(db, all, NULL, NULL, NULL), SQLITE_OK, "%s", sqlite3_errmsg(db));
    sqlite3_free(all);
    sqlite3_close(db);
    cr_assert_eq(be32_at(dbpath, 60), (uint32_t)version);
}

/* A database of schema 1 (before password_gen) opens at schema 3 with its
 * accounts intact, each at generation 1. */
Test(store, a_schema_1_database_migrates_with_its_accounts_at_generation_1, .init = setup, .fini = teardown)
{
    struct store *s = open_db();
    int64_t id = 0;
    cr_assert_eq(store_user_insert(s, "olde", "user", "$argon2id$v1", 1, &id), 0);
    store_close(s);
    downgrade("ALTER TABLE users DROP COLUMN password_gen; ALTER TABLE users DROP COLUMN note_count;"
              " ALTER TABLE users DROP COLUMN note_bytes", 1);
    s = open_db();
    struct store_user u;
    cr_assert_eq(store_user_get(s, id, &u), 0);
    cr_assert_str_eq(u.password_hash, "$argon2id$v1");
    cr_assert_eq(u.password_gen, 1);
    cr_assert_eq(store_user_set_password(s, id, "$argon2id$v2"), 0);
    cr_assert_eq(store_user_get(s, id, &u), 0);
    cr_assert_eq(u.password_gen, 2);
    store_close(s);
    cr_assert_eq(be32_at(dbpath, 60), 3);
}

/* A database of schema 2 (before the usage columns) opens at schema 3 with
 * each account's notes counted. */
Test(store, a_schema_2_database_migrates_with_its_usage_counted, .init = setup, .fini = teardown)
{
    struct store *s = open_db();
    int64_t a = add_user(s, "alice", "user"), b = add_user(s, "bob", "user"), c = add_user(s, "carol", "user");
    add_note(s, a, "t1", "content", 1);
    add_note(s, a, "t22", "", 1);
    add_note(s, b, "title", "x", 1);
    store_close(s);
    downgrade("ALTER TABLE users DROP COLUMN note_count; ALTER TABLE users DROP COLUMN note_bytes", 2);
    s = open_db();
    struct store_usage u;
    cr_assert_eq(store_usage_get(s, a, &u), 0);
    cr_assert_eq(u.notes, 2);
    cr_assert_eq(u.bytes, 2 + 7 + 3 + 0);
    cr_assert_eq(store_usage_get(s, b, &u), 0);
    cr_assert(u.notes == 1 && u.bytes == 6);
    cr_assert_eq(store_usage_get(s, c, &u), 0);
    cr_assert(u.notes == 0 && u.bytes == 0);
    store_close(s);
    cr_assert_eq(be32_at(dbpath, 60), 3);
}
