"""Benchmark of the DNI tag's endpoints under gunicorn on PostgreSQL, beside a trivial JSON view (the floor).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/ct_bench_dni /work/main/.venv/bin/python bench/dni.py

Recreates the database named in DATABASE_URL (default ct_bench_dni; it must start with ct_ and contain 'bench'),
migrates it, makes a pool of 10,000 local numbers with 100,000 sessions of earlier visitors, over (``--history``:
sessions are never deleted, so an install's table holds every page view it served; ``--history 0`` is a fresh
install, whose statements are prepared while the table is empty: until autovacuum's first ANALYZE of the growing
table, their plans read it by scanning it), starts gunicorn on 127.0.0.1 at a random port, then runs bounded phases with the same closed-loop client (asyncio, one connection per request, as
gunicorn's sync workers close them), alternating in short slices so all see the same background load:

* floor: the cheapest JSON answer of the same stack (no database); db-floor: the floor plus one INSERT
  committed (what any durable write costs);
* returning: ``/dni/v1/assign`` page views of visitors holding a live session (the tag's "heartbeat" of a
  returning visitor: extend the hold, answer the same number);
* heartbeat: ``/dni/v1/heartbeat`` of those sessions;
* new: ``/dni/v1/assign`` of new visitors (a free number taken, a session opened);
* overflow: new visitors of an exhausted pool (``--full-size``, default 20 numbers, all held by live
  sessions): what every visitor of a full pool (and a bot flood) takes.

Prints requests per second and latency percentiles of each, the DNI phases also as a share of the floor's
throughput, and checks the targets: a returning visitor's page view and a new visitor's assignment each at
least 40% of the floor's throughput with p99 under 30 ms, and the overflow's p50 at most 1.5x the new visitor's
(the path it replaces). Exit status 1 when a target is missed. The client shares the machine's cores with the
server, so the figures are lower bounds of what the server alone would do.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/ct_bench_dni"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def prepare_database(url: str, size: int, full_size: int = 20, history: int = 0) -> None:
    """Drop, create, migrate the bench database, fill a pool of ``size`` numbers and give it ``history`` sessions of
    earlier visitors, long over (sessions are never deleted: an install's table holds every page view it served)."""
    name = url.rsplit("/", 1)[1]
    if not name.startswith("ct_") or "bench" not in name:
        sys.exit(f"refusing to recreate database '{name}': the bench database name must start with ct_ and contain 'bench'")
    import psycopg

    admin_url = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "calltrack.settings")
    sys.path.insert(0, str(ROOT))
    import django


    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from calltrack.numbers.models import NumberKind, NumberPool, NumberStatus, NumberType, TrackingNumber
    from tracking.models import Campaign

    campaign = Campaign.objects.create(name="Bench")
    pool = NumberPool.objects.create(name="Bench", key="bench", campaign=campaign, session_lifetime=1800)
    TrackingNumber.objects.bulk_create(
        [
            TrackingNumber(
                number=f"+1415{2000000 + i:07d}", kind=NumberKind.POOL, status=NumberStatus.ACTIVE, pool=pool,
                campaign=campaign, number_type=NumberType.LOCAL, area_code="415", country="US",
            )
            for i in range(size)
        ],
        batch_size=2000,
    )
    # The exhausted pool: every number held by a live session that has been seen recently.
    from django.utils import timezone

    from calltrack.numbers.models import NumberSession

    full = NumberPool.objects.create(name="Full", key="full", campaign=campaign, session_lifetime=1800)
    now = timezone.now()
    for i in range(full_size):
        number = TrackingNumber.objects.create(
            number=f"+1415{3000000 + i:07d}", kind=NumberKind.POOL, status=NumberStatus.ACTIVE, pool=full,
            campaign=campaign, number_type=NumberType.LOCAL, area_code="415", country="US")
        session = NumberSession.objects.create(pool=full, tracking_number=number, visitor_id=f"holder-{i}", started_at=now,
                                               last_seen_at=now, expires_at=now + timedelta(hours=6))
        TrackingNumber.objects.filter(pk=number.pk).update(last_assigned_at=now, current_session=session)
    from django.db import connection

    with connection.cursor() as cursor:
        # The db-floor view's scratch table: one INSERT committed per request.
        cursor.execute("CREATE TABLE bench_floor_rows (id bigserial PRIMARY KEY, at timestamptz NOT NULL)")
        cursor.execute(
            "INSERT INTO numbers_numbersession (pool_id, visitor_id, started_at, last_seen_at, expires_at, page_url, landing_page, "
            "referrer, destination_number, marketing_data, is_overflow) SELECT %s, 'earlier-' || g, now() - g * interval '1 second' "
            "- interval '1 day', now() - g * interval '1 second' - interval '1 day', now() - g * interval '1 second' - interval '23 hours', "
            "'https://www.acme.example/', 'https://www.acme.example/', '', '+14155550100', '{}', false FROM generate_series(1, %s) g",
            [pool.pk, history],
        )
        cursor.execute("ANALYZE")
    connection.close()


def start_gunicorn(url: str, port: int, workers: int) -> subprocess.Popen:
    env = dict(
        os.environ,
        DATABASE_URL=url,
        DJANGO_SETTINGS_MODULE="dni_app",
        DEBUG="False",
        SECRET_KEY="bench-only-secret-key-not-for-production-0123456789",
        ALLOWED_HOSTS="127.0.0.1",
        LOG_LEVEL="WARNING",
        # The counters still run (in each worker's local cache here); high enough to never refuse the bench.
        CALLTRACK_DNI_RATE_LIMIT_IP="100000000/minute",
        CALLTRACK_DNI_RATE_LIMIT_VISITOR="100000000/minute",
        CALLTRACK_DNI_NEW_SESSIONS_PER_IP="",  # every bench visitor comes from 127.0.0.1
        CACHE_URL="locmemcache://bench",
        TWILIO_AUTH_TOKEN="bench-twilio-token",
    )
    command = [
        sys.executable, "-m", "gunicorn", "calltrack.wsgi:application", "--bind", f"127.0.0.1:{port}",
        "--workers", str(workers), "--pythonpath", f"{ROOT / 'bench'},{ROOT}", "--log-level", "warning",
    ]
    process = subprocess.Popen(command, cwd=ROOT, env=env)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            status, _ = asyncio.run(request(port, "POST", "/bench/floor", b"{}"))
            if status == 200:
                return process
        except OSError:
            pass
        if process.poll() is not None:
            sys.exit("gunicorn exited before answering")
        time.sleep(0.2)
    process.terminate()
    sys.exit("gunicorn did not answer within 30 s")


async def request(port: int, method: str, path: str, body: bytes) -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: http://127.0.0.1\r\nContent-Type: text/plain\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    writer.write(head + body)
    data = await reader.read()
    writer.close()
    status = int(data.split(b" ", 2)[1])
    return status, data.split(b"\r\n\r\n", 1)[1]


class Visitors:
    """Page views: new visitors (``new_body``), and visitors who opened a session in an earlier new visitor's
    request coming back (``returning_body``: the page again; ``heartbeat_body``: the tag's heartbeat)."""

    def __init__(self, seed: int = 7, pool: str = "bench") -> None:
        self.pool = pool
        self.random = random.Random(seed)
        self.sessions: list[tuple[str, int]] = []  # (visitor, session id) answered to new visitors
        self.count = 0

    def _body(self, visitor: str, params: dict, **extra) -> bytes:
        return json.dumps({
            "pool": self.pool, "visitor_id": visitor, "page_url": "https://www.acme.example/plumbing",
            "referrer": "https://www.google.com/", "params": params, "destination": "(415) 555-0100", **extra,
        }).encode()

    def new_body(self) -> bytes:
        self.count += 1
        visitor = f"{self.pool}-{self.count:08d}-{self.random.getrandbits(32):08x}"
        return self._body(visitor, {"utm_source": "google", "utm_medium": "cpc", "utm_campaign": f"c{self.count % 7}"})

    def opened(self, body: bytes, answer: bytes) -> None:
        # gunicorn may answer chunked: the JSON object is from the first brace to the last.
        session_id = json.loads(answer[answer.index(b"{"):answer.rindex(b"}") + 1]).get("session_id")
        if session_id is not None:
            self.sessions.append((json.loads(body)["visitor_id"], int(session_id)))

    def returning_body(self) -> bytes:
        visitor, _ = self.random.choice(self.sessions[-2000:])
        return self._body(visitor, {})

    def heartbeat_body(self) -> bytes:
        visitor, session_id = self.random.choice(self.sessions[-2000:])
        return json.dumps({"pool": self.pool, "visitor_id": visitor, "session_id": str(session_id)}).encode()


async def phase(port: int, path: str, bodies, seconds: float, concurrency: int, warmup: float, answered=None) -> dict:
    latencies: list[float] = []
    errors = sent = 0
    start = time.monotonic()
    measure_from = start + warmup
    stop = measure_from + seconds

    async def worker() -> None:
        nonlocal errors, sent
        while True:
            t0 = time.monotonic()
            if t0 >= stop:
                return
            sent += 1
            body = bodies()
            try:
                status, answer = await request(port, "POST", path, body)
            except OSError:
                status, answer = 0, b""
            if answered is not None and status == 200:
                answered(body, answer)
            t1 = time.monotonic()
            if t0 >= measure_from:
                latencies.append(t1 - t0)
                if status != 200:
                    errors += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return {"latencies": latencies, "errors": errors, "sent": sent}  # sent: the warm-up's requests too


def merge(slices: list[dict], seconds: float) -> dict:
    """Requests per second and latency percentiles over all slices of a phase."""
    latencies = sorted(lat for part in slices for lat in part["latencies"])

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000 if latencies else float("nan")

    return {"n": len(latencies), "rps": len(latencies) / seconds, "p50": pct(0.50), "p99": pct(0.99),
            "errors": sum(part["errors"] for part in slices)}


def check_pool_invariant() -> str:
    from django.db.models import Count
    from django.utils import timezone

    from calltrack.numbers.models import NumberPool, NumberSession

    live = NumberSession.objects.live(timezone.now()).exclude(tracking_number=None)
    doubled = live.values("tracking_number").annotate(n=Count("id")).filter(n__gt=1).count()
    pool, full = NumberPool.objects.get(key="bench"), NumberPool.objects.get(key="full")
    return (f"sessions {NumberSession.objects.count()}, live numbers {live.count()}, numbers held twice {doubled}, "
            f"overflows {pool.overflow_count} (exhausted pool: {full.overflow_count})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20, help="measured seconds per phase (default 20)")
    parser.add_argument("--warmup", type=float, default=2, help="unmeasured seconds before each phase")
    parser.add_argument("--rounds", type=int, default=4, help="alternating slices per phase (default 4)")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn sync workers (default 4)")
    parser.add_argument("--concurrency", type=int, default=4, help="requests in flight (default: one per worker)")
    parser.add_argument("--size", type=int, default=10_000, help="numbers in the pool (default 10,000)")
    parser.add_argument("--full-size", type=int, default=20, help="numbers of the exhausted pool (default 20)")
    parser.add_argument("--history", type=int, default=100_000,
                        help="sessions of earlier visitors, over, in the pool's table (default 100,000; 0: a fresh install)")
    parser.add_argument("--port", type=int, default=0, help="gunicorn's port (default: a free one)")
    args = parser.parse_args()

    url = os.environ.get("DATABASE_URL", DEFAULT_DB)
    if not url.startswith("postgres"):
        sys.exit("bench/dni.py measures PostgreSQL: set DATABASE_URL=postgres://.../ct_bench_dni")
    prepare_database(url, args.size, args.full_size, args.history)
    port = args.port or free_port()
    server = start_gunicorn(url, port, args.workers)
    visitors = Visitors()
    overflow_visitors = Visitors(seed=11, pool="full")
    # (name, path, bodies, answered): in this order in every round, so returning visitors come from the new ones.
    phases = [
        ("floor", "/bench/floor", lambda: b"{}", None),
        ("db-floor", "/bench/db-floor", lambda: b"{}", None),
        ("new", "/dni/v1/assign", visitors.new_body, visitors.opened),
        ("returning", "/dni/v1/assign", visitors.returning_body, None),
        ("heartbeat", "/dni/v1/heartbeat", visitors.heartbeat_body, None),
        ("overflow", "/dni/v1/assign", overflow_visitors.new_body, None),
    ]
    from bench.voice import cpu_since, postgres_cpu, worker_cpu

    slices: dict[str, list[dict]] = {name: [] for name, *_ in phases}
    # CPU seconds of the gunicorn workers and of PostgreSQL's processes per phase, and the requests sent (the warm-up's
    # included: CPU is read around the whole slice).
    cpu: dict[str, list[float]] = {name: [0.0, 0.0, 0] for name, *_ in phases}
    try:
        slice_seconds = args.seconds / args.rounds
        for round_no in range(args.rounds):
            warmup = args.warmup if round_no == 0 else 0.0
            for name, path, bodies, answered in phases:
                workers, database = worker_cpu(server.pid), postgres_cpu()
                result = asyncio.run(phase(port, path, bodies, slice_seconds, args.concurrency, warmup, answered))
                slices[name].append(result)
                cpu[name][0] += worker_cpu(server.pid) - workers
                cpu[name][1] += cpu_since(database, postgres_cpu())
                cpu[name][2] += result["sent"]
    finally:
        server.terminate()
        server.wait(timeout=30)

    r = {name: merge(parts, args.seconds) for name, parts in slices.items()}
    floor = r["floor"]
    print(f"gunicorn {args.workers} sync workers on 127.0.0.1:{port}, {args.concurrency} requests in flight, "
          f"{args.seconds:g} s per phase in {args.rounds} alternating slices, pool of {args.size} numbers, "
          f"{args.history:,} sessions of earlier visitors")
    labels = {"floor": "POST /bench/floor", "db-floor": "POST /bench/db-floor", "new": "POST /dni/v1/assign (new visitor)",
              "returning": "POST /dni/v1/assign (returning visitor)", "heartbeat": "POST /dni/v1/heartbeat",
              "overflow": f"POST /dni/v1/assign (new visitor, exhausted pool of {args.full_size})"}
    for name, label in labels.items():
        x = r[name]
        of_floor = f", {x['rps'] / floor['rps']:.0%} of the floor" if floor["rps"] and name != "floor" else ""
        print(f"{name:9s} {label:62s}: {x['rps']:8.1f} req/s  p50 {x['p50']:6.2f} ms  p99 {x['p99']:6.2f} ms  "
              f"({x['n']} requests, {x['errors']} errors{of_floor})")
    print("CPU per request (ms), gunicorn workers / PostgreSQL: " + ", ".join(
        f"{name} {w * 1000 / n:.2f} / {d * 1000 / n:.2f}" for name, (w, d, n) in cpu.items() if n))
    ok = True
    for name, what in (("returning", "returning visitor's page view (heartbeat)"), ("heartbeat", "heartbeat endpoint"),
                       ("new", "new visitor's assignment")):
        share = r[name]["rps"] / floor["rps"] if floor["rps"] else 0.0
        share_ok = share >= 0.40 and not r[name]["errors"]
        p99_ok = r[name]["p99"] < 30.0
        ok = ok and share_ok and p99_ok
        print(f"{what:42s}: {share:4.0%} of the floor's throughput (goal >= 40%): {'PASS' if share_ok else 'FAIL'}; "
              f"p99 {r[name]['p99']:5.2f} ms (goal < 30 ms; the floor's {floor['p99']:.2f} ms): {'PASS' if p99_ok else 'FAIL'}")
    ratio = r["overflow"]["p50"] / r["new"]["p50"] if r["new"]["p50"] else float("inf")
    passed = ratio <= 1.5 and not r["overflow"]["errors"]
    ok = ok and passed
    print(f"{'overflow (exhausted pool)':42s}: p50 {r['overflow']['p50']:.2f} ms = {ratio:.2f}x the new visitor's "
          f"(goal <= 1.5x): {'PASS' if passed else 'FAIL'}; {r['overflow']['rps'] / floor['rps']:.0%} of the floor's throughput")
    print(f"new visitors {visitors.count}; {check_pool_invariant()}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
