"""/metrics (issue 31, "Observability"): who may read it, the figures that move when their event happens outside the
voice path (pool overflows, webhook deliveries, the task queue), and prometheus-client's multiprocess mode (several
processes, one scrape; gunicorn's hooks; the task cluster's own endpoint).

The voice webhooks' figures are tested with the signed requests of tests/routing (tests/routing/test_voice_metrics.py).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.signing import SignedPackage

from calltrack.numbers.dni.services import Visit, number_assign
from calltrack.numbers.models import OverflowPolicy
from tests.calltrack.metrics_scrape import TOKEN, Scrape, scrape
from tests.numbers.factories import NumberPoolFactory, TrackingNumberFactory
from tests.tracking.factories import CallFactory, CampaignFactory, SourceFactory, UserFactory, WebhookFactory
from tests.tracking.receiver import receiver, run_queued_tasks
from tracking.models import CallStatus, Collaborator, DeliveryStatus, WebhookDelivery
from tracking.services.webhooks import webhook_deliveries_queue

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


# --- Who may read /metrics ----------------------------------------------------------------------------------------

def test_the_right_bearer_token_reads_the_figures(client, settings):
    figures = scrape(client, settings)

    assert {"calltrack_voice_webhook_seconds_count", "calltrack_decisions_total", "calltrack_failsafe_answers_total",
            "calltrack_calls_in_progress", "calltrack_call_queue_waiting", "calltrack_task_queue_depth",
            "calltrack_task_queue_oldest_seconds", "calltrack_task_schedule_overdue_seconds",
            "calltrack_webhook_deliveries_total"} <= figures.names()


def test_a_wrong_token_is_refused_with_401(client, settings):
    settings.METRICS_TOKEN = TOKEN

    for header in (f"Bearer {TOKEN}x", "Bearer ", f"bearer {TOKEN[:-1]}", "Bearer \x00é"):
        response = client.get("/metrics", HTTP_AUTHORIZATION=header)
        assert response.status_code == 401 and response["WWW-Authenticate"] == "Bearer"
        assert b"calltrack_" not in response.content


def test_without_a_token_or_a_staff_session_there_is_nothing_at_metrics(client, settings):
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer anything").status_code == 404  # no token configured: off

    settings.METRICS_TOKEN = TOKEN
    assert client.get("/metrics").status_code == 404
    client.force_login(UserFactory(username="not-staff"))
    assert client.get("/metrics").status_code == 404


def test_a_staff_session_reads_the_figures_even_without_a_token(client, settings):
    settings.METRICS_TOKEN = ""
    client.force_login(UserFactory(username="ops", is_staff=True))

    response = client.get("/metrics")

    assert response.status_code == 200 and b"calltrack_decisions_total" in response.content


def test_a_collaborator_is_refused_though_staff(client, settings):
    settings.METRICS_TOKEN = TOKEN
    user = UserFactory(username="publisher", is_staff=True)
    Collaborator.objects.create(user=user, source=SourceFactory())
    client.force_login(user)

    assert client.get("/metrics").status_code == 404


def test_only_get_is_answered(client, settings):
    settings.METRICS_TOKEN = TOKEN
    response = client.post("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 405


# --- Figures that move when their event happens --------------------------------------------------------------------

def test_a_pool_overflow_is_counted_by_policy(client, settings):
    pool = NumberPoolFactory(session_lifetime=1800, overflow_policy=OverflowPolicy.FALLBACK, fallback_number="+18005550100")
    TrackingNumberFactory(number="+14152000001", kind="pool", pool=pool, campaign=pool.campaign)
    now = timezone.now()
    number_assign(pool=pool, visit=Visit(visitor_id="visitor-a1"), now=now)
    before = scrape(client, settings).value("calltrack_pool_overflows_total", policy=OverflowPolicy.FALLBACK)

    busy = number_assign(pool=pool, visit=Visit(visitor_id="visitor-b1"), now=now)

    assert busy.overflow
    assert scrape(client, settings).value("calltrack_pool_overflows_total", policy=OverflowPolicy.FALLBACK) == before + 1


def test_every_overflow_policy_has_its_series_from_the_start():
    from calltrack import metrics

    assert set(metrics.OVERFLOW_POLICIES) == set(OverflowPolicy.values)


def _queued_delivery(django_capture_on_commit_callbacks, url: str) -> WebhookDelivery:
    call = CallFactory(campaign=CampaignFactory(), status=CallStatus.COMPLETED, call_sid="CAdelivery0001")
    WebhookFactory(campaign=call.campaign, url=url, events=["call.completed"])
    with django_capture_on_commit_callbacks(execute=True):
        (delivery,) = webhook_deliveries_queue(call=call, event="call.completed")
    return delivery


@pytest.fixture
def _receivers_allowed(settings):
    settings.CALLTRACK_OUTBOUND_ALLOW = ["127.0.0.1"]
    settings.CALLTRACK_WEBHOOK_TIMEOUT = 0.5


@pytest.mark.usefixtures("_receivers_allowed")
def test_a_failed_webhook_delivery_is_counted_and_a_waiting_task_shows_the_cluster_lag(client, settings, django_capture_on_commit_callbacks):
    with receiver((404, 0)) as rx:
        before = scrape(client, settings)
        delivery = _queued_delivery(django_capture_on_commit_callbacks, rx.url())
        waiting = scrape(client, settings)
        run_queued_tasks()
    after = scrape(client, settings)

    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED
    assert after.value("calltrack_webhook_deliveries_total", outcome="failed") == before.value("calltrack_webhook_deliveries_total", outcome="failed") + 1
    assert after.value("calltrack_webhook_deliveries_total", outcome="delivered") == before.value("calltrack_webhook_deliveries_total", outcome="delivered")
    # While its task waited, the queue showed it; once run, nothing waits.
    assert waiting.value("calltrack_task_queue_depth") == before.value("calltrack_task_queue_depth") + 1
    assert after.value("calltrack_task_queue_depth") == 0 and after.value("calltrack_task_queue_oldest_seconds") == 0


@pytest.mark.usefixtures("_receivers_allowed")
def test_a_delivered_webhook_is_counted_with_its_lag(client, settings, django_capture_on_commit_callbacks):
    with receiver((200, 0)) as rx:
        delivery = _queued_delivery(django_capture_on_commit_callbacks, rx.url())
        WebhookDelivery.objects.filter(pk=delivery.pk).update(created_at=timezone.now() - timedelta(seconds=40))
        before = scrape(client, settings)
        run_queued_tasks()
    after = scrape(client, settings)

    assert after.value("calltrack_webhook_deliveries_total", outcome="delivered") == before.value("calltrack_webhook_deliveries_total", outcome="delivered") + 1
    assert after.value("calltrack_webhook_delivery_lag_seconds_count") == before.value("calltrack_webhook_delivery_lag_seconds_count") + 1
    # 40 s and a little: in the (15, 60] bucket, not the 15 s one.
    assert after.value("calltrack_webhook_delivery_lag_seconds_bucket", le="60.0") == before.value("calltrack_webhook_delivery_lag_seconds_bucket", le="60.0") + 1
    assert after.value("calltrack_webhook_delivery_lag_seconds_bucket", le="15.0") == before.value("calltrack_webhook_delivery_lag_seconds_bucket", le="15.0")


def test_the_oldest_waiting_task_gives_the_task_cluster_lag(client, settings):
    broker = get_broker()
    broker.enqueue(SignedPackage.dumps({"id": "t-old", "name": "old", "func": "math.floor", "args": (1.5,), "kwargs": {},
                                        "started": timezone.now() - timedelta(seconds=90)}))
    broker.enqueue(SignedPackage.dumps({"id": "t-new", "name": "new", "func": "math.floor", "args": (1.5,), "kwargs": {},
                                        "started": timezone.now()}))

    figures = scrape(client, settings)

    assert figures.value("calltrack_task_queue_depth") == 2
    assert 90 <= figures.value("calltrack_task_queue_oldest_seconds") < 120


def test_an_overdue_schedule_shows_a_stopped_cluster(client, settings):
    from django_q.models import Schedule

    Schedule.objects.create(name="fold", func="math.floor", args="(1.5,)", schedule_type=Schedule.MINUTES, minutes=1,
                            next_run=timezone.now() - timedelta(minutes=10))

    assert 600 <= scrape(client, settings).value("calltrack_task_schedule_overdue_seconds") < 660


def test_calls_in_progress_count_live_calls_of_the_last_four_hours_only(client, settings):
    campaign = CampaignFactory()
    now = timezone.now()
    CallFactory(campaign=campaign, status=CallStatus.RINGING, started_at=now)
    CallFactory(campaign=campaign, status=CallStatus.IN_PROGRESS, started_at=now - timedelta(minutes=30))
    CallFactory(campaign=campaign, status=CallStatus.COMPLETED, started_at=now)
    CallFactory(campaign=campaign, status=CallStatus.IN_PROGRESS, started_at=now - timedelta(hours=5))  # its end was lost

    assert scrape(client, settings).value("calltrack_calls_in_progress") == 2


# --- Several processes: prometheus-client's multiprocess mode ------------------------------------------------------

MULTIPROCESS = textwrap.dedent("""
    import json, os, sys
    from calltrack import metrics

    children = []
    for n in range(3):
        pid = os.fork()
        if pid == 0:  # a gunicorn worker: its own figures, in its own files of the directory
            metrics.DECISIONS.labels(outcome="routed").inc()
            metrics.WEBHOOK_SECONDS.labels(endpoint="incoming").observe(0.02 * (n + 1))
            os._exit(0)
        children.append(pid)
    for pid in children:
        os.waitpid(pid, 0)

    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.multiprocess import MultiProcessCollector
    registry = CollectorRegistry()
    MultiProcessCollector(registry)
    sys.stdout.write(generate_latest(registry).decode())
""")


def test_several_processes_add_up_in_one_scrape_through_the_multiprocess_directory(tmp_path):
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"), "PYTHONPATH": str(ROOT)}

    done = subprocess.run([sys.executable, "-c", MULTIPROCESS], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60, check=True)

    figures = Scrape(done.stdout)
    assert figures.value("calltrack_decisions_total", outcome="routed") == 3
    assert figures.value("calltrack_voice_webhook_seconds_count", endpoint="incoming") == 3
    assert figures.value("calltrack_voice_webhook_seconds_sum", endpoint="incoming") == pytest.approx(0.12)
    assert len(list((tmp_path / "metrics").glob("counter_*.db"))) == 4  # the parent's and each child's


def test_gunicorn_empties_the_directory_at_start_and_forgets_a_dead_workers_live_gauges(tmp_path, monkeypatch):
    folder = tmp_path / "metrics"
    (folder / "old").mkdir(parents=True)
    (folder / "counter_123.db").write_bytes(b"a previous run")
    (folder / "gauge_livesum_456.db").write_bytes(b"a live gauge")
    (folder / "gauge_livesum_789.db").write_bytes(b"another worker's")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(folder))
    config: dict = {}
    exec(compile((ROOT / "gunicorn.conf.py").read_text(), "gunicorn.conf.py", "exec"), config)  # as gunicorn reads it

    config["child_exit"](None, type("Worker", (), {"pid": 456})())
    assert sorted(p.name for p in folder.iterdir()) == ["counter_123.db", "gauge_livesum_789.db", "old"]
    config["on_starting"](None)
    assert list(folder.iterdir()) == []
    assert not {"on_starting", "child_exit"} - {k for k in config if not k.startswith("_")}


def test_the_image_runs_gunicorn_where_it_finds_gunicorn_conf_py():
    from tests.calltrack.test_container import _exec_form, _instruction

    cmd = _exec_form(_instruction("CMD")[-1])

    assert _instruction("WORKDIR")[-1] == "/app" and "COPY . ." in (ROOT / "Dockerfile").read_text()
    assert "gunicorn.conf.py" not in (ROOT / ".dockerignore").read_text()
    assert cmd[0] == "gunicorn" and not {"-c", "--config"} & set(cmd)  # gunicorn reads ./gunicorn.conf.py by default


WORKER_ENDPOINT = textwrap.dedent("""
    import json, os, sys, urllib.request, urllib.error
    from calltrack import metrics
    from calltrack.metrics_worker import worker_metrics_serve

    server = worker_metrics_serve(port=0, addr="127.0.0.1", token=sys.argv[1])
    pid = os.fork()
    if pid == 0:  # a task worker: delivers a webhook, then exits
        metrics.webhook_delivery_tried(outcome="failed", lag_seconds=None)
        os._exit(0)
    os.waitpid(pid, 0)
    url = f"http://127.0.0.1:{server.server_port}/metrics"
    out = {}
    for name, token in (("right", sys.argv[1]), ("wrong", "nope")):
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})) as r:
                out[name] = [r.status, r.read().decode()]
        except urllib.error.HTTPError as exc:
            out[name] = [exc.code, ""]
    print(json.dumps(out))
""")


def test_the_task_cluster_serves_its_workers_figures_to_the_token_only(tmp_path):
    folder = tmp_path / "worker-metrics"
    folder.mkdir()
    (folder / "counter_1.db").write_bytes(b"left by a previous run")
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(folder), "PYTHONPATH": str(ROOT)}

    done = subprocess.run([sys.executable, "-c", WORKER_ENDPOINT, TOKEN], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60, check=True)

    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["wrong"] == [401, ""]
    assert out["right"][0] == 200
    assert Scrape(out["right"][1]).value("calltrack_webhook_deliveries_total", outcome="failed") == 1


def test_the_task_cluster_serves_nothing_without_a_token_or_a_directory(monkeypatch, caplog):
    from calltrack.metrics_worker import worker_metrics_serve

    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    assert worker_metrics_serve(port=0, addr="127.0.0.1", token=TOKEN) is None
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", "/nonexistent-never-made")
    assert worker_metrics_serve(port=0, addr="127.0.0.1", token="") is None
    assert "METRICS_TOKEN" in caplog.text and "PROMETHEUS_MULTIPROC_DIR" in caplog.text
    assert not Path("/nonexistent-never-made").exists()


# --- The README, compose.yaml and the settings agree ----------------------------------------------------------------

def _readme_operations() -> str:
    readme = (ROOT / "README.md").read_text()
    return readme.split("\n## Operations\n", 1)[1].split("\n## ", 1)[0]


def test_the_readme_lists_every_figure_served_and_alerts_on_the_ones_that_matter(client, settings):
    served = {name.removesuffix("_total") for name in scrape(client, settings).names() if name.startswith("calltrack_")}
    served = {name.removesuffix(suffix) for name in served for suffix in ("_bucket", "_count", "_sum", "_created") if name.endswith(suffix)} | {
        name for name in served if not name.endswith(("_bucket", "_count", "_sum", "_created"))}
    operations = _readme_operations()
    table = operations.split("| metric |", 1)[1].split("\n\n", 1)[0]
    listed = {name.removesuffix("_total") for name in re.findall(r"^\| `(calltrack_[a-z_]+)`", table, re.M)}
    alerts = operations.split("**What to alert on**", 1)[1].split("**Logs**", 1)[0]

    assert served == listed
    for name in ("calltrack_failsafe_answers_total", "calltrack_voice_webhook_seconds_bucket", "calltrack_pool_overflows_total",
                 'calltrack_webhook_deliveries_total{outcome="failed"}', "calltrack_task_queue_oldest_seconds"):
        assert name in alerts
    assert "wiped at each" in operations and "start" in operations


def test_compose_passes_the_observability_variables_the_settings_read_and_mounts_the_directory_fresh():
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    app = compose["services"]["web"]
    env = app["environment"]
    settings_src = (ROOT / "calltrack" / "settings.py").read_text()

    for var in ("LOG_FORMAT", "METRICS_TOKEN", "METRICS_WORKER_PORT", "PROMETHEUS_MULTIPROC_DIR"):
        assert var in env and re.search(rf'env(?:\.\w+)?\(\s*"{var}"', settings_src)
        assert f"`{var}" in _readme_operations() or f"{var}=" in _readme_operations()
    for name in ("web", "worker"):  # an empty directory at every container start
        assert env["PROMETHEUS_MULTIPROC_DIR"] in compose["services"][name]["tmpfs"]
    assert env["METRICS_TOKEN"] == "${METRICS_TOKEN:-}"  # never a value in the file
    assert "ports" not in compose["services"]["worker"]


def test_with_the_redis_broker_the_oldest_waiting_task_is_the_head_of_its_list(monkeypatch):
    redis = pytest.importorskip("redis")
    from django_q.brokers.redis_broker import Redis

    from calltrack import metrics_view
    from tests.conftest import REDIS_TEST_URL

    client = redis.Redis.from_url(REDIS_TEST_URL)
    try:
        client.ping()
    except redis.ConnectionError:
        pytest.skip("no Redis at 127.0.0.1:6379")
    broker = Redis(list_key=f"calltrack-metrics-test-{os.getpid()}")  # a list of its own: other tests' keys untouched
    broker.connection = client
    monkeypatch.setattr(metrics_view, "_broker", broker)
    oldest = timezone.now() - timedelta(seconds=75)
    try:
        assert metrics_view.task_queue_read() == (0, None)
        for started in (oldest, timezone.now()):
            broker.enqueue(SignedPackage.dumps({"id": "t", "name": "t", "func": "math.floor", "args": (1.5,), "kwargs": {}, "started": started}))

        assert metrics_view.task_queue_read() == (2, oldest)
    finally:
        client.delete(broker.list_key)
