/*
 * store.c - SQLite storage. Every statement is prepared once with bound
 * parameters; no SQL text is ever built from input.
 */
#include "store.h"

#include <sqlite3.h>

const char *store_library_version(void)
{
    return sqlite3_libversion();
}
