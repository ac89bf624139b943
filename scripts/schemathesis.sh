#!/usr/bin/env bash
# Fuzz the REST API with schemathesis against a running app: no 500 anywhere, every response as documented.
#
# Starts the app (runserver, 127.0.0.1, a random free port) on a fresh, migrated and seeded SQLite
# database, runs `schemathesis run` on /api/schema/ with a staff token and a bounded number of examples
# per operation, then stops the server. Exits non-zero when schemathesis finds a failure.
#
#   scripts/schemathesis.sh                 # defaults: 20 examples per operation
#   SCHEMATHESIS_MAX_EXAMPLES=50 scripts/schemathesis.sh
#   PYTHON=/path/to/python scripts/schemathesis.sh
set -euo pipefail

cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python}"
if [ -x .venv/bin/python ] && [ -z "${PYTHON_SET:-}" ] && [ "$PYTHON" = python ]; then PYTHON=.venv/bin/python; fi
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
export DATABASE_URL="sqlite:///$WORK/db.sqlite3"
export DEBUG=true
export LOG_LEVEL=WARNING

"$PYTHON" manage.py migrate --noinput -v 0
TOKEN="$("$PYTHON" scripts/schemathesis_seed.py)"
PORT="$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"

"$PYTHON" manage.py runserver "127.0.0.1:$PORT" --noreload --nothreading >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 100); do
    if "$PYTHON" -c "import urllib.request, sys; urllib.request.urlopen('http://127.0.0.1:$PORT/healthz', timeout=1)" 2>/dev/null; then break; fi
    sleep 0.2
done

REPORT_DIR="$(realpath -m "${SCHEMATHESIS_REPORT_DIR:-$WORK/report}")"
status=0
# Run from the temporary folder so schemathesis' own cache (.schemathesis/) does not land in the work tree.
(cd "$WORK" && "$SCHEMATHESIS" run "http://127.0.0.1:$PORT/api/schema/" \
    --header "Authorization: Token $TOKEN" \
    --checks not_a_server_error,response_schema_conformance \
    --max-examples "$MAX_EXAMPLES" \
    --phases examples,coverage,fuzzing \
    --seed "${SCHEMATHESIS_SEED:-1}" \
    --generation-database none \
    --workers 1 \
    --request-timeout 20 \
    --no-color \
    --report junit --report-dir "$REPORT_DIR") || status=$?

if [ "$status" -ne 0 ]; then
    echo "schemathesis failed (exit $status); last server log lines:" >&2
    tail -n 40 "$WORK/server.log" >&2 || true
fi
exit "$status"
