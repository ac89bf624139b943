"""Profile POST /dni/v1/assign in-process (Django test client) against bench/dni.py's database.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/ct_bench_dni python bench/profile_dni.py [--requests 500] [--profile]

Run ``bench/dni.py`` once first (it creates the database and its pool ``bench``). For new visitors,
returning visitors, heartbeats, new visitors of the exhausted pool ``full`` (overflow) and the two floors, prints CPU ms per request (process time of this process, so
without PostgreSQL's own work), wall ms and the statements sent per request, listed once. Each
request starts like one under gunicorn: ``close_old_connections`` runs first, so the connection's
health check (``CONN_HEALTH_CHECKS``) is counted. ``--profile`` adds the top of a cProfile of the
assign requests by cumulative time (PROFILE_SORT, PROFILE_FILTER as in bench/profile_voice.py).
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "bench"), str(ROOT)]
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dni_app")
os.environ.update({"DEBUG": "false", "ALLOWED_HOSTS": "testserver", "LOG_LEVEL": "WARNING",
                   "CALLTRACK_DNI_RATE_LIMIT_IP": "100000000/minute", "CALLTRACK_DNI_RATE_LIMIT_VISITOR": "100000000/minute",
                   "CALLTRACK_DNI_NEW_SESSIONS_PER_IP": "", "CACHE_URL": "locmemcache://bench"})

import django  # noqa: E402

django.setup()

from django.db import close_old_connections, connection  # noqa: E402
from django.test import Client  # noqa: E402


def body(visitor: str, *, new: bool, pool: str = "bench") -> bytes:
    params = {"utm_source": "google", "utm_medium": "cpc", "utm_campaign": "c1"} if new else {}
    return json.dumps({
        "pool": pool, "visitor_id": visitor, "page_url": "https://www.acme.example/plumbing",
        "referrer": "https://www.google.com/", "params": params, "destination": "(415) 555-0100",
    }).encode()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=500, help="requests per kind (default 500)")
    parser.add_argument("--profile", action="store_true", help="cProfile the new and returning visitors' requests")
    args = parser.parse_args()
    client = Client()
    run = f"{int(time.time() * 1000) % 10**8:08d}"

    sessions: dict[str, int] = {}

    def post(path: str, data: bytes) -> None:
        close_old_connections()  # what gunicorn's request_started does (the test client leaves it out)
        response = client.post(path, data, content_type="text/plain", HTTP_ORIGIN="http://testserver")
        assert response.status_code == 200, (response.status_code, response.content)
        if path == "/dni/v1/assign":
            sessions[json.loads(data)["visitor_id"]] = response.json()["session_id"]

    def beat(visitor: str) -> bytes:
        return json.dumps({"pool": "bench", "visitor_id": visitor, "session_id": sessions[visitor]}).encode()

    kinds = {
        "floor": lambda i: post("/bench/floor", b"{}"),
        "db-floor": lambda i: post("/bench/db-floor", b"{}"),
        "new visitor": lambda i: post("/dni/v1/assign", body(f"prof-{run}-{i:06d}", new=True)),
        "returning": lambda i: post("/dni/v1/assign", body(f"prof-{run}-{i:06d}", new=False)),
        "heartbeat": lambda i: post("/dni/v1/heartbeat", beat(f"prof-{run}-{i:06d}")),
        # A new visitor of bench/dni.py's exhausted pool: the overflow path.
        "overflow": lambda i: post("/dni/v1/assign", body(f"prof-{run}-o{i:06d}", new=True, pool="full")),
    }
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE IF NOT EXISTS bench_floor_rows (id bigserial PRIMARY KEY, at timestamptz NOT NULL)")
    for i in range(20):  # warm up (visitors 10**6 + i, never measured)
        kinds["new visitor"](10**6 + i)
        kinds["returning"](10**6 + i)
    profiler = cProfile.Profile(time.process_time) if args.profile else None
    for name, one in kinds.items():
        queries: list[str] = []
        def record(execute, sql, params, many, context, queries=queries):
            queries.append(sql)
            return execute(sql, params, many, context)

        with connection.execute_wrapper(record):
            one(10**7)
            if name == "returning":
                one(10**7)  # the first call of 10**7 opened the session; this is the returning one
                del queries[: len(queries) // 2]
        profile = profiler is not None and name in ("new visitor", "returning", "overflow")
        cpu0, wall0 = time.process_time(), time.perf_counter()
        if profile:
            profiler.enable()
        for i in range(args.requests):
            one(i)
        if profile:
            profiler.disable()
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        print(f"{name:12s}: CPU {cpu / args.requests * 1000:5.2f} ms/request, wall {wall / args.requests * 1000:5.2f} ms/request, "
              f"{len(queries)} statements:")
        for sql in queries:
            print("    " + " ".join(sql.split())[:150])
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_prepared_statements")
        print(f"statements prepared on this connection: {cursor.fetchone()[0]}")
    if profiler:
        stats = pstats.Stats(profiler).sort_stats(os.environ.get("PROFILE_SORT", "cumulative"))
        stats.print_stats(os.environ.get("PROFILE_FILTER", ""), 60)


if __name__ == "__main__":
    main()
