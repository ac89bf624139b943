#!/usr/bin/env bash
# Fuzz the REST API with schemathesis against a running app: no 500 anywhere, every response as documented.
#
# Starts the app (gunicorn, 127.0.0.1, a random free port) on a fresh, migrated and seeded SQLite
# database (or the PostgreSQL database FUZZ_DATABASE_URL names, dropped and created afresh), runs `schemathesis run` on /api/schema/ with a staff token and a bounded number of examples
# per operation, then stops the server. Exits non-zero when schemathesis finds a failure.
#
#   scripts/schemathesis.sh                 # defaults: 20 examples per operation, ~9,600 requests
#   SCHEMATHESIS_MAX_EXAMPLES=50 scripts/schemathesis.sh
#   SCHEMATHESIS_PHASES=examples,fuzzing scripts/schemathesis.sh   # skip the (longest) coverage phase
#   SCHEMATHESIS_EXTRA_ARGS="--include-path-regex pools" scripts/schemathesis.sh
#   PYTHON=/path/to/python scripts/schemathesis.sh
#
# Takes about 2.5 minutes on a quiet 2-core machine (5 when it is shared with other work).
set -euo pipefail

cd "$(dirname "$0")/.."
if [ -z "${PYTHON:-}" ]; then
    if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
BIN_DIR="$(dirname "$("$PYTHON" -c 'import sys; print(sys.executable)')")"
SCHEMATHESIS="${SCHEMATHESIS:-$BIN_DIR/schemathesis}"
MAX_EXAMPLES="${SCHEMATHESIS_MAX_EXAMPLES:-20}"

WORK="$(mktemp -d)"
SERVER_PID=""
cleanup() {
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

export DJANGO_SETTINGS_MODULE=calltrack.settings
# FUZZ_DATABASE_URL=postgres://.../name fuzzes on PostgreSQL: that database is dropped and created afresh.
if [ -n "${FUZZ_DATABASE_URL:-}" ]; then
    export DATABASE_URL="$FUZZ_DATABASE_URL"
    "$PYTHON" - "$DATABASE_URL" <<'PY'
import sys
from urllib.parse import urlsplit

import psycopg

url = urlsplit(sys.argv[1])
name = url.path.lstrip("/")
with psycopg.connect(url._replace(path="/postgres").geturl(), autocommit=True) as db:
    db.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    db.execute(f'CREATE DATABASE "{name}"')
PY
else
    export DATABASE_URL="sqlite:///$WORK/db.sqlite3"
fi
# Production-like: DEBUG off (plain error pages, no query log), a throwaway key.
export DEBUG=false
export SECRET_KEY="fuzz-$("${PYTHON}" -c 'import secrets; print(secrets.token_urlsafe(48))')"
export ALLOWED_HOSTS=127.0.0.1,localhost
export TWILIO_AUTH_TOKEN="fuzz-twilio-token"
# Thousands of requests with one token in a few minutes: no API throttling here (a 429 is not what this run checks).
export CALLTRACK_API_THROTTLE_USER=""
# Plain-http gunicorn: no Secure-only cookies needed, no redirect.
export SECURE_SSL_REDIRECT=false
export LOG_LEVEL=ERROR

"$PYTHON" manage.py migrate --noinput -v 0 --skip-checks
TOKEN="$("$PYTHON" scripts/schemathesis_seed.py)"
PORT="$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"

# Two gunicorn workers. Schemathesis keeps to one worker: its threads parsing lambdas at the same time
# hit a CPython 3.11 ast.parse bug ("AST constructor recursion depth mismatch").
"$PYTHON" -m gunicorn calltrack.wsgi:application --bind "127.0.0.1:$PORT" --workers 2 --timeout 60 \
    --error-logfile "$WORK/server.log" >>"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 100); do
    if "$PYTHON" -c "import urllib.request, sys; urllib.request.urlopen('http://127.0.0.1:$PORT/healthz', timeout=1)" 2>/dev/null; then break; fi
    sleep 0.2
done

# Half the generated ids are ones the seed created, so PUT/PATCH/DELETE and the pool actions reach
# real objects instead of mostly answering 404; likewise for the numbers sent to a pool.
cat >"$WORK/schemathesis.toml" <<'TOML'
[dictionaries.seeded-ids]
values = [1, 2, 3, 4, 5]

[dictionaries.seeded-numbers]
values = ["+14155560000", "+14155560001", "+14155560002", "+14155560003", "+14155570000", "+14155550000"]

[parameters]
"path.id" = { dictionary = "seeded-ids", probability = 0.5 }
"body.numbers[*]" = { dictionary = "seeded-numbers", probability = 0.5 }

# The coverage phase's probes of undeclared methods only ever get a 405, and status codes are not
# what this run checks: skip those requests.
[phases.coverage]
unexpected-methods = []
TOML

REPORT_DIR="$(realpath -m "${SCHEMATHESIS_REPORT_DIR:-$WORK/report}")"
status=0
# Run from the temporary folder so schemathesis' own cache (.schemathesis/) does not land in the work tree.
(cd "$WORK" && "$SCHEMATHESIS" run "http://127.0.0.1:$PORT/api/schema/" \
    --header "Authorization: Token $TOKEN" \
    --checks not_a_server_error,response_schema_conformance \
    --max-examples "$MAX_EXAMPLES" \
    ${SCHEMATHESIS_EXTRA_ARGS:-} \
    --phases "${SCHEMATHESIS_PHASES:-examples,coverage,fuzzing}" \
    --seed "${SCHEMATHESIS_SEED:-1}" \
    --generation-database none \
    --workers "${SCHEMATHESIS_WORKERS:-1}" \
    --request-timeout 20 \
    --no-color \
    --report junit --report-dir "$REPORT_DIR") || status=$?

if [ "$status" -ne 0 ]; then
    echo "schemathesis failed (exit $status); last server log lines:" >&2
    tail -n 40 "$WORK/server.log" >&2 || true
fi
exit "$status"
