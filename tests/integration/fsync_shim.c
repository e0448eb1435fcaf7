/*
 * fsync_shim.c - a failing disk for test_audit_sync, preloaded into notesd
 * (LD_PRELOAD). While the file named by $NOTESD_TEST_FSYNC_FLAG exists,
 * fsync(2) and fdatasync(2) fail with EIO, as they do when the kernel lost
 * a write-back; otherwise they are the C library's (dlsym(RTLD_NEXT)).
 * Each failed call writes "fsync-shim: EIO" to stderr, the server's log,
 * so a test can count how often the server tried.
 *
 * A slow disk too: while the file named by $NOTESD_TEST_FSYNC_HOLD exists,
 * a sync on any thread but the main one (the event loop's) waits until the
 * file is gone, and a sync on the main thread says "fsync-shim: on the
 * loop" on stderr (the loop must never sync once it serves). Each
 * syncfs(2) says "fsync-shim: syncfs".
 *
 * It runs inside the server's sandbox, after the drop to NOTES_USER: the
 * flag is looked for with access(2) (the seccomp filter allows it, and
 * Landlock does not govern it), so the flag's folder only needs to be
 * searchable by that user; the real functions are looked up in a
 * constructor, before the sandbox exists. It must never do more than that:
 * no allocation, no file opened.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef int (*sync_fn)(int);

static sync_fn real_fsync, real_fdatasync, real_syncfs;
static char flag[512], hold[512];

static sync_fn next(const char *name)
{
    void *p = dlsym(RTLD_NEXT, name);
    sync_fn f;
    memcpy(&f, &p, sizeof(f));   /* ISO C has no cast from void * to a function pointer */
    return f;
}

/* Copied: notesd overwrites parts of its environment once it has read it. */
__attribute__((constructor)) static void shim_init(void)
{
    real_fsync = next("fsync");
    real_fdatasync = next("fdatasync");
    real_syncfs = next("syncfs");
    const char *f = getenv("NOTESD_TEST_FSYNC_FLAG");
    if (f && strlen(f) < sizeof(flag))
        memcpy(flag, f, strlen(f) + 1);
    const char *h = getenv("NOTESD_TEST_FSYNC_HOLD");
    if (h && strlen(h) < sizeof(hold))
        memcpy(hold, h, strlen(h) + 1);
}

/* The slow disk: off the main thread, wait while the hold file exists; on
 * it, say so. */
static void slow(void)
{
    if (!hold[0] || access(hold, F_OK) != 0)
        return;
    if (gettid() == getpid()) {
        static const char line[] = "fsync-shim: on the loop\n";
        ssize_t n = write(STDERR_FILENO, line, sizeof(line) - 1);
        (void)n;
        return;
    }
    const struct timespec step = { 0, 5 * 1000 * 1000 };
    while (access(hold, F_OK) == 0)
        nanosleep(&step, NULL);
}

static bool failing(void)
{
    if (!flag[0] || access(flag, F_OK) != 0)
        return false;
    static const char line[] = "fsync-shim: EIO\n";
    ssize_t n = write(STDERR_FILENO, line, sizeof(line) - 1);
    (void)n;
    return true;
}

int fsync(int fd)
{
    slow();
    if (failing()) {
        errno = EIO;
        return -1;
    }
    return real_fsync ? real_fsync(fd) : (errno = ENOSYS, -1);
}

int fdatasync(int fd)
{
    slow();
    if (failing()) {
        errno = EIO;
        return -1;
    }
    return real_fdatasync ? real_fdatasync(fd) : (errno = ENOSYS, -1);
}

int syncfs(int fd)
{
    slow();
    static const char line[] = "fsync-shim: syncfs\n";
    ssize_t n = write(STDERR_FILENO, line, sizeof(line) - 1);
    (void)n;
    return real_syncfs ? real_syncfs(fd) : (errno = ENOSYS, -1);
}
