"""Reports off the primary (issue 31): with a ``replica`` alias, the dashboard, the reports API and the CSV export
read there; /voice/incoming and every write stay on ``default``.

The replica is a second connection to the same test database (``TEST: {"MIRROR": "default"}``, as settings.py gives
the alias DATABASE_REPLICA_URL makes), so the tests commit their rows (``transaction=True``) for it to see them.
"""

from __future__ import annotations

import copy
import re

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connections
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from twilio.request_validator import RequestValidator

from calltrack import csv_export
from calltrack.db_router import PRIMARY, REPLICA, ReplicaRouter, replica_iter, replica_reads
from tests.numbers.factories import TrackingNumberFactory
from tests.tracking.factories import CampaignFactory, CampaignHandlerFactory, SourceFactory
from tracking.models import Call, Source

pytestmark = pytest.mark.django_db(transaction=True, databases=[PRIMARY, REPLICA])
TOKEN = "test-auth-token-0123456789abcdef"


@pytest.fixture(scope="module", autouse=True)
def _replica_alias(django_db_setup, django_db_blocker):
    """The alias settings.py makes from DATABASE_REPLICA_URL, mirroring the test database; only for this module."""
    default = connections[PRIMARY].settings_dict  # its NAME is the test database's by now
    settings.DATABASES[REPLICA] = {**copy.deepcopy(default), "TEST": {**default["TEST"], "MIRROR": PRIMARY}}
    # settings.py installs the router only with DATABASE_REPLICA_URL (as this alias stands for).
    with override_settings(DATABASE_ROUTERS=["calltrack.db_router.ReplicaRouter"]):
        yield
    connections[REPLICA].close()
    del connections[REPLICA]
    del settings.DATABASES[REPLICA]


@pytest.fixture
def call_sid(client, settings):
    settings.TWILIO_AUTH_TOKEN = TOKEN
    settings.CALLTRACK_VALIDATE_TWILIO_SIGNATURE = True
    settings.CALLTRACK_PUBLIC_BASE_URL = ""
    campaign = CampaignFactory(name="Roofing", failsafe_number="+13035550199")
    CampaignHandlerFactory(campaign=campaign)
    number = TrackingNumberFactory(campaign=campaign, source=SourceFactory(name="Google Ads"))
    params = {"CallSid": "CAreplica0001", "From": "+14155550100", "To": number.number, "CallStatus": "ringing"}
    signature = RequestValidator(TOKEN).compute_signature("http://testserver/voice/incoming", params)
    with CaptureQueriesContext(connections[REPLICA]) as on_replica, CaptureQueriesContext(connections[PRIMARY]) as on_primary:
        response = client.post("/voice/incoming", params, HTTP_X_TWILIO_SIGNATURE=signature)
    assert response.status_code == 200 and b"<Dial" in response.content
    # The voice path: nothing on the replica (not even a read), everything on the primary.
    assert on_replica.captured_queries == []
    assert on_primary.captured_queries
    assert Call.objects.filter(call_sid="CAreplica0001").exists()
    return "CAreplica0001"


@pytest.fixture
def staff_client(client):
    client.force_login(get_user_model().objects.create_superuser("boss", "boss@example.com", "pw-0123456789"))
    return client


def _writes(sql: str) -> bool:
    return bool(re.match(r"\s*(INSERT|UPDATE|DELETE)\b", sql, re.I)) or " FOR UPDATE" in sql.upper()


def _tables(captured: CaptureQueriesContext) -> str:
    return " ".join(q["sql"] for q in captured.captured_queries)


def test_voice_incoming_issues_no_statement_on_the_replica(call_sid):
    assert Call.objects.get(call_sid=call_sid).status


def test_the_dashboard_reads_its_figures_from_the_replica(call_sid, staff_client):
    with CaptureQueriesContext(connections[REPLICA]) as on_replica, CaptureQueriesContext(connections[PRIMARY]) as on_primary:
        response = staff_client.get("/admin/?range=today")

    assert response.status_code == 200
    assert response.context["dashboard"] is True
    assert '"tracking_call"' in _tables(on_replica)
    assert not [q["sql"] for q in on_replica.captured_queries if _writes(q["sql"])]
    # The primary still serves the session, the user and the alert episodes, but no call figures.
    assert '"tracking_call"' not in _tables(on_primary)


@pytest.mark.parametrize("path", ["/api/v1/reports/summary?range=today", "/api/v1/reports/timeseries?range=today",
                                  "/api/v1/reports/breakdown?range=today&by=campaign"])
def test_the_reports_api_reads_from_the_replica(call_sid, staff_client, path):
    with CaptureQueriesContext(connections[REPLICA]) as on_replica, CaptureQueriesContext(connections[PRIMARY]) as on_primary:
        response = staff_client.get(path)

    assert response.status_code == 200, response.content
    assert on_replica.captured_queries
    assert '"tracking_call"' not in _tables(on_primary)
    if "summary" in path:
        assert response.json()["current"]["calls"] == 1  # the committed call, seen through the replica


def test_the_call_export_streams_its_rows_from_the_replica(call_sid, staff_client, monkeypatch):
    copies: list[str] = []
    original = csv_export._copy_pieces

    def recorded(*, db, **kwargs):
        copies.append(db)
        return original(db=db, **kwargs)

    monkeypatch.setattr(csv_export, "_copy_pieces", recorded)
    with CaptureQueriesContext(connections[REPLICA]) as on_replica, CaptureQueriesContext(connections[PRIMARY]) as on_primary:
        response = staff_client.get(reverse("admin:tracking_call_export"))
        body = b"".join(response.streaming_content).decode()

    assert response.status_code == 200
    assert len(body.splitlines()) == 2  # the header and the one call
    assert '"tracking_call"' not in _tables(on_primary)
    if connections[PRIMARY].vendor == "postgresql":
        assert copies == [REPLICA]  # PostgreSQL writes the CSV (COPY) on the replica's connection
    else:
        assert copies == [] and '"tracking_call"' in _tables(on_replica)


def test_a_write_inside_replica_reads_goes_to_the_primary():
    source = Source.objects.create(name="Radio")
    with replica_reads(), CaptureQueriesContext(connections[REPLICA]) as on_replica, \
            CaptureQueriesContext(connections[PRIMARY]) as on_primary:
        read = Source.objects.get(pk=source.pk)
        read.name = "Radio (AM)"
        read.save(update_fields=["name"])

    assert read._state.db == PRIMARY  # saved on the primary, though read from the replica
    assert [q["sql"].split()[0] for q in on_replica.captured_queries] == ["SELECT"]
    assert any(q["sql"].startswith("UPDATE") for q in on_primary.captured_queries)
    assert Source.objects.get(pk=source.pk).name == "Radio (AM)"


def test_reads_go_to_the_primary_outside_the_context_or_without_a_replica(monkeypatch):
    router = ReplicaRouter()

    assert router.db_for_read(Source) == PRIMARY
    with replica_reads():
        assert router.db_for_read(Source) == REPLICA
        assert router.db_for_write(Source) == PRIMARY
        monkeypatch.delitem(settings.DATABASES, REPLICA)
        assert router.db_for_read(Source) == PRIMARY
    assert router.allow_migrate(REPLICA, "tracking") is False and router.allow_migrate(PRIMARY, "tracking") is True


def test_a_streamed_iterable_reads_each_step_on_the_replica_and_leaves_the_context_between_steps():
    Source.objects.create(name="Radio")
    seen: list[str] = []

    def steps():
        for _ in range(2):
            seen.append(Source.objects.all().db)
            yield len(seen)

    streamed = replica_iter(steps())
    assert next(streamed) == 1
    assert Source.objects.all().db == PRIMARY  # between steps: the primary again
    assert list(streamed) == [2]
    assert seen == [REPLICA, REPLICA]
