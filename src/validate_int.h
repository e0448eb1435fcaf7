/*
 * validate_int.h - what the validators' two files (validate.c, the body and
 * text fields; validate_head.c, the request head) share. Pure, any thread.
 */
#ifndef NOTESD_VALIDATE_INT_H
#define NOTESD_VALIDATE_INT_H

#include "validate.h"

/** Record (field, why) with validate_add() and return ERR_INVALID, so a
 *  validator can `return validate_fail(...)`. Both strings static. */
int validate_fail(struct validate_errors *errs, const char *field, const char *why);

#endif
