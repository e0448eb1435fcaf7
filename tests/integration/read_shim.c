/*
 * read_shim.c - a disk that stalls on one file, for test_audit_retention,
 * preloaded into notesd (LD_PRELOAD). While the file named by
 * $NOTESD_TEST_READ_FLAG exists, read(2) of a regular file exactly
 * $NOTESD_TEST_READ_SIZE bytes long waits until the flag is gone; other
 * reads (sockets, pread(2) of a file's ends) are the C library's
 * (dlsym(RTLD_NEXT)). A held read says "read-shim: holding" on stderr, the
 * server's log, when it starts to wait, so a test knows the read began.
 * With $NOTESD_TEST_PREAD_LOG set, every pread(2) of that file (the reads
 * of a file's end) says "read-shim: pread", so a test can count them.
 *
 * The file is picked by its size, not its name: the sandbox gives no
 * /proc/self/fd to read a name back from, and a size the test reads off
 * the file before the server starts is as good a marker. It runs inside
 * the server's sandbox, after the drop to NOTES_USER, with only what the
 * seccomp filter allows anyway: fstat, access (Landlock does not govern
 * it), nanosleep and write to stderr. The real function is looked up in a
 * constructor, before the sandbox exists. No allocation, no file opened.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

typedef ssize_t (*read_fn)(int, void *, size_t);
typedef ssize_t (*pread_fn)(int, void *, size_t, off_t);

static read_fn real_read;
static pread_fn real_pread64;
static int log_preads;
static char flag[512];
static long long hold_size = -1;

/* Copied: notesd overwrites parts of its environment once it has read it. */
__attribute__((constructor)) static void shim_init(void)
{
    void *p = dlsym(RTLD_NEXT, "read");
    memcpy(&real_read, &p, sizeof(real_read));   /* ISO C: no cast from void * to a function */
    p = dlsym(RTLD_NEXT, "pread64");
    memcpy(&real_pread64, &p, sizeof(real_pread64));
    log_preads = getenv("NOTESD_TEST_PREAD_LOG") != NULL;
    const char *f = getenv("NOTESD_TEST_READ_FLAG");
    const char *n = getenv("NOTESD_TEST_READ_SIZE");
    if (f && strlen(f) < sizeof(flag))
        memcpy(flag, f, strlen(f) + 1);
    if (n && *n)
        hold_size = strtoll(n, NULL, 10);
}

static void say(const char *line)
{
    ssize_t w = write(STDERR_FILENO, line, strlen(line));
    (void)w;
}

ssize_t read(int fd, void *buf, size_t n)
{
    struct stat st;
    int saved = errno;
    if (hold_size > 0 && flag[0] && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == hold_size &&
        access(flag, F_OK) == 0) {
        say("read-shim: holding\n");
        while (access(flag, F_OK) == 0)
            nanosleep(&(struct timespec){ 0, 2000000 }, NULL);
        say("read-shim: released\n");
    }
    errno = saved;
    if (!real_read) {
        errno = ENOSYS;
        return -1;
    }
    return real_read(fd, buf, n);
}

/* Built with _FILE_OFFSET_BITS=64, as notesd is, pread() is the symbol
 * pread64, which notesd calls. */
ssize_t pread(int fd, void *buf, size_t n, off_t off)
{
    struct stat st;
    int saved = errno;
    if (log_preads && hold_size > 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == hold_size)
        say("read-shim: pread\n");
    errno = saved;
    if (!real_pread64) {
        errno = ENOSYS;
        return -1;
    }
    return real_pread64(fd, buf, n, off);
}
