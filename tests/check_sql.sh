#!/bin/sh
# Proves no SQL is assembled at run time:
#  - only src/store.c includes sqlite3.h or calls sqlite3_* functions;
#  - store.c never formats strings (sqlite3_mprintf/vmprintf/snprintf/sprintf/
#    strcat) and never calls sqlite3_exec with anything but a string literal;
#  - every sqlite3_prepare* call takes its SQL from the constant statement
#    table, never from a variable built in the function.
set -eu
src=${1:-src}
fail=0
bad=$(grep -l 'sqlite3' "$src"/*.c "$src"/*.h | grep -v "$src/store\.[ch]$" || true)
if [ -n "$bad" ]; then echo "FAIL: SQLite used outside store.c: $bad"; fail=1; fi
if grep -nE 'sqlite3_v?mprintf|sqlite3_str_|[^a-z_]v?s?n?printf\s*\(|strcat|strncat' "$src/store.c"; then
    echo "FAIL: store.c formats strings (SQL must be constant literals)"; fail=1
fi
if grep -nE 'sqlite3_exec\s*\([^,]+,\s*[^" ]' "$src/store.c"; then
    echo "FAIL: sqlite3_exec with a non-literal statement"; fail=1
fi
if grep -nE 'sqlite3_prepare[_a-z0-9]*\s*\([^,]+,\s*[a-z_]+\s*,' "$src/store.c" | grep -vE 'sql|stmt_sql|text|q->|STMT' ; then
    echo "FAIL: sqlite3_prepare with SQL from an unexpected variable"; fail=1
fi
[ $fail -eq 0 ] && echo "OK: no SQL is built at run time"
exit $fail
