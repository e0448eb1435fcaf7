#!/usr/bin/env bash
# Fetch, verify, unpack and build notesd's pinned third-party inputs.
#
# Reads third_party/deps.lock, downloads each listed file from this machine's
# own Debian mirror with the suite each row names (the mirror's host is read
# from apt's configuration, never written in the repository), checks each
# SHA-256 against the lock, unpacks source packages with dpkg-source so
# Debian's patches apply, and builds static libraries into a git-ignored
# prefix:
#   $OUT/prefix/include   mbedtls/, psa/, llhttp.h, cJSON.h, our mbedTLS config
#   $OUT/prefix/lib       libmbedtls.a libmbedx509.a libmbedcrypto.a libllhttp.a
#   $OUT/prefix/src       cJSON.c (Debian ships no static cJSON), and
#                         common_passwords.c (zxcvbn's ranked list, compiled in)
# The system's apt state is never touched: apt runs with a private state,
# cache and sources folder under $OUT/apt.
#
# Usage: third_party/fetch.sh [OUT]   (default: third_party/build)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out=${1:-$here/build}
lock=$here/deps.lock
mbed_config=$here/notesd_mbedtls_config.h
prefix=$out/prefix
cache=$out/cache

die() { echo "third_party/fetch.sh: $*" >&2; exit 1; }

# Rebuild only when the lock, our mbedTLS configuration or this script change.
want_stamp=$(cat "$lock" "$mbed_config" "$here/fetch.sh" | sha256sum | cut -d' ' -f1)
if [ -f "$prefix/.stamp" ] && [ "$(cat "$prefix/.stamp")" = "$want_stamp" ]; then
    exit 0
fi

mkdir -p "$cache"

# Lock rows: kind suite package version file sha256
lock_rows() { grep -vE '^\s*(#|$)' "$lock"; }

have_all_files() {
    local kind suite pkg ver file sum
    while read -r kind suite pkg ver file sum; do
        [ -f "$cache/$file" ] || return 1
        echo "$sum  $cache/$file" | sha256sum --quiet -c - >/dev/null 2>&1 || return 1
    done < <(lock_rows)
}

setup_private_apt() {
    local codename uri release apt_dir
    apt_dir=$out/apt
    mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$apt_dir/parts" "$apt_dir/prefs"
    codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
    [ -n "$codename" ] || die "cannot read VERSION_CODENAME from /etc/os-release"
    : > "$apt_dir/sources.list"
    # apt itself resolves every configured source (one-line and deb822 files);
    # keep the Debian archive and its security archive, with each suite the
    # lock names in place of the machine's own.
    local suites
    suites=$(lock_rows | awk '{print $2}' | sort -u)
    while read -r uri release; do
        for suite in $suites; do
            case $release in
                "$codename") echo "deb-src $uri $suite main" >> "$apt_dir/sources.list"
                             echo "deb [arch=amd64] $uri $suite main" >> "$apt_dir/sources.list" ;;
                "$codename-security") echo "deb-src $uri $suite-security main" >> "$apt_dir/sources.list"
                                      echo "deb [arch=amd64] $uri $suite-security main" >> "$apt_dir/sources.list" ;;
            esac
        done
    done < <(apt-get indextargets --format '$(REPO_URI) $(RELEASE)' | sort -u)
    [ -s "$apt_dir/sources.list" ] || die "no Debian '$codename' source found in the apt configuration"
    APT_OPTS=(-q -oDir::State::Lists="$apt_dir/lists" -oDir::Cache="$apt_dir/cache"
              -oDir::Etc::SourceList="$apt_dir/sources.list" -oDir::Etc::SourceParts="$apt_dir/parts"
              -oDir::Etc::Preferences=/dev/null -oDir::Etc::PreferencesParts="$apt_dir/prefs"
              -oDebug::NoLocking=1 -oAPT::Sandbox::User="$(id -un)")
    apt-get "${APT_OPTS[@]}" update >"$apt_dir/update.log" 2>&1 ||
        die "apt-get update failed (see $apt_dir/update.log)"
}

download_all() {
    local kind suite pkg ver file sum
    setup_private_apt
    # One download per package version; apt verifies against the signed index.
    while read -r kind suite pkg ver; do
        ( cd "$cache" &&
          case $kind in
              source) apt-get "${APT_OPTS[@]}" source --download-only "$pkg=$ver" ;;
              binary) apt-get "${APT_OPTS[@]}" download "$pkg=$ver" ;;
          esac ) >"$out/apt/download-$pkg.log" 2>&1 ||
            die "pinned $pkg $ver is not available from $suite any more (see $out/apt/download-$pkg.log); update third_party/deps.lock"
    done < <(lock_rows | awk '{print $1, $2, $3, $4}' | sort -u)
    # Our lock is the final word, whatever apt accepted.
    while read -r kind suite pkg ver file sum; do
        [ -f "$cache/$file" ] || die "$file was not downloaded"
        echo "$sum  $cache/$file" | sha256sum --quiet -c - >/dev/null 2>&1 ||
            die "SHA-256 mismatch for $file: expected $sum, got $(sha256sum "$cache/$file" | cut -d' ' -f1)"
    done < <(lock_rows)
}

file_of() { lock_rows | awk -v p="$1" -v s="$2" '$3==p && $5 ~ s {print $5; exit}'; }

hardening_cflags="-O2 -g -fPIE -fstack-protector-strong -fstack-clash-protection -fcf-protection -D_FORTIFY_SOURCE=2"

# make mbedTLS's static libraries in $1 with our configuration and the
# hardening flags, then any extra flags ($2: a later -O wins).
make_mbedtls() {
    make -C "$1/library" -j"$(nproc)" static CC="${CC:-gcc}" \
        CFLAGS="$hardening_cflags ${2:-} -I$here -DMBEDTLS_CONFIG_FILE='<notesd_mbedtls_config.h>'" \
        >>"$out/mbedtls-build.log" 2>&1 || die "mbedTLS build failed (see $out/mbedtls-build.log)"
}

build_mbedtls() {
    local src=$out/src/mbedtls
    rm -rf "$src"
    dpkg-source -x "$cache/$(file_of mbedtls '\.dsc$')" "$src" >"$out/mbedtls-unpack.log" 2>&1 ||
        die "dpkg-source failed for mbedtls (see $out/mbedtls-unpack.log)"
    : >"$out/mbedtls-build.log"
    make_mbedtls "$src"
    # HACL*'s Curve25519 (Everest) again at -O3, archived in place of the
    # -O2 object: at -O2 gcc keeps its 5-limb field loops rolled, and one
    # X25519 scalar multiplication costs 1.09 M instructions instead of
    # 0.51 M; an X25519 is a third of a full handshake and two thirds of a
    # resumed one. The code is branch-free by construction; the test
    # x25519-constant-time checks the -O3 object under memcheck.
    rm -f "$src/3rdparty/everest/library/Hacl_Curve25519_joined.o"
    make_mbedtls "$src" -O3
    # AES-GCM's AES-NI code with SSSE3, which every CPU with AES-NI has:
    # gcc then reverses GHASH's 16-byte blocks with one pshufb instead of
    # three byte loops, and mbedtls_aesni_gcm_mult() costs a quarter of its
    # instructions (20.5 k -> 5.6 k per keep-alive GET, a request moving
    # ~80 blocks). mbedTLS calls this object only after cpuid reported AES-NI.
    # gcm.c at -O3 folds its per-block masking (another 3 k per GET). The
    # test gcm-constant-time checks both under memcheck.
    rm -f "$src/library/aesni.o"
    make_mbedtls "$src" -mssse3
    rm -f "$src/library/gcm.o"
    make_mbedtls "$src" -O3
    cp -r "$src/include/mbedtls" "$src/include/psa" "$prefix/include/"
    # mbedtls/ecdh.h includes everest/everest.h (MBEDTLS_ECDH_VARIANT_EVEREST_ENABLED)
    cp -r "$src/3rdparty/everest/include/everest" "$prefix/include/"
    cp "$src/library/libmbedtls.a" "$src/library/libmbedx509.a" "$src/library/libmbedcrypto.a" "$prefix/lib/"
}

unpack_llhttp() {
    local tmp=$out/src/llhttp
    rm -rf "$tmp"
    dpkg-deb -x "$cache/$(file_of libllhttp-dev '\.deb$')" "$tmp"
    cp "$tmp/usr/include/llhttp.h" "$prefix/include/"
    cp "$tmp"/usr/lib/*/libllhttp.a "$prefix/lib/"
}

unpack_cjson() {
    local src=$out/src/cjson
    rm -rf "$src"
    dpkg-source -x "$cache/$(file_of cjson '\.dsc$')" "$src" >"$out/cjson-unpack.log" 2>&1 ||
        die "dpkg-source failed for cjson (see $out/cjson-unpack.log)"
    cp "$src/cJSON.h" "$prefix/include/"
    cp "$src/cJSON.c" "$prefix/src/"
}

# zxcvbn's frequency_lists.py holds a ranked, comma-separated password list.
# Compile it in as a sorted array for binary search (lower-cased, unique,
# printable ASCII only, so it can be emitted as C string literals as is).
unpack_passwords() {
    local tmp=$out/src/zxcvbn py
    rm -rf "$tmp"
    dpkg-deb -x "$cache/$(file_of python3-zxcvbn '\.deb$')" "$tmp"
    py=$(find "$tmp" -name frequency_lists.py | head -1)
    [ -n "$py" ] || die "frequency_lists.py not found in python3-zxcvbn"
    sed -n 's/^ *"passwords": "\([^"]*\)".*$/\1/p' "$py" | tr ',' '\n' |
        tr 'A-Z' 'a-z' | LC_ALL=C grep -E '^[!#-~]+$' | grep -v '\\' | LC_ALL=C sort -u > "$tmp/passwords.txt"
    local n
    n=$(wc -l < "$tmp/passwords.txt")
    [ "$n" -ge 10000 ] || die "the zxcvbn password list has only $n entries"
    {
        echo "/* Generated by third_party/fetch.sh from python3-zxcvbn; do not edit. */"
        echo "#include <stddef.h>"
        echo "const size_t common_passwords_count = $n;"
        echo "const char *const common_passwords[] = {"
        sed 's/.*/    "&",/' "$tmp/passwords.txt"
        echo "};"
    } > "$prefix/src/common_passwords.c"
}

have_all_files || download_all
rm -rf "$prefix"
mkdir -p "$prefix/include" "$prefix/lib" "$prefix/src" "$out/src"
cp "$mbed_config" "$prefix/include/"
build_mbedtls
unpack_llhttp
unpack_cjson
unpack_passwords
echo "$want_stamp" > "$prefix/.stamp"
echo "third_party: mbedTLS, llhttp and cJSON ready in $prefix"
