/*
 * tls_certgen.h - development certificates made by notesd itself.
 */
#ifndef NOTESD_TLS_CERTGEN_H
#define NOTESD_TLS_CERTGEN_H

#include <stddef.h>
#include <time.h>

/**
 * Write DIR/cert.pem (mode 0644) and DIR/key.pem (mode 0600): a fresh
 * ECDSA P-256 key and a self-signed certificate for `host`, valid 90 days.
 * DIR is created if missing; existing files are replaced. PSA crypto must be
 * initialised. 0, or a negative ERR_* with a reason in `err`. Blocking.
 */
int tls_gen_cert(const char *host, const char *dir, char *err, size_t errlen);

/** The same with an explicit validity period (tests make expired and
 *  not-yet-valid certificates with it). */
int tls_gen_cert_valid(const char *host, const char *dir, time_t not_before, time_t not_after,
                       char *err, size_t errlen);

#endif
