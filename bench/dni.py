"""Benchmark of POST /dni/v1/assign under gunicorn on PostgreSQL, beside a trivial JSON view (the floor).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/ct_bench_dni /work/main/.venv/bin/python bench/dni.py

Recreates the database named in DATABASE_URL (default ct_bench_dni; it must start with ct_ and contain 'bench'),
migrates it, makes a pool of 10,000 local numbers, starts gunicorn on 127.0.0.1 at a random port,
then runs three bounded phases with the same closed-loop client (asyncio, one connection per request,
as gunicorn's sync workers close them): the floor view, the db-floor view (the floor plus one INSERT
committed: what any durable write costs) and /dni/v1/assign with a stream of new and returning
visitors, alternating in short slices so all see the same background load. Prints requests per
second and latency percentiles of each (the db-floor's and assign's also as a share of the floor),
and checks the targets: assign p99 under 30 ms, assign throughput at least 40% of the floor's. A fourth
phase (``--full-size``, default 20 numbers, all held by live sessions) measures the overflow path, what every
visitor of an exhausted pool (and a bot flood) takes: its p50 is printed against the normal assign's (target:
at most 2x) and the floor's. Exit status 1 when a target is missed. The client shares the machine's cores with the server, so the
figures are lower bounds of what the server alone would do.
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


def prepare_database(url: str, size: int, full_size: int = 20) -> None:
    """Drop, create, migrate the bench database and fill a pool of ``size`` numbers."""
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
    """A stream of page views: ``new_share`` of them from new visitors, the rest from recent ones."""

    def __init__(self, new_share: float, seed: int = 7, pool: str = "bench") -> None:
        self.new_share, self.pool = new_share, pool
        self.random = random.Random(seed)
        self.seen: list[str] = []
        self.count = 0

    def next_body(self) -> bytes:
        if not self.seen or self.random.random() < self.new_share:
            self.count += 1
            visitor = f"{self.pool}-{self.count:08d}-{self.random.getrandbits(32):08x}"
            self.seen.append(visitor)
            params = {"utm_source": "google", "utm_medium": "cpc", "utm_campaign": f"c{self.count % 7}"}
        else:
            visitor = self.random.choice(self.seen[-2000:])
            params = {}
        return json.dumps({
            "pool": self.pool, "visitor_id": visitor, "page_url": "https://www.acme.example/plumbing",
            "referrer": "https://www.google.com/", "params": params, "destination": "(415) 555-0100",
        }).encode()


async def phase(port: int, path: str, bodies, seconds: float, concurrency: int, warmup: float) -> dict:
    latencies: list[float] = []
    errors = 0
    start = time.monotonic()
    measure_from = start + warmup
    stop = measure_from + seconds

    async def worker() -> None:
        nonlocal errors
        while True:
            t0 = time.monotonic()
            if t0 >= stop:
                return
            try:
                status, _ = await request(port, "POST", path, bodies())
            except OSError:
                status = 0
            t1 = time.monotonic()
            if t0 >= measure_from:
                latencies.append(t1 - t0)
                if status != 200:
                    errors += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return {"latencies": latencies, "errors": errors}


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
    pool = NumberPool.objects.get(key="bench")
    return f"sessions {NumberSession.objects.count()}, live numbers {live.count()}, numbers held twice {doubled}, overflows {pool.overflow_count}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20, help="measured seconds per phase (default 20)")
    parser.add_argument("--warmup", type=float, default=2, help="unmeasured seconds before each phase")
    parser.add_argument("--rounds", type=int, default=4, help="alternating slices per phase (default 4)")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn sync workers (default 4)")
    parser.add_argument("--concurrency", type=int, default=4, help="requests in flight (default: one per worker)")
    parser.add_argument("--size", type=int, default=10_000, help="numbers in the pool (default 10,000)")
    parser.add_argument("--new-share", type=float, default=0.3, help="share of page views from new visitors (default 0.3)")
    parser.add_argument("--full-size", type=int, default=20, help="numbers of the exhausted pool (default 20)")
    parser.add_argument("--port", type=int, default=0, help="gunicorn's port (default: a free one)")
    args = parser.parse_args()

    url = os.environ.get("DATABASE_URL", DEFAULT_DB)
    if not url.startswith("postgres"):
        sys.exit("bench/dni.py measures PostgreSQL: set DATABASE_URL=postgres://.../ct_bench_dni")
    prepare_database(url, args.size, args.full_size)
    port = args.port or free_port()
    server = start_gunicorn(url, port, args.workers)
    visitors = Visitors(args.new_share)
    overflow_visitors = Visitors(args.new_share, seed=11, pool="full")
    floors, db_floors, assigns, overflows = [], [], [], []
    try:
        # The phases alternate in short slices, so both see the same background load of a shared machine.
        slice_seconds = args.seconds / args.rounds
        for round_no in range(args.rounds):
            warmup = args.warmup if round_no == 0 else 0.0
            floors.append(asyncio.run(phase(port, "/bench/floor", lambda: b"{}", slice_seconds, args.concurrency, warmup)))
            db_floors.append(asyncio.run(phase(port, "/bench/db-floor", lambda: b"{}", slice_seconds, args.concurrency, warmup)))
            assigns.append(asyncio.run(phase(port, "/dni/v1/assign", visitors.next_body, slice_seconds, args.concurrency, warmup)))
            overflows.append(asyncio.run(phase(port, "/dni/v1/assign", overflow_visitors.next_body, slice_seconds, args.concurrency, warmup)))
    finally:
        server.terminate()
        server.wait(timeout=30)

    floor, db_floor, assign = merge(floors, args.seconds), merge(db_floors, args.seconds), merge(assigns, args.seconds)
    overflow = merge(overflows, args.seconds)
    print(f"gunicorn {args.workers} sync workers on 127.0.0.1:{port}, {args.concurrency} requests in flight, "
          f"{args.seconds:g} s per phase in {args.rounds} alternating slices, pool of {args.size} numbers, {args.new_share:.0%} new visitors")
    for name, r in (("floor    POST /bench/floor   ", floor), ("db-floor POST /bench/db-floor", db_floor),
                    ("assign   POST /dni/v1/assign ", assign), ("overflow POST /dni/v1/assign ", overflow)):
        of_floor = f", {r['rps'] / floor['rps']:.0%} of the floor" if floor["rps"] and r is not floor else ""
        print(f"{name}: {r['rps']:8.1f} req/s  p50 {r['p50']:6.2f} ms  p99 {r['p99']:6.2f} ms  "
              f"({r['n']} requests, {r['errors']} errors{of_floor})")
    share = assign["rps"] / floor["rps"] if floor["rps"] else 0.0
    p99_ok, share_ok = assign["p99"] < 30.0, share >= 0.40
    print(f"assign p99 {assign['p99']:.2f} ms (target < 30 ms): {'PASS' if p99_ok else 'FAIL'}")
    print(f"assign throughput {share:.0%} of the floor (target >= 40%): {'PASS' if share_ok else 'FAIL'}")
    overflow_ratio = overflow["p50"] / assign["p50"] if assign["p50"] else float("inf")
    overflow_ok = overflow_ratio <= 2.0
    print(f"overflow (exhausted pool of {args.full_size}) p50 {overflow['p50']:.2f} ms = {overflow_ratio:.2f}x the normal assign's "
          f"(target <= 2x): {'PASS' if overflow_ok else 'FAIL'}; {overflow['p50'] / floor['p50']:.1f}x the floor's p50, "
          f"{overflow['rps'] / floor['rps']:.0%} of its throughput")
    print(f"new visitors {visitors.count}; {check_pool_invariant()}")
    return 0 if (p99_ok and share_ok and overflow_ok and not assign["errors"] and not overflow["errors"]) else 1


if __name__ == "__main__":
    sys.exit(main())
