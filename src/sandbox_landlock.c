/*
 * sandbox_landlock.c - Landlock rules for the serving process, through the
 * raw system calls (no library).
 *
 * After start-up the server opens files in two places only: the database
 * folder (the checkpoint job reopens the database; SQLite makes -wal and
 * -shm files) and the audit folder (new files, renames, deletions by
 * retention). Both get the file rights; everything else on the file system
 * is denied, execution included. The certificate and key are read once at
 * start-up and never again, so they get no rule at all. On ABI 4 and later
 * TCP bind and connect are denied too: the listeners are bound already, and
 * the server never dials out. On ABI 6 and later it can neither signal a
 * process outside its sandbox nor connect to one's abstract unix socket.
 *
 * The ruleset handles every right the running kernel knows (so a newer
 * right is not silently left open) and grants only what the folders need.
 */
#include "sandbox.h"
#include "err.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stddef.h>
#include <linux/landlock.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Rights newer than the Debian 12 kernel headers (linux/landlock.h). */
#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14)   /* ABI 3 */
#endif
#ifndef LANDLOCK_ACCESS_FS_IOCTL_DEV
#define LANDLOCK_ACCESS_FS_IOCTL_DEV (1ULL << 15)  /* ABI 5 */
#endif
#define NET_BIND_TCP (1ULL << 0)                   /* ABI 4 */
#define NET_CONNECT_TCP (1ULL << 1)
#define SCOPE_ABSTRACT_UNIX_SOCKET (1ULL << 0)     /* ABI 6 */
#define SCOPE_SIGNAL (1ULL << 1)

/* struct landlock_ruleset_attr as of ABI 6; the size passed tells the
 * kernel which fields we know. */
struct ruleset_attr {
    uint64_t handled_access_fs;
    /* Set positionally below and read only by the kernel: handling TCP
     * bind and connect with no net rule denies both (ABI 4 and later);
     * the scopes deny signals to, and connections to abstract unix sockets
     * of, processes outside the sandbox (ABI 6 and later). */
    // cppcheck-suppress unusedStructMember
    uint64_t handled_access_net;
    // cppcheck-suppress unusedStructMember
    uint64_t scoped;
};

#define FS_ABI1 ((LANDLOCK_ACCESS_FS_MAKE_SYM << 1) - 1)   /* bits 0..12 */

/* What a state folder needs: its files read, written, truncated, made,
 * renamed within it and removed, and the folder listed (retention). */
#define FOLDER_RIGHTS (LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_WRITE_FILE | \
                       LANDLOCK_ACCESS_FS_READ_DIR | LANDLOCK_ACCESS_FS_REMOVE_FILE | \
                       LANDLOCK_ACCESS_FS_MAKE_REG | LANDLOCK_ACCESS_FS_TRUNCATE)

int sandbox_landlock_abi(void)
{
    long v = syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
    if (v > 0)
        return (int)v;
    /* Not built in, or turned off at boot: nothing to apply. Anything else
     * (EPERM from a container's own filter) is a refusal, not an absence. */
    return errno == ENOSYS || errno == EOPNOTSUPP ? 0 : ERR_INTERNAL;
}

static uint64_t handled_fs(int abi)
{
    uint64_t fs = FS_ABI1;
    if (abi >= 2)
        fs |= LANDLOCK_ACCESS_FS_REFER;
    if (abi >= 3)
        fs |= LANDLOCK_ACCESS_FS_TRUNCATE;
    if (abi >= 5)
        fs |= LANDLOCK_ACCESS_FS_IOCTL_DEV;
    return fs;
}

static int add_folder(int ruleset, const char *path, uint64_t rights, char *err, size_t errlen)
{
    int fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT)
        return 0;   /* made later by nobody: then nothing may be made there */
    if (fd < 0) {
        snprintf(err, errlen, "Landlock: cannot open %s: %s", path, strerror(errno));
        return ERR_IO;
    }
    struct landlock_path_beneath_attr pb = { .allowed_access = rights, .parent_fd = fd };
    long r = syscall(SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH, &pb, 0);
    int e = errno;
    close(fd);
    if (r != 0) {
        snprintf(err, errlen, "Landlock: cannot add a rule for %s: %s", path, strerror(e));
        return ERR_INTERNAL;
    }
    return 0;
}

static int add_rules(int ruleset, const struct config *cfg, uint64_t fs, char *err, size_t errlen)
{
    char db_copy[PATH_MAX];
    snprintf(db_copy, sizeof(db_copy), "%s", cfg->db_path);
    int rc = add_folder(ruleset, dirname(db_copy), FOLDER_RIGHTS & fs, err, errlen);
    rc = rc ? rc : add_folder(ruleset, cfg->audit_dir, FOLDER_RIGHTS & fs, err, errlen);
#ifdef NOTESD_SANITIZER_BUILD
    /* Test builds only: the sanitizer runtime reads /proc and the binary
     * to report, and writes its reports to the build's folder. */
    rc = rc ? rc : add_folder(ruleset, "/", (LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR) & fs, err, errlen);
    rc = rc ? rc : add_folder(ruleset, NOTESD_SANITIZER_DIR, FOLDER_RIGHTS & fs, err, errlen);
#endif
    return rc;
}

int sandbox_landlock_apply(const struct config *cfg, char *err, size_t errlen)
{
    int abi = sandbox_landlock_abi();
    if (abi < 0) {
        snprintf(err, errlen, "Landlock: the kernel refused the version query: %s "
                 "(NOTES_LANDLOCK=off runs without it)", strerror(errno));
        return ERR_INTERNAL;
    }
    if (abi == 0)
        return 1;
    struct ruleset_attr attr = { handled_fs(abi), abi >= 4 ? NET_BIND_TCP | NET_CONNECT_TCP : 0,
                                 abi >= 6 ? SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL : 0 };
    size_t size = abi >= 6   ? sizeof(attr)
                  : abi >= 4 ? offsetof(struct ruleset_attr, scoped)
                             : sizeof(attr.handled_access_fs);
    int ruleset = (int)syscall(SYS_landlock_create_ruleset, &attr, size, 0);
    if (ruleset < 0) {
        if (errno == ENOSYS || errno == EOPNOTSUPP)
            return 1;   /* built in but turned off at boot */
        snprintf(err, errlen, "Landlock: cannot create a ruleset: %s", strerror(errno));
        return ERR_INTERNAL;
    }
    int rc = add_rules(ruleset, cfg, attr.handled_access_fs, err, errlen);
    if (rc == 0 && syscall(SYS_landlock_restrict_self, ruleset, 0) != 0) {
        snprintf(err, errlen, "Landlock: cannot restrict the process: %s", strerror(errno));
        rc = ERR_INTERNAL;
    }
    close(ruleset);
    return rc;
}
