"""A demo data set: sources, handlers with hours and caps, campaigns, static and pool numbers, some calls.

``demo_load()`` is idempotent: it looks things up by their public ids and
numbers, so running it twice changes nothing.
"""

from __future__ import annotations

import random
from datetime import timedelta
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from calltrack.numbers.models import NoAnswerAction, NumberKind, NumberPool, NumberSession, ReceivingNumber, TrackingNumber
from tracking.models import (
    AttemptStatus,
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
    Handler,
    IVROption,
    RoutingStrategy,
    Source,
)

WEEKDAYS_9_5 = {d: ["09:00-17:00"] for d in ("mon", "tue", "wed", "thu", "fri")}

# Demo numbers sit in the NANP 555-01xx fictional range or plausible unassigned blocks.
RECEIVING = [
    ("+13035550101", "Denver call center", "ww101#", "Call from {campaign} via {source}, caller in {city} {state}."),
    ("+12125550102", "New York sales desk", "", ""),
    ("+13125550103", "Chicago overflow team", "", ""),
    ("+14155550104", "SF after-hours line", "", ""),
    ("+16175550105", "Boston agent Alice", "", ""),
]


@transaction.atomic
def demo_load(*, calls: int = 60, seed: int = 7) -> dict[str, int]:
    """Create (or find) the demo data set; returns counts of what exists afterwards."""
    rng = random.Random(seed)
    lines = {}
    for number, label, digits, whisper in RECEIVING:
        lines[label], _ = ReceivingNumber.objects.get_or_create(
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
        sources[sid], _ = Source.objects.get_or_create(source_id=sid, defaults={"name": name, "company": company, "static_number_cap": cap})

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
        handlers[name], _ = Handler.objects.get_or_create(
            buyer_id=buyer,
            defaults={
                "name": name, "receiving_number": lines[line], "priority": prio, "weight": weight,
                "concurrency_cap": conc, "daily_cap": daily, "timezone": tz, "always_open": not hours,
                "business_hours": hours, "tag_criteria": tags,
            },
        )

    insurance, created = Campaign.objects.get_or_create(
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

    plumbing, created = Campaign.objects.get_or_create(
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
        tn, _ = TrackingNumber.objects.get_or_create(
            number=number,
            defaults={"label": label, "campaign": campaign, "source": sources[sid], "kind": NumberKind.STATIC, "marketing_data": data},
        )
        static_numbers.append(tn)
    static_numbers[0].assigned_agent = lines["Boston agent Alice"]
    static_numbers[0].forwarding_number = "+13125550103"
    static_numbers[0].save()

    pool, _ = NumberPool.objects.get_or_create(
        key="demo",
        defaults={"name": "Demo landing pages", "campaign": insurance, "source": sources["adwords"],
                  "allowed_origins": "http://localhost:8000\nhttp://127.0.0.1:8000", "autoscale_min": 10, "autoscale_max": 40},
    )
    pool_numbers = []
    for i in range(12):
        area = "415" if i < 8 else "212"
        tn, _ = TrackingNumber.objects.get_or_create(
            number=f"+1{area}55502{i:02d}",
            defaults={"kind": NumberKind.POOL, "pool": pool, "campaign": insurance, "source": sources["adwords"]},
        )
        pool_numbers.append(tn)
    toll_free, _ = TrackingNumber.objects.get_or_create(
        number="+18775550120", defaults={"kind": NumberKind.POOL, "pool": pool, "campaign": insurance, "source": sources["adwords"]}
    )
    pool_numbers.append(toll_free)

    Contact.objects.get_or_create(phone_number="+16175550199", defaults={"name": "Returning customer", "assigned_agent": lines["Boston agent Alice"]})

    if not Call.objects.filter(call_sid__startswith="CADEMO").exists():
        _demo_calls(rng, calls, static_numbers, pool_numbers, pool, handlers, sources)

    # The real conversion rules value the finished demo calls (and add the postback campaign's examples).
    from calltrack.demo_conversions import demo_conversions_load

    demo_conversions_load()

    return {
        "sources": Source.objects.count(), "handlers": Handler.objects.count(), "campaigns": Campaign.objects.count(),
        "tracking_numbers": TrackingNumber.objects.count(), "pools": NumberPool.objects.count(), "calls": Call.objects.count(),
    }


DEMO_RECORDINGS = 4  # answered calls of campaigns that record get a playable recording (the local carrier's WAV)
DEMO_RECORDING_SECONDS = 20  # kept short: a demo recording is a small file under MEDIA_ROOT


def _demo_recording(call: Call) -> None:
    from calltrack.numbers.providers.local import LocalCarrier
    from tracking.services.recordings import call_recording_record

    recording = LocalCarrier().recording_create(seconds=min(call.talk_time, DEMO_RECORDING_SECONDS))
    call_recording_record(call=call, recording_sid=recording.sid, recording_url=recording.url, status="completed",
                          duration=recording.duration)


def _demo_calls(rng, count, static_numbers, pool_numbers, pool, handlers, sources) -> None:
    now = timezone.now()
    recordings = 0
    states = [("San Francisco", "CA", "94103"), ("Denver", "CO", "80202"), ("Chicago", "IL", "60601"), ("New York", "NY", "10001"), ("Austin", "TX", "73301")]
    handler_list = list(handlers.values())
    for i in range(count):
        started = now - timedelta(days=rng.randint(0, 29), hours=rng.randint(0, 23), minutes=rng.randint(0, 59))
        city, state, zip_code = rng.choice(states)
        use_pool = i % 3 == 0
        tn = rng.choice(pool_numbers if use_pool else static_numbers)
        session = None
        marketing = dict(tn.marketing_data)
        if use_pool:
            marketing = {"utm_source": "google", "utm_medium": "cpc", "utm_campaign": rng.choice(["brand", "generic"]), "gclid": f"demo{i}"}
            session = NumberSession.objects.create(
                pool=pool, tracking_number=tn, visitor_id=f"demo-visitor-{i}", started_at=started - timedelta(minutes=5),
                last_seen_at=started - timedelta(minutes=1), expires_at=started + timedelta(minutes=25),
                landing_page="http://localhost:8000/dni/demo/", marketing_data=marketing,
            )
        outcome = rng.random()
        handler = rng.choice(handler_list)
        answered = outcome < 0.7
        rejected = outcome > 0.95
        talk = rng.choice([20, 45, 95, 130, 240, 360]) if answered else 0
        status = CallStatus.REJECTED if rejected else (CallStatus.COMPLETED if answered else CallStatus.NO_ANSWER)
        call = Call.objects.create(
            call_sid=f"CADEMO{i:026d}", tracking_number=tn, campaign=tn.campaign, source=tn.source or pool.source,
            handler=None if rejected else handler, session=session, caller_number=f"+1{rng.choice(['415', '303', '312', '212', '512'])}555{rng.randint(100, 199):04d}",
            called_number=tn.number, caller_city=city, caller_state=state, caller_zip=zip_code, caller_country="US",
            status=status, started_at=started, answered_at=started + timedelta(seconds=8) if answered else None,
            ended_at=started + timedelta(seconds=10 + talk), duration=10 + talk, talk_time=talk,
            tags={"caller_state": state, "caller_city": city, "caller_zip": zip_code, **marketing},
            marketing_data=marketing, visitor_id=session.visitor_id if session else "",
            landing_page=session.landing_page if session else "",
            reject_reason="caller is on the blocked list" if rejected else "",
        )
        if not rejected:
            CallAttempt.objects.create(
                call=call, sequence=0, handler=handler, receiving_number=handler.receiving_number, number_dialed=handler.receiving_number.number,
                status=AttemptStatus.COMPLETED if answered else AttemptStatus.NO_ANSWER, started_at=started + timedelta(seconds=2),
                ended_at=call.ended_at, duration=talk, counted=answered,
            )
        CallEvent.objects.bulk_create([
            CallEvent(call=call, at=started, kind="call.started", message=f"Call from {call.caller_number} ({city}, {state})"),
            CallEvent(call=call, at=started + timedelta(seconds=1), kind="call.routed" if not rejected else "call.rejected",
                      message=call.reject_reason or f"Dialling {handler.name}"),
            CallEvent(call=call, at=call.ended_at, kind="call.completed", message=f"{call.get_status_display()}, {talk}s connected"),
        ])
        if answered and not rejected and recordings < DEMO_RECORDINGS and tn.campaign and tn.campaign.record_calls:
            _demo_recording(call)
            recordings += 1
