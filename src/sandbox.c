/*
 * sandbox.c - the serving process gives up what it no longer needs: root,
 * capabilities, the file system outside its folders (sandbox_landlock.c)
 * and every system call outside one list (sandbox_seccomp.c).
 *
 * Owns the order of those steps and the hand-over of the state folders. A
 * root-started server binds its ports and reads its keys, certificate,
 * database and audit folder as root; the database's -wal/-shm files and the
 * audit trail's rotated files are created later, as NOTES_USER, so before
 * dropping root the database folder and the audit folder are given to
 * NOTES_USER (as nginx does with its temporary folders). Only a folder that
 * holds nothing but notesd's own files is handed over, and only from root:
 * a folder shared with anything else, writable by everyone, or owned by a
 * third user stops the start with a message saying what to fix, so a
 * NOTES_DB in /tmp or in a home folder can never chown what is not ours.
 *
 * This file must never: continue after a failed or unverified drop; leave a
 * capability in any set; or serve when a step it was asked for failed (a
 * kernel without Landlock is the one warning, as the issue asks).
 */
#include "sandbox.h"
#include "err.h"
#include "log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <linux/capability.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static int failf(char *err, size_t errlen, int rc, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int failf(char *err, size_t errlen, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(err, errlen, fmt, ap);   /* one line, cut at errlen on purpose */
    va_end(ap);
    return rc;
}

static bool started_as_root(void)
{
    return getuid() == 0 || geteuid() == 0;
}

/* ---- the account --------------------------------------------------------- */

static int lookup(const char *name, struct sandbox_user *out)
{
    struct passwd pw, *found = NULL;
    char buf[4096];
    if (getpwnam_r(name, &pw, buf, sizeof(buf), &found) != 0 || !found)
        return ERR_NOT_FOUND;
    out->uid = pw.pw_uid;
    out->gid = pw.pw_gid;
    snprintf(out->name, sizeof(out->name), "%s", pw.pw_name);
    return 0;
}

int sandbox_resolve_user(const struct config *cfg, struct sandbox_user *out, char *err, size_t errlen)
{
    const char *name = cfg->run_user && *cfg->run_user ? cfg->run_user : NULL;
    int rc = name ? lookup(name, out) : lookup("notesd", out);
    if (rc && !name)
        rc = lookup("nobody", out);
    if (rc)
        return failf(err, errlen, ERR_CONFIG, "NOTES_USER: %s", name ? "no such user" :
                     "neither a notesd nor a nobody account exists; create one or name one");
    if (out->uid == 0 || out->gid == 0)
        return failf(err, errlen, ERR_CONFIG, "NOTES_USER: must not be root or in group root (uid/gid 0)");
    return 0;
}

int sandbox_check_user(const struct config *cfg, char *err, size_t errlen)
{
    struct sandbox_user u = { 0 };
    return started_as_root() ? sandbox_resolve_user(cfg, &u, err, errlen) : 0;
}

uid_t sandbox_run_uid(const struct config *cfg)
{
    struct sandbox_user u = { 0 };
    char err[CONFIG_ERR_MAX];
    if (started_as_root() && sandbox_resolve_user(cfg, &u, err, sizeof(err)) == 0)
        return u.uid;
    return geteuid();
}

/* ---- handing the state folders over ------------------------------------- */

struct folder {
    const char *path, *setting;     /* for messages */
    bool (*ours)(const char *name, const struct stat *st, const struct folder *f);
    const char *db_name;            /* the database folder: the file's name */
    dev_t audit_dev;                /* ... and the audit folder inside it */
    ino_t audit_ino;
    bool has_audit;
};

static bool db_file(const char *name, const struct stat *st, const struct folder *f)
{
    static const char *const suffixes[] = { "", "-wal", "-shm", "-journal" };
    size_t n = strlen(f->db_name);
    if (S_ISDIR(st->st_mode))
        return f->has_audit && st->st_dev == f->audit_dev && st->st_ino == f->audit_ino;
    if (!S_ISREG(st->st_mode) || strncmp(name, f->db_name, n) != 0)
        return false;
    for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++)
        if (strcmp(name + n, suffixes[i]) == 0)
            return true;
    return false;
}

/* audit.log, audit.lock and the rotated audit-<time>-<seq>.log files. */
static bool audit_file(const char *name, const struct stat *st, const struct folder *f)
{
    (void)f;
    size_t n = strlen(name);
    return S_ISREG(st->st_mode) && strncmp(name, "audit", 5) == 0 &&
           ((n > 4 && strcmp(name + n - 4, ".log") == 0) || strcmp(name, "audit.lock") == 0);
}

/* Give the folder's root-owned entries of ours to the user; refuse
 * entries of a third user, and, in a folder root owns, any foreign entry. */
static int hand_over_entries(int dirfd, const struct folder *f, const struct stat *dir,
                             const struct sandbox_user *u, char *err, size_t errlen)
{
    int dup_fd = dup(dirfd);
    DIR *d = dup_fd >= 0 ? fdopendir(dup_fd) : NULL;
    if (!d) {
        if (dup_fd >= 0)
            close(dup_fd);
        return failf(err, errlen, ERR_IO, "%s: cannot list %s: %s", f->setting, f->path, strerror(errno));
    }
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d))) {
        struct stat st;
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (fstatat(dirfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || st.st_uid == u->uid)
            continue;
        bool ours = f->ours(e->d_name, &st, f);
        if (!ours && dir->st_uid == u->uid)
            continue;   /* the operator's own folder: leave their files alone */
        if (!ours || st.st_uid != 0)
            rc = failf(err, errlen, ERR_CONFIG,
                       "%s: the folder %s holds %s, which is not notesd's; give notesd a folder of its "
                       "own, owned by NOTES_USER (%s)", f->setting, f->path, e->d_name, u->name);
        else if (!S_ISDIR(st.st_mode) && fchownat(dirfd, e->d_name, u->uid, u->gid, AT_SYMLINK_NOFOLLOW) != 0)
            rc = failf(err, errlen, ERR_IO, "%s: cannot chown %s: %s", f->setting, e->d_name, strerror(errno));
    }
    closedir(d);
    return rc;
}

static int hand_over(const struct folder *f, const struct sandbox_user *u, char *err, size_t errlen)
{
    int fd = open(f->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT)
        return 0;   /* not made yet: whoever makes it later is NOTES_USER */
    if (fd < 0)
        return failf(err, errlen, ERR_IO, "%s: cannot open the folder %s: %s", f->setting, f->path, strerror(errno));
    struct stat st = { 0 };
    int rc = fstat(fd, &st) == 0 ? 0 : ERR_IO;
    if (rc == 0 && st.st_uid != 0 && st.st_uid != u->uid)
        rc = failf(err, errlen, ERR_CONFIG, "%s: the folder %s belongs to another user; chown it to NOTES_USER (%s)",
                   f->setting, f->path, u->name);
    else if (rc == 0 && (st.st_mode & S_IWOTH))
        rc = failf(err, errlen, ERR_CONFIG, "%s: the folder %s is writable by everyone; give notesd a folder of its own",
                   f->setting, f->path);
    if (rc == 0)
        rc = hand_over_entries(fd, f, &st, u, err, errlen);
    if (rc == 0 && st.st_uid == 0 && fchown(fd, u->uid, u->gid) != 0)
        rc = failf(err, errlen, ERR_IO, "%s: cannot chown %s: %s", f->setting, f->path, strerror(errno));
    close(fd);
    return rc;
}

static int hand_over_state(const struct config *cfg, const struct sandbox_user *u, char *err, size_t errlen)
{
    char db_copy[PATH_MAX], name_copy[PATH_MAX];
    snprintf(db_copy, sizeof(db_copy), "%s", cfg->db_path);
    snprintf(name_copy, sizeof(name_copy), "%s", cfg->db_path);
    struct folder audit = { cfg->audit_dir, "NOTES_AUDIT_DIR", audit_file, NULL, 0, 0, false };
    struct folder db = { dirname(db_copy), "NOTES_DB", db_file, basename(name_copy), 0, 0, false };
    struct stat st;
    if (stat(cfg->audit_dir, &st) == 0) {
        db.audit_dev = st.st_dev;
        db.audit_ino = st.st_ino;
        db.has_audit = true;
    }
    int rc = hand_over(&audit, u, err, errlen);
    return rc ? rc : hand_over(&db, u, err, errlen);
}

/* ---- dropping root -------------------------------------------------------- */

static int verify_drop(const struct sandbox_user *u, char *err, size_t errlen)
{
    uid_t r, e, s;
    gid_t rg, eg, sg;
    if (getresuid(&r, &e, &s) != 0 || r != u->uid || e != u->uid || s != u->uid ||
        getresgid(&rg, &eg, &sg) != 0 || rg != u->gid || eg != u->gid || sg != u->gid)
        return failf(err, errlen, ERR_INTERNAL, "privilege drop: the ids did not change as asked");
    if (getgroups(0, NULL) != 0)
        return failf(err, errlen, ERR_INTERNAL, "privilege drop: supplementary groups remain");
    /* The proof that root is gone: asking for it back must fail. */
    if (setuid(0) == 0 || seteuid(0) == 0 || setgid(0) == 0)
        return failf(err, errlen, ERR_INTERNAL, "privilege drop: root could be regained");
    return 0;
}

/* The user must reach its files by path: the checkpoint job reopens the
 * database, and the audit trail makes new files. A folder above them that
 * only root may enter would fail later and quietly; fail now instead. */
static int check_reach(const struct config *cfg, const struct sandbox_user *u, char *err, size_t errlen)
{
    if (access(cfg->db_path, R_OK | W_OK) != 0 && errno != ENOENT)
        return failf(err, errlen, ERR_CONFIG, "NOTES_DB: NOTES_USER (%s) cannot open %s: %s (check the folders above it)",
                     u->name, cfg->db_path, strerror(errno));
    if (access(cfg->audit_dir, W_OK | X_OK) != 0 && errno != ENOENT)
        return failf(err, errlen, ERR_CONFIG, "NOTES_AUDIT_DIR: NOTES_USER (%s) cannot write to %s: %s (check the "
                     "folders above it)", u->name, cfg->audit_dir, strerror(errno));
    return 0;
}

static int drop_root(const struct config *cfg, char *err, size_t errlen)
{
    struct sandbox_user u = { 0 };
    int rc = sandbox_resolve_user(cfg, &u, err, errlen);
    if (rc == 0)
        rc = hand_over_state(cfg, &u, err, errlen);
    if (rc)
        return rc;
    /* Groups first: after setresuid we could no longer change them. glibc
     * applies each of these to every thread of the process. */
    if (setgroups(0, NULL) != 0 || setresgid(u.gid, u.gid, u.gid) != 0 || setresuid(u.uid, u.uid, u.uid) != 0)
        return failf(err, errlen, ERR_INTERNAL, "privilege drop to %s failed: %s", u.name, strerror(errno));
    /* The uid change set "dumpable" back to the system's default: the keys
     * in memory stay out of core files and other processes' reach. */
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
        return failf(err, errlen, ERR_INTERNAL, "cannot mark the process not dumpable: %s", strerror(errno));
    rc = verify_drop(&u, err, errlen);
    if (rc == 0)
        rc = check_reach(cfg, &u, err, errlen);
    if (rc == 0)
        log_fields(LOG_INFO, (struct log_field[]){ LOG_STR("run_as", u.name), LOG_NUM("uid", u.uid), LOG_NUM("gid", u.gid) },
                   3, "dropped root privileges");
    return rc;
}

/* A server started by a service manager with ambient capabilities (such
 * as CAP_NET_BIND_SERVICE, without root) keeps them otherwise: once the
 * ports are bound it needs none. */
static int drop_capabilities(char *err, size_t errlen)
{
    struct __user_cap_header_struct head = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct data[2];
    memset(data, 0, sizeof(data));
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL)
        return failf(err, errlen, ERR_INTERNAL, "cannot clear ambient capabilities: %s", strerror(errno));
    if (syscall(SYS_capset, &head, data) != 0)
        return failf(err, errlen, ERR_INTERNAL, "cannot drop capabilities: %s", strerror(errno));
    if (syscall(SYS_capget, &head, data) != 0 || data[0].effective || data[0].permitted || data[1].effective ||
        data[1].permitted)
        return failf(err, errlen, ERR_INTERNAL, "capabilities remain after dropping them");
    return 0;
}

int sandbox_no_new_privs(char *err, size_t errlen)
{
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1)
        return failf(err, errlen, ERR_INTERNAL, "cannot set no_new_privs: %s", strerror(errno));
    return 0;
}

/* Landlock binds the calling thread and the threads it creates later,
 * never threads already running: refuse rather than half-sandbox. */
static int single_threaded(char *err, size_t errlen)
{
    DIR *d = opendir("/proc/self/task");
    size_t n = 0;
    if (!d)
        return 0;   /* no /proc: nothing to count with; libuv starts its pool lazily */
    for (struct dirent *e; (e = readdir(d));)
        n += e->d_name[0] != '.';
    closedir(d);
    return n <= 1 ? 0 : failf(err, errlen, ERR_INTERNAL, "sandbox: %zu threads already run; enter it first", n);
}

/* ---- the whole --------------------------------------------------------- */

static int confine(const struct config *cfg, char *err, size_t errlen)
{
    int rc = 0;
    if (!cfg->landlock_on)
        log_warn("LANDLOCK IS OFF (NOTES_LANDLOCK=off): file access is not confined");
    else if ((rc = sandbox_landlock_apply(cfg, err, errlen)) == 1) {
        log_warn("this kernel has no Landlock: file access is not confined (continuing)");
        rc = 0;
    }
    if (rc)
        return rc;
    if (!cfg->seccomp_on) {
        log_warn("SECCOMP IS OFF (NOTES_SECCOMP=off): any system call is allowed; for debugging only");
        return 0;
    }
    return sandbox_seccomp_install(err, errlen);
}

int sandbox_enter(const struct config *cfg, char *err, size_t errlen)
{
    int rc = single_threaded(err, errlen);
    if (rc == 0 && started_as_root())
        rc = drop_root(cfg, err, errlen);
    else if (rc == 0 && cfg->run_user && *cfg->run_user)
        log_info("NOTES_USER applies only when started as root; running as uid %ld", (long)getuid());
    if (rc == 0)
        rc = drop_capabilities(err, errlen);
    if (rc == 0)
        rc = sandbox_no_new_privs(err, errlen);
    /* Asked before the filter goes on: it does not allow asking. */
    int abi = cfg->landlock_on ? sandbox_landlock_abi() : 0;
    if (rc == 0)
        rc = confine(cfg, err, errlen);
    if (rc == 0)
        log_fields(LOG_INFO,
                   (struct log_field[]){ LOG_NUM("uid", getuid()), LOG_NUM("landlock_abi", abi),
                                         LOG_NUM("syscalls_allowed", cfg->seccomp_on ? sandbox_seccomp_allowed() : 0) },
                   3, "sandbox entered");
    return rc;
}

int sandbox_started(const struct config *cfg)
{
    char err[CONFIG_ERR_MAX];
    int rc = sandbox_enter(cfg, err, sizeof(err));
    if (rc)
        log_error("cannot enter the sandbox: %s", err);
    return rc;
}
