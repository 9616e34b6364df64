#!/usr/bin/env bash
# The whole test suite, as README and CI run it: Rust unit and end-to-end tests on SQLite and
# PostgreSQL, then ChatBotKit's JS SDK against the real binary, then schemathesis against the
# real binary's OpenAPI document (scripts/schemathesis.sh). Exits non-zero on any failure.
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

echo "== cargo test (SQLite and PostgreSQL)"
cargo test --all-targets

echo "== ChatBotKit SDK against target/debug/chatwire"
npm ci --prefix tests/sdk --no-audit --no-fund
CHATWIRE_BIN="${CHATWIRE_BIN:-$PWD/target/debug/chatwire}" node --test tests/sdk/

echo "== OpenAPI document against the server (schemathesis, bounded in time)"
SCHEMATHESIS_MAX_TIME="${SCHEMATHESIS_MAX_TIME:-180}" ./scripts/schemathesis.sh "$PWD/target/debug/chatwire"

echo "== all tests passed"
