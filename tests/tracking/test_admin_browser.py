"""Admin editing that is more than a plain form, in a real browser (Debian's Chromium through Playwright):
the voice menu tree, tag-rule rows, and the hours grid of tagging hours."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from tests.tracking.factories import CampaignFactory, HandlerFactory
from tracking.models import Handler, IVRMenu, IVROption, TaggingHours

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def admin_page(live_server, page):  # noqa: F811
    """The browser logged in as a superuser (the session cookie of a force_login: the login form is not under test)."""
    from django.conf import settings
    from django.test import Client

    user = get_user_model().objects.create_superuser("boss", "boss@example.com", "pw-for-the-browser-test")
    client = Client()
    client.force_login(user)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME]
    page.context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": cookie.value, "url": live_server.url}])
    return page


def test_an_operator_builds_a_sub_menu_from_the_campaign_tree(live_server, admin_page):
    campaign = CampaignFactory(name="Dealer", ivr_prompt="Sales 1.")
    ui = admin_page
    ui.goto(f"{live_server.url}/admin/tracking/campaign/{campaign.pk}/change/")
    assert "Main menu" in ui.inner_text(".ct-menu-tree")
    ui.click("a.ct-menu-add")
    ui.fill("#id_name", "Sales")
    ui.fill("#id_prompt", "New cars 1, used cars 2.")
    ui.fill("#id_options-0-digit", "1")
    ui.select_option("#id_options-0-action", "voicemail")
    ui.fill("#id_options-0-response", "Leave us a message.")
    ui.click("[name=_continue]")
    ui.wait_for_selector(".ct-menu-tree")
    menu = IVRMenu.objects.get(campaign=campaign)
    assert IVROption.objects.get(menu=menu).action == "voicemail"

    ui.goto(f"{live_server.url}/admin/tracking/campaign/{campaign.pk}/change/")
    ui.click("a.add-row:has-text('Add another Main menu key')")
    ui.fill("#id_ivr_options-0-digit", "1")
    ui.select_option("#id_ivr_options-0-action", "menu")
    ui.select_option("#id_ivr_options-0-submenu", str(menu.pk))
    ui.click("[name=_continue]")
    ui.wait_for_selector(".ct-menu-tree")
    tree = ui.inner_text(".ct-menu-tree")
    assert "opens 'Sales'" in tree and "takes a voicemail" in tree and 'says "Leave us a message."' in tree
    ui.click(f".ct-menu-tree a[href$='/ivrmenu/{menu.pk}/change/']")
    ui.wait_for_selector("#id_prompt")
    assert "(this menu)" in ui.inner_text(".ct-menu-tree")


def test_an_operator_adds_tag_rule_rows_and_removes_one(live_server, admin_page):
    handler = HandlerFactory(name="Seniors", tag_criteria=[{"key": "caller_state", "op": "equals", "value": "CA"}])
    ui = admin_page
    ui.goto(f"{live_server.url}/admin/tracking/handler/{handler.pk}/change/")
    rows = ui.locator(".ct-rules tbody tr")
    first_blank = rows.count() - 2
    rows.nth(first_blank).locator("input[name=tag_criteria_key]").fill("age")
    rows.nth(first_blank).locator("select[name=tag_criteria_op]").select_option("greater_than")
    rows.nth(first_blank).locator("input[name=tag_criteria_value]").fill("64")
    ui.click(".ct-rules .ct-rule-add")
    added = ui.locator(".ct-rules tbody tr").last
    added.locator("input[name=tag_criteria_key]").fill("utm_campaign")
    added.locator("select[name=tag_criteria_op]").select_option("contains")
    added.locator("input[name=tag_criteria_value]").fill("medicare")
    ui.locator(".ct-rules tbody tr").first.locator(".ct-rule-remove").click()
    ui.click("[name=_continue]")
    ui.wait_for_selector(".ct-rules")
    assert Handler.objects.get(pk=handler.pk).tag_criteria == [
        {"key": "age", "op": "greater_than", "value": "64"},
        {"key": "utm_campaign", "op": "contains", "value": "medicare"},
    ]


def test_an_operator_fills_tagging_hours_with_a_preset(live_server, admin_page):
    ui = admin_page
    ui.goto(f"{live_server.url}/admin/tracking/tagginghours/add/")
    ui.fill("#id_name", "After hours")
    ui.select_option("#id_match", "outside")
    ui.fill("#id_tag_value", "after_hours")
    ui.fill("#id_timezone", "America/Denver")
    ui.click("button.ct-hours-preset:has-text('weekdays 9-5')")
    assert ui.input_value("#id_hours_mon") == "09:00-17:00" and ui.input_value("#id_hours_sat") == ""
    ui.click("[name=_save]")
    ui.wait_for_selector("#result_list")
    schedule = TaggingHours.objects.get()
    assert schedule.hours == {d: ["09:00-17:00"] for d in ("mon", "tue", "wed", "thu", "fri")} and schedule.match == "outside"
