"""``Campaign.config_version`` is bumped by database triggers (tracking/sql/config_version.*.sql) on every write to a
row the cached routing configuration reads, whoever writes it: a create, a save, a ``QuerySet.update()``, a delete.
The list of what the configuration reads is checked against the queries it actually runs."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from django.db import connection
from django.db.models import F, Model, ProtectedError
from django.test.utils import CaptureQueriesContext

from calltrack.numbers.models import ReceivingNumber
from routing.services import config as routing_config
from tests.numbers.factories import ReceivingNumberFactory
from tests.tracking.factories import (
    CampaignFactory,
    CampaignHandlerFactory,
    ConversionRuleFactory,
    HandlerFactory,
    WebhookFactory,
)
from tracking import db_triggers
from tracking.models import (
    Call,
    Campaign,
    CampaignHandler,
    ConversionDestination,
    ConversionKind,
    ConversionRule,
    Handler,
    IVRAction,
    IVRMenu,
    IVROption,
    RoutingTable,
    TaggingHours,
    Webhook,
)

pytestmark = pytest.mark.django_db

# Rows of one campaign: a write bumps that campaign (both campaigns when a row moves).
CAMPAIGN_PARTS: tuple[type[Model], ...] = (
    CampaignHandler, IVRMenu, IVROption, ConversionRule, Webhook, RoutingTable, TaggingHours, ConversionDestination,
)
# Rows shared by campaigns: a change bumps every campaign that lists them (a handler, or a handler on the line).
SHARED: tuple[type[Model], ...] = (Handler, ReceivingNumber)
# Everything the cached routing configuration reads, with the campaign's own row.
CONFIG_MODELS: tuple[type[Model], ...] = (Campaign, *CAMPAIGN_PARTS, *SHARED)
# The campaign's columns written on the hot path (round robin) or by the triggers, and its account (set when it is
# created, never changed; the routing configuration does not read it): they never bump.
CAMPAIGN_UNWATCHED = {"id", "rr_position", "config_version", "account_id"}


def versions(*campaigns: Campaign) -> list[int]:
    stored = dict(Campaign.objects.filter(pk__in=[c.pk for c in campaigns]).values_list("pk", "config_version"))
    return [stored[c.pk] for c in campaigns]


@contextmanager
def bumps(expected: dict[Campaign, int]) -> Iterator[None]:
    """Asserts that the block bumps each campaign of ``expected`` by exactly that many."""
    campaigns = list(expected)
    before = versions(*campaigns)
    yield
    after = versions(*campaigns)
    assert {c.name: a - b for c, a, b in zip(campaigns, after, before, strict=True)} == {c.name: n for c, n in expected.items()}


def _config_load_tables(campaign: Campaign) -> set[str]:
    """The tables the routing configuration's load reads, from the SQL it runs (an empty cache)."""
    routing_config.campaign_config_cache_clear()
    with CaptureQueriesContext(connection) as captured:
        routing_config.campaign_config(campaign)
        routing_config.campaign_conversion_rules(campaign)
    tables: set[str] = set()
    for q in captured.captured_queries:
        tables.update(re.findall(r'\b(?:FROM|JOIN)\s+"?(\w+)"?', q["sql"], flags=re.IGNORECASE))
    return tables


def _campaign_with_everything() -> Campaign:
    campaign = CampaignFactory(name="Everything")
    handler = CampaignHandlerFactory(campaign=campaign).handler
    menu = IVRMenu.objects.create(campaign=campaign, name="Sales", prompt="Press 1")
    IVROption.objects.create(campaign=campaign, digit="1", action=IVRAction.MENU, submenu=menu)
    IVROption.objects.create(campaign=campaign, menu=menu, digit="1", action=IVRAction.HANDLER, handler=handler)
    ConversionRuleFactory(campaign=campaign, kind=ConversionKind.ATTEMPT)
    WebhookFactory(campaign=campaign, events=["call.routed"])
    RoutingTable.objects.create(campaign=campaign, name="Stores", tag_key="zip")
    TaggingHours.objects.create(campaign=campaign, name="Nights", tag_value="night")
    ConversionDestination.objects.create(campaign=campaign, name="Local")
    return campaign


def test_the_list_of_what_routing_caches_is_every_table_its_configuration_load_reads():
    campaign = _campaign_with_everything()
    read = _config_load_tables(campaign)
    listed = {m._meta.db_table for m in CONFIG_MODELS}
    assert read - listed == set(), "routing's configuration reads a table no trigger bumps config_version for"
    # Each listed table is read (the campaign's own row is read with the tracking number, before the configuration).
    assert listed - read <= {Campaign._meta.db_table}
    # And the models routing/services/config.py names are all listed (Call: only to find the call's campaign).
    named = {v for v in vars(routing_config).values() if isinstance(v, type) and issubclass(v, Model)}
    assert named - set(CONFIG_MODELS) == {Call}


def test_each_listed_table_has_its_triggers_in_both_sql_files():
    listed = {m._meta.db_table for m in CONFIG_MODELS}
    for vendor in db_triggers.VENDORS:
        tables = {t for _, t in db_triggers.trigger_names(db_triggers.sql_text("config_version", vendor))}
        assert tables == listed, vendor


@dataclass(frozen=True)
class Part:
    model: type[Model]
    make: Callable[[Campaign], Model]
    field: str
    values: tuple[Any, Any]  # a value saved, then a value written by QuerySet.update()


def _handler_link(campaign: Campaign) -> Model:
    return CampaignHandler.objects.create(campaign=campaign, handler=HandlerFactory())


PARTS = [
    Part(CampaignHandler, _handler_link, "priority", (5, 7)),
    Part(IVRMenu, lambda c: IVRMenu.objects.create(campaign=c, name="Sales", prompt="Press 1"), "prompt", ("Press 2", "Press 3")),
    Part(IVROption, lambda c: IVROption.objects.create(campaign=c, digit="1", tag_key="dept", tag_value="sales"), "label", ("Sales", "Support")),
    Part(ConversionRule, lambda c: ConversionRuleFactory(campaign=c, min_duration=30), "min_duration", (60, 90)),
    Part(Webhook, lambda c: WebhookFactory(campaign=c), "enabled", (False, True)),
    Part(RoutingTable, lambda c: RoutingTable.objects.create(campaign=c, name="Stores", tag_key="zip"), "enabled", (False, True)),
    Part(TaggingHours, lambda c: TaggingHours.objects.create(campaign=c, name="Nights", tag_value="night"), "enabled", (False, True)),
    Part(ConversionDestination, lambda c: ConversionDestination.objects.create(campaign=c, name="Local"), "enabled", (False, True)),
]


def test_every_row_of_a_campaign_is_covered_below():
    assert {p.model for p in PARTS} == set(CAMPAIGN_PARTS)


@pytest.mark.parametrize("part", PARTS, ids=lambda p: p.model.__name__)
def test_a_create_a_save_an_update_and_a_delete_of_a_campaigns_row_each_bump_that_campaign_only(part):
    mine, unrelated = CampaignFactory(name="Mine"), CampaignFactory(name="Unrelated")
    with bumps({mine: 1, unrelated: 0}):
        row = part.make(mine)
    with bumps({mine: 1, unrelated: 0}):
        setattr(row, part.field, part.values[0])
        row.save(update_fields=[part.field])
    with bumps({mine: 1, unrelated: 0}):
        assert part.model.objects.filter(pk=row.pk).update(**{part.field: part.values[1]}) == 1
    with bumps({mine: 1, unrelated: 0}):
        row.delete()


@pytest.mark.parametrize("part", PARTS, ids=lambda p: p.model.__name__)
def test_a_row_moved_to_another_campaign_bumps_both(part):
    left, joined, unrelated = CampaignFactory(name="Left"), CampaignFactory(name="Joined"), CampaignFactory(name="Unrelated")
    row = part.make(left)
    with bumps({left: 1, joined: 1, unrelated: 0}):
        part.model.objects.filter(pk=row.pk).update(campaign=joined)


def test_an_account_wide_tagging_schedule_bumps_every_campaign():
    a, b = CampaignFactory(name="A"), CampaignFactory(name="B")
    with bumps({a: 1, b: 1}):
        schedule = TaggingHours.objects.create(campaign=None, name="Weekend", tag_value="weekend")
    with bumps({a: 1, b: 1}):
        TaggingHours.objects.filter(pk=schedule.pk).update(tag_value="saturday")
    with bumps({a: 1, b: 1}):  # from every campaign to one: all of them reload
        TaggingHours.objects.filter(pk=schedule.pk).update(campaign=a)
    with bumps({a: 1, b: 0}):
        TaggingHours.objects.filter(pk=schedule.pk).update(enabled=False)
    with bumps({a: 1, b: 1}):
        TaggingHours.objects.filter(pk=schedule.pk).update(campaign=None)
    with bumps({a: 1, b: 1}):
        schedule.delete()


def test_a_handler_bumps_every_campaign_listing_it_and_no_other():
    a, b, unrelated = CampaignFactory(name="A"), CampaignFactory(name="B"), CampaignFactory(name="Unrelated")
    CampaignHandlerFactory(campaign=unrelated)
    with bumps({a: 0, b: 0, unrelated: 0}):  # in no campaign yet
        handler = HandlerFactory()
    with bumps({a: 1, b: 1, unrelated: 0}):
        CampaignHandlerFactory(campaign=a, handler=handler)
        CampaignHandlerFactory(campaign=b, handler=handler)
    with bumps({a: 1, b: 1, unrelated: 0}):
        handler.priority = 3
        handler.save(update_fields=["priority"])
    with bumps({a: 1, b: 1, unrelated: 0}):
        Handler.objects.filter(pk=handler.pk).update(enabled=False)
    with bumps({a: 1, b: 1, unrelated: 0}):  # the cascade deletes its places in the campaigns, which bump them
        handler.delete()


def test_a_handler_deleted_bumps_the_campaigns_whose_keys_or_rules_name_it():
    listing, keyed, ruled = CampaignFactory(name="Listing"), CampaignFactory(name="Keyed"), CampaignFactory(name="Ruled")
    handler = CampaignHandlerFactory(campaign=listing).handler
    IVROption.objects.create(campaign=keyed, digit="1", action=IVRAction.HANDLER, handler=handler)
    ConversionRuleFactory(campaign=ruled, handler=handler, min_duration=30)
    with bumps({listing: 1, keyed: 1, ruled: 1}):
        handler.delete()


def test_a_receiving_number_bumps_every_campaign_with_a_handler_on_it_and_no_other():
    a, b, unrelated = CampaignFactory(name="A"), CampaignFactory(name="B"), CampaignFactory(name="Unrelated")
    CampaignHandlerFactory(campaign=unrelated)
    with bumps({a: 0, b: 0, unrelated: 0}):  # dialled by no handler yet
        line = ReceivingNumberFactory()
    first, second = HandlerFactory(receiving_number=line), HandlerFactory(receiving_number=line)
    CampaignHandlerFactory(campaign=a, handler=first)
    CampaignHandlerFactory(campaign=a, handler=second)
    CampaignHandlerFactory(campaign=b, handler=second)
    with bumps({a: 1, b: 1, unrelated: 0}):  # once per campaign, however many of its handlers are on the line
        line.ring_timeout = 45
        line.save(update_fields=["ring_timeout"])
    with bumps({a: 1, b: 1, unrelated: 0}):
        ReceivingNumber.objects.filter(pk=line.pk).update(extension_digits="12")
    with bumps({a: 0, b: 0, unrelated: 0}), pytest.raises(ProtectedError):  # a line in use is never deleted
        line.delete()
    with bumps({a: 1, b: 0, unrelated: 0}):  # a handler moved to another line: its campaign dials another number
        Handler.objects.filter(pk=first.pk).update(receiving_number=ReceivingNumberFactory())
    spare = ReceivingNumberFactory()
    with bumps({a: 0, b: 0, unrelated: 0}):
        spare.delete()


def _campaign_columns() -> list[str]:
    return [f.attname for f in Campaign._meta.concrete_fields if f.attname not in CAMPAIGN_UNWATCHED]


@pytest.mark.parametrize("column", _campaign_columns())
def test_writing_any_column_of_the_campaign_bumps_it(column):
    """Written even with its own value: the trigger watches the columns named in the UPDATE (a new column of the
    model fails here until the trigger's list names it)."""
    mine, unrelated = CampaignFactory(name="Mine"), CampaignFactory(name="Unrelated")
    with bumps({mine: 1, unrelated: 0}):
        Campaign.objects.filter(pk=mine.pk).update(**{column: F(column)})


def test_the_round_robin_cursor_and_the_version_itself_never_bump():
    campaign = CampaignFactory()
    with bumps({campaign: 0}):
        Campaign.objects.filter(pk=campaign.pk).update(rr_position=F("rr_position") + 1)
    Campaign.objects.filter(pk=campaign.pk).update(config_version=F("config_version") + 1)
    assert versions(campaign) == [campaign.config_version + 1]


def test_a_whole_row_save_of_a_stale_campaign_cannot_undo_a_bump():
    campaign = CampaignFactory()
    stale = Campaign.objects.get(pk=campaign.pk)
    WebhookFactory(campaign=campaign)  # bumps the stored version; ``stale`` still holds the old one
    (bumped,) = versions(campaign)
    assert stale.config_version == bumped - 1
    stale.name = "Renamed"
    stale.save()  # writes every column, the old version among them
    assert versions(campaign) == [bumped + 1]
