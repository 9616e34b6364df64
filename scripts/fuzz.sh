#!/usr/bin/env bash
# Coverage-guided fuzzing (libFuzzer, in cargo-fuzz's layout) of what parses untrusted or user-written
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
# The build is what `cargo fuzz build --dev --sanitizer none` does, without installing
# cargo-fuzz (compiling it was a minute of every CI run): cargo builds the fuzz/ package for an
# explicit --target (so the flags skip build scripts) with cargo-fuzz 0.13's SanitizerCoverage
# flags, all stable rustc options; libfuzzer-sys links libFuzzer's main into each target. No
# sanitizer is used (the fuzzed code is safe Rust, whose failures are panics, which libFuzzer
# catches without one); the coverage instrumentation that guides libFuzzer is the same.
#
# FUZZ_PHASE=build only builds, FUZZ_PHASE=fuzz only fuzzes what an earlier build left (CI
# builds while its browser tests run, which leave a core idle); the default does both.
#
# FUZZ_BUILD=dev (default) compiles without optimisation, cheaper to build for fewer executions
# per second; FUZZ_BUILD=release gets more out of each second of longer runs. Both have debug
# assertions and overflow checks. The build goes to target/fuzz, so reruns are incremental.
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER_TARGET="${1:-60}"
shift || true
TARGETS=("$@")
if [ ${#TARGETS[@]} -eq 0 ]; then
    TARGETS=(webhook studio_flow liquid sms markdown)
fi
TRIPLE="$(rustc -vV | sed -n 's/^host: //p')"
case "${FUZZ_BUILD:-dev}" in
    dev) PROFILE=(); OUT=debug ;;
    release) PROFILE=(--release); OUT=release ;;
    *) echo "fuzz: FUZZ_BUILD must be dev or release" >&2; exit 2 ;;
esac
SANCOV="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
 -Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
 -Cllvm-args=-sanitizer-coverage-trace-compares -Cllvm-args=-simplifycfg-branch-fold-threshold=0 \
 --cfg fuzzing -Clink-dead-code -Cllvm-args=-sanitizer-coverage-stack-depth -Cdebug-assertions"
# The main package's pinned versions (fuzz/ is a workspace of its own, and its lock file is
# not committed); cargo adds what only the fuzz targets need.
cp Cargo.lock fuzz/Cargo.lock

PHASE="${FUZZ_PHASE:-all}"
case "$PHASE" in
    all|build|fuzz) ;;
    *) echo "fuzz: FUZZ_PHASE must be all, build or fuzz" >&2; exit 2 ;;
esac

if [ "$PHASE" != fuzz ]; then
    start=$(date +%s)
    echo "== building the fuzz targets (${FUZZ_BUILD:-dev}, SanitizerCoverage)"
    # No debug info by default: the build is the slow part of a CI run (every dependency is
    # instrumented), and a crash is found by its panic message and saved input; set
    # CARGO_PROFILE_DEV_DEBUG=true to investigate one with a debugger.
    CARGO_PROFILE_DEV_DEBUG="${CARGO_PROFILE_DEV_DEBUG:-false}" RUSTFLAGS="$SANCOV ${RUSTFLAGS:-}" \
        cargo build --manifest-path fuzz/Cargo.toml --target "$TRIPLE" "${PROFILE[@]}" --bins \
        --target-dir "$PWD/target/fuzz"
    echo "== built in $(( $(date +%s) - start )) s"
fi
[ "$PHASE" = build ] && exit 0

for target in "${TARGETS[@]}"; do
    work="$(mktemp -d)"
    echo "== fuzzing $target for ${SECONDS_PER_TARGET} s"
    # -seed: the same run on the same machine; -timeout: a hang is a failure too.
    status=0
    mkdir -p "fuzz/artifacts/$target"
    "target/fuzz/$TRIPLE/$OUT/$target" -artifact_prefix="fuzz/artifacts/$target/" \
        "$work" "fuzz/corpus/$target" -max_total_time="$SECONDS_PER_TARGET" -seed=1 -timeout=10 -rss_limit_mb=2048 \
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
