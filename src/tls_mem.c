/*
 * tls_mem.c - where mbedTLS gets its memory: large blocks (each
 * connection's 16 KiB record input buffer) straight from mmap, small ones
 * from per-thread lists of recently freed blocks, the rest from malloc.
 *
 * Why mmap: an idle connection should cost only what it uses. A fresh
 * mapping is zero pages the kernel backs only once touched, so a connection
 * whose records were small holds one or two pages of its input buffer, not
 * all sixteen; calloc from a reused heap would have written (and so backed)
 * every byte. mbedtls_free() gives no size, so the mapped blocks are kept
 * in a small table keyed by address.
 *
 * Why the lists: a handshake's bignum code allocates and frees tens of
 * thousands of limb arrays of a few dozen bytes (glibc's calloc and free
 * were ~15% of a full handshake's CPU). Every block that is not a mapping
 * carries a 16-byte header with its size class and a per-process random
 * tag; a freed block of a small class goes on its thread's list for that
 * class (at most CLASS_KEEP of them), anything else back to free(). A block
 * is zeroed when handed out, as calloc's are; what mbedTLS wipes before
 * freeing it stays wiped. A block freed twice, a header or list link
 * that is not what this file wrote, or a pointer that never came from here
 * aborts. ASan builds use plain calloc and free for small blocks.
 */
#include "tls.h"

#include <mbedtls/platform.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
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

/* ---- small blocks ---------------------------------------------------------- */

#define CLASS_STEP 16
#define CLASS_COUNT 16                /* 16, 32, ... 256 bytes */
#define CLASS_NONE UINT32_MAX         /* larger than the last class: malloc's */
#define CLASS_KEEP 64                 /* per class and thread */

static uint64_t block_tag;            /* random; set once by tls_mem_install() */
static uintptr_t link_key;            /* random: list links are stored scrambled */

#if defined(__SANITIZE_ADDRESS__)
/* ASan builds: plain calloc and free, so ASan sees every block's exact
 * bounds and every use after free. */
static void *small_calloc(size_t len)
{
    return calloc(1, len ? len : 1);
}

static void small_free(void *p)
{
    free(p);
}
#else
struct head {                         /* 16 bytes: blocks stay 16-aligned */
    uint64_t tag;                     /* block_tag live, ~block_tag on a list */
    uint32_t cls;
    uint32_t unused;
};
_Static_assert(sizeof(struct head) == 16, "a header keeps the block 16-aligned");

/* A kept block's first word: the next block on its list, scrambled with
 * link_key and its own address (as glibc's safe-linking does), so a stale
 * write into a freed block cannot steer the next allocation anywhere. */
struct kept {
    uintptr_t link;
};

/* cppcheck does not see uses through a _Thread_local array. */
struct list {
    // cppcheck-suppress unusedStructMember
    struct kept *first;
    // cppcheck-suppress unusedStructMember
    unsigned n;
};

static _Thread_local struct list lists[CLASS_COUNT];

/* What a link at `at` is XORed with; applying it twice gives the link back. */
static uintptr_t link_mask(const struct kept *at)
{
    return link_key ^ ((uintptr_t)at >> 12);
}

/* 0..CLASS_COUNT-1 for len up to the last class (0 counts as 1 byte),
 * else CLASS_NONE. */
static uint32_t class_of(size_t len)
{
    size_t steps = len ? (len + CLASS_STEP - 1) / CLASS_STEP : 1;
    return steps <= CLASS_COUNT ? (uint32_t)steps - 1 : CLASS_NONE;
}

/* Take the first block of a list, or abort if anything about it or its
 * link is not what small_free() left there. */
static struct head *pop(uint32_t cls)
{
    struct list *l = &lists[cls];
    struct kept *k = l->first;
    struct head *h = (struct head *)(void *)k - 1;
    /* The link is stored as an integer on purpose (scrambled), so it comes
     * back through one. */
    // NOLINTNEXTLINE(performance-no-int-to-ptr)
    struct kept *next = (struct kept *)(k->link ^ link_mask(k));
    if (h->tag != ~block_tag || h->cls != cls || (l->n == 1) != (next == NULL) ||
        (uintptr_t)next % _Alignof(max_align_t) != 0)
        abort();
    l->first = next;
    l->n--;
    return h;
}

static void *small_calloc(size_t len)
{
    uint32_t cls = class_of(len);
    struct head *h;
    if (cls != CLASS_NONE && lists[cls].first) {
        h = pop(cls);
    } else {
        size_t size = cls != CLASS_NONE ? (size_t)(cls + 1) * CLASS_STEP : len;
        h = malloc(sizeof(*h) + size);
        if (!h)
            return NULL;
    }
    h->tag = block_tag;
    h->cls = cls;
    memset(h + 1, 0, len);
    return h + 1;
}

static void small_free(void *p)
{
    struct head *h = (struct head *)p - 1;
    /* Freed twice, a corrupted header, or a pointer that never came from
     * here: stop rather than hand glibc or a list a block we cannot vouch for. */
    if (h->tag != block_tag)
        abort();
    uint32_t cls = h->cls;
    if (cls < CLASS_COUNT && lists[cls].n < CLASS_KEEP) {
        struct kept *k = p;
        h->tag = ~block_tag;
        k->link = (uintptr_t)lists[cls].first ^ link_mask(k);
        lists[cls].first = k;
        lists[cls].n++;
        return;
    }
    h->tag = 0;
    free(h);
}
#endif

/* ---- mbedTLS's calloc and free ----------------------------------------------- */

static void *mem_calloc(size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size)
        return NULL;
    size_t len = n * size;
    if (len < MAPPED_MIN)
        return small_calloc(len);
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
    /* A mapping starts on a page; a small block only rarely does, so most
     * frees (bignum limbs) never take the lock. */
    if (((uintptr_t)p & (page - 1)) == 0) {
        pthread_mutex_lock(&lock);
        size_t len = take(p);
        pthread_mutex_unlock(&lock);
        if (len) {
            munmap(p, len);
            return;
        }
    }
    small_free(p);
}

int tls_mem_install(void)
{
    long sz = sysconf(_SC_PAGESIZE);
    if (sz <= 0 || (sz & (sz - 1)) != 0)
        return -1;
    page = (size_t)sz;
    /* Random and unknown outside the process: no byte pattern a client can
     * place can pass for a header or a list link. 0 and all-ones (the tag
     * values of freed blocks) are never the tag. */
    uint64_t r[2] = { 0, 0 };
    while (r[0] == 0 || r[0] == UINT64_MAX)
        if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
            return -1;
    if (block_tag == 0) {
        block_tag = r[0];
        link_key = (uintptr_t)r[1];
    }
    return mbedtls_platform_set_calloc_free(mem_calloc, mem_free) == 0 ? 0 : -1;
}
