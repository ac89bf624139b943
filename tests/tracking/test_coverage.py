"""The campaign's coverage view reflects every tag operator of its handlers' criteria (states, ZIP codes, any key)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from calltrack import tags
from tests.tracking.factories import CampaignFactory, CampaignHandlerFactory, HandlerFactory
from tracking.selectors import campaign_coverage


def rule(key, op, value=None):
    return {"key": key, "op": op, **({"value": value} if value is not None else {})}


@pytest.mark.parametrize("criteria, states", [
    ([], ["all"]),
    ([rule("caller_state", "equals", "co")], ["CO"]),
    ([rule("caller_state", "one_of", ["CA", "NV"])], ["CA", "NV"]),
    ([rule("caller_state", "not_one_of", ["CA", "NY"])], ["all except CA, NY"]),
    ([rule("caller_state", "present")], ["any known"]),
    ([rule("caller_state", "present"), rule("caller_state", "not_one_of", ["TX"])], ["any known except TX"]),
    ([rule("caller_state", "one_of", ["CA", "NV", "OR"]), rule("caller_state", "not_one_of", ["nv"])], ["CA", "OR"]),
    ([rule("caller_state", "one_of", ["CA"]), rule("caller_state", "equals", "NV")], ["none"]),
    ([rule("Caller_State", "one_of", ["wa"])], ["WA"]),
])
def test_the_states_a_handler_takes_follow_every_operator(criteria, states):
    assert tags.coverage(tags.validate(criteria))[0] == states


def test_states_said_taken_are_exactly_those_the_router_matches():
    all_states = ["CA", "CO", "NV", "NY", "OR", "TX", "WA"]
    for criteria in (
        [rule("caller_state", "not_one_of", ["CA", "NY"])],
        [rule("caller_state", "one_of", ["CA", "NV", "OR"]), rule("caller_state", "not_one_of", ["NV"])],
        [rule("caller_state", "equals", "TX")],
    ):
        criteria = tags.validate(criteria)
        routed = [s for s in all_states if tags.matches(criteria, {"caller_state": s})[0]]
        (said,) = [tags.coverage(criteria)[0]]
        if said[0].startswith("all except "):
            excluded = said[0].removeprefix("all except ").split(", ")
            said = [s for s in all_states if s not in excluded]
        assert said == routed


def test_zip_and_other_keys_are_conditions_of_their_own():
    criteria = tags.validate([
        rule("caller_zip", "one_of", ["80202", "80203"]), rule("utm_source", "not_one_of", ["bing"]),
        rule("gclid", "present"), rule("caller_state", "equals", "CO"),
    ])
    assert tags.coverage(criteria) == (["CO"], ["caller_zip: 80202, 80203", "gclid: any known", "utm_source: all except bing"])


@pytest.mark.django_db
def test_the_campaign_page_shows_not_one_of_states_and_zip_rules(admin_client):
    campaign = CampaignFactory()
    for name, criteria in [
        ("West", [rule("caller_state", "one_of", ["CA", "NV"])]),
        ("Not coasts", [rule("caller_state", "not_one_of", ["CA", "NY"])]),
        ("Denver downtown", [rule("caller_zip", "one_of", ["80202", "80203"])]),
    ]:
        CampaignHandlerFactory(campaign=campaign, handler=HandlerFactory(name=name, tag_criteria=criteria))
    data = campaign_coverage(campaign=campaign)
    assert data["states"] == {"West": ["CA", "NV"], "Not coasts": ["all except CA, NY"], "Denver downtown": ["all"]}
    assert data["conditions"] == {"Denver downtown": ["caller_zip: 80202, 80203"]}
    page = admin_client.get(reverse("admin:tracking_campaign_change", args=[campaign.pk])).content.decode()
    assert "Not coasts: all except CA, NY" in page
    assert "Denver downtown: caller_zip: 80202, 80203" in page
