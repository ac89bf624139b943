"""Nested voice menus played through the signed webhooks: sub-menus, keys to a number or a voicemail, loops."""

from __future__ import annotations

import pytest
from django.urls import reverse
from lxml import etree

from routing import decision as dec
from tests.numbers.factories import TrackingNumberFactory
from tests.routing.test_voice_flow import Flow, dialled, handler, root
from tests.tracking.factories import CampaignFactory
from tracking.menu_tree import campaign_menu_tree
from tracking.models import AttemptKind, Call, CallAttempt, IVRMenu, IVROption

pytestmark = pytest.mark.django_db


@pytest.fixture
def campaign():
    return CampaignFactory(name="Dealer", ivr_prompt="Sales 1, service 2, leave a message 8.", company_phone="+13035550190")


@pytest.fixture
def menus(campaign):
    sales = IVRMenu.objects.create(campaign=campaign, name="Sales", prompt="New cars 1, used cars 2, main menu 9.")
    IVROption.objects.create(campaign=campaign, digit="1", label="Sales", action="menu", submenu=sales, tag_key="department",
                             tag_value="sales", response="Sales.")
    IVROption.objects.create(campaign=campaign, digit="8", action="voicemail", response="Our voicemail.")
    IVROption.objects.create(campaign=campaign, menu=sales, digit="1", tag_key="stock", tag_value="new")
    IVROption.objects.create(campaign=campaign, menu=sales, digit="2", action="number", number="+13035550177", response="Transferring.")
    IVROption.objects.create(campaign=campaign, menu=sales, digit="9", action="tag", tag_key="back", tag_value="yes")
    return sales


@pytest.fixture
def flow(twilio, campaign):
    return Flow(twilio, TrackingNumberFactory(campaign=campaign))


def test_a_key_opens_a_sub_menu_whose_key_sets_a_tag_that_routes(flow, campaign, menus, assert_valid_twiml):
    IVROption.objects.filter(menu=menus, digit="9").delete()
    new_cars = handler(campaign, tag_criteria=[{"key": "stock", "op": "equals", "value": "new"}])
    handler(campaign, tag_criteria=[{"key": "stock", "op": "equals", "value": "used"}])
    sub = flow.press(flow.start(), "1")
    assert_valid_twiml(etree.tostring(sub))
    assert [el.tag for el in sub] == ["Say", "Gather", "Redirect"]
    assert sub.find("Say").text == "Sales." and sub.find("Gather/Say").text == menus.prompt
    assert f"menu={menus.pk}" in sub.find("Gather").get("action")
    doc = flow.press(sub, "1")
    assert_valid_twiml(etree.tostring(doc))
    assert dialled(doc) == [new_cars.receiving_number.number]
    call = Call.objects.get()
    assert call.tags["department"] == "sales" and call.tags["stock"] == "new"
    assert call.events.filter(kind="ivr.menu", message="sub-menu 'Sales' played").exists()


def test_a_sub_menu_key_dials_a_number_then_the_fallback_chain(flow, campaign, menus, assert_valid_twiml):
    IVROption.objects.filter(menu=menus, digit="9").delete()
    doc = flow.press(flow.press(flow.start(), "1"), "2")
    assert_valid_twiml(etree.tostring(doc))
    assert doc.find("Say").text == "Transferring." and dialled(doc) == ["+13035550177"]
    attempt = CallAttempt.objects.get()
    assert attempt.kind == AttemptKind.NUMBER and attempt.number_dialed == "+13035550177"
    nxt = flow.dial_result(doc, "no-answer")
    assert_valid_twiml(etree.tostring(nxt))
    assert dialled(nxt) == ["+13035550190"]  # the company phone, last of the fallback chain


def test_a_key_takes_a_voicemail(flow, campaign, menus, assert_valid_twiml):
    doc = flow.press(flow.start(), "8")
    assert_valid_twiml(etree.tostring(doc))
    assert [el.tag for el in doc] == ["Say", "Say", "Record", "Hangup"]
    assert doc.find("Say").text == "Our voicemail."


def test_a_sub_menu_repeats_itself_on_no_key_then_routes(flow, campaign, menus, assert_valid_twiml):
    IVROption.objects.filter(menu=menus, digit="9").delete()
    h = handler(campaign)
    sub = flow.press(flow.start(), "1")
    again = flow.press(sub)
    assert_valid_twiml(etree.tostring(again))
    assert again.find("Gather/Say").text == menus.prompt and f"menu={menus.pk}" in again.find("Redirect").text
    assert dialled(flow.press(again)) == [h.receiving_number.number]


def test_a_key_can_lead_back_to_the_main_menu_and_the_tree_says_so(flow, campaign, menus):
    main_again = IVRMenu.objects.create(campaign=campaign, name="Start over", prompt="Sales 1, message 8.")
    IVROption.objects.filter(menu=menus, digit="9").update(action="menu", submenu=main_again, tag_key="")
    IVROption.objects.create(campaign=campaign, menu=main_again, digit="1", action="menu", submenu=menus)
    doc = flow.press(flow.press(flow.press(flow.start(), "1"), "9"), "1")
    assert doc.find("Gather/Say").text == menus.prompt
    tree = campaign_menu_tree(campaign)
    sales = tree.root.keys[0].submenu
    assert sales.name == "Sales"
    start_over = next(k for k in sales.keys if k.digit == "9").submenu
    assert start_over.keys[0].back_to == "Sales"


def test_a_caller_going_round_a_menu_loop_hears_at_most_twenty_menus_then_is_routed(flow, campaign, menus, assert_valid_twiml):
    desk = handler(campaign, name="Front desk")
    start_over = IVRMenu.objects.create(campaign=campaign, name="Start over", prompt="Sales 1.")
    IVROption.objects.filter(menu=menus, digit="9").update(action="menu", submenu=start_over, tag_key="")
    IVROption.objects.create(campaign=campaign, menu=start_over, digit="1", action="menu", submenu=menus)
    doc = flow.press(flow.start(), "1")  # the main menu, then Sales: 2 menus
    prompts = ["main", doc.find("Gather/Say").text]
    for _ in range(40):  # 9, 1, 9, 1 ... as long as menus are played
        assert_valid_twiml(etree.tostring(doc))
        if doc.find("Gather") is None:
            break
        doc = flow.press(doc, "9" if doc.find("Gather/Say").text == menus.prompt else "1")
        if doc.find("Gather") is not None:
            prompts.append(doc.find("Gather/Say").text)
    assert len(prompts) == 20
    assert dialled(doc) == [desk.receiving_number.number]
    call = Call.objects.get()
    assert call.events.filter(kind="ivr.menu").count() == 20  # the main menu and 19 sub-menus
    assert call.events.filter(kind="ivr.menu_limit").exists()


def test_a_retried_key_press_on_a_later_lap_gets_the_same_answer(twilio, flow, campaign, menus):
    start_over = IVRMenu.objects.create(campaign=campaign, name="Start over", prompt="Sales 1.")
    IVROption.objects.filter(menu=menus, digit="9").update(action="menu", submenu=start_over, tag_key="")
    IVROption.objects.create(campaign=campaign, menu=start_over, digit="1", action="menu", submenu=menus)
    second_lap = flow.press(flow.press(flow.press(flow.start(), "1"), "9"), "1")
    url = second_lap.find("Gather").get("action")
    first = twilio.post(url, {"CallSid": flow.sid, "Digits": "9"}).content
    assert twilio.post(url, {"CallSid": flow.sid, "Digits": "9"}).content == first  # Twilio's retry
    assert Call.objects.get().decision["ivr"]["menus"] == 5


def test_an_unknown_sub_menu_in_the_callback_goes_to_the_failsafe(twilio, flow, campaign, menus, settings):
    settings.CALLTRACK_FAILSAFE_NUMBER = "+13035550999"
    flow.start()
    call = Call.objects.get()
    doc = root(twilio.post(f"/voice/gather?call={call.pk}&round=1&menu=999999", {"CallSid": flow.sid, "Digits": "1"}))
    assert dialled(doc) == ["+13035550999"]
    bad = root(twilio.post(f"/voice/gather?call={call.pk}&round=1&menu=x\u0000", {"CallSid": flow.sid, "Digits": "1"}))
    assert dialled(bad) == ["+13035550999"]


def test_menu_choice_is_pure():
    choices = [dec.IVRChoice("1", "menu", submenu_id=7, label="Sales"), dec.IVRChoice("2", "number", number="+13035550177")]
    assert dec.ivr_choose(digits="1", round_no=1, repeat=1, default_digit="", choices=choices).submenu_id == 7
    assert dec.ivr_choose(digits="2", round_no=1, repeat=1, default_digit="", choices=choices).number == "+13035550177"


def test_the_campaign_page_shows_the_menu_tree_and_a_sub_menu_is_edited_with_its_keys(admin_client, campaign, menus):
    IVROption.objects.filter(menu=menus, digit="9").delete()
    page = admin_client.get(reverse("admin:tracking_campaign_change", args=[campaign.pk])).content.decode()
    assert "opens &#x27;Sales&#x27;" in page and reverse("admin:tracking_ivrmenu_change", args=[menus.pk]) in page
    assert "dials +13035550177" in page and "Add a sub-menu" in page
    url = reverse("admin:tracking_ivrmenu_change", args=[menus.pk])
    from tests.calltrack.test_demo_and_admin import _form_data

    data = _form_data(admin_client, url)
    prefix = "options"
    total = int(data[f"{prefix}-TOTAL_FORMS"])
    data.update({f"{prefix}-{total - 1}-digit": "3", f"{prefix}-{total - 1}-action": "voicemail", f"{prefix}-{total - 1}-label": "Leave a message"})
    response = admin_client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:3000]
    added = IVROption.objects.get(menu=menus, digit="3")
    assert added.campaign == campaign and added.action == "voicemail"


def test_the_campaign_api_shows_the_menu_tree(admin_user, campaign, menus, django_assert_max_num_queries):
    from rest_framework.test import APIClient

    api = APIClient()
    api.force_authenticate(admin_user)
    body = api.get(f"/api/v1/campaigns/{campaign.pk}/").json()
    tree = body["ivr_menu_tree"]
    assert tree["menu"] is None and tree["prompt"] == campaign.ivr_prompt
    sales = tree["keys"][0]
    assert sales["does"] == "tag department=sales, opens 'Sales'" and sales["response"] == "Sales."
    assert [k["digit"] for k in sales["submenu"]["keys"]] == ["1", "2", "9"]
    CampaignFactory.create_batch(3)
    with django_assert_max_num_queries(12):  # the list prefetches the menus: no query per campaign
        assert api.get("/api/v1/campaigns/").status_code == 200
