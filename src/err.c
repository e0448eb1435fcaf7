/* err.c - names for the ERR_* codes of err.h, for operational log lines. */
#include "err.h"

const char *err_name(int err)
{
    switch (err) {
    case ERR_OK: return "ok";
    case ERR_NOMEM: return "out of memory";
    case ERR_LIMIT: return "limit reached";
    case ERR_INVALID: return "invalid input";
    case ERR_IO: return "I/O error";
    case ERR_CRYPTO: return "cryptographic failure";
    case ERR_TLS: return "TLS failure";
    case ERR_WANT_IO: return "waiting for I/O";
    case ERR_CLOSED: return "closed";
    case ERR_NOT_FOUND: return "not found";
    case ERR_CONFIG: return "configuration error";
    case ERR_INTERNAL: return "internal error";
    case ERR_EXISTS: return "already exists";
    }
    return "unknown error";
}
