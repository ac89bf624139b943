"""Benchmark of the voice hot path: gunicorn + PostgreSQL, signed Twilio flows from a load generator.

    python bench/voice.py [--seconds 20] [--workers 3] [--clients 6] [--port P] [--db NAME]
    python bench/voice.py --history 1000000 [--seconds 10]     # caps with a long history, single client
    python bench/voice.py --handlers 5,50,500 [--seconds 10]   # cost as campaigns grow, single client
    python bench/voice.py --late-fold [--seconds 10]           # cap counters folded vs the fold 10 min / 1 h late

1. (Re)creates the PostgreSQL database ``ct_bench_voice`` (DATABASE_URL's server, default
   postgres://postgres@127.0.0.1:5432), migrates it and loads a realistic data set: 1,000 handlers over
   50 campaigns (mixed strategies, half of them capped, business hours, tag criteria), 10,000 tracking numbers.
2. Starts gunicorn on 127.0.0.1 on a random free port (DEBUG off, signature checks on).
3. Floor phase: a trivial Django view answering fixed TwiML, on the same server, for ``--seconds``.
4. Voice phase: each client plays Twilio for whole calls: signed ``/voice/incoming`` -> ``/voice/dial-status``
   (a quarter not answered, so the plan's next step is dialled too) -> ``/voice/status`` completed.
5. Prints calls routed per second, p50/p99 latency of /voice/incoming, the floor's figures and the ratios,
   and the gunicorn workers' CPU per request and per call; stops gunicorn whatever happens.

``--history N``: two more identical campaigns of 50 handlers (25 capped hourly/daily/monthly, caps never
reached); N historical calls with one counted attempt each are loaded with ``generate_series`` over the last
90 days, half of them on the first campaign's capped handlers, the rest on the other handlers. Then (instead
of the load phases) one client plays whole calls on each campaign in turn and prints p50/p99 of
``/voice/incoming`` with and without history, as ratios to each other and to the floor of the same run.
``--handlers 5,50,500``: one more campaign of each size, the same single-client phases, and the growth table
(p50/p99 per size, ratio to the smallest and to the floor, the largest's ratio next to its goal of 1.5x).
``--preset buyers`` (the default) makes them a pay-per-call buyer list: half of the handlers with concurrency,
hourly, daily and monthly caps, four US time zones, one in seven with a tag criterion, one in four on business
hours; ``--preset plain``: half capped hourly/daily/monthly, two zones, always open.
``--late-fold``: a 50-handler campaign of the preset, measured with its cap counters folded, then with 10 minutes
and 1 hour of unfolded deltas at 100 calls/s (the task cluster stopped); ratios next to the goal of 1.3x.
Before gunicorn starts, the cap counters are folded and the empty delta table analysed (what autovacuum does
after a fold), so every connection prepares its statements on those statistics.
"""

from __future__ import annotations

import argparse
import http.client
import os
import random
import resource
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from multiprocessing import get_context
from pathlib import Path
from urllib.parse import urlencode, urlsplit
from xml.etree import ElementTree

ROOT = Path(__file__).resolve().parent.parent
DB_NAME = os.environ.get("BENCH_VOICE_DB", "ct_bench_voice")
TOKEN = "bench-auth-token-0123456789abcdef"
SERVER_URL = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_env(port: int, *, async_commit: bool = False) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "DATABASE_URL": f"{SERVER_URL}/{DB_NAME}", "DJANGO_SETTINGS_MODULE": "bench.settings", "DEBUG": "false",
        "SECRET_KEY": "bench-secret-key-" + "x9Qz" * 12, "ALLOWED_HOSTS": "127.0.0.1", "TWILIO_AUTH_TOKEN": TOKEN,
        "CALLTRACK_VALIDATE_TWILIO_SIGNATURE": "true", "LOG_LEVEL": "WARNING", "CACHE_URL": "locmemcache://bench", "CALLTRACK_PUBLIC_BASE_URL": "",
        "PYTHONPATH": str(ROOT), "DB_CONN_MAX_AGE": "3600", "CALLTRACK_VOICE_ASYNC_COMMIT": "true" if async_commit else "false",
    })
    return env


# --- data ----------------------------------------------------------------------------------------------------


def recreate_database() -> None:
    import psycopg

    with psycopg.connect(f"{SERVER_URL}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DB_NAME}"')
    with psycopg.connect(f"{SERVER_URL}/{DB_NAME}", autocommit=True) as conn:
        conn.execute("CREATE TABLE bench_floor_rows (id bigserial PRIMARY KEY, at timestamptz NOT NULL)")


def load_data(env: dict[str, str]) -> list[str]:
    """Migrate and load the data set in a child process; returns the tracking numbers."""
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0", "--noinput"], cwd=ROOT, env=env, check=True)
    code = r"""
import random
from calltrack.numbers.models import ReceivingNumber, TrackingNumber
from tracking.models import Campaign, CampaignHandler, Handler, Source
rng = random.Random(42)
strategies = ["priority_weight"] * 3 + ["round_robin", "sequential", "simultaneous", "least_connected"]
sources = Source.objects.bulk_create(Source(name=f"Source {i}", source_id=f"src-{i}") for i in range(20))
campaigns = Campaign.objects.bulk_create(
    Campaign(name=f"Campaign {i}", campaign_id=f"c-{i}", routing_strategy=strategies[i % len(strategies)],
             sticky_routing=i % 5 == 0, company_phone="+13039990000", failsafe_number="+13039990001")
    for i in range(50))
lines = ReceivingNumber.objects.bulk_create(ReceivingNumber(number=f"+1303{2000000 + i:07d}", label=f"Line {i}", country="US") for i in range(1000))
handlers = []
for i, line in enumerate(lines):
    capped = i % 2 == 0
    handlers.append(Handler(
        name=f"Handler {i}", receiving_number=line, priority=1 + i % 3, weight=1 + i % 5,
        concurrency_cap=25 if capped else None, hourly_cap=100000 if capped else None, daily_cap=200000 if capped else None,
        timezone=rng.choice(["America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles"]),
        always_open=i % 4 != 3, business_hours={d: ["00:00-24:00"] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")},
        tag_criteria=[{"key": "caller_state", "op": "not_one_of", "value": ["AK", "HI"]}] if i % 7 == 0 else [],
    ))
handlers = Handler.objects.bulk_create(handlers)
CampaignHandler.objects.bulk_create(
    CampaignHandler(campaign=campaigns[i // 20], handler=h, position=i % 20) for i, h in enumerate(handlers))
numbers = TrackingNumber.objects.bulk_create(
    TrackingNumber(number=f"+1415{2000000 + i:07d}", campaign=campaigns[i % 50], source=sources[i % 20], area_code="415", country="US",
                   marketing_data={"utm_source": "google", "utm_campaign": f"c{i % 50}"})
    for i in range(10000))
print("\n".join(n.number for n in numbers))
"""
    out = subprocess.run([sys.executable, "manage.py", "shell", "-c", code], cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    return [line for line in out.stdout.split() if line.startswith("+1")]


PRESETS = ("buyers", "plain")


def extra_campaigns(env: dict[str, str], sizes: list[int], prefix: str, preset: str = "plain") -> list[dict]:
    """One campaign per size, 20 tracking numbers each; returns each campaign's id, capped handler ids and numbers.

    ``plain``: half of the handlers capped hourly/daily/monthly, two time zones, always open.
    ``buyers`` (a pay-per-call buyer list): half of the handlers with concurrency, hourly, daily and monthly caps,
    time zones mixed over four US zones, one in seven with a tag criterion, one in four following business hours
    (open all week, so every handler can take the call: the caps are checked, never reached)."""
    code = r"""
import json
from calltrack.numbers.models import ReceivingNumber, TrackingNumber
from tracking.models import Campaign, CampaignHandler, Handler
sizes, prefix, preset = SIZES, PREFIX, PRESET
zones = ["America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles"]
week = {d: ["00:00-24:00"] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}

def handler(k, i, line):
    capped = i % 2 == 0
    if preset == "plain":
        return Handler(
            name=f"{prefix} {k} handler {i}", receiving_number=line, priority=1 + i % 3, weight=1 + i % 5,
            hourly_cap=1000000 if capped else None, daily_cap=10000000 if capped else None,
            monthly_cap=100000000 if capped else None, timezone=zones[i % 4 // 2], always_open=True)
    return Handler(
        name=f"{prefix} {k} handler {i}", receiving_number=line, priority=1 + i % 3, weight=1 + i % 5,
        concurrency_cap=50 if capped else None, hourly_cap=1000000 if capped else None, daily_cap=10000000 if capped else None,
        monthly_cap=100000000 if capped else None, timezone=zones[(i // 2) % 4], always_open=i % 4 != 1, business_hours=week,
        tag_criteria=[{"key": "caller_state", "op": "not_one_of", "value": ["AK", "HI"]}] if i % 7 == 3 else [])
area = {"history": ("303", 5000000, "415", 7000000), "late": ("303", 4000000, "415", 6000000)}.get(prefix, ("303", 6000000, "415", 8000000))
out = []
for k, size in enumerate(sizes):
    c = Campaign.objects.create(name=f"{prefix} {k} ({size} handlers)", campaign_id=f"{prefix}-{k}", company_phone="+13039990000",
                                failsafe_number="+13039990001")
    lines = ReceivingNumber.objects.bulk_create(ReceivingNumber(number=f"+1{area[0]}{area[1] + k * 10000 + i:07d}", label="x", country="US") for i in range(size))
    hs = Handler.objects.bulk_create(handler(k, i, line) for i, line in enumerate(lines))
    CampaignHandler.objects.bulk_create(CampaignHandler(campaign=c, handler=h, position=i) for i, h in enumerate(hs))
    nums = TrackingNumber.objects.bulk_create(
        TrackingNumber(number=f"+1{area[2]}{area[3] + k * 1000 + i:07d}", campaign=c, area_code=area[2], country="US") for i in range(20))
    out.append({"campaign": c.pk, "size": size, "capped": [h.pk for h in hs if h.hourly_cap], "handlers": [h.pk for h in hs],
                "numbers": [n.number for n in nums]})
print("JSON" + json.dumps(out))
""".replace("SIZES", repr(sizes)).replace("PREFIX", repr(prefix)).replace("PRESET", repr(preset))
    out = subprocess.run([sys.executable, "manage.py", "shell", "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(out.stderr[-3000:])
    import json

    return json.loads(next(line for line in out.stdout.splitlines() if line.startswith("JSON"))[4:])


def load_history(env: dict[str, str], n: int, capped: list[int]) -> None:
    """``n`` completed calls with one counted attempt each over the last 90 days (generate_series): half on the
    ``capped`` handlers, the rest over every other handler. Then what production's scheduled tasks do:
    the cap counters are folded (when the code has them) and the tables analysed."""
    import psycopg

    started = time.perf_counter()
    with psycopg.connect(f"{SERVER_URL}/{DB_NAME}", autocommit=True) as conn:
        others = [r[0] for r in conn.execute("SELECT id FROM tracking_handler WHERE NOT (id = ANY(%s)) ORDER BY id", [capped])]
        campaign = conn.execute("SELECT min(id) FROM tracking_campaign").fetchone()[0]
        # Every NOT NULL column gets a value of its type (the schema grows), then the ones that matter are set.
        given = {
            "call_sid": "'CAH' || lpad(g::text, 31, '0')", "caller_number": "'+14155550100'", "called_number": "'+14155550199'",
            "caller_country": "'US'", "status": "'completed'", "started_at": "now() - random() * interval '90 days'", "duration": "60",
            "talk_time": "50", "tags": "'[]'", "conversion_status": "'not_converted'", "campaign_id": "%s",
            "handler_id": "CASE WHEN g %% 2 = 0 THEN (%s::bigint[])[1 + g %% %s] ELSE (%s::bigint[])[1 + g %% %s] END",
        }
        empty = {"character varying": "''", "text": "''", "integer": "0", "smallint": "0", "bigint": "0", "numeric": "0",
                 "boolean": "false", "jsonb": "'{}'", "timestamp with time zone": "now()", "double precision": "0"}
        columns = dict(conn.execute(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'tracking_call' AND is_nullable = 'NO' "
            "AND column_default IS NULL AND is_identity = 'NO'").fetchall())
        values = {name: empty[kind] for name, kind in columns.items()} | given
        conn.execute(
            f"INSERT INTO tracking_call ({', '.join(values)}) SELECT {', '.join(values.values())} FROM generate_series(1, %s) g",
            [campaign, capped, len(capped), others, len(others), n],
        )
        conn.execute(
            "INSERT INTO tracking_callattempt (call_id, sequence, kind, handler_id, number_dialed, status, started_at, ended_at, duration, "
            "holds_slot, counted) SELECT id, 1, 'handler', handler_id, '+13035550100', 'completed', started_at, started_at + interval '1 minute', "
            "50, false, true FROM tracking_call WHERE call_sid LIKE 'CAH%%'", []
        )
    loaded = time.perf_counter() - started
    fold = "try:\n from routing.services.slots import cap_counters_fold\nexcept ImportError:\n print('no cap counters')\nelse:\n print(cap_counters_fold(), 'counters folded')"
    out = subprocess.run([sys.executable, "manage.py", "shell", "-c", fold], cwd=ROOT, env=env, check=True,
                         capture_output=True, text=True)
    with psycopg.connect(f"{SERVER_URL}/{DB_NAME}", autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    print(f"history: {n:,} calls and attempts loaded in {loaded:.0f}s; {out.stdout.strip()}; total {time.perf_counter() - started:.0f}s", flush=True)


def fold_deltas(env: dict[str, str]) -> None:
    """The scheduled fold, then ``VACUUM ANALYZE`` of the emptied delta table (what autovacuum does after a fold)."""
    import psycopg

    fold = "from routing.services.slots import cap_counters_fold\nprint(cap_counters_fold())"
    subprocess.run([sys.executable, "manage.py", "shell", "-c", fold], cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    with psycopg.connect(f"{SERVER_URL}/{DB_NAME}", autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE tracking_capdelta")


# The task cluster stopped at 100 calls/s, every call a counted leg of the campaign's capped handlers: 60,000 deltas
# in 10 minutes, 360,000 in an hour (about 15,000 per capped handler of a 50-handler campaign).
LATE = (("10 min late", 600), ("1 hour late", 3600))
LATE_CALLS_PER_SECOND = 100


def add_deltas(capped: list[int], seconds: int) -> int:
    """The deltas ``seconds`` of calls leave unfolded, spread over ``capped`` and over those seconds (as the triggers write them)."""
    import psycopg

    n = LATE_CALLS_PER_SECOND * seconds
    with psycopg.connect(f"{SERVER_URL}/{DB_NAME}", autocommit=True) as conn:
        conn.execute(
            "INSERT INTO tracking_capdelta (handler_id, counts, at, delta) SELECT (%s::bigint[])[1 + g %% %s], 'connection', "
            "now() - (g %% %s) * interval '1 second', 1 FROM generate_series(1, %s) g", [capped, len(capped), seconds, n])
    return n


def pending_deltas() -> int:
    import psycopg

    with psycopg.connect(f"{SERVER_URL}/{DB_NAME}", autocommit=True) as conn:
        return conn.execute("SELECT count(*) FROM tracking_capdelta").fetchone()[0]


def late_fold(env: dict[str, str], master: int, base: str, late: dict, seconds: float, floor_p50: float) -> None:
    """``--late-fold``: /voice/incoming on a 50-handler campaign with its counters folded, then with 10 minutes and
    1 hour of deltas left unfolded (the task cluster stopped); the server's connections prepared their statements
    on the emptied, analysed delta table. Each late phase starts from a fold, so the deltas are exactly the ones added."""
    rows = {}
    rows["folded"] = single_client_rounds(master, base, {"folded": late["numbers"]}, seconds, rounds=1)["folded"]
    for name, late_seconds in LATE:
        fold_deltas(env)
        added = add_deltas(late["capped"], late_seconds)
        print(f"{name}: {added:,} unfolded deltas ({added // len(late['capped']):,} per capped handler)", flush=True)
        rows[name] = single_client_rounds(master, base, {name: late["numbers"]}, seconds, rounds=1)[name]
        print(f"{name}: {pending_deltas():,} deltas left unfolded after the phase", flush=True)
    print_single_client("/voice/incoming with the cap counters folded and with the fold late (50 handlers)", rows, "folded", floor_p50)
    folded = pct(rows["folded"][0], 50)
    for name, _ in LATE:
        ratio = pct(rows[name][0], 50) / folded
        print(f"target: {name} <= 1.3x folded (c=1, p50): {ratio:.2f}x, {'met' if ratio <= 1.3 else 'NOT met'}; "
              f"slowest call {max(rows[name][0]) * 1000:.0f} ms")


def worker_cpu(master: int) -> float:
    """CPU seconds (user + system) used so far by the gunicorn workers (children of ``master``)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == master:
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def postgres_cpu() -> dict[int, float]:
    """CPU seconds (user + system) used so far by each PostgreSQL process on this machine (backends, WAL writer,
    checkpointer, autovacuum): the database's share of a phase, on the same cores. Per process, so that one
    ending during a phase (an autovacuum worker) does not count against it."""
    tick = os.sysconf("SC_CLK_TCK")
    used: dict[int, float] = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            head, rest = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)
        except OSError:
            continue
        if head.endswith("(postgres"):
            fields = rest.split()
            used[int(pid)] = (int(fields[11]) + int(fields[12])) / tick
    return used


def cpu_since(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU used between two ``postgres_cpu`` readings by the processes alive at the second (a process that ended
    in between is left out: a slight undercount)."""
    return sum(used - before.get(pid, 0.0) for pid, used in after.items())


def measured(master: int, *args) -> tuple[dict[str, list], float]:
    """A phase and the workers' CPU seconds it took (the database's and the load generator's go in the result:
    ``_cpu_postgres``, ``_cpu_load``)."""
    before, pg_before = worker_cpu(master), postgres_cpu()
    load_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = phase(*args)
    load_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    result["_cpu_postgres"] = [cpu_since(pg_before, postgres_cpu())]
    result["_cpu_load"] = [(load_after.ru_utime + load_after.ru_stime) - (load_before.ru_utime + load_before.ru_stime)]
    return result, worker_cpu(master) - before


def single_client_rounds(master: int, base: str, groups: dict[str, list[str]], seconds: float, rounds: int = 2) -> dict[str, tuple]:
    """One client plays whole calls on each group of numbers in turn (``rounds`` times, alternating, so drift
    hits all alike); per group: /voice/incoming latencies, calls, elapsed seconds and workers' CPU seconds."""
    out: dict[str, tuple[list[float], int, float, float]] = {name: ([], 0, 0.0, 0.0) for name in groups}
    for _ in range(rounds):
        for name, numbers in groups.items():
            result, cpu = measured(master, "voice", base, numbers, seconds / rounds, 1, 1)
            lat, calls, elapsed, used = out[name]
            inc = [latency for latency, _ in result.get("incoming", [])]
            out[name] = (lat + inc, calls + len(result.get("flow", [])), elapsed + result["_elapsed"][0], used + cpu)
    return out


def print_single_client(title: str, rows: dict[str, tuple], reference: str, floor_p50: float) -> None:
    ref = pct(rows[reference][0], 50)
    print(f"\n{title} (single client, whole calls; floor p50 {floor_p50:.2f} ms in this run)")
    print(f"{'':>22} {'p50 ms':>8} {'p99 ms':>8} {'p50/' + reference:>14} {'p50/floor':>10} {'calls':>6} {'CPU ms/call':>12}")
    for name, (lat, calls, _elapsed, cpu) in rows.items():
        p50 = pct(lat, 50)
        print(f"{name:>22} {p50:8.2f} {pct(lat, 99):8.2f} {p50 / ref:14.2f} {p50 / floor_p50:10.1f} {calls:6d} {cpu * 1000 / max(calls, 1):12.2f}")


# --- load ------------------------------------------------------------------------------------------------------


def _sign(url: str, params: dict[str, str]) -> str:
    from twilio.request_validator import RequestValidator

    return RequestValidator(TOKEN).compute_signature(url, params)


class Client:
    def __init__(self, base: str) -> None:
        self.base = base
        parts = urlsplit(base)
        self.host, self.port = parts.hostname, parts.port

    def post(self, url: str, params: dict[str, str]) -> tuple[float, int, bytes, float]:
        """Latency (s), status, body and the worker's CPU for this request (s, from bench/cpu.py's header)."""
        if url.startswith("/"):
            url = self.base + url
        parts = urlsplit(url)
        body = urlencode(params)
        headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": _sign(url, params)}
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        start = time.perf_counter()
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        try:
            conn.request("POST", path, body, headers)
            response = conn.getresponse()
            data = response.read()
            cpu = int(response.getheader("X-Bench-CPU-Us") or 0) / 1e6
        finally:
            conn.close()
        return time.perf_counter() - start, response.status, data, cpu


def _dial_action(xml: bytes) -> str | None:
    dial = ElementTree.fromstring(xml).find("Dial")
    return dial.get("action") if dial is not None else None


def run_clients(mode: str, base: str, numbers: list[str], seconds: float, clients: int, worker_id: int, queue) -> None:
    """One load-generator process: ``clients`` threads looping whole flows until the deadline."""
    deadline = time.monotonic() + seconds
    results: list[tuple[str, float, int, float]] = []  # (kind, latency, status, worker CPU)
    lock = threading.Lock()

    def loop(tid: int) -> None:
        rng = random.Random(worker_id * 1000 + tid)
        client = Client(base)
        n = 0
        local: list[tuple[str, float, int, float]] = []
        while time.monotonic() < deadline:
            n += 1
            # Unique across phases: the load's choices repeat from phase to phase (seeded), a CallSid must not (a
            # CallSid seen before is a retried webhook, answered from the stored call without routing it).
            sid = f"CA{worker_id:02d}{tid:02d}{n:08d}{secrets.token_hex(8)}"
            common = {"CallSid": sid, "AccountSid": "AC" + "0" * 32, "From": f"+1415555{rng.randrange(10000):04d}",
                      "To": rng.choice(numbers), "CallStatus": "ringing", "Direction": "inbound"}
            if mode in ("floor", "db-floor"):
                latency, status, _, cpu = client.post(f"/bench/{mode}", common)
                local.append((mode, latency, status, cpu))
                continue
            latency, status, body, cpu = client.post("/voice/incoming", common)
            local.append(("incoming", latency, status, cpu))
            action = _dial_action(body) if status == 200 else None
            steps = 0
            while action and steps < 3:
                steps += 1
                answered = rng.random() < 0.75
                params = {**common, "CallStatus": "in-progress", "DialCallStatus": "completed" if answered else "no-answer",
                          "DialCallDuration": str(rng.randrange(20, 300)) if answered else "0"}
                latency, status, body, cpu = client.post(action, params)
                local.append(("dial", latency, status, cpu))
                action = None if answered or status != 200 else _dial_action(body)
            latency, status, _, cpu = client.post("/voice/status", {**common, "CallStatus": "completed", "CallDuration": "60", "SequenceNumber": "5"})
            local.append(("status", latency, status, cpu))
            local.append(("flow", 0.0, 200, 0.0))
        with lock:
            results.extend(local)

    threads = [threading.Thread(target=loop, args=(t,)) for t in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    queue.put(results)


def phase(mode: str, base: str, numbers: list[str], seconds: float, clients: int, processes: int) -> dict[str, list]:
    ctx = get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=run_clients, args=(mode, base, numbers, seconds, clients, i, queue)) for i in range(processes)]
    started = time.monotonic()
    for p in procs:
        p.start()
    results: list[tuple[str, float, int, float]] = []
    for _ in procs:
        results.extend(queue.get(timeout=seconds + 120))
    for p in procs:
        p.join(timeout=30)
    elapsed = time.monotonic() - started
    by_kind: dict[str, list] = {}
    for kind, latency, status, cpu in results:
        by_kind.setdefault(kind, []).append((latency, status))
        by_kind.setdefault(f"_cpu_{kind}", []).append(cpu)
    by_kind["_elapsed"] = [elapsed]
    return by_kind


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))] * 1000


def wait_ready(base: str, timeout: float = 60) -> None:
    parts = urlsplit(base)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("gunicorn did not become ready")


def main() -> None:
    global DB_NAME
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="Length of each phase (default 20).")
    parser.add_argument("--workers", type=int, default=3, help="gunicorn sync workers (default 3).")
    parser.add_argument("--clients", type=int, default=4, help="Client threads per load process (default 4).")
    parser.add_argument("--processes", type=int, default=2, help="Load-generator processes (default 2).")
    parser.add_argument("--voice-only", action="store_true", help="Skip the floor phases (for profiling the voice phase).")
    parser.add_argument("--async-commit", action="store_true", help="Run with CALLTRACK_VOICE_ASYNC_COMMIT=true.")
    parser.add_argument("--port", type=int, default=0, help="gunicorn's port (default: a free one).")
    parser.add_argument("--db", default=DB_NAME, help=f"Database to (re)create (default {DB_NAME}).")
    parser.add_argument("--history", type=int, default=0, help="Historical calls and attempts to load (single-client history phases).")
    parser.add_argument("--handlers", default="", help="Campaign sizes for the growth table, e.g. 5,50,500.")
    parser.add_argument("--preset", default="buyers", choices=PRESETS,
                        help="Handlers of the --handlers and --late-fold campaigns (default buyers: read extra_campaigns).")
    parser.add_argument("--late-fold", action="store_true",
                        help="A 50-handler campaign with the cap counters folded, then 10 minutes and 1 hour of unfolded deltas.")
    args = parser.parse_args()
    DB_NAME = args.db

    port = args.port or free_port()
    base = f"http://127.0.0.1:{port}"
    env = server_env(port, async_commit=args.async_commit)
    print(f"database {DB_NAME}: recreating and loading 1,000 handlers / 50 campaigns / 10,000 tracking numbers ...", flush=True)
    recreate_database()
    numbers = load_data(env)
    history = sizes = None
    if args.history:
        history = extra_campaigns(env, [50, 50], "history")
        load_history(env, args.history, history[0]["capped"])
    if args.handlers:
        sizes = extra_campaigns(env, [int(n) for n in args.handlers.split(",")], "size", args.preset)
    late = extra_campaigns(env, [50], "late", args.preset)[0] if args.late_fold else None
    # What production's scheduled tasks leave between two folds: the deltas folded, then the empty delta table analysed
    # (autovacuum). Every gunicorn connection prepares its statements after that.
    fold_deltas(env)
    print(f"loaded {len(numbers)} tracking numbers; starting gunicorn ({args.workers} workers) on {base}", flush=True)
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "bench.wsgi_app:application", "-b", f"127.0.0.1:{port}", "-w", str(args.workers),
         "--log-level", "warning", "--timeout", "60"],
        cwd=ROOT, env=env, start_new_session=True,
    )
    try:
        wait_ready(base)
        phase("voice", base, numbers, 2, 2, 1)  # warm-up: imports, connections, caches
        if history or sizes or late:
            floor = phase("floor", base, numbers, args.seconds / 2, 1, 1)
            floor_p50 = pct([lat for lat, _ in floor["floor"]], 50)
            for group in (history or []) + (sizes or []) + ([late] if late else []):
                phase("voice", base, group["numbers"], 1, 1, 1)  # warm-up: this campaign's configuration cached
            if history:
                rows = single_client_rounds(server.pid, base, {"no history": history[1]["numbers"],
                                                               f"{args.history:,} history": history[0]["numbers"]}, args.seconds)
                print_single_client("/voice/incoming with and without history on the capped handlers", rows, "no history", floor_p50)
            if sizes:
                rows = single_client_rounds(server.pid, base, {f"{g['size']} handlers": g["numbers"] for g in sizes}, args.seconds)
                print_single_client(f"/voice/incoming as the campaign grows ({args.preset} handlers)", rows, next(iter(rows)), floor_p50)
                first, last = sizes[0], sizes[-1]
                if first["size"] != last["size"]:
                    ratio = pct(rows[f"{last['size']} handlers"][0], 50) / pct(rows[f"{first['size']} handlers"][0], 50)
                    print(f"target: {last['size']} handlers <= 1.5x {first['size']} handlers (c=1, p50): {ratio:.2f}x, "
                          f"{'met' if ratio <= 1.5 else 'NOT met'}")
            if late:
                late_fold(env, server.pid, base, late, args.seconds, floor_p50)
            return
        if args.voice_only:
            floor = db_floor = {"floor": [(1.0, 200)], "db-floor": [(1.0, 200)], "_elapsed": [1.0]}
        else:
            floor, floor_cpu = measured(server.pid, "floor", base, numbers, args.seconds, args.clients, args.processes)
            db_floor, db_floor_cpu = measured(server.pid, "db-floor", base, numbers, args.seconds, args.clients, args.processes)
            floor["_cpu_workers"], db_floor["_cpu_workers"] = [floor_cpu], [db_floor_cpu]
        print("voice phase starting", flush=True)
        voice, cpu = measured(server.pid, "voice", base, numbers, args.seconds, args.clients, args.processes)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
    report(floor, db_floor, voice, args, cpu)


def report(floor: dict[str, list], db_floor: dict[str, list], voice: dict[str, list], args: argparse.Namespace, cpu: float) -> None:
    f_elapsed, v_elapsed = floor["_elapsed"][0], voice["_elapsed"][0]
    f_lat = [lat for lat, _ in floor["floor"]]
    inc = voice.get("incoming", [])
    inc_lat = [lat for lat, _ in inc]
    errors = sum(1 for kind, rows in voice.items() if not kind.startswith("_") for _, st in rows if st != 200)
    requests = sum(len(rows) for kind, rows in voice.items() if kind in ("incoming", "dial", "status"))
    floor_rps = len(f_lat) / f_elapsed
    routed = len(inc) / v_elapsed
    print()
    print(f"phase length {args.seconds:.0f}s, gunicorn sync workers {args.workers}, load {args.processes} processes x {args.clients} threads, "
          f"async commit {'on' if args.async_commit else 'off'}, load average {os.getloadavg()[0]:.1f}")
    print(f"floor  (fixed TwiML view): {floor_rps:8.1f} req/s   p50 {pct(f_lat, 50):6.2f} ms   p99 {pct(f_lat, 99):6.2f} ms")
    d_lat = [lat for lat, _ in db_floor["db-floor"]]
    print(f"db floor (1 INSERT+commit): {len(d_lat) / db_floor['_elapsed'][0]:8.1f} req/s   p50 {pct(d_lat, 50):6.2f} ms   p99 {pct(d_lat, 99):6.2f} ms"
          f"   ({len(d_lat) / db_floor['_elapsed'][0] / floor_rps:.0%} of the floor)")
    print(f"voice  /voice/incoming   : {routed:8.1f} calls routed/s   p50 {pct(inc_lat, 50):6.2f} ms   p99 {pct(inc_lat, 99):6.2f} ms")
    print(f"voice  all webhooks      : {requests / v_elapsed:8.1f} req/s ({len(voice.get('flow', [])) / v_elapsed:.1f} whole flows/s: incoming + dial results + status)")
    for kind in ("dial", "status"):
        lat = [lat for lat, _ in voice.get(kind, [])]
        if lat:
            print(f"       /voice/{'dial-status' if kind == 'dial' else 'status':<16}: p50 {pct(lat, 50):6.2f} ms   p99 {pct(lat, 99):6.2f} ms   ({len(lat)} requests)")
    print(f"gunicorn workers' CPU: {cpu * 1000 / max(requests, 1):.2f} ms per webhook request, "
          f"{cpu * 1000 / max(len(voice.get('flow', [])), 1):.2f} ms per whole call (incoming + dial results + status)")
    # Per request type, as each worker measured it (bench/cpu.py: Django's middleware and the view, not gunicorn's
    # HTTP parsing), with the floors of the same run for scale.
    per_type = [("floor", floor), ("db-floor", db_floor), ("incoming", voice), ("dial", voice), ("status", voice)]
    mean_cpu = {kind: statistics.mean(phase_.get(f"_cpu_{kind}") or [0.0]) * 1000 for kind, phase_ in per_type}
    flows = max(len(voice.get("flow", [])), 1)
    in_django_call = sum(sum(voice.get(f"_cpu_{kind}") or [0.0]) for kind in ("incoming", "dial", "status")) * 1000 / flows
    print("CPU in Django per request (ms): " + ", ".join(f"{kind} {ms:.2f}" for kind, ms in mean_cpu.items())
          + f"; per whole call {in_django_call:.2f}; incoming / floor {mean_cpu['incoming'] / max(mean_cpu['floor'], 1e-6):.1f}x")
    for name, phase_ in (("floor", floor), ("db-floor", db_floor)):
        n = max(len(phase_.get(name, [])), 1)
        if "_cpu_workers" in phase_:
            print(f"CPU per {name} request: gunicorn workers {phase_['_cpu_workers'][0] * 1000 / n:.2f} ms, PostgreSQL "
                  f"{phase_['_cpu_postgres'][0] * 1000 / n:.2f} ms, load generator {phase_['_cpu_load'][0] * 1000 / n:.2f} ms")
    pg_ms, load_ms = (voice.get(key, [0.0])[0] * 1000 / flows for key in ("_cpu_postgres", "_cpu_load"))
    machine = os.cpu_count() or 1
    print(f"CPU per whole call on this machine's {machine} cores: gunicorn workers {cpu * 1000 / flows:.2f} ms, PostgreSQL {pg_ms:.2f} ms, "
          f"load generator {load_ms:.2f} ms; all three {(cpu * 1000 / flows + pg_ms + load_ms):.2f} ms of the "
          f"{machine * voice['_elapsed'][0] * 1000 / flows:.2f} core-ms each call had")
    print(f"targets: incoming CPU <= 2.5 ms: {'met' if mean_cpu['incoming'] <= 2.5 else 'NOT met'};  whole call <= 8 ms: "
          f"{'met' if cpu * 1000 / flows <= 8 else 'NOT met'} (workers' CPU);  incoming req/s >= 0.12 of the floor: see the line below")
    print(f"errors (non-200): {errors}")
    print(f"ratio: calls routed/s vs floor req/s = {routed / floor_rps:.0%};  all webhook req/s vs floor = {requests / v_elapsed / floor_rps:.0%}")
    print(f"target p99 < 50 ms: {'met' if pct(inc_lat, 99) < 50 else 'NOT met'};  target >= 40% of floor: "
          f"{'met' if requests / v_elapsed / floor_rps >= 0.4 else 'NOT met'} (requests), {'met' if routed / floor_rps >= 0.4 else 'NOT met'} (calls)")
    if statistics.mean(inc_lat) <= 0:
        raise SystemExit("no data")


if __name__ == "__main__":
    main()
