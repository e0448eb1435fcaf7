#!/bin/sh
# check_hardening.sh BINARY - proves the built ELF carries the hardening the
# release flags ask for, by reading the file itself (binutils' readelf), not
# by trusting the build system:
#   PIE          ELF type DYN and DT_FLAGS_1 has PIE (a shared library is DYN too)
#   full RELRO   a PT_GNU_RELRO segment and immediate binding (DF_BIND_NOW,
#                DF_1_NOW or DT_BIND_NOW): with lazy binding the GOT stays
#                writable and RELRO is only partial
#   NX           PT_GNU_STACK present and not executable
#   no TEXTREL   text relocations would make code pages writable
#   canary       __stack_chk_fail referenced (-fstack-protector-strong)
#   fortify      some __*_chk function other than __stack_chk_fail referenced
#                (_FORTIFY_SOURCE)
# Control-flow protection (the x86 IBT/SHSTK property note) is reported but
# not required: the linker sets it only when every linked object has it, and
# the third-party static libraries are built without -fcf-protection.
# Exit 0 when all hold, 1 otherwise (every failure is listed), 2 on misuse.
set -eu
LC_ALL=C
export LC_ALL

if [ $# -ne 1 ] || [ ! -f "$1" ]; then
    echo "usage: $0 BINARY" >&2
    exit 2
fi
bin=$1
command -v readelf >/dev/null 2>&1 || { echo "FAIL: readelf (binutils) not found" >&2; exit 2; }

header=$(readelf -hW "$bin") || { echo "FAIL: $bin is not an ELF file" >&2; exit 1; }
dynamic=$(readelf -dW "$bin")
segments=$(readelf -lW "$bin")
dynsyms=$(readelf --dyn-syms -W "$bin")
notes=$(readelf -nW "$bin" 2>/dev/null || true)

fail=0
ok() { echo "ok:   $1"; }
bad() { echo "FAIL: $1"; fail=1; }

# PIE
if echo "$header" | grep -Eq '^[[:space:]]*Type:[[:space:]]+DYN' &&
   echo "$dynamic" | grep -E '\(FLAGS_1\)' | grep -Eq '[[:space:]]PIE([[:space:]]|$)'; then
    ok "PIE (ELF type DYN, DT_FLAGS_1 PIE)"
else
    bad "not a position-independent executable (link with -fPIE -pie)"
fi

# Full RELRO
if echo "$segments" | grep -Eq '^[[:space:]]*GNU_RELRO[[:space:]]'; then
    if echo "$dynamic" | grep -Eq '\(BIND_NOW\)' ||
       echo "$dynamic" | grep -E '\(FLAGS\)' | grep -Eq '[[:space:]]BIND_NOW([[:space:]]|$)' ||
       echo "$dynamic" | grep -E '\(FLAGS_1\)' | grep -Eq '[[:space:]]NOW([[:space:]]|$)'; then
        ok "full RELRO (GNU_RELRO segment, BIND_NOW)"
    else
        bad "partial RELRO only: no BIND_NOW (link with -Wl,-z,now)"
    fi
else
    bad "no GNU_RELRO segment (link with -Wl,-z,relro,-z,now)"
fi

# NX: the flags column of GNU_STACK must not contain E.
# Fields: type offset vaddr paddr filesz memsz flags... align; the flags
# ("RW", "R E", "RWE") may span two fields.
stack=$(echo "$segments" | awk '$1 == "GNU_STACK" { f = ""; for (i = 7; i < NF; i++) f = f $i; print f }')
if [ -z "$stack" ]; then
    bad "no GNU_STACK segment: the stack defaults to executable (link with -Wl,-z,noexecstack)"
elif echo "$stack" | grep -q 'E'; then
    bad "executable stack (GNU_STACK has E; link with -Wl,-z,noexecstack)"
else
    ok "NX (GNU_STACK not executable)"
fi

# No text relocations.
if echo "$dynamic" | grep -Eq '\(TEXTREL\)' ||
   echo "$dynamic" | grep -E '\(FLAGS\)' | grep -Eq '[[:space:]]TEXTREL([[:space:]]|$)'; then
    bad "text relocations (TEXTREL): some object was not built position-independent"
else
    ok "no text relocations"
fi

# Symbols the binary imports from the C library.
imports=$(echo "$dynsyms" | awk '$7 == "UND" { sub(/@.*/, "", $8); print $8 }' | sort -u)

if echo "$imports" | grep -qx '__stack_chk_fail'; then
    ok "stack protector (__stack_chk_fail referenced)"
else
    bad "no __stack_chk_fail: built without -fstack-protector-strong"
fi

chk=$(echo "$imports" | grep -E '^__[A-Za-z0-9_]+_chk$' | grep -vx '__stack_chk_fail' || true)
if [ -n "$chk" ]; then
    ok "fortified calls ($(echo "$chk" | wc -l) __*_chk functions, e.g. $(echo "$chk" | head -n 3 | tr '\n' ' '))"
else
    bad "no fortified __*_chk calls: built without -D_FORTIFY_SOURCE (needs -O1 or more)"
fi

# Informational only (see the header).
if echo "$notes" | grep -Eq 'x86 feature:.*IBT'; then
    echo "info: CET property note present ($(echo "$notes" | grep -E 'x86 feature' | sed 's/^[[:space:]]*//'))"
else
    echo "info: no CET (IBT/SHSTK) property note: not every linked object has -fcf-protection"
fi

if [ $fail -eq 0 ]; then
    echo "OK: $bin is hardened"
else
    echo "FAIL: $bin lacks the hardening above" >&2
fi
exit $fail
