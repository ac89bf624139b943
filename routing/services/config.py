"""A campaign's routing configuration as plain data, cached per process by ``Campaign.config_version``."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from django.db.models import Exists, OuterRef, Q

from calltrack import tags as tag_rules
from routing import decision as dec
from routing import lookup
from routing.tagging import HoursTag
from tracking.models import (
    Call,
    Campaign,
    CampaignHandler,
    ConversionDestination,
    ConversionKind,
    ConversionRule,
    Handler,
    HoursMatch,
    IVROption,
    RoutingTable,
    TaggingHours,
    Webhook,
    WhenUnavailable,
)
from tracking.services.conversions import Rule, campaign_rules
from tracking.spam_rules import SpamRules, spam_rules_read


def campaign_options(campaign: Campaign) -> list[dec.HandlerOption]:
    """The campaign's handlers as plain data, campaign overrides applied (one query, whatever their number)."""
    return _campaign_options_load(campaign)[0]


def _campaign_options_load(campaign: Campaign) -> tuple[list[dec.HandlerOption], bool, bool | None]:
    """The campaign's handlers, whether an "attempt" conversion rule limits its calls to one handler, and whether it
    sends conversions to ad platforms (the same query: EXISTS beside each row; no handler: nothing to limit, and
    None: not known)."""
    attempt_rule = Exists(ConversionRule.objects.filter(campaign_id=OuterRef("campaign_id"), kind=ConversionKind.ATTEMPT))
    sends = Exists(ConversionDestination.objects.filter(campaign_id=OuterRef("campaign_id"), enabled=True))
    rows = CampaignHandler.objects.filter(campaign_id=campaign.pk).order_by().annotate(attempt_rule=attempt_rule, sends=sends).values(
        "attempt_rule", "sends", *OPTION_COLUMNS.values(), *_OPTION_INPUTS)
    out = []
    for r in rows:
        digits = r["handler__receiving_number__extension_digits"] or ""
        out.append(dec.HandlerOption.from_row({
            **{name: r[path] for name, path in OPTION_COLUMNS.items()},
            "number": r["handler__receiving_number__number"] or "",
            "send_digits": ("w" * (2 * (r["handler__receiving_number__digits_delay"] or 0)) + digits) if digits else "",
            "priority": r["priority"] if r["priority"] is not None else r["handler__priority"],
            "weight": r["weight"] if r["weight"] is not None else r["handler__weight"],
            "enabled": bool(r["enabled"] and r["handler__enabled"]), "enabled_in_campaign": bool(r["enabled"]),
            "business_hours": r["handler__business_hours"] or {}, "tag_criteria": tuple(r["handler__tag_criteria"] or ()),
            "ring_timeout": r["handler__ring_timeout"] or r["handler__receiving_number__ring_timeout"] or 30,
            "duplicate_days": (r["duplicate_days"] or None) if r["duplicate_days"] is not None else r["handler__duplicate_days"],
            "duplicate_on": r["handler__duplicate_on"] or dec.DUPLICATE_ANSWERED,
        }))
    return out, any(r["attempt_rule"] for r in rows), (any(r["sends"] for r in rows) if rows else None)


# The campaign's handler list, declared once: each option field read as it is (option field -> CampaignHandler
# path), and the columns the other fields (OPTION_COMPUTED) are worked out from. A test checks that together
# they cover ``decision.OPTION_FIELDS``.
OPTION_COLUMNS: dict[str, str] = {
    "id": "handler_id", "name": "handler__name", "receiving_number_id": "handler__receiving_number_id", "position": "position",
    "timezone": "handler__timezone", "always_open": "handler__always_open",
    "latitude": "handler__latitude", "longitude": "handler__longitude",
    **{name: f"handler__{name}" for name in dec.CAP_FIELDS},
}
OPTION_COMPUTED = ("number", "send_digits", "priority", "weight", "enabled", "enabled_in_campaign", "business_hours", "tag_criteria",
                   "ring_timeout", "duplicate_days", "duplicate_on")
_OPTION_INPUTS = (
    "priority", "weight", "enabled", "handler__enabled", "handler__priority", "handler__weight", "handler__business_hours",
    "handler__tag_criteria", "handler__ring_timeout", "handler__receiving_number__number", "handler__receiving_number__extension_digits",
    "handler__receiving_number__digits_delay", "handler__receiving_number__ring_timeout", "duplicate_days",
    "handler__duplicate_days", "handler__duplicate_on",
)


def handler_option(handler_id: int) -> dec.HandlerOption:
    """One handler as plain data with its own priority and weight (not in the campaign's list)."""
    h = Handler.objects.select_related("receiving_number").get(pk=handler_id)
    rn = h.receiving_number
    return dec.HandlerOption.from_row({
        "id": h.pk, "name": h.name, "number": rn.number, "receiving_number_id": rn.pk, "send_digits": rn.send_digits,
        "priority": h.priority, "weight": h.weight, "enabled": h.enabled, "timezone": h.timezone, "always_open": h.always_open,
        "business_hours": h.business_hours or {}, "tag_criteria": tuple(h.tag_criteria or ()), "ring_timeout": h.effective_ring_timeout,
        "latitude": h.latitude, "longitude": h.longitude,
        "duplicate_days": h.duplicate_days, "duplicate_on": h.duplicate_on or dec.DUPLICATE_ANSWERED,
        **{name: getattr(h, name) for name in dec.CAP_FIELDS},
    })


@dataclass(frozen=True)
class CampaignConfig:
    """A campaign's routing configuration as plain data: handlers (overrides applied), IVR options and the
    events its enabled webhooks listen to. Cached per process by ``Campaign.config_version``."""

    version: int
    options: tuple[dec.HandlerOption, ...]
    ivr_choices: tuple[dec.IVRChoice, ...]
    webhook_events: frozenset[str]
    one_handler_per_call: bool = False  # an "attempt" conversion rule: one handler per call is dialled
    hours_tags: tuple[HoursTag, ...] = ()
    ivr_menus: tuple[dec.IVRMenuData, ...] = ()  # the sub-menus its keys open
    routing_tables: tuple[lookup.Table, ...] = ()  # its enabled lookup tables (their rows are read per call)
    sends_conversions: bool = False  # an enabled conversion destination (tracking.services.ad_uploads)
    # Its spam rules, parsed once (the spam columns bump config_version like every routing setting).
    spam: SpamRules = field(default_factory=SpamRules)

    def ivr_menu(self, menu_id: int) -> dec.IVRMenuData | None:
        return next((m for m in self.ivr_menus if m.id == menu_id), None)

    @cached_property
    def by_id(self) -> dict[int, dec.HandlerOption]:
        return {o.id: o for o in self.options}

    @cached_property
    def priority_groups(self) -> tuple[tuple[dec.HandlerOption, ...], ...]:
        """The handlers by priority, lowest number first, each group in list order (a priority-weight plan decides
        one group at a time: ``routing.services.plan``). Worked out once per configuration."""
        groups: dict[int, list[dec.HandlerOption]] = {}
        for o in sorted(self.options, key=lambda o: (o.priority, o.position, o.id)):
            groups.setdefault(o.priority, []).append(o)
        return tuple(tuple(group) for _, group in sorted(groups.items()))

    @cached_property
    def capped(self) -> tuple[dec.HandlerOption, ...]:
        """The handlers with caps: whose counters a call's plan reads (one tuple per configuration, so the counter
        statement's parameter for it is built once per period: ``routing.store.counters``)."""
        return tuple(o for o in self.options if o.has_caps)

    @cached_property
    def first_group_capped(self) -> tuple[dec.HandlerOption, ...]:
        """The capped handlers of the first priority group (``priority_groups``)."""
        return tuple(o for o in self.priority_groups[0] if o.has_caps) if self.priority_groups else ()

    @cached_property
    def has_else_route(self) -> bool:
        return any(o.tag_criteria and tag_rules.is_else(o.tag_criteria) for o in self.options)


_CONFIGS: dict[int, CampaignConfig] = {}


def campaign_config(campaign: Campaign) -> CampaignConfig:
    """The campaign's routing configuration: from this process's cache when ``campaign.config_version`` (read
    with the campaign's row) matches, else four queries (handlers, IVR options, webhooks, tagging hours) and cached.

    Database triggers bump the version on every write to these rows (tracking/sql/config_version.*.sql). Caps
    are re-read from the locked handler rows before a slot is taken, so a stale entry cannot overbook.
    """
    cached = _CONFIGS.get(campaign.pk)
    if cached is not None and cached.version == campaign.config_version:
        return cached
    events: set[str] = set()
    for hook_events in Webhook.objects.filter(campaign_id=campaign.pk, enabled=True).values_list("events", flat=True):
        events.update(e for e in (hook_events or []) if isinstance(e, str))
    options, one_handler, sends = _campaign_options_load(campaign)
    if sends is None:  # no handler row to carry it: asked alone (a campaign without handlers)
        sends = ConversionDestination.objects.filter(campaign_id=campaign.pk, enabled=True).exists()
    choices, menus = _ivr_load(campaign)
    config = CampaignConfig(
        version=campaign.config_version, options=tuple(options),
        ivr_choices=tuple(choices), webhook_events=frozenset(events), one_handler_per_call=one_handler, sends_conversions=sends,
        hours_tags=tuple(_hours_tags_load(campaign)), ivr_menus=tuple(menus),
        spam=spam_rules_read(action=campaign.spam_action, threshold=campaign.spam_threshold, raw=campaign.spam_rules),
        routing_tables=tuple(
            lookup.Table(t.pk, t.name, t.tag_key, then_others=t.when_unavailable == WhenUnavailable.OTHERS)
            for t in RoutingTable.objects.filter(campaign_id=campaign.pk, enabled=True).order_by("position", "id")
        ),
    )
    _CONFIGS[campaign.pk] = config
    return config


def campaign_webhook_events(call: Call) -> frozenset[str] | None:
    """The events the call's campaign's webhooks listen to, when its campaign is at hand (None: unknown)."""
    if call.campaign_id is None:
        return frozenset()
    if not Call.campaign.is_cached(call):
        return None
    campaign = call.campaign
    return campaign_config(campaign).webhook_events if campaign is not None else frozenset()


def campaign_sends_conversions(call: Call) -> bool | None:
    """Whether the call's campaign sends conversions to ad platforms, when its campaign is at hand (None: unknown)."""
    if call.campaign_id is None:
        return False
    if not Call.campaign.is_cached(call):
        return None
    campaign = call.campaign
    return campaign_config(campaign).sends_conversions if campaign is not None else False


_RULES: dict[int, tuple[int, tuple[Rule, ...]]] = {}


def campaign_conversion_rules(campaign: Campaign) -> tuple[Rule, ...]:
    """The campaign's conversion rules, from this process's cache when ``campaign.config_version`` (read with the
    campaign's row) matches, else one query: every completed call is decided with them (the status callback).
    Every rule written or deleted bumps the version (a trigger: tracking/sql/config_version.*.sql)."""
    cached = _RULES.get(campaign.pk)
    if cached is not None and cached[0] == campaign.config_version:
        return cached[1]
    rules = tuple(campaign_rules(campaign.pk))
    _RULES[campaign.pk] = (campaign.config_version, rules)
    return rules


def campaign_config_cache_clear() -> None:
    """Forget every cached campaign configuration (tests; a process that reuses ids after a database reset)."""
    _CONFIGS.clear()
    _RULES.clear()


def campaign_ivr_choices(campaign: Campaign, menu_id: int | None = None) -> list[dec.IVRChoice]:
    """The keys of one menu: the campaign's main menu (``menu_id`` None) or one of its sub-menus."""
    return [c for c in campaign_config(campaign).ivr_choices if c.menu_id == menu_id]


def _ivr_load(campaign: Campaign) -> tuple[list[dec.IVRChoice], list[dec.IVRMenuData]]:
    """Every key of every menu, and the sub-menus they open or belong to (one query): a menu a key opens, or one with
    keys of its own (a receiving number's no-answer routing may play it); a menu without keys is never heard."""
    choices: list[dec.IVRChoice] = []
    menus: dict[int, dec.IVRMenuData] = {}
    for o in IVROption.objects.filter(campaign_id=campaign.pk).select_related("submenu", "menu").order_by("menu_id", "digit"):
        choices.append(dec.IVRChoice(
            o.digit, o.action, o.tag_key, o.tag_value, o.handler_id, o.label, o.response, menu_id=o.menu_id,
            submenu_id=o.submenu_id, number=o.number,
        ))
        for sub in (o.submenu, o.menu):
            if sub is not None and sub.pk not in menus:
                menus[sub.pk] = dec.IVRMenuData(sub.pk, sub.name, sub.prompt, sub.timeout, sub.repeat, sub.default_digit)
    return choices, list(menus.values())


def _hours_tags_load(campaign: Campaign) -> list[HoursTag]:
    """The enabled tagging hours of the campaign and the account-wide ones (one query)."""
    # The campaign's own schedules and its account's account-wide ones.
    rows = TaggingHours.objects.filter(Q(campaign_id=campaign.pk) | Q(campaign__isnull=True, account_id=campaign.account_id),
                                       enabled=True).order_by("id")
    return [
        HoursTag(
            name=t.name, tag_key=t.tag_key, tag_value=t.tag_value, timezone=t.timezone, hours=t.hours or {},
            inside=t.match == HoursMatch.INSIDE, campaign_wide=t.campaign_id is not None,
        )
        for t in rows
    ]
