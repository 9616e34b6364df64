#!/usr/bin/env bash
# Coverage-guided fuzzing (cargo-fuzz, libFuzzer) of what parses untrusted or user-written
# input: the webhook form parser with its signature check, the Studio flow loader, Liquid
# rendering, the SMS segmenter and splitter, and the markdown converter (fuzz/fuzz_targets,
# all thin wrappers over chatwire::fuzz).
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]      default: 60 s for each of the five
#
# scripts/test.sh (CI) runs `scripts/fuzz.sh 10`: 10 s of libFuzzer per target, after one
# instrumented build. Exits non-zero when a target crashes (a panic, a broken assertion of
# chatwire::fuzz, a 10 s hang); the crashing input is saved under fuzz/artifacts/<target>/.
# New inputs found go to a temporary directory, not to the committed corpus (fuzz/corpus).
#
# Stable Rust is enough: cargo-fuzz passes nightly-only flags (-Z...) to rustc, which
# RUSTC_BOOTSTRAP=1 lets a stable toolchain take. No sanitizer is used (the fuzzed code is safe
# Rust, whose failures are panics, which libFuzzer catches without one; AddressSanitizer would
# slow the build and the runs); the coverage instrumentation (SanitizerCoverage) is the same.
#
# The build: FUZZ_BUILD=dev (default) compiles without optimisation, as a rule cheaper to build
# than cargo-fuzz's release default, for fewer executions per second; with FUZZ_BUILD=release,
# longer runs get more out of each second. Both have debug assertions and
# overflow checks. cargo-fuzz is installed from crates.io into target/cargo-fuzz-bin once, and
# the build goes to target/fuzz, so reruns are incremental.
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER_TARGET="${1:-60}"
shift || true
TARGETS=("$@")
if [ ${#TARGETS[@]} -eq 0 ]; then
    TARGETS=(webhook studio_flow liquid sms markdown)
fi
CARGO_FUZZ_VERSION=0.13.2
ROOT="$PWD/target/cargo-fuzz-bin"
CARGO_FUZZ="$ROOT/bin/cargo-fuzz"
if ! "$CARGO_FUZZ" --version 2>/dev/null | grep -q " $CARGO_FUZZ_VERSION\$"; then
    echo "== installing cargo-fuzz $CARGO_FUZZ_VERSION from crates.io into $ROOT"
    cargo install cargo-fuzz --locked --version "$CARGO_FUZZ_VERSION" --root "$ROOT"
fi

case "${FUZZ_BUILD:-dev}" in
    dev) BUILD=(--dev) ;;
    release) BUILD=(--release --debug-assertions) ;;
    *) echo "fuzz: FUZZ_BUILD must be dev or release" >&2; exit 2 ;;
esac
# The main package's pinned versions (fuzz/ is a workspace of its own, and its lock file is
# not committed); cargo adds what only the fuzz targets need.
cp Cargo.lock fuzz/Cargo.lock
# fuzz VERB TARGET... [-- LIBFUZZER_ARGS...]: the build options go before the `--`.
fuzz() {
    local verb=$1
    shift
    # No debug info by default: the build is the slow part of a CI run (every dependency is
    # instrumented), and a crash is found by its panic message and saved input; set
    # CARGO_PROFILE_DEV_DEBUG=true to investigate one with a debugger.
    CARGO_PROFILE_DEV_DEBUG="${CARGO_PROFILE_DEV_DEBUG:-false}" \
        RUSTC_BOOTSTRAP=1 "$CARGO_FUZZ" "$verb" "${BUILD[@]}" --sanitizer none \
        --target-dir "$PWD/target/fuzz" "$@"
}

start=$(date +%s)
echo "== building the fuzz targets (${FUZZ_BUILD:-dev}, SanitizerCoverage)"
fuzz build
echo "== built in $(( $(date +%s) - start )) s"

for target in "${TARGETS[@]}"; do
    work="$(mktemp -d)"
    echo "== fuzzing $target for ${SECONDS_PER_TARGET} s"
    # -seed: the same run on the same machine; -timeout: a hang is a failure too.
    status=0
    fuzz run "$target" "$work" "fuzz/corpus/$target" -- \
        -max_total_time="$SECONDS_PER_TARGET" -seed=1 -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 >"$work.log" 2>&1 || status=$?
    grep -E '^(#[0-9]+[[:space:]]+(INITED|DONE)|stat::(number_of_executed_units|new_units_added))' "$work.log" || true
    if [ "$status" -ne 0 ]; then
        tail -n 40 "$work.log"
        echo "== $target crashed (exit $status); the input is under fuzz/artifacts/$target/" >&2
        exit 1
    fi
    echo "== $target: no crash; $(find "$work" -type f | wc -l) new inputs found (not committed)"
    rm -rf "$work" "$work.log"
done
