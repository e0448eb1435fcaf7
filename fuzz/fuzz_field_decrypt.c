/*
 * fuzz_field_decrypt.c - libFuzzer target for the sealed-column format:
 * version(1) | key id(4, BE) | nonce(12) | ciphertext | tag(16), opened by
 * crypto_open() under additional data that binds table, column, row, owner,
 * version and key id.
 *
 * Two key rings are built once from fixed test secrets (never used anywhere
 * else): `ring` has the active data key K0 and two previous keys K1, K2, as
 * after two rotations; `old` has K1 active, so what it seals is "data written
 * before the rotation". Argon2 parameters are the minimums; crypto_new()
 * hashes its dummy password once at start-up.
 *
 * Each input is used three ways, and the target aborts when:
 *  1. opened as a stored blob: the answer is anything but 0 or ERR_CRYPTO, a
 *     failure leaves output behind, or a success has the wrong length or a
 *     key id outside the ring (the seed corpus holds real sealed values, so
 *     the success path is reached too);
 *  2. sealed as plaintext under `ring` and under `old`, then opened by
 *     `ring`: the plaintext does not come back byte for byte;
 *  3. the value from 2 with one bit flipped (position chosen from the
 *     input), or opened for another row: it opens at all.
 *
 * With NOTESD_FUZZ_MAKE_SEEDS=DIR in the environment, LLVMFuzzerInitialize
 * writes sealed seed values to DIR (fuzz/README.md).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "config.h"
#include "crypto.h"
#include "err.h"

#define OUT_MAX (1u << 20)

/* Where the fuzzed values live; the same AAD for every input. */
static const struct crypto_aad field_aad = { "notes", "content", 42, 7 };
static const struct crypto_aad other_row = { "notes", "content", 43, 7 };

static struct crypto *ring;   /* K0 active, K1 and K2 previous */
static struct crypto *old;    /* K1 active */
static uint32_t ring_ids[3];

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_field_decrypt: invariant broken: %s\n", what);
        abort();
    }
}

/* Distinct fixed patterns: every byte value differs between secrets. They
 * go to crypto_new() directly; config.c, which refuses counters as keys,
 * never sees them. */
static void fill(struct config_secret *s, unsigned seed, size_t len)
{
    for (size_t i = 0; i < len; i++)
        s->bytes[i] = (uint8_t)(seed * 53u + i * 7u + 3u);
    s->len = len;
}

static struct crypto *make_ring(unsigned active, const unsigned *previous, size_t n_previous)
{
    struct config cfg;
    memset(&cfg, 0, sizeof(cfg));
    fill(&cfg.data_key, active, 32);
    fill(&cfg.token_key, 100 + active, 32);
    fill(&cfg.audit_key, 200 + active, 48);
    for (size_t i = 0; i < n_previous; i++)
        fill(&cfg.data_key_previous[i], previous[i], 32);
    cfg.n_data_key_previous = n_previous;
    cfg.argon2_m_kib = CRYPTO_ARGON2_M_MIN;
    cfg.argon2_t = CRYPTO_ARGON2_T_MIN;
    cfg.argon2_p = CRYPTO_ARGON2_P_MIN;
    struct crypto *c = NULL;
    char err[CONFIG_ERR_MAX] = "";
    if (crypto_new(&c, &cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "crypto_new: %s\n", err);
        abort();
    }
    config_free(&cfg);
    return c;
}

static void write_seed(const char *dir, const char *name, const struct crypto *c, const char *pt)
{
    struct buf b;
    buf_init(&b, OUT_MAX);
    check(crypto_seal(c, &field_aad, (const uint8_t *)pt, strlen(pt), &b) == 0, "seed seal");
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    check(f && fwrite(b.data, 1, b.len, f) == b.len && fclose(f) == 0, "seed write");
    buf_cleanup(&b);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    check(crypto_init() == 0, "crypto_init");
    static const unsigned previous[] = { 1, 2 };
    ring = make_ring(0, previous, 2);
    old = make_ring(1, NULL, 0);
    struct crypto *k2 = make_ring(2, NULL, 0);
    ring_ids[0] = crypto_active_key_id(ring);
    ring_ids[1] = crypto_active_key_id(old);
    ring_ids[2] = crypto_active_key_id(k2);

    const char *dir = getenv("NOTESD_FUZZ_MAKE_SEEDS");
    if (dir && *dir) {
        write_seed(dir, "sealed-active-empty", ring, "");
        write_seed(dir, "sealed-active-text", ring, "A note about the weather.");
        write_seed(dir, "sealed-previous-k1", old, "written before the first rotation");
        write_seed(dir, "sealed-previous-k2", k2, "written before the second rotation");
    }
    crypto_free(k2);
    return 0;
}

static bool in_ring(uint32_t id)
{
    return id != 0 && (id == ring_ids[0] || id == ring_ids[1] || id == ring_ids[2]);
}

/* 1: arbitrary bytes as a stored value. */
static void open_stored(const uint8_t *data, size_t size, struct buf *out)
{
    int rc = crypto_open(ring, &field_aad, data, size, out);
    uint32_t id = crypto_sealed_key_id(data, size);
    if (rc == 0) {
        check(size >= CRYPTO_SEAL_OVERHEAD && out->len == size - CRYPTO_SEAL_OVERHEAD,
              "an opened value has the wrong plaintext length");
        check(in_ring(id), "a value opened under a key id outside the ring");
    } else {
        check(rc == ERR_CRYPTO, "crypto_open failed with something other than ERR_CRYPTO");
        check(out->len == 0, "a failed open left plaintext behind");
    }
    if (size < CRYPTO_SEAL_OVERHEAD)
        check(id == 0, "crypto_sealed_key_id accepted a short value");
}

/* 2 and 3: seal the input, open it, then tamper with it. */
static void round_trip(const struct crypto *sealer, const uint8_t *data, size_t size,
                       struct buf *sealed, struct buf *out)
{
    buf_reset(sealed);
    check(crypto_seal(sealer, &field_aad, size ? data : NULL, size, sealed) == 0, "crypto_seal failed");
    check(sealed->len == size + CRYPTO_SEAL_OVERHEAD, "sealed length");
    check(crypto_sealed_key_id(sealed->data, sealed->len) == crypto_active_key_id(sealer),
          "sealed key id is not the sealer's active key");
    check(crypto_open(ring, &field_aad, sealed->data, sealed->len, out) == 0, "a sealed value does not open");
    check(out->len == size && (size == 0 || memcmp(out->data, data, size) == 0),
          "the opened value differs from what was sealed");

    check(crypto_open(ring, &other_row, sealed->data, sealed->len, out) == ERR_CRYPTO && out->len == 0,
          "a value opened for another row");

    /* One flipped bit anywhere (version, key id, nonce, ciphertext, tag). */
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < size; i++)
        h = (h ^ data[i]) * 16777619u;
    size_t bit = h % (sealed->len * 8);
    sealed->data[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    check(crypto_open(ring, &field_aad, sealed->data, sealed->len, out) == ERR_CRYPTO && out->len == 0,
          "a value with a flipped bit opened");
    /* One byte short: the tag is cut. */
    sealed->data[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    check(crypto_open(ring, &field_aad, sealed->data, sealed->len - 1, out) == ERR_CRYPTO && out->len == 0,
          "a truncated value opened");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct buf out, sealed;
    buf_init(&out, OUT_MAX);
    buf_init(&sealed, OUT_MAX);
    open_stored(data, size, &out);
    if (size <= OUT_MAX - CRYPTO_SEAL_OVERHEAD) {
        round_trip(ring, data, size, &sealed, &out);
        round_trip(old, data, size, &sealed, &out);
    }
    buf_cleanup_wipe(&out);
    buf_cleanup_wipe(&sealed);
    return 0;
}
