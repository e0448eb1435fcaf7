/*
 * The edges of every validator in src/validate.c and src/validate_head.c
 * and of the strict JSON reader in src/json.c: each limit at min-1, min, max
 * and max+1, each refused byte sequence, and each fixed `why` phrase.
 *
 * This file holds what the test_validate_*.c files share
 * (validate_support.h).
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "validate_support.h"

/* ---- helpers ----------------------------------------------------------------- */

char *rep(const char *unit, size_t times)
{
    size_t u = strlen(unit);
    char *s = malloc(u * times + 1);
    cr_assert_not_null(s);
    for (size_t i = 0; i < times; i++)
        memcpy(s + i * u, unit, u);
    s[u * times] = '\0';
    return s;
}

void expect_one(const struct validate_errors *e, const char *field, const char *why)
{
    cr_assert_eq(e->n, 1, "expected one error (%s %s), got %zu", field, why, e->n);
    cr_assert_str_eq(e->e[0].field, field);
    cr_assert_str_eq(e->e[0].why, why);
}
