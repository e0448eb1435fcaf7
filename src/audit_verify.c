/*
 * audit_verify.c - `notesd audit verify`: the trail's files in chain order
 * (a snapshot of the folder), walked line by line through audit_walk.c,
 * then what the walk's head and an anchor say.
 *
 * Owns nothing past a call. Reads only: it never writes, renames or locks
 * for longer than it takes to list the directory. A log that does not
 * begin at seq 1 must be explained by a signed retention record naming the
 * file that held the lines before it.
 */
#include "audit_walk.h"
#include "crypto.h"
#include "err.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

/* O_NONBLOCK: opening a FIFO for reading would wait for a writer. Regular
 * files ignore it; anything else is refused. */
static int open_file(int dirfd, const char *name, uint64_t *size)
{
    struct stat st;
    int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK);
    if (fd >= 0 && (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))) {
        close(fd);
        return -1;
    }
    if (fd >= 0)
        *size = (uint64_t)st.st_size;
    return fd;
}

static bool not_regular(int dirfd, const char *name)
{
    struct stat st;
    return fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISREG(st.st_mode);
}

/* Something under a name of the trail's that is not one of its files: a
 * finding, reported before the chain's, and left out of the walk. */
static void foreign(struct verifier *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void foreign(struct verifier *v, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    (void)vfprintf(v->out, fmt, ap);   /* like every line of the report: the status says it */
    va_end(ap);
    v->foreign++;
}

#define NOT_REGULAR "%s: not a regular file (a FIFO, link, folder or device under a name of the trail's): " \
                    "not read; move it aside\n"

/* What to read, fixed under a shared lock so no writer is half-way through
 * a line or a rotation: the rotated files and audit.log's current size.
 * Nothing but regular files is opened for reading (a FIFO would block). */
static int snapshot(int dirfd, struct verifier *v, int *cur_fd, uint64_t *cur_size)
{
    struct audit_file *f = NULL;
    size_t n = 0;
    struct stat st;
    int lockfd = openat(dirfd, AUDIT_LOCK, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK);
    if (lockfd >= 0 && (fstat(lockfd, &st) != 0 || !S_ISREG(st.st_mode))) {
        close(lockfd);
        lockfd = -1;
    }
    if (lockfd < 0 && not_regular(dirfd, AUDIT_LOCK))
        foreign(v, NOT_REGULAR, AUDIT_LOCK);
    if (lockfd >= 0)
        while (flock(lockfd, LOCK_SH) != 0 && errno == EINTR)
            ;
    int rc = audit_list_rotated(dirfd, &f, &n);
    *cur_fd = rc ? -1 : open_file(dirfd, AUDIT_CURRENT, cur_size);
    if (rc == 0 && *cur_fd < 0 && not_regular(dirfd, AUDIT_CURRENT))
        foreign(v, NOT_REGULAR, AUDIT_CURRENT);
    if (lockfd >= 0)
        close(lockfd);        /* and with it the lock */
    if (rc)
        return rc;
    v->names = calloc(n + 1, sizeof(*v->names));
    if (!v->names) {
        free(f);
        return ERR_NOMEM;
    }
    size_t k = 0;
    uint64_t last = 0;
    for (size_t i = 0; i < n; i++) {
        if (!f[i].regular) {
            foreign(v, NOT_REGULAR, f[i].name);
            continue;
        }
        /* Two files ending at one seq: a copy or a hard link of one of
         * them under another name. The walk reads both and shows where. */
        if (k > 0 && f[i].seq == last)
            foreign(v, "%s: the same seq %llu as %s (a copy or link under another name: only one of them can "
                    "be the trail's)\n", f[i].name, (unsigned long long)f[i].seq, v->names[k - 1]);
        last = f[i].seq;
        memcpy(v->names[k++], f[i].name, sizeof(v->names[0]));
    }
    if (*cur_fd >= 0)
        memcpy(v->names[k++], AUDIT_CURRENT, sizeof(AUDIT_CURRENT));
    v->n_files = k;
    free(f);
    return 0;
}

static int walk(int dirfd, struct verifier *v)
{
    int cur_fd = -1, rc;
    uint64_t cur_size = 0;
    struct rec pending;
    bool have = false;
    uint8_t *buf = malloc(AUDIT_READ_BUF);
    rc = buf ? snapshot(dirfd, v, &cur_fd, &cur_size) : ERR_NOMEM;
    for (size_t i = 0; rc == 0 && i < v->n_files; i++) {
        bool current = cur_fd >= 0 && i == v->n_files - 1;
        uint64_t size = cur_size;
        int fd = current ? cur_fd : open_file(dirfd, v->names[i], &size);
        if (fd < 0) {
            fprintf(v->out, "cannot read %s: %s (removed while verifying? run again)\n", v->names[i],
                    strerror(errno));
            rc = ERR_IO;
            break;
        }
        rc = audit_walk_file(v, i, fd, size, &pending, &have, buf);
        if (rc == ERR_IO)
            fprintf(v->out, "cannot read %s\n", v->names[i]);
        close(fd);
        if (current)
            cur_fd = -1;
    }
    if (rc == 0 && have)
        rc = audit_walk_judge(v, &pending, NULL);
    if (cur_fd >= 0)
        close(cur_fd);
    free(buf);
    free(v->span_buf);
    v->span_buf = NULL;
    return rc;
}

/* The walk found no problem: what the anchor says, if there is one. 0 or
 * ERR_INVALID. */
static int check_anchor(const struct verifier *v, FILE *report)
{
    const struct audit_anchor *an = v->anchor;
    if (!an || v->anchor_seen) {
        if (an)
            fprintf(report, "note: anchor seq %llu found: the chain still holds the anchored line\n",
                    (unsigned long long)an->seq);
        return 0;
    }
    unsigned long long seq = (unsigned long long)an->seq;
    if (an->seq > v->seq) {
        fprintf(report, "%s: missing line(s) after: the anchor names seq %llu, the log ends at seq %llu\n",
                v->names[v->n_files - 1], seq, (unsigned long long)v->seq);
        return ERR_INVALID;
    }
    /* Before the kept log: checked where the trail still names that line,
     * by the first kept line's prev or by a prune record. */
    int named = an->seq + 1 == v->head.l.seq ? (memcmp(v->head.l.prev, an->hash, AUDIT_HASH_LEN) == 0 ? 1 : -1)
                                              : v->anchor_pruned;
    if (named < 0) {
        fprintf(report, "%s: changed: the trail names another line as seq %llu than the anchor\n",
                v->names[v->head.file], seq);
        return ERR_INVALID;
    }
    if (named > 0)
        fprintf(report, "note: the anchor's seq %llu, before the kept log, is the line the trail names there "
                "(checked)\n", seq);
    else
        fprintf(report, "note: the anchor's seq %llu is before the kept log (seq %llu..%llu): not checked\n", seq,
                (unsigned long long)v->head.l.seq, (unsigned long long)v->seq);
    return 0;
}

int audit_verify_dir(const char *dir, const struct crypto *crypto, const struct audit_anchor *anchor,
                     FILE *report)
{
    struct verifier v = { .crypto = crypto, .out = report, .anchor = anchor };
    int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0) {
        fprintf(report, "cannot open %s: %s\n", dir, strerror(errno));
        return ERR_IO;
    }
    int rc = walk(dirfd, &v);
    close(dirfd);
    if (rc == 0) {
        char at[AUDIT_LOC_MAX];
        if (!v.started && !v.bad) {
            fprintf(report, "%s: no audit record found\n", dir);
            rc = ERR_INVALID;
        } else if (v.started && !v.genesis && !v.explained[0]) {
            /* Before any later problem: it is the earliest position. */
            fprintf(report, "%s: missing line(s) before: the log starts at seq %llu and no retention "
                    "record explains the lines before it\n", audit_walk_loc(&v, &v.head, at),
                    (unsigned long long)v.head.l.seq);
            rc = ERR_INVALID;
        } else if (v.bad) {
            fprintf(report, "%s\n", v.problem);
            rc = ERR_INVALID;
        } else if (strcmp(v.names[v.n_files - 1], AUDIT_CURRENT) != 0 || v.linked != v.n_files - 1) {
            /* Nothing then shows whether lines after the newest file were
             * removed: audit.log is missing, or holds no record that would
             * name the file before it (emptied). A crash between a rotation
             * and the next line leaves this too; the server's next start
             * writes that record. */
            if (strcmp(v.names[v.n_files - 1], AUDIT_CURRENT) != 0)
                fprintf(report, "there is no %s: lines after seq %llu may be gone\n", AUDIT_CURRENT,
                        (unsigned long long)v.seq);
            else
                fprintf(report, "%s holds no record: lines after seq %llu may be gone\n", AUDIT_CURRENT,
                        (unsigned long long)v.seq);
            rc = ERR_INVALID;
        } else if (v.foreign) {
            rc = ERR_INVALID;          /* reported before the walk */
        } else if ((rc = check_anchor(&v, report)) == 0) {
            if (v.explained[0])
                fprintf(report, "note: %s: head pruned by retention (record at %s)\n",
                        audit_walk_loc(&v, &v.head, at), v.explained);
            struct audit_anchor newest = { .seq = v.seq };
            char text[AUDIT_ANCHOR_TEXT_MAX];
            memcpy(newest.hash, v.prev, AUDIT_HASH_LEN);
            audit_anchor_format(&newest, text);
            fprintf(report, "OK: %llu records in %zu file(s), seq %llu..%llu, chain intact; anchor %s\n",
                    (unsigned long long)v.records, v.n_files, (unsigned long long)v.head.l.seq,
                    (unsigned long long)v.seq, text);
        }
    }
    free(v.names);
    return rc;
}
