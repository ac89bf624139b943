"""Voice routing's database work: start a call, take handler slots under row locks, record attempts.

The decisions themselves are pure functions in ``routing.decision``; this module loads their inputs
(one query per kind of data, never one per handler), writes their outcome and renders the TwiML with
``routing.twiml``. Every answer given for a call is stored in ``Call.decision["answers"]`` under a key
naming the request, so a webhook Twilio retries gets the very same TwiML and changes nothing.
"""

from __future__ import annotations

import logging
import random
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from dataclasses import replace as dataclass_replace
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Case, Count, F, Q, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone

from calltrack import fastdb, phone
from numbers.models import BlockedCaller, NoAnswerAction, NumberPool, NumberStatus, ReceivingNumber, TrackingNumber
from numbers.models.lines import ROUTABLE_STATUSES
from numbers.selectors import session_for_call
from routing import decision as dec
from routing import geo, twiml
from routing import tags as tag_rules
from tracking.models import (
    AttemptKind,
    AttemptStatus,
    Call,
    CallAttempt,
    CallStatus,
    Campaign,
    CampaignHandler,
    CapTrigger,
    Contact,
    GreetingKind,
    Handler,
    IVROption,
    Source,
    Webhook,
)
from tracking.services.call_events import call_event_record, call_lifecycle_notify

log = logging.getLogger("calltrack.routing")

MAX_CALL_SECONDS = 4 * 3600  # Twilio's default <Dial timeLimit>: an answered leg cannot outlive this.
TWILIO_DIAL_STATUS = {
    "completed": AttemptStatus.COMPLETED, "answered": AttemptStatus.COMPLETED, "busy": AttemptStatus.BUSY,
    "no-answer": AttemptStatus.NO_ANSWER, "failed": AttemptStatus.FAILED, "canceled": AttemptStatus.CANCELED,
}
TWILIO_CALL_STATUS = {
    "queued": CallStatus.RINGING, "initiated": CallStatus.RINGING, "ringing": CallStatus.RINGING,
    "in-progress": CallStatus.IN_PROGRESS, "completed": CallStatus.COMPLETED, "busy": CallStatus.BUSY,
    "no-answer": CallStatus.NO_ANSWER, "failed": CallStatus.FAILED, "canceled": CallStatus.CANCELED,
}
_STATUS_RANK = {CallStatus.RINGING: 0, CallStatus.IN_PROGRESS: 1}


class ParamError(ValueError):
    """A webhook parameter is missing or unreadable (the view answers with the fail-safe)."""


@dataclass(frozen=True)
class IncomingCall:
    """The parameters of Twilio's ``/voice/incoming`` request we use."""

    call_sid: str
    caller: str
    called: str
    from_city: str = ""
    from_state: str = ""
    from_zip: str = ""
    from_country: str = ""

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> IncomingCall:
        sid = (params.get("CallSid") or "").strip()
        to = (params.get("To") or "").strip()
        caller = (params.get("From") or "").strip()
        missing = [name for name, value in (("CallSid", sid), ("To", to), ("From", caller)) if not value]
        if missing:
            raise ParamError(f"missing parameter {', '.join(missing)}")
        if len(sid) > 64:
            raise ParamError("CallSid is longer than 64 characters")
        try:
            called = phone.to_e164(to)
        except phone.InvalidPhoneNumber as exc:
            raise ParamError(f"To: {exc}") from None
        caller = phone.to_e164_or_none(caller) or caller[:32]
        return cls(
            call_sid=sid, caller=caller, called=called,
            from_city=params.get("FromCity", "")[:100], from_state=params.get("FromState", "")[:100],
            from_zip=params.get("FromZip", "")[:20], from_country=params.get("FromCountry", "")[:2],
        )


@dataclass(frozen=True)
class Links:
    """Builds the absolute URLs written into our TwiML (Twilio signs and calls them back)."""

    base: str

    def url(self, path: str, **query: Any) -> str:
        return f"{self.base}{path}" + (f"?{urlencode(query)}" if query else "")


# --- Reads ------------------------------------------------------------------------------------------------


def _is_number(value: str) -> bool:
    """A real, valid E.164 number (not 'anonymous', 'Restricted' or Twilio's +266696687 for a withheld number)."""
    return bool(value) and phone.to_e164_or_none(value) == value


class _JoinedLoader:
    """One hand-written SELECT of a model row with some of its foreign keys joined, turned into model instances
    (related caches filled) with the same converters the ORM applies. Built once per process: the ORM spent
    more time compiling the hot path's first query than the database spent running it."""

    def __init__(self, model: type, joins: Mapping[str, type], where: str, extra: str = "") -> None:
        self.model, self.joins = model, dict(joins)
        self.parts: list[tuple[str | None, type, int, list[tuple[Any, list[Any]]]]] = []
        self.where, self.extra = where, extra
        self._sql: str | None = None

    def sql(self) -> str:
        if self._sql is None:
            qn = connection.ops.quote_name
            cols, tables = [], [f"{qn(self.model._meta.db_table)} t0"]
            for i, (name, model) in enumerate([(None, self.model), *self.joins.items()]):
                alias = f"t{i}"
                fields = list(model._meta.concrete_fields)
                converted = []
                for f in fields:
                    col = f.get_col(alias)
                    converted.append((col, connection.ops.get_db_converters(col) + col.get_db_converters(connection)))
                self.parts.append((name, model, next(j for j, f in enumerate(fields) if f.primary_key), converted))
                cols += [f"{alias}.{qn(f.column)}" for f in fields]
                if name is not None:
                    fk = self.model._meta.get_field(name)
                    tables.append(f"LEFT JOIN {qn(model._meta.db_table)} {alias} ON {alias}.{qn(model._meta.pk.column)} = t0.{qn(fk.column)}")
            self._sql = f"SELECT {', '.join(cols)}{', ' + self.extra if self.extra else ''} FROM {' '.join(tables)} WHERE {self.where}"
        return self._sql

    def fetch(self, params: list[Any]) -> tuple[Any, tuple[Any, ...]] | None:
        """The main instance (with its joined instances cached) and the extra columns, or None."""
        with connection.cursor() as cursor:
            cursor.execute(self.sql(), params)
            row = cursor.fetchone()
        if row is None:
            return None
        pos, instances = 0, {}
        for name, model, pk_index, columns in self.parts:
            values = list(row[pos:pos + len(columns)])
            pos += len(columns)
            for i, (col, converters) in enumerate(columns):
                if converters and values[i] is not None:
                    for convert in converters:
                        values[i] = convert(values[i], col, connection)
            instances[name] = None if values[pk_index] is None else model.from_db(connection.alias, None, values)
        main = instances.pop(None)
        for name, instance in instances.items():
            main._state.fields_cache[name] = instance
        return main, row[pos:]


_TRACKING_NUMBER = _JoinedLoader(
    TrackingNumber, {"campaign": Campaign, "source": Source, "pool": NumberPool},
    where=f"t0.number = %s AND t0.status IN ({', '.join(repr(str(s)) for s in ROUTABLE_STATUSES)})",
    extra=(
        f"EXISTS (SELECT 1 FROM {BlockedCaller._meta.db_table} b WHERE b.number = %s "
        "AND (b.campaign_id IS NULL OR b.campaign_id = COALESCE(t0.campaign_id, t3.campaign_id)))"
    ),
)


def tracking_number_for(number: str, *, caller: str = "") -> TrackingNumber | None:
    """The routable tracking number callers dialled, with its campaign, source and pool (one query).

    With ``caller``, the same query says whether that caller is blocked everywhere or in the number's campaign
    (``caller_blocked``), saving the hot path a round trip. An anonymous caller cannot be on the list (and is
    no phone number to look up): ``caller_blocked`` is then False.
    """
    found = _TRACKING_NUMBER.fetch([caller if _is_number(caller) else "", number])
    if found is None:
        return None
    tn, (blocked,) = found
    tn.caller_blocked = bool(blocked)
    return tn


def campaign_options(campaign: Campaign) -> list[dec.HandlerOption]:
    """The campaign's handlers as plain data, campaign overrides applied (one query, whatever their number)."""
    rows = CampaignHandler.objects.filter(campaign_id=campaign.pk).order_by().values(
        "position", "priority", "weight", "enabled",
        "handler_id", "handler__name", "handler__enabled", "handler__priority", "handler__weight",
        "handler__timezone", "handler__always_open", "handler__business_hours", "handler__tag_criteria",
        "handler__ring_timeout", "handler__concurrency_cap", "handler__hourly_cap", "handler__daily_cap",
        "handler__monthly_cap", "handler__total_cap", "handler__cap_counts", "handler__receiving_number_id",
        "handler__receiving_number__number", "handler__receiving_number__extension_digits",
        "handler__receiving_number__digits_delay", "handler__receiving_number__ring_timeout",
    )
    out = []
    for r in rows:
        digits = r["handler__receiving_number__extension_digits"] or ""
        send_digits = ("w" * (2 * (r["handler__receiving_number__digits_delay"] or 0)) + digits) if digits else ""
        out.append(
            dec.HandlerOption(
                id=r["handler_id"], name=r["handler__name"], number=r["handler__receiving_number__number"] or "",
                receiving_number_id=r["handler__receiving_number_id"], send_digits=send_digits,
                priority=r["priority"] if r["priority"] is not None else r["handler__priority"],
                weight=r["weight"] if r["weight"] is not None else r["handler__weight"],
                position=r["position"], enabled=bool(r["enabled"] and r["handler__enabled"]),
                timezone=r["handler__timezone"], always_open=r["handler__always_open"],
                business_hours=r["handler__business_hours"] or {}, tag_criteria=tuple(r["handler__tag_criteria"] or ()),
                ring_timeout=r["handler__ring_timeout"] or r["handler__receiving_number__ring_timeout"] or 30,
                concurrency_cap=r["handler__concurrency_cap"], hourly_cap=r["handler__hourly_cap"],
                daily_cap=r["handler__daily_cap"], monthly_cap=r["handler__monthly_cap"], total_cap=r["handler__total_cap"],
                cap_counts=r["handler__cap_counts"],
            )
        )
    return out


def handler_option(handler_id: int) -> dec.HandlerOption:
    """One handler as plain data with its own priority and weight (not in the campaign's list)."""
    h = Handler.objects.select_related("receiving_number").get(pk=handler_id)
    rn = h.receiving_number
    return dec.HandlerOption(
        id=h.pk, name=h.name, number=rn.number, receiving_number_id=rn.pk, send_digits=rn.send_digits, priority=h.priority,
        weight=h.weight, enabled=h.enabled, timezone=h.timezone, always_open=h.always_open, business_hours=h.business_hours or {},
        tag_criteria=tuple(h.tag_criteria or ()), ring_timeout=h.effective_ring_timeout, concurrency_cap=h.concurrency_cap,
        hourly_cap=h.hourly_cap, daily_cap=h.daily_cap, monthly_cap=h.monthly_cap, total_cap=h.total_cap, cap_counts=h.cap_counts,
    )


@dataclass(frozen=True)
class CampaignConfig:
    """A campaign's routing configuration as plain data: handlers (overrides applied), IVR options and the
    events its enabled webhooks listen to. Cached per process by ``Campaign.config_version``."""

    version: int
    options: tuple[dec.HandlerOption, ...]
    ivr_choices: tuple[dec.IVRChoice, ...]
    webhook_events: frozenset[str]


_CONFIGS: dict[int, CampaignConfig] = {}


def campaign_config(campaign: Campaign) -> CampaignConfig:
    """The campaign's routing configuration: from this process's cache when ``campaign.config_version`` (read
    with the campaign's row) matches, else three queries (handlers, IVR options, webhooks) and cached.

    Every write path that changes these rows bumps the version (``tracking.services.campaign_config``). Caps
    are re-read from the locked handler rows before a slot is taken, so a stale entry cannot overbook.
    """
    cached = _CONFIGS.get(campaign.pk)
    if cached is not None and cached.version == campaign.config_version:
        return cached
    events: set[str] = set()
    for hook_events in Webhook.objects.filter(campaign_id=campaign.pk, enabled=True).values_list("events", flat=True):
        events.update(e for e in (hook_events or []) if isinstance(e, str))
    config = CampaignConfig(
        version=campaign.config_version, options=tuple(campaign_options(campaign)),
        ivr_choices=tuple(_ivr_choices_load(campaign)), webhook_events=frozenset(events),
    )
    _CONFIGS[campaign.pk] = config
    return config


def _webhook_events(call: Call) -> frozenset[str] | None:
    """The events the call's campaign's webhooks listen to, when its campaign is at hand (None: unknown)."""
    if call.campaign_id is None:
        return frozenset()
    if not Call.campaign.is_cached(call):
        return None
    return campaign_config(call.campaign).webhook_events


def campaign_config_cache_clear() -> None:
    """Forget every cached campaign configuration (tests; a process that reuses ids after a database reset)."""
    _CONFIGS.clear()


def _window_q(options: Iterable[dec.HandlerOption], at: datetime, period: str, field: str) -> Q:
    """started_at (or ``field``) inside each handler's current hour/day/month, grouped by time zone."""
    by_zone: dict[str, list[int]] = defaultdict(list)
    for o in options:
        by_zone[o.timezone].append(o.id)
    q: Q | None = None
    for zone_name, ids in by_zone.items():
        start = getattr(dec.period_starts(zone_name, at), period)
        cond = Q(handler_id__in=ids, **{f"{field}__gte": start})
        q = cond if q is None else q | cond
    assert q is not None, "at least one handler"
    return q


def handler_loads(*, options: Iterable[dec.HandlerOption], at: datetime, all_in_progress: bool = False) -> dict[int, dec.HandlerLoad]:
    """Live counters for the given handlers: one query over attempts, plus one over calls when a handler's
    caps count conversions. Handlers without caps are left out unless ``all_in_progress`` (least connected).

    Calls in progress are attempts holding a slot whose expiry has not passed (a lost callback cannot hold a
    slot forever). Connections counted toward the period caps are attempts marked ``counted``: set when the
    slot is taken and cleared when the leg was not answered, so concurrent calls cannot overbook a cap.
    With caps on conversions, converted calls count, plus calls still in progress (they may yet convert).
    """
    options = [o for o in options if all_in_progress or o.has_caps]
    if not options:
        return {}
    conn = [o for o in options if o.has_period_caps and o.cap_counts == CapTrigger.CONNECTION]
    counters: dict[int, dict[str, int]] = {o.id: {"in_progress": 0, "hour": 0, "day": 0, "month": 0, "total": 0} for o in options}
    for row in _attempt_counts(options=options, conn=conn, at=at):
        counters[row[0]].update(zip(("in_progress", "hour", "day", "month", "total"), (int(v or 0) for v in row[1:]), strict=True))
    conv = [o for o in options if o.has_period_caps and o.cap_counts == CapTrigger.CONVERSION]
    if conv:
        # Conversions as tracking counts them (Call.objects.handler_conversions): the handler's revenue side
        # converted, in the window of converted_at.
        converted = Q(revenue_converted=True)
        rows = (
            Call.objects.filter(handler_id__in=[o.id for o in conv], revenue_converted=True).order_by().values("handler_id").annotate(
                hour=Count("id", filter=converted & _window_q(conv, at, "hour", "converted_at")),
                day=Count("id", filter=converted & _window_q(conv, at, "day", "converted_at")),
                month=Count("id", filter=converted & _window_q(conv, at, "month", "converted_at")),
                total=Count("id"),
            )
        )
        for row in rows:
            counters[row["handler_id"]].update({k: v for k, v in row.items() if k != "handler_id"})
        for o in conv:  # calls in progress may still convert: count them so a burst cannot overbook
            c = counters[o.id]
            for period in ("hour", "day", "month", "total"):
                c[period] += c["in_progress"]
    return {hid: dec.HandlerLoad(**c) for hid, c in counters.items()}


def _attempt_counts(*, options: list[dec.HandlerOption], conn: list[dec.HandlerOption], at: datetime) -> list[tuple]:
    """One aggregate over attempts: per handler, slots held now and counted attempts in its hour/day/month/ever.

    Hand-written SQL because it is the hot path's biggest query: the ORM spent more time building this
    filter (one window per time zone and period) than the database spent running it. ``COUNT(*) FILTER``
    runs on PostgreSQL and on SQLite >= 3.30.
    """
    adapt = connection.ops.adapt_datetimefield_value
    now = adapt(at)

    def ids(group: Iterable[dec.HandlerOption]) -> tuple[str, list[Any]]:
        values = [o.id for o in group]
        return ", ".join(["%s"] * len(values)), values

    by_zone: dict[str, list[dec.HandlerOption]] = defaultdict(list)
    for o in conn:
        by_zone[o.timezone].append(o)

    def window(period: str) -> tuple[str, list[Any]]:
        parts, params = [], []
        for zone_name, group in by_zone.items():
            marks, values = ids(group)
            parts.append(f"(handler_id IN ({marks}) AND started_at >= %s)")
            params += [*values, adapt(getattr(dec.period_starts(zone_name, at), period))]
        return " OR ".join(parts), params

    select, select_params = ["COUNT(*) FILTER (WHERE holds_slot AND slot_expires_at > %s)"], [now]
    rows, rows_params = "(holds_slot AND slot_expires_at > %s)", [now]
    if conn:
        marks, conn_ids = ids(conn)
        counted = f"counted AND handler_id IN ({marks})"
        for period in ("hour", "day", "month"):
            text, params = window(period)
            select.append(f"COUNT(*) FILTER (WHERE {counted} AND ({text}))")
            select_params += [*conn_ids, *params]
        select.append(f"COUNT(*) FILTER (WHERE {counted})")
        select_params += conn_ids
        month, month_params = window("month")
        totals_marks, totals = ids(o for o in conn if o.total_cap is not None)
        rows += f" OR (counted AND ({month}" + (f" OR handler_id IN ({totals_marks})" if totals else "") + "))"
        rows_params += [*month_params, *totals]
    else:
        select += ["0"] * 4
    all_marks, all_ids = ids(options)
    sql = (
        f"SELECT handler_id, {', '.join(select)} FROM {CallAttempt._meta.db_table} "
        f"WHERE handler_id IN ({all_marks}) AND ({rows}) GROUP BY handler_id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*select_params, *all_ids, *rows_params])
        return cursor.fetchall()


def attempt_slots_release_stale(*, at: datetime | None = None) -> int:
    """Clear ``holds_slot`` on attempts whose slot expired (their callback was lost). Idempotent; counting
    already ignores expired slots, this only tidies the flag. Returns how many were released."""
    return CallAttempt.objects.filter(holds_slot=True, slot_expires_at__lte=at or timezone.now()).update(holds_slot=False)


# --- Starting a call ----------------------------------------------------------------------------------------


def call_start(
    *, incoming: IncomingCall, tracking_number: TrackingNumber | None, at: datetime | None = None, optimistic: bool = False
) -> tuple[Call, bool]:
    """Record the call Twilio announced. Idempotent on CallSid: a retried webhook returns the existing call
    and ``created=False`` (also when two deliveries race: the unique index decides).

    ``optimistic=True`` (the hot path) skips the look-up and the savepoint and simply inserts: a CallSid seen
    before then raises IntegrityError, which aborts the caller's transaction, and the caller runs again with
    ``optimistic=False`` (``/voice/incoming`` does). Three round trips fewer for every new call.
    """
    if not optimistic:
        existing = Call.objects.filter(call_sid=incoming.call_sid).first()
        if existing is not None:
            return existing, False
    at = at or timezone.now()
    campaign = source = session = None
    marketing: dict[str, Any] = {}
    landing = referrer = visitor = ""
    if tracking_number is not None:
        campaign, source = tracking_number.campaign, tracking_number.source
        marketing = dict(tracking_number.marketing_data or {})
        if tracking_number.pool_id:
            pool = tracking_number.pool
            campaign = campaign or pool.campaign
            source = source or pool.source
            session = session_for_call(tracking_number=tracking_number, at=at)
            if session is not None:
                marketing = dict(session.marketing_data or {})
                landing, referrer, visitor = session.landing_page, session.referrer, session.visitor_id
    where = geo.caller_geo(
        number=incoming.caller, city=incoming.from_city, state=incoming.from_state,
        zip_code=incoming.from_zip, country=incoming.from_country,
    )
    tags = dec.call_tags(
        caller_state=where.state, caller_zip=where.zip, caller_city=where.city, caller_country=where.country,
        source=source.source_id if source else "", marketing_data=marketing,
    )
    call = Call(
        call_sid=incoming.call_sid, tracking_number=tracking_number, campaign=campaign, source=source, session=session,
        caller_number=incoming.caller, called_number=incoming.called, caller_city=where.city[:100],
        caller_state=where.state[:100], caller_zip=where.zip[:20], caller_country=where.country[:2],
        started_at=at, tags=tags, marketing_data=marketing, landing_page=landing[:2000], referrer=referrer[:2000],
        visitor_id=visitor[:64], decision={"answers": {}},
    )
    if optimistic:
        fastdb.insert(call)
    else:
        try:
            with transaction.atomic():
                fastdb.insert(call)
        except IntegrityError:
            return Call.objects.get(call_sid=incoming.call_sid), False
    call_lifecycle_notify(
        call=call, event="call.started", webhook_events=_webhook_events(call),
        message=f"{call.caller_number} called {call.called_number}" + (f" ({campaign})" if campaign else ""),
        data={"tags": tags},
    )
    return call, True


# --- Answers -------------------------------------------------------------------------------------------------


def _voice(campaign: Campaign | None) -> twiml.Voice:
    if campaign is None:
        return twiml.Voice()
    return twiml.Voice(campaign.greeting_voice, campaign.greeting_language)


def _greeting(campaign: Campaign) -> twiml.Greeting | None:
    if campaign.greeting_kind == GreetingKind.NONE:
        return None
    return twiml.Greeting(campaign.greeting_kind, campaign.greeting_text, campaign.greeting_url, _voice(campaign))


def _store(call: Call, key: str, answer: str, *fields: str) -> str:
    call.decision.setdefault("answers", {})[key] = answer
    fastdb.update(call, ("decision", "plan_index", *fields))
    return answer


def incoming_answer(*, call: Call, tracking_number: TrackingNumber | None, links: Links, created: bool) -> str:
    """The TwiML for ``/voice/incoming``: reject, menu, or the first dial. A retry gets the stored answer."""
    stored = call.decision.get("answers", {}).get("incoming")
    if stored:
        return stored
    if not created:
        # The call exists without an answer: only a delivery whose routing failed leaves that (the fail-safe
        # recorded the call). Route it properly now.
        log.warning("CallSid %s: routing again a call that has no stored answer", call.call_sid)
    campaign = call.campaign
    if tracking_number is None or campaign is None:
        raise LookupError(f"no routable tracking number with a campaign for {call.called_number}")
    if tracking_number.status == NumberStatus.QUARANTINED:
        # A number being given up: its calls go to the fail-safe of the campaign it last routed for.
        reason = f"tracking number {tracking_number.number} is quarantined"
        call_event_record(call=call, kind="call.number_quarantined", message=f"{reason}: dialling the fail-safe")
        return _store(call, "incoming", failsafe_answer(call_sid=call.call_sid, caller=call.caller_number, reason=reason))
    if not campaign.enabled:
        call_event_record(call=call, kind="call.campaign_disabled", message="campaign is disabled: dialling the fail-safe")
        return _store(call, "incoming", failsafe_answer(call_sid=call.call_sid, caller=call.caller_number, reason="campaign is disabled"))
    # Blocked callers and the number's filters come before any prompt.
    blocked = None
    if _is_number(call.caller_number) and getattr(tracking_number, "caller_blocked", True):  # unknown (not asked with the number) or blocked: look
        blocked = BlockedCaller.objects.filter(number=call.caller_number).filter(Q(campaign__isnull=True) | Q(campaign_id=campaign.pk)).first()
    verdict = (False, f"caller is blocked{': ' + blocked.reason if blocked.reason else ''}") if blocked else (True, "")
    if verdict[0] and tracking_number.filters:
        verdict = tag_rules.filter_verdict(tag_rules.validate_filters(tracking_number.filters), call.tags)
    if not verdict[0]:
        now = timezone.now()
        call.status, call.reject_reason, call.ended_at = CallStatus.REJECTED, verdict[1][:200], now
        call_event_record(call=call, kind="call.rejected", message=verdict[1])
        return _store(call, "incoming", twiml.reject(), "status", "reject_reason", "ended_at")
    if campaign.enabled and campaign.ivr_prompt.strip():
        choices = _ivr_choices(campaign)
        if choices:
            call.decision["ivr"] = {"rounds": 1}
            call_event_record(call=call, kind="ivr.menu", message="menu played (round 1)")
            answer = twiml.menu(
                prompt=campaign.ivr_prompt, action=links.url("/voice/gather", call=call.pk, round=1),
                redirect=links.url("/voice/gather", call=call.pk, round=1), timeout=campaign.ivr_timeout,
                voice=_voice(campaign), greeting=_greeting(campaign),
            )
            return _store(call, "incoming", answer)
    return route(call=call, links=links, answer_key="incoming", greeting=_greeting(campaign))


def _ivr_choices(campaign: Campaign) -> list[dec.IVRChoice]:
    return list(campaign_config(campaign).ivr_choices)


def _ivr_choices_load(campaign: Campaign) -> list[dec.IVRChoice]:
    return [
        dec.IVRChoice(o.digit, o.action, o.tag_key, o.tag_value, o.handler_id, o.label)
        for o in IVROption.objects.filter(campaign_id=campaign.pk).order_by("digit")
    ]


def gather_answer(*, call: Call, digits: str, round_no: int, links: Links) -> str:
    """A key press (or none) on the IVR menu: repeat the menu, or set the tags and route."""
    key = f"gather:{round_no}:{digits}"
    stored = call.decision.get("answers", {}).get(key)
    if stored:
        return stored
    campaign = call.campaign
    if campaign is None:
        raise LookupError("call has no campaign")
    result = dec.ivr_choose(
        digits=digits, round_no=round_no, repeat=campaign.ivr_repeat, default_digit=campaign.ivr_default_digit,
        choices=_ivr_choices(campaign),
    )
    call_event_record(call=call, kind="ivr.result", message=result.note, data={"digits": digits, "round": round_no, "tags": result.tags})
    if result.repeat:
        call.decision["ivr"] = {"rounds": round_no + 1}
        answer = twiml.menu(
            prompt=campaign.ivr_prompt, action=links.url("/voice/gather", call=call.pk, round=round_no + 1),
            redirect=links.url("/voice/gather", call=call.pk, round=round_no + 1), timeout=campaign.ivr_timeout,
            voice=_voice(campaign),
        )
        return _store(call, key, answer)
    if result.tags:
        call.tags = {**call.tags, **result.tags}
        call.save(update_fields=["tags"])
    return route(call=call, links=links, answer_key=key, only_handler_id=result.handler_id)


# --- Routing ----------------------------------------------------------------------------------------------------


def _rr_next(campaign_id: int) -> int:
    """Advance the campaign's round-robin cursor and return its previous value (one UPDATE ... RETURNING;
    the row lock the UPDATE takes makes concurrent calls get consecutive positions)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {Campaign._meta.db_table} SET rr_position = rr_position + 1 WHERE id = %s RETURNING rr_position",
            [campaign_id],
        )
        row = cursor.fetchone()
    return (row[0] - 1) if row else 0


def _sticky_handler(call: Call) -> int | None:
    return (
        Call.objects.filter(campaign_id=call.campaign_id, caller_number=call.caller_number, answered_at__isnull=False, handler__isnull=False)
        .exclude(pk=call.pk).order_by("-started_at").values_list("handler_id", flat=True).first()
    )


def route(*, call: Call, links: Links, answer_key: str, only_handler_id: int | None = None,
          greeting: twiml.Greeting | None = None, rng: random.Random | None = None) -> str:
    """Build the call's dial plan from the campaign's handlers and live counters, then dial its first step.

    Reads: the campaign's handlers (one query), their counters (one query), the sticky handler and the
    round-robin cursor when the campaign uses them. The slot is then taken under a row lock (see ``_advance``).
    """
    campaign = call.campaign
    assert campaign is not None
    at = timezone.now()
    config = campaign_config(campaign)
    options = list(config.options)
    if only_handler_id is not None and all(o.id != only_handler_id for o in options):
        options.append(handler_option(only_handler_id))  # an IVR key may name a handler outside the campaign
    strategy = campaign.routing_strategy
    loads = handler_loads(options=options, at=at, all_in_progress=strategy == dec.LEAST_CONNECTED)
    context = dec.CallContext(call.call_sid, call.caller_number, call.called_number, at, call.tags)
    plan = dec.plan_build(
        context=context, options=options, loads=loads, strategy=strategy, campaign_enabled=campaign.enabled,
        rr_position=_rr_next(campaign.pk) if strategy == dec.ROUND_ROBIN and options else 0,
        # Anonymous callers all look alike: only a real number makes a caller a repeat caller.
        sticky_handler_id=_sticky_handler(call) if campaign.sticky_routing and _is_number(call.caller_number) else None,
        only_handler_id=only_handler_id, rng=rng,
    )
    call.decision.update(plan.as_json())
    call.decision["options"] = {str(o.id): _option_json(o) for o in options if o.id in set(plan.handler_ids)}
    call.plan_index = 0
    return _advance(call=call, links=links, answer_key=answer_key, greeting=greeting)


def _option_json(o: dec.HandlerOption) -> dict[str, Any]:
    return {
        "name": o.name, "number": o.number, "receiving_number": o.receiving_number_id, "send_digits": o.send_digits,
        "ring_timeout": o.ring_timeout, "timezone": o.timezone, "cap_counts": o.cap_counts,
        "caps": [o.concurrency_cap, o.hourly_cap, o.daily_cap, o.monthly_cap, o.total_cap],
    }


def _option_from_json(hid: int, d: Mapping[str, Any]) -> dec.HandlerOption:
    conc, hour, day, month, total = d["caps"]
    return dec.HandlerOption(
        id=hid, name=d["name"], number=d["number"], receiving_number_id=d["receiving_number"], send_digits=d["send_digits"],
        ring_timeout=d["ring_timeout"], timezone=d["timezone"], cap_counts=d["cap_counts"],
        concurrency_cap=conc, hourly_cap=hour, daily_cap=day, monthly_cap=month, total_cap=total,
    )


def _take_step(call: Call, step: list[dec.HandlerOption], at: datetime) -> tuple[list[dec.HandlerOption], list[dec.Skip]]:
    """Which handlers of ``step`` still have room, checked under their row locks.

    Must run inside ``transaction.atomic()``: the capped handlers' rows are locked (``SELECT ... FOR UPDATE``,
    in id order so two calls never deadlock) and their counters re-read; the caller inserts the attempts
    in the same transaction, so the next call waiting on the lock sees them.
    """
    capped = [o for o in step if o.has_caps]
    if not capped:
        return step, []
    # The caps themselves are re-read from the locked rows: the plan may come from a cached configuration.
    rows = Handler.objects.select_for_update().filter(pk__in=[o.id for o in capped]).order_by("pk").values_list(
        "pk", "concurrency_cap", "hourly_cap", "daily_cap", "monthly_cap", "total_cap", "cap_counts")
    caps = {row[0]: row[1:] for row in rows}
    fresh = {
        o.id: dataclass_replace(o, concurrency_cap=c[0], hourly_cap=c[1], daily_cap=c[2], monthly_cap=c[3], total_cap=c[4], cap_counts=c[5])
        for o in capped if (c := caps.get(o.id)) is not None
    }
    loads = handler_loads(options=[o for o in fresh.values() if o.has_caps], at=at)
    free, skips = [], []
    for o in step:
        if o.has_caps and o.id not in fresh:
            skips.append(dec.Skip(o.id, o.name, dec.DISABLED, "handler no longer exists"))
            continue
        o = fresh.get(o.id, o)
        why = dec.cap_reached(o, loads.get(o.id, dec.HandlerLoad())) if o.has_caps else ""
        if why:
            skips.append(dec.Skip(o.id, o.name, dec.CAPPED, why + " (checked under lock)"))
        else:
            free.append(o)
    return free, skips


def _caller_id(call: Call) -> str:
    return call.caller_number if _is_number(call.caller_number) else ""


def _advance(*, call: Call, links: Links, answer_key: str, greeting: twiml.Greeting | None = None) -> str:
    """Dial the next step of the plan that still has room; past the plan, the no-answer routing and the
    fallback chain; past those, the voicemail or the message and hang up. Stores the answer under
    ``answer_key``. Each step's slots are taken and its attempts recorded in one transaction."""
    steps: list[list[int]] = call.decision.get("steps", [])
    options = {int(k): _option_from_json(int(k), v) for k, v in call.decision.get("options", {}).items()}
    while call.plan_index < len(steps):
        step = [options[h] for h in steps[call.plan_index] if h in options]
        call.plan_index += 1
        try:
            return _dial_step(call=call, step=step, links=links, answer_key=answer_key, greeting=greeting, total=len(steps))
        except _StepFull as full:
            call.decision.setdefault("skipped", []).extend(
                {"handler_id": s.handler_id, "name": s.name, "reason": s.reason, "detail": s.detail} for s in full.skips
            )
    return _tail(call=call, links=links, answer_key=answer_key, greeting=greeting)


class _StepFull(Exception):
    """Every handler of a step was capped under its lock: roll the step's savepoint back (which releases the
    row locks it took, so a call never holds one handler's lock while waiting for another's)."""

    def __init__(self, skips: list[dec.Skip]) -> None:
        super().__init__("step full")
        self.skips = skips


def _dial_step(*, call: Call, step: list[dec.HandlerOption], links: Links, answer_key: str,
               greeting: twiml.Greeting | None, total: int) -> str:
    """Take the step's slots and record its attempts in one transaction (a savepoint inside the request's)."""
    campaign = call.campaign
    at = timezone.now()
    # A savepoint only where row locks are taken (capped handlers): rolling it back releases them.
    with transaction.atomic(savepoint=any(o.has_caps for o in step)):
        free, skips = _take_step(call, step, at)
        if not free:
            raise _StepFull(skips)
        if skips:
            call.decision.setdefault("skipped", []).extend(
                {"handler_id": s.handler_id, "name": s.name, "reason": s.reason, "detail": s.detail} for s in skips
            )
        seq = call.decision.get("dials", 0) + 1
        call.decision["dials"] = seq
        margin = timedelta(seconds=settings.CALLTRACK_SLOT_MARGIN_SECONDS)
        timeout = max(o.ring_timeout for o in free)
        attempts = [
            CallAttempt(
                call=call, sequence=seq, kind=AttemptKind.HANDLER, handler_id=o.id, receiving_number_id=o.receiving_number_id,
                number_dialed=o.number, started_at=at, holds_slot=True, slot_expires_at=at + timedelta(seconds=timeout) + margin,
                counted=True,
            )
            for o in free
        ]
        if len(attempts) == 1:
            fastdb.insert(attempts[0])
        else:
            attempts = CallAttempt.objects.bulk_create(attempts)
        numbers = [
            twiml.DialNumber(a.number_dialed, o.send_digits, _whisper_url(call, a, links), links.url("/voice/attempt-status", attempt=a.pk))
            for a, o in zip(attempts, free, strict=True)
        ]
        answer = twiml.dial(
            numbers=numbers, action=links.url("/voice/dial-status", call=call.pk, seq=seq), timeout=timeout,
            caller_id=_caller_id(call), record=bool(campaign and campaign.record_calls), greeting=greeting,
        )
        call.handler_id = free[0].id
        _store(call, answer_key, answer, "handler")
        call_lifecycle_notify(
            call=call, event="call.routed", webhook_events=_webhook_events(call),
            message=f"dialling {', '.join(o.name for o in free)} (step {call.plan_index} of {total})",
            data={"handlers": [o.id for o in free], "sequence": seq, "skipped_under_lock": [s.detail for s in skips]},
        )
        return answer


def _whisper_url(call: Call, attempt: CallAttempt, links: Links) -> str:
    return links.url("/voice/whisper", attempt=attempt.pk)


def _tail(*, call: Call, links: Links, answer_key: str, greeting: twiml.Greeting | None) -> str:
    if "tail" not in call.decision:
        steps, terminal = dec.tail_build(_fallback_inputs(call), already_dialed=call.attempts.values_list("number_dialed", flat=True))
        call.decision["tail"] = [vars(s) for s in steps]
        call.decision["terminal"] = vars(terminal)
        call.decision["tail_index"] = 0
    tail = call.decision["tail"]
    index = call.decision.get("tail_index", 0)
    campaign = call.campaign
    if index < len(tail):
        step = dec.TailStep(**tail[index])
        call.decision["tail_index"] = index + 1
        seq = call.decision.get("dials", 0) + 1
        call.decision["dials"] = seq
        kind = AttemptKind.NO_ANSWER_FORWARD if step.kind == "no_answer_forward" else AttemptKind.FALLBACK
        CallAttempt.objects.create(
            call=call, sequence=seq, kind=kind, receiving_number_id=step.receiving_number_id, number_dialed=step.number,
        )
        call.fallback_step = (step.step or step.kind)[:30]
        answer = twiml.dial(
            numbers=[twiml.DialNumber(step.number, step.send_digits)], action=links.url("/voice/dial-status", call=call.pk, seq=seq),
            timeout=_ring_timeout(step.receiving_number_id), caller_id=_caller_id(call),
            record=bool(campaign and campaign.record_calls), greeting=greeting,
        )
        call_lifecycle_notify(call=call, event="call.routed", webhook_events=_webhook_events(call), message=f"no handler took the call: dialling the {step.label}", data={"sequence": seq, "fallback": step.label})
        return _store(call, answer_key, answer, "fallback_step")
    terminal = dec.Terminal(**call.decision["terminal"])
    voice = _voice(campaign)
    if terminal.kind == "voicemail":
        call_event_record(call=call, kind="call.voicemail", message="no one answered: taking a voicemail")
        answer = twiml.voicemail(message=terminal.message, action=links.url("/voice/voicemail", call=call.pk), voice=voice, greeting=greeting)
    else:
        call_event_record(call=call, kind="call.unanswered", message="no one answered and no fallback is left: message and hang up")
        answer = twiml.say_hangup(terminal.message, voice, greeting=greeting)
    return _store(call, answer_key, answer)


def _ring_timeout(receiving_number_id: int | None) -> int:
    if receiving_number_id is None:
        return 30
    return ReceivingNumber.objects.filter(pk=receiving_number_id).values_list("ring_timeout", flat=True).first() or 30


def _agent_step(agent: ReceivingNumber | None, label: str, step: str) -> dec.TailStep | None:
    if agent is None:
        return None
    return dec.TailStep("fallback", label, agent.number, agent.pk, agent.send_digits, step)


def _fallback_inputs(call: Call) -> dec.FallbackInputs:
    last = (
        call.attempts.filter(kind__in=[AttemptKind.HANDLER, AttemptKind.NO_ANSWER_FORWARD], receiving_number__isnull=False)
        .select_related("receiving_number__no_answer_forward_to").order_by("-sequence", "-id").first()
    )
    rn = last.receiving_number if last else None
    forward = None
    if rn is not None and rn.no_answer_action == NoAnswerAction.FORWARD and rn.no_answer_forward_to is not None:
        fwd = rn.no_answer_forward_to
        forward = dec.TailStep("no_answer_forward", f"no-answer forward of {rn.label}", fwd.number, fwd.pk, fwd.send_digits, "no_answer_forward")
    tn = call.tracking_number
    contact = (
        Contact.objects.filter(phone_number=call.caller_number).select_related("assigned_agent").first()
        if _is_number(call.caller_number) else None
    )
    campaign = call.campaign
    return dec.FallbackInputs(
        last_no_answer_action=(rn.no_answer_action if rn else ""),
        last_no_answer_message=(rn.no_answer_message if rn else ""),
        forward=forward,
        number_agent=_agent_step(tn.assigned_agent if tn else None, "tracking number's agent", "number_agent"),
        caller_agent=_agent_step(contact.assigned_agent if contact else None, "caller's agent", "caller_agent"),
        forwarding_number=tn.forwarding_number if tn else "",
        company_phone=campaign.company_phone if campaign else "",
        campaign_message=campaign.no_answer_message if campaign else "",
    )


# --- Callbacks --------------------------------------------------------------------------------------------------


def _mark_answered(call: Call, attempt: CallAttempt, at: datetime) -> None:
    """First answer of a leg: the attempt is answered (its slot now lasts as long as a call can), the call is
    in progress with that handler; ``call.answered`` is announced once (conditional UPDATEs decide)."""
    CallAttempt.objects.filter(pk=attempt.pk, status=AttemptStatus.DIALING).update(
        status=AttemptStatus.ANSWERED, slot_expires_at=at + timedelta(seconds=MAX_CALL_SECONDS + settings.CALLTRACK_SLOT_MARGIN_SECONDS),
    )
    won = Call.objects.filter(pk=call.pk, answered_at__isnull=True).exclude(status__in=CallStatus.final()).update(
        answered_at=at, handler_id=attempt.handler_id, status=CallStatus.IN_PROGRESS,
    )
    if won:
        call.answered_at, call.handler_id, call.status = at, attempt.handler_id, CallStatus.IN_PROGRESS
        call_lifecycle_notify(call=call, event="call.answered", webhook_events=_webhook_events(call), message=f"answered by {attempt.handler or attempt.number_dialed}",
                              data={"attempt": attempt.pk, "handler": attempt.handler_id})


def attempt_status_record(*, attempt_id: int, status: str, duration: int = 0) -> None:
    """A dialled leg's own status callback (answered / completed / busy ...). Idempotent: answered marks the
    leg answered once; an end releases the slot once (whichever of this and the dial result comes first)."""
    attempt = CallAttempt.objects.select_related("call", "handler").filter(pk=attempt_id).first()
    if attempt is None:
        raise LookupError(f"no attempt {attempt_id}")
    at = timezone.now()
    if status in ("answered", "in-progress"):
        _mark_answered(attempt.call, attempt, at)
        return
    mapped = TWILIO_DIAL_STATUS.get(status)
    if mapped is None:
        return  # initiated / ringing: nothing to record
    was_answered = attempt.status in (AttemptStatus.ANSWERED, AttemptStatus.COMPLETED) or mapped == AttemptStatus.COMPLETED
    updates: dict[str, Any] = {"holds_slot": False, "ended_at": at}
    if not was_answered:
        updates["counted"] = False
    CallAttempt.objects.filter(pk=attempt.pk, ended_at__isnull=True).update(status=mapped, duration=duration, **updates)
    CallAttempt.objects.filter(pk=attempt.pk, holds_slot=True).update(holds_slot=False)


def dial_result_answer(*, call: Call, seq: int, dial_status: str, duration: int, links: Links) -> str:
    """The ``<Dial action>`` of step ``seq``: record the attempts and answer with the next step.

    Answered: the leg that answered is completed with its duration, the others (ring-all) are cancelled;
    the call ends when the parties hang up. Not answered: the slots are released (and uncounted) and the
    next step of the plan, the no-answer routing, the fallback chain or the message follows. A retried
    request gets the stored answer.
    """
    key = f"dial:{seq}"
    stored = call.decision.get("answers", {}).get(key)
    if stored:
        return stored
    attempts = list(call.attempts.filter(sequence=seq).select_related("handler"))
    if not attempts:
        raise LookupError(f"call {call.call_sid} has no attempt {seq}")
    at = timezone.now()
    answered = dial_status in ("completed", "answered")
    status = TWILIO_DIAL_STATUS.get(dial_status, AttemptStatus.FAILED)
    if answered:
        winner = next((a for a in attempts if a.status in (AttemptStatus.ANSWERED, AttemptStatus.COMPLETED)), attempts[0])
        _mark_answered(call, winner, at)
        CallAttempt.objects.filter(pk=winner.pk).update(status=AttemptStatus.COMPLETED, duration=duration, ended_at=at, holds_slot=False, counted=True)
        others = [a.pk for a in attempts if a.pk != winner.pk]
        if others:
            CallAttempt.objects.filter(pk__in=others).update(status=AttemptStatus.CANCELED, ended_at=at, holds_slot=False, counted=False)
        call.refresh_from_db(fields=["answered_at", "handler", "status", "talk_time"])
        call.talk_time += duration
        call.handler_id = winner.handler_id or call.handler_id
        call_event_record(call=call, kind="attempt.completed", message=f"{winner.handler or winner.number_dialed} talked {duration}s",
                          data={"attempt": winner.pk, "duration": duration})
        return _store(call, key, twiml.hangup(), "talk_time", "handler")
    CallAttempt.objects.filter(pk__in=[a.pk for a in attempts]).update(status=status, ended_at=at, holds_slot=False, counted=False)
    who = ", ".join(str(a.handler or a.number_dialed) for a in attempts)
    call_event_record(call=call, kind="attempt.ended", message=f"{who}: {status.label.lower()}", data={"sequence": seq, "status": dial_status})
    if dial_status == "canceled":  # the caller hung up while it rang: nothing more to dial
        return _store(call, key, twiml.hangup())
    return _advance(call=call, links=links, answer_key=key)


def voicemail_record(*, call: Call, recording_url: str) -> str:
    """The voicemail ``<Record action>``: keep the recording's URL, then hang up. Idempotent."""
    if recording_url and call.voicemail_url != recording_url:
        call.voicemail_url = recording_url[:1000]
        call.save(update_fields=["voicemail_url"])
        call_event_record(call=call, kind="call.voicemail_recorded", message="voicemail recorded", data={"url": recording_url})
    return twiml.hangup()


def whisper_answer(*, attempt_id: int) -> str:
    """What the handler hears on answering (the leg is answered: mark it so its slot lasts the call)."""
    attempt = CallAttempt.objects.select_related("call__campaign", "call__source", "call__tracking_number", "receiving_number", "handler").get(pk=attempt_id)
    call = attempt.call
    _mark_answered(call, attempt, timezone.now())
    rn = attempt.receiving_number
    if rn is not None and rn.skip_whisper:
        return twiml.empty()
    template = (call.tracking_number.whisper_message if call.tracking_number else "") or (rn.whisper_message if rn else "")
    text = dec.whisper_text(
        template, campaign=call.campaign.name if call.campaign else "", source=call.source.name if call.source else "",
        city=call.caller_city, state=call.caller_state,
    )
    return twiml.whisper(text, _voice(call.campaign))


def _sequence(params: Mapping[str, str]) -> int | None:
    raw = (params.get("SequenceNumber") or "").strip()
    if raw.isdigit():
        return int(raw)
    stamp = (params.get("Timestamp") or "").strip()
    if stamp:
        from email.utils import parsedate_to_datetime

        try:
            return int(parsedate_to_datetime(stamp).timestamp())
        except (TypeError, ValueError):
            return None
    return None


def call_status_record(*, params: Mapping[str, str]) -> Call | None:
    """Twilio's status callback for the call. Idempotent and order-proof: a callback older than the last one
    applied (``SequenceNumber``, else ``Timestamp``) or one that would move the call back from a final state
    changes nothing. A final status releases every slot the call still holds and announces ``call.completed``
    once (a conditional UPDATE decides who announces)."""
    sid = (params.get("CallSid") or "").strip()
    call = Call.objects.select_related("campaign").filter(call_sid=sid).first()
    if call is None:
        raise LookupError(f"no call {sid!r}")
    new = TWILIO_CALL_STATUS.get((params.get("CallStatus") or "").strip())
    if new is None:
        raise ParamError(f"CallStatus {params.get('CallStatus')!r} is not a Twilio call status")
    seq = _sequence(params)
    at = timezone.now()
    fresh = Call.objects.filter(pk=call.pk).exclude(status__in=CallStatus.final())
    if seq is not None:
        fresh = fresh.filter(last_sequence__lt=seq)
    if new not in CallStatus.final():
        rank = _STATUS_RANK[new]
        fresh = fresh.filter(status__in=[s for s, r in _STATUS_RANK.items() if r <= rank])
        fresh.update(status=new, **({"last_sequence": seq} if seq is not None else {}))
        return call
    duration = int(params.get("CallDuration") or 0) if (params.get("CallDuration") or "").isdigit() else 0
    updates: dict[str, Any] = {"status": new, "ended_at": at, "duration": duration}
    if seq is not None:
        updates["last_sequence"] = seq
    if not fresh.update(**updates):
        return call
    # Legs still ringing were cancelled by the caller's hang-up; answered legs ended with the call.
    CallAttempt.objects.filter(call=call, ended_at__isnull=True, status=AttemptStatus.DIALING).update(
        status=AttemptStatus.CANCELED, ended_at=at, holds_slot=False, counted=False)
    CallAttempt.objects.filter(call=call).filter(Q(ended_at__isnull=True) | Q(holds_slot=True)).update(
        status=Case(When(ended_at__isnull=True, then=Value(AttemptStatus.COMPLETED)), default=F("status")),
        ended_at=Coalesce(F("ended_at"), Value(at)), holds_slot=False)
    for name, value in updates.items():
        setattr(call, name, value)
    call_lifecycle_notify(call=call, event="call.completed", message=f"call ended: {call.get_status_display().lower()}, {duration}s",
                          data={"status": new, "duration": duration})
    return call


# --- Fail-safe ---------------------------------------------------------------------------------------------------


def failsafe_number(*, call: Call | None = None, to: str = "") -> str:
    """The tracking number's fail-safe, else the campaign's, else CALLTRACK_FAILSAFE_NUMBER ('' when none).
    Never raises: a database that fails here leaves the setting."""
    try:
        tn = call.tracking_number if call is not None else None
        campaign = call.campaign if call is not None else None
        if tn is None and to:
            e164 = phone.to_e164_or_none(to)
            tn = TrackingNumber.objects.routable().select_related("campaign", "pool__campaign").filter(number=e164).first() if e164 else None
        if tn is not None and campaign is None:
            campaign = tn.campaign or (tn.pool.campaign if tn.pool_id else None)
        for candidate in ((tn.failsafe_number if tn else ""), (campaign.failsafe_number if campaign else "")):
            if candidate:
                return candidate
    except Exception:  # noqa: BLE001 - the fail-safe must answer whatever broke
        log.exception("fail-safe lookup failed; using CALLTRACK_FAILSAFE_NUMBER")
    return settings.CALLTRACK_FAILSAFE_NUMBER or ""


def failsafe_answer(*, call_sid: str, to: str = "", caller: str = "", reason: str = "routing failed") -> str:
    """Dial the fail-safe. The call is recorded (created if the failed request's transaction took it away)
    with ``used_failsafe``, ``failsafe_reason``, a fail-safe attempt and a timeline step, when the database
    still answers."""
    call = None
    try:
        with transaction.atomic():
            call = _failsafe_call(call_sid=call_sid, to=to, caller=caller)
    except Exception:  # noqa: BLE001 - the fail-safe must answer whatever broke
        log.exception("CallSid %s: cannot record the call for the fail-safe", call_sid or "?")
        call = None
    number = failsafe_number(call=call, to=to)
    caller_id = phone.to_e164_or_none(caller) or ""
    if call is not None:
        try:
            with transaction.atomic():
                Call.objects.filter(pk=call.pk).update(used_failsafe=True, failsafe_reason=reason[:200])
                if number:
                    CallAttempt.objects.create(call=call, sequence=999, kind=AttemptKind.FAILSAFE, number_dialed=number)
                call_event_record(call=call, kind="call.failsafe", message=f"{reason}: {'dialling ' + number if number else 'message and hang up'}",
                                  data={"reason": reason})
        except Exception:  # noqa: BLE001
            log.exception("CallSid %s: cannot record the fail-safe", call_sid)
    return twiml.failsafe(number, caller_id=caller_id)


def _failsafe_call(*, call_sid: str, to: str, caller: str) -> Call | None:
    if not call_sid or len(call_sid) > 64:
        return None
    call = Call.objects.select_related("tracking_number", "campaign").filter(call_sid=call_sid).first()
    if call is not None:
        return call
    called = phone.to_e164_or_none(to) or (to or "")[:32]
    # A released number is not ours any more: its call is recorded as one to an unknown number.
    tn = TrackingNumber.objects.routable().select_related("campaign", "pool__campaign").filter(number=called).first() if called else None
    campaign = (tn.campaign or (tn.pool.campaign if tn.pool_id else None)) if tn else None
    return Call.objects.create(
        call_sid=call_sid, tracking_number=tn, campaign=campaign, caller_number=(phone.to_e164_or_none(caller) or caller or "")[:32],
        called_number=called[:32], used_failsafe=True,
    )
