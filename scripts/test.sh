#!/usr/bin/env bash
# The whole test suite, as README and CI run it: the OpenAPI document validated and checked
# against the real binary by schemathesis (scripts/schemathesis.sh), Rust unit and end-to-end
# tests on SQLite and PostgreSQL, ChatBotKit's JS SDK and the /console inbox (Debian's headless
# Chromium, installed with apt when missing) against the real binary, then a short
# coverage-guided fuzzing run of every fuzz target (scripts/fuzz.sh, built in the background
# while the steps after the Rust tests run). Exits non-zero on
# any failure.
#
# PostgreSQL: the local server on 127.0.0.1:5432 (trust auth) is started if it is down; each
# run gets a fresh database chatwire_ci_<timestamp> and tests create their own databases
# beside it. Override the server with CHATWIRE_TEST_PG_ADMIN_URL.
set -euo pipefail

cd "$(dirname "$0")/.."

ADMIN_URL="${CHATWIRE_TEST_PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
PG_HOST_URL="${ADMIN_URL%/*}"

psql_admin() {
    psql "$ADMIN_URL" -v ON_ERROR_STOP=1 -Atq "$@"
}

if ! pg_isready -q -d "$ADMIN_URL"; then
    echo "== starting PostgreSQL"
    # shellcheck disable=SC2046
    pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start
    for _ in $(seq 1 60); do
        pg_isready -q -d "$ADMIN_URL" && break
        sleep 0.5
    done
    pg_isready -d "$ADMIN_URL"
fi

# Databases left behind by earlier runs. One still in use (another run in progress) refuses
# the drop, and is kept.
for db in $(psql_admin -c "SELECT datname FROM pg_database WHERE datname LIKE 'cw\_test\_%' OR datname LIKE 'chatwire\_ci\_%'"); do
    psql_admin -c "DROP DATABASE IF EXISTS \"$db\"" >/dev/null 2>&1 || echo "   kept $db (in use)"
done

CI_DB="chatwire_ci_$(date +%s)_$$"
psql_admin -c "CREATE DATABASE $CI_DB"
export CHATWIRE_TEST_POSTGRES_URL="$PG_HOST_URL/$CI_DB"
echo "== PostgreSQL tests use $CHATWIRE_TEST_POSTGRES_URL"

echo "== cargo build"
cargo build

echo "== OpenAPI document (chatwire openapi) valid under openapi-spec-validator"
VENV=target/openapi-venv
if [ ! -x "$VENV/bin/openapi-spec-validator" ]; then
    # Debian's Python needs python3-venv for ensurepip.
    python3 -m venv "$VENV" 2>/dev/null || {
        apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
        rm -rf "$VENV" && python3 -m venv "$VENV"
    }
    "$VENV/bin/pip" install --quiet "openapi-spec-validator>=0.7,<0.8"
fi
target/debug/chatwire openapi > target/openapi.json
"$VENV/bin/openapi-spec-validator" target/openapi.json

echo "== cargo test (SQLite and PostgreSQL)"
cargo test --all-targets

# The fuzz targets' instrumented build (about five minutes, CPU-bound) overlaps the steps after
# it, which mostly wait on a server, a browser or Python and leave a core idle.
echo "== building the fuzz targets in the background (log: target/fuzz-build.log)"
mkdir -p target
FUZZ_PHASE=build scripts/fuzz.sh >target/fuzz-build.log 2>&1 &
fuzz_build=$!
# A failing step ends the run: the build is not left behind it.
# (Each command ends in `|| true`: errexit applies inside the trap, where a pkill that finds
# nothing would turn a passing run into exit status 1.)
trap 'pkill -P "$fuzz_build" 2>/dev/null || true; kill "$fuzz_build" 2>/dev/null || true' EXIT

echo "== OpenAPI document against the server (schemathesis, 0 mismatches and 0 server errors)"
# One deterministic pass (seed 1, SCHEMATHESIS_MAX_EXAMPLES per operation; about 2 to 3
# minutes); the timeout only guards against a hang.
step=$SECONDS
SCHEMATHESIS_MAX_EXAMPLES="${SCHEMATHESIS_MAX_EXAMPLES:-10}" \
    timeout 900 scripts/schemathesis.sh "$PWD/target/debug/chatwire"
echo "== schemathesis took $((SECONDS - step)) s"

echo "== ChatBotKit SDK against target/debug/chatwire"
npm ci --prefix tests/sdk --no-audit --no-fund
CHATWIRE_BIN="${CHATWIRE_BIN:-$PWD/target/debug/chatwire}" node --test tests/sdk/

echo "== the /console inbox in headless Chromium against target/debug/chatwire"
if ! command -v chromium >/dev/null 2>&1; then
    # Debian's Chromium: test tools may not download their own browser here.
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get install -y -q chromium >/dev/null \
        || { $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q chromium >/dev/null; }
fi
npm ci --prefix tests/browser --no-audit --no-fund
CHATWIRE_BIN="${CHATWIRE_BIN:-$PWD/target/debug/chatwire}" node --test --test-concurrency=1 tests/browser/

echo "== coverage-guided fuzzing (libFuzzer, SanitizerCoverage on stable, ${FUZZ_SECONDS:-10} s per target)"
step=$SECONDS
if ! wait "$fuzz_build"; then
    cat target/fuzz-build.log
    echo "== building the fuzz targets failed" >&2
    exit 1
fi
tail -n 1 target/fuzz-build.log
FUZZ_PHASE=fuzz scripts/fuzz.sh "${FUZZ_SECONDS:-10}"
echo "== fuzzing took $((SECONDS - step)) s"

echo "== all tests passed"
