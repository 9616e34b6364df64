#!/usr/bin/env bash
# The OpenAPI document (/v1/openapi.json) against the server: schemathesis generates requests
# from the document, valid and invalid, and checks that the server never answers 5xx, refuses
# what the document forbids (negative_data_rejection), accepts what it allows
# (positive_data_acceptance) and answers as documented. Bounded: one pass of
# SCHEMATHESIS_MAX_EXAMPLES examples per operation (default 15; scripts/test.sh uses 10), seed 1,
# so every run draws the same examples; SCHEMATHESIS_MAX_TIME=N instead repeats passes for N s.
#
#   scripts/schemathesis.sh [path/to/chatwire]          default: target/debug/chatwire
#
# schemathesis (scripts/schemathesis-requirements.txt, pinned) is installed from PyPI into a
# virtualenv under target/ on first use.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN="${1:-target/debug/chatwire}"
VENV=target/schemathesis-venv
# Pinned, with everything it pulls in: a new Hypothesis draws different examples.
REQUIREMENTS=scripts/schemathesis-requirements.txt
if ! cmp -s "$REQUIREMENTS" "$VENV/installed.txt" 2>/dev/null; then
    echo "== installing schemathesis into $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet -r "$REQUIREMENTS"
    cp "$REQUIREMENTS" "$VENV/installed.txt"
fi

WORK="$(mktemp -d)"
PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
TOKEN="schemathesis-$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
EMULATOR_PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
# The emulator plays Twilio, so that setup and initiate get Twilio's answers, not a 502.
"$BIN" twilio-emulator --listen "127.0.0.1:$EMULATOR_PORT" >"$WORK/emulator.log" 2>&1 &
EMULATOR=$!
# Throttling off: schemathesis's own unauthenticated probes must not lock it out.
CHATWIRE_LISTEN="127.0.0.1:$PORT" \
    CHATWIRE_DATABASE_URL="sqlite://$WORK/schemathesis.db" \
    CHATWIRE_API_TOKEN="$TOKEN" \
    CHATWIRE_AUTH_FAILURE_LIMIT=0 \
    CHATWIRE_BACKFILL_INTERVAL_MS=0 \
    CHATWIRE_TWILIO_API_URL="http://127.0.0.1:$EMULATOR_PORT" \
    RUST_LOG=warn NO_COLOR=1 \
    "$BIN" serve >"$WORK/serve.log" 2>&1 &
SERVER=$!
cleanup() {
    kill "$SERVER" "$EMULATOR" 2>/dev/null || true
    wait "$SERVER" "$EMULATOR" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
BASE="http://127.0.0.1:$PORT/v1"
for _ in $(seq 1 100); do
    curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
    sleep 0.1
done

# One of each resource, so that operations on an existing id are tested too (the config names
# them as path parameters); operations that delete them leave later ones with a 404.
create() {
    curl -fsS -X POST "$BASE/$1" -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' -d "$2" |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])'
}
export ST_BLUEPRINT_ID ST_DATASET_ID ST_RECORD_ID ST_BOT_ID ST_CONTACT_ID ST_CONVERSATION_ID ST_MESSAGE_ID ST_INTEGRATION_ID
ST_BLUEPRINT_ID="$(create blueprint/create '{"name": "st"}')"
ST_DATASET_ID="$(create dataset/create '{"name": "st"}')"
ST_RECORD_ID="$(create "dataset/$ST_DATASET_ID/record/create" '{"text": "Q: When are you open? A: 9 to 5."}')"
ST_BOT_ID="$(create bot/create '{"name": "st", "model": "echo"}')"
ST_CONTACT_ID="$(create contact/create '{"name": "st", "phone": "+15551230001"}')"
ST_CONVERSATION_ID="$(create conversation/create "{\"botId\": \"$ST_BOT_ID\", \"contactId\": \"$ST_CONTACT_ID\"}")"
ST_MESSAGE_ID="$(create "conversation/$ST_CONVERSATION_ID/message/create" '{"type": "user", "text": "hi"}')"
ST_INTEGRATION_ID="$(create integration/twilio/create "{\"name\": \"st\", \"botId\": \"$ST_BOT_ID\"}")"
# Spares for the delete operations, so that what they delete is not what the others use.
export ST_SPARE_BLUEPRINT_ID ST_SPARE_DATASET_ID ST_SPARE_RECORD_ID ST_SPARE_BOT_ID ST_SPARE_CONTACT_ID ST_SPARE_CONVERSATION_ID ST_SPARE_MESSAGE_ID ST_SPARE_INTEGRATION_ID
ST_SPARE_BLUEPRINT_ID="$(create blueprint/create '{"name": "spare"}')"
ST_SPARE_DATASET_ID="$(create dataset/create '{"name": "spare"}')"
ST_SPARE_RECORD_ID="$(create "dataset/$ST_DATASET_ID/record/create" '{"text": "spare"}')"
ST_SPARE_BOT_ID="$(create bot/create '{"name": "spare", "model": "echo"}')"
ST_SPARE_CONTACT_ID="$(create contact/create '{"name": "spare"}')"
ST_SPARE_CONVERSATION_ID="$(create conversation/create "{\"botId\": \"$ST_BOT_ID\"}")"
ST_SPARE_MESSAGE_ID="$(create "conversation/$ST_CONVERSATION_ID/message/create" '{"type": "user", "text": "spare"}')"
ST_SPARE_INTEGRATION_ID="$(create integration/twilio/create '{"name": "spare"}')"

# filter_too_much: for a GET whose only input is one free path parameter (an id nothing
# created, e.g. a hand-off's), Hypothesis draws mostly values already sent, which schemathesis
# filters out; the operation is still tested with those it could draw.
# The operations routes are served at the root, not under /v1 (their path-level `servers`
# says so, which schemathesis does not apply), so they get a run of their own.
ROOT_PATHS='^/(healthz|readyz|metrics)$'
st() {
    "$VENV/bin/python" scripts/schemathesis_run.py \
        --config-file scripts/schemathesis.toml run "http://127.0.0.1:$PORT/v1/openapi.json" \
        --header "Authorization: Bearer $TOKEN" \
        --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,negative_data_rejection,positive_data_acceptance \
        --phases examples,coverage,fuzzing \
        --request-timeout 45 \
        --seed 1 \
        --generation-database none \
        --suppress-health-check filter_too_much \
        --no-color "$@"
}
status=0
st --url "http://127.0.0.1:$PORT" --include-path-regex "$ROOT_PATHS" --max-examples 5 || status=$?
# With --max-time schemathesis repeats its phases until the time is up, so how much is tested
# would depend on the machine's speed; without it, one pass of max-examples per operation is
# the same on every machine. SCHEMATHESIS_MAX_TIME opts in to the former (longer soak runs).
bound=(--max-examples "${SCHEMATHESIS_MAX_EXAMPLES:-15}")
if [ -n "${SCHEMATHESIS_MAX_TIME:-}" ]; then
    bound+=(--max-time "$SCHEMATHESIS_MAX_TIME")
fi
# shellcheck disable=SC2086
st --url "http://127.0.0.1:$PORT/v1" --exclude-path-regex "$ROOT_PATHS" "${bound[@]}" \
    --workers 2 \
    ${SCHEMATHESIS_ARGS:-} || status=$?
if [ "$status" -ne 0 ]; then
    cp "$WORK/serve.log" target/schemathesis-serve.log
    echo "== schemathesis found mismatches; the server's log is in target/schemathesis-serve.log; its tail:"
    grep -v ' WARN ' "$WORK/serve.log" | tail -n 20
fi
exit "$status"
