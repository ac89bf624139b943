"""Demo conversions: run the real conversion rules over the demo calls, and a campaign that shows the rest.

``demo_conversions_load()`` is meant to run after ``calltrack.demo.demo_load()`` (it works alone too). It is
idempotent: calls are evaluated once (``conversion_evaluated_at``) and its own objects are looked up by their
public ids and CallSids.

What it shows, in the "Home warranty" campaign (split conversions):
- revenue: a postback from the handler's CRM within 24 h pays $60 ... except for the New York handler, whose
  own terms are a 120 s timer paying $35;
- payout: a 60 s timer pays the source $20, once per caller per 24 h (de-dupe);
- calls: one confirmed by postback, one still waiting, one too short, a repeat caller not paid again, one
  converted on the New York handler's terms, and one whose postback came too late (refused, with the reason);
- a webhook (disabled: the demo has no receiver) with a JSON template, to show the tokens.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from calltrack.demo import _mine
from calltrack.numbers.models import ReceivingNumber
from tracking.models import (
    AttemptStatus,
    Call,
    CallAttempt,
    CallStatus,
    Campaign,
    CampaignHandler,
    ConversionDestination,
    ConversionKind,
    ConversionRule,
    ConversionSide,
    ConversionUpload,
    DestinationKind,
    Handler,
    Source,
    UploadStatus,
    UploadTrigger,
    Webhook,
    WebhookMethod,
)
from tracking.services.ad_uploads import conversion_upload_attempt, conversion_uploads_queue
from tracking.services.conversions import ConversionRefused, call_conversion_evaluate, call_convert

DEMO_SID = "CADEMOCV"


def _handler(buyer_id: str, name: str, number: str) -> Handler:
    handler = _mine(Handler).filter(buyer_id=buyer_id).first()
    if handler is None:
        line, _ = _mine(ReceivingNumber).get_or_create(number=number, defaults={"label": name})
        handler = Handler.objects.create(buyer_id=buyer_id, name=name, receiving_number=line)
    return handler


@transaction.atomic
def demo_conversions_load() -> dict[str, int]:
    """Evaluate every finished, not yet evaluated call (oldest first, so de-dupe sees earlier calls), and add
    the "Home warranty" campaign with its calls. Returns counts of converted / not converted / pending calls."""
    for call in Call.objects.filter(conversion_evaluated_at__isnull=True, status__in=CallStatus.final()).order_by("started_at"):
        call_conversion_evaluate(call=call, at=call.ended_at or call.started_at)

    campaign, created = _mine(Campaign).get_or_create(campaign_id="home-warranty", defaults={"name": "Home warranty (postback)"})
    denver = _handler("BUY-100", "Denver call center", "+13035550101")
    new_york = _handler("BUY-200", "New York sales", "+12125550102")
    source, _ = _mine(Source).get_or_create(source_id="facebook", defaults={"name": "Facebook"})
    if created:
        for i, handler in enumerate([denver, new_york]):
            CampaignHandler.objects.get_or_create(campaign=campaign, handler=handler, defaults={"position": i})
        ConversionRule.objects.create(
            campaign=campaign, side=ConversionSide.REVENUE, kind=ConversionKind.POSTBACK, revenue=Decimal("60"), postback_window=1440
        )
        ConversionRule.objects.create(
            campaign=campaign, side=ConversionSide.PAYOUT, kind=ConversionKind.TIMER, min_duration=60, payout=Decimal("20"), dedupe_window=24
        )
        ConversionRule.objects.create(
            campaign=campaign, handler=new_york, side=ConversionSide.REVENUE, kind=ConversionKind.TIMER, min_duration=120, revenue=Decimal("35")
        )
        Webhook.objects.create(
            campaign=campaign, name="CRM lead (demo, no receiver)", enabled=False, url="https://crm.example.com/leads?call=[call_id]",
            events=["call.completed", "call.converted"], method=WebhookMethod.POST_JSON,
            body_template='{"caller": "[caller_number]", "source": "[source_id]", "state": "[tag:caller_state]", '
            '"utm_source": "[utm_source]", "converted": "[converted]", "revenue": "[revenue]", "payout": "[payout]"}',
        )
        # The ad platforms' uploads, recorded on each call page (the local destination sends nothing anywhere).
        ConversionDestination.objects.create(
            campaign=campaign, name="Ad platforms (local demo)", kind=DestinationKind.LOCAL, trigger=UploadTrigger.PAYOUT,
        )

    if not Call.objects.filter(call_sid__startswith=DEMO_SID).exists():
        now = timezone.now()
        # (hours ago, handler, caller, talk seconds, postback: None / "on time" / "late")
        scenarios = [
            (30, denver, "+13035550171", 180, "on time"),
            (20, denver, "+13035550172", 200, None),
            (10, denver, "+13035550173", 30, None),
            (28, denver, "+13035550171", 150, None),
            (5, new_york, "+12125550174", 150, None),
            (60, denver, "+13035550175", 240, "late"),
        ]
        for i, (hours_ago, handler, caller, talk, _) in enumerate(scenarios):
            started = now - timedelta(hours=hours_ago)
            call = Call.objects.create(
                call_sid=f"{DEMO_SID}{i:026d}", campaign=campaign, source=source, handler=handler, caller_number=caller,
                called_number="+18005550130", caller_state="CO", caller_country="US", status=CallStatus.COMPLETED,
                started_at=started, answered_at=started + timedelta(seconds=6), ended_at=started + timedelta(seconds=6 + talk),
                duration=6 + talk, talk_time=talk, tags={"caller_state": "CO"},
                marketing_data={"utm_source": "facebook", "fbclid": f"IwAR-demo-{i}"},
            )
            CallAttempt.objects.create(
                call=call, handler=handler, receiving_number=handler.receiving_number, number_dialed=handler.receiving_number.number,
                status=AttemptStatus.COMPLETED, started_at=started + timedelta(seconds=1), ended_at=call.ended_at, duration=talk, counted=True,
            )
        for call in Call.objects.filter(call_sid__startswith=DEMO_SID).order_by("started_at"):
            call_conversion_evaluate(call=call, at=call.ended_at)
        calls = list(Call.objects.filter(call_sid__startswith=DEMO_SID).order_by("call_sid"))
        for call, (*_, postback) in zip(calls, scenarios, strict=True):
            if postback is None:
                continue
            delay = timedelta(hours=2) if postback == "on time" else timedelta(hours=30)
            try:
                call_convert(call=call, source="postback", at=call.ended_at + delay)
            except ConversionRefused:
                pass  # the late one: refused, and the reason is on the call
        # What the demo's workers would do: each upload tried now, so the call pages show them sent.
        for call in calls:
            conversion_uploads_queue(call_id=call.pk)
        for upload_id in ConversionUpload.objects.filter(call__in=calls, status=UploadStatus.PENDING).values_list("pk", flat=True):
            conversion_upload_attempt(upload_id=upload_id)

    return {
        "converted": Call.objects.filter(converted=True).count(),
        "not_converted": Call.objects.filter(conversion_status="not_converted").count(),
        "pending": Call.objects.filter(conversion_status="pending").count(),
    }
