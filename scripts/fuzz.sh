#!/usr/bin/env bash
# Coverage-guided fuzzing (cargo-fuzz, libFuzzer) of what parses untrusted or user-written
# input: the webhook form parser with its signature check, the Studio flow loader, Liquid
# rendering, the SMS segmenter and splitter, and the markdown converter (fuzz/fuzz_targets,
# all thin wrappers over chatwire::fuzz).
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]      default: 60 s for each of the five
#
# Needs a nightly Rust toolchain (cargo-fuzz builds with sanitizers); cargo-fuzz itself is
# installed from crates.io when missing. A fresh machine of the project's kind has only the
# stable toolchain, so CI does not run this: it replays the committed corpus (fuzz/corpus) with
# mutations on stable instead (tests/fuzz_corpus.rs). New inputs go to a temporary directory,
# not to the committed corpus; a crash is saved under fuzz/artifacts/<target>/ and fails the
# script.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

SECONDS_PER_TARGET="${1:-60}"
shift || true
TARGETS=("$@")
if [ ${#TARGETS[@]} -eq 0 ]; then
    TARGETS=(webhook studio_flow liquid sms markdown)
fi

if ! rustup toolchain list | grep -q '^nightly'; then
    echo "fuzz: no nightly toolchain (see 'rustup toolchain list'); cargo-fuzz needs one" >&2
    exit 2
fi
if ! command -v cargo-fuzz >/dev/null 2>&1; then
    echo "== installing cargo-fuzz from crates.io"
    cargo install cargo-fuzz --locked
fi

for target in "${TARGETS[@]}"; do
    work="$(mktemp -d)"
    echo "== fuzzing $target for ${SECONDS_PER_TARGET} s"
    cargo +nightly fuzz run "$target" "$work" "corpus/$target" -- \
        -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
    echo "== $target: no crash; $(find "$work" -type f | wc -l) new inputs found (not committed)"
    rm -rf "$work"
done
