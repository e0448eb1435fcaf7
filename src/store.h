/*
 * store.h - persistent storage behind a small interface (SQLite today).
 *
 * The only module that knows SQL exists. Handlers call store_* functions and
 * never see a statement or a query string.
 */
#ifndef NOTESD_STORE_H
#define NOTESD_STORE_H

/** The linked SQLite version. */
const char *store_library_version(void);

#endif
