#!/bin/sh
# The binary must carry mbedTLS, llhttp, libuv, SQLite, cJSON and argon2 inside
# it: ldd may list only the C library's own parts, so it can be copied alone
# to another Debian 12 machine.
set -eu
bin=$1
out=$(ldd "$bin")
echo "$out"
if echo "$out" | grep -Eiq 'mbed|llhttp|libuv|sqlite|cjson|argon2'; then
    echo "FAIL: a third-party library is linked dynamically" >&2
    exit 1
fi
extra=$(echo "$out" | grep -Ev 'linux-vdso|libc\.so|libm\.so|ld-linux|libpthread|libdl\.so|librt\.so' || true)
if [ -n "$extra" ]; then
    echo "FAIL: unexpected shared libraries: $extra" >&2
    exit 1
fi
echo "OK: only C library parts are dynamic"
