/*
 * config_int.h - pieces private to the configuration module (config*.c):
 * the environment lookup and the error line both halves use, and the
 * secrets config.c's table hands to config_secrets.c. Run while
 * config_load() runs, on its thread.
 */
#ifndef NOTESD_CONFIG_INT_H
#define NOTESD_CONFIG_INT_H

#include <stddef.h>
#include "config.h"

/* ---- the environment and errors (config.c) ------------------------------- */

/** The value of `name` in the NULL-terminated environment `envp` (exact
 *  name), or NULL when it is not set. Borrowed from `envp`. */
const char *config_env_get(char *const *envp, const char *name);
/** Write "NAME: what" to `err` and return ERR_CONFIG. `what` is a fixed
 *  phrase: never a value. */
int config_failf(char *err, size_t errlen, const char *name, const char *what);

/* ---- secrets (config_secrets.c) ------------------------------------------ */

/** Read the secret `name` from NAME, NAME_FILE or
 *  $CREDENTIALS_DIRECTORY/NAME (exactly one) and decode it into `out`,
 *  refusing text that is not strict base64, too short or too long, or not
 *  a random key. 0, or ERR_CONFIG with one line in `err`; the text read is
 *  wiped either way. */
int config_load_secret(struct config_secret *out, const char *name, char *const *envp,
                       char *err, size_t errlen);
/** The optional comma-separated list of older data keys `name`, appended to
 *  cfg->data_key_previous under the same rules (a passphrase is warned
 *  about, not refused), at most CONFIG_PREVIOUS_KEYS_MAX. 0 when unset. */
int config_load_secret_list(struct config *cfg, const char *name, char *const *envp,
                            char *err, size_t errlen);
/** Refuse one key used for two purposes, compared as HMAC keys (one
 *  followed by zero bytes is the same key). 0 or ERR_CONFIG. */
int config_check_distinct_secrets(const struct config *cfg, char *err, size_t errlen);

#endif
