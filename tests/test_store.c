/*
 * test_store.c - store.c against real SQLite files.
 *
 * Each test gets a fresh mkdtemp() folder under /tmp, removed afterwards.
 * The database lives one folder further down so that store_open() has a
 * folder to create. Properties SQLite would normally report through SQL
 * (user_version, WAL mode) are read from the file header instead, so these
 * tests need no SQL and do not include sqlite3.h: only store.c knows SQL.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "app.h"
#include "err.h"
#include "store.h"

static char tmpdir[64];
static char dbdir[128];
static char dbpath[160];

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void setup(void)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/notesd-store-XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir));
    snprintf(dbdir, sizeof(dbdir), "%s/data", tmpdir);
    snprintf(dbpath, sizeof(dbpath), "%s/notes.db", dbdir);
}

static void teardown(void)
{
    if (tmpdir[0])
        nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(store, .init = setup, .fini = teardown);

/* ---- helpers ------------------------------------------------------------- */

static struct store *open_at(const char *path)
{
    char err[512] = "";
    struct store *s = NULL;
    int rc = store_open(&s, path, err, sizeof(err));
    cr_assert_eq(rc, 0, "store_open(%s): %d %s", path, rc, err);
    cr_assert_not_null(s);
    return s;
}

static struct store *open_db(void)
{
    return open_at(dbpath);
}

static int64_t add_user(struct store *s, const char *name, const char *role)
{
    int64_t id = 0;
    int rc = store_user_insert(s, name, role, "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA", 1000, &id);
    cr_assert_eq(rc, 0, "insert user %s: %d", name, rc);
    cr_assert_gt(id, 0);
    return id;
}

/* A user with password hash `phc`, read back into *u; returns its id. */
static int64_t add_user_phc(struct store *s, const char *name, const char *phc, struct store_user *u)
{
    int64_t id = 0;
    cr_assert_eq(store_user_insert(s, name, "user", phc, 1, &id), 0);
    cr_assert_eq(store_user_get(s, id, u), 0);
    return id;
}

/* Insert and fill a note; returns its id. */
static int64_t add_note(struct store *s, int64_t owner, const char *title, const char *content,
                        uint32_t key_id)
{
    int64_t id = 0;
    cr_assert_eq(store_note_insert(s, owner, 2000, &id), 0);
    cr_assert_eq(store_note_update(s, id, owner, slice_str(title), slice_str(content), key_id, 2001), 0);
    return id;
}

static void hash_of(uint8_t h[STORE_HASH_LEN], uint8_t seed)
{
    for (int i = 0; i < STORE_HASH_LEN; i++)
        h[i] = (uint8_t)(seed * 31 + i);
}

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

/* Searched in a child process: the parent may have a connection open on
 * the file, and closing a descriptor of it here would drop that
 * connection's POSIX locks. Exit 0 found, 1 not found, 2 no file. */
static bool file_contains(const char *path, const char *needle)
{
    fflush(NULL);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        FILE *f = fopen(path, "rb");
        if (!f)
            _exit(errno == ENOENT ? 1 : 2);
        size_t cap = 1 << 20, len = 0, n;
        uint8_t *p = malloc(cap);
        if (!p)
            _exit(2);
        while ((n = fread(p + len, 1, cap - len, f)) > 0) {
            len += n;
            if (len == cap && !(p = realloc(p, cap *= 2)))
                _exit(2);
        }
        _exit(memmem(p, len, needle, strlen(needle)) ? 0 : 1);
    }
    int status = 0;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) < 2, "cannot read %s", path);
    return WEXITSTATUS(status) == 0;
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

static void sidecar(char *out, size_t n, const char *suffix)
{
    snprintf(out, n, "%s%s", dbpath, suffix);
}

/* No SQL keyword a statement would carry may leak into an error string. */
static void assert_no_sql(const char *err)
{
    static const char *const words[] = { "SELECT", "INSERT", "UPDATE", "PRAGMA", "CREATE TABLE",
                                         "DELETE FROM", "sqlite_" };
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
        cr_assert_null(strcasestr(err, words[i]), "error string leaks SQL (%s): %s", words[i], err);
}

/* Collects listed notes. */
struct seen {
    int n;
    int64_t ids[256];
    int64_t owners[256];
    uint32_t keys[256];
    size_t content_len[256];
    int stop_after;          /* 0: never stop */
};

static int collect_cb(void *arg, const struct store_note *n)
{
    struct seen *s = arg;
    cr_assert_lt(s->n, 256);
    s->ids[s->n] = n->id;
    s->owners[s->n] = n->owner_id;
    s->keys[s->n] = n->key_id;
    s->content_len[s->n] = n->content.len;
    s->n++;
    return s->stop_after && s->n >= s->stop_after;
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

/* ---- transactions -------------------------------------------------------- */

Test(store, rollback_discards_and_commit_keeps)
{
    struct store *s = open_db();
    cr_assert_eq(store_begin(s), 0);
    int64_t gone = add_user(s, "ghost", "user");
    store_rollback(s);
    struct store_user u;
    cr_assert_eq(store_user_get(s, gone, &u), ERR_NOT_FOUND);

    cr_assert_eq(store_begin(s), 0);
    int64_t kept = add_user(s, "kept", "user");
    cr_assert_eq(store_commit(s), 0);
    cr_assert_eq(store_user_get(s, kept, &u), 0);

    cr_assert_neq(store_commit(s), 0, "COMMIT without BEGIN must fail");
    store_rollback(s);                   /* no transaction: harmless */
    cr_assert_eq(store_begin(s), 0, "a failed COMMIT broke the connection");
    store_rollback(s);
    store_close(s);
}

Test(store, nested_levels_undo_alone_or_with_the_outer_one)
{
    struct store *s = open_db();
    struct store_user u;
    /* inner rollback undoes only the inner level */
    cr_assert_eq(store_begin(s), 0);
    int64_t outer = add_user(s, "outer", "user");
    cr_assert_eq(store_begin(s), 0, "a nested level opens a savepoint");
    int64_t inner = add_user(s, "inner", "user");
    store_rollback(s);
    cr_assert_eq(store_commit(s), 0);
    cr_assert_eq(store_user_get(s, outer, &u), 0);
    cr_assert_eq(store_user_get(s, inner, &u), ERR_NOT_FOUND);
    /* an inner commit is undone by the outer rollback */
    cr_assert_eq(store_begin(s), 0);
    cr_assert_eq(store_begin(s), 0);
    int64_t undone = add_user(s, "undone", "user");
    cr_assert_eq(store_commit(s), 0);
    store_rollback(s);
    cr_assert_eq(store_user_get(s, undone, &u), ERR_NOT_FOUND);
    cr_assert_neq(store_commit(s), 0, "every level is closed");
    cr_assert_eq(store_begin(s), 0, "the connection is usable again");
    store_rollback(s);
    store_close(s);
}

Test(store, read_transaction_sees_one_snapshot)
{
    struct store *r = open_db();
    struct store *w = open_db();
    int64_t before = add_user(w, "before", "user");
    struct store_user u;
    cr_assert_eq(store_begin_read(r), 0);
    cr_assert_eq(store_user_get(r, before, &u), 0);
    int64_t during = add_user(w, "during", "user");
    cr_assert_eq(store_user_get(r, during, &u), ERR_NOT_FOUND,
                 "a statement inside the read transaction saw a later commit");
    cr_assert_eq(store_commit(r), 0);
    cr_assert_eq(store_user_get(r, during, &u), 0, "the snapshot outlived the transaction");
    store_close(w);
    store_close(r);
}

Test(store, read_transaction_only_outside_another)
{
    struct store *s = open_db();
    cr_assert_eq(store_begin(s), 0);
    cr_assert_eq(store_begin_read(s), ERR_INVALID, "a read transaction nested in a write one");
    cr_assert_eq(store_commit(s), 0, "the refused read transaction closed the write one");
    cr_assert_eq(store_begin_read(s), 0);
    int64_t id = add_user(s, "writer", "user");      /* a write upgrades it */
    cr_assert_eq(store_commit(s), 0);
    cr_assert_neq(store_commit(s), 0, "the read transaction is still open");
    struct store *o = open_db();
    struct store_user u;
    cr_assert_eq(store_user_get(o, id, &u), 0, "the upgraded write was lost");
    store_close(o);
    store_close(s);
}

/* ---- users --------------------------------------------------------------- */

Test(store, user_insert_get_and_get_by_name)
{
    struct store *s = open_db();
    int64_t id = 0;
    cr_assert_eq(store_user_insert(s, "alice", "admin", "$argon2id$phc", 1234, &id), 0);
    struct store_user u, v;
    cr_assert_eq(store_user_get(s, id, &u), 0);
    cr_assert_eq(u.id, id);
    cr_assert_str_eq(u.username, "alice");
    cr_assert_str_eq(u.role, "admin");
    cr_assert_str_eq(u.password_hash, "$argon2id$phc");
    cr_assert_eq(u.created_at, 1234);
    cr_assert_eq(u.disabled, false);
    cr_assert_eq(store_user_get_by_name(s, "alice", &v), 0);
    cr_assert_eq(memcmp(&u, &v, sizeof(u)), 0);
    cr_assert_eq(store_user_get(s, id + 100, &u), ERR_NOT_FOUND);
    cr_assert_eq(store_user_get_by_name(s, "Alice", &u), ERR_NOT_FOUND);
    cr_assert_eq(store_user_get_by_name(s, "a-name-far-longer-than-thirty-two-bytes", &u), ERR_NOT_FOUND);
    store_close(s);
}

Test(store, duplicate_username_is_exists)
{
    struct store *s = open_db();
    add_user(s, "alice", "user");
    int64_t id = -5;
    cr_assert_eq(store_user_insert(s, "alice", "admin", "phc", 1, &id), ERR_EXISTS);
    cr_assert_eq(id, -5, "id written on failure");
    store_close(s);
}

Test(store, user_setters)
{
    struct store *s = open_db();
    int64_t id = add_user(s, "alice", "user");
    struct store_user u;
    cr_assert_eq(store_user_set_password(s, id, "$argon2id$new"), 0);
    cr_assert_eq(store_user_set_role(s, id, "admin"), 0);
    cr_assert_eq(store_user_set_disabled(s, id, true), 0);
    cr_assert_eq(store_user_get(s, id, &u), 0);
    cr_assert_str_eq(u.password_hash, "$argon2id$new");
    cr_assert_str_eq(u.role, "admin");
    cr_assert(u.disabled);
    cr_assert_eq(store_user_set_disabled(s, id, false), 0);
    cr_assert_eq(store_user_get(s, id, &u), 0);
    cr_assert_not(u.disabled);

    cr_assert_eq(store_user_set_password(s, id + 1, "x"), ERR_NOT_FOUND);
    cr_assert_eq(store_user_set_role(s, id + 1, "user"), ERR_NOT_FOUND);
    cr_assert_eq(store_user_set_disabled(s, id + 1, true), ERR_NOT_FOUND);
    store_close(s);
}

Test(store, invalid_role_is_refused_by_check)
{
    struct store *s = open_db();
    int64_t id = 0;
    cr_assert_eq(store_user_insert(s, "mallory", "root", "phc", 1, &id), ERR_INVALID);
    struct store_user u;
    cr_assert_eq(store_user_get_by_name(s, "mallory", &u), ERR_NOT_FOUND);

    id = add_user(s, "alice", "user");
    cr_assert_eq(store_user_set_role(s, id, "superuser"), ERR_INVALID);
    cr_assert_eq(store_user_set_role(s, id, "Admin"), ERR_INVALID);
    cr_assert_eq(store_user_get(s, id, &u), 0);
    cr_assert_str_eq(u.role, "user");
    store_close(s);
}

Test(store, oversized_or_empty_user_fields_are_refused)
{
    struct store *s = open_db();
    int64_t id = 0;
    char longname[STORE_USERNAME_MAX + 2];
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    cr_assert_eq(store_user_insert(s, longname, "user", "phc", 1, &id), ERR_INVALID);
    longname[STORE_USERNAME_MAX] = '\0';                 /* exactly the maximum */
    cr_assert_eq(store_user_insert(s, longname, "user", "phc", 1, &id), 0);
    cr_assert_eq(store_user_insert(s, "", "user", "phc", 1, &id), ERR_INVALID);
    cr_assert_eq(store_user_insert(s, "bob", "user", "", 1, &id), ERR_INVALID);
    cr_assert_eq(store_user_insert(s, NULL, "user", "phc", 1, &id), ERR_INVALID);
    char longphc[STORE_PHC_MAX + 1];
    memset(longphc, 'p', sizeof(longphc) - 1);
    longphc[sizeof(longphc) - 1] = '\0';
    cr_assert_eq(store_user_insert(s, "bob", "user", longphc, 1, &id), ERR_INVALID);
    cr_assert_eq(store_user_set_password(s, id, longphc), ERR_INVALID);
    /* The statements were released after each refusal: the next call works. */
    add_user(s, "bob", "user");
    store_close(s);
}

Test(store, user_ids_are_not_reused)
{
    struct store *s = open_db();
    int64_t a = add_user(s, "alice", "user");
    cr_assert_eq(store_user_delete(s, a), 0);
    int64_t b = add_user(s, "bob", "user");
    cr_assert_gt(b, a);
    cr_assert_eq(store_user_delete(s, a), ERR_NOT_FOUND);
    store_close(s);
}

/* ---- sessions ------------------------------------------------------------ */

Test(store, session_insert_get_joins_user)
{
    struct store *s = open_db();
    int64_t uid = add_user(s, "alice", "user");
    uint8_t h[STORE_HASH_LEN], other[STORE_HASH_LEN];
    hash_of(h, 1);
    hash_of(other, 2);
    cr_assert_eq(store_session_insert(s, h, uid, 100, 500, 16), 0);
    struct store_session ss;
    cr_assert_eq(store_session_get(s, h, &ss), 0);
    cr_assert_eq(ss.user_id, uid);
    cr_assert_str_eq(ss.role, "user");
    cr_assert_not(ss.disabled);
    cr_assert_eq(ss.created_at, 100);
    cr_assert_eq(ss.last_seen, 100);
    cr_assert_eq(ss.expires_at, 500);
    cr_assert_eq(store_session_get(s, other, &ss), ERR_NOT_FOUND);

    /* The join reflects the user's current role and state. */
    cr_assert_eq(store_user_set_role(s, uid, "admin"), 0);
    cr_assert_eq(store_user_set_disabled(s, uid, true), 0);
    cr_assert_eq(store_session_get(s, h, &ss), 0);
    cr_assert_str_eq(ss.role, "admin");
    cr_assert(ss.disabled);

    cr_assert_eq(store_session_insert(s, h, uid, 1, 2, 16), ERR_EXISTS);
    store_close(s);
}

Test(store, session_touch_and_delete)
{
    struct store *s = open_db();
    int64_t uid = add_user(s, "alice", "user");
    uint8_t h[STORE_HASH_LEN], other[STORE_HASH_LEN];
    hash_of(h, 1);
    hash_of(other, 2);
    cr_assert_eq(store_session_insert(s, h, uid, 100, 500, 16), 0);
    cr_assert_eq(store_session_touch(s, h, 250), 0);
    struct store_session ss;
    cr_assert_eq(store_session_get(s, h, &ss), 0);
    cr_assert_eq(ss.last_seen, 250);
    cr_assert_eq(ss.created_at, 100);
    cr_assert_eq(store_session_touch(s, other, 250), ERR_NOT_FOUND);

    cr_assert_eq(store_session_delete(s, h), 0);
    cr_assert_eq(store_session_get(s, h, &ss), ERR_NOT_FOUND);
    cr_assert_eq(store_session_delete(s, h), 0, "deleting is idempotent");
    cr_assert_eq(store_session_touch(s, h, 300), ERR_NOT_FOUND);
    store_close(s);
}

Test(store, session_delete_user_all_or_all_but_one)
{
    struct store *s = open_db();
    int64_t a = add_user(s, "alice", "user");
    int64_t b = add_user(s, "bob", "user");
    uint8_t h[4][STORE_HASH_LEN];
    for (int i = 0; i < 4; i++)
        hash_of(h[i], (uint8_t)(i + 1));
    cr_assert_eq(store_session_insert(s, h[0], a, 1, 1000, 16), 0);
    cr_assert_eq(store_session_insert(s, h[1], a, 1, 1000, 16), 0);
    cr_assert_eq(store_session_insert(s, h[2], a, 1, 1000, 16), 0);
    cr_assert_eq(store_session_insert(s, h[3], b, 1, 1000, 16), 0);
    struct store_session ss;

    cr_assert_eq(store_session_delete_user(s, a, h[1]), 0);
    cr_assert_eq(store_session_get(s, h[0], &ss), ERR_NOT_FOUND);
    cr_assert_eq(store_session_get(s, h[1], &ss), 0, "the kept session was deleted");
    cr_assert_eq(store_session_get(s, h[2], &ss), ERR_NOT_FOUND);
    cr_assert_eq(store_session_get(s, h[3], &ss), 0, "another user's session was deleted");

    /* `keep` naming another user's session protects nothing of alice's. */
    cr_assert_eq(store_session_insert(s, h[0], a, 1, 1000, 16), 0);
    cr_assert_eq(store_session_delete_user(s, a, h[3]), 0);
    cr_assert_eq(store_session_get(s, h[0], &ss), ERR_NOT_FOUND);
    cr_assert_eq(store_session_get(s, h[1], &ss), ERR_NOT_FOUND);
    cr_assert_eq(store_session_get(s, h[3], &ss), 0);

    cr_assert_eq(store_session_delete_user(s, b, NULL), 0);
    cr_assert_eq(store_session_get(s, h[3], &ss), ERR_NOT_FOUND);
    store_close(s);
}

Test(store, session_purge_expired_and_idle)
{
    struct store *s = open_db();
    int64_t uid = add_user(s, "alice", "user");
    uint8_t fresh[STORE_HASH_LEN], expired[STORE_HASH_LEN], idle[STORE_HASH_LEN], edge[STORE_HASH_LEN];
    hash_of(fresh, 1);
    hash_of(expired, 2);
    hash_of(idle, 3);
    hash_of(edge, 4);
    const int64_t now = 10000, cutoff = 9000;
    cr_assert_eq(store_session_insert(s, fresh, uid, 9500, now + 100, 16), 0);
    cr_assert_eq(store_session_insert(s, expired, uid, 9500, now, 16), 0);       /* expires exactly now */
    cr_assert_eq(store_session_insert(s, idle, uid, 8999, now + 100, 16), 0);    /* last seen before cutoff */
    cr_assert_eq(store_session_insert(s, edge, uid, 9000, now + 1, 16), 0);      /* exactly at cutoff: kept */
    cr_assert_eq(store_session_purge(s, now, cutoff), 0);
    struct store_session ss;
    cr_assert_eq(store_session_get(s, fresh, &ss), 0);
    cr_assert_eq(store_session_get(s, edge, &ss), 0);
    cr_assert_eq(store_session_get(s, expired, &ss), ERR_NOT_FOUND);
    cr_assert_eq(store_session_get(s, idle, &ss), ERR_NOT_FOUND);
    store_close(s);
}

/* ---- notes --------------------------------------------------------------- */

Test(store, note_insert_reserves_empty_row)
{
    struct store *s = open_db();
    int64_t uid = add_user(s, "alice", "user");
    int64_t id = 0;
    cr_assert_eq(store_note_insert(s, uid, 77, &id), 0);
    cr_assert_gt(id, 0);
    struct store_note n;
    store_note_init(&n);
    cr_assert_eq(store_note_get_own(s, id, uid, &n), 0);
    cr_assert_eq(n.id, id);
    cr_assert_eq(n.owner_id, uid);
    cr_assert_eq(n.title.len, 0);
    cr_assert_eq(n.content.len, 0);
    cr_assert_eq(n.key_id, 0);
    cr_assert_eq(n.created_at, 77);
    cr_assert_eq(n.updated_at, 77);
    /* Updating back to empty fields stays legal (empty blob, not NULL). */
    cr_assert_eq(store_note_update(s, id, uid, (struct slice){ NULL, 0 }, (struct slice){ NULL, 0 }, 3, 80), 0);
    store_note_cleanup(&n);
    store_close(s);
}

Test(store, note_update_and_get_respect_owner)
{
    struct store *s = open_db();
    int64_t a = add_user(s, "alice", "user");
    int64_t b = add_user(s, "bob", "user");
    int64_t id = add_note(s, a, "title-a", "content-a", 5);
    struct store_note n;
    store_note_init(&n);
    cr_assert_eq(store_note_get_own(s, id, a, &n), 0);
    cr_assert_eq(n.title.len, 7);
    cr_assert_eq(memcmp(n.title.data, "title-a", 7), 0);
    cr_assert_eq(memcmp(n.content.data, "content-a", 9), 0);
    cr_assert_eq(n.key_id, 5);
    cr_assert_eq(n.updated_at, 2001);

    cr_assert_eq(store_note_get_own(s, id, b, &n), ERR_NOT_FOUND);
    cr_assert_eq(n.title.len, 0, "failed get left data behind");
    cr_assert_eq(store_note_update(s, id, b, SLICE_LIT("evil"), SLICE_LIT("evil"), 5, 3000), ERR_NOT_FOUND);
    cr_assert_eq(store_note_update(s, id + 1, a, SLICE_LIT("x"), SLICE_LIT("x"), 5, 3000), ERR_NOT_FOUND);

    cr_assert_eq(store_note_get_any(s, id, &n), 0);
    cr_assert_eq(n.owner_id, a);
    cr_assert_eq(memcmp(n.title.data, "title-a", 7), 0, "another owner's update changed the note");
    cr_assert_eq(n.updated_at, 2001);
    cr_assert_eq(store_note_get_any(s, id + 1, &n), ERR_NOT_FOUND);
    store_note_cleanup(&n);
    store_close(s);
}

Test(store, note_delete_respects_owner)
{
    struct store *s = open_db();
    int64_t a = add_user(s, "alice", "user");
    int64_t b = add_user(s, "bob", "user");
    int64_t id = add_note(s, a, "t", "c", 1);
    cr_assert_eq(store_note_delete_own(s, id, b), ERR_NOT_FOUND);
    struct store_note n;
    store_note_init(&n);
    cr_assert_eq(store_note_get_own(s, id, a, &n), 0, "another owner deleted the note");
    cr_assert_eq(store_note_delete_own(s, id, a), 0);
    cr_assert_eq(store_note_get_any(s, id, &n), ERR_NOT_FOUND);
    cr_assert_eq(store_note_delete_own(s, id, a), ERR_NOT_FOUND);
    store_note_cleanup(&n);
    store_close(s);
}

Test(store, note_ids_are_not_reused_after_delete)
{
    struct store *s = open_db();
    int64_t a = add_user(s, "alice", "user");
    int64_t first = add_note(s, a, "t", "c", 1);
    int64_t last = add_note(s, a, "t", "c", 1);
    cr_assert_eq(store_note_delete_own(s, last, a), 0);
    int64_t next = add_note(s, a, "t", "c", 1);
    cr_assert_gt(next, last, "id %lld reused", (long long)next);
    cr_assert_gt(last, first);
    store_close(s);

    /* Also across a restart (the sequence is persistent). */
    s = open_db();
    cr_assert_eq(store_note_delete_own(s, next, a), 0);
    int64_t again = add_note(s, a, "t", "c", 1);
    cr_assert_gt(again, next);
    store_close(s);
}

Test(store, note_blob_limit)
{
    struct store *s = open_db();
    int64_t a = add_user(s, "alice", "user");
    int64_t id = add_note(s, a, "t", "c", 1);
    size_t big = STORE_NOTE_BLOB_MAX + 1;
    uint8_t *p = calloc(1, big);
    cr_assert_not_null(p);
    cr_assert_eq(store_note_update(s, id, a, SLICE_LIT("t"), (struct slice){ p, big }, 1, 5), ERR_LIMIT);
    cr_assert_eq(store_note_update(s, id, a, (struct slice){ p, big }, SLICE_LIT("c"), 1, 5), ERR_LIMIT);
    /* Exactly the maximum in both fields is stored and read back. */
    memset(p, 0xA5, big);
    struct slice max = { p, STORE_NOTE_BLOB_MAX };
    cr_assert_eq(store_note_update(s, id, a, max, max, 1, 5), 0);
    struct store_note n;
    store_note_init(&n);
    cr_assert_eq(store_note_get_own(s, id, a, &n), 0);
    cr_assert_eq(n.title.len, STORE_NOTE_BLOB_MAX);
    cr_assert_eq(n.content.len, STORE_NOTE_BLOB_MAX);
    cr_assert_eq(memcmp(n.content.data, p, STORE_NOTE_BLOB_MAX), 0);
    store_note_cleanup(&n);
    free(p);
    store_close(s);
}

Test(store, note_list_pages_newest_first_per_owner)
{
    struct store *s = open_db();
    int64_t a = add_user(s, "alice", "user");
    int64_t b = add_user(s, "bob", "user");
    int64_t mine[25];
    int nb = 0;
    for (int i = 0; i < 25; i++) {
        mine[i] = add_note(s, a, "a", "content", 1);
        if (i % 3 == 0) {                 /* interleave bob's notes */
            add_note(s, b, "b", "content", 1);
            nb++;
        }
    }
    int64_t before = INT64_MAX;
    int got = 0;
    int sizes[4] = { 0 };
    for (int page = 0; page < 4; page++) {
        struct seen seen = { 0 };
        cr_assert_eq(store_note_list(s, a, before, 10, false, collect_cb, &seen), 0);
        sizes[page] = seen.n;
        for (int i = 0; i < seen.n; i++) {
            cr_assert_eq(seen.owners[i], a, "bob's note in alice's list");
            cr_assert_eq(seen.content_len[i], 0, "content filled without with_content");
            /* newest first: exactly alice's ids in descending order */
            cr_assert_eq(seen.ids[i], mine[24 - got], "page %d row %d", page, i);
            got++;
        }
        if (seen.n)
            before = seen.ids[seen.n - 1];
    }
    cr_assert_eq(sizes[0], 10);
    cr_assert_eq(sizes[1], 10);
    cr_assert_eq(sizes[2], 5);
    cr_assert_eq(sizes[3], 0);
    cr_assert_eq(got, 25);

    struct seen all = { 0 };
    cr_assert_eq(store_note_list(s, 0, INT64_MAX, 100, false, collect_cb, &all), 0);
    cr_assert_eq(all.n, 25 + nb);
    int from_b = 0;
    for (int i = 0; i < all.n; i++) {
        if (i)
            cr_assert_lt(all.ids[i], all.ids[i - 1]);
        from_b += all.owners[i] == b;
    }
    cr_assert_eq(from_b, nb);

    struct seen page = { 0 };
    cr_assert_eq(store_note_list(s, 0, all.ids[4], 3, false, collect_cb, &page), 0);
    cr_assert_eq(page.n, 3);
    cr_assert_eq(page.ids[0], all.ids[5]);
    store_close(s);
}

Test(store, note_list_with_content_and_stop)
{
    struct store *s = open_db();
    int64_t a = add_user(s, "alice", "user");
    for (int i = 0; i < 5; i++)
        add_note(s, a, "t", "twelve bytes", 1);
    struct seen seen = { 0 };
    cr_assert_eq(store_note_list(s, a, INT64_MAX, 10, true, collect_cb, &seen), 0);
    cr_assert_eq(seen.n, 5);
    for (int i = 0; i < seen.n; i++)
        cr_assert_eq(seen.content_len[i], 12);
    struct seen all = { 0 };
    cr_assert_eq(store_note_list(s, 0, INT64_MAX, 10, true, collect_cb, &all), 0);
    cr_assert_eq(all.content_len[0], 12);

    struct seen stop = { .stop_after = 2 };
    cr_assert_eq(store_note_list(s, a, INT64_MAX, 10, false, collect_cb, &stop), 0);
    cr_assert_eq(stop.n, 2, "listing went on after the callback said stop");

    cr_assert_eq(store_note_list(s, a, INT64_MAX, 0, false, collect_cb, &seen), ERR_INVALID);
    cr_assert_eq(store_note_list(s, a, INT64_MAX, -1, false, collect_cb, &seen), ERR_INVALID);
    cr_assert_eq(store_note_list_not_key(s, 1, 0, 0, collect_cb, &seen), ERR_INVALID);
    store_close(s);
}

struct reenter {
    struct store *s;
    int inner_rc;
    int calls;
};

static int reenter_cb(void *arg, const struct store_note *n)
{
    struct reenter *r = arg;
    struct seen ignored = { 0 };
    r->calls++;
    r->inner_rc = store_note_list(r->s, n->owner_id, INT64_MAX, 10, false, collect_cb, &ignored);
    return 0;
}

Test(store, list_callback_cannot_reenter_the_same_listing)
{
    struct store *s = open_db();
    int64_t a = add_user(s, "alice", "user");
    add_note(s, a, "t", "c", 1);
    add_note(s, a, "t", "c", 1);
    struct reenter r = { .s = s };
    cr_assert_eq(store_note_list(s, a, INT64_MAX, 10, false, reenter_cb, &r), 0);
    cr_assert_eq(r.calls, 2, "the outer listing was disturbed");
    cr_assert_eq(r.inner_rc, ERR_INTERNAL);
    store_close(s);
}

struct rekey {
    struct store *s;
    uint32_t to;
    int done;
};

static int rekey_cb(void *arg, const struct store_note *n)
{
    struct rekey *r = arg;
    cr_assert_eq(n->content.len, 7, "list_not_key must fill content");
    cr_assert_eq(store_note_update(r->s, n->id, n->owner_id, slice_of(&n->title), slice_of(&n->content),
                                   r->to, 9), 0);
    r->done++;
    return 0;
}

Test(store, note_list_not_key)
{
    struct store *s = open_db();
    int64_t a = add_user(s, "alice", "user");
    int64_t b = add_user(s, "bob", "user");
    int64_t old[4];
    old[0] = add_note(s, a, "t", "content", 1);
    add_note(s, a, "t", "content", 2);
    old[1] = add_note(s, b, "t", "content", 1);
    old[2] = add_note(s, a, "t", "content", 3);
    add_note(s, b, "t", "content", 2);
    old[3] = add_note(s, a, "t", "content", 1);

    struct seen seen = { 0 };
    cr_assert_eq(store_note_list_not_key(s, 2, 0, 3, collect_cb, &seen), 0);
    cr_assert_eq(seen.n, 3);
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(seen.ids[i], old[i], "oldest first, skipping key 2");
        cr_assert_neq(seen.keys[i], 2);
        cr_assert_eq(seen.content_len[i], 7);
    }
    int64_t count = 0;
    cr_assert_eq(store_note_count_not_key(s, 2, &count), 0);
    cr_assert_eq(count, 4);

    /* After a note (one rekey could not open, say): only those past it. */
    struct seen after = { 0 };
    cr_assert_eq(store_note_list_not_key(s, 2, old[1], 100, collect_cb, &after), 0);
    cr_assert_eq(after.n, 2);
    cr_assert_eq(after.ids[0], old[2]);
    cr_assert_eq(after.ids[1], old[3]);

    /* Rekey in batches, updating from inside the callback. */
    struct rekey r = { .s = s, .to = 2 };
    for (int round = 0; round < 5; round++) {
        int before = r.done;
        cr_assert_eq(store_note_list_not_key(s, 2, 0, 3, rekey_cb, &r), 0);
        if (r.done == before)
            break;
    }
    cr_assert_eq(r.done, 4);
    struct seen left = { 0 };
    cr_assert_eq(store_note_list_not_key(s, 2, 0, 100, collect_cb, &left), 0);
    cr_assert_eq(left.n, 0);
    cr_assert_eq(store_note_count_not_key(s, 2, &count), 0);
    cr_assert_eq(count, 0);
    store_close(s);
}

/* ---- cascade and erasure ------------------------------------------------- */

Test(store, user_delete_cascades_to_notes_and_sessions)
{
    struct store *s = open_db();
    int64_t a = add_user(s, "alice", "user");
    int64_t b = add_user(s, "bob", "user");
    int64_t na = add_note(s, a, "t", "c", 1);
    int64_t nb = add_note(s, b, "t", "c", 1);
    uint8_t ha[STORE_HASH_LEN], hb[STORE_HASH_LEN];
    hash_of(ha, 1);
    hash_of(hb, 2);
    cr_assert_eq(store_session_insert(s, ha, a, 1, 1000, 16), 0);
    cr_assert_eq(store_session_insert(s, hb, b, 1, 1000, 16), 0);

    cr_assert_eq(store_user_delete(s, a), 0);
    struct store_note n;
    store_note_init(&n);
    struct store_session ss;
    struct store_user u;
    cr_assert_eq(store_user_get(s, a, &u), ERR_NOT_FOUND);
    cr_assert_eq(store_note_get_any(s, na, &n), ERR_NOT_FOUND);
    cr_assert_eq(store_session_get(s, ha, &ss), ERR_NOT_FOUND);
    struct seen all = { 0 };
    cr_assert_eq(store_note_list(s, 0, INT64_MAX, 100, false, collect_cb, &all), 0);
    cr_assert_eq(all.n, 1);
    cr_assert_eq(all.ids[0], nb);
    cr_assert_eq(store_session_get(s, hb, &ss), 0);
    store_note_cleanup(&n);
    store_close(s);
}

#define MARKER "ZQX-erase-me-7f3a9c1b-ZQX"
#define MARKER2 "QJW-in-the-wal-5e8d2a40-QJW"

/*
 * Erasure: phase one puts MARKER into the database file proper (checkpoint
 * and close); phase two, on one open connection as the server would run it,
 * puts MARKER2 into the -wal file, deletes the user, and checkpoints. After
 * that neither marker may be in either file, open or closed. Each marker is
 * first seen where it was written, so the absence checks can fail.
 */
Test(store, deleted_user_leaves_no_bytes_in_db_or_wal)
{
    char wal[200];
    sidecar(wal, sizeof(wal), "-wal");
    struct store *s = open_db();
    int64_t victim = add_user(s, "victim" "7f3a9c1b", "user");
    int64_t keeper = add_user(s, "keeper", "user");
    /* A small note (in-page cell) and a large one (overflow pages). */
    add_note(s, victim, MARKER "-title", "small " MARKER " content", 1);
    size_t big_len = 20000;
    char *big = malloc(big_len + 1);
    cr_assert_not_null(big);
    for (size_t i = 0; i < big_len; i++)
        big[i] = (char)('a' + i % 26);
    for (size_t off = 0; off + sizeof(MARKER) < big_len; off += 3000)
        memcpy(big + off, MARKER, sizeof(MARKER) - 1);
    big[big_len] = '\0';
    add_note(s, victim, "big", big, 1);
    add_note(s, keeper, "keeper", "keeper content stays", 1);
    uint8_t h[STORE_HASH_LEN];
    hash_of(h, 9);
    cr_assert_eq(store_session_insert(s, h, victim, 1, 1000, 16), 0);
    cr_assert_eq(store_checkpoint(s), 0);
    store_close(s);
    cr_assert(file_contains(dbpath, MARKER), "marker not in the file: the test could not fail");
    cr_assert(file_contains(dbpath, "victim7f3a9c1b"));

    s = open_db();
    cr_assert_eq(store_set_autocheckpoint(s, false), 0);    /* as the server runs */
    add_note(s, victim, "late", "late " MARKER2 " content", 1);
    cr_assert(file_contains(wal, MARKER2), "marker not in the WAL: the test could not fail");
    cr_assert_eq(store_user_delete(s, victim), 0);
    cr_assert_eq(store_checkpoint(s), 0);
    static const char *const gone[] = { MARKER, MARKER2, "victim7f3a9c1b" };
    for (size_t i = 0; i < sizeof(gone) / sizeof(gone[0]); i++) {
        cr_assert_not(file_contains(wal, gone[i]), "%s left in the open -wal file", gone[i]);
        cr_assert_not(file_contains(dbpath, gone[i]), "%s left in the open database file", gone[i]);
    }
    store_close(s);
    for (size_t i = 0; i < sizeof(gone) / sizeof(gone[0]); i++) {
        cr_assert_not(file_contains(wal, gone[i]), "%s left in the -wal file", gone[i]);
        cr_assert_not(file_contains(dbpath, gone[i]), "%s left in the database file", gone[i]);
    }
    cr_assert(file_contains(dbpath, "keeper content stays"), "the other user's data is gone");
    free(big);
}

struct hold {
    struct store *writer;
    int64_t owner;
    int checkpoint_rc;
};

/* Runs while the listing connection holds its read snapshot. */
static int checkpoint_under_reader_cb(void *arg, const struct store_note *n)
{
    (void)n;
    struct hold *h = arg;
    add_note(h->writer, h->owner, "t", "written after the reader's snapshot", 1);
    h->checkpoint_rc = store_checkpoint(h->writer);
    return 1;
}

/* A checkpoint that could not truncate the WAL must not report success:
 * erasure relies on it. (Waits out the 5 s busy timeout once.) */
Test(store, checkpoint_blocked_by_a_reader_fails, .timeout = 60)
{
    struct store *w = open_db();
    struct store *r = open_db();
    int64_t a = add_user(w, "alice", "user");
    add_note(w, a, "t", "c", 1);
    struct hold h = { .writer = w, .owner = a, .checkpoint_rc = 12345 };
    cr_assert_eq(store_note_list(r, a, INT64_MAX, 10, false, checkpoint_under_reader_cb, &h), 0);
    cr_assert_eq(h.checkpoint_rc, ERR_IO);
    cr_assert_eq(store_checkpoint(w), 0, "the reader is gone: the checkpoint must now succeed");
    store_close(r);
    store_close(w);
}

/* Frames in the WAL, and a writer (w) inside a transaction that holds the
 * writer lock while another connection (c) checkpoints. */
static void writer_in_a_transaction(struct store **w, struct store **c)
{
    *w = open_db();
    *c = open_db();
    int64_t a = add_user(*w, "alice", "user");
    add_note(*w, a, "t", "in the WAL before the writer begins", 1);
    cr_assert_eq(store_begin(*w), 0);
    add_note(*w, a, "t", "written while the checkpoint runs", 1);
}

/* The periodic checkpoint runs beside the event loop's connection: it must
 * neither wait for a writer nor make one wait (a TRUNCATE holds the writer
 * lock through its fsync, and here waits for the writer's lock first). */
Test(store, passive_checkpoint_does_not_wait_for_a_writer, .timeout = 60)
{
    struct store *w, *c;
    writer_in_a_transaction(&w, &c);
    cr_assert_eq(store_checkpoint_passive(c, NULL), 0);
    cr_assert_eq(store_busy_waits(c), 0, "the checkpoint waited for the writer");
    cr_assert_eq(store_commit(w), 0, "the writer lost its transaction to the checkpoint");
    cr_assert_eq(store_checkpoint_passive(c, NULL), 0);
    store_close(c);
    store_close(w);
}

static void count_frames(void *arg, int frames)
{
    *(int *)arg = frames;
}

/* The serving connection learns from each commit how many frames its WAL
 * holds; after a RESTART checkpoint (another connection) the next commit
 * writes from the top of the log again. */
Test(store, a_restart_checkpoint_starts_the_wal_over)
{
    struct store *w = open_db();
    struct store *c = open_db();
    cr_assert_eq(store_set_autocheckpoint(w, false), 0);
    int frames = -1;
    store_on_commit(w, count_frames, &frames);
    int64_t a = add_user(w, "alice", "user");
    int first = frames;
    cr_assert_gt(first, 0);
    for (int i = 0; i < 20; i++)
        add_note(w, a, "t", "grows the log", 1);
    cr_assert_gt(frames, first, "the log did not grow");
    int grown = frames, log = 0;
    cr_assert_eq(store_checkpoint_passive(c, &log), 0);
    cr_assert_eq(log, grown, "PASSIVE reports what the log holds");
    cr_assert_eq(store_checkpoint_restart(c), 0);
    add_note(w, a, "t", "after the restart", 1);
    cr_assert_lt(frames, grown, "the write after a restart did not start the log over (%d frames)", frames);
    store_on_commit(w, NULL, NULL);
    frames = -1;
    add_note(w, a, "t", "no hook", 1);
    cr_assert_eq(frames, -1, "a removed hook was still called");
    store_close(c);
    store_close(w);
}

static long elapsed_ms(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long)(t.tv_sec - t0->tv_sec) * 1000 + (t.tv_nsec - t0->tv_nsec) / 1000000;
}

/* RESTART takes the writer lock, so the event loop's writes wait while it
 * waits: it must give up after STORE_RESTART_WAIT_MS, not after the 5 s
 * busy timeout every other wait uses. A writer in a transaction holds it. */
Test(store, a_restart_checkpoint_gives_up_soon_on_a_busy_writer, .timeout = 30)
{
    struct store *w, *c;
    writer_in_a_transaction(&w, &c);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    cr_assert_eq(store_checkpoint_restart(c), ERR_IO);
    long took = elapsed_ms(&t0);
    cr_assert_geq(store_busy_waits(c), 1, "it did not wait at all");
    cr_assert_lt(took, 1000, "waited %ld ms for the writer (bound %d ms)", took, STORE_RESTART_WAIT_MS);
    cr_assert_eq(store_commit(w), 0);
    cr_assert_eq(store_checkpoint_restart(c), 0, "the writer is done: the restart must now succeed");
    store_close(c);
    store_close(w);
}

/* ---- key usage ----------------------------------------------------------- */

Test(store, key_use_accumulates_per_key)
{
    struct store *s = open_db();
    uint64_t total = 0;
    cr_assert_eq(store_key_use(s, 7, 2, &total), 0);
    cr_assert_eq(total, 2);
    cr_assert_eq(store_key_use(s, 7, 3, &total), 0);
    cr_assert_eq(total, 5);
    cr_assert_eq(store_key_use(s, 0xffffffffu, 10, &total), 0);
    cr_assert_eq(total, 10);
    cr_assert_eq(store_key_use(s, 7, 0, &total), 0);
    cr_assert_eq(total, 5);
    store_close(s);

    s = open_db();
    cr_assert_eq(store_key_use(s, 7, 1, &total), 0);
    cr_assert_eq(total, 6, "count lost across restart");
    store_close(s);
}

Test(store, key_use_never_wraps)
{
    struct store *s = open_db();
    uint64_t total = 0;
    cr_assert_eq(store_key_use(s, 1, (uint64_t)INT64_MAX + 1, &total), ERR_INVALID);
    cr_assert_eq(store_key_use(s, 1, (uint64_t)INT64_MAX - 1, &total), 0);
    cr_assert_eq(store_key_use(s, 1, 1, &total), 0);
    cr_assert_eq(total, (uint64_t)INT64_MAX);
    cr_assert_neq(store_key_use(s, 1, 1, &total), 0, "the count overflowed");
    cr_assert_eq(store_key_use(s, 1, 0, &total), 0);
    cr_assert_eq(total, (uint64_t)INT64_MAX);
    store_close(s);
}

/* What another connection (another process) sees as the count. */
static uint64_t key_count(uint32_t key_id)
{
    struct store *o = open_db();
    uint64_t total = 0;
    cr_assert_eq(store_key_use(o, key_id, 0, &total), 0);
    store_close(o);
    return total;
}

Test(store, key_reserve_counts_ahead_in_blocks)
{
    struct store *s = open_db();
    uint64_t total = 0, added = 0;
    cr_assert_eq(store_key_reserve(s, 7, 2, 10, &total, &added), 0);
    cr_assert_eq(added, 10);
    cr_assert_eq(total, 10);
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(store_key_reserve(s, 7, 2, 10, &total, &added), 0);
        cr_assert_eq(added, 0, "call %d wrote the count", i);
        cr_assert_eq(total, 10);
    }
    cr_assert_eq(key_count(7), 10);
    cr_assert_eq(store_key_reserve(s, 7, 2, 10, &total, &added), 0, "the block is used up");
    cr_assert_eq(added, 10);
    cr_assert_eq(key_count(7), 20);
    cr_assert_eq(store_key_reserve(s, 7, 25, 10, &total, &added), 0, "more than a block at once");
    cr_assert_eq(added, 25);
    cr_assert_eq(store_key_reserve(s, 8, 1, 10, &total, &added), 0, "another key");
    cr_assert_eq(added, 10);
    cr_assert_eq(key_count(8), 10);
    store_close(s);
}

Test(store, key_reserve_forgets_a_block_whose_count_was_rolled_back)
{
    struct store *s = open_db();
    uint64_t total = 0, added = 0;
    cr_assert_eq(store_begin(s), 0);
    cr_assert_eq(store_key_reserve(s, 7, 2, 10, &total, &added), 0);
    store_rollback(s);
    cr_assert_eq(key_count(7), 0);
    cr_assert_eq(store_key_reserve(s, 7, 2, 10, &total, &added), 0);
    cr_assert_eq(added, 10, "encryptions were served from a count that was rolled back");
    cr_assert_eq(key_count(7), 10);
    /* A savepoint's rollback may undo a raise too. */
    cr_assert_eq(store_begin(s), 0);
    cr_assert_eq(store_begin(s), 0);
    cr_assert_eq(store_key_reserve(s, 7, 2, 10, &total, &added), 0);
    store_rollback(s);
    cr_assert_eq(store_key_reserve(s, 7, 1, 10, &total, &added), 0);
    cr_assert_eq(added, 10, "served from a count a savepoint rolled back");
    cr_assert_eq(store_commit(s), 0);
    cr_assert_eq(key_count(7), 20);
    store_close(s);
}

/* ---- hostile input ------------------------------------------------------- */

#define INJECT "x'); DROP TABLE notes;--"

Test(store, sql_injection_strings_are_plain_data)
{
    struct store *s = open_db();
    int64_t uid = add_user(s, INJECT, "user");
    struct store_user u;
    cr_assert_eq(store_user_get_by_name(s, INJECT, &u), 0);
    cr_assert_str_eq(u.username, INJECT);
    cr_assert_eq(u.id, uid);

    static const uint8_t content[] = "'; DELETE FROM users; SELECT \"\0\x01\xff\" /* --";
    struct slice c = { content, sizeof(content) };
    int64_t id = 0;
    cr_assert_eq(store_note_insert(s, uid, 1, &id), 0);
    cr_assert_eq(store_note_update(s, id, uid, SLICE_LIT(INJECT), c, 1, 2), 0);
    struct store_note n;
    store_note_init(&n);
    cr_assert_eq(store_note_get_own(s, id, uid, &n), 0);
    cr_assert_eq(n.content.len, sizeof(content));
    cr_assert_eq(memcmp(n.content.data, content, sizeof(content)), 0);
    cr_assert_eq(n.title.len, strlen(INJECT));
    cr_assert_eq(memcmp(n.title.data, INJECT, n.title.len), 0);
    store_note_cleanup(&n);
    store_close(s);

    /* The tables are all still there and usable after a reopen. */
    s = open_db();
    cr_assert_eq(store_user_get(s, uid, &u), 0);
    int64_t other = add_user(s, "after", "user");
    add_note(s, other, "t", "c", 1);
    struct seen all = { 0 };
    cr_assert_eq(store_note_list(s, 0, INT64_MAX, 10, false, collect_cb, &all), 0);
    cr_assert_eq(all.n, 2);
    uint8_t h[STORE_HASH_LEN];
    hash_of(h, 3);
    cr_assert_eq(store_session_insert(s, h, other, 1, 2, 16), 0);
    uint64_t total;
    cr_assert_eq(store_key_use(s, 1, 1, &total), 0);
    store_close(s);
}

/* An erasure deletes the account only while what it checked still holds:
 * the same password (a rehash keeps it), an enabled account, and the
 * asking session. */
Test(store, an_erasure_deletes_only_the_account_it_checked, .init = setup, .fini = teardown)
{
    struct store *s = open_db();
    struct store_user u;
    int64_t id = add_user_phc(s, "erin", "$argon2id$old", &u);
    int64_t gen = u.password_gen;
    uint8_t tok[STORE_HASH_LEN], other[STORE_HASH_LEN];
    memset(tok, 0x11, sizeof(tok));
    memset(other, 0x22, sizeof(other));
    cr_assert_eq(store_session_insert(s, tok, id, 1, 100, 16), 0);
    cr_assert_eq(store_user_upgrade_password(s, id, "$argon2id$old", "$argon2id$rehashed"), 0);
    cr_assert_eq(store_user_set_password(s, id, "$argon2id$new"), 0);
    cr_assert_eq(store_user_delete_if_current(s, id, gen, tok), ERR_NOT_FOUND, "a changed password");
    cr_assert_eq(store_user_delete_if_current(s, id, gen + 1, other), ERR_NOT_FOUND, "another session");
    cr_assert_eq(store_user_set_disabled(s, id, true), 0);
    cr_assert_eq(store_user_delete_if_current(s, id, gen + 1, tok), ERR_NOT_FOUND, "a disabled account");
    cr_assert_eq(store_user_set_disabled(s, id, false), 0);
    cr_assert_eq(store_user_upgrade_password(s, id, "$argon2id$new", "$argon2id$new-rehashed"), 0);
    cr_assert_eq(store_user_delete_if_current(s, id, gen + 1, tok), 0, "the password checked, rehashed since");
    cr_assert_eq(store_user_get(s, id, &u), ERR_NOT_FOUND);
    store_close(s);
}

/* password_gen says which password an account has: a change moves it on,
 * a rehash of the same password does not, and a rehash applies only over
 * the hash it was made from (the first of two racing upgrades wins). */
Test(store, a_password_change_moves_the_generation_and_a_rehash_keeps_it, .init = setup, .fini = teardown)
{
    struct store *s = open_db();
    struct store_user u;
    int64_t id = add_user_phc(s, "gene", "$argon2id$a", &u);
    cr_assert_eq(u.password_gen, 1);
    cr_assert_eq(store_user_upgrade_password(s, id, "$argon2id$a", "$argon2id$a2"), 0);
    cr_assert_eq(store_user_upgrade_password(s, id, "$argon2id$a", "$argon2id$a3"), ERR_NOT_FOUND,
                 "a second upgrade of the same old hash");
    cr_assert_eq(store_user_get(s, id, &u), 0);
    cr_assert_str_eq(u.password_hash, "$argon2id$a2");
    cr_assert_eq(u.password_gen, 1);
    cr_assert_eq(store_user_set_password(s, id, "$argon2id$b"), 0);
    cr_assert_eq(store_user_get(s, id, &u), 0);
    cr_assert_str_eq(u.password_hash, "$argon2id$b");
    cr_assert_eq(u.password_gen, 2);
    cr_assert_eq(store_user_upgrade_password(s, id, "$argon2id$a2", "$argon2id$a4"), ERR_NOT_FOUND,
                 "an upgrade of a hash a change replaced");
    cr_assert_eq(store_user_upgrade_password(s, 9999, "$argon2id$b", "$argon2id$b2"), ERR_NOT_FOUND);
    cr_assert_eq(store_user_upgrade_password(s, id, "$argon2id$b", ""), ERR_INVALID);
    cr_assert_eq(store_user_get(s, id, &u), 0);
    cr_assert_str_eq(u.password_hash, "$argon2id$b");
    store_close(s);
}

struct sets {
    char seen[8][64];
    size_t n, stop_after;
};

static int collect_set(void *arg, const char *params)
{
    struct sets *c = arg;
    cr_assert_lt(c->n, 8);
    snprintf(c->seen[c->n++], sizeof(c->seen[0]), "%s", params);
    return c->stop_after && c->n == c->stop_after ? 42 : 0;
}

static bool has_set(const struct sets *c, const char *params)
{
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->seen[i], params) == 0)
            return true;
    return false;
}

/* Start-up reads which argon2 settings the stored hashes were made with:
 * each once, only of hashes with the prefix asked for. */
Test(store, the_stored_hashes_settings_are_listed_once_each, .init = setup, .fini = teardown)
{
    struct store *s = open_db();
    int64_t id;
    static const char *const phc[] = {
        "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaA", "$argon2id$v=19$m=19456,t=2,p=1$b3RoZXJzYWx0$aGFzaA",
        "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHRzYWx0$aGFzaA", "$argon2i$v=19$m=1,t=9,p=1$c2FsdA$aGFzaA",
        "$argon2id$v=19$nodollar",
    };
    char name[16];
    for (size_t i = 0; i < sizeof(phc) / sizeof(phc[0]); i++) {
        snprintf(name, sizeof(name), "u%zu", i);
        cr_assert_eq(store_user_insert(s, name, "user", phc[i], 1, &id), 0);
    }
    struct sets c = { .n = 0 };
    cr_assert_eq(store_user_param_sets(s, "$argon2id$v=19$", collect_set, &c), 0);
    cr_assert_eq(c.n, 2, "%zu sets", c.n);
    cr_assert(has_set(&c, "m=19456,t=2,p=1"));
    cr_assert(has_set(&c, "m=65536,t=3,p=4"));
    struct sets first = { .stop_after = 1 };
    cr_assert_eq(store_user_param_sets(s, "$argon2id$v=19$", collect_set, &first), 42, "the callback's stop");
    cr_assert_eq(first.n, 1);
    struct sets none = { .n = 0 };
    cr_assert_eq(store_user_param_sets(s, "$scrypt$", collect_set, &none), 0);
    cr_assert_eq(none.n, 0);
    cr_assert_eq(store_user_param_sets(s, "", collect_set, &none), ERR_INVALID);
    store_close(s);
}

/* A user whose hash has the parameters text `params`. */
static void add_hash_params(struct store *s, const char *name, const char *params)
{
    char phc[128];
    snprintf(phc, sizeof(phc), "$argon2id$v=19$%s$c2FsdHNhbHRzYWx0c2FsdA$aGFzaA", params);
    int64_t id;
    cr_assert_eq(store_user_insert(s, name, "user", phc, 1, &id), 0);
}

/* Start-up keeps, for the timing job, the stored settings that may cost
 * more than the current ones, costliest first (m x t), without the current
 * settings or ones that cannot cost more (raised since: no m or t higher, p
 * not lower), and pads from the costliest's estimate. */
Test(store, start_up_keeps_the_costlier_stored_password_settings_costliest_first, .init = setup, .fini = teardown)
{
    struct store *s = open_db();
    static const char *const sets[] = {
        "m=19456,t=2,p=1",   /* current */
        "m=19456,t=1,p=1",   /* cheaper */
        "m=9728,t=2,p=2",    /* cheaper */
        "m=19456,t=2,p=2",   /* more lanes: not costlier */
        "m=19456,t=8,p=1",   /* 400% */
        "m=65536,t=3,p=1",   /* 505% */
        "m=19456,t=3,p=1",   /* 150% */
        "m=19456,t=2,p=1,x", /* not argon2id parameters */
    };
    char name[16];
    for (size_t i = 0; i < sizeof(sets) / sizeof(sets[0]); i++) {
        snprintf(name, sizeof(name), "p%zu", i);
        add_hash_params(s, name, sets[i]);
    }
    struct app app = { .store = s, .argon2 = { 19456, 2, 1 } };
    char err[128] = "";
    cr_assert_eq(app_passwords_open(&app, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(app.n_pw_sets, 3);
    cr_assert(app.pw_sets[0].m_kib == 65536 && app.pw_sets[0].t == 3);
    cr_assert(app.pw_sets[1].m_kib == 19456 && app.pw_sets[1].t == 8);
    cr_assert(app.pw_sets[2].m_kib == 19456 && app.pw_sets[2].t == 3);
    cr_assert_eq(atomic_load(&app.fail_pct), 505);
    store_close(s);
}

/* At most APP_PW_SETS settings are kept: the costliest; none, and no
 * padding, when every hash uses the current settings. */
Test(store, start_up_keeps_at_most_the_costliest_eight_settings, .init = setup, .fini = teardown)
{
    struct store *s = open_db();
    struct app app = { .store = s, .argon2 = { 19456, 2, 1 } };
    char name[16], params[64], err[128] = "";
    add_hash_params(s, "current", "m=19456,t=2,p=1");
    cr_assert_eq(app_passwords_open(&app, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(app.n_pw_sets, 0);
    cr_assert_eq(atomic_load(&app.fail_pct), 100);
    for (unsigned t = 20; t < 30; t++) {
        snprintf(name, sizeof(name), "q%u", t);
        snprintf(params, sizeof(params), "m=19456,t=%u,p=1", t);
        add_hash_params(s, name, params);
    }
    cr_assert_eq(app_passwords_open(&app, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(app.n_pw_sets, APP_PW_SETS);
    for (size_t i = 0; i < APP_PW_SETS; i++)     /* t=29 down to t=22 */
        cr_assert_eq(app.pw_sets[i].t, 29 - i, "set %zu: t=%u", i, app.pw_sets[i].t);
    cr_assert_eq(atomic_load(&app.fail_pct), 1450, "t=29 against t=2");
    store_close(s);
}

/* The padding has a ceiling, 100x a current check, and settings a login
 * would refuse at once (past the argon2 ceilings) are not kept: they cost
 * nothing to check, so there is nothing to pad for. */
Test(store, start_up_caps_the_padding_and_leaves_out_settings_past_the_ceilings, .init = setup, .fini = teardown)
{
    struct store *s = open_db();
    add_hash_params(s, "huge", "m=4194304,t=2,p=1");     /* 215x: the cap */
    add_hash_params(s, "toolong", "m=19456,t=101,p=1");  /* t past the ceiling */
    add_hash_params(s, "toomany", "m=19456,t=8,p=17");   /* p past the ceiling */
    add_hash_params(s, "toobig", "m=4194305,t=2,p=1");   /* m past the ceiling */
    struct app app = { .store = s, .argon2 = { 19456, 2, 1 } };
    char err[128] = "";
    cr_assert_eq(app_passwords_open(&app, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(app.n_pw_sets, 1);
    cr_assert_eq(app.pw_sets[0].m_kib, CRYPTO_ARGON2_M_MAX);
    cr_assert_eq(atomic_load(&app.fail_pct), 10000, "100x a current check at most");
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

/* The quotas read one row: it must follow every change of the notes. */
Test(store, usage_follows_notes_added_changed_and_deleted, .init = setup, .fini = teardown)
{
    struct store *s = open_db();
    int64_t a = add_user(s, "alice", "user"), b = add_user(s, "bob", "user");
    struct store_usage u;
    cr_assert_eq(store_usage_get(s, a, &u), 0);
    cr_assert(u.notes == 0 && u.bytes == 0);
    int64_t n1 = add_note(s, a, "0123456789", "01234567890123456789", 1);
    cr_assert_eq(store_usage_get(s, a, &u), 0);
    cr_assert(u.notes == 1 && u.bytes == 30, "%lld notes, %lld bytes", (long long)u.notes, (long long)u.bytes);
    cr_assert_eq(store_note_update(s, n1, a, slice_str("0123456789"), slice_str("01234"), 1, 5), 0);
    int64_t n2 = add_note(s, a, "abc", "defg", 1);
    cr_assert_eq(store_usage_get(s, a, &u), 0);
    cr_assert(u.notes == 2 && u.bytes == 22, "%lld notes, %lld bytes", (long long)u.notes, (long long)u.bytes);

    /* another owner's note, or none: nothing changes */
    cr_assert_eq(store_note_update(s, n1, b, slice_str("x"), slice_str("y"), 1, 5), ERR_NOT_FOUND);
    cr_assert_eq(store_note_delete_own(s, n2, b), ERR_NOT_FOUND);
    cr_assert_eq(store_note_delete_own(s, 9999, a), ERR_NOT_FOUND);
    cr_assert_eq(store_usage_get(s, a, &u), 0);
    cr_assert(u.notes == 2 && u.bytes == 22);
    cr_assert_eq(store_usage_get(s, b, &u), 0);
    cr_assert(u.notes == 0 && u.bytes == 0);

    cr_assert_eq(store_note_delete_own(s, n1, a), 0);
    cr_assert_eq(store_usage_get(s, a, &u), 0);
    cr_assert(u.notes == 1 && u.bytes == 7, "%lld notes, %lld bytes", (long long)u.notes, (long long)u.bytes);
    store_close(s);
}

/* A login past the cap ends the account's oldest sessions, no one else's. */
Test(store, a_session_past_the_cap_ends_the_oldest, .init = setup, .fini = teardown)
{
    struct store *s = open_db();
    int64_t a = add_user(s, "alice", "user"), b = add_user(s, "bob", "user");
    uint8_t h[6][STORE_HASH_LEN];
    for (int i = 0; i < 6; i++)
        hash_of(h[i], (uint8_t)(i + 1));
    cr_assert_eq(store_session_insert(s, h[5], b, 1, 1000, 3), 0);
    for (int i = 0; i < 5; i++)
        cr_assert_eq(store_session_insert(s, h[i], a, 10 + i, 1000, 3), 0);
    struct store_session ss;
    for (int i = 0; i < 2; i++)
        cr_assert_eq(store_session_get(s, h[i], &ss), ERR_NOT_FOUND, "session %d of 5 outlived the cap of 3", i);
    for (int i = 2; i < 6; i++)
        cr_assert_eq(store_session_get(s, h[i], &ss), 0, "session %d is gone", i);
    store_close(s);
}
