/*
 * version.h - what `notesd --version` prints: notesd's version and the
 * versions of the libraries linked into it, read from the linked code
 * itself; with --verbose also where each came from (the pinned lock row or
 * the Debian package whose static library was linked) and how this binary
 * was built (compiler, build type, our flags). tools/sbom.py lists the same
 * components, and tests/check_sbom.sh checks that the two agree.
 */
#ifndef NOTESD_VERSION_H
#define NOTESD_VERSION_H

#include <stdbool.h>
#include <stdio.h>

/** notesd's own version (meson.build's project version). Static string. */
const char *version_notesd(void);

/**
 * Print the version report to `f`: one line "NAME VERSION" per component,
 * notesd first, then mbedTLS, llhttp, SQLite, libuv, cJSON; `verbose` adds
 * argon2, utf8proc and the common-password list, an "origin" for each
 * component, and the build's compiler, type and flags. Secrets, paths and the
 * environment are never printed. 0 on success, -1 when writing to `f`
 * failed. Any thread; touches no global state.
 */
int version_print(FILE *f, bool verbose);

#endif
