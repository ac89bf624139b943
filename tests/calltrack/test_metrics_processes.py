"""Metrics across real processes (issue 31): gunicorn with three workers and a real ``manage.py qcluster``, each in
prometheus-client's multiprocess mode, on a file SQLite database.

- every scrape of /metrics, whichever worker answers it, shows the figures of all the workers, and none of a previous
  run (gunicorn.conf.py empties PROMETHEUS_MULTIPROC_DIR at start);
- the task cluster serves its workers' webhook deliveries on METRICS_WORKER_PORT, to the token only.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from twilio.request_validator import RequestValidator

from tests.calltrack.metrics_scrape import TOKEN, Scrape
from tests.tracking.receiver import receiver

ROOT = Path(__file__).resolve().parents[2]
TWILIO_TOKEN = "processes-test-auth-token"
pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def database(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("metrics-processes") / "db.sqlite3"
    done = subprocess.run([sys.executable, "manage.py", "migrate", "--noinput"], cwd=ROOT, env=_env(path), capture_output=True,
                          text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return path


def _env(db_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CALLTRACK_", "PROMETHEUS_", "METRICS_"))}
    env.update(
        DATABASE_URL=f"sqlite:///{db_path}", DJANGO_SETTINGS_MODULE="calltrack.settings", PYTHONPATH=str(ROOT),
        TWILIO_AUTH_TOKEN=TWILIO_TOKEN, ALLOWED_HOSTS="127.0.0.1", LOG_LEVEL="WARNING", METRICS_TOKEN=TOKEN, **extra,
    )
    return env


def _get(url: str, token: str = TOKEN) -> tuple[int, str]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, ""
    except OSError:  # not listening yet
        return 0, ""


def _stop(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)


LEFT_OVER = "from calltrack import metrics\nfor _ in range(1000): metrics.failsafe_answered('error')\n"


def test_every_scrape_shows_all_three_gunicorn_workers_figures_and_none_of_a_previous_run(database, tmp_path):
    folder = tmp_path / "web-metrics"
    port = _free_port()
    env = _env(database, PROMETHEUS_MULTIPROC_DIR=str(folder))
    # A previous run's files: 1000 fail-safe answers that must not be counted again.
    subprocess.run([sys.executable, "-c", LEFT_OVER], cwd=ROOT, env=env, check=True, timeout=60)
    assert list(folder.glob("counter_*.db"))
    web = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "calltrack.wsgi:application", "--bind", f"127.0.0.1:{port}", "--workers", "3"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while _get_status(f"{base}/healthz") != 200:
            assert web.poll() is None and time.monotonic() < deadline, web.stderr.read().decode()[-2000:]
            time.sleep(0.3)

        def call(n: int) -> int:  # a call to a number nobody owns: the fail-safe answer, counted with cause "error"
            url, params = f"{base}/voice/incoming", {"CallSid": f"CAproc{n:04d}", "From": "+14155550100", "To": "+13035550123"}
            request = urllib.request.Request(url, data=urllib.parse.urlencode(params).encode(), headers={
                "X-Twilio-Signature": RequestValidator(TWILIO_TOKEN).compute_signature(url, params)})
            with urllib.request.urlopen(request, timeout=20) as response:
                return response.status

        with ThreadPoolExecutor(6) as pool:
            assert set(pool.map(call, range(24))) == {200}
        scrapes = [_get(f"{base}/metrics") for _ in range(6)]
    finally:
        _stop(web)
        web.stderr.close()

    assert {status for status, _ in scrapes} == {200}
    for _, text in scrapes:  # whichever worker answered
        figures = Scrape(text)
        assert figures.value("calltrack_failsafe_answers_total", cause="error") == 24
        assert figures.value("calltrack_voice_webhook_seconds_count", endpoint="incoming") == 24
    assert len({p.name.split("_")[-1] for p in folder.glob("histogram_*.db")}) >= 2  # more than one worker answered


def _get_status(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status
    except OSError:
        return None


QUEUE = """
from django.db import transaction
from tests.tracking.factories import CallFactory, CampaignFactory, WebhookFactory
from tracking.services.call_events import call_lifecycle_notify

campaign = CampaignFactory(campaign_id="metrics-e2e")
WebhookFactory(campaign=campaign, url="{url}", events=["call.answered"])
call = CallFactory(campaign=campaign, caller_number="+14155550188", status="in_progress")
with transaction.atomic():
    call_lifecycle_notify(call=call, event="call.answered")
"""


def test_the_task_cluster_serves_its_workers_webhook_deliveries_on_its_own_port(database, tmp_path):
    port = _free_port()
    env = _env(database, PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "worker-metrics"), METRICS_WORKER_PORT=str(port),
               Q_WORKERS="2", Q_POLL="0.2", CALLTRACK_OUTBOUND_ALLOW="127.0.0.1", CALLTRACK_WEBHOOK_TIMEOUT="3")
    with receiver((404, 0)) as rx:  # a client error: failed at the first try
        done = subprocess.run([sys.executable, "manage.py", "shell", "-c", QUEUE.format(url=rx.url("/hook"))], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stderr[-2000:]
        cluster = subprocess.Popen([sys.executable, "manage.py", "qcluster"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE, start_new_session=True)
        try:
            deadline = time.monotonic() + 90
            figures = Scrape("")
            while figures.value("calltrack_webhook_deliveries_total", outcome="failed") < 1:
                assert cluster.poll() is None and time.monotonic() < deadline, cluster.stderr.read().decode()[-2000:]
                time.sleep(0.5)
                status, text = _get(f"http://127.0.0.1:{port}/metrics")
                figures = Scrape(text) if status == 200 else figures
            refused = _get(f"http://127.0.0.1:{port}/metrics", token="wrong")
        finally:
            _stop(cluster)
            cluster.stderr.close()

    assert len(rx.requests) == 1
    assert figures.value("calltrack_webhook_deliveries_total", outcome="failed") == 1
    assert figures.value("calltrack_webhook_deliveries_total", outcome="delivered") == 0
    assert refused == (401, "")
