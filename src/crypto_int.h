/*
 * crypto_int.h - what crypto.c and crypto_password.c share; nothing outside
 * the crypto module includes it.
 */
#ifndef NOTESD_CRYPTO_INT_H
#define NOTESD_CRYPTO_INT_H

#include "crypto.h"

#include <stdint.h>

#define CRYPTO_HASH_LEN 32                /* argon2id output bytes */

/** Writes into phc the PHC string "$argon2id$v=19$m=..,t=..,p=..$SALT$HASH"
 *  of params with the given salt and hash bytes (unpadded base64).
 *  ERR_INVALID when params are out of range, ERR_CRYPTO when it does not
 *  fit. Any thread. */
int crypto_password_phc(const struct crypto_argon2 *params, const uint8_t salt[CRYPTO_SALT_LEN],
                        const uint8_t hash[CRYPTO_HASH_LEN], char phc[CRYPTO_PHC_MAX]);

#endif
