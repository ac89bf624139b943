"""Proof across nodes (issue 31): two app nodes and two task clusters on one PostgreSQL and one Redis.

The module starts what a two-machine deployment runs: two ``gunicorn calltrack.wsgi`` masters on their own ports
(2 sync workers each, as two machines behind a load balancer) and two ``manage.py qcluster`` task clusters on the
Redis broker (``Q_REDIS_URL``), all on the test database pytest-django created (the tests write committed rows:
``transactional_db``). Requests are spread over both nodes; then:

- caps: 20 simultaneous calls against a concurrency cap of 3 connect 3, and freed slots are seen by the other node;
- pools: 50 simultaneous visitors on a 40-number pool hold 40 distinct numbers, the other 10 overflow;
- caches: a routing or pool edit (through one node's API, or a write from elsewhere) is applied by every worker of
  every node from its next request; the delay is measured;
- schedules: each scheduled task runs once per period, not once per cluster;
- webhooks: 200 completed calls each deliver their webhook exactly once although one cluster is stopped (SIGTERM)
  halfway; then two cap folds and two rollup refreshes at once leave the totals exact.

PostgreSQL only (``postgres`` mark); skipped where gunicorn or Redis is missing. Redis databases:
``CALLTRACK_TEST_NODES_BROKER`` and ``CALLTRACK_TEST_NODES_CACHE`` (2 and 3 by default, emptied before and after; the
other Redis tests use 1). Run with ``-s`` to see the measured figures (the README's sizing quotes them).
"""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.utils import timezone
from django_q.models import Schedule, Task
from lxml import etree

from calltrack.numbers.models import NumberPool, NumberSession, OverflowPolicy, ReceivingNumber
from calltrack.schedules import SCHEDULES
from routing import decision as dec
from routing.services.slots import cap_counters_fold, handler_loads
from routing.store.counters import handler_loads_recount
from tests.numbers.factories import NumberPoolFactory, TrackingNumberFactory
from tests.tracking.factories import CampaignFactory, CampaignHandlerFactory, HandlerFactory, WebhookFactory
from tests.tracking.receiver import receiver
from tracking.models import Call, CallAttempt, CallDayRollup, DeliveryStatus, WebhookAttempt, WebhookDelivery
from tracking.services.reports import report_rollups_refresh
from tracking.services.webhooks import REQUEUE_AFTER, try_lease

ROOT = Path(__file__).resolve().parents[2]
BROKER_URL = os.environ.get("CALLTRACK_TEST_NODES_BROKER", "redis://127.0.0.1:6379/2")
CACHE_URL = os.environ.get("CALLTRACK_TEST_NODES_CACHE", "redis://127.0.0.1:6379/3")
TOKEN = "cross-node-auth-token-0123456789abcdef"
PUBLIC = "https://calls.example.test"  # the load balancer's address Twilio signs (both nodes are behind it)
ORIGIN = "https://www.shop.example"
COMPANY = "+13035550190"

# One deployment for the module: under pytest-xdist every test of it runs on the same worker (`make test` passes
# --dist loadgroup).
pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.xdist_group("cross_node")]

#: What the tests measured, printed at the end of the module (pytest -s).
FIGURES: dict[str, str] = {}


# --- the processes ---------------------------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (Linux /proc), for their CPU time and memory."""
    pids, todo = [], [pid]
    while todo:
        p = todo.pop()
        pids.append(p)
        for task in Path(f"/proc/{p}/task").glob("*"):
            try:
                todo.extend(int(c) for c in (task / "children").read_text().split())
            except OSError:
                pass
    return pids


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of ``pid`` and its children (0 where /proc is missing)."""
    total = 0.0
    for p in _process_tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _rss_mb(pid: int) -> list[int]:
    """Resident memory of ``pid`` and of each child, MB."""
    sizes = []
    for p in _process_tree(pid):
        try:
            line = next(x for x in Path(f"/proc/{p}/status").read_text().splitlines() if x.startswith("VmRSS:"))
        except (OSError, StopIteration):
            continue
        sizes.append(int(line.split()[1]) // 1024)
    return sizes


@dataclass
class Node:
    name: str
    port: int
    process: subprocess.Popen

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@dataclass
class Cluster:
    name: str
    process: subprocess.Popen
    log: Path

    def wait_running(self) -> None:
        _wait(lambda: b" running." in self.log.read_bytes(), timeout=60, what=f"{self.name} to start", processes=[self.process])


@dataclass
class Deployment:
    nodes: list[Node]
    clusters: list[Cluster]
    env: dict[str, str]
    folder: Path
    started: list[subprocess.Popen] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)

    def cluster_start(self, name: str, *, wait: bool = True) -> Cluster:
        """``manage.py qcluster`` with the deployment's environment (its log in ``folder``), once it runs."""
        log = self.folder / f"{name}.log"
        with log.open("wb") as out:  # the child keeps its own descriptor
            process = subprocess.Popen(
                [sys.executable, "manage.py", "qcluster"], cwd=ROOT, env=self.env, stdout=subprocess.DEVNULL, stderr=out,
                start_new_session=True,
            )
        self.started.append(process)
        self.logs.append(log)
        cluster = Cluster(name, process, log)
        if wait:
            cluster.wait_running()
        return cluster

    def manage(self, *args: str) -> str:
        """A one-off ``manage.py`` command with the deployment's environment (the Redis broker, not the tests' own)."""
        done = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=120,
                              check=False)
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout


def _database_url() -> str:
    s = connection.settings_dict
    auth = quote(s["USER"] or "postgres", safe="") + (f":{quote(str(s['PASSWORD']), safe='')}" if s.get("PASSWORD") else "")
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def _environment() -> dict[str, str]:
    """What every node and cluster gets: the production settings of a multi-node deployment (DEBUG off, Redis cache
    and broker), plus a fast webhook retry and the local receiver allowed (outgoing HTTP is public-only otherwise)."""
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("CALLTRACK_", "DEBUG", "Q_", "CACHE_URL", "DATABASE_", "DB_"))}
    keep.update(
        DATABASE_URL=_database_url(), DJANGO_SETTINGS_MODULE="calltrack.settings", DEBUG="false",
        SECRET_KEY="cross-node-test-" + "Zq8w" * 12, ALLOWED_HOSTS="127.0.0.1", TWILIO_AUTH_TOKEN=TOKEN,
        CALLTRACK_PUBLIC_BASE_URL=PUBLIC, CALLTRACK_PROXY_HOPS="1", CACHE_URL=CACHE_URL, Q_REDIS_URL=BROKER_URL, Q_WORKERS="2",
        CALLTRACK_OUTBOUND_ALLOW="127.0.0.1", CALLTRACK_WEBHOOK_RETRY_BASE="1", CALLTRACK_WEBHOOK_TIMEOUT="10",
        CALLTRACK_DNI_RATE_LIMIT_IP="", CALLTRACK_DNI_RATE_LIMIT_VISITOR="", LOG_LEVEL="INFO", PYTHONPATH=str(ROOT),
    )
    return keep


def _wait(predicate, *, timeout: float, what: str, processes=(), step: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        for p in processes:
            assert p.poll() is None, f"{what}: a process exited early ({p.args})"
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def _stop_all(processes: list[subprocess.Popen]) -> None:
    """SIGTERM to each master (what `docker stop` sends: gunicorn and qcluster stop their workers gracefully, in a
    few seconds), then SIGKILL to whatever is left of each process group."""
    for process in processes:
        if process.poll() is None:
            process.terminate()
    deadline = time.monotonic() + 30
    for process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def deployment(django_db_setup, django_db_blocker, tmp_path_factory):
    pytest.importorskip("gunicorn", reason="gunicorn is not installed")
    redis = pytest.importorskip("redis", reason="the redis package is not installed")
    clients = [redis.Redis.from_url(url) for url in (BROKER_URL, CACHE_URL)]
    try:
        for client in clients:
            client.ping()
    except redis.ConnectionError:
        pytest.skip("no Redis at " + BROKER_URL)
    for client in clients:
        client.flushdb()
    logs = tmp_path_factory.mktemp("nodes")
    with django_db_blocker.unblock():
        env = _environment()
    begun = time.monotonic()
    deployment = Deployment(nodes=[], clusters=[], env=env, folder=logs)
    started = deployment.started
    try:
        for name in ("node-a", "node-b"):
            port = _free_port()
            log = logs / f"{name}.log"
            with log.open("wb") as out:  # the child keeps its own descriptor
                process = subprocess.Popen(
                    [sys.executable, "-m", "gunicorn", "calltrack.wsgi:application", "--bind", f"127.0.0.1:{port}", "--workers", "2"],
                    cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=out, start_new_session=True,
                )
            started.append(process)
            deployment.nodes.append(Node(name, port, process))
            deployment.logs.append(log)
        for name in ("cluster-a", "cluster-b"):
            deployment.clusters.append(deployment.cluster_start(name, wait=False))

        def healthy(node: Node) -> bool:
            try:
                with urllib.request.urlopen(node.url("/healthz"), timeout=2) as r:
                    return r.status == 200
            except OSError:
                return False

        for node in deployment.nodes:
            _wait(lambda node=node: healthy(node), timeout=60, what=f"{node.name} /healthz", processes=started)
        for cluster in deployment.clusters:
            cluster.wait_running()
        FIGURES["start"] = f"2 nodes and 2 clusters ready in {time.monotonic() - begun:.1f} s"
        FIGURES["memory after start (MB RSS: master, workers)"] = "; ".join(
            f"{p.name}: {_rss_mb(p.process.pid)}" for p in [*deployment.nodes, *deployment.clusters]
        )
        yield deployment
    except BaseException:
        for log in deployment.logs:
            sys.stderr.write(f"--- {log.name} ---\n{log.read_text(errors='replace')[-3000:]}\n")
        raise
    finally:
        _stop_all(started)
        for client in clients:
            client.flushdb()
            client.close()
        if FIGURES:
            print("\ncross-node figures:\n" + "\n".join(f"  {k}: {v}" for k, v in FIGURES.items()))


@pytest.fixture
def nodes(deployment, transactional_db):
    """The deployment, for a test whose rows are committed (the nodes and clusters read them)."""
    return deployment


# --- requests --------------------------------------------------------------------------------------------------------

def _request(url: str, *, data: bytes | None = None, headers: dict[str, str] | None = None, method: str = "POST") -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=data, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def twilio(node: Node, path: str, params: dict[str, str]) -> bytes:
    """A signed Twilio webhook to ``node``, as Twilio calls the public address (``PUBLIC``) behind the balancer."""
    from twilio.request_validator import RequestValidator

    signature = RequestValidator(TOKEN).compute_signature(PUBLIC + path, params)
    status, body = _request(
        node.url(path), data=urlencode(params).encode(),
        headers={"X-Twilio-Signature": signature, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert status == 200, (node.name, path, status, body[:500])
    return body


def dialled(twiml: bytes) -> list[str]:
    return [n.text for n in etree.fromstring(twiml).findall("Dial/Number")]


def dni(node: Node, path: str, body: dict, *, ip: str) -> tuple[int, dict]:
    status, raw = _request(
        node.url(path), data=json.dumps(body).encode(),
        headers={"Content-Type": "text/plain", "Origin": ORIGIN, "X-Forwarded-For": ip},
    )
    return status, json.loads(raw or b"{}")


def api(node: Node, path: str, body: dict, *, token: str, method: str = "PATCH") -> dict:
    status, raw = _request(
        node.url(path), data=json.dumps(body).encode(), method=method,
        headers={"Content-Type": "application/json", "Authorization": f"Token {token}"},
    )
    assert status in (200, 201), (path, status, raw[:500])
    return json.loads(raw)


def at_once(n: int, work) -> list:
    """``work(i)`` for i in range(n), all released at the same moment (a barrier), each on its own thread."""
    barrier = threading.Barrier(n)

    def one(i: int):
        barrier.wait(timeout=30)
        return work(i)

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(one, range(n)))


# --- (a) caps --------------------------------------------------------------------------------------------------------

def test_a_concurrency_cap_of_3_connects_3_of_20_simultaneous_calls_split_across_two_nodes(nodes):
    campaign = CampaignFactory(company_phone=COMPANY)
    handler = HandlerFactory(concurrency_cap=3)
    CampaignHandlerFactory(campaign=campaign, handler=handler)
    tn = TrackingNumberFactory(campaign=campaign)
    line = handler.receiving_number.number

    def call(i: int, wave: str) -> list[str]:
        node = nodes.nodes[i % 2]
        return dialled(twilio(node, "/voice/incoming", {"CallSid": f"CA{wave}{i:04d}", "From": f"+1415555{i:04d}", "To": tn.number}))

    first = at_once(20, lambda i: call(i, "first"))
    assert sum(d == [line] for d in first) == 3, first
    assert sum(d == [COMPANY] for d in first) == 17  # the rest go down the fallback chain to the company phone
    connected = list(CallAttempt.objects.filter(handler=handler, holds_slot=True).values_list("call__call_sid", flat=True))
    assert len(connected) == 3 and Call.objects.filter(call_sid__startswith="CAfirst").count() == 20
    # Each node took 10 of the calls: a cap counted per node (or per worker) would have connected 3 on each.
    by_node = Counter(nodes.nodes[int(sid[-4:]) % 2].name for sid in connected)
    FIGURES["caps"] = f"20 calls at once, 10 per node: connected {dict(by_node)}, 17 to the company phone"

    # Two of the connected calls end on the node that did not route them; their slots are free for the next calls,
    # whichever node takes them, and the cap still holds: 10 more at once connect exactly 2.
    for sid in connected[:2]:
        other = nodes.nodes[(int(sid[-4:]) + 1) % 2]
        twilio(other, "/voice/status", {"CallSid": sid, "CallStatus": "completed", "CallDuration": "30"})
    second = at_once(10, lambda i: call(i, "again"))
    assert sum(d == [line] for d in second) == 2, second
    assert CallAttempt.objects.filter(handler=handler, holds_slot=True).count() == 3


# --- (b) pools -------------------------------------------------------------------------------------------------------

def test_fifty_simultaneous_visitors_on_a_forty_number_pool_never_share_a_number_across_two_nodes(nodes):
    pool = NumberPoolFactory(
        key="cross-node", allowed_origins=ORIGIN, overflow_policy=OverflowPolicy.REUSE_OLDEST, fallback_number="+18005550100",
        session_lifetime=1800,
    )
    numbers = {TrackingNumberFactory(number=f"+1415300{i:04d}", kind="pool", pool=pool, campaign=pool.campaign).number for i in range(40)}

    def visit(i: int) -> tuple[int, dict]:
        return dni(nodes.nodes[i % 2], "/dni/v1/assign", {"pool": "cross-node", "visitor_id": f"visitor-{i:04d}-xnode"}, ip=f"198.51.100.{i + 1}")

    answers = at_once(50, visit)
    assert {status for status, _ in answers} == {200}, answers
    held = [a["number"] for _, a in answers if not a["overflow"]]
    overflowed = [a for _, a in answers if a["overflow"]]
    # Every pool number went to exactly one visitor; the other 10 overflowed. With "reuse the oldest", a session
    # younger than CALLTRACK_DNI_TAKEOVER_MIN_AGE is never taken over: the newcomers see the fallback number.
    assert sorted(held) == sorted(numbers)
    assert len(overflowed) == 10 and {a["number"] for a in overflowed} == {"+18005550100"}
    live = NumberSession.objects.filter(pool=pool, expires_at__gt=timezone.now(), tracking_number__isnull=False)
    assert live.count() == 40 and live.values("tracking_number").distinct().count() == 40
    assert NumberPool.objects.get(pk=pool.pk).overflow_count == 10

    # Every visitor comes back through the other node: each keeps its number (or its overflow), nobody gains one.
    again = at_once(50, lambda i: dni(nodes.nodes[(i + 1) % 2], "/dni/v1/heartbeat", {
        "pool": "cross-node", "visitor_id": f"visitor-{i:04d}-xnode", "session_id": answers[i][1]["session_id"]}, ip=f"198.51.100.{i + 1}"))
    assert [a["number"] for _, a in again] == [a["number"] for _, a in answers]


# --- (e) per-process caches ------------------------------------------------------------------------------------------

def _staff_token() -> str:
    from django.contrib.auth.models import User
    from rest_framework.authtoken.models import Token

    user = User.objects.create_superuser("nodes-admin", "admin@example.test", "x-" + "p4ss" * 6)
    return Token.objects.create(user=user).key


def _first_fresh(nodes: Deployment, ask, fresh, *, rounds: int = 6) -> dict[str, float]:
    """Right after an edit committed: ask each node ``rounds`` times two at a time (both workers of a node busy), and
    return, per node, the seconds from the commit to its first fresh answer. Every answer must be fresh: a worker
    still answering from its old cache fails the test."""
    committed = time.monotonic()
    first: dict[str, float] = {}
    stale: list[str] = []
    for r in range(rounds):
        for node in nodes.nodes:
            for answer in at_once(2, lambda i, node=node, r=r: ask(node, r * 2 + i)):
                if fresh(answer):
                    first.setdefault(node.name, time.monotonic() - committed)
                else:
                    stale.append(f"{node.name}: {answer}")
    assert not stale, stale
    return first


def test_an_edit_on_one_node_or_elsewhere_reaches_every_worker_of_every_node_at_its_next_request(nodes):
    token = _staff_token()
    campaign = CampaignFactory(company_phone=COMPANY)
    old, new = HandlerFactory(), HandlerFactory()
    CampaignHandlerFactory(campaign=campaign, handler=old)
    tn = TrackingNumberFactory(campaign=campaign)
    node_a, node_b = nodes.nodes
    serial = iter(range(10_000))

    def ring(node: Node, i: int) -> list[str]:
        return dialled(twilio(node, "/voice/incoming", {"CallSid": f"CAcache{next(serial):05d}", "From": "+14155550123", "To": tn.number}))

    # Warm every worker's cache of the campaign (two requests at a time, so both workers of each node answer).
    assert _first_fresh(nodes, ring, lambda d: d == [old.receiving_number.number], rounds=3)

    # 1. The handler list replaced through node A's API: every worker of both nodes dials the new handler next.
    api(node_a, f"/api/v1/campaigns/{campaign.pk}/", {"handlers": [{"handler": new.pk}]}, token=token)
    routing_api = _first_fresh(nodes, ring, lambda d: d == [new.receiving_number.number])
    # 2. A write from elsewhere (a script, another service, the ORM): the handler's line changed in the database.
    ReceivingNumber.objects.filter(pk=new.receiving_number_id).update(number="+13035550177")
    routing_orm = _first_fresh(nodes, ring, lambda d: d == ["+13035550177"])

    # 3. A pool's settings (each worker keeps them): the session lifetime cut through node B's API.
    pool = NumberPoolFactory(key="cache-pool", allowed_origins=ORIGIN, session_lifetime=1800, campaign=campaign)
    for i in range(20):
        TrackingNumberFactory(number=f"+1415310{i:04d}", kind="pool", pool=pool, campaign=campaign)

    def visit(node: Node, i: int) -> float:
        status, answer = dni(node, "/dni/v1/assign", {"pool": "cache-pool", "visitor_id": f"cache-visitor-{next(serial):05d}"},
                             ip="203.0.113.50")
        assert status == 200, answer
        return (datetime.fromisoformat(answer["expires_at"].replace("Z", "+00:00")) - timezone.now()).total_seconds()

    assert _first_fresh(nodes, visit, lambda left: left > 1000, rounds=2)
    api(node_b, f"/api/v1/pools/{pool.pk}/", {"session_lifetime": 600}, token=token)
    pool_api = _first_fresh(nodes, visit, lambda left: left < 700, rounds=3)

    worst = max([*routing_api.values(), *routing_orm.values(), *pool_api.values()])
    FIGURES["cache invalidation (s from the edit's commit to a node's first answer, that answer's own time included)"] = (
        f"routing via API {max(routing_api.values()):.3f}, routing via ORM {max(routing_orm.values()):.3f}, "
        f"pool via API {max(pool_api.values()):.3f}; every later answer fresh"
    )
    # The version is re-checked by each request itself: the first request after the commit is already fresh.
    assert worst < 5


# --- (d) schedules ---------------------------------------------------------------------------------------------------

def test_each_scheduled_task_runs_once_per_period_with_two_clusters_not_once_per_cluster(nodes):
    names = [name for name, *_ in SCHEDULES]
    due_at = timezone.now() - timedelta(seconds=1)
    with transaction.atomic():
        call_command("calltrack_schedules", stdout=io.StringIO())
        # Every schedule is due now: both clusters' schedulers (each looks every 30 s) find all of them due.
        Schedule.objects.filter(name__in=names).update(next_run=due_at)
    due = time.monotonic()
    # The shortest period is a minute: a second run of any schedule starting within it would be one run too many.
    period = Task.objects.filter(group__in=names, started__lt=due_at + timedelta(seconds=58))

    def runs() -> Counter:
        return Counter(period.values_list("group", flat=True))

    _wait(lambda: set(runs()) == set(names), timeout=55, what="every schedule to run", step=1)
    # Both schedulers have looked at least once since the schedules fell due (every 30 s, plus a margin).
    time.sleep(max(0.0, due + 36 - time.monotonic()))
    counts = runs()
    assert counts == Counter({name: 1 for name in names}), counts
    assert all(s.next_run >= due_at + timedelta(minutes=1) for s in Schedule.objects.filter(name__in=names))
    created = Counter()
    for cluster in nodes.clusters:
        text = cluster.log.read_text(errors="replace")
        created[cluster.name] = sum(text.count(f"from schedule [{name}]") for name in names)
    FIGURES["schedules"] = f"{len(names)} schedules due at once ran once each; created by {dict(created)} (from their logs)"
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT application_name, count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            " GROUP BY 1"
        )
        FIGURES["PostgreSQL connections held by the nodes and clusters (after the tests before this one)"] = str(cursor.fetchall())


# --- (c) webhooks with a cluster stopped, then folds and refreshes at once --------------------------------------------

def test_two_hundred_completed_calls_deliver_their_webhooks_exactly_once_with_a_cluster_stopped_halfway(nodes):
    calls = 200
    campaign = CampaignFactory(company_phone=COMPANY)
    handler = HandlerFactory(hourly_cap=10_000, daily_cap=10_000)  # period caps: its calls go through the cap counters
    CampaignHandlerFactory(campaign=campaign, handler=handler)
    tn = TrackingNumberFactory(campaign=campaign)
    stopping, stopped = nodes.clusters[0], nodes.clusters[1]
    report_rollups_refresh()  # the scheduled refresh has run once: the operator's zone is rolled up from now on
    cpu_before = {n.name: _cpu_seconds(n.process.pid) for n in nodes.nodes}
    cpu_clusters = {c.name: _cpu_seconds(c.process.pid) for c in nodes.clusters}
    with receiver((200, 0.03)) as rx:
        WebhookFactory(campaign=campaign, url=rx.url("/completed"), events=["call.completed"], secret="cross-node")
        stop = {}

        def watch() -> None:
            while len(rx.requests) < calls // 2:
                time.sleep(0.01)
            stop["at"] = len(rx.requests)
            stopping.process.send_signal(signal.SIGTERM)  # the cluster's master: a graceful stop, as `docker stop` does

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()

        def one(i: int) -> None:
            # A whole answered call, its three webhooks spread over both nodes: routed, answered (the dial's result),
            # ended (the status callback, which queues the webhook).
            sid = f"CAhook{i:05d}"
            first, other = nodes.nodes[i % 2], nodes.nodes[(i + 1) % 2]
            twiml = twilio(first, "/voice/incoming", {"CallSid": sid, "From": f"+1415556{i:04d}", "To": tn.number})
            assert dialled(twiml) == [handler.receiving_number.number]
            action = etree.fromstring(twiml).find("Dial").get("action")
            assert action.startswith(PUBLIC + "/voice/")
            twilio(other, action.removeprefix(PUBLIC), {"CallSid": sid, "DialCallStatus": "completed", "DialCallDuration": "40"})
            twilio(first, "/voice/status", {"CallSid": sid, "CallStatus": "completed", "CallDuration": "42"})

        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(one, range(calls)))
        calls_took = time.monotonic() - started
        cpu_web = sum(_cpu_seconds(n.process.pid) for n in nodes.nodes) - sum(cpu_before.values())
        watcher.join(timeout=60)
        assert stop, "the cluster was never stopped"
        stopping.process.wait(timeout=60)
        _wait(lambda: WebhookDelivery.objects.filter(status=DeliveryStatus.DELIVERED).count() == calls, timeout=90,
              what="every delivery to be delivered", step=0.5)
        time.sleep(1)  # anything sent twice would arrive now
        received = Counter(r.headers["X-Calltrack-Delivery"] for r in rx.requests)

    assert stopping.process.returncode == 0, "the stopped cluster did not exit cleanly"
    assert stop["at"] < calls, "the cluster was stopped after the work was done"
    deliveries = WebhookDelivery.objects.filter(call__campaign=campaign)
    assert deliveries.count() == calls and Call.objects.filter(campaign=campaign).count() == calls
    assert set(received) == {str(pk) for pk in deliveries.values_list("pk", flat=True)}
    assert set(received.values()) == {1}, [k for k, v in received.items() if v > 1]
    assert WebhookAttempt.objects.filter(delivery__in=deliveries).count() == calls
    FIGURES["webhooks"] = (
        f"{calls} delivered once each; SIGTERM to {stopping.name} after {stop['at']} deliveries, {stopped.name} went on"
    )
    FIGURES["CPU per completed call on the web nodes (incoming, dial result, status callback; gunicorn workers)"] = (
        f"{1000 * cpu_web / calls:.1f} ms ({calls} calls in {calls_took:.1f} s over 2 nodes x 2 workers)"
    )
    FIGURES["CPU per webhook delivery on the clusters (all their processes, idle loops included)"] = (
        f"{1000 * (_cpu_seconds(stopped.process.pid) - cpu_clusters[stopped.name]) / max(1, calls - stop['at']):.1f} ms, upper bound"
    )

    # Two folds and two rollup refreshes at once (what two clusters' schedules may do): the counters equal a recount
    # of the attempts, and the day's rollup equals the calls.
    barrier = threading.Barrier(4)

    def job(i: int) -> int:
        try:
            barrier.wait(timeout=30)
            return cap_counters_fold() if i < 2 else report_rollups_refresh()
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=4) as pool:
        folded = list(pool.map(job, range(4)))
    assert folded[0] + folded[1] >= 1 and folded[2] + folded[3] >= 1, folded
    now = timezone.now()
    option = dec.HandlerOption(id=handler.pk, name=handler.name, number="", timezone=handler.timezone, hourly_cap=10_000, daily_cap=10_000)
    loads = handler_loads(options=[option], at=now)
    assert loads == handler_loads_recount(options=[option], at=now)
    assert loads[handler.pk].hour == calls or loads[handler.pk].day == calls, loads
    today = timezone.localdate(Call.objects.filter(campaign=campaign).earliest("started_at").started_at)
    # The day's rollup of the campaign's account (each rolled-up day also has a row for calls in no account).
    rollup = CallDayRollup.objects.get(dim="total", day=today, account_id=campaign.account_id)
    assert (rollup.calls, rollup.talk_time) == (
        Call.objects.filter(started_at__date=today).count(), sum(Call.objects.filter(started_at__date=today).values_list("talk_time", flat=True))
    )


# --- a cluster killed hard: what it held comes back through the requeue ----------------------------------------------

def test_a_cluster_killed_hard_loses_no_delivery_the_every_minute_requeue_sends_what_it_held(nodes):
    """SIGKILL (out of memory, a machine lost): the tasks the cluster had taken from Redis are gone with it. Another
    cluster goes on with the queue; two minutes later the requeue (tracking.services.webhooks) sends the rest. A try
    cut off mid-request may reach the receiver twice (receivers dedupe on X-Calltrack-Delivery); none is lost."""
    calls = 60
    # One cluster at a time here, so that the one killed surely holds tasks (after the test above, one is left).
    running = [c for c in nodes.clusters if c.process.poll() is None]
    victim = running.pop()
    for cluster in running:
        cluster.process.terminate()
        cluster.process.wait(timeout=60)
    campaign = CampaignFactory(company_phone=COMPANY)
    CampaignHandlerFactory(campaign=campaign, handler=HandlerFactory())
    tn = TrackingNumberFactory(campaign=campaign)
    with receiver((200, 0.05)) as rx:
        WebhookFactory(campaign=campaign, url=rx.url("/completed"), events=["call.completed"], secret="cross-node")

        def one(i: int) -> None:
            sid = f"CAkill{i:05d}"
            twilio(nodes.nodes[i % 2], "/voice/incoming", {"CallSid": sid, "From": f"+1415557{i:04d}", "To": tn.number})
            twilio(nodes.nodes[(i + 1) % 2], "/voice/status", {"CallSid": sid, "CallStatus": "completed", "CallDuration": "42"})

        with ThreadPoolExecutor(max_workers=6) as pool:
            list(pool.map(one, range(calls)))
        _wait(lambda: len(rx.requests) >= 10, timeout=60, what="the first deliveries", processes=[victim.process])
        os.killpg(victim.process.pid, signal.SIGKILL)
        victim.process.wait(timeout=10)
        deliveries = WebhookDelivery.objects.filter(call__campaign=campaign)
        open_ = deliveries.exclude(status=DeliveryStatus.DELIVERED)

        # Another machine's cluster takes what is left in Redis; what the killed one held stays undelivered.
        survivor = nodes.cluster_start("cluster-after")

        def settled() -> bool:
            before = (len(rx.requests), open_.count())
            time.sleep(3)
            return (len(rx.requests), open_.count()) == before

        _wait(settled, timeout=90, what="the queue to drain", processes=[survivor.process], step=0)
        lost = open_.count()
        assert deliveries.count() == calls
        # Two minutes and a lease later (the clock moved back instead of waiting), the requeue run by the schedule.
        past = timezone.now() - REQUEUE_AFTER - try_lease() - timedelta(seconds=5)
        open_.filter(next_attempt_at__isnull=False).update(next_attempt_at=past)
        open_.update(created_at=past)
        out = nodes.manage("shell", "-v", "0", "-c", "from tracking.tasks import webhook_deliveries_requeue_task as t; print(t())")
        assert out.strip() == f"{lost} deliveries queued again"
        _wait(lambda: not open_.exists(), timeout=60, what="the requeued deliveries", processes=[survivor.process], step=0.5)
        time.sleep(1)
        received = Counter(r.headers["X-Calltrack-Delivery"] for r in rx.requests)
    assert lost >= 1, "the killed cluster held nothing: the test proved nothing"
    attempts = dict(deliveries.values_list("pk", "attempts"))
    assert set(received) == {str(pk) for pk in attempts}  # none lost
    twice = [pk for pk, n in received.items() if n > 1]
    assert all(received[str(pk)] <= n for pk, n in attempts.items())  # never more sends than claimed tries
    assert len(twice) <= 2  # at most the tries under way in the killed cluster's 2 workers
    FIGURES["hard kill"] = f"{lost} of {calls} deliveries held by the killed cluster, all sent by the requeue; {len(twice)} sent twice"
