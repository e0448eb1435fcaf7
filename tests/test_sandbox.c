/*
 * Unit tests for sandbox*.c. Each test confines a forked child with the very
 * functions the server uses (sandbox_seccomp_install, sandbox_landlock_apply,
 * sandbox_enter) and watches what the kernel lets it do: a forbidden call
 * must kill the child with SIGSYS, a file outside the state folders must be
 * refused. No test-only path exists in the server itself.
 */
#include <criterion/criterion.h>
#include <seccomp.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "err.h"
#include "sandbox.h"

extern char **environ;

/* Run `body` in a child; returns its wait status. The child reports
 * progress through `mark` so a test can tell "killed at the forbidden call"
 * from "killed before it". */
static int marks[2];

static void mark(char c)
{
    cr_assert_eq(write(marks[1], &c, 1), 1);
}

static int in_child(void (*body)(void), char *seen, size_t seen_len)
{
    cr_assert_eq(pipe(marks), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        close(marks[0]);
        body();
        _exit(0);
    }
    close(marks[1]);
    size_t n = 0;
    ssize_t r;
    while (n < seen_len - 1 && (r = read(marks[0], seen + n, seen_len - 1 - n)) > 0)
        n += (size_t)r;
    seen[n] = 0;
    close(marks[0]);
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    return st;
}

static void filtered(void)
{
    char err[256];
    if (sandbox_seccomp_install(err, sizeof(err)) != 0)
        _exit(2);
    mark('F');
}

static void assert_killed_by_sigsys(int st, const char *seen, const char *want_seen)
{
    cr_assert_str_eq(seen, want_seen, "the child did not get as far as expected");
    cr_assert(WIFSIGNALED(st), "the child was not killed (exit %d)", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    cr_assert_eq(WTERMSIG(st), SIGSYS, "killed by signal %d, not SIGSYS", WTERMSIG(st));
}

/* ---- seccomp ------------------------------------------------------------- */

static void execve_after_filter(void)
{
    filtered();
    char *argv[] = { "/bin/true", NULL };
    execve("/bin/true", argv, environ);
    mark('E');   /* execve returned: not killed */
}

Test(sandbox, seccomp_kills_the_process_on_execve)
{
    char seen[8];
    int st = in_child(execve_after_filter, seen, sizeof(seen));
    assert_killed_by_sigsys(st, seen, "F");
}

static void fork_after_filter(void)
{
    filtered();
    pid_t p = fork();
    if (p == 0)
        _exit(0);
    mark('E');
}

Test(sandbox, seccomp_kills_the_process_on_fork)
{
    char seen[8];
    int st = in_child(fork_after_filter, seen, sizeof(seen));
    assert_killed_by_sigsys(st, seen, "F");
}

static void exec_memory_after_filter(void)
{
    filtered();
    void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        _exit(3);
    mark('M');   /* plain memory still works */
    mprotect(p, 4096, PROT_READ | PROT_EXEC);
    mark('E');
}

Test(sandbox, seccomp_kills_the_process_on_executable_memory)
{
    char seen[8];
    int st = in_child(exec_memory_after_filter, seen, sizeof(seen));
    assert_killed_by_sigsys(st, seen, "FM");
}

static void inet_socket_after_filter(void)
{
    filtered();
    socket(AF_INET, SOCK_STREAM, 0);
    mark('E');
}

/* Not even an AF_UNIX socket: the service manager's socket is made before
 * the filter goes on, so a compromised process cannot make one to send
 * datagrams (or descriptors) to any local socket it can reach. */
static void unix_socket_after_filter(void)
{
    filtered();
    socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    mark('U');
}

Test(sandbox, seccomp_kills_the_process_on_a_new_unix_socket)
{
    char seen[8];
    int st = in_child(unix_socket_after_filter, seen, sizeof(seen));
    assert_killed_by_sigsys(st, seen, "F");
}

Test(sandbox, seccomp_kills_the_process_on_a_new_inet_socket)
{
    char seen[8];
    int st = in_child(inet_socket_after_filter, seen, sizeof(seen));
    assert_killed_by_sigsys(st, seen, "F");
}

/* ioctl only with the requests the server makes: libuv's FIONBIO and
 * FIOCLEX, and a closing connection's FIONREAD and SIOCOUTQ (server.c:
 * linger()); any other (here TIOCGWINSZ) kills. */
static void ioctls_after_filter(void)
{
    int pair[2], n = 0;
    struct winsize w;
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, pair) != 0)
        _exit(3);
    filtered();
    (void)ioctl(pair[0], FIONREAD, &n);
    (void)ioctl(pair[0], SIOCOUTQ, &n);
    mark('A');
    (void)ioctl(pair[0], TIOCGWINSZ, &w);
    mark('X');
}

Test(sandbox, seccomp_allows_only_the_ioctls_the_server_makes)
{
    char seen[8];
    int st = in_child(ioctls_after_filter, seen, sizeof(seen));
    assert_killed_by_sigsys(st, seen, "FA");
}

/* Limits and priorities: of this process (pid 0, the calling thread) only,
 * so a compromised server cannot raise another process's limits (within
 * the hard limit) or renice it. */
static pid_t parent;

static void limit_of_another_process_after_filter(void)
{
    filtered();
    struct rlimit r;
    errno = 0;
    int nice = getpriority(PRIO_PROCESS, 0);
    if (errno != 0 || prlimit(0, RLIMIT_NOFILE, NULL, &r) != 0 || setpriority(PRIO_PROCESS, 0, nice + 1) != 0)
        _exit(3);
    mark('S');    /* its own still work */
    prlimit(parent, RLIMIT_NOFILE, NULL, &r);
    mark('E');
}

Test(sandbox, seccomp_kills_the_process_on_a_limit_of_another_process)
{
    char seen[8];
    parent = getpid();
    int st = in_child(limit_of_another_process_after_filter, seen, sizeof(seen));
    assert_killed_by_sigsys(st, seen, "FS");
}

/* Its own limits it may read, never set: a compromised server must not
 * lift the soft limits (files, size, descriptors) the unit gave it. */
static void own_limit_set_after_filter(void)
{
    filtered();
    struct rlimit r;
    if (getrlimit(RLIMIT_NOFILE, &r) != 0)
        _exit(3);
    mark('S');
    setrlimit(RLIMIT_NOFILE, &r);             /* even to the same values */
    mark('E');
}

Test(sandbox, seccomp_kills_the_process_on_setting_its_own_limit)
{
    char seen[8];
    int st = in_child(own_limit_set_after_filter, seen, sizeof(seen));
    assert_killed_by_sigsys(st, seen, "FS");
}

static void priority_of_another_process_after_filter(void)
{
    filtered();
    mark('S');
    setpriority(PRIO_PROCESS, (id_t)parent, 19);
    mark('E');
}

Test(sandbox, seccomp_kills_the_process_on_a_priority_of_another_process)
{
    char seen[8];
    parent = getpid();
    int st = in_child(priority_of_another_process_after_filter, seen, sizeof(seen));
    assert_killed_by_sigsys(st, seen, "FS");
}

/* Reading a priority too: only the calling thread's (password jobs read
 * theirs to lower it ten steps), not another process's. */
static void priority_read_of_another_process_after_filter(void)
{
    filtered();
    mark('S');
    (void)getpriority(PRIO_PROCESS, (id_t)parent);
    mark('E');
}

Test(sandbox, seccomp_kills_the_process_on_reading_another_process_priority)
{
    char seen[8];
    parent = getpid();
    int st = in_child(priority_read_of_another_process_after_filter, seen, sizeof(seen));
    assert_killed_by_sigsys(st, seen, "FS");
}

static void priority_of_a_user_after_filter(void)
{
    filtered();
    mark('S');
    setpriority(PRIO_USER, 0, 19);
    mark('E');
}

Test(sandbox, seccomp_kills_the_process_on_a_priority_of_a_user)
{
    char seen[8];
    int st = in_child(priority_of_a_user_after_filter, seen, sizeof(seen));
    assert_killed_by_sigsys(st, seen, "FS");
}

static void *thread_body(void *arg)
{
    return arg;
}

static void threads_after_filter(void)
{
    filtered();
    pthread_t t;
    void *out = NULL;
    /* glibc tries clone3 (answered ENOSYS), then clone with CLONE_THREAD. */
    if (pthread_create(&t, NULL, thread_body, (void *)"x") != 0 || pthread_join(t, &out) != 0 || !out)
        _exit(3);
    mark('T');
}

Test(sandbox, seccomp_still_allows_threads)
{
    char seen[8];
    int st = in_child(threads_after_filter, seen, sizeof(seen));
    cr_assert_str_eq(seen, "FT");
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %d", st);
}

Test(sandbox, seccomp_allow_list_is_short)
{
    size_t n = sandbox_seccomp_allowed();
    cr_assert_gt(n, 50);
    cr_assert_lt(n, 120, "the allow-list grew to %zu calls", n);
}

/* ---- Landlock ------------------------------------------------------------ */

static char folder[64];
static struct config cfg;
static char db_path[128], audit_dir[128];

static void make_folders(void)
{
    snprintf(folder, sizeof(folder), "/tmp/notesd-test-sandbox-XXXXXX");
    cr_assert_not_null(mkdtemp(folder));
    snprintf(db_path, sizeof(db_path), "%s/notes.db", folder);
    snprintf(audit_dir, sizeof(audit_dir), "%s/audit", folder);
    cr_assert_eq(mkdir(audit_dir, 0700), 0);
    memset(&cfg, 0, sizeof(cfg));
    cfg.db_path = db_path;
    cfg.audit_dir = audit_dir;
    cfg.run_user = "";
    cfg.seccomp_on = cfg.landlock_on = true;
}

static void remove_folders(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", folder);
    cr_assert_eq(system(cmd), 0);
}

static void step(bool ok, char c)
{
    if (!ok)
        _exit(10 + (c - 'a'));
    mark(c);
}

static void landlocked(void)
{
    char err[256], path[192];
    /* Outside the folders works before, and not after. */
    int fd = open("/etc/passwd", O_RDONLY | O_CLOEXEC);
    step(fd >= 0, 'a');
    close(fd);
    step(sandbox_no_new_privs(err, sizeof(err)) == 0 && sandbox_landlock_apply(&cfg, err, sizeof(err)) == 0, 'b');
    fd = open("/etc/passwd", O_RDONLY | O_CLOEXEC);
#ifdef NOTESD_SANITIZER_BUILD
    step(fd >= 0, 'c');   /* sanitizer builds may read everywhere (sandbox_landlock.c) */
#else
    step(fd < 0 && errno == EACCES, 'c');
#endif
    step(open("/tmp/notesd-escaped", O_WRONLY | O_CREAT | O_CLOEXEC, 0600) < 0 && errno == EACCES, 'd');
    /* The database folder: create, write, read, remove. */
    fd = open(db_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    step(fd >= 0 && write(fd, "x", 1) == 1, 'e');
    close(fd);
    snprintf(path, sizeof(path), "%s-wal", db_path);
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    step(fd >= 0 && unlink(path) == 0, 'f');
    close(fd);
    /* The audit folder: create, rename (rotation), list, remove. */
    char rotated[192];
    snprintf(path, sizeof(path), "%s/audit.log", audit_dir);
    snprintf(rotated, sizeof(rotated), "%s/audit-1.log", audit_dir);
    fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    step(fd >= 0 && rename(path, rotated) == 0 && unlink(rotated) == 0, 'g');
    close(fd);
    fd = open(audit_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    step(fd >= 0, 'h');
    close(fd);
    /* Executing anything is refused too. */
    char *argv[] = { "/bin/true", NULL };
    execve("/bin/true", argv, environ);
    step(errno == EACCES, 'i');
}

Test(sandbox, landlock_confines_files_to_the_state_folders, .init = make_folders, .fini = remove_folders)
{
    if (sandbox_landlock_abi() < 1)
        cr_skip("this kernel has no Landlock");
    char seen[16];
    int st = in_child(landlocked, seen, sizeof(seen));
    cr_assert(WIFEXITED(st), "killed by signal %d", WTERMSIG(st));
    cr_assert_eq(WEXITSTATUS(st), 0, "step '%c' failed (got as far as \"%s\")", 'a' + WEXITSTATUS(st) - 10, seen);
    cr_assert_str_eq(seen, "abcdefghi");
}

/* ABI 6 and later: no signal to, and no connection to an abstract unix
 * socket of, a process outside the sandbox (seccomp refuses new sockets
 * and foreign signals too; this holds with NOTES_SECCOMP=off as well). */
static char abstract_name[64];

static void scoped(void)
{
    char err[256];
    step(kill(parent, 0) == 0, 'a');             /* before: allowed */
    step(sandbox_no_new_privs(err, sizeof(err)) == 0 && sandbox_landlock_apply(&cfg, err, sizeof(err)) == 0, 'b');
    step(kill(parent, 0) != 0 && errno == EPERM, 'c');
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    size_t n = strlen(abstract_name + 1) + 1;
    memcpy(sa.sun_path, abstract_name, n);
    step(fd >= 0 && connect(fd, (struct sockaddr *)&sa, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n)) != 0 &&
             errno == EPERM, 'd');
    close(fd);
}

Test(sandbox, landlock_scopes_signals_and_abstract_sockets, .init = make_folders, .fini = remove_folders)
{
    if (sandbox_landlock_abi() < 6)
        cr_skip("this kernel's Landlock has no scopes (ABI < 6)");
    parent = getpid();
    /* A listener outside the sandbox, on an abstract name (leading NUL). */
    snprintf(abstract_name + 1, sizeof(abstract_name) - 1, "notesd-test-%d", (int)parent);
    size_t n = strlen(abstract_name + 1) + 1;
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    memcpy(sa.sun_path, abstract_name, n);
    int l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(l, 0);
    cr_assert_eq(bind(l, (struct sockaddr *)&sa, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n)), 0);
    cr_assert_eq(listen(l, 1), 0);
    char seen[16];
    int st = in_child(scoped, seen, sizeof(seen));
    close(l);
    cr_assert(WIFEXITED(st), "killed by signal %d", WTERMSIG(st));
    cr_assert_eq(WEXITSTATUS(st), 0, "step '%c' failed (got as far as \"%s\")", 'a' + WEXITSTATUS(st) - 10, seen);
    cr_assert_str_eq(seen, "abcd");
}

/* A container or unit may refuse Landlock's system calls with EPERM (its
 * own seccomp filter): that is not "this kernel has no Landlock", and the
 * server must not go on unconfined. Only ENOSYS and EOPNOTSUPP (not built
 * in, or turned off at boot) mean there is nothing to apply. */
static void landlock_refused_by_a_filter(void)
{
    char err[256];
    scmp_filter_ctx f = seccomp_init(SCMP_ACT_ALLOW);
    step(f && seccomp_rule_add(f, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(landlock_create_ruleset), 0) == 0 &&
             seccomp_load(f) == 0, 'a');
    seccomp_release(f);
    step(sandbox_no_new_privs(err, sizeof(err)) == 0, 'b');
    int rc = sandbox_landlock_apply(&cfg, err, sizeof(err));
    step(rc < 0 && strstr(err, "Landlock") != NULL, 'c');
}

Test(sandbox, landlock_refused_with_eperm_fails_closed, .init = make_folders, .fini = remove_folders)
{
    if (sandbox_landlock_abi() < 1)
        cr_skip("this kernel has no Landlock");
    char seen[16];
    int st = in_child(landlock_refused_by_a_filter, seen, sizeof(seen));
    cr_assert(WIFEXITED(st), "killed by signal %d", WTERMSIG(st));
    cr_assert_eq(WEXITSTATUS(st), 0, "step '%c' failed (got as far as \"%s\")", 'a' + WEXITSTATUS(st) - 10, seen);
    cr_assert_str_eq(seen, "abc");
}

/* ---- the whole, as root --------------------------------------------------- */

static int enter_rc;
static char enter_err[512];

static void enter_and_report(void)
{
    char err[512];
    int rc = sandbox_enter(&cfg, err, sizeof(err));
    /* Report through the pipe: the filter allows write. */
    char msg[600];
    int n = snprintf(msg, sizeof(msg), "%d %u %u|%s", rc, (unsigned)getuid(), (unsigned)getgid(), rc ? err : "");
    if (write(marks[1], msg, (size_t)n) != n)
        _exit(3);
}

static int enter_in_child(char *out, size_t outlen)
{
    int st = in_child(enter_and_report, out, outlen);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the child died: status %d", st);
    char *bar = strchr(out, '|');
    cr_assert_not_null(bar);
    snprintf(enter_err, sizeof(enter_err), "%s", bar + 1);
    enter_rc = atoi(out);
    return enter_rc;
}

static void need_root(void)
{
    if (geteuid() != 0)
        cr_skip("needs root (CI runs as root)");
}

Test(sandbox, root_drops_to_nobody_and_hands_over_the_folders, .init = make_folders, .fini = remove_folders)
{
    need_root();
    struct passwd *pw = getpwnam("nobody");
    cr_assert_not_null(pw);
    cfg.run_user = "nobody";
    int fd = open(db_path, O_RDWR | O_CREAT, 0600);   /* made by root, as at a first start */
    cr_assert_geq(fd, 0);
    close(fd);
    char out[700];
    cr_assert_eq(enter_in_child(out, sizeof(out)), 0, "%s", enter_err);
    unsigned uid, gid;
    cr_assert_eq(sscanf(out, "%*d %u %u", &uid, &gid), 2);
    cr_assert_eq(uid, pw->pw_uid);
    cr_assert_eq(gid, pw->pw_gid);
    struct stat st;
    cr_assert_eq(stat(db_path, &st), 0);
    cr_assert_eq(st.st_uid, pw->pw_uid, "the database is still root's");
    cr_assert_eq(stat(folder, &st), 0);
    cr_assert_eq(st.st_uid, pw->pw_uid, "the database folder is still root's");
    cr_assert_eq(stat(audit_dir, &st), 0);
    cr_assert_eq(st.st_uid, pw->pw_uid, "the audit folder is still root's");
}

Test(sandbox, root_refuses_a_folder_shared_with_other_files, .init = make_folders, .fini = remove_folders)
{
    need_root();
    char other[192];
    snprintf(other, sizeof(other), "%s/.bashrc", folder);
    int fd = open(other, O_WRONLY | O_CREAT, 0600);
    cr_assert_geq(fd, 0);
    close(fd);
    char out[700];
    cr_assert_eq(enter_in_child(out, sizeof(out)), ERR_CONFIG);
    cr_assert(strstr(enter_err, "NOTES_DB") && strstr(enter_err, ".bashrc"), "%s", enter_err);
    struct stat st;
    cr_assert_eq(stat(folder, &st), 0);
    cr_assert_eq(st.st_uid, 0, "a refused folder must stay as it was");
}

Test(sandbox, root_refuses_a_folder_writable_by_everyone, .init = make_folders, .fini = remove_folders)
{
    need_root();
    cr_assert_eq(chmod(audit_dir, 0777), 0);
    char out[700];
    cr_assert_eq(enter_in_child(out, sizeof(out)), ERR_CONFIG);
    cr_assert(strstr(enter_err, "NOTES_AUDIT_DIR") && strstr(enter_err, "everyone"), "%s", enter_err);
}

Test(sandbox, root_refuses_to_run_as_root)
{
    need_root();
    struct config c = { .run_user = "root" };
    struct sandbox_user u;
    char err[256];
    cr_assert_eq(sandbox_resolve_user(&c, &u, err, sizeof(err)), ERR_CONFIG);
    cr_assert(strstr(err, "NOTES_USER"), "%s", err);
}

Test(sandbox, unknown_user_is_refused)
{
    struct config c = { .run_user = "no-such-user-notesd" };
    struct sandbox_user u;
    char err[256];
    cr_assert_eq(sandbox_resolve_user(&c, &u, err, sizeof(err)), ERR_CONFIG);
    cr_assert(strstr(err, "no such user"), "%s", err);
}
