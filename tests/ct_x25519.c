/*
 * ct_x25519.c - HACL*'s X25519, as linked into notesd, takes no branch and
 * reads no address that depends on the secret scalar.
 *
 * third_party/fetch.sh builds this one object at -O3 (the rest of mbedTLS
 * at -O2), so what the verified C promises must still hold for the code the
 * compiler made. Run under valgrind's memcheck (tests/meson.build): the
 * scalar is marked undefined, so memcheck reports every conditional jump
 * and every memory address computed from it, the method of ctgrind and of
 * mbedTLS's own constant-flow tests. The result is marked defined again
 * before it is compared.
 *
 * `ct_x25519 control` branches on a marked byte on purpose and exits 0 only
 * when memcheck counted that as an error (VALGRIND_COUNT_ERRORS), which
 * shows memcheck is really watching.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <everest/Hacl_Curve25519.h>
#include <valgrind/memcheck.h>

#define LEN 32

/* RFC 7748 section 5.2, the first iteration of its test: scalar 9 times
 * u = 9 (public test values, not a key; tls_x25519_check() uses it too). */
static const uint8_t nine[LEN] = { 9 };
static const uint8_t nine_times_nine[LEN] = {
    0x42, 0x2c, 0x8e, 0x7a, 0x62, 0x27, 0xd7, 0xbc, 0xa1, 0x35, 0x0b, 0x3e, 0x2b, 0xb7, 0x27, 0x9f,
    0x78, 0x97, 0xb8, 0x7b, 0xb6, 0x85, 0x4b, 0x78, 0x3c, 0x60, 0xe8, 0x03, 0x11, 0xae, 0x30, 0x79,
};

/* out = scalar * point with the scalar marked secret; 0 when out == want. */
static int secret_mult(const uint8_t scalar[LEN], const uint8_t point[LEN], const uint8_t *want)
{
    uint8_t s[LEN], p[LEN], out[LEN];
    memcpy(s, scalar, LEN);
    memcpy(p, point, LEN);
    (void)VALGRIND_MAKE_MEM_UNDEFINED(s, LEN);
    Hacl_Curve25519_crypto_scalarmult(out, s, p);
    (void)VALGRIND_MAKE_MEM_DEFINED(out, LEN);
    return want && memcmp(out, want, LEN) != 0;
}

static int control(void)
{
    uint8_t s[LEN];
    memcpy(s, nine, LEN);
    (void)VALGRIND_MAKE_MEM_UNDEFINED(s, LEN);
    volatile int taken = 0;
    if (s[0] & 1)                      /* the branch memcheck must report */
        taken = 1;
    return taken;
}

int main(int argc, char **argv)
{
    if (RUNNING_ON_VALGRIND == 0) {
        fprintf(stderr, "ct_x25519: run me under valgrind --error-exitcode=1\n");
        return 2;
    }
    if (argc > 1 && strcmp(argv[1], "control") == 0) {
        (void)control();
        if (VALGRIND_COUNT_ERRORS == 0) {
            fprintf(stderr, "ct_x25519: memcheck did not see a branch on a secret byte\n");
            return 1;
        }
        return 0;
    }
    /* A share, as tls_x25519.c makes it: the scalar times the base point. */
    if (secret_mult(nine, nine, nine_times_nine) != 0) {
        fprintf(stderr, "ct_x25519: RFC 7748's test input gave another answer\n");
        return 1;
    }
    /* An agreement: a secret scalar times a peer's point. */
    (void)secret_mult(nine_times_nine, nine_times_nine, NULL);
    puts("ct_x25519: no secret-dependent branch or address");
    return 0;
}
