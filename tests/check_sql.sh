#!/bin/sh
# Proves no SQL is assembled at run time:
#  - only the store's files (src/store*.c, src/store_int.h) include
#    sqlite3.h or call sqlite3_* functions;
#  - they never format strings (sqlite3_mprintf/vmprintf/snprintf/sprintf/
#    strcat) and never call sqlite3_exec with anything but a string literal;
#  - every sqlite3_prepare* call takes its SQL from a constant table, never
#    from a variable built in the function.
set -eu
src=${1:-src}
fail=0
store="$src/store.c $src/store_open.c $src/store_rows.c $src/store_int.h"
for f in $store; do [ -f "$f" ] || { echo "FAIL: $f is missing"; fail=1; }; done
bad=$(grep -l 'sqlite3' "$src"/*.c "$src"/*.h | grep -vE "$src/store(_open|_rows|_int)?\.[ch]$" || true)
if [ -n "$bad" ]; then echo "FAIL: SQLite used outside the store: $bad"; fail=1; fi
# shellcheck disable=SC2086
if grep -nE 'sqlite3_v?mprintf|sqlite3_str_|[^a-z_]v?s?n?printf\s*\(|strcat|strncat' $store; then
    echo "FAIL: the store formats strings (SQL must be constant literals)"; fail=1
fi
# shellcheck disable=SC2086
if grep -nE 'sqlite3_exec\s*\([^,]+,\s*[^" ]' $store; then
    echo "FAIL: sqlite3_exec with a non-literal statement"; fail=1
fi
# shellcheck disable=SC2086
if grep -nE 'sqlite3_prepare[_a-z0-9]*\s*\([^,]+,\s*[a-z_]+\s*,' $store | grep -vE 'sql|stmt_sql|text|q->|STMT' ; then
    echo "FAIL: sqlite3_prepare with SQL from an unexpected variable"; fail=1
fi
[ $fail -eq 0 ] && echo "OK: no SQL is built at run time"
exit $fail
