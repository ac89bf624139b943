"""A bot against the DNI endpoints, over real HTTP to gunicorn (3 workers, PostgreSQL, the shared Redis cache).

The attack of issue 12: many anonymous assigns with random visitor ids, to take over a live visitor's number (and
the credit for its call). The live visitor keeps its number, and the bot's IP opens no more new sessions than
CALLTRACK_DNI_NEW_SESSIONS_PER_IP, counted once for all workers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from django.db import connection

from calltrack.numbers.models import NumberSession, OverflowPolicy
from tests.conftest import REDIS_TEST_URL
from tests.numbers.factories import NumberPoolFactory, TrackingNumberFactory

ROOT = Path(__file__).resolve().parents[2]
PORT = 8113
REDIS_URL = REDIS_TEST_URL  # the redis_db fixture (tests/conftest.py) empties it around each test
ORIGIN = "https://www.acme.example"
LIMIT = 5

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def _post(path: str, body: dict, *, ip: str, origin: str | None = ORIGIN) -> tuple[int, dict]:
    headers = {"Content-Type": "text/plain", "X-Forwarded-For": ip}
    if origin:
        headers["Origin"] = origin
    request = urllib.request.Request(f"http://127.0.0.1:{PORT}{path}", data=json.dumps(body).encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


@pytest.fixture
def server(transactional_db, redis_db):
    settings_dict = connection.settings_dict
    url = f"postgres://{settings_dict['USER']}@{settings_dict['HOST']}:{settings_dict['PORT'] or 5432}/{settings_dict['NAME']}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CALLTRACK_", "DEBUG"))}
    env.update(
        DATABASE_URL=url, DJANGO_SETTINGS_MODULE="calltrack.settings", DEBUG="false", SECRET_KEY="gunicorn-test-" + "k7Qz" * 12,
        ALLOWED_HOSTS="127.0.0.1", TWILIO_AUTH_TOKEN="test-token", CACHE_URL=REDIS_URL, CALLTRACK_PROXY_HOPS="1",
        CALLTRACK_DNI_NEW_SESSIONS_PER_IP=f"{LIMIT}/hour", CALLTRACK_DNI_RATE_LIMIT_IP="", CALLTRACK_DNI_RATE_LIMIT_VISITOR="",
        LOG_LEVEL="WARNING", PYTHONPATH=str(ROOT),
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "calltrack.wsgi:application", "--bind", f"127.0.0.1:{PORT}", "--workers", "3"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{PORT}/healthz", timeout=1)
            break
        except OSError:
            assert process.poll() is None, process.stderr.read().decode()
            time.sleep(0.2)
    yield process
    process.terminate()
    process.wait(timeout=20)
    process.stderr.close()


def test_a_bot_cannot_take_a_live_visitors_number_through_three_gunicorn_workers(server):
    pool = NumberPoolFactory(
        key="main", allowed_origins=ORIGIN, overflow_policy=OverflowPolicy.REUSE_OLDEST, fallback_number="+18005550100",
        session_lifetime=1800,
    )
    for n in ("+14152000001", "+14152000002"):
        TrackingNumberFactory(number=n, kind="pool", pool=pool, campaign=pool.campaign)
    status, live = _post("/dni/v1/assign", {"pool": "main", "visitor_id": "visitor-live-0001"}, ip="198.51.100.7")
    assert status == 200 and live["number"] in ("+14152000001", "+14152000002")

    def bot(i: int) -> tuple[int, dict]:
        return _post("/dni/v1/assign", {"pool": "main", "visitor_id": f"bot-visitor-{i:05d}"}, ip="203.0.113.9",
                     origin=None if i % 3 == 0 else ORIGIN)

    with ThreadPoolExecutor(max_workers=12) as workers:
        answers = list(workers.map(bot, range(120)))

    assert {status for status, _ in answers} == {200}
    # Browser-less requests got the fallback number without a session; the rest opened at most LIMIT sessions
    # (all three workers counting in one Redis), and none of them took the live visitor's young session.
    assert all(a["session_id"] is None and a["number"] == "+18005550100" for i, (_, a) in enumerate(answers) if i % 3 == 0)
    assert NumberSession.objects.filter(visitor_id__startswith="bot-").count() == LIMIT
    assert sum(1 for _, a in answers if a["number"] == live["number"]) == 0
    status, beat = _post("/dni/v1/heartbeat", {"pool": "main", "visitor_id": "visitor-live-0001", "session_id": live["session_id"]},
                         ip="198.51.100.7")
    assert status == 200 and beat["number"] == live["number"]
    pool.refresh_from_db()
    assert pool.overflow_count == LIMIT - 1  # the bot's first session took the free number; the others overflowed
