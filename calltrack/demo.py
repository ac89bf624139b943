"""A demo data set: sources, handlers with hours and caps, campaigns, static and pool numbers, some calls.

``demo_load()`` is idempotent: it looks things up by their public ids and
numbers, so running it twice changes nothing.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.db import transaction
from django.db.models import F, Max, Model, QuerySet
from django.utils import timezone

from calltrack import tags as tag_rules
from calltrack.accounts import default_account_id
from calltrack.numbers.models import (
    NoAnswerAction,
    NumberKind,
    NumberPool,
    NumberSession,
    PoolSample,
    ReceivingNumber,
    TrackingNumber,
)
from routing.spam import SpamInputs, spam_score
from tracking.call_state import SpamMark
from tracking.models import (
    AttemptStatus,
    Attestation,
    Call,
    CallAttempt,
    CallEvent,
    CallStatus,
    Campaign,
    CampaignHandler,
    Contact,
    ConversionKind,
    ConversionRule,
    ConversionSide,
    DeliveryStatus,
    Handler,
    IVROption,
    RoutingStrategy,
    Source,
    TextMessage,
    TextPurpose,
    TextRoute,
    Webhook,
    WebhookAttempt,
    WebhookDelivery,
    WebhookMethod,
)
from tracking.spam_rules import SpamAction, spam_rules_read

EASTERN = ZoneInfo("America/New_York")
WEEKDAYS_9_5 = {d: ["09:00-17:00"] for d in ("mon", "tue", "wed", "thu", "fri")}

# Demo numbers sit in the NANP 555-01xx fictional range or plausible unassigned blocks.
RECEIVING = [
    ("+13035550101", "Denver call center", "ww101#", "Call from {campaign} via {source}, caller in {city} {state}."),
    ("+12125550102", "New York sales desk", "", ""),
    ("+13125550103", "Chicago overflow team", "", ""),
    ("+14155550104", "SF after-hours line", "", ""),
    ("+16175550105", "Boston agent Alice", "", ""),
]


def _mine(model: type[Model]) -> QuerySet[Any]:
    """The rows of ``model`` in the account the demo is loaded into (``acting_in``, else the first): the demo finds
    its own rows there, never another account's with the same id; rows it creates get that account."""
    return model.objects.filter(account_id=default_account_id())


def demo_account_elsewhere(account_id: int) -> str:
    """The account (its slug) that holds the demo's tracking numbers, if not ``account_id`` ('' when none): a phone
    number belongs to one account, so the demo is loaded in one account of an install."""
    from calltrack.models import Account

    found = TrackingNumber.objects.filter(number__in=DEMO_TRACKING_NUMBERS).exclude(account_id=account_id).values_list("account_id", flat=True).first()
    if found is None:
        return ""
    return Account.objects.filter(pk=found).values_list("slug", flat=True).first() or str(found)


DEMO_TRACKING_NUMBERS = ("+18005550110", "+18885550111", "+14155550112", "+13125550113", "+18775550120",
                         *(f"+1{'415' if i < 8 else '212'}55502{i:02d}" for i in range(12)))


@transaction.atomic
def demo_load(*, calls: int = 60, days: int = 60, seed: int = 7) -> dict[str, int]:
    """Create (or find) the demo data set; returns counts of what exists afterwards. ``calls`` historical calls
    are spread over the last ``days`` days (more on weekdays and in office hours, a little growth over time),
    with their routing decisions; the pool gets 24 hours of samples with an overflow, and a partner webhook
    a history of failed deliveries, so the dashboard shows what an operator would see."""
    rng = random.Random(seed)
    lines = {}
    for number, label, digits, whisper in RECEIVING:
        lines[label], _ = _mine(ReceivingNumber).get_or_create(
            number=number, defaults={"label": label, "extension_digits": digits, "whisper_message": whisper, "ring_timeout": 25}
        )
    chicago = lines["Chicago overflow team"]
    ny = lines["New York sales desk"]
    ny.no_answer_action = NoAnswerAction.FORWARD
    ny.no_answer_forward_to = chicago
    ny.save()
    sf = lines["SF after-hours line"]
    sf.no_answer_action = NoAnswerAction.VOICEMAIL
    sf.no_answer_message = "Please leave a message after the tone."
    sf.save()

    sources = {}
    for name, sid, company, cap in [
        ("Google Ads", "adwords", "Google", None),
        ("Facebook", "facebook", "Meta", None),
        ("Insurance Compare", "insurance-compare", "Compare Media LLC", 5),
        ("Billboards", "billboards", "Outdoor Co", 10),
    ]:
        sources[sid], _ = _mine(Source).get_or_create(source_id=sid, defaults={"name": name, "company": company, "static_number_cap": cap})

    handler_specs = [
        ("Denver call center", "BUY-100", "Denver call center", 1, 3, 10, 200, "America/Denver", WEEKDAYS_9_5, []),
        ("New York sales", "BUY-200", "New York sales desk", 1, 1, 5, 100, "America/New_York",
         {d: ["08:00-12:00", "13:00-20:00"] for d in ("mon", "tue", "wed", "thu", "fri")}, []),
        ("Chicago overflow", "BUY-300", "Chicago overflow team", 2, 1, None, None, "America/Chicago", {}, []),
        ("West coast nights", "BUY-400", "SF after-hours line", 3, 1, 2, 50, "America/Los_Angeles",
         {d: ["18:00-02:00+1"] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")},
         [{"key": "caller_state", "op": "one_of", "value": ["CA", "OR", "WA", "NV"]}]),
        ("Spanish line", "BUY-500", "Boston agent Alice", 1, 1, 3, None, "America/New_York", WEEKDAYS_9_5,
         [{"key": "language", "op": "equals", "value": "es"}]),
    ]
    handlers = {}
    for name, buyer, line, prio, weight, conc, daily, tz, hours, tags in handler_specs:
        handlers[name], _ = _mine(Handler).get_or_create(
            buyer_id=buyer,
            defaults={
                "name": name, "receiving_number": lines[line], "priority": prio, "weight": weight,
                "concurrency_cap": conc, "daily_cap": daily, "timezone": tz, "always_open": not hours,
                "business_hours": hours, "tag_criteria": tags,
            },
        )

    insurance, created = _mine(Campaign).get_or_create(
        campaign_id="auto-insurance",
        defaults={
            "name": "Auto insurance leads",
            "routing_strategy": RoutingStrategy.PRIORITY_WEIGHT,
            "greeting_kind": "say",
            "greeting_text": "Thanks for calling. This call may be recorded.",
            "ivr_prompt": "For English press 1. Para espanol oprima 2.",
            "ivr_default_digit": "1",
            "failsafe_number": "+13125550103",
            "company_phone": "+12125550102",
            "record_calls": True,
            # Robocalls are rejected (the dashboard's spam panel shows them): the spam score's default rules.
            "spam_action": SpamAction.REJECT,
        },
    )
    if created:
        for i, name in enumerate(["Denver call center", "New York sales", "Chicago overflow", "West coast nights", "Spanish line"]):
            CampaignHandler.objects.create(campaign=insurance, handler=handlers[name], position=i)
        IVROption.objects.create(campaign=insurance, digit="1", label="English", action="tag", tag_key="language", tag_value="en")
        IVROption.objects.create(campaign=insurance, digit="2", label="Spanish", action="tag", tag_key="language", tag_value="es",
                                 response="Un momento por favor.")
        ConversionRule.objects.create(campaign=insurance, kind=ConversionKind.TIMER, min_duration=90, revenue=Decimal("25"), payout=Decimal("15"), dedupe_window=24)
        ConversionRule.objects.create(campaign=insurance, kind=ConversionKind.TIMER, min_duration=300, revenue=Decimal("45"), payout=Decimal("25"), dedupe_window=24)

    plumbing, created = _mine(Campaign).get_or_create(
        campaign_id="plumbing",
        defaults={"name": "Emergency plumbing", "routing_strategy": RoutingStrategy.ROUND_ROBIN, "failsafe_number": "+13125550103",
                  "company_phone": "+13125550103", "sticky_routing": True},
    )
    if created:
        for i, name in enumerate(["Chicago overflow", "New York sales", "Denver call center"]):
            CampaignHandler.objects.create(campaign=plumbing, handler=handlers[name], position=i)
        ConversionRule.objects.create(campaign=plumbing, kind=ConversionKind.TIMER, side=ConversionSide.REVENUE, min_duration=60, revenue=Decimal("30"))
        ConversionRule.objects.create(campaign=plumbing, kind=ConversionKind.TIMER, side=ConversionSide.PAYOUT, min_duration=120, payout=Decimal("12"))

    statics = [
        ("+18005550110", "Billboard I-95", insurance, "billboards", {"utm_source": "billboard", "utm_medium": "outdoor"}),
        ("+18885550111", "Radio spot", insurance, "billboards", {"utm_source": "radio", "utm_medium": "offline"}),
        ("+14155550112", "Google call extension", insurance, "adwords", {"utm_source": "google", "utm_medium": "cpc"}),
        ("+13125550113", "Partner site", plumbing, "insurance-compare", {"utm_source": "partner"}),
    ]
    static_numbers = []
    for number, label, campaign, sid, data in statics:
        tn, _ = _mine(TrackingNumber).get_or_create(
            number=number,
            defaults={"label": label, "campaign": campaign, "source": sources[sid], "kind": NumberKind.STATIC, "marketing_data": data},
        )
        static_numbers.append(tn)
    static_numbers[0].assigned_agent = lines["Boston agent Alice"]
    static_numbers[0].forwarding_number = "+13125550103"
    static_numbers[0].save()

    pool, _ = _mine(NumberPool).get_or_create(
        key="demo",
        defaults={"name": "Demo landing pages", "campaign": insurance, "source": sources["adwords"],
                  "allowed_origins": "http://localhost:8000\nhttp://127.0.0.1:8000", "autoscale_min": 10, "autoscale_max": 40},
    )
    pool_numbers = []
    for i in range(12):
        area = "415" if i < 8 else "212"
        tn, _ = _mine(TrackingNumber).get_or_create(
            number=f"+1{area}55502{i:02d}",
            defaults={"kind": NumberKind.POOL, "pool": pool, "campaign": insurance, "source": sources["adwords"]},
        )
        pool_numbers.append(tn)
    toll_free, _ = _mine(TrackingNumber).get_or_create(
        number="+18775550120", defaults={"kind": NumberKind.POOL, "pool": pool, "campaign": insurance, "source": sources["adwords"]}
    )
    pool_numbers.append(toll_free)

    _mine(Contact).get_or_create(phone_number="+16175550199", defaults={"name": "Returning customer", "assigned_agent": lines["Boston agent Alice"]})

    if not Call.objects.filter(call_sid__startswith="CADEMO").exists():
        _demo_calls(rng, calls, static_numbers, pool_numbers, pool, handlers, sources, days=days)
        _demo_pool_day(rng, pool)
        _demo_failing_webhook(insurance)

    if not TextMessage.objects.filter(message_sid__startswith="SMDEMO").exists():
        _demo_texts(insurance, static_numbers, pool_numbers, handlers)

    # The real conversion rules value the finished demo calls (and add the postback campaign's examples).
    from calltrack.demo_conversions import demo_conversions_load

    demo_conversions_load()
    _demo_events_in_call_time()

    return {
        "sources": _mine(Source).count(), "handlers": _mine(Handler).count(), "campaigns": _mine(Campaign).count(),
        "tracking_numbers": _mine(TrackingNumber).count(), "pools": _mine(NumberPool).count(), "calls": _mine(Call).count(),
        "texts": _mine(TextMessage).count(),
    }


def _demo_texts(campaign, static_numbers, pool_numbers, handlers) -> None:
    """Issue 29's demo: the insurance campaign answers texts (another answer after hours) and converts a new
    contact's first text; a few leads text its numbers through the real services (credited like calls), STOP is
    kept, and one conversation has the operator's reply delivered by the local carrier."""
    from calltrack.numbers.providers.local import LocalCarrier
    from calltrack.numbers.services import texts as outbound
    from routing.services.common import Links
    from routing.services.texts import IncomingText, text_answer, text_receive

    TextRoute.objects.get_or_create(campaign=campaign, defaults={
        "auto_reply": "Thanks for texting {campaign}! An agent will text you back within the hour.",
        "auto_reply_closed": "Thanks! Our agents are back at 9am Eastern; we will text you then.",
        "timezone": "America/New_York", "business_hours": {d: ["09:00-17:00"] for d in ("mon", "tue", "wed", "thu", "fri")},
        "help_reply": "Insurance quotes: reply with your ZIP code, or call this number. Text STOP to opt out.",
        "convert_on": "first_text", "revenue": Decimal("8"), "payout": Decimal("3"),
    })
    links = Links("http://localhost:8000")
    now = timezone.now()
    texts = [
        ("+16175550199", static_numbers[0], "Hi, do you cover flood damage?", "Boston", "MA", 50),
        ("+13035550142", pool_numbers[0], "Can I get a quote for two cars?", "Denver", "CO", 30),
        ("+12125550177", static_numbers[2], "STOP", "New York", "NY", 20),
        ("+14155550166", pool_numbers[1], "HELP", "San Francisco", "CA", 12),
        ("+16175550199", static_numbers[0], "My ZIP is 02118, thanks", "Boston", "MA", 3),
    ]
    answered_at: dict[int, datetime] = {}  # an answer the services sent now: when it went out in the demo's past
    for n, (sender, number, body, city, state, hours_ago) in enumerate(texts):
        at = now - timedelta(hours=hours_ago)
        before = TextMessage.objects.aggregate(last=Max("pk"))["last"] or 0
        incoming = IncomingText(message_sid=f"SMDEMO{n:04d}", sender=sender, to=number.number, body=body, from_city=city, from_state=state)
        text, _, created = text_receive(incoming=incoming, at=at)
        text_answer(text=text, created=created, links=links, at=at)
        answered_at.update(dict.fromkeys(TextMessage.objects.filter(pk__gt=before).exclude(pk=text.pk).values_list("pk", flat=True), at + timedelta(seconds=2)))
    for pending in TextMessage.objects.filter(message_sid__startswith=outbound.PENDING_PREFIX, contact_number__in=[t[0] for t in texts]):
        outbound.text_status_record(message_sid=f"SMDEMOR{pending.pk:04d}", status="delivered", text_id=pending.pk)
    about = TextMessage.objects.filter(message_sid="SMDEMO0004").first()
    if about is not None:
        # Always the local carrier: the demo never texts anyone for real.
        reply = outbound.text_send(to=about.contact_number, from_number=about.to_number, purpose=TextPurpose.REPLY, thread=outbound.Thread(about),
                                   carrier=LocalCarrier(), body="Thanks! Flood cover for 02118 starts at $31/month. Want me to call you to finish the quote?")
        outbound.text_status_record(message_sid=reply.message_sid, status="delivered")
        answered_at[reply.pk] = about.created_at + timedelta(minutes=12)
    for pk, at in answered_at.items():
        TextMessage.objects.filter(pk=pk).update(created_at=at, status_at=at + timedelta(seconds=3))


def _demo_events_in_call_time() -> None:
    """The services record a recording or a conversion at the moment they run (the demo's load); in the demo's
    past calls they happened when the call ended, so their timeline steps say so."""
    from django.db.models import F

    late = CallEvent.objects.filter(call__call_sid__startswith="CADEMO", call__ended_at__isnull=False, at__gt=F("call__ended_at") + timedelta(minutes=5))
    for event in late.select_related("call").only("pk", "call__ended_at"):
        CallEvent.objects.filter(pk=event.pk).update(at=event.call.ended_at + timedelta(seconds=2))


DEMO_RECORDINGS = 4  # answered calls of campaigns that record get a playable recording (the local carrier's WAV)
DEMO_RECORDING_SECONDS = 20  # kept short: a demo recording is a small file under MEDIA_ROOT


def _demo_recording(call: Call) -> None:
    from calltrack.numbers.providers.local import LocalCarrier
    from tracking.services.recordings import call_recording_record

    recording = LocalCarrier().recording_create(seconds=min(call.talk_time, DEMO_RECORDING_SECONDS))
    call_recording_record(call=call, recording_sid=recording.sid, recording_url=recording.url, status="completed",
                          duration=recording.duration)


def _demo_start(rng, now, days: int):
    """A start time in the last ``days`` days: busier on weekdays and in office hours (Eastern), growing over time."""
    while True:
        age = rng.random() ** 1.3 * days  # more recent calls than old ones: a growing business
        started = now - timedelta(days=age)
        local = started.astimezone(EASTERN)
        weight = (1.0 if local.weekday() < 5 else 0.45) * (1.0 if 8 <= local.hour < 20 else 0.2)
        if rng.random() < weight:
            return started


def _demo_calls(rng, count, static_numbers, pool_numbers, pool, handlers, sources, *, days: int = 60) -> None:
    now = timezone.now()
    recordings = 0
    states = [("San Francisco", "CA", "94103"), ("Denver", "CO", "80202"), ("Chicago", "IL", "60601"), ("New York", "NY", "10001"),
              ("Austin", "TX", "73301"), ("Miami", "FL", "33101"), ("Seattle", "WA", "98101")]
    handler_list = list(handlers.values())
    for i in range(count):
        started = _demo_start(rng, now, days)
        city, state, zip_code = rng.choice(states)
        use_pool = i % 3 == 0
        tn = rng.choice(pool_numbers if use_pool else static_numbers)
        session = None
        marketing = dict(tn.marketing_data)
        if use_pool:
            marketing = {"utm_source": rng.choice(["google", "google", "bing"]), "utm_medium": "cpc",
                         "utm_campaign": rng.choice(["brand", "generic", "spring-sale"]), "gclid": f"demo{i}"}
            session = NumberSession.objects.create(
                pool=pool, tracking_number=tn, visitor_id=f"demo-visitor-{i}", started_at=started - timedelta(minutes=5),
                last_seen_at=started - timedelta(minutes=1), expires_at=started + timedelta(minutes=25),
                landing_page="http://localhost:8000/dni/demo/", marketing_data=marketing,
            )
        outcome = rng.random()
        handler, skipped = _demo_route(rng, handler_list, state)
        failsafe = outcome > 0.985
        answered = outcome < 0.7 or failsafe
        rejected = 0.95 < outcome <= 0.985
        talk = rng.choice([20, 45, 95, 130, 240, 360]) if answered else 0
        status = CallStatus.REJECTED if rejected else (CallStatus.COMPLETED if answered else CallStatus.NO_ANSWER)
        decision = {} if rejected else {
            "strategy": "priority_weight", "steps": [[handler.pk]], "skipped": skipped, "dials": 1,
        }
        caller = f"+1{rng.choice(['415', '303', '312', '212', '512'])}555{rng.randint(100, 199):04d}"
        # A campaign that scores spam: every call gets its score; half its rejected calls are robocalls (a failed
        # STIR/SHAKEN verification, a spam label as the caller's name) rejected for it, the others blocked callers.
        spam, attestation, caller_name = None, "", ""
        if tn.campaign is not None and tn.campaign.spam_action != SpamAction.OFF:
            robocall = rejected and i % 2 == 0
            attestation, caller_name = (Attestation.FAILED, "SPAM LIKELY") if robocall else (Attestation.PASSED_A, "")
            rules = spam_rules_read(action=tn.campaign.spam_action, threshold=tn.campaign.spam_threshold, raw=tn.campaign.spam_rules)
            verdict = spam_score(SpamInputs(caller=caller, attestation=attestation, caller_name=caller_name, blocked=rejected and not robocall), rules)
            spam = SpamMark(verdict.score, verdict.reasons, verdict.codes, verdict.is_spam, tn.campaign.spam_action if verdict.is_spam else "")
            decision = {**decision, "spam": spam.to_json()}
        reject_reason = ""
        if rejected:
            reject_reason = f"spam: score {spam.score}: {'; '.join(spam.reasons)}" if spam and spam.is_spam else "caller is on the blocked list"
        spam_tags = {tag_rules.SPAM_SCORE: str(spam.score), tag_rules.SPAM: "yes" if spam.is_spam else "no"} if spam else {}
        call = Call.objects.create(
            call_sid=f"CADEMO{i:026d}", tracking_number=tn, campaign=tn.campaign, source=tn.source or pool.source,
            handler=None if rejected or failsafe else handler, session=session,
            caller_number=caller, attestation=attestation, called_number=tn.number, caller_city=city, caller_state=state, caller_zip=zip_code, caller_country="US",
            status=status, started_at=started, answered_at=started + timedelta(seconds=8) if answered else None,
            ended_at=started + timedelta(seconds=10 + talk), duration=10 + talk, talk_time=talk,
            tags={"caller_state": state, "caller_city": city, "caller_zip": zip_code, **marketing, **spam_tags,
                  **({"attestation": attestation} if attestation else {}), **({"caller_name": caller_name} if caller_name else {})},
            marketing_data=marketing, visitor_id=session.visitor_id if session else "",
            landing_page=session.landing_page if session else "",
            reject_reason=reject_reason[:200],
            decision=decision, used_failsafe=failsafe,
            failsafe_reason="the handler's line returned an error; dialled the campaign's fail-safe" if failsafe else "",
        )
        if not rejected:
            CallAttempt.objects.create(
                call=call, sequence=0, handler=handler, receiving_number=handler.receiving_number, number_dialed=handler.receiving_number.number,
                status=AttemptStatus.FAILED if failsafe else (AttemptStatus.COMPLETED if answered else AttemptStatus.NO_ANSWER),
                started_at=started + timedelta(seconds=2), ended_at=call.ended_at, duration=0 if failsafe else talk, counted=answered and not failsafe,
            )
        events = [CallEvent(call=call, at=started, kind="call.started", message=f"Call from {call.caller_number} ({city}, {state})")]
        events += [CallEvent(call=call, at=started, kind="route.skipped", message=f"{s['name']}: {s['detail']}") for s in skipped if not rejected]
        events.append(CallEvent(call=call, at=started + timedelta(seconds=1), kind="call.routed" if not rejected else "call.rejected",
                                message=call.reject_reason or f"Dialling {handler.name}"))
        if failsafe:
            events.append(CallEvent(call=call, at=started + timedelta(seconds=4), kind="call.failsafe", message=call.failsafe_reason))
        events.append(CallEvent(call=call, at=call.ended_at, kind="call.completed", message=f"{call.get_status_display()}, {talk}s connected"))
        CallEvent.objects.bulk_create(events)
        if answered and not failsafe and recordings < DEMO_RECORDINGS and tn.campaign and tn.campaign.record_calls:
            _demo_recording(call)
            recordings += 1


def _demo_route(rng, handler_list, state: str):
    """The handler that took the call and the ones routing skipped first, with the reasons the timeline shows."""
    handler = rng.choice(handler_list[:3])
    skipped = []
    roll = rng.random()
    denver = handler_list[0]
    if handler is not denver and roll < 0.35:
        skipped.append({"handler_id": denver.pk, "name": denver.name, "reason": "closed", "detail": "closed (opens 09:00 America/Denver)"})
    elif handler is not denver and roll < 0.45:
        skipped.append({"handler_id": denver.pk, "name": denver.name, "reason": "capped", "detail": "concurrency cap 10 reached (10 in progress)"})
    west = handler_list[3]
    if state not in ("CA", "WA") and rng.random() < 0.3:
        skipped.append({"handler_id": west.pk, "name": west.name, "reason": "tag_mismatch", "detail": f"caller_state {state} not in CA, OR, WA, NV"})
    return handler, skipped


def _demo_pool_day(rng, pool) -> None:
    """24 hours of pool samples every 15 minutes (an afternoon peak past the pool's size) and the visitors who
    found every number in use then."""
    now = timezone.now().replace(second=0, microsecond=0)
    size = pool.numbers.count()
    overflows = 0
    samples = []
    for step in range(96, 0, -1):
        at = now - timedelta(minutes=15 * step)
        hour = at.astimezone(EASTERN).hour
        busy = max(0.0, 1 - abs(hour - 14) / 8)  # peaks at 2 pm Eastern
        live = round(size * (0.15 + 0.95 * busy) + rng.randint(-1, 1))
        if live > size:
            for n in range(live - size):
                NumberSession.objects.create(
                    pool=pool, tracking_number=None, visitor_id=f"demo-overflow-{step}-{n}", started_at=at, last_seen_at=at,
                    expires_at=at + timedelta(minutes=30), landing_page="http://localhost:8000/dni/demo/", is_overflow=True,
                )
            overflows += live - size
        samples.append(PoolSample(pool=pool, at=at, live_sessions=min(max(live, 0), size), size=size, overflow_count=overflows))
    PoolSample.objects.bulk_create(samples)
    NumberPool.objects.filter(pk=pool.pk).update(overflow_count=F("overflow_count") + overflows)


def _demo_failing_webhook(campaign) -> None:
    """A partner CRM that stopped answering yesterday: its recent deliveries failed after every retry."""
    hook, _ = Webhook.objects.get_or_create(
        campaign=campaign, name="Partner CRM (demo: failing)",
        defaults={"enabled": False, "url": "https://crm.example.com/leads", "events": ["call.completed"], "method": WebhookMethod.POST_JSON},
    )
    since = timezone.now() - timedelta(hours=30)
    for call in Call.objects.filter(campaign=campaign, started_at__gte=since, status=CallStatus.COMPLETED).order_by("started_at")[:8]:
        delivery = WebhookDelivery.objects.create(
            webhook=hook, call=call, event="call.completed", status=DeliveryStatus.FAILED, attempts=3, url=hook.url,
            last_status_code=503, last_error="", response_excerpt="Service Unavailable", created_at=call.ended_at,
        )
        WebhookAttempt.objects.bulk_create([
            WebhookAttempt(delivery=delivery, number=n, at=call.ended_at + timedelta(minutes=2 ** n), duration_ms=180, status_code=503,
                           response_excerpt="Service Unavailable", outcome=DeliveryStatus.FAILED if n == 3 else DeliveryStatus.RETRYING)
            for n in (1, 2, 3)
        ])
