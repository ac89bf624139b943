"""The API of alerts, fraud monitors and a source's pause: the gate decides who reads which alert and who writes."""

from __future__ import annotations

import pytest

from tests.api.conftest import grant, token_client
from tests.tracking.factories import UserFactory
from tracking.models import Alert, FraudMonitor, MonitorKind, Source
from tracking.services.alerts import AlertSpec, alert_raise
from tracking.services.monitors import source_pause

pytestmark = pytest.mark.django_db


@pytest.fixture
def alerts(world):
    mine = alert_raise(spec=AlertSpec(kind="fraud_monitor", key="m:mine", message="about mine", source_id=world.source.pk))
    other = alert_raise(spec=AlertSpec(kind="fraud_monitor", key="m:other", message="about other", source_id=world.other_source.pk))
    buyer = alert_raise(spec=AlertSpec(kind="handler_cap", key="h:mine", message="about the handler", handler_id=world.handler.pk))
    general = alert_raise(spec=AlertSpec(kind="webhook_failing", key="w:1", message="webhooks failing"))
    return mine, other, buyer, general


def test_staff_list_every_alert_and_collaborators_only_their_own(staff, source_collaborator, handler_collaborator, alerts):
    mine, other, buyer, general = alerts
    assert {a["id"] for a in staff.get("/api/v1/alerts/").json()["results"]} == {a.pk for a in alerts}
    listed = source_collaborator.get("/api/v1/alerts/").json()["results"]
    assert [a["id"] for a in listed] == [mine.pk] and "handler" not in listed[0] and "monitor" not in listed[0]
    assert [a["id"] for a in handler_collaborator.get("/api/v1/alerts/").json()["results"]] == [buyer.pk]
    assert source_collaborator.get(f"/api/v1/alerts/{other.pk}/").status_code == 404
    assert staff.get("/api/v1/alerts/", {"is_open": "true", "kind": "fraud_monitor"}).json()["count"] == 2


def test_acknowledging_needs_the_change_permission_and_is_refused_to_collaborators(staff, source_collaborator, alerts):
    mine = alerts[0]
    assert source_collaborator.post(f"/api/v1/alerts/{mine.pk}/acknowledge/").status_code == 403
    viewer = UserFactory(username="viewer", is_staff=True)
    grant(viewer, "tracking.view_alert")
    assert token_client(viewer).post(f"/api/v1/alerts/{mine.pk}/acknowledge/").status_code == 403
    response = staff.post(f"/api/v1/alerts/{mine.pk}/acknowledge/")
    assert response.status_code == 200 and response.json()["acknowledged_at"]
    assert Alert.objects.get(pk=mine.pk).acknowledged_at is not None


def test_resuming_a_source_needs_the_write_permission(staff, source_collaborator, world):
    source_pause(source=world.source, reason="Short calls: short 40%")
    url = f"/api/v1/sources/{world.source.pk}/resume/"
    assert source_collaborator.post(url).status_code == 403
    viewer = UserFactory(username="viewer", is_staff=True)
    grant(viewer, "tracking.view_source")
    assert token_client(viewer).post(url).status_code == 403
    assert Source.objects.get(pk=world.source.pk).paused_at is not None
    assert staff.get(f"/api/v1/sources/{world.source.pk}/").json()["paused_reason"] == "Short calls: short 40%"
    response = staff.post(url)
    assert response.status_code == 200 and response.json()["paused_at"] is None
    assert Source.objects.get(pk=world.source.pk).paused_at is None
    response = staff.post(f"/api/v1/sources/{world.source.pk}/pause/")
    assert response.status_code == 200 and response.json()["paused_at"] and "paused by staff" in response.json()["paused_reason"]


def test_a_source_edit_through_the_api_does_not_write_its_pause_back(staff, world):
    source = Source.objects.get(pk=world.source.pk)
    source_pause(source=Source.objects.get(pk=world.source.pk), reason="by a monitor")
    # The API loads the row, a monitor paused it meanwhile (above, on another instance): the edit keeps the pause.
    response = staff.patch(f"/api/v1/sources/{source.pk}/", {"notes": "n", "paused_at": None}, format="json")
    assert response.status_code == 200
    assert Source.objects.get(pk=source.pk).paused_at is not None


def test_monitors_are_configured_through_the_api_with_their_validation(staff, source_collaborator, world):
    body = {"name": "Short calls", "kind": MonitorKind.SHORT_CALLS, "source": world.source.pk, "threshold_points": 25,
            "min_calls": 10, "pause_source": True}
    response = staff.post("/api/v1/fraud-monitors/", body, format="json")
    assert response.status_code == 201, response.json()
    monitor = FraudMonitor.objects.get()
    assert (monitor.source_id, monitor.threshold_points, monitor.pause_source, monitor.window_minutes) == (world.source.pk, 25, True, 60)
    refused = staff.post("/api/v1/fraud-monitors/", {**body, "handler": world.handler.pk}, format="json")
    assert refused.status_code == 400 and "handler" in refused.json()
    assert staff.patch(f"/api/v1/fraud-monitors/{monitor.pk}/", {"threshold_points": 0}, format="json").status_code == 400
    assert source_collaborator.get("/api/v1/fraud-monitors/").status_code == 403


def test_recipients_refuse_a_private_webhook_address_and_take_known_kinds_only(staff):
    response = staff.post("/api/v1/alert-recipients/", {"name": "Ops", "webhook_url": "http://10.0.0.5/hook"}, format="json")
    assert response.status_code == 400 and "webhook_url" in response.json()
    response = staff.post("/api/v1/alert-recipients/", {"name": "Ops", "email": "ops@example.com", "kinds": ["nope"]}, format="json")
    assert response.status_code == 400
    response = staff.post("/api/v1/alert-recipients/", {"name": "Ops", "email": "ops@example.com", "kinds": ["fraud_monitor"]}, format="json")
    assert response.status_code == 201 and response.json()["kinds"] == ["fraud_monitor"]
