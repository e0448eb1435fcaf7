/*
 * audit_files.c - the audit writer's files: the private directory and its
 * lock, audit.log opened and checked, the chain head found again at its end
 * (or in the newest rotated file), retired descriptors, the descriptors
 * a group commit takes to the thread pool, and, shared with audit verify
 * and retention, the list of rotated files and the reading of a file's
 * ends.
 *
 * Shares struct audit with audit.c (audit_int.h). Must never fsync on the
 * event loop: audit_sync_run() is for the thread pool.
 */
#include "audit.h"
#include "audit_int.h"
#include "config.h"
#include "crypto.h"
#include "err.h"
#include "log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int audit_fail(struct audit *a, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(a->why, sizeof(a->why), fmt, ap);   /* cut at the buffer on purpose */
    va_end(ap);
    return rc;
}

/* Ours alone: owned by this user, no group or other bits (tightened, with a
 * warning, when they are set). */
static int check_private(struct audit *a, int fd, const char *name, bool dir, struct stat *out)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return audit_fail(a, ERR_IO, "cannot stat %s: %s", name, strerror(errno));
    if (dir ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode))
        return audit_fail(a, ERR_CONFIG, "%s is not a %s", name, dir ? "directory" : "regular file");
    if (st.st_uid != geteuid() && st.st_uid != a->run_uid)
        return audit_fail(a, ERR_CONFIG, "%s is owned by another user", name);
    if (st.st_mode & (S_IRWXG | S_IRWXO)) {
        if (fchmod(fd, dir ? 0700 : 0600) != 0)
            return audit_fail(a, ERR_IO, "cannot chmod %s: %s", name, strerror(errno));
        log_warn("audit: %s was open to group or others; now mode %s", name, dir ? "0700" : "0600");
    }
    if (out)
        *out = st;
    return 0;
}

/* A file root creates in a folder handed to NOTES_USER (an operator's
 * `notesd user ...` rotating the trail) goes to the folder's owner, or the
 * server running as that user could not write it any more. */
static int hand_over(struct audit *a, int fd, const char *name)
{
    struct stat st;
    if (geteuid() != 0 || a->dir_uid == 0 || fstat(fd, &st) != 0 || st.st_uid == a->dir_uid)
        return 0;
    if (fchown(fd, a->dir_uid, a->dir_gid) != 0)
        return audit_fail(a, ERR_IO, "cannot hand %s to the folder's owner: %s", name, strerror(errno));
    return 0;
}

static int open_current(struct audit *a)
{
    int fd = openat(a->dirfd, AUDIT_CURRENT,
                    O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
    if (fd < 0)
        return audit_fail(a, ERR_IO, "cannot open %s: %s", AUDIT_CURRENT, strerror(errno));
    struct stat st;
    int rc = hand_over(a, fd, AUDIT_CURRENT);
    rc = rc ? rc : check_private(a, fd, AUDIT_CURRENT, false, &st);
    if (rc) {
        close(fd);
        return rc;
    }
    a->fd = fd;
    a->dev = st.st_dev;
    a->ino = st.st_ino;
    a->dirty = false;
    a->dir_dirty = true;      /* it may have just been created */
    return 0;
}

/* Stop writing to the current file. Its unsynced lines must still reach the
 * disk, so the descriptor waits for the next sync. More rotations than that
 * list holds between two syncs (a small NOTES_AUDIT_MAX_BYTES under a burst,
 * a slow disk) close their file unsynced and have the next sync take the
 * whole file system (syncfs), on the thread pool like every sync: the loop
 * must not wait for the disk. */
void audit_retire(struct audit *a)
{
    if (a->fd < 0)
        return;
    if (a->sync_mode != CONFIG_AUDIT_SYNC_OFF && a->dirty) {
        if (a->n_pending < AUDIT_PENDING_MAX) {
            a->pending[a->n_pending++] = a->fd;
            a->fd = -1;
            return;
        }
        a->sync_fs = true;
    }
    close(a->fd);
    a->fd = -1;
}

static int read_tail(struct audit *a, const struct crypto *c, int fd, uint64_t size,
                     const char *name, struct audit_tail *t)
{
    int rc = audit_read_tail(c, fd, size, t);
    if (rc == ERR_LIMIT)
        return audit_fail(a, ERR_IO, "%s ends with a line longer than %d bytes: not written by notesd "
                    "(check it with notesd audit verify, then move it aside)", name, AUDIT_TAIL_MAX);
    return rc ? audit_fail(a, rc, "cannot read back the end of %s (%s)", name, err_name(rc)) : 0;
}

/* The head of the newest rotated file: where an empty audit.log goes on. */
static int newest_rotated(struct audit *a, struct audit_tail *t, char name[AUDIT_NAME_MAX + 1])
{
    struct audit_file *f = NULL;
    size_t n = 0;
    struct stat st;
    memset(t, 0, sizeof(*t));
    name[0] = '\0';
    if (audit_list_rotated(a->dirfd, &f, &n) != 0)
        return audit_fail(a, ERR_IO, "cannot list the audit directory");
    if (n == 0)
        return 0;
    memcpy(name, f[n - 1].name, AUDIT_NAME_MAX + 1);
    free(f);
    /* O_NONBLOCK: a FIFO under that name must not block the open. */
    int fd = openat(a->dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK);
    if (fd < 0 || fstat(fd, &st) != 0) {
        if (fd >= 0)
            close(fd);
        return audit_fail(a, ERR_IO, "cannot read %s: %s", name, strerror(errno));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return audit_fail(a, ERR_IO, "%s is not a regular file (check the folder with notesd audit verify)", name);
    }
    int rc = read_tail(a, a->crypto, fd, (uint64_t)st.st_size, name, t);
    close(fd);
    return rc;
}

/* Find the chain head on disk (open, after a rotation, or when another
 * process wrote). A head behind the one this process wrote means lines
 * vanished from audit.log: keep ours, so the gap shows in verify. */
int audit_load_head(struct audit *a)
{
    struct audit_tail t, rt;
    struct stat st;
    char name[AUDIT_NAME_MAX + 1] = "";
    int rc = a->fd < 0 ? open_current(a) : 0;
    if (rc)
        return rc;
    if (fstat(a->fd, &st) != 0)
        return audit_fail(a, ERR_IO, "cannot stat %s: %s", AUDIT_CURRENT, strerror(errno));
    a->size = (uint64_t)st.st_size;
    a->stale = false;
    rc = read_tail(a, a->crypto, a->fd, a->size, AUDIT_CURRENT, &t);
    if (rc == 0 && !t.has_line) {
        rc = newest_rotated(a, &rt, name);
        if (rc == 0 && name[0] && !rt.has_line)
            rc = audit_fail(a, ERR_IO, "%s holds no complete line", name);
        t.has_line = rt.has_line;
        t.last = rt.last;
    }
    if (rc)
        return rc;
    if (t.has_line && !t.last.parsed)
        return audit_fail(a, ERR_IO, "the last line of %s is not an audit record (check it with notesd "
                    "audit verify, then move the file aside)", name[0] ? name : AUDIT_CURRENT);
    if (t.has_line && !t.last.mac_ok)
        log_warn("audit: the last line of %s does not verify; run notesd audit verify",
                 name[0] ? name : AUDIT_CURRENT);
    uint64_t seq = t.has_line ? t.last.seq : 0;
    if (seq >= a->seq) {
        a->seq = seq;
        memcpy(a->prev, t.has_line ? t.last.hash : audit_zero_hash, AUDIT_HASH_LEN);
    } else {
        log_error("audit: %s lost lines this process wrote (removed or truncated); the gap stays "
                  "visible to notesd audit verify", AUDIT_CURRENT);
    }
    memcpy(a->continues, name, sizeof(name));
    a->torn = t.torn;
    a->torn_ended = t.torn_ended;
    a->torn_bytes = t.torn_bytes;
    memcpy(a->torn_hash, t.torn_hash, AUDIT_HASH_LEN);
    return 0;
}

/* Under the lock: is audit.log still the file we hold, at the size we know? */
int audit_refresh(struct audit *a)
{
    struct stat st;
    int r = fstatat(a->dirfd, AUDIT_CURRENT, &st, AT_SYMLINK_NOFOLLOW);
    bool same = a->fd >= 0 && r == 0 && st.st_dev == a->dev && st.st_ino == a->ino;
    if (same && !a->stale && (uint64_t)st.st_size == a->size)
        return 0;
    if (!same)
        audit_retire(a);            /* rotated by another process, or removed */
    return audit_load_head(a);
}

int audit_open_dir(struct audit *a)
{
    if (mkdir(a->dir, 0700) != 0 && errno != EEXIST)
        return audit_fail(a, ERR_IO, "cannot create it: %s", strerror(errno));
    a->dirfd = open(a->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (a->dirfd < 0)
        return audit_fail(a, ERR_IO, "cannot open it: %s", strerror(errno));
    struct stat dst = { 0 };
    int rc = check_private(a, a->dirfd, "the audit directory", true, &dst);
    if (rc)
        return rc;
    a->dir_uid = dst.st_uid;
    a->dir_gid = dst.st_gid;
    a->lockfd = openat(a->dirfd, AUDIT_LOCK, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
    if (a->lockfd < 0)
        return audit_fail(a, ERR_IO, "cannot open %s: %s", AUDIT_LOCK, strerror(errno));
    rc = hand_over(a, a->lockfd, AUDIT_LOCK);
    rc = rc ? rc : check_private(a, a->lockfd, AUDIT_LOCK, false, NULL);
    /* Rotated files too: a group-readable copy of the trail is still a leak. */
    struct audit_file *f = NULL;
    size_t n = 0;
    if (rc == 0 && audit_list_rotated(a->dirfd, &f, &n) != 0)
        rc = audit_fail(a, ERR_IO, "cannot list it");
    for (size_t i = 0; i < n && rc == 0; i++) {
        /* O_NONBLOCK: a FIFO must be refused here, not wait for a writer. */
        int fd = openat(a->dirfd, f[i].name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK);
        rc = fd < 0 ? audit_fail(a, ERR_IO, "cannot open %s: %s", f[i].name, strerror(errno))
                    : check_private(a, fd, f[i].name, false, NULL);
        if (fd >= 0)
            close(fd);
    }
    free(f);
    return rc;
}

/* ---- group commit ------------------------------------------------------- */

bool audit_sync_begin(struct audit *a, struct audit_sync *s)
{
    if (!a || a->sync_mode == CONFIG_AUDIT_SYNC_OFF ||
        (!a->dirty && !a->dir_dirty && !a->n_pending && !a->n_doomed && !a->sync_failed && !a->sync_fs))
        return false;
    *s = (struct audit_sync){ .dirfd = -1, .fs = a->sync_fs };
    audit_written_head(a, &s->seq, s->hash);
    for (size_t i = 0; i < a->n_pending; i++)
        s->fd[s->n++] = a->pending[i];
    a->n_pending = 0;
    if (a->n_doomed) {
        /* They stay in a->doomed while the sync runs, so retention does not
         * prune them a second time meanwhile; the end drops them. */
        memcpy(s->unlink, a->doomed, a->n_doomed * sizeof(a->doomed[0]));
        s->n_unlink = s->n_taken = a->n_doomed;
        s->dirfd = fcntl(a->dirfd, F_DUPFD_CLOEXEC, 0);
        if (s->dirfd < 0)
            s->rc = ERR_IO;
    }
    int fds[2] = { a->fd, a->dir_dirty || s->fs ? a->dirfd : -1 };
    for (size_t i = 0; i < 2; i++) {
        if (fds[i] < 0)
            continue;
        int d = fcntl(fds[i], F_DUPFD_CLOEXEC, 0);
        if (d < 0)
            s->rc = ERR_IO;
        else
            s->fd[s->n++] = d;
    }
    a->dirty = a->dir_dirty = a->sync_fs = false;
    return true;
}

/* The pruned files go only once their records are on disk; those that
 * could not be deleted stay in `s` for the loop's warning. */
static void delete_pruned(struct audit_sync *s)
{
    size_t left = 0;
    for (size_t i = 0; i < s->n_unlink && s->rc == 0; i++)
        if (unlinkat(s->dirfd, s->unlink[i], 0) != 0 && errno != ENOENT)
            memmove(s->unlink[left++], s->unlink[i], sizeof(s->unlink[0]));
    if (s->rc == 0) {
        s->n_unlink = left;
        if (fsync(s->dirfd) != 0)
            s->rc = ERR_IO;
    }
    close(s->dirfd);
    s->dirfd = -1;
}

void audit_sync_run(struct audit_sync *s)
{
    /* Each of them is on the trail's file system (the folder is one). */
    if (s->fs && s->n > 0 && syncfs(s->fd[s->n - 1]) != 0)
        s->rc = ERR_IO;
    for (size_t i = 0; i < s->n; i++) {
        /* fsync, not fdatasync: one of them is the directory, whose entries
         * (a rotation's rename, a new file) are its metadata. */
        if (fsync(s->fd[i]) != 0 && s->rc == 0)
            s->rc = ERR_IO;
        close(s->fd[i]);
    }
    s->n = 0;
    if (s->dirfd >= 0)
        delete_pruned(s);
}

/* The sync took a->doomed's first `taken` names. None goes back: after a
 * failed sync their records may be lost although a later fsync of the same
 * file succeeds (Linux reports a lost write-back once), and a file that
 * cannot be deleted must not make every sync try again. Retention finds
 * them again on its next run and records them anew. */
static bool left_behind(const struct audit_sync *s, const char *name)
{
    for (size_t i = 0; i < s->n_unlink; i++)
        if (strcmp(s->unlink[i], name) == 0)
            return true;
    return false;
}

static void drop_pruned(struct audit *a, const struct audit_sync *s)
{
    size_t taken = s->n_taken < a->n_doomed ? s->n_taken : a->n_doomed;
    for (size_t i = 0; i < taken && s->rc == 0; i++)
        if (!left_behind(s, a->doomed[i]))
            log_debug("audit: deleted %s (pruned on record)", a->doomed[i]);
    memmove(a->doomed, a->doomed[taken], (a->n_doomed - taken) * sizeof(a->doomed[0]));
    a->n_doomed -= taken;
    if (s->n_unlink && s->rc == 0)
        log_warn("audit: cannot delete %s; retention will try again", s->unlink[0]);
}

void audit_sync_end(struct audit *a, const struct audit_sync *s)
{
    drop_pruned(a, s);
    if (s->rc == 0) {
        if (s->seq > a->synced_seq) {
            a->synced_seq = s->seq;
            memcpy(a->synced_hash, s->hash, AUDIT_HASH_LEN);
        }
        if (a->sync_failed)
            log_info("audit: the audit log in %s can be synced again", a->dir);
        a->sync_recovered = a->sync_recovered || a->sync_failed;
        a->sync_failed = false;
        return;
    }
    /* Linux reports a lost write-back once; later syncs may succeed although
     * lines were lost. Refuse changes until a sync of everything works. */
    a->dirty = a->dir_dirty = true;
    a->sync_fs = a->sync_fs || s->fs;
    if (!a->sync_failed)
        log_error("audit: cannot sync the audit log in %s to disk; changes are refused until it works",
                  a->dir);
    a->sync_failed = true;
}

int audit_sync(struct audit *a)
{
    struct audit_sync s;
    if (!audit_sync_begin(a, &s))
        return 0;
    audit_sync_run(&s);
    audit_sync_end(a, &s);
    return s.rc;
}

/* ---- the files ----------------------------------------------------------- */

static int by_seq(const void *x, const void *y)
{
    const struct audit_file *a = x, *b = y;
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

int audit_list_rotated(int dirfd, struct audit_file **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    int fd = fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0)
            close(fd);
        return ERR_IO;
    }
    rewinddir(d);
    size_t cap = 0;
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        struct audit_file f = { .seq = 0 };
        struct stat st;
        if (!audit_name_parse(e->d_name, &f.seq) ||
            fstatat(dirfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
            continue;
        memcpy(f.name, e->d_name, AUDIT_NAME_MAX + 1);
        f.mtime = (int64_t)st.st_mtime;
        f.regular = S_ISREG(st.st_mode);
        if (*n == cap) {
            size_t ncap = cap ? 2 * cap : 16;
            struct audit_file *g = reallocarray(*out, ncap, sizeof(*g));
            if (!g) {
                rc = ERR_NOMEM;
                break;
            }
            *out = g, cap = ncap;
        }
        (*out)[(*n)++] = f;
    }
    closedir(d);
    if (rc) {
        free(*out);
        *out = NULL;
        *n = 0;
        return rc;
    }
    if (*n)
        qsort(*out, *n, sizeof(**out), by_seq);
    return 0;
}

/* ---- a file's ends ------------------------------------------------------- */

static int pread_all(int fd, uint8_t *p, size_t n, uint64_t off)
{
    while (n > 0) {
        ssize_t r = pread(fd, p, n, (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return ERR_IO;
        p += r, n -= (size_t)r, off += (uint64_t)r;
    }
    return 0;
}

/* The last complete line of p[0..end) into t->last, going back over the
 * complete lines that are only the start of a line (audit_cut_shape()):
 * what a crash left, ended by the newline of the record that was to
 * explain it when a second crash cut that record. Returns where the torn
 * span begins: the end of that last line. *rc: ERR_LIMIT when a line may
 * begin before the window (`cut`: the file goes on before p), or
 * audit_line_read()'s; the result means nothing then. */
static size_t back_over_cuts(const struct crypto *c, const uint8_t *p, size_t end, bool cut,
                             struct audit_tail *t, int *rc)
{
    while (end > 0) {
        size_t start = end - 1;
        while (start > 0 && p[start - 1] != '\n')
            start--;
        if (start == 0 && cut) {
            *rc = ERR_LIMIT;
            return end;
        }
        size_t len = end - 1 - start;
        struct audit_cut shape;
        audit_cut_shape(p + start, len, &shape);
        if (!shape.shape || len == 0) {     /* the writer never ends an empty line */
            t->has_line = true;
            *rc = audit_line_read(c, p + start, len, &t->last);
            return end;
        }
        end = start;
    }
    return end;
}

int audit_read_tail(const struct crypto *c, int fd, uint64_t size, struct audit_tail *t)
{
    memset(t, 0, sizeof(*t));
    if (size == 0)
        return 0;
    size_t n = size < AUDIT_TAIL_MAX ? (size_t)size : AUDIT_TAIL_MAX;
    uint8_t *p = malloc(n);
    if (!p)
        return ERR_NOMEM;
    int rc = pread_all(fd, p, n, size - n);
    size_t end = n;
    while (end > 0 && p[end - 1] != '\n')
        end--;
    if (rc == 0 && end == 0 && size > n)
        rc = ERR_LIMIT;
    size_t from = rc == 0 ? back_over_cuts(c, p, end, size > n, t, &rc) : n;
    /* A signed record cut just before its newline (the one that explained
     * the cut lines before it) is the torn part alone: those lines have
     * their record. */
    struct audit_line last;
    if (rc == 0 && from < end && end < n && c && audit_line_read(c, p + end, n - end, &last) == 0 &&
        last.mac_ok && last.parsed)
        from = end;
    if (rc == 0 && from < n) {
        t->torn = true;
        t->torn_ended = p[n - 1] == '\n';
        t->torn_bytes = n - from - t->torn_ended;
        rc = crypto_sha256(p + from, (size_t)t->torn_bytes, t->torn_hash) ? ERR_CRYPTO : 0;
    }
    free(p);
    return rc;
}

int audit_read_first(int fd, uint64_t size, struct audit_line *l)
{
    uint8_t p[AUDIT_LINE_MAX];
    size_t n = size < sizeof(p) ? (size_t)size : sizeof(p);
    memset(l, 0, sizeof(*l));
    if (pread_all(fd, p, n, 0) != 0)
        return ERR_IO;
    const uint8_t *nl = memchr(p, '\n', n);
    return nl ? audit_line_read(NULL, p, (size_t)(nl - p), l) : 0;
}
