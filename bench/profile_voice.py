"""Profile /voice/incoming in-process (Django test client) against the bench's data set.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/ct_bench_voice python bench/profile_voice.py [--calls 300] [--profile] [--flow] [--campaign ID]

Run ``bench/voice.py`` once first (it creates and loads ct_bench_voice). Prints CPU ms per request (process
time), wall ms, queries per request and, with ``--profile``, the top of a cProfile by cumulative time.

A sampling profile without cProfile's overhead, of the whole process (what issue 16's notes quote):
``py-spy record -r 400 -f raw -o spy.txt -- python bench/profile_voice.py --calls 8000 [--flow]``, then count
the samples under ``routing/views.py``'s ``handle`` leaving out those whose innermost frame is psycopg's
``Connection.wait`` (waiting for PostgreSQL, not CPU).
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import random
import sys
import time
from pathlib import Path
from urllib.parse import urlencode, urlsplit
from xml.etree import ElementTree

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
TOKEN = "bench-auth-token-0123456789abcdef"
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
os.environ.update({"TWILIO_AUTH_TOKEN": TOKEN, "CALLTRACK_VALIDATE_TWILIO_SIGNATURE": "true", "DEBUG": "false",
                   "ALLOWED_HOSTS": "testserver", "LOG_LEVEL": "WARNING", "CALLTRACK_PUBLIC_BASE_URL": ""})

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from twilio.request_validator import RequestValidator  # noqa: E402

from calltrack.numbers.models import TrackingNumber  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--queries", action="store_true", help="print the statements of one call (or flow)")
    parser.add_argument("--sample", action="store_true", help="pyinstrument's sampling profile (little overhead; pip install pyinstrument)")
    parser.add_argument("--path", default="/voice/incoming", help="/bench/floor measures the harness itself")
    parser.add_argument("--flow", action="store_true", help="whole flows: incoming, dial result (answered), status completed")
    parser.add_argument("--warmup", type=int, default=20, help="flows before measuring (each campaign's configuration is loaded once per process)")
    parser.add_argument("--campaign", default="", help="only this campaign's numbers (its campaign_id, e.g. history-0 or size-2)")
    args = parser.parse_args()
    chosen = TrackingNumber.objects.filter(campaign__campaign_id=args.campaign) if args.campaign else TrackingNumber.objects.all()
    numbers = list(chosen.order_by("pk").values_list("number", flat=True)[:10000])
    rng = random.Random(7)
    client = Client()
    validator = RequestValidator(TOKEN)
    run = f"{int(time.time()) % 100000:05d}{os.getpid() % 1000:03d}"  # two runs at once (callgrind) never share a CallSid

    cpu_by_kind: dict[str, list[float]] = {}

    def post(kind: str, path: str, params: dict[str, str]) -> bytes:
        """POST the form url-encoded, as Twilio does, signed for the URL; CPU time kept per kind of request."""
        sig = validator.compute_signature(f"http://testserver{path}", params)
        start = time.process_time()
        response = client.post(path, urlencode(params), content_type="application/x-www-form-urlencoded", HTTP_X_TWILIO_SIGNATURE=sig)
        cpu_by_kind.setdefault(kind, []).append(time.process_time() - start)
        assert response.status_code == 200, response.status_code
        return response.content

    def one(i: int) -> None:
        params = {"CallSid": f"CAprof{run}{i:08d}", "AccountSid": "AC" + "0" * 32, "From": f"+1415555{rng.randrange(10000):04d}",
                  "To": rng.choice(numbers), "CallStatus": "ringing", "Direction": "inbound"}
        body = post("incoming", args.path, params)
        if not args.flow:
            return
        dial = ElementTree.fromstring(body).find("Dial")
        if dial is not None and dial.get("action"):
            parts = urlsplit(dial.get("action"))
            more = {**params, "CallStatus": "in-progress", "DialCallStatus": "completed", "DialCallDuration": "60"}
            post("dial", f"{parts.path}?{parts.query}", more)
        post("status", "/voice/status", {**params, "CallStatus": "completed", "CallDuration": "60", "SequenceNumber": "5"})

    for i in range(args.warmup):  # warm up
        one(i)
    if os.environ.get("CALLTRACK_GC_THRESHOLD", "") != "0":
        from calltrack.runtime import worker_gc_tune

        worker_gc_tune()  # what gunicorn.conf.py's post_worker_init does in a worker (CALLTRACK_GC_THRESHOLD=0: Python's defaults)
    cpu_by_kind.clear()
    queries: list[str] = []
    with connection.execute_wrapper(lambda execute, sql, params, many, context: (queries.append(sql), execute(sql, params, many, context))[1]):
        one(10**6)
    if args.queries:
        print("\n".join(f"  {i + 1:2d}. {' '.join(q.split())[:200]}" for i, q in enumerate(queries)))
    profiler = cProfile.Profile(time.process_time) if args.profile else None
    sampler = None
    if args.sample:
        from pyinstrument import Profiler

        sampler = Profiler(interval=0.0002)
    in_db = [0.0, 0]

    def db_cpu(execute, sql, params, many, context):
        start = time.process_time()
        try:
            return execute(sql, params, many, context)
        finally:
            in_db[0] += time.process_time() - start
            in_db[1] += 1

    db_wrapper = connection.execute_wrapper(db_cpu)
    db_wrapper.__enter__()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    if profiler:
        profiler.enable()
    if sampler:
        sampler.start()
    for i in range(args.warmup, args.warmup + args.calls):
        one(i)
    if profiler:
        profiler.disable()
    if sampler:
        sampler.stop()
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    db_wrapper.__exit__(None, None, None)
    print(f"{args.campaign or 'all campaigns'}: {args.calls} calls: CPU {cpu / args.calls * 1000:.2f} ms/{'flow' if args.flow else 'request'}, wall {wall / args.calls * 1000:.2f} ms/request, "
          f"{len(queries)} queries/{'flow' if args.flow else 'request'}")
    print(f"  CPU in statements (Django's cursor + psycopg, not waiting): {in_db[0] / args.calls * 1000:.2f} ms/{'flow' if args.flow else 'request'} "
          f"over {in_db[1] / args.calls:.1f} statements, {in_db[0] / max(in_db[1], 1) * 1e6:.0f} us each")
    for kind, values in cpu_by_kind.items():
        print(f"  {kind:<9} CPU {sum(values) / len(values) * 1000:6.2f} ms/request ({len(values)} requests, in the view and Django)")
    if sampler:
        print(sampler.output_text(unicode=False, color=False, show_all=False, timeline=False))
    if profiler:
        if os.environ.get("PROFILE_DUMP"):
            profiler.dump_stats(os.environ["PROFILE_DUMP"])
        stats = pstats.Stats(profiler).sort_stats(os.environ.get("PROFILE_SORT", "cumulative"))
        stats.print_stats(os.environ.get("PROFILE_FILTER", ""), 60)


if __name__ == "__main__":
    main()
