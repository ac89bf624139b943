"""Conversion destinations and uploads on the operator's surfaces: the API (through the permission gate, credentials
write-only), the admin (write-only credentials, the call page's uploads, the call log's filter, revoking), the
dashboard's "sent to ad platforms" figure and its alert."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.tracking.factories import CallFactory, CampaignFactory
from tracking.models import Call, ConversionDestination, ConversionUpload

pytestmark = pytest.mark.django_db

SECRET = "mp-secret-value-9f8e7d"


def test_staff_create_a_destination_whose_credentials_are_never_returned(staff, world):
    body = {"campaign": world.campaign.pk, "name": "GA4 property", "kind": "ga4", "account_id": "G-ABC123", "trigger": "qualified",
            "min_talk_time": 90, "credentials": {"api_secret": SECRET}}
    created = staff.post("/api/v1/conversion-destinations/", body, format="json")
    assert created.status_code == 201, created.content
    assert SECRET not in created.content.decode() and created.json()["credential_names"] == ["api_secret"]
    destination = ConversionDestination.objects.get(pk=created.json()["id"])
    assert destination.credentials == {"api_secret": SECRET}
    listed = staff.get("/api/v1/conversion-destinations/", {"campaign": world.campaign.pk})
    assert SECRET not in listed.content.decode() and listed.json()["results"][0]["name"] == "GA4 property"
    # A change without credentials keeps them; a name set to "" removes it.
    assert staff.patch(f"/api/v1/conversion-destinations/{destination.pk}/", {"enabled": False}, format="json").status_code == 200
    destination.refresh_from_db()
    assert (destination.enabled, destination.credentials) == (False, {"api_secret": SECRET})
    staff.patch(f"/api/v1/conversion-destinations/{destination.pk}/", {"credentials": {"api_secret": ""}}, format="json")
    destination.refresh_from_db()
    assert destination.credentials == {}


def test_a_destination_missing_what_its_platform_needs_is_refused_with_the_field(staff, world):
    answer = staff.post("/api/v1/conversion-destinations/", {"campaign": world.campaign.pk, "name": "G", "kind": "google_ads",
                                                              "account_id": "12-34-56-78", "account_timezone": "Mars/Base"}, format="json")
    assert answer.status_code == 400
    assert set(answer.json()) >= {"conversion_action", "account_timezone"}


def test_collaborators_neither_see_destinations_nor_their_calls_uploads(source_collaborator, handler_collaborator, staff, world):
    destination = ConversionDestination.objects.create(campaign=world.campaign, name="Local")
    ConversionUpload.objects.create(call=world.call_mine, destination=destination, status="sent", reason="recorded locally, nothing sent")
    for client in (source_collaborator, handler_collaborator):
        assert client.get("/api/v1/conversion-destinations/").status_code == 403
        assert client.get(f"/api/v1/calls/{world.call_mine.pk}/").json()["conversion_uploads"] == []
    uploads = staff.get(f"/api/v1/calls/{world.call_mine.pk}/").json()["conversion_uploads"]
    assert uploads == [{
        "destination": destination.pk, "destination_name": "Local", "platform": "local", "status": "sent",
        "reason": "recorded locally, nothing sent", "value": "0.00", "currency": "", "adjustment": "", "platform_id": "",
        "attempts": 0, "next_try_at": None, "sent_at": None,
    }]


def test_the_api_revokes_a_conversion_once(staff, world, django_capture_on_commit_callbacks):
    Call.objects.filter(pk=world.call_mine.pk).update(converted=True, revenue_converted=True, converted_at=timezone.now())
    with django_capture_on_commit_callbacks(execute=True):
        answer = staff.delete(f"/api/v1/calls/{world.call_mine.pk}/conversion?reason=cancelled")
    assert answer.status_code == 200 and answer.json()["converted"] is False and answer.json()["revenue"] == "0.00"
    again = staff.delete(f"/api/v1/calls/{world.call_mine.pk}/conversion")
    assert again.status_code == 422 and "no conversion to revoke" in again.json()["detail"]


def test_the_admin_keeps_credentials_write_only(admin_client):
    campaign = CampaignFactory()
    form = {"campaign": campaign.pk, "name": "Meta pixel", "kind": "meta", "enabled": "on", "trigger": "revenue", "min_talk_time": 60,
            "value_from": "conversion", "fixed_value": "0", "currency": "USD", "delay_minutes": 0, "account_id": "555000",
            "conversion_action": "", "account_timezone": "UTC", "new_credentials": '{"access_token": "EAAB-secret-token"}'}
    answer = admin_client.post(reverse("admin:tracking_conversiondestination_add"), form)
    assert answer.status_code == 302, answer.content.decode()[:3000]
    destination = ConversionDestination.objects.get(name="Meta pixel")
    assert destination.credentials == {"access_token": "EAAB-secret-token"}
    page = admin_client.get(reverse("admin:tracking_conversiondestination_change", args=[destination.pk])).content.decode()
    assert "EAAB-secret-token" not in page and "access_token: ••••••" in page
    changed = admin_client.post(reverse("admin:tracking_conversiondestination_change", args=[destination.pk]),
                                {**form, "name": "Meta", "new_credentials": ""})
    assert changed.status_code == 302
    destination.refresh_from_db()
    assert (destination.name, destination.credentials) == ("Meta", {"access_token": "EAAB-secret-token"})
    bad = admin_client.post(reverse("admin:tracking_conversiondestination_change", args=[destination.pk]), {**form, "new_credentials": "[1]"})
    assert bad.status_code == 200 and "A JSON object of names to strings" in bad.content.decode()


def test_the_call_page_shows_its_uploads_and_the_log_filters_on_their_status(admin_client):
    campaign = CampaignFactory()
    destination = ConversionDestination.objects.create(campaign=campaign, name="Google (main)", kind="google_ads", account_id="1", conversion_action="2")
    refused, sent, none = (CallFactory(campaign=campaign, started_at=timezone.now() - timedelta(minutes=m)) for m in (1, 2, 3))
    ConversionUpload.objects.create(call=refused, destination=destination, status="refused", reason="Google Ads: The click is too old.")
    ConversionUpload.objects.create(call=sent, destination=destination, status="sent", reason="accepted", platform_id=f"call-{sent.pk}")
    page = admin_client.get(reverse("admin:tracking_call_change", args=[refused.pk])).content.decode()
    assert 'id="call-ad-uploads"' in page and "Google (main)" in page and "Google Ads: The click is too old." in page
    log = reverse("admin:tracking_call_changelist")
    listed = admin_client.get(log, {"ad_upload": "refused"}).context["cl"].result_list
    assert [c.pk for c in listed] == [refused.pk]
    assert [c.pk for c in admin_client.get(log, {"ad_upload": "none"}).context["cl"].result_list] == [none.pk]
    assert admin_client.get(log, {"ad_upload": "bogus"}).status_code == 302  # the log's "incorrect lookup" redirect


def test_the_admin_action_revokes_the_selected_calls_conversions(admin_client, django_capture_on_commit_callbacks):
    call = CallFactory(converted=True, revenue_converted=True, revenue=Decimal("30"), converted_at=timezone.now())
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(reverse("admin:tracking_call_changelist"), {"action": "revoke_conversion", "_selected_action": [call.pk]})
    call.refresh_from_db()
    assert (call.converted, call.revenue) == (False, Decimal("0"))
    assert call.conversion_reason.startswith("revoked (admin)")


def test_the_dashboard_counts_what_was_sent_to_each_destination_and_alerts_on_refusals(admin_client):
    campaign = CampaignFactory()
    google = ConversionDestination.objects.create(campaign=campaign, name="Google", kind="google_ads", account_id="1", conversion_action="2")
    local = ConversionDestination.objects.create(campaign=campaign, name="Local")
    for status in ("sent", "sent", "refused", "not_eligible"):
        ConversionUpload.objects.create(call=CallFactory(campaign=campaign), destination=google, status=status)
    ConversionUpload.objects.create(call=CallFactory(campaign=campaign), destination=local, status="pending")
    context = admin_client.get(reverse("admin:index")).context
    figures = {u["name"]: (u["sent"], u["refused"], u["not_eligible"], u["pending"]) for u in context["ad_uploads"]}
    assert figures == {"Google": (2, 1, 1, 0), "Local": (0, 0, 0, 1)}
    alerts = [a for a in context["alerts"] if a["kind"] == "ad_uploads_failing"]
    assert [a["message"] for a in alerts] == ["1 upload to Google refused by the platform"]
    assert alerts[0]["url"].endswith(f"?destination__id__exact={google.pk}&status__exact=refused")


def test_refused_uploads_become_an_alert_episode_sent_once_and_cleared_with_them(mailoutbox, settings):
    """The scheduled alerts check keeps the dashboard's "uploads refused" flag as an alert (issue 28's kinds)."""
    from calltrack.alerts_check import report_conditions_sync
    from tracking.models import Alert, AlertRecipient
    from tracking.services.alerts import alerts_notify

    AlertRecipient.objects.create(name="Ops", email="ops@example.com")
    campaign = CampaignFactory()
    google = ConversionDestination.objects.create(campaign=campaign, name="Google", kind="google_ads", account_id="1", conversion_action="2")
    refused = ConversionUpload.objects.create(call=CallFactory(campaign=campaign), destination=google, status="refused")
    (alert,) = report_conditions_sync()
    assert (alert.kind, alert.message) == ("ad_uploads_failing", "1 upload to Google refused by the platform")
    assert alert.url.endswith(f"?destination__id__exact={google.pk}&status__exact=refused")
    alerts_notify(alert_ids=[alert.pk])
    alerts_notify(alert_ids=[alert.pk])
    assert len(mailoutbox) == 1 and "refused" in mailoutbox[0].body
    assert report_conditions_sync() == []  # the same episode
    refused.delete()
    report_conditions_sync()
    assert Alert.objects.get().cleared_at is not None


def test_the_api_restates_a_conversions_value_for_staff_only_and_refuses_bad_values(staff, handler_collaborator, world,
                                                                                    django_capture_on_commit_callbacks):
    Call.objects.filter(pk=world.call_mine.pk).update(converted=True, revenue_converted=True, converted_at=timezone.now())
    url = f"/api/v1/calls/{world.call_mine.pk}/conversion"
    assert handler_collaborator.patch(url, {"revenue": "5"}, format="json").status_code == 403
    for bad in ({}, {"revenue": "-1"}, {"revenue": "1e20"}, {"revenue": "12\x00"}, {"payout": "abc"}):
        answer = staff.patch(url, bad, format="json")
        assert answer.status_code == 400, (bad, answer.content)
    with django_capture_on_commit_callbacks(execute=True):
        answer = staff.patch(url, {"revenue": "80.00"}, format="json")
    assert answer.status_code == 200 and answer.json()["revenue"] == "80.00"
    assert Call.objects.get(pk=world.call_mine.pk).revenue == Decimal("80.00")
    other = staff.patch(f"/api/v1/calls/{world.call_other.pk}/conversion", {"revenue": "1"}, format="json")
    assert other.status_code == 422 and "did not convert" in other.json()["detail"]


def test_the_admin_action_restates_the_selected_calls_after_asking_the_new_value(admin_client, django_capture_on_commit_callbacks):
    call = CallFactory(converted=True, revenue_converted=True, revenue=Decimal("30"), converted_at=timezone.now())
    log = reverse("admin:tracking_call_changelist")
    page = admin_client.post(log, {"action": "restate_conversion", "_selected_action": [call.pk]})
    assert page.status_code == 200 and b'id="restate-conversion"' in page.content and b"revenue 30.00" in page.content
    empty = admin_client.post(log, {"action": "restate_conversion", "_selected_action": [call.pk], "apply": "1"})
    assert b"Give a new revenue, a new payout, or both." in empty.content
    with django_capture_on_commit_callbacks(execute=True):
        done = admin_client.post(log, {"action": "restate_conversion", "_selected_action": [call.pk], "apply": "1", "revenue": "45.50"})
    assert done.status_code == 302
    call.refresh_from_db()
    assert call.revenue == Decimal("45.50")
    assert call.events.filter(kind="call.conversion_restated").exists()


def test_a_user_without_the_change_call_permission_gets_no_restate_action(client):
    from django.contrib.auth.models import Permission

    from tests.tracking.factories import UserFactory

    viewer = UserFactory(is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_call"))
    client.force_login(viewer)
    page = client.get(reverse("admin:tracking_call_changelist"))
    assert page.status_code == 200 and b"restate_conversion" not in page.content
    tried = client.post(reverse("admin:tracking_call_changelist"), {"action": "restate_conversion", "_selected_action": [1]})
    assert b'id="restate-conversion"' not in tried.content  # the gate refuses the action itself, not only its menu entry


def test_the_api_marks_a_source_as_google_call_asset_calls(staff, world):
    answer = staff.patch(f"/api/v1/sources/{world.source.pk}/", {"google_call_asset": True}, format="json")
    assert answer.status_code == 200 and answer.json()["google_call_asset"] is True
    world.source.refresh_from_db()
    assert world.source.google_call_asset is True
    assert staff.patch(f"/api/v1/sources/{world.source.pk}/", {"google_call_asset": "maybe"}, format="json").status_code == 400
