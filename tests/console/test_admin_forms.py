"""Admin forms without traps: each test here failed on the admin before the operator's console (issue 11)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from calltrack.numbers.models import LocalCarrierNumber, NumberEvent, ReceivingNumber, TrackingNumber
from tests.console.helpers import admin_post_data
from tests.numbers.factories import ReceivingNumberFactory
from tests.tracking.factories import CampaignFactory, CampaignHandlerFactory, HandlerFactory
from tracking.models import CampaignHandler, Handler, IVRMenu

pytestmark = pytest.mark.django_db

WEEKDAYS = {f"business_hours_{d}": "09:00-17:00" for d in ("mon", "tue", "wed", "thu", "fri")}


def _handler_add_data(admin_client, **changes):
    data = admin_post_data(admin_client.get(reverse("admin:tracking_handler_add")))
    data.update({"name": "Denver call center", "receiving_number": ReceivingNumberFactory().pk, "timezone": "America/Denver"})
    data.update(changes)
    return data


def test_a_handler_given_hours_while_always_open_is_ticked_is_refused_not_saved_open_around_the_clock(admin_client):
    data = _handler_add_data(admin_client, **WEEKDAYS)
    assert data["always_open"] == "on"  # the default an operator does not notice
    response = admin_client.post(reverse("admin:tracking_handler_add"), data)
    assert response.status_code == 200
    assert "the business hours below would be ignored" in response.content.decode()
    assert not Handler.objects.filter(name="Denver call center").exists()


def test_a_handler_with_hours_and_always_open_unticked_keeps_its_hours(admin_client):
    data = _handler_add_data(admin_client, **WEEKDAYS)
    data.pop("always_open")
    response = admin_client.post(reverse("admin:tracking_handler_add"), data)
    assert response.status_code == 302, response.content.decode()[-3000:]
    handler = Handler.objects.get(name="Denver call center")
    assert handler.always_open is False and handler.business_hours["mon"] == ["09:00-17:00"]


def test_the_hours_grid_unticks_always_open_in_the_browser(admin_client):
    page = admin_client.get(reverse("admin:tracking_handler_add")).content.decode()
    assert "input[name=always_open]" in page and "notAlwaysOpen" in page


def test_a_handler_time_zone_is_chosen_from_a_list(admin_client):
    response = admin_client.get(reverse("admin:tracking_handler_add"))
    page = response.content.decode()
    assert '<option value="America/Denver"' in page and '<option value="Europe/Paris"' in page
    data = _handler_add_data(admin_client, timezone="Mars/Olympus_Mons")
    response = admin_client.post(reverse("admin:tracking_handler_add"), data)
    assert response.status_code == 200 and not Handler.objects.filter(name="Denver call center").exists()


def test_a_handler_page_lists_its_campaigns_and_warns_when_it_is_in_none(admin_client):
    lonely = HandlerFactory(name="Lonely desk")
    page = admin_client.get(reverse("admin:tracking_handler_change", args=[lonely.pk])).content.decode()
    assert "In no campaign" in page
    link = CampaignHandlerFactory(campaign=CampaignFactory(name="Roof repairs"), handler=HandlerFactory(daily_cap=40, concurrency_cap=3))
    page = admin_client.get(reverse("admin:tracking_handler_change", args=[link.handler.pk])).content.decode()
    assert "Roof repairs" in page and "In no campaign" not in page
    assert "today: <strong>0</strong> / 40" in page and "in progress: <strong>0</strong> / 3" in page


def test_the_postback_url_is_a_full_url_with_a_copy_button(admin_client, settings):
    settings.CALLTRACK_PUBLIC_BASE_URL = "https://calls.example.com"
    handler = HandlerFactory()
    page = admin_client.get(reverse("admin:tracking_handler_change", args=[handler.pk])).content.decode()
    assert f"https://calls.example.com/postback/{handler.pk}/" in page
    assert 'class="ct-copy' in page


def test_handlers_added_with_add_another_get_the_next_position_not_a_duplicate_0(admin_client):
    campaign = CampaignFactory()
    CampaignHandlerFactory(campaign=campaign, position=0)
    url = reverse("admin:tracking_campaign_change", args=[campaign.pk])
    data = admin_post_data(admin_client.get(url))
    first, second = HandlerFactory(), HandlerFactory()
    for index, handler in ((1, first), (2, second)):  # two rows added with "Add another": both carry the form's 0
        data.update({f"campaign_handlers-{index}-handler": handler.pk, f"campaign_handlers-{index}-position": "0",
                     f"campaign_handlers-{index}-enabled": "on"})
    data["campaign_handlers-TOTAL_FORMS"] = "3"
    response = admin_client.post(url, data)
    assert response.status_code == 302, response.content.decode()[-3000:]
    positions = dict(CampaignHandler.objects.filter(campaign=campaign).values_list("handler_id", "position"))
    assert positions[first.pk] == 1 and positions[second.pk] == 2


def test_campaign_page_shows_inherited_priority_and_weight_and_labels_as_words(admin_client):
    link = CampaignHandlerFactory(handler=HandlerFactory(priority=3, weight=7))
    page = admin_client.get(reverse("admin:tracking_campaign_change", args=[link.campaign.pk])).content.decode()
    assert 'placeholder="3 (handler&#x27;s)"' in page and 'placeholder="7 (handler&#x27;s)"' in page
    assert "IVR prompt" in page and "Greeting URL" in page
    assert "Ivr prompt" not in page and "Greeting url" not in page
    # Greeting fields show only for their kind; the postback window only for postback rules (admin.js).
    assert "greeting_kind == &#x27;play&#x27;" in page or "greeting_kind == 'play'" in page


def _number_add(admin_client, **fields):
    url = reverse("admin:numbers_trackingnumber_add")
    data = admin_post_data(admin_client.get(url))
    data.update({"kind": "static", "campaign": CampaignFactory().pk, **fields})
    return admin_client.post(url, data)


def test_adding_a_tracking_number_buys_it_at_the_configured_carrier(admin_client, settings):
    settings.CALLTRACK_CARRIER = "local"
    settings.CALLTRACK_PUBLIC_BASE_URL = "https://calls.example.com"
    response = _number_add(admin_client, number="+13035550188", provisioning="buy")
    assert response.status_code == 302, response.content.decode()[-3000:]
    number = TrackingNumber.objects.get(number="+13035550188")
    assert number.carrier == "local" and number.carrier_id.startswith("LN")
    line = LocalCarrierNumber.objects.get(number="+13035550188")
    assert line.state == "owned" and line.voice_url == "https://calls.example.com/voice/incoming"
    assert NumberEvent.objects.filter(tracking_number=number, reason__startswith="Bought at local").exists()


def test_a_carrier_refusal_shows_on_the_add_form_and_records_nothing(admin_client):
    LocalCarrierNumber.objects.create(number="+13035550189", number_type="local", area_code="303", state="owned")
    response = _number_add(admin_client, number="+13035550189", provisioning="buy")
    assert response.status_code == 200
    assert "The carrier (local) refused" in response.content.decode()
    assert not TrackingNumber.objects.filter(number="+13035550189").exists()


def test_a_number_only_recorded_says_plainly_it_is_not_provisioned(admin_client):
    response = _number_add(admin_client, number="+13035550190", provisioning="record")
    assert response.status_code == 302
    number = TrackingNumber.objects.get(number="+13035550190")
    assert number.carrier == "local" and number.carrier_id == ""
    assert not LocalCarrierNumber.objects.filter(number="+13035550190").exists()
    page = admin_client.get(response["Location"]).content.decode()
    assert "recorded without being provisioned" in page


def test_the_carrier_of_an_added_number_comes_from_the_setting(admin_client, settings, monkeypatch):
    from calltrack.numbers.providers.local import LocalCarrier
    from calltrack.numbers.services import records

    class OtherCarrier(LocalCarrier):
        name = "othertel"

    monkeypatch.setattr(records, "get_carrier", lambda account_id=None: OtherCarrier())
    response = _number_add(admin_client, number="+13035550191", provisioning="record")
    assert response.status_code == 302
    assert TrackingNumber.objects.get(number="+13035550191").carrier == "othertel"  # not the model's default "local"


def test_a_new_handler_starts_in_the_operators_time_zone(admin_client, settings):
    settings.TIME_ZONE = "America/Chicago"
    form = admin_client.get(reverse("admin:tracking_handler_add")).context["adminform"].form
    assert form["timezone"].value() == "America/Chicago"


def test_a_pools_page_types_in_no_bare_numbers_and_links_to_the_carriers_add_form(admin_client):
    from tests.numbers.factories import NumberPoolFactory

    pool = NumberPoolFactory()
    url = reverse("admin:numbers_numberpool_change", args=[pool.pk])
    response = admin_client.get(url)
    page = response.content.decode()
    assert "Add numbers to this pool" in page and f"pool={pool.pk}" in page and "kind=pool" in page
    [numbers] = [i for i in response.context["inline_admin_formsets"] if i.formset.model is TrackingNumber]
    assert numbers.formset.max_num == 0 and not numbers.has_add_permission
    data = admin_post_data(response)
    prefix = numbers.formset.prefix
    data.update({f"{prefix}-TOTAL_FORMS": "1", f"{prefix}-0-number": "+14155550199", f"{prefix}-0-pool": pool.pk})
    admin_client.post(url, data)
    assert not TrackingNumber.objects.filter(number="+14155550199").exists()


def test_a_numbers_empty_marketing_data_shows_empty_and_saves_as_none(admin_client):
    from tests.numbers.factories import TrackingNumberFactory

    number = TrackingNumberFactory(marketing_data={})
    url = reverse("admin:numbers_trackingnumber_change", args=[number.pk])
    response = admin_client.get(url)
    assert response.context["adminform"].form["marketing_data"].as_widget().count("{}") == 0
    data = admin_post_data(response)
    data["label"] = "Billboard"
    assert admin_client.post(url, data).status_code == 302
    number.refresh_from_db()
    assert number.marketing_data == {} and number.label == "Billboard"


def test_a_receiving_number_is_set_in_the_admin_to_play_a_menu_when_nobody_answers(admin_client):
    menu = IVRMenu.objects.create(campaign=CampaignFactory(), name="Nobody free", prompt="Press 1.")
    url = reverse("admin:numbers_receivingnumber_add")
    data = admin_post_data(admin_client.get(url))
    data.update({"number": "+13035550123", "label": "Front desk", "no_answer_action": "menu"})
    response = admin_client.post(url, data)
    assert response.status_code == 200 and "Choose the menu the caller hears." in response.content.decode()
    response = admin_client.post(url, {**data, "no_answer_menu": menu.pk})
    assert response.status_code == 302, response.content.decode()[-3000:]
    line = ReceivingNumber.objects.get(label="Front desk")
    assert (line.no_answer_action, line.no_answer_menu) == ("menu", menu)
    assert "Wait in the campaign&#x27;s call queue" in admin_client.get(reverse("admin:numbers_receivingnumber_change", args=[line.pk])).content.decode()
