/*
 * sandbox_seccomp.c - the seccomp-bpf allow-list of the serving process
 * (libseccomp, linked statically).
 *
 * One table lists every system call the running server makes, grouped by
 * who needs it; anything else kills the whole process (SIGSYS). The filter
 * is installed on every thread at once (TSYNC) and inherited by the threads
 * libuv's pool starts later. Where an argument narrows a call cheaply, it
 * is narrowed: no executable memory, no new socket at all (the readiness
 * datagram's socket is made before), clone only for threads (never a new
 * process), signals, limits and priorities only to ourselves.
 *
 * How the list was found: the whole test suite (unit and integration,
 * which start the real binary) runs with the filter on; a missing call
 * shows up as a server killed by SIGSYS.
 */
#include "sandbox.h"
#include "err.h"

#include <errno.h>
#include <sched.h>
#include <seccomp.h>
#include <stdio.h>
#include <string.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

/* Allowed without looking at arguments. */
static const int plain[] = {
    /* The event loop and its sockets (libuv). */
    SCMP_SYS(epoll_wait), SCMP_SYS(epoll_pwait), SCMP_SYS(epoll_ctl), SCMP_SYS(accept4),
    SCMP_SYS(accept), SCMP_SYS(read), SCMP_SYS(readv), SCMP_SYS(write), SCMP_SYS(writev),
    SCMP_SYS(close), SCMP_SYS(shutdown), SCMP_SYS(getsockname), SCMP_SYS(getpeername),
    SCMP_SYS(setsockopt), SCMP_SYS(getsockopt), SCMP_SYS(sendto), SCMP_SYS(sendmsg),
    SCMP_SYS(recvfrom), SCMP_SYS(recvmsg), SCMP_SYS(eventfd2), SCMP_SYS(pipe2), SCMP_SYS(fcntl),
    /* Signals (uv_signal: a handler that writes to a pipe; SIGTERM stops us). */
    SCMP_SYS(rt_sigaction), SCMP_SYS(rt_sigprocmask), SCMP_SYS(rt_sigreturn), SCMP_SYS(sigaltstack),
    SCMP_SYS(restart_syscall),
    /* Memory (malloc, thread stacks; SQLite maps its -shm file). */
    SCMP_SYS(brk), SCMP_SYS(munmap), SCMP_SYS(mremap), SCMP_SYS(madvise),
    /* Threads (libuv's pool, argon2 lanes) and their synchronisation. */
    SCMP_SYS(futex), SCMP_SYS(set_robust_list), SCMP_SYS(rseq), SCMP_SYS(sched_yield),
    SCMP_SYS(sched_getaffinity), SCMP_SYS(getrlimit), SCMP_SYS(exit), SCMP_SYS(exit_group),
    /* Files: SQLite (database, -wal, -shm), the audit folder. Where they
     * may be is Landlock's job (sandbox_landlock.c). */
    SCMP_SYS(openat), SCMP_SYS(pread64), SCMP_SYS(pwrite64), SCMP_SYS(lseek), SCMP_SYS(fsync),
    SCMP_SYS(fdatasync), SCMP_SYS(syncfs), SCMP_SYS(ftruncate), SCMP_SYS(fstat), SCMP_SYS(newfstatat),
    SCMP_SYS(statx), SCMP_SYS(stat), SCMP_SYS(lstat), SCMP_SYS(access), SCMP_SYS(faccessat),
    SCMP_SYS(faccessat2), SCMP_SYS(getcwd), SCMP_SYS(readlink), SCMP_SYS(readlinkat),
    SCMP_SYS(unlink), SCMP_SYS(unlinkat), SCMP_SYS(rename), SCMP_SYS(renameat),
    SCMP_SYS(renameat2), SCMP_SYS(mkdir), SCMP_SYS(mkdirat), SCMP_SYS(chmod), SCMP_SYS(fchmod),
    SCMP_SYS(fchmodat), SCMP_SYS(flock), SCMP_SYS(getdents64),
    /* Time, randomness, identity. */
    SCMP_SYS(clock_gettime), SCMP_SYS(clock_getres), SCMP_SYS(gettimeofday), SCMP_SYS(time),
    SCMP_SYS(nanosleep), SCMP_SYS(clock_nanosleep), SCMP_SYS(getrandom), SCMP_SYS(getpid),
    SCMP_SYS(gettid), SCMP_SYS(getuid), SCMP_SYS(geteuid), SCMP_SYS(getgid), SCMP_SYS(getegid),
    /* glibc's qsort() reads the memory size once it sorts 60 or more
     * entries of our size (the audit trail's file list): read-only. */
    SCMP_SYS(sysinfo),
};

#define N_PLAIN (sizeof(plain) / sizeof(plain[0]))

#ifdef NOTESD_SANITIZER_BUILD
/* Test builds only (meson.build): LeakSanitizer checks for leaks at exit
 * from a tracer task that stops every thread with ptrace. A release build
 * never allows these. */
static const int sanitizer_extra[] = {
    SCMP_SYS(ptrace), SCMP_SYS(wait4), SCMP_SYS(waitid), SCMP_SYS(prctl), SCMP_SYS(getppid), SCMP_SYS(open),
    SCMP_SYS(getdents),
};
#define CLONE_REQUIRED CLONE_VM      /* the tracer shares memory, no CLONE_THREAD */
#else
#define CLONE_REQUIRED CLONE_THREAD
#endif
#define N_NARROWED 9   /* mmap, mprotect, clone, ioctl, tgkill, kill, prlimit64, get/setpriority */

const char *sandbox_seccomp_version(void)
{
    static char v[32];
    const struct scmp_version *sv = seccomp_version();
    if (!sv)
        return "?";
    snprintf(v, sizeof(v), "%u.%u.%u", sv->major, sv->minor, sv->micro);
    return v;
}

size_t sandbox_seccomp_allowed(void)
{
    return N_PLAIN + N_NARROWED;
}

/* SCMP_Ax() leaves datum_b to zero-initialisation, which clang's
 * -Wmissing-field-initializers refuses; these spell every field. */
static struct scmp_arg_cmp arg_eq(unsigned arg, scmp_datum_t v)
{
    return (struct scmp_arg_cmp){ .arg = arg, .op = SCMP_CMP_EQ, .datum_a = v, .datum_b = 0 };
}

static struct scmp_arg_cmp arg_masked(unsigned arg, scmp_datum_t mask, scmp_datum_t v)
{
    return (struct scmp_arg_cmp){ .arg = arg, .op = SCMP_CMP_MASKED_EQ, .datum_a = mask, .datum_b = v };
}

static int allow(scmp_filter_ctx ctx, int nr, unsigned n, const struct scmp_arg_cmp *cmp)
{
    return seccomp_rule_add_array(ctx, SCMP_ACT_ALLOW, nr, n, cmp);
}

/* Calls allowed only with some arguments. */
static int add_narrowed(scmp_filter_ctx ctx)
{
    const pid_t self = getpid();
    /* W^X: nothing may become executable once we serve. */
    struct scmp_arg_cmp no_exec = arg_masked(2, PROT_EXEC, 0);
    int rc = allow(ctx, SCMP_SYS(mmap), 1, &no_exec);
    rc = rc ? rc : allow(ctx, SCMP_SYS(mprotect), 1, &no_exec);
    /* No new socket of any kind: the listeners are bound and the service
     * manager's socket is made before the filter goes on (server_life.c). */
    /* Threads only: a new process (fork) needs clone without CLONE_THREAD. */
    struct scmp_arg_cmp thread = arg_masked(0, CLONE_REQUIRED, CLONE_REQUIRED);
    rc = rc ? rc : allow(ctx, SCMP_SYS(clone), 1, &thread);
    /* clone3 passes its flags in memory, where a filter cannot look: answer
     * ENOSYS, and glibc falls back to clone, which is checked above. */
    rc = rc ? rc : seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
    /* libuv sets descriptors non-blocking and close-on-exec with ioctl;
     * a closing connection asks its socket what input is unread (FIONREAD)
     * and what output is not acknowledged (SIOCOUTQ), server.c: linger(). */
    struct scmp_arg_cmp fionbio = arg_eq(1, FIONBIO), fioclex = arg_eq(1, FIOCLEX),
                        inq = arg_eq(1, FIONREAD), outq = arg_eq(1, SIOCOUTQ);
    rc = rc ? rc : allow(ctx, SCMP_SYS(ioctl), 1, &fionbio);
    rc = rc ? rc : allow(ctx, SCMP_SYS(ioctl), 1, &fioclex);
    rc = rc ? rc : allow(ctx, SCMP_SYS(ioctl), 1, &inq);
    rc = rc ? rc : allow(ctx, SCMP_SYS(ioctl), 1, &outq);
    /* abort() and raise() signal this process only. */
    struct scmp_arg_cmp us = arg_eq(0, (scmp_datum_t)self);
    rc = rc ? rc : allow(ctx, SCMP_SYS(tgkill), 1, &us);
    rc = rc ? rc : allow(ctx, SCMP_SYS(kill), 1, &us);
    /* Limits read, never set, and only our own (glibc's getrlimit is
     * prlimit64 on pid 0 without a new limit): a compromised server must not
     * lift the soft limits its unit gave it, nor touch another process's.
     * Priority (password jobs read and lower their own thread's,
     * crypto_password.c) of the calling thread only: not another process's,
     * nor a whole user's. */
    struct scmp_arg_cmp own_read[2] = { arg_eq(0, 0), arg_eq(2, 0) };
    rc = rc ? rc : allow(ctx, SCMP_SYS(prlimit64), 2, own_read);
    struct scmp_arg_cmp prio[2] = { arg_eq(0, PRIO_PROCESS), arg_eq(1, 0) };
    rc = rc ? rc : allow(ctx, SCMP_SYS(getpriority), 2, prio);
    rc = rc ? rc : allow(ctx, SCMP_SYS(setpriority), 2, prio);
    return rc;
}

int sandbox_seccomp_install(char *err, size_t errlen)
{
    int rc = sandbox_no_new_privs(err, errlen);
    if (rc)
        return rc;
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
    if (!ctx) {
        snprintf(err, errlen, "seccomp: cannot create the filter");
        return ERR_INTERNAL;
    }
    int r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
    for (size_t i = 0; r == 0 && i < N_PLAIN; i++)
        r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, plain[i], 0);
    if (r == 0)
        r = add_narrowed(ctx);
#ifdef NOTESD_SANITIZER_BUILD
    for (size_t i = 0; r == 0 && i < sizeof(sanitizer_extra) / sizeof(sanitizer_extra[0]); i++)
        r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, sanitizer_extra[i], 0);
#endif
    if (r == 0)
        r = seccomp_load(ctx);
    seccomp_release(ctx);
    if (r != 0) {
        snprintf(err, errlen, "seccomp: cannot install the filter: %s", strerror(-r));
        return ERR_INTERNAL;
    }
    return 0;
}
