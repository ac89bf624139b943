"""Structured logs (issue 31, "Observability"): LOG_FORMAT=json writes one JSON object a line, and the records of a
background task carry its id, a webhook delivery's the CallSid of its call. The voice webhooks' own records:
tests/routing/test_voice_metrics.py."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.utils.module_loading import import_string
from django_q.signals import post_execute_in_worker, pre_execute

from calltrack.logs import ContextFilter, log_context, logging_config
from tests.tracking.factories import CallFactory, CampaignFactory, WebhookFactory
from tests.tracking.receiver import receiver, run_queued_tasks
from tracking.models import CallStatus
from tracking.services.webhooks import webhook_deliveries_queue

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def json_lines():
    config = logging_config(log_format="json", level="INFO")
    options = dict(config["formatters"]["json"])
    handler = logging.StreamHandler(stream := io.StringIO())
    handler.setFormatter(import_string(options.pop("()"))(**options))
    handler.addFilter(ContextFilter())
    logging.getLogger().addHandler(handler)
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        logging.getLogger().removeHandler(handler)


def test_a_task_run_by_the_cluster_logs_with_its_id_and_name_and_nothing_is_left_after_it(json_lines):
    task = {"id": "4f1c9a", "name": "webhook-delivery-7", "func": "tracking.tasks.webhook_deliver"}

    pre_execute.send(sender="django_q", func=None, task=task)  # as django-q2's worker does around each task
    logging.getLogger("calltrack.test").warning("inside the task")
    post_execute_in_worker.send(sender="django_q", func=None, task=task)
    logging.getLogger("calltrack.test").warning("after the task")

    inside, after = [line for line in json_lines() if line["logger"] == "calltrack.test"]
    assert (inside["task_id"], inside["task_name"], inside["message"]) == ("4f1c9a", "webhook-delivery-7", "inside the task")
    assert "task_id" not in after and dict(log_context()) == {}


@pytest.mark.django_db
def test_a_failed_webhook_delivery_logs_a_warning_carrying_its_calls_call_sid(settings, json_lines, django_capture_on_commit_callbacks):
    settings.CALLTRACK_OUTBOUND_ALLOW = ["127.0.0.1"]
    call = CallFactory(campaign=CampaignFactory(), status=CallStatus.COMPLETED, call_sid="CAwebhooklog")
    with receiver((410, 0)) as rx:
        WebhookFactory(campaign=call.campaign, url=rx.url(), events=["call.completed"])
        with django_capture_on_commit_callbacks(execute=True):
            (delivery,) = webhook_deliveries_queue(call=call, event="call.completed")
        run_queued_tasks()

    (line,) = [line for line in json_lines() if line["logger"] == "calltrack.webhooks"]
    assert line["level"] == "WARNING" and line["call_sid"] == "CAwebhooklog" and line["webhook_delivery"] == str(delivery.pk)
    assert "HTTP 410" in line["message"]


def test_an_unknown_log_format_is_refused():
    with pytest.raises(ValueError, match="LOG_FORMAT must be plain or json"):
        logging_config(log_format="xml", level="INFO")


PROCESS = """
import logging, django
django.setup()
logging.getLogger("calltrack.routing").warning("hello %s", "operator")
"""


@pytest.mark.parametrize("log_format", ["json", "plain"])
def test_log_format_in_the_environment_chooses_the_lines_a_process_writes(log_format):
    env = {**os.environ, "LOG_FORMAT": log_format, "DJANGO_SETTINGS_MODULE": "calltrack.settings", "PYTHONPATH": str(ROOT)}

    done = subprocess.run([sys.executable, "-c", PROCESS], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60, check=True)

    last = done.stderr.strip().splitlines()[-1]
    if log_format == "json":
        line = json.loads(last)
        assert (line["logger"], line["level"], line["message"]) == ("calltrack.routing", "WARNING", "hello operator")
    else:
        assert last.endswith("WARNING calltrack.routing hello operator")
