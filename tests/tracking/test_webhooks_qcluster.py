"""End to end with a real ``manage.py qcluster`` on the ORM broker (file SQLite database), a real receiver.

The receiver answers 500, then 200: the first try runs from the queue, the retry comes back through a
django-q2 Schedule, which the cluster's scheduler picks up about every 30 seconds, hence the slow mark.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.tracking.receiver import receiver

ROOT = Path(__file__).resolve().parents[2]
SETUP = """
from django.db import transaction
from tests.tracking.factories import CallFactory, CampaignFactory, WebhookFactory
from tracking.services.call_events import call_lifecycle_notify

campaign = CampaignFactory(campaign_id="qcluster-e2e")
hook = WebhookFactory(campaign=campaign, url="{url}", events=["call.answered"], secret="e2e-secret",
                      body_template='{{"caller": "[caller_number]", "campaign": "[campaign_id]"}}')
call = CallFactory(campaign=campaign, caller_number="+14155550188", status="in_progress")
with transaction.atomic():
    call_lifecycle_notify(call=call, event="call.answered")
print("queued", call.pk)
"""


def _env(db_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=f"sqlite:///{db_path}", DJANGO_SETTINGS_MODULE="calltrack.settings", Q_WORKERS="1", Q_POLL="0.2",
        CALLTRACK_WEBHOOK_RETRY_BASE="1", CALLTRACK_WEBHOOK_TIMEOUT="3", CALLTRACK_OUTBOUND_ALLOW="127.0.0.1", CALLTRACK_WEBHOOK_MAX_ATTEMPTS="3", LOG_LEVEL="WARNING",
        PYTHONPATH=str(ROOT),
    )
    return env


def _manage(*args: str, env: dict[str, str], timeout: float = 120) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, f"manage.py {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _delivery(db_path: Path) -> tuple[str, int] | None:
    with sqlite3.connect(db_path, timeout=10) as db:
        return db.execute("SELECT status, attempts FROM tracking_webhookdelivery").fetchone()


@pytest.mark.slow
def test_a_real_qcluster_delivers_a_signed_webhook_and_retries_after_a_500(tmp_path):
    db_path = tmp_path / "q.sqlite3"
    env = _env(db_path)
    _manage("migrate", "--noinput", env=env)
    with receiver((500, 0), (200, 0)) as rx:
        out = _manage("shell", "-c", SETUP.format(url=rx.url("/e2e")), env=env)
        assert "queued 1" in out, out
        assert rx.requests == []  # nothing sent before a worker runs
        cluster = subprocess.Popen(
            [sys.executable, "manage.py", "qcluster"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 90
            state = None
            while time.monotonic() < deadline:
                state = _delivery(db_path)
                if state and state[0] in ("delivered", "failed"):
                    break
                assert cluster.poll() is None, f"qcluster exited early: {cluster.stderr.read().decode()[-2000:]}"
                time.sleep(0.5)
        finally:
            os.killpg(cluster.pid, signal.SIGTERM)
            try:
                cluster.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(cluster.pid, signal.SIGKILL)
                cluster.wait(timeout=5)
            cluster.stderr.close()
    assert state == ("delivered", 2), state
    assert len(rx.requests) == 2
    for request in rx.requests:
        expected = "sha256=" + hmac.new(b"e2e-secret", request.body, hashlib.sha256).hexdigest()
        assert request.headers["X-Calltrack-Signature"] == expected
        assert json.loads(request.body) == {"caller": "+14155550188", "campaign": "qcluster-e2e"}
    with sqlite3.connect(db_path) as db:
        tries = db.execute("SELECT number, status_code, outcome FROM tracking_webhookattempt ORDER BY number").fetchall()
    assert tries == [(1, 500, "retrying"), (2, 200, "delivered")]
