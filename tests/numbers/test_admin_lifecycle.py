from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse
from django.utils import timezone

from calltrack.numbers.models import NumberEvent, NumberStatus, PoolResize, PoolSample, PortRequest, TrackingNumber
from tests.numbers.factories import NumberPoolFactory, TrackingNumberFactory
from tests.tracking.factories import CampaignFactory, SourceFactory

pytestmark = pytest.mark.django_db
CHANGELIST = "admin:numbers_trackingnumber_changelist"


def act(client, action, numbers, **extra):
    data = {"action": action, ACTION_CHECKBOX_NAME: [n.pk for n in numbers], **extra}
    return client.post(reverse(CHANGELIST), data, follow=True)


def test_release_action_quarantines_and_records_the_admin_user(admin_client, admin_user):
    tn = TrackingNumberFactory()
    response = act(admin_client, "release_numbers", [tn])
    assert "1 numbers quarantined for 30 days" in response.content.decode()
    tn.refresh_from_db()
    assert tn.status == NumberStatus.QUARANTINED
    assert tn.events.get().actor == admin_user


def test_move_action_asks_then_moves(admin_client):
    pool = NumberPoolFactory()
    tn = TrackingNumberFactory()
    page = act(admin_client, "move_numbers", [tn])
    assert b"Move numbers" in page.content and tn.number.encode() in page.content
    response = act(admin_client, "move_numbers", [tn], pool=pool.pk, apply="1")
    assert "Moved 1 numbers." in response.content.decode()
    tn.refresh_from_db()
    assert tn.pool == pool


def test_move_action_shows_the_rule_it_broke(admin_client):
    pool_a, pool_b = NumberPoolFactory(), NumberPoolFactory()
    tn = TrackingNumberFactory(pool=pool_a, kind="pool", campaign=pool_a.campaign)
    response = act(admin_client, "move_numbers", [tn], pool=pool_b.pk, apply="1")
    assert "quarantined first" in response.content.decode()


def test_buy_more_like_these_buys_in_the_same_area_code_and_pool(admin_client):
    pool = NumberPoolFactory()
    tn = TrackingNumberFactory(number="+13032301000", pool=pool, kind="pool", campaign=pool.campaign)
    response = act(admin_client, "buy_more_like_these", [tn], count="2", apply="1")
    assert "Bought 2 numbers." in response.content.decode()
    assert TrackingNumber.objects.filter(pool=pool, area_code="303").count() == 3


def test_export_selected_downloads_csv(admin_client):
    tn = TrackingNumberFactory()
    response = act(admin_client, "export_numbers", [tn])
    assert response["Content-Type"].startswith("text/csv")
    assert tn.number in response.content.decode()


def test_port_in_form_creates_a_request(admin_client):
    campaign = CampaignFactory()
    url = reverse("admin:numbers_trackingnumber_port_in")
    assert admin_client.get(url).status_code == 200
    bad = admin_client.post(url, {"numbers": "+14155550142", "loa_name": "J", "loa_address": "A"})
    assert "Choose a pool, or a campaign" in bad.content.decode()
    response = admin_client.post(url, {"numbers": "+14155550142\n+14155550143", "loa_name": "Jane", "loa_address": "1 Main St",
                                       "campaign": campaign.pk}, follow=True)
    assert response.status_code == 200
    port = PortRequest.objects.get()
    assert port.numbers == ["+14155550142", "+14155550143"] and port.status == "submitted"


def test_port_out_action(admin_client):
    tn = TrackingNumberFactory()
    from calltrack.numbers.models import LocalCarrierNumber

    LocalCarrierNumber.objects.create(number=tn.number, state="owned", area_code="415")
    response = act(admin_client, "port_out_numbers", [tn], to_carrier="Acme", apply="1")
    assert "1 numbers porting out" in response.content.decode()
    tn.refresh_from_db()
    assert tn.status == NumberStatus.PORTING_OUT


def test_the_change_form_refuses_moving_a_pool_number_to_another_pool_and_records_edits(admin_client, admin_user):
    pool_a, pool_b = NumberPoolFactory(), NumberPoolFactory(campaign=CampaignFactory())
    tn = TrackingNumberFactory(pool=pool_a, kind="pool", campaign=pool_a.campaign)
    url = reverse("admin:numbers_trackingnumber_change", args=[tn.pk])
    form = {"number": tn.number, "kind": "pool", "campaign": pool_a.campaign.pk, "pool": pool_b.pk, "marketing_data": "{}", "filters": "[]",
            "events-TOTAL_FORMS": "0", "events-INITIAL_FORMS": "0"}
    response = admin_client.post(url, form)
    assert "quarantined first" in response.content.decode()
    form["pool"] = pool_a.pk
    form["label"] = "Homepage"
    response = admin_client.post(url, form)
    assert response.status_code == 302, response.content.decode()[:3000]
    event = NumberEvent.objects.get(tracking_number=tn)
    assert event.actor == admin_user and event.changes == {"label": ["", "Homepage"]}


def test_static_cap_is_enforced_in_the_admin_add_form(admin_client):
    source = SourceFactory(static_number_cap=1)
    campaign = CampaignFactory()
    TrackingNumberFactory(source=source, campaign=campaign)
    response = admin_client.post(reverse("admin:numbers_trackingnumber_add"), {
        "number": "+14155550177", "kind": "static", "campaign": campaign.pk, "source": source.pk,
        "marketing_data": "{}", "filters": "[]", "events-TOTAL_FORMS": "0", "events-INITIAL_FORMS": "0",
    })
    assert "static number cap" in response.content.decode()


def test_pool_page_shows_the_chart_and_resize_log(admin_client):
    pool = NumberPoolFactory()
    now = timezone.now()
    PoolSample.objects.create(pool=pool, at=now - timedelta(minutes=5), live_sessions=3, size=5)
    PoolSample.objects.create(pool=pool, at=now, live_sessions=4, size=5)
    PoolResize.objects.create(pool=pool, from_size=5, to_size=7, peak_sessions=6, reason="peak 6 live sessions")
    page = admin_client.get(reverse("admin:numbers_numberpool_change", args=[pool.pk])).content.decode()
    assert "<svg" in page and 'class="live"' in page and "live sessions (peak 4)" in page
    assert "peak 6 live sessions" in page
