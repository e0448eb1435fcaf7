/*
 * Shared helpers of the test_validate program (test_validate_*.c): repeated
 * strings, and expecting exactly one error naming a field with a fixed
 * `why`.
 */
#ifndef NOTESD_TEST_VALIDATE_SUPPORT_H
#define NOTESD_TEST_VALIDATE_SUPPORT_H

#include <stddef.h>

#include "json.h"
#include "validate.h"

/* These helpers were static in one file before it was split: hidden keeps
 * them out of the executable's dynamic symbol table, where a name such as
 * login() would otherwise preempt the C library's. */
#pragma GCC visibility push(hidden)

/* `unit` repeated `times` times, NUL-terminated; caller frees. */
char *rep(const char *unit, size_t times);

/* e holds exactly one error, naming `field` with the fixed phrase `why`. */
void expect_one(const struct validate_errors *e, const char *field, const char *why);

#pragma GCC visibility pop

#endif
