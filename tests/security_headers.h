/*
 * security_headers.h - the security headers every answer must carry, as the
 * tests expect them (docs: README, shared STANDARDS.md section 5), in one
 * place for the unit and the integration tests. HSTS comes first: the
 * plain-HTTP redirect listener sends all of them but it
 * (expected_security_headers + 1).
 */
#ifndef NOTESD_TEST_SECURITY_HEADERS_H
#define NOTESD_TEST_SECURITY_HEADERS_H

#include <stddef.h>

static const char *const expected_security_headers[][2] = {
    { "Strict-Transport-Security", "max-age=63072000; includeSubDomains" },
    { "X-Content-Type-Options", "nosniff" },
    { "Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'" },
    { "X-Frame-Options", "DENY" },
    { "Referrer-Policy", "no-referrer" },
    { "Cache-Control", "no-store" },
    { "Cross-Origin-Resource-Policy", "same-origin" },
};
#define N_EXPECTED_SECURITY_HEADERS (sizeof(expected_security_headers) / sizeof(expected_security_headers[0]))

#endif
