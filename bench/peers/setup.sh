#!/usr/bin/env bash
# Installs the quickstart peers the bench compares Chatwire with (Express + twilio.webhook(),
# Flask + RequestValidator) under target/bench-peers/, from the npm registry and PyPI with
# their ordinary clients: `npm ci` from the committed lock file, pip in a venv. Idempotent.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="${CHATWIRE_BENCH_PEERS:-$root/target/bench-peers}"
mkdir -p "$out"

if command -v npm >/dev/null; then
  rm -rf "$out/express"
  mkdir -p "$out/express"
  cp "$here/express/package.json" "$here/express/package-lock.json" "$here/express/server.js" "$out/express/"
  (cd "$out/express" && npm ci --no-audit --no-fund --loglevel=error)
else
  echo "npm not found: the Express peer is skipped" >&2
fi

if command -v python3 >/dev/null; then
  if [ ! -x "$out/flask/venv/bin/python" ]; then
    mkdir -p "$out/flask"
    python3 -m venv "$out/flask/venv"
  fi
  "$out/flask/venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/flask/requirements.txt"
  cp "$here/flask/app.py" "$out/flask/app.py"
else
  echo "python3 not found: the Flask peer is skipped" >&2
fi
echo "peers installed under $out"
