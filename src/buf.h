/*
 * buf.h - owned, bounded byte buffers and borrowed slices.
 *
 * A struct buf owns its bytes and never grows past `max`: every append checks
 * for overflow and returns ERR_LIMIT instead of growing. A struct slice
 * borrows bytes owned elsewhere and is valid only as long as its owner.
 * No function here is thread-aware; a buffer belongs to one thread.
 */
#ifndef NOTESD_BUF_H
#define NOTESD_BUF_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <string.h>

struct buf {
    uint8_t *data;
    size_t len, cap, max;
};

struct slice {
    const uint8_t *p;
    size_t len;
};

#define SLICE_LIT(s) ((struct slice){ (const uint8_t *)(s), sizeof(s) - 1 })

/** Prepare an empty buffer that will never hold more than `max` bytes. */
void buf_init(struct buf *b, size_t max);
/** Free the bytes (after wiping them when `wipe`) and reset to empty. */
void buf_cleanup(struct buf *b);
/** Wipe and free: for buffers that held secrets or user content. */
void buf_cleanup_wipe(struct buf *b);
/** Drop the contents but keep the allocation for reuse. */
static inline void buf_reset(struct buf *b) { b->len = 0; }
/** Make room for `extra` more bytes; ERR_LIMIT past max, ERR_NOMEM. */
int buf_reserve(struct buf *b, size_t extra);
/** buf_append()'s path when the bytes do not fit the current capacity. */
int buf_append_grow(struct buf *b, const void *p, size_t n);
/** Append bytes; 0, ERR_LIMIT or ERR_NOMEM (nothing appended on error).
 *  Inline because responses and audit lines are built from many short
 *  appends that almost always fit (cap never exceeds max, so fitting in cap
 *  is within the bound). */
static inline int buf_append(struct buf *b, const void *p, size_t n)
{
    if (n == 0 || n > b->cap - b->len)
        return buf_append_grow(b, p, n);
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}
/** Append a NUL-terminated string (without its NUL). */
int buf_append_str(struct buf *b, const char *s);
/** Append an unsigned decimal number. */
int buf_append_u64(struct buf *b, uint64_t v);
/** Remove the first n bytes (n <= len), keeping the rest in order. */
void buf_consume(struct buf *b, size_t n);

static inline struct slice slice_of(const struct buf *b) { return (struct slice){ b->data, b->len }; }
static inline struct slice slice_str(const char *s) { return (struct slice){ (const uint8_t *)s, strlen(s) }; }
/** Byte-wise equality. */
bool slice_eq(struct slice a, struct slice b);
/** ASCII case-insensitive equality (for header names and tokens). */
bool slice_eq_nocase(struct slice a, struct slice b);


#endif
