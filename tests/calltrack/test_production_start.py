"""A production process (DEBUG off) refuses to start with unsafe settings; the README's configuration is clean."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PORT = 8112

# The configuration the README's "Security" section recommends (behind a TLS proxy).
RECOMMENDED = {
    "DEBUG": "false",
    "ALLOWED_HOSTS": "calls.example.com",
    "TWILIO_AUTH_TOKEN": "a-twilio-auth-token",
    "CALLTRACK_FAILSAFE_NUMBER": "+14155550100",
    "SECURE_PROXY_SSL": "true",
    "SECURE_SSL_REDIRECT": "true",
    "SECURE_HSTS_SECONDS": "31536000",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": "true",
    "SECURE_HSTS_PRELOAD": "true",
}


def _env(tmp_path: Path, **overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DEBUG", "SECRET_KEY", "SECURE_", "CALLTRACK_", "TWILIO_"))}
    env.update(
        RECOMMENDED, SECRET_KEY=secrets.token_urlsafe(50), DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        DJANGO_SETTINGS_MODULE="calltrack.settings", PYTHONPATH=str(ROOT),
    )
    env.update(overrides)
    return env


def _gunicorn(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "gunicorn", "calltrack.wsgi:application", "--bind", f"127.0.0.1:{PORT}", "--workers", "1"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False,
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    "overrides, reason",
    [
        ({"SECRET_KEY": "django-insecure-calltrack-development-key-change-me"}, "calltrack.E001"),
        ({"SECRET_KEY": "short-key"}, "calltrack.E001"),
        ({"SECRET_KEY": "changeme" * 5}, "security.W009"),
        ({"SECRET_KEY": "abcde" * 9}, "security.W009"),
        ({"ALLOWED_HOSTS": ""}, "calltrack.E002"),
        ({"CALLTRACK_VALIDATE_TWILIO_SIGNATURE": "false"}, "calltrack.E003"),
        ({"TWILIO_AUTH_TOKEN": ""}, "calltrack.E004"),
    ],
)
def test_gunicorn_with_debug_off_exits_at_start_on_unsafe_settings(tmp_path, overrides, reason):
    done = _gunicorn(_env(tmp_path, **overrides))

    assert done.returncode != 0  # the worker fails to boot and the arbiter exits; nothing is served
    assert "refusing to start with insecure production settings" in done.stderr
    assert reason in done.stderr


def test_debug_defaults_to_off(tmp_path):
    env = _env(tmp_path)
    del env["DEBUG"]
    done = subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); from django.conf import settings; "
         "print(settings.DEBUG, settings.SESSION_COOKIE_SECURE, settings.CSRF_COOKIE_SECURE, settings.CACHES['default']['BACKEND'])"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=True,
    )
    assert done.stdout.split() == ["False", "True", "True", "django.core.cache.backends.db.DatabaseCache"]


def test_check_deploy_is_clean_for_the_recommended_configuration(tmp_path):
    done = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env=_env(tmp_path), capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no issues" in done.stdout


@pytest.mark.slow
def test_the_shared_database_cache_works_out_of_the_box_with_debug_off(tmp_path):
    """DEBUG off and no CACHE_URL: the rate limits count in the database cache, whose table migrate creates."""
    env = _env(tmp_path)
    for command in (["migrate", "--noinput", "-v", "0"],
                    ["shell", "--no-imports", "-c", "from django.core.cache import cache; cache.set('k', 41); print(cache.incr('k'))"]):
        done = subprocess.run([sys.executable, "manage.py", *command], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().splitlines()[-1] == "42"


def test_development_commands_run_with_debug_off_and_check_deploy_still_reports(tmp_path):
    """makemigrations and the like need no production secrets; `check --deploy` lists what production lacks."""
    env = {k: v for k, v in _env(tmp_path).items() if k not in ("SECRET_KEY", "ALLOWED_HOSTS", "TWILIO_AUTH_TOKEN", "CALLTRACK_FAILSAFE_NUMBER")}
    env.pop("DEBUG", None)
    done = subprocess.run([sys.executable, "manage.py", "makemigrations", "--check", "--dry-run"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0 and "No changes detected" in done.stdout, done.stdout + done.stderr
    assert "calltrack.E00" not in done.stderr and "calltrack.W013" not in done.stderr
    done = subprocess.run([sys.executable, "manage.py", "check", "--deploy"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode != 0
    assert {"calltrack.E001", "calltrack.E002", "calltrack.E004", "calltrack.W013"} <= set(re.findall(r"calltrack\.[EW]\d+", done.stderr))


@pytest.mark.slow
def test_the_task_cluster_refuses_insecure_production_settings(tmp_path):
    env = _env(tmp_path, SECRET_KEY="short-key")
    done = subprocess.run([sys.executable, "manage.py", "qcluster"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode != 0
    assert "refusing to start with insecure production settings" in done.stderr and "calltrack.E001" in done.stderr
