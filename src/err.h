/*
 * err.h - the one set of error codes notesd's functions return.
 *
 * Functions return 0 on success or a negative ERR_* value. errno and library
 * codes are converted at the boundary where they are first seen; nothing
 * above that layer ever sees a library-specific code.
 */
#ifndef NOTESD_ERR_H
#define NOTESD_ERR_H

enum {
    ERR_OK = 0,
    ERR_NOMEM = -1,      /* allocation failed */
    ERR_LIMIT = -2,      /* a configured size or count limit was reached */
    ERR_INVALID = -3,    /* input failed validation */
    ERR_IO = -4,         /* a read, write or open failed */
    ERR_CRYPTO = -5,     /* a cryptographic operation failed */
    ERR_TLS = -6,        /* the TLS session failed; the connection must close */
    ERR_WANT_IO = -7,    /* no progress without more bytes from the peer */
    ERR_CLOSED = -8,     /* the peer closed the session */
    ERR_NOT_FOUND = -9,  /* the requested thing does not exist */
    ERR_CONFIG = -10,    /* the configuration is unusable */
    ERR_INTERNAL = -11,  /* a bug or an impossible state */
    ERR_EXISTS = -12,    /* a unique thing already exists */
};

/** Short fixed English name of an ERR_* code, for the operational log. */
const char *err_name(int err);

#endif
