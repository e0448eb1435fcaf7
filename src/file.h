/*
 * file.h - careful reads of small files named by the configuration.
 *
 * Reads through one descriptor and checks that same descriptor with fstat(),
 * so what is checked is what is read (no check-then-open race). Symlinks are
 * followed (systemd credentials and Kubernetes secrets use them), but what
 * they lead to must be a regular file.
 */
#ifndef NOTESD_FILE_H
#define NOTESD_FILE_H

#include <stdbool.h>
#include "buf.h"

/**
 * Read the whole regular file at `path` into the empty buffer `out` (its max
 * is set here; a NUL follows the data but is not counted in len). Fails with ERR_LIMIT when it is larger
 * than `max`, ERR_INVALID when `private_only` and the file is readable or
 * writable by group or others or belongs to neither root nor the effective
 * user, ERR_IO otherwise; `why` then holds a short English reason without
 * the file's content. Runs on any thread; blocking.
 */
int file_read_all(const char *path, size_t max, bool private_only, struct buf *out,
                  char *why, size_t whylen);

/**
 * Create or replace `path` with `data`, written with mode `mode` (umask
 * ignored for the bits it would widen), then fsync. Blocking.
 */
int file_write_all(const char *path, const void *data, size_t len, unsigned mode,
                   char *why, size_t whylen);

#endif
