"""The Dockerfile and compose.yaml agree with the settings, the checks and the README (issue 31, "A container").

Docker is not run here: the files are read, and what they would give a process is checked against the code that
reads it (calltrack/settings.py, calltrack/checks.py, calltrack/urls.py).
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
import yaml
from django.test import override_settings
from django.urls import reverse

ROOT = Path(__file__).resolve().parents[2]
APP_PROCESSES = ("web", "worker", "migrate")
REQUIRED = re.compile(r"^\$\{(?P<var>[A-Z0-9_]+):\?[^}]+\}$")


def _compose() -> dict:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


def _dockerfile() -> list[tuple[str, str]]:
    """The Dockerfile's instructions as (KEYWORD, arguments), continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n\s*", " ", (ROOT / "Dockerfile").read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def _instruction(keyword: str) -> list[str]:
    return [args for kw, args in _dockerfile() if kw == keyword]


def _exec_form(args: str) -> list[str]:
    return json.loads(args)


def _settings_variables() -> dict[str, str]:
    """Setting name -> the environment variable it is read from (``NAME = env.kind("VAR", ...)``)."""
    src = (ROOT / "calltrack" / "settings.py").read_text()
    return dict(re.findall(r'^([A-Z][A-Z0-9_]*) = env(?:\.\w+)?\(\s*"([A-Z0-9_]+)"', src, re.M))


def _read_variables() -> set[str]:
    src = (ROOT / "calltrack" / "settings.py").read_text()
    return set(re.findall(r'env(?:\.\w+)?\(\s*"([A-Z0-9_]+)"', src))


def _resolved(environment: dict[str, str]) -> dict[str, str]:
    """What compose gives the process: required variables filled in as an operator would, defaults applied."""
    filled = {
        "SECRET_KEY": "k3" + "Xq9-vT7_pL2mN8wR4zY6bC1dF5gH0jK" * 2,
        "ALLOWED_HOSTS": "calls.example.com",
        "TWILIO_AUTH_TOKEN": "an-auth-token-from-the-twilio-console",
        "CALLTRACK_FAILSAFE_NUMBER": "+14155550100",
        "POSTGRES_PASSWORD": "pw",
    }

    def one(match: re.Match) -> str:
        var, op, word = match.group(1), match.group(2), match.group(3)
        if op == ":?":
            return filled[var]
        return word

    return {key: re.sub(r"\$\{([A-Z0-9_]+)(:\?|:-)([^}]*)\}", one, str(value)) for key, value in environment.items()}


# The production checks, run in a fresh interpreter once per environment given (settings are module-level: each
# environment reloads calltrack.settings). Prints the ids of the errors and warnings calltrack's checks raise.
PROBE = r"""
import importlib, json, os, sys
import django
from django import conf

scenarios = json.loads(sys.stdin.read())
base = {k: v for k, v in os.environ.items()}
results = []
for i, env in enumerate(scenarios):
    os.environ.clear()
    os.environ.update(base)
    os.environ.update(env["set"])
    for var in env["unset"]:
        os.environ.pop(var, None)
    if i == 0:
        django.setup()
    else:
        importlib.reload(importlib.import_module("calltrack.settings"))
        conf.settings._wrapped = conf.Settings("calltrack.settings")
    from calltrack import checks
    found = checks.production_settings() + checks.production_advice() + checks.calltrack_settings()
    results.append(sorted(p.id for p in found))
print(json.dumps(results))
"""


def _probe(scenarios: list[dict]) -> list[list[str]]:
    # Nothing of the test run's own configuration leaks in: the process sees only what compose would give it.
    base = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "DJANGO_SETTINGS_MODULE": "calltrack.settings"}
    assert not (ROOT / ".env").exists(), "a .env file would fill in what compose leaves out"
    done = subprocess.run(
        [sys.executable, "-c", PROBE], input=json.dumps(scenarios), cwd=ROOT, env=base,
        capture_output=True, text=True, timeout=120, check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_web_worker_and_migrate_share_one_environment_whose_keys_the_settings_read():
    services = _compose()["services"]
    environments = [services[name]["environment"] for name in APP_PROCESSES]

    assert environments[0] == environments[1] == environments[2]
    assert set(environments[0]) - _read_variables() == set()  # no misspelt variable silently ignored
    assert environments[0]["DEBUG"] == "false"


def test_secrets_are_required_variables_never_values():
    compose = _compose()
    env = compose["services"]["web"]["environment"]

    for var in ("SECRET_KEY", "TWILIO_AUTH_TOKEN"):
        assert REQUIRED.match(env[var]) and REQUIRED.match(env[var])["var"] == var
    assert re.search(r"\$\{POSTGRES_PASSWORD:\?[^}]+\}@db:5432/", env["DATABASE_URL"])
    assert REQUIRED.match(compose["services"]["db"]["environment"]["POSTGRES_PASSWORD"])


def test_the_compose_environment_passes_the_production_checks_and_each_variable_they_need_is_required():
    env = _compose()["services"]["web"]["environment"]
    settings_vars = _settings_variables()
    checks_src = (ROOT / "calltrack" / "checks.py").read_text()
    # Every variable behind a setting the production checks read; SECRET_KEY is judged by Django's check_secret_key.
    checked = {settings_vars[name] for name in re.findall(r"settings\.([A-Z][A-Z0-9_]*)", checks_src) if name in settings_vars}
    checked |= {"SECRET_KEY"}
    assert {"SECRET_KEY", "ALLOWED_HOSTS", "TWILIO_AUTH_TOKEN", "DEBUG"} <= checked
    candidates = sorted(checked - {"DEBUG"})
    resolved = _resolved(env)

    results = _probe([{"set": resolved, "unset": []}] + [
        {"set": {k: v for k, v in resolved.items() if k != var}, "unset": [var]} for var in candidates
    ])

    assert results[0] == []  # gunicorn and qcluster start, and check --deploy has nothing of calltrack's to say
    needed = {var for var, found in zip(candidates, results[1:], strict=True) if found}
    assert {"SECRET_KEY", "ALLOWED_HOSTS", "TWILIO_AUTH_TOKEN", "CALLTRACK_FAILSAFE_NUMBER"} <= needed
    for var in needed:
        match = REQUIRED.match(str(env.get(var, "")))
        assert match and match["var"] == var, f"{var} is needed in production: compose must require it"


def _readme_deployment() -> str:
    readme = (ROOT / "README.md").read_text()
    return readme.split("\n## Deployment\n", 1)[1].split("\n## ", 1)[0]


def test_the_commands_are_the_ones_the_readme_gives():
    services = _compose()["services"]
    readme = _readme_deployment()
    cmd = _exec_form(_instruction("CMD")[-1])

    assert "command" not in services["web"]  # the image's CMD: gunicorn
    assert cmd[:2] == ["gunicorn", "calltrack.wsgi:application"]
    assert f"`{' '.join(cmd[:cmd.index('--workers') + 2])}`" in readme
    assert services["worker"]["command"] == ["python", "manage.py", "qcluster"]
    assert "`python manage.py qcluster`" in readme
    shell = services["migrate"]["command"]
    assert shell[:2] == ["sh", "-c"]
    steps = [shlex.split(step) for step in shell[2].split("&&")]
    assert steps == [["python", "manage.py", "migrate", "--noinput"], ["python", "manage.py", "calltrack_schedules"]]
    assert f"`{shell[2]}`" in readme
    assert services["migrate"]["restart"] == "no"
    for name in ("web", "worker"):
        assert services[name]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    assert {"db", "redis"} <= set(services)


def test_the_image_runs_as_a_user_who_is_not_root():
    users = _instruction("USER")
    keywords = [kw for kw, _ in _dockerfile()]

    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert keywords.index("USER") > max(i for i, kw in enumerate(keywords) if kw == "RUN")  # nothing runs as root after


def test_the_image_installs_requirements_and_collects_static_files_for_whitenoise():
    runs = " ".join(_instruction("RUN"))
    from django.conf import settings

    assert _instruction("FROM")[0].startswith("python:3.11-slim")
    assert "pip install -r requirements.txt" in runs
    assert "manage.py collectstatic --noinput" in runs
    assert "whitenoise.middleware.WhiteNoiseMiddleware" in settings.MIDDLEWARE
    assert settings.MIDDLEWARE.index("whitenoise.middleware.WhiteNoiseMiddleware") == (
        settings.MIDDLEWARE.index("django.middleware.security.SecurityMiddleware") + 1
    )
    env_line = " ".join(_instruction("ENV"))
    assert re.search(r"STATIC_ROOT=(\S+)", env_line)


def test_the_image_exposes_the_port_gunicorn_binds():
    cmd = _exec_form(_instruction("CMD")[-1])
    bind = cmd[cmd.index("--bind") + 1]
    web_ports = _compose()["services"]["web"]["ports"]

    assert _instruction("EXPOSE") == [bind.rsplit(":", 1)[1]]
    assert bind.startswith("0.0.0.0:")
    assert all(port.endswith(":" + bind.rsplit(":", 1)[1]) for port in web_ports)


@pytest.mark.django_db
def test_the_healthcheck_asks_healthz_with_a_host_the_app_accepts(monkeypatch, client):
    check = _instruction("HEALTHCHECK")[0]
    exec_form = _exec_form(check.split("CMD", 1)[1].strip())
    assert exec_form[:2] == ["python", "-c"]  # no curl in the slim image
    env = _resolved(_compose()["services"]["web"]["environment"])
    asked: list[urllib.request.Request] = []
    monkeypatch.setattr(urllib.request, "urlopen", lambda request, timeout: asked.append(request))
    monkeypatch.setenv("ALLOWED_HOSTS", env["ALLOWED_HOSTS"])

    exec(exec_form[2], {})  # the health check's own code, with urlopen recorded instead of sent

    (request,) = asked
    url = urllib.request.urlparse(request.full_url)
    assert url.path == reverse("healthz") == "/healthz"
    assert str(url.port) == _instruction("EXPOSE")[0]
    with override_settings(ALLOWED_HOSTS=env["ALLOWED_HOSTS"].split(","), SECURE_SSL_REDIRECT=True):
        response = client.get(url.path, HTTP_HOST=request.get_header("Host"))
    assert response.status_code == 200 and response.json() == {"ok": True}


def test_the_build_context_leaves_out_secrets_and_local_state():
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines() if line.strip() and not line.startswith("#")}

    assert {".env", ".git", ".venv", "db.sqlite3", "/media", "/staticfiles"} <= ignored
