"""`make run` (what `make demo` ends with) stops cleanly, in under 5 s, on Ctrl-C and when runserver is killed by its PID.

Starts the real Makefile target on a fresh SQLite database and a port of its own, like a developer would,
then sends the signal: Ctrl-C as a terminal does (SIGINT to make's whole foreground process group), or
SIGTERM to runserver's PID. Everything the run started must be gone, the port free, and the output must not
hold a crash ("Segmentation fault"), a traceback or make's "Interrupt"/"Error" lines.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Two ports of calltrack's test range, one per test (xdist may run both at once).
PORTS = {"ctrl_c": 8131, "kill": 8132, "banner": 8133}
STOP_LIMIT = 5.0

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("make") is None or not sys.platform.startswith("linux"), reason="needs make and Linux /proc"),
]


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _children(pid: int) -> list[int]:
    """Every live descendant of ``pid`` (from /proc), including those that moved to sessions of their own."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if fields[0] != "Z":
                parents[int(entry.name)] = int(fields[1])
    found, frontier = [], [pid]
    while frontier:
        current = frontier.pop()
        kids = [p for p, parent in parents.items() if parent == current]
        found += kids
        frontier += kids
    return found


def _cmdline(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.fixture(scope="module")
def run_env(tmp_path_factory):
    """A migrated SQLite database of its own (qcluster's ORM broker needs its tables)."""
    db = tmp_path_factory.mktemp("run") / "db.sqlite3"
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{db}", "Q_REDIS_URL": "", "PYTHONUNBUFFERED": "1", "DEBUG": "true"}
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput"], cwd=ROOT, env=env, check=True, capture_output=True, timeout=300)
    return env


def _start(env, port: int) -> tuple[subprocess.Popen, list[int]]:
    if _listening(port):
        pytest.skip(f"port {port} is in use")
    # -o: never re-install the virtualenv here (the run target depends on `install`).
    proc = subprocess.Popen(
        ["make", "--no-print-directory", "-o", ".venv/.runtime", "run", f"PORT={port}"], cwd=ROOT, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while not _listening(port):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"make run did not start: {proc.communicate()[0].decode()[-2000:]}")
        time.sleep(0.2)
    # The cluster is up once its workers exist (qcluster master -> sentinel -> workers).
    while sum("qcluster" in _cmdline(p) for p in _children(proc.pid)) < 3 and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1)
    return proc, _children(proc.pid)


def _stopped(proc: subprocess.Popen, started: list[int], since: float) -> tuple[float, str]:
    try:
        output = proc.communicate(timeout=30)[0].decode()
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        for pid in started:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        pytest.fail(f"make run did not stop within 30 s: {proc.communicate()[0].decode()[-3000:]}")
    while any(_alive(p) for p in started) and time.monotonic() - since < 30:
        time.sleep(0.05)
    took = time.monotonic() - since
    left = [(p, _cmdline(p)) for p in started if _alive(p)]
    for pid, _ in left:
        os.kill(pid, signal.SIGKILL)
    assert left == [], f"still running after make ended: {left}"
    return took, output


def _assert_clean(output: str, port: int) -> None:
    for bad in ("Segmentation fault", "Traceback", "Interrupt", "Error", "did not stop"):
        assert bad not in output, f"{bad!r} in the output:\n{output[-3000:]}"
    assert "calltrack stopped in" in output
    assert not _listening(port)


def test_ctrl_c_stops_the_server_and_the_cluster_in_under_5_seconds(run_env):
    proc, started = _start(run_env, PORTS["ctrl_c"])
    since = time.monotonic()
    os.killpg(proc.pid, signal.SIGINT)  # what the terminal does on Ctrl-C: the whole foreground group
    took, output = _stopped(proc, started, since)
    _assert_clean(output, PORTS["ctrl_c"])
    print(f"stopped in {took:.1f} s")
    assert took < STOP_LIMIT, f"took {took:.1f} s"


def test_killing_runserver_by_its_pid_stops_the_cluster_too_in_under_5_seconds(run_env):
    proc, started = _start(run_env, PORTS["kill"])
    [runner] = [p for p in started if "scripts/run.py" in _cmdline(p)]
    [runserver] = [p for p in _children(runner) if "runserver" in _cmdline(p)]  # the runner's own child
    since = time.monotonic()
    os.kill(runserver, signal.SIGTERM)
    took, output = _stopped(proc, started, since)
    _assert_clean(output, PORTS["kill"])
    assert proc.returncode == 0
    print(f"stopped in {took:.1f} s")
    assert took < STOP_LIMIT, f"took {took:.1f} s"


def test_the_demo_login_is_printed_last_and_framed_once_the_server_listens(run_env):
    """make demo passes the login to scripts/run.py, which prints it after the children's start-up lines."""
    env = {**run_env, "CALLTRACK_BANNER": "calltrack demo\\nAdmin login: user admin  password pw-123"}
    proc, started = _start(env, PORTS["banner"])
    since = time.monotonic()
    os.killpg(proc.pid, signal.SIGINT)
    _, output = _stopped(proc, started, since)
    before_stop = output.split("Stopping calltrack")[0].rstrip().splitlines()
    rule = "=" * (len("Admin login: user admin  password pw-123") + 4)
    assert before_stop[-4:] == [rule, "  calltrack demo", "  Admin login: user admin  password pw-123", rule]
