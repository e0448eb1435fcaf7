/*
 * fsync_shim.c - a failing disk for test_audit_sync, preloaded into notesd
 * (LD_PRELOAD). While the file named by $NOTESD_TEST_FSYNC_FLAG exists,
 * fsync(2) and fdatasync(2) fail with EIO, as they do when the kernel lost
 * a write-back; otherwise they are the C library's (dlsym(RTLD_NEXT)).
 * Each failed call writes "fsync-shim: EIO" to stderr, the server's log,
 * so a test can count how often the server tried.
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
#include <unistd.h>

typedef int (*sync_fn)(int);

static sync_fn real_fsync, real_fdatasync;
static char flag[512];

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
    const char *f = getenv("NOTESD_TEST_FSYNC_FLAG");
    if (f && strlen(f) < sizeof(flag))
        memcpy(flag, f, strlen(f) + 1);
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
    if (failing()) {
        errno = EIO;
        return -1;
    }
    return real_fsync ? real_fsync(fd) : (errno = ENOSYS, -1);
}

int fdatasync(int fd)
{
    if (failing()) {
        errno = EIO;
        return -1;
    }
    return real_fdatasync ? real_fdatasync(fd) : (errno = ENOSYS, -1);
}
