/*
 * tls_mem.c - where mbedTLS gets its memory: large blocks (each
 * connection's 16 KiB record input buffer) straight from mmap, everything
 * else from calloc.
 *
 * Why: an idle connection should cost only what it uses. A fresh mapping
 * is zero pages the kernel backs only once touched, so a connection whose
 * records were small holds one or two pages of its input buffer, not all
 * sixteen; calloc from a reused heap would have written (and so backed)
 * every byte. mbedtls_free() gives no size, so the mapped blocks are kept
 * in a small table keyed by address; a pointer not in it is calloc's.
 */
#include "tls.h"

#include <mbedtls/platform.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#define MAPPED_MIN (12 * 1024)    /* smaller blocks stay on the heap */

struct mapped {
    void *p;                      /* NULL: free slot */
    size_t len;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct mapped *table;      /* open addressing, linear probing */
static size_t cap, used;          /* cap: a power of two, or 0 */
static size_t page = 4096;        /* the real one from tls_mem_install() */

static size_t slot_of(const void *p, size_t n)
{
    uintptr_t h = (uintptr_t)p >> 12;
    h ^= h >> 17;
    h *= (uintptr_t)0x9e3779b97f4a7c15u;
    return (size_t)(h >> 7) & (n - 1);
}

static void put(struct mapped *t, size_t n, void *p, size_t len)
{
    size_t i = slot_of(p, n);
    while (t[i].p)
        i = (i + 1) & (n - 1);
    t[i] = (struct mapped){ p, len };
}

/* Keep the table at most half full. Lock held. */
static int reserve(void)
{
    if (2 * (used + 1) <= cap)
        return 0;
    size_t n = cap ? 2 * cap : 64;
    struct mapped *t = calloc(n, sizeof(*t));
    if (!t)
        return -1;
    for (size_t i = 0; i < cap; i++)
        if (table[i].p)
            put(t, n, table[i].p, table[i].len);
    free(table);
    table = t;
    cap = n;
    return 0;
}

/* Remove p and return its length, or 0 when it is not ours. Lock held.
 * Deletion shifts the following run back, so probing never needs markers. */
static size_t take(void *p)
{
    if (!cap)
        return 0;
    size_t i = slot_of(p, cap);
    while (table[i].p && table[i].p != p)
        i = (i + 1) & (cap - 1);
    if (!table[i].p)
        return 0;
    size_t len = table[i].len;
    table[i].p = NULL;
    used--;
    for (size_t j = (i + 1) & (cap - 1); table[j].p; j = (j + 1) & (cap - 1)) {
        struct mapped m = table[j];
        table[j].p = NULL;
        put(table, cap, m.p, m.len);
    }
    return len;
}

static void *mem_calloc(size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size)
        return NULL;
    size_t len = n * size;
    if (len < MAPPED_MIN)
        return calloc(1, len ? len : 1);   /* never a zero-size request */
    len = (len + page - 1) & ~(page - 1);
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    pthread_mutex_lock(&lock);
    int rc = reserve();
    if (rc == 0) {
        put(table, cap, p, len);
        used++;
    }
    pthread_mutex_unlock(&lock);
    if (rc != 0) {
        munmap(p, len);
        return NULL;
    }
    return p;
}

static void mem_free(void *p)
{
    if (!p)
        return;
    /* A mapping starts on a page: any other pointer is calloc's, freed
     * without the lock and the table (most frees: bignum limbs). */
    if ((uintptr_t)p & (page - 1)) {
        free(p);
        return;
    }
    pthread_mutex_lock(&lock);
    size_t len = take(p);
    pthread_mutex_unlock(&lock);
    if (len)
        munmap(p, len);
    else
        free(p);
}

int tls_mem_install(void)
{
    long sz = sysconf(_SC_PAGESIZE);
    if (sz <= 0 || (sz & (sz - 1)) != 0)
        return -1;
    page = (size_t)sz;
    return mbedtls_platform_set_calloc_free(mem_calloc, mem_free) == 0 ? 0 : -1;
}
