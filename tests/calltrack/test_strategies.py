"""The routing strategy names have one source: the routing decision and the campaign model's choices agree."""

from __future__ import annotations

import random

import pytest

from calltrack import strategies
from routing import decision
from tracking.models import Campaign, RoutingStrategy


def test_the_campaign_choices_are_exactly_the_strategies_the_decision_knows_in_the_same_order():
    assert tuple(RoutingStrategy.values) == strategies.STRATEGIES == decision.STRATEGIES
    assert dict(RoutingStrategy.choices) == strategies.LABELS
    assert dict(Campaign._meta.get_field("routing_strategy").choices) == strategies.LABELS


@pytest.mark.parametrize("strategy", strategies.STRATEGIES)
def test_the_decision_orders_handlers_for_every_strategy_a_campaign_can_choose(strategy):
    option = decision.HandlerOption(id=1, name="A", number="+14155550100")
    steps = decision.order(strategy, [option], all_options=[option], loads={}, rng=random.Random(1))
    assert steps == [[option]]


def test_the_decision_refuses_a_strategy_name_no_campaign_can_have():
    with pytest.raises(ValueError, match="unknown routing strategy 'fastest'"):
        decision.order("fastest", [], all_options=[], loads={}, rng=random.Random(1))
