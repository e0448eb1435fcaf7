/*
 * audit_walk.h - the line walk shared by `notesd audit verify`
 * (audit_verify.c, the whole trail) and retention's check of one rotated
 * file (audit_walk.c): what it keeps of a line and of the chain so far.
 * Internal to the audit module.
 */
#ifndef NOTESD_AUDIT_WALK_H
#define NOTESD_AUDIT_WALK_H

#include "audit.h"
#include "audit_int.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define AUDIT_READ_BUF 65536                 /* the longest line the walk examines */
#define AUDIT_LOC_MAX (AUDIT_NAME_MAX + 24)

struct rec {
    struct audit_line l;
    size_t file;
    uint64_t lineno;
    size_t len;
    bool complete;
    /* Could be the start of a line the writer was putting down when it
     * crashed: see audit_cut_shape(). Only such a line, or one signed with
     * the seq and prev of the record that replaced it, is "torn". */
    struct audit_cut cut;
    /* The torn span this line begins: itself, or with the unsigned lines a
     * second crash left after it (the start of the record that was to
     * explain it), which one torn_tail record explains together. */
    uint64_t span;                     /* bytes, the newlines between lines too */
    uint8_t span_hash[AUDIT_HASH_LEN];
};

struct verifier {
    const struct crypto *crypto;
    FILE *out;
    char (*names)[AUDIT_NAME_MAX + 1];  /* the files, in chain order */
    size_t n_files;
    bool started;                      /* the chain has its head */
    uint64_t seq;                      /* the last line accepted */
    uint8_t prev[AUDIT_HASH_LEN];
    size_t linked;                     /* the file whose first record was checked */
    struct rec head;
    bool genesis;                      /* seq 1 after 64 zeros */
    char explained[AUDIT_LOC_MAX];           /* where a prune record explains the head */
    bool bad;                          /* a problem was found; the walk continues
                                        * only to look for prune records */
    char problem[512];
    uint64_t records;
    size_t foreign;                    /* findings outside the chain (snapshot()) */
    const struct audit_anchor *anchor;  /* NULL: none */
    bool anchor_seen;                  /* the anchored seq was accepted, and matched */
    int anchor_pruned;                 /* a prune record names the anchored seq as a
                                        * file's last line: 1 same hash, -1 another */
    struct rec gap;                    /* where lines seemed gone: those seqs, */
    uint64_t gap_lo, gap_hi;           /* if one comes later, it was moved (0: none) */
    uint8_t *span_buf;                 /* the open torn span's bytes (span_start()) */
    size_t span_len;                   /* 0: none open */
};

/** "FILE:LINE" of `r`, in buf. */
const char *audit_walk_loc(const struct verifier *v, const struct rec *r, char buf[AUDIT_LOC_MAX]);
/** Judge every line of file `i` (`fd`, `size` bytes), one line behind:
 *  the last one stays in *pending (*have) for the next file or
 *  audit_walk_judge(). `buf` holds AUDIT_READ_BUF bytes. 0, ERR_IO,
 *  ERR_CRYPTO or ERR_NOMEM. */
int audit_walk_file(struct verifier *v, size_t i, int fd, uint64_t size, struct rec *pending, bool *have,
                    uint8_t *buf);
/** Judge `cur` knowing the line after it (NULL: the end). 0 or ERR_CRYPTO. */
int audit_walk_judge(struct verifier *v, struct rec *cur, const struct rec *next);

#endif
