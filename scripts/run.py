"""Serve calltrack for ``make run`` / ``make demo``: runserver and the django-q2 cluster together.

Usage: ``.venv/bin/python scripts/run.py [--host 127.0.0.1] [--port 8000] [--reload]``.

Stops both, cleanly and in a few seconds, whatever ends the run: Ctrl-C, SIGTERM or SIGHUP to this
process, or one of the two exiting (runserver killed by its PID, qcluster crashing). The shell's
``trap 'kill 0' INT TERM EXIT`` it replaces signalled the whole process group, itself included, so dash
re-ran the trap until it crashed ("Segmentation fault"), and the repeated SIGTERMs reached the qcluster
master in the middle of its own shutdown and deadlocked it. Here each child runs in its own session (a
terminal's Ctrl-C reaches only this process), and each gets exactly one signal: SIGTERM to the qcluster
master alone (it stops its sentinel and workers itself; signalling them too is what deadlocks it) and to
runserver's process group (its autoreloader and the server it restarts). Whatever is still alive after
STOP_SECONDS is killed.

runserver runs without its autoreloader by default (``--reload``, or ``RELOAD=1 make run``, turns it on): the
reloader's parent process takes seconds to exit when killed (the whole of Django to finalize), the server
alone stops at once; and the task cluster never reloads anyway, so after a code change restart both.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

STOP_SECONDS = 4.0
BANNER_WAIT_SECONDS = 15.0  # print the banner when the server listens and the cluster runs, or after this long anyway
CLUSTER_RUNNING = "running."  # the last start-up line of django-q2's cluster ("Q Cluster ... running.")
POLL_SECONDS = 0.1
ROOT = Path(__file__).resolve().parent.parent


class Runner:
    def __init__(self, host: str, port: int, *, reload: bool = False, banner: str = "") -> None:
        self.host, self.port, self.reload, self.banner = host, port, reload, banner
        self.procs: dict[str, subprocess.Popen] = {}
        self.stop_reason = ""
        self.stopping_since = 0.0
        self.cluster_running = threading.Event()

    def _start(self, name: str, *args: str, relay: bool = False) -> None:
        """Start ``manage.py args``; ``relay``: its output passes through this process (line by line, to stderr), so
        the runner sees when the cluster has started (its last start-up line) before printing the banner."""
        out = {"stdout": subprocess.PIPE, "stderr": subprocess.STDOUT} if relay else {}
        proc = subprocess.Popen([sys.executable, "manage.py", *args], cwd=ROOT, start_new_session=True, **out)
        self.procs[name] = proc
        if relay:
            threading.Thread(target=self._relay, args=(proc,), daemon=True).start()

    def _relay(self, proc: subprocess.Popen) -> None:
        for line in iter(proc.stdout.readline, b""):  # type: ignore[union-attr]
            sys.stderr.buffer.write(line)
            sys.stderr.flush()
            if CLUSTER_RUNNING.encode() in line:
                self.cluster_running.set()

    def _on_signal(self, signum: int, frame: object) -> None:
        if not self.stop_reason:  # one stop, however many signals arrive
            self.stop_reason = signal.Signals(signum).name

    def run(self) -> int:
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, self._on_signal)
        self._start("qcluster", "qcluster", relay=bool(self.banner))
        self._start("runserver", "runserver", f"{self.host}:{self.port}", *([] if self.reload else ["--noreload"]))
        banner_at = time.monotonic() + BANNER_WAIT_SECONDS if self.banner else None
        failed = ""
        while not self.stop_reason:
            for name, proc in self.procs.items():
                code = proc.poll()
                if code is not None:
                    # Killed by a signal (e.g. `kill <runserver pid>`): a stop, not an error. Exit status >0: an error.
                    self.stop_reason = f"{name} ended"
                    if code > 0:
                        failed = f"{name} exited with status {code}"
                    break
            if banner_at is not None and (
                time.monotonic() >= banner_at or (self.cluster_running.is_set() and _listening(self.host, self.port))
            ):
                # Last, after the children's start-up lines, framed: what the operator needs to log in.
                time.sleep(0.5 if time.monotonic() < banner_at else 0)
                print(framed(self.banner), flush=True)
                banner_at = None
            time.sleep(POLL_SECONDS)
        self.stopping_since = time.monotonic()
        print(f"\nStopping calltrack ({self.stop_reason}) ...", file=sys.stderr, flush=True)
        self.stop()
        if failed:
            print(f"calltrack stopped: {failed}", file=sys.stderr)
            return 1
        print(f"calltrack stopped in {time.monotonic() - self.stopping_since:.1f} s.", file=sys.stderr)
        return 0

    def stop(self) -> None:
        _signal(self.procs["qcluster"], signal.SIGTERM, group=False)
        _signal(self.procs["runserver"], signal.SIGTERM, group=True)
        deadline = time.monotonic() + STOP_SECONDS
        while time.monotonic() < deadline and any(p.poll() is None for p in self.procs.values()):
            time.sleep(POLL_SECONDS)
        for name, proc in self.procs.items():
            if proc.poll() is None:
                print(f"{name} did not stop within {STOP_SECONDS:.0f} s: killed", file=sys.stderr)
            # Also whatever a child left behind in its session (qcluster's workers, runserver's server process).
            _signal(proc, signal.SIGKILL, group=True)
            proc.wait()


def _listening(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


def framed(text: str) -> str:
    """``text`` in a box of ``=`` lines, so that it stands out at the end of the start-up output."""
    lines = text.replace("\\n", "\n").splitlines() or [""]
    width = max(len(line) for line in lines) + 4
    rule = "=" * width
    return "\n".join(["", rule, *(f"  {line}" for line in lines), rule, ""])


def _signal(proc: subprocess.Popen, signum: int, *, group: bool) -> None:
    try:
        if group:
            os.killpg(proc.pid, signum)  # start_new_session: the child leads its own group
        elif proc.poll() is None:
            os.kill(proc.pid, signum)
    except ProcessLookupError:
        pass


def main() -> int:
    parser = argparse.ArgumentParser(description="Serve calltrack (runserver) and its task cluster (qcluster) together.")
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    parser.add_argument("--reload", action="store_true", default=os.environ.get("RELOAD", "") not in ("", "0"),
                        help="Restart runserver when the code changes (Django's autoreloader; default: RELOAD env).")
    args = parser.parse_args()
    # make demo passes the admin login here, printed once the server listens (not buried in the output above it);
    # taken out of the environment the children inherit.
    banner = os.environ.pop("CALLTRACK_BANNER", "")
    return Runner(args.host, args.port, reload=args.reload, banner=banner).run()


if __name__ == "__main__":
    sys.exit(main())
