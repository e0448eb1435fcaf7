#!/bin/sh
# fuzz/smoke.sh BUILD_DIR [TARGET...] - run each fuzz target for a short,
# fixed time and fail on any finding (crash, sanitizer report, leak, timeout,
# out-of-memory). Called by `make fuzz-smoke`; see fuzz/README.md.
#
# Each target starts from its committed seed corpus (read, never written)
# plus the inputs of past findings in tests/regressions/fuzz_<target>/, and
# writes what it finds to a fresh temporary directory, so runs do not grow
# the repository. Findings are kept in BUILD_DIR/fuzz-artifacts/.
# Seeds and dictionaries name keys only as @KEY_A@..@KEY_D@ and @ZERO_KEY@
# (no key is committed, not even a test's): each run fills in fresh ones.
# Environment: FUZZ_SECONDS (default 60) per target.
set -eu
LC_ALL=C
export LC_ALL

[ $# -ge 1 ] || { echo "usage: $0 BUILD_DIR [TARGET...]" >&2; exit 2; }
build=$1
shift
here=$(cd "$(dirname "$0")" && pwd)
seconds=${FUZZ_SECONDS:-60}
targets=${*:-http_request json_body field_decrypt config audit_verify}
artifacts="$build/fuzz-artifacts"
mkdir -p "$artifacts"

# Longest input per target: enough to pass every small limit and the
# default request-target limit (8 KiB), the longest title (4 KiB), and a
# few sealed values or environment lines.
max_len() {
    case $1 in
    http_request) echo 16384 ;;
    json_body) echo 8192 ;;
    audit_verify) echo 16384 ;;
    *) echo 4096 ;;
    esac
}

key() { head -c 32 /dev/urandom | base64 -w0; }
KEY_A=$(key) KEY_B=$(key) KEY_C=$(key) KEY_D=$(key)
ZERO_KEY=$(head -c 32 /dev/zero | base64 -w0)

# Copy file $1 to $2 with the key placeholders filled in (base64 has no '|').
fill() {
    if grep -q '@KEY_[A-D]@\|@ZERO_KEY@' "$1"; then
        sed -e "s|@KEY_A@|$KEY_A|g" -e "s|@KEY_B@|$KEY_B|g" -e "s|@KEY_C@|$KEY_C|g" \
            -e "s|@KEY_D@|$KEY_D|g" -e "s|@ZERO_KEY@|$ZERO_KEY|g" "$1" >"$2"
    else
        cp "$1" "$2"
    fi
}

fail=0
summary=""
for t in $targets; do
    bin="$build/fuzz/fuzz_$t"
    [ -x "$bin" ] || { echo "FAIL: $bin not built (make fuzz)" >&2; exit 2; }
    work=$(mktemp -d "${TMPDIR:-/tmp}/notesd-fuzz-$t.XXXXXX")
    mkdir "$work/new" "$work/tmp" "$work/seed"
    for f in "$here/corpus/$t"/*; do
        fill "$f" "$work/seed/${f##*/}"
    done
    log="$artifacts/$t.log"
    dict=""
    if [ -f "$here/$t.dict" ]; then
        fill "$here/$t.dict" "$work/$t.dict"
        dict="-dict=$work/$t.dict"
    fi
    regressions=""
    [ -d "$here/../tests/regressions/fuzz_$t" ] && regressions="$here/../tests/regressions/fuzz_$t"
    echo "== fuzz_$t: ${seconds}s from fuzz/corpus/$t"
    # -timeout: one input taking 10 s is a finding (a hang).
    # $dict and $regressions are unquoted on purpose: empty when absent.
    # shellcheck disable=SC2086
    if TMPDIR="$work/tmp" "$bin" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -max_len="$(max_len "$t")" \
        -print_final_stats=1 -artifact_prefix="$artifacts/$t-" $dict \
        "$work/new" "$work/seed" $regressions >"$log" 2>&1; then
        rc=0
    else
        rc=$?
    fi
    # The last status line ("#N DONE cov: .. ft: .. corp: ..") and the stats.
    done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -n 1 || true)
    runs=$(sed -n 's/^stat::number_of_executed_units:[[:space:]]*//p' "$log" | tail -n 1)
    cov=$(echo "$done_line" | sed -n 's/.*cov: \([0-9]*\).*/\1/p')
    ft=$(echo "$done_line" | sed -n 's/.*ft: \([0-9]*\).*/\1/p')
    corp=$(echo "$done_line" | sed -n 's/.*corp: \([0-9]*\/[0-9a-zA-Z]*\).*/\1/p')
    rm -rf "$work"
    if [ $rc -ne 0 ] || grep -Eq 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:|invariant broken' "$log"; then
        echo "FAIL: fuzz_$t (exit $rc); log: $log"
        grep -E 'ERROR:|SUMMARY:|runtime error:|invariant broken|Test unit written' "$log" | head -n 20 || true
        fail=1
        summary="$summary$(printf '%-14s FAIL  see %s' "$t" "$log")
"
    else
        summary="$summary$(printf '%-14s ok    runs %-9s cov %-6s ft %-6s corpus %s' "$t" "${runs:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}")
"
    fi
done
echo "== fuzz-smoke (${seconds}s per target)"
printf '%s' "$summary"
exit $fail
