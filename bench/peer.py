"""Peer comparison of issue 26: calltrack's /voice/incoming against TwilioDevEd/call-tracking-django and a floor.

    python bench/peer.py [--peer-repo PATH] [--seconds 20] [--rounds 3] [--workers 2] [--clients 8] [--db ct_bench_peer]

The peer is not part of calltrack: ``--peer-repo`` is a clone of https://github.com/TwilioDevEd/call-tracking-django
(a work tree or a git dir; the default is the bare mirror at DEFAULT_PEER when it exists).

1. Exports the peer to a temp dir, installs its third-party apps there with ``pip install --no-deps --target`` (on
   calltrack's venv's Django, phonenumbers and twilio, checked against their requirements) and writes a settings
   shim: the peer's common settings (its apps and middleware) on a SQLite file, DEBUG off, as shipped otherwise.
2. Migrates the peer's database (and runs collectstatic, as its deploy does) and creates 50 lead sources.
3. Recreates and loads calltrack's bench database as bench/voice.py does (1,000 handlers, 10,000 tracking numbers).
4. Starts three gunicorn servers with the same flags (``--workers`` sync workers each): the floor (calltrack's
   fixed-TwiML view, /bench/floor), the peer (its ``forward_call``: look up the lead source by ``Called``, insert a
   lead, answer <Dial>; no signature check) and calltrack (signed /voice/incoming, full routing decision,
   PostgreSQL). Only one is under load at a time: ``--clients`` threads in ``--processes`` load-generator processes,
   each thread looping single signed requests (Twilio signs what it sends to every system).
5. After a 2 s warm-up per server, ``--rounds`` rounds of ``--seconds`` per system, alternating floor, peer,
   calltrack; prints the medians over rounds (req/s, p50, p99, gunicorn workers' CPU per request) and the targets.
   Before each of calltrack's rounds, what its task cluster does every minute in production (``scheduled_tasks``:
   the cap counters folded, the slots of legs that never called back released): the bench's calls never end.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import secrets
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from multiprocessing import get_context
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import voice  # noqa: E402
from bench.voice import (  # noqa: E402
    Client,
    cpu_since,
    fold_deltas,
    free_port,
    load_data,
    pct,
    postgres_cpu,
    recreate_database,
    server_env,
    wait_ready,
    worker_cpu,
)

PEER_URL = "https://github.com/TwilioDevEd/call-tracking-django"
DEFAULT_PEER = Path("/work/.mirror/TwilioDevEd+call-tracking-django/repo")
PEER_PACKAGES = ["django-phonenumber-field", "django-bootstrap3", "django-forms-bootstrap", "whitenoise"]
SYSTEMS = ("floor", "peer", "calltrack")


def scheduled_tasks(env: dict[str, str]) -> None:
    """What production's task cluster does between two of calltrack's rounds (every minute, ``manage.py
    calltrack_schedules``): fold the cap counters' deltas, release the slots of legs whose callbacks never came (the
    bench's calls ring for ever: nobody answers or hangs up), then what autovacuum does after a fold."""
    import psycopg

    code = ("from routing.services.slots import cap_counters_fold\nfrom routing.store.counters import attempt_slots_release_stale\n"
            "print(cap_counters_fold(), attempt_slots_release_stale())")
    subprocess.run([sys.executable, "manage.py", "shell", "-c", code], cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    with psycopg.connect(f"{voice.SERVER_URL}/{voice.DB_NAME}", autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE tracking_capdelta")
PATHS = {"floor": "/bench/floor", "peer": "/call-tracking/forward-call", "calltrack": "/voice/incoming"}
PEER_SOURCES = 50

SHIM = '''"""bench/peer.py's settings for TwilioDevEd/call-tracking-django: its common settings on a SQLite file."""
import importlib.util
import os

for _name in ("TWIML_APPLICATION_SID", "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN"):
    os.environ.setdefault(_name, "bench-dummy-" + _name.lower())

from twilio_sample_project.settings.common import *  # noqa


def _importable(dotted):
    for name in (dotted, dotted.rpartition(".")[0]):
        try:
            if name and importlib.util.find_spec(name) is not None:
                return True
        except ImportError:
            pass
    return False


BENCH_DROPPED = [a for a in INSTALLED_APPS if not _importable(a)] + [m for m in MIDDLEWARE if not _importable(m.rpartition(".")[0])]
INSTALLED_APPS = tuple(a for a in INSTALLED_APPS if a not in BENCH_DROPPED)
MIDDLEWARE = tuple(m for m in MIDDLEWARE if m not in BENCH_DROPPED)
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": DB_PATH}}
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1"]
'''

PEER_DATA = r"""
from django.conf import settings
from django.db import connection
from call_tracking.models import LeadSource
LeadSource.objects.bulk_create(
    LeadSource(name=f"Source {i}", incoming_number=f"+1415555{i:04d}", forwarding_number=f"+1303555{i:04d}") for i in range(N))
with connection.cursor() as cursor:
    cursor.execute("PRAGMA journal_mode")
    mode = cursor.fetchone()[0]
print("DROPPED", ", ".join(settings.BENCH_DROPPED) or "-")
print("JOURNAL", mode)
print("KEPT", f"{len(settings.INSTALLED_APPS)} apps, {len(settings.MIDDLEWARE)} middleware kept")
"""


# --- the peer ----------------------------------------------------------------------------------------------------


def export_peer(source: Path | None, dest: Path) -> str:
    """The peer's files into ``dest`` from a work tree or a git dir; returns its commit (or "?")."""
    if source is None or not source.exists():
        raise SystemExit(f"the peer's repository is not on disk ({source or DEFAULT_PEER}): clone it with\n"
                         f"    git clone {PEER_URL} DIR\nand run bench/peer.py --peer-repo DIR")
    if (source / "twilio_sample_project").is_dir():
        shutil.copytree(source, dest, ignore=shutil.ignore_patterns(".git"))
        rev = subprocess.run(["git", "-C", str(source), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    else:
        archive = subprocess.run(["git", f"--git-dir={source}", "archive", "HEAD"], capture_output=True)
        if archive.returncode:
            raise SystemExit(f"--peer-repo {source} is neither a work tree of {PEER_URL} nor a git dir: "
                             f"{archive.stderr.decode(errors='replace').strip()}")
        with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
            tar.extractall(dest, filter="data")
        rev = subprocess.run(["git", f"--git-dir={source}", "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    if not (dest / "twilio_sample_project" / "wsgi.py").is_file() or not (dest / "call_tracking" / "views.py").is_file():
        raise SystemExit(f"{source} does not look like {PEER_URL} (no twilio_sample_project/wsgi.py, call_tracking/views.py)")
    return rev.stdout.strip() if rev.returncode == 0 else "?"


def install_peer_packages(site: Path) -> list[str]:
    """The peer's third-party apps into ``site`` (no dependencies: Django, phonenumbers and twilio come from this venv);
    returns a line per requirement of theirs, checked against what the peer's servers will import."""
    from importlib import metadata

    from packaging.requirements import Requirement

    pip = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-deps", "--target", str(site),
                          *PEER_PACKAGES], capture_output=True, text=True)
    if pip.returncode:
        raise SystemExit(f"pip could not install the peer's packages ({' '.join(PEER_PACKAGES)}):\n{pip.stderr[-3000:]}")

    def version_of(name: str) -> str | None:
        for dist in metadata.distributions(name=name, path=[str(site)]):
            return dist.version
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return None

    lines, missing = [], []
    for dist in sorted(metadata.distributions(path=[str(site)]), key=lambda d: d.metadata["Name"].lower()):
        needs = []
        for spec in dist.requires or []:
            req = Requirement(spec)
            if req.marker and not req.marker.evaluate({"extra": "phonenumbers"}):  # django-phonenumber-field[phonenumbers]
                continue
            have = version_of(req.name)
            if have is None or not req.specifier.contains(have, prereleases=True):
                missing.append(f"{dist.metadata['Name']} needs {req}, have {have or 'nothing'}")
            needs.append(f"{req} (have {have})")
        lines.append(f"  {dist.metadata['Name']} {dist.version}: " + (", ".join(needs) or "no requirements"))
    if missing:
        raise SystemExit("the peer's packages need what calltrack's venv does not have:\n  " + "\n  ".join(missing))
    return lines


def peer_env(tmp: Path, peer: Path, site: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL")}
    env.update({"PYTHONPATH": os.pathsep.join([str(tmp), str(peer), str(site)]), "DJANGO_SETTINGS_MODULE": "peer_bench_settings"})
    return env


def setup_peer(source: Path | None, tmp: Path) -> tuple[dict[str, str], Path, list[str]]:
    """Exports, installs and migrates the peer; returns its server environment, its directory and its incoming numbers."""
    peer, site, db = tmp / "peer", tmp / "site", tmp / "peer.sqlite3"
    rev = export_peer(source, peer)
    print(f"peer: {PEER_URL} at {rev} exported to {peer}", flush=True)
    for line in install_peer_packages(site):
        print(line)
    import django
    import twilio

    print(f"  from calltrack's venv: Django {django.get_version()}, phonenumbers {_version('phonenumbers')}, twilio {twilio.__version__} "
          f"(the peer pins Django 3.2.0, twilio 6.9.0; its code runs unchanged on these)")
    (tmp / "peer_bench_settings.py").write_text(SHIM.replace("DB_PATH", repr(str(db))))
    env = peer_env(tmp, peer, site)

    def manage(*args: str) -> str:
        out = subprocess.run([sys.executable, "manage.py", *args], cwd=peer, env=env, capture_output=True, text=True)
        if out.returncode:
            raise SystemExit(f"peer: manage.py {' '.join(args[:1])} failed:\n{out.stderr[-3000:]}")
        return out.stdout

    manage("check")
    manage("migrate", "-v0", "--noinput")
    manage("collectstatic", "-v0", "--noinput")
    out = dict(line.split(" ", 1) for line in manage("shell", "-c", PEER_DATA.replace("range(N)", f"range({PEER_SOURCES})")).splitlines()
               if line.split(" ", 1)[0] in ("DROPPED", "JOURNAL", "KEPT"))
    print(f"peer: settings shim {tmp / 'peer_bench_settings.py'}: the peer's common settings, SQLite {db} (journal mode "
          f"{out['JOURNAL']}, as shipped: no WAL), DEBUG off; apps/middleware dropped as not importable: {out['DROPPED']} "
          f"({out['KEPT']}); no patch to its code; {PEER_SOURCES} lead sources", flush=True)
    return env, peer, [f"+1415555{i:04d}" for i in range(PEER_SOURCES)]


def _version(name: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "?"


# --- load --------------------------------------------------------------------------------------------------------


def run_load(mode: str, base: str, numbers: list[str], seconds: float, threads: int, worker_id: int, ready, go, queue) -> None:
    """One load-generator process: ``threads`` threads looping single requests from ``go`` until ``seconds`` later."""
    path = PATHS[mode]
    results: list[tuple[float, int, bool]] = []  # (latency, status, answered <Dial>)
    lock = threading.Lock()
    start = threading.Event()
    deadline = [0.0]

    def loop(tid: int) -> None:
        rng = random.Random(worker_id * 1000 + tid)
        client = Client(base)
        local: list[tuple[float, int, bool]] = []
        n = 0
        start.wait()
        while time.monotonic() < deadline[0]:
            n += 1
            sid = f"CA{worker_id:02d}{tid:02d}{n:08d}{secrets.token_hex(8)}"
            caller, called = f"+1415555{rng.randrange(10000):04d}", rng.choice(numbers)
            if mode == "peer":
                params = {"Called": called, "Caller": caller, "CallerCity": "San Francisco", "CallerState": "CA", "CallSid": sid,
                          "From": caller, "To": called}
            else:  # bench/voice.py's parameters of /voice/incoming (the floor gets the same)
                params = {"CallSid": sid, "AccountSid": "AC" + "0" * 32, "From": caller, "To": called, "CallStatus": "ringing",
                          "Direction": "inbound"}
            latency, status, body, _ = client.post(path, params)
            local.append((latency, status, status == 200 and b"<Dial" in body))
        with lock:
            results.extend(local)

    pool = [threading.Thread(target=loop, args=(t,)) for t in range(threads)]
    for t in pool:
        t.start()
    ready.put(worker_id)
    go.wait()
    began = time.monotonic()
    deadline[0] = began + seconds
    start.set()
    for t in pool:
        t.join()
    queue.put((results, time.monotonic() - began))


def phase(mode: str, master: int, base: str, numbers: list[str], seconds: float, clients: int, processes: int) -> dict[str, float]:
    """``clients`` threads over ``processes`` processes on one server for ``seconds``; the gunicorn workers' CPU (and
    PostgreSQL's) counted from the go to the last response."""
    ctx = get_context("spawn")
    ready, out, go = ctx.Queue(), ctx.Queue(), ctx.Event()
    shares = [clients // processes + (1 if i < clients % processes else 0) for i in range(processes)]
    procs = [ctx.Process(target=run_load, args=(mode, base, numbers, seconds, n, i, ready, go, out))
             for i, n in enumerate(shares) if n]
    for p in procs:
        p.start()
    try:
        for _ in procs:
            ready.get(timeout=120)
        cpu_before, pg_before = worker_cpu(master), postgres_cpu()
        go.set()
        got = [out.get(timeout=seconds + 120) for _ in procs]
        cpu, pg = worker_cpu(master) - cpu_before, cpu_since(pg_before, postgres_cpu())
    finally:
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
    rows = [row for result, _ in got for row in result]
    elapsed = max(e for _, e in got)
    n = max(len(rows), 1)
    latencies = [lat for lat, _, _ in rows] or [0.0]
    return {"rps": len(rows) / elapsed, "p50": pct(latencies, 50), "p99": pct(latencies, 99), "cpu": cpu * 1000 / n,
            "pg": pg * 1000 / n, "requests": len(rows), "non200": sum(1 for _, st, _ in rows if st != 200),
            "nodial": sum(1 for _, st, dial in rows if st == 200 and not dial)}


# --- servers -----------------------------------------------------------------------------------------------------


def gunicorn(app: str, cwd: Path, env: dict[str, str], port: int, workers: int) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "gunicorn", app, "-b", f"127.0.0.1:{port}", "-w", str(workers), "--log-level", "warning",
         "--timeout", "60"],
        cwd=cwd, env=env, start_new_session=True,
    )


def wait_peer(base: str, number: str, timeout: float = 60) -> None:
    """The peer has no health URL: one real forward-call until it answers 200 with <Dial>."""
    client = Client(base)
    params = {"Called": number, "Caller": "+14155559999", "CallerCity": "San Francisco", "CallerState": "CA",
              "CallSid": "CA" + secrets.token_hex(16), "From": "+14155559999", "To": number}
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            _, status, body, _ = client.post(PATHS["peer"], params)
        except OSError as exc:
            last = str(exc)
            time.sleep(0.2)
            continue
        if status == 200 and b"<Dial" in body:
            return
        last = f"{status}: {body[:300]!r}"
        time.sleep(0.5)
    raise SystemExit(f"the peer's gunicorn did not answer forward-call: {last}")


def stop(server: subprocess.Popen) -> None:
    """SIGTERM to the master (a graceful stop of its workers), then SIGKILL to its whole process group if need be."""
    if server.poll() is None:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(server.pid, signal.SIGKILL)  # whatever of the group is left (a worker that outlived its master)
    except ProcessLookupError:
        pass
    server.wait(timeout=10)


# --- main --------------------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peer-repo", type=Path, default=DEFAULT_PEER if DEFAULT_PEER.exists() else None,
                        help=f"A clone of {PEER_URL}: a work tree or a git dir (default {DEFAULT_PEER} if it exists).")
    parser.add_argument("--seconds", type=float, default=20.0, help="Length of each measured run (default 20).")
    parser.add_argument("--rounds", type=int, default=3, help="Rounds of floor, peer, calltrack (default 3; medians printed).")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers per server (default 2).")
    parser.add_argument("--clients", type=int, default=8, help="Client threads in all (default 8).")
    parser.add_argument("--processes", type=int, default=2, help="Load-generator processes the threads are spread over (default 2).")
    parser.add_argument("--history", type=int, default=100_000,
                        help="calltrack's historical calls (a database in service, its tables analysed; default 100,000; 0: none).")
    parser.add_argument("--db", default="ct_bench_peer", help="calltrack's database to (re)create (default ct_bench_peer).")
    args = parser.parse_args()
    voice.DB_NAME = args.db
    load_start = os.getloadavg()

    tmp = Path(tempfile.mkdtemp(prefix="ct-bench-peer-"))
    servers: dict[str, tuple[subprocess.Popen, str]] = {}
    results: dict[str, list[dict[str, float]]] = {name: [] for name in SYSTEMS}
    try:
        p_env, peer_dir, peer_numbers = setup_peer(args.peer_repo, tmp)
        print(f"calltrack: database {args.db}: recreating and loading 1,000 handlers / 50 campaigns / 10,000 tracking numbers ...",
              flush=True)
        ports = {name: free_port() for name in SYSTEMS}
        envs = {name: server_env(ports[name]) for name in ("floor", "calltrack")}
        recreate_database()
        numbers = {"floor": load_data(envs["calltrack"]), "peer": peer_numbers}
        numbers["calltrack"] = numbers["floor"]
        if args.history:
            # A database in service: calls in its history and statistics on its tables. On a calls table analysed
            # empty, each connection's foreign-key checks on tracking_call (every attempt's and timeline step's INSERT)
            # were planned as sequential scans: 0.39 ms and 668 buffers each (pg_stat_statements).
            import psycopg

            with psycopg.connect(f"{voice.SERVER_URL}/{voice.DB_NAME}") as conn:
                capped = [r[0] for r in conn.execute("SELECT id FROM tracking_handler WHERE concurrency_cap IS NOT NULL ORDER BY id LIMIT 10")]
            voice.load_history(envs["calltrack"], args.history, capped)
        fold_deltas(envs["calltrack"])
        apps = {"floor": ("bench.wsgi_app:application", ROOT, envs["floor"]), "peer": ("twilio_sample_project.wsgi:application", peer_dir, p_env),
                "calltrack": ("bench.wsgi_app:application", ROOT, envs["calltrack"])}
        for name, (app, cwd, env) in apps.items():
            servers[name] = (gunicorn(app, cwd, env, ports[name], args.workers), f"http://127.0.0.1:{ports[name]}")
        wait_ready(servers["floor"][1])
        wait_ready(servers["calltrack"][1])
        wait_peer(servers["peer"][1], peer_numbers[0])
        print(f"gunicorn: {args.workers} sync workers per server, {args.clients} client threads over {args.processes} processes, "
              f"{args.rounds} round(s) of {args.seconds:g} s per system, one server under load at a time", flush=True)
        for name in SYSTEMS:  # warm-up: imports, connections, caches
            phase(name, servers[name][0].pid, servers[name][1], numbers[name], 2, args.clients, args.processes)
        for r in range(args.rounds):
            for name in SYSTEMS:
                if name == "calltrack":
                    scheduled_tasks(envs["calltrack"])
                row = phase(name, servers[name][0].pid, servers[name][1], numbers[name], args.seconds, args.clients, args.processes)
                results[name].append(row)
                print(f"  round {r + 1} {name:<9} {row['rps']:8.1f} req/s  p50 {row['p50']:6.2f} ms  p99 {row['p99']:7.2f} ms  "
                      f"worker CPU {row['cpu']:5.2f} ms/req  errors {row['non200'] + row['nodial']}  load {os.getloadavg()[0]:.1f}",
                      flush=True)
        leads = sqlite3.connect(tmp / "peer.sqlite3").execute("SELECT count(*) FROM call_tracking_lead").fetchone()[0]
    finally:
        for proc, _ in servers.values():
            stop(proc)
        shutil.rmtree(tmp, ignore_errors=True)
    report(results, args, load_start, leads)


def report(results: dict[str, list[dict[str, float]]], args: argparse.Namespace, load_start: tuple[float, ...], leads: int) -> None:
    med = {name: {key: statistics.median(row[key] for row in rows) for key in rows[0]} for name, rows in results.items()}
    total = {name: {key: sum(row[key] for row in rows) for key in ("requests", "non200", "nodial")} for name, rows in results.items()}
    print()
    print(f"medians over {args.rounds} round(s) of {args.seconds:g} s; worker CPU = the gunicorn workers' whole CPU over the run / "
          f"requests; PostgreSQL CPU likewise (the peer's SQLite work is in its workers); errors over all rounds")
    print(f"{'system':<10} {'path':<28} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'worker CPU ms/req':>18} {'PG CPU ms/req':>14} "
          f"{'requests':>9} {'non-200':>8} {'no <Dial>':>9}")
    for name in SYSTEMS:
        m, t = med[name], total[name]
        print(f"{name:<10} {PATHS[name]:<28} {m['rps']:8.1f} {m['p50']:7.2f} {m['p99']:7.2f} {m['cpu']:18.2f} {m['pg']:14.2f} "
              f"{t['requests']:9d} {t['non200']:8d} {t['nodial']:9d}")
    print(f"peer: {leads} leads in its SQLite file (warm-up and readiness requests included)")
    ratio = med["calltrack"]["rps"] / med["peer"]["rps"]
    cpu = med["calltrack"]["cpu"]
    print(f"calltrack / peer throughput: {ratio:.2f}x (goal >= 1.2x): {'met' if ratio >= 1.2 else 'NOT met'}")
    print(f"calltrack worker CPU per /voice/incoming: {cpu:.2f} ms (goal <= 2.0 ms): {'met' if cpu <= 2.0 else 'NOT met'}")
    print(f"calltrack / floor throughput: {med['calltrack']['rps'] / med['floor']['rps']:.0%} (moonshot 10%)")
    end = os.getloadavg()
    print(f"load average: start {load_start[0]:.2f} {load_start[1]:.2f} {load_start[2]:.2f}, end {end[0]:.2f} {end[1]:.2f} {end[2]:.2f} "
          f"({os.cpu_count()} cores)")
    errors = sum(t["non200"] + t["nodial"] for t in total.values())
    if errors:
        print(f"WARNING: {errors} requests did not answer 200 with <Dial>")


if __name__ == "__main__":
    main()
