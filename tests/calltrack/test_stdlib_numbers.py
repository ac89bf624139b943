"""``import numbers`` is the standard library's module in every kind of calltrack process.

The app folder ``numbers/`` has no ``__init__.py`` and is imported as ``calltrack.numbers``: the stdlib's
regular module always wins ``import numbers``, whatever was imported first, and ``numbers.Integral``
pickled inside calltrack unpickles anywhere.
"""

from __future__ import annotations

import base64
import json
import os
import pickle
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PORT = 8151  # this suite's own port (never 8000)
REPORT = "from tests.calltrack.stdlib_probe import numbers_report; print(numbers_report())"


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env.update(DJANGO_SETTINGS_MODULE="calltrack.settings", PYTHONPATH=str(ROOT), LOG_LEVEL="WARNING", **extra)
    return env


def _python(code: str, *, env: dict[str, str], cwd: Path = ROOT) -> str:
    done = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def _assert_stdlib(report: dict) -> None:
    assert Path(report["file"]).parent == Path(report["stdlib"]), report["file"]
    assert report["roundtrip"] is True
    # Unpickled by a plain interpreter that knows nothing of calltrack (isolated mode, another folder).
    plain = subprocess.run(
        [sys.executable, "-I", "-c", f"import numbers, pickle; print(pickle.loads(bytes.fromhex('{report['pickle']}')) is numbers.Integral)"],
        cwd="/", capture_output=True, text=True, timeout=60, check=False,
    )
    assert plain.stdout.strip() == "True", plain.stderr


def test_a_fresh_interpreter_started_from_the_project_root_imports_the_stdlib_numbers():
    report = json.loads(_python("import numbers, sys; sys.path.insert(0, '.'); " + REPORT, env=_env()))
    _assert_stdlib(report)
    assert report["app"] is None


def test_after_django_setup_numbers_is_still_the_stdlib_and_the_app_is_calltrack_numbers():
    # The project's modules first, then ``numbers``: import order cannot matter.
    code = "import django; django.setup(); import calltrack.numbers.models, calltrack.urls; " + REPORT
    report = json.loads(_python(code, env=_env()))
    _assert_stdlib(report)
    assert report["app"] == "calltrack.numbers"


def test_the_stdlib_numbers_wins_even_when_imported_before_calltrack():
    code = "import numbers, fractions, decimal; import django; django.setup(); " + REPORT
    report = json.loads(_python(code, env=_env()))
    _assert_stdlib(report)


@pytest.mark.slow
def test_a_gunicorn_worker_sees_the_stdlib_numbers(tmp_path):
    env = _env(DATABASE_URL=f"sqlite:///{tmp_path / 'g.sqlite3'}")
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "tests.calltrack.stdlib_probe:application", "-w", "1", "-b", f"127.0.0.1:{PORT}"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
    )
    try:
        deadline, body = time.monotonic() + 60, None
        while time.monotonic() < deadline and body is None:
            assert server.poll() is None, server.stderr.read().decode()[-2000:]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{PORT}/", timeout=10) as answer:
                    body = answer.read()
            except OSError:
                time.sleep(0.3)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=20)
        server.stderr.close()
    assert body is not None, "gunicorn never answered"
    report = json.loads(body)
    _assert_stdlib(report)
    assert report["app"] == "calltrack.numbers"


@pytest.mark.slow
def test_a_task_run_by_a_real_qcluster_sees_the_stdlib_numbers(tmp_path):
    db_path = tmp_path / "q.sqlite3"
    env = _env(DATABASE_URL=f"sqlite:///{db_path}", Q_WORKERS="1", Q_POLL="0.2")
    done = subprocess.run([sys.executable, "manage.py", "migrate", "--noinput"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stderr
    queue = "from django_q.tasks import async_task; print(async_task('tests.calltrack.stdlib_probe.numbers_report', task_name='probe'))"
    done = subprocess.run([sys.executable, "manage.py", "shell", "-c", queue], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    cluster = subprocess.Popen(
        [sys.executable, "manage.py", "qcluster"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
    )
    row = None
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and row is None:
            assert cluster.poll() is None, cluster.stderr.read().decode()[-2000:]
            time.sleep(0.5)
            with sqlite3.connect(db_path, timeout=10) as db:
                row = db.execute("SELECT success, result FROM django_q_task WHERE name = 'probe'").fetchone()
    finally:
        os.killpg(cluster.pid, signal.SIGTERM)
        try:
            cluster.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(cluster.pid, signal.SIGKILL)
            cluster.wait(timeout=5)
        cluster.stderr.close()
    assert row is not None, "the cluster never ran the task"
    success, result = row
    assert success, result
    report = json.loads(pickle.loads(base64.b64decode(result)))  # django-q2 keeps results as base64 pickles
    _assert_stdlib(report)
    assert report["app"] == "calltrack.numbers"
