"""The voice path's figures and logs (issue 31, "Observability"): each Twilio webhook is timed by endpoint, each
committed decision counted by outcome, each fail-safe answer by cause; a call in progress shows at the next scrape;
every record logged while answering carries the CallSid (one JSON object a line with LOG_FORMAT=json). None of it
costs the voice path a statement: the budgets of tests/routing/test_voice_queries.py hold, and are checked here too.
"""

from __future__ import annotations

import io
import json
import logging

import pytest
from django.utils.module_loading import import_string

from calltrack.logs import ContextFilter, logging_config
from tests.calltrack.metrics_scrape import scrape
from tests.routing.test_fallback import TWILIO_FALLBACK, database_down  # noqa: F401 - a fixture
from tests.routing.test_voice_queries import EXPECTED_QUERIES, campaign_with, warm
from tracking.models import Campaign

CALLER = "+14155550100"


@pytest.mark.django_db
def test_a_routed_call_is_timed_counted_and_in_progress_until_its_final_status(twilio, client, settings):
    tn = campaign_with(2)
    before = scrape(client, settings)

    response = twilio.post("/voice/incoming", {"CallSid": "CAmetrics1", "From": CALLER, "To": tn.number})
    during = scrape(client, settings)
    twilio.post("/voice/status", {"CallSid": "CAmetrics1", "CallStatus": "completed", "CallDuration": "30"})
    after = scrape(client, settings)

    assert b"<Dial" in response.content
    incoming = "calltrack_voice_webhook_seconds_count"
    assert during.value(incoming, endpoint="incoming") == before.value(incoming, endpoint="incoming") + 1
    assert after.value(incoming, endpoint="status") == before.value(incoming, endpoint="status") + 1
    assert during.value("calltrack_decisions_total", outcome="routed") == before.value("calltrack_decisions_total", outcome="routed") + 1
    assert during.value("calltrack_calls_in_progress") == before.value("calltrack_calls_in_progress") + 1
    assert after.value("calltrack_calls_in_progress") == before.value("calltrack_calls_in_progress")
    assert during.value("calltrack_failsafe_answers_total", cause="error") == before.value("calltrack_failsafe_answers_total", cause="error")


@pytest.mark.django_db
def test_a_retried_webhook_is_answered_again_but_its_decision_counted_once(twilio, client, settings):
    tn = campaign_with(1)
    before = scrape(client, settings)

    for _ in range(2):
        twilio.post("/voice/incoming", {"CallSid": "CAretried", "From": CALLER, "To": tn.number})

    after = scrape(client, settings)
    assert after.value("calltrack_voice_webhook_seconds_count", endpoint="incoming") == before.value("calltrack_voice_webhook_seconds_count", endpoint="incoming") + 2
    assert after.value("calltrack_decisions_total", outcome="routed") == before.value("calltrack_decisions_total", outcome="routed") + 1


@pytest.mark.django_db
def test_a_call_that_cannot_be_routed_counts_a_failsafe_answer_for_an_error(twilio, client, settings):
    before = scrape(client, settings)

    response = twilio.post("/voice/incoming", {"CallSid": "CAnowhere", "From": CALLER, "To": "+13035550123"})

    after = scrape(client, settings)
    assert response.status_code == 200
    assert after.value("calltrack_failsafe_answers_total", cause="error") == before.value("calltrack_failsafe_answers_total", cause="error") + 1
    assert after.value("calltrack_decisions_total", outcome="failsafe") == before.value("calltrack_decisions_total", outcome="failsafe") + 1


@pytest.mark.django_db
def test_a_disabled_campaigns_call_counts_a_failsafe_answer_for_its_cause(twilio, client, settings):
    tn = campaign_with(1)
    Campaign.objects.filter(pk=tn.campaign_id).update(enabled=False)
    before = scrape(client, settings)

    twilio.post("/voice/incoming", {"CallSid": "CAdisabled", "From": CALLER, "To": tn.number})

    after = scrape(client, settings)
    cause = "calltrack_failsafe_answers_total"
    assert after.value(cause, cause="campaign_disabled") == before.value(cause, cause="campaign_disabled") + 1
    assert after.value(cause, cause="error") == before.value(cause, cause="error")
    assert after.value("calltrack_decisions_total", outcome="failsafe") == before.value("calltrack_decisions_total", outcome="failsafe") + 1


def test_the_fallback_url_counts_its_failsafe_answer_and_metrics_still_answer_with_the_database_down(twilio, client, settings, database_down):  # noqa: F811
    before = scrape(client, settings)

    twilio.post("/voice/fallback", TWILIO_FALLBACK)

    after = scrape(client, settings)  # the process's figures; the database's are left out (and logged)
    assert after.value("calltrack_failsafe_answers_total", cause="fallback_url") == before.value("calltrack_failsafe_answers_total", cause="fallback_url") + 1
    assert "calltrack_calls_in_progress" not in after.names()


@pytest.mark.django_db
def test_the_figures_cost_the_voice_path_no_statement(twilio, django_assert_num_queries, client, settings):
    tn = campaign_with(5)
    warm(twilio, tn)
    before = scrape(client, settings)

    with django_assert_num_queries(EXPECTED_QUERIES):  # the budget of test_voice_queries, unchanged
        twilio.post("/voice/incoming", {"CallSid": "CAbudget", "From": CALLER, "To": tn.number})

    assert scrape(client, settings).value("calltrack_decisions_total", outcome="routed") == before.value("calltrack_decisions_total", outcome="routed") + 1


@pytest.fixture
def json_lines():
    """The root logger's records as LOG_FORMAT=json writes them (the formatter and filter of settings.LOGGING)."""
    config = logging_config(log_format="json", level="INFO")
    options = dict(config["formatters"]["json"])
    formatter = import_string(options.pop("()"))(**options)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        root.removeHandler(handler)


@pytest.mark.django_db
def test_a_voice_webhook_that_logs_writes_a_json_line_with_the_call_sid(twilio, json_lines):
    response = twilio.post("/voice/incoming", {"CallSid": "CAjsonlog", "From": CALLER, "To": "+13035550123"},
                           HTTP_I_TWILIO_IDEMPOTENCY_TOKEN="idem-123")

    assert response.status_code == 200
    lines = [line for line in json_lines() if line["logger"] == "calltrack.routing"]
    assert lines, "the failed routing is logged"
    assert {(line["call_sid"], line["request_id"], line["level"]) for line in lines} == {("CAjsonlog", "idem-123", "ERROR")}
    assert "CAjsonlog" in lines[0]["message"] and "time" in lines[0]


@pytest.mark.django_db
def test_records_logged_after_the_webhook_carry_no_call_sid(twilio, json_lines):
    twilio.post("/voice/incoming", {"CallSid": "CAbefore", "From": CALLER, "To": "+13035550123"})
    logging.getLogger("calltrack.routing").warning("between requests")

    (line,) = [line for line in json_lines() if line["message"] == "between requests"]
    assert "call_sid" not in line and "request_id" not in line
