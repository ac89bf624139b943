"""Calls, the legs we dialled for them, their timeline, and the webhooks they sent."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from calltrack.account_fields import account_field
from tracking.call_state import CallState, QueueStay, SpamMark


class CallStatus(models.TextChoices):
    RINGING = "ringing", "Ringing"
    IN_PROGRESS = "in_progress", "In progress"
    COMPLETED = "completed", "Completed"
    BUSY = "busy", "Busy"
    NO_ANSWER = "no_answer", "No answer"
    FAILED = "failed", "Failed"
    CANCELED = "canceled", "Canceled"
    REJECTED = "rejected", "Rejected"

    @classmethod
    def final(cls) -> frozenset[str]:
        return frozenset({cls.COMPLETED, cls.BUSY, cls.NO_ANSWER, cls.FAILED, cls.CANCELED, cls.REJECTED})


class ConversionStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    CONVERTED = "converted", "Converted"
    NOT_CONVERTED = "not_converted", "Not converted"


class RecordingStatus(models.TextChoices):
    """The call recording's state, in Twilio's words (RecordingStatus), plus ``deleted`` by retention."""

    NONE = "", "No recording"
    IN_PROGRESS = "in-progress", "Recording"
    COMPLETED = "completed", "Ready"
    ABSENT = "absent", "Absent (nothing was said)"
    FAILED = "failed", "Failed"
    DELETED = "deleted", "Deleted (retention)"


class Attestation(models.TextChoices):
    """The caller's STIR/SHAKEN verification, as the carrier reports it (Twilio's ``StirVerstat``): the signature
    checked out with attestation A (the carrier knows the caller and their right to the number), B (knows the
    caller, not the number) or C (only where the call entered its network), it failed, or there was none."""

    UNKNOWN = "", "Not reported"
    PASSED_A = "passed_a", "Verified, attestation A (full)"
    PASSED_B = "passed_b", "Verified, attestation B (partial)"
    PASSED_C = "passed_c", "Verified, attestation C (gateway)"
    FAILED = "failed", "Verification failed"
    NONE = "none", "Not verified (no signature)"


class CallQuerySet(models.QuerySet):
    def in_progress(self) -> CallQuerySet:
        return self.exclude(status__in=CallStatus.final())

    def between(self, start, end) -> CallQuerySet:
        return self.filter(started_at__gte=start, started_at__lt=end)

    def handler_conversions(self, handler, since, until=None) -> CallQuerySet:
        """Calls that converted for ``handler`` (its revenue side) with ``since <= converted_at < until``.

        What a handler's caps count when its ``cap_counts`` is "converted calls".
        """
        qs = self.filter(handler=handler, revenue_converted=True, converted_at__gte=since)
        return qs.filter(converted_at__lt=until) if until is not None else qs


class Call(models.Model):

    account = account_field(null=True, db_index=False)  # null: a number no account holds
    call_sid = models.CharField("CallSid", max_length=64, unique=True)
    tracking_number = models.ForeignKey("numbers.TrackingNumber", null=True, blank=True, on_delete=models.SET_NULL, related_name="calls")
    # No single-column index on campaign, source, handler or caller: the (column, started_at) indexes below answer
    # every look-up by them, and each index costs every call's insert and updates (four a call) a write.
    campaign = models.ForeignKey("tracking.Campaign", null=True, blank=True, on_delete=models.SET_NULL, related_name="calls", db_index=False)
    source = models.ForeignKey("tracking.Source", verbose_name=pgettext_lazy("party", "source"), null=True, blank=True, on_delete=models.SET_NULL, related_name="calls", db_index=False)
    handler = models.ForeignKey(
        "tracking.Handler", verbose_name=pgettext_lazy("party", "handler"), null=True, blank=True, on_delete=models.SET_NULL, related_name="calls", db_index=False,
        help_text=_("The handler who answered (or was last dialled)."),
    )
    session = models.ForeignKey(
        "numbers.NumberSession", null=True, blank=True, on_delete=models.SET_NULL, related_name="calls",
        help_text="The web visitor credited with this call (pool numbers).",
    )
    caller_number = models.CharField(max_length=32, help_text="E.164 when it could be read; as sent otherwise (e.g. 'anonymous').")
    called_number = models.CharField(max_length=32)
    caller_city = models.CharField(max_length=100, blank=True)
    caller_state = models.CharField(max_length=100, blank=True)
    caller_zip = models.CharField(max_length=20, blank=True)
    caller_country = models.CharField(max_length=2, blank=True)
    # The caller's STIR/SHAKEN verification. The caller name (Twilio's CallerName) is the tag ``caller_name``: the
    # call's INSERT binds every column where its row is not one JSON parameter (``fastdb.insert``), and psycopg parses
    # a statement of more than 50 parameters on every execution.
    attestation = models.CharField(
        "STIR/SHAKEN attestation", max_length=10, choices=Attestation.choices, default=Attestation.UNKNOWN, blank=True,
        help_text="The caller ID's STIR/SHAKEN verification as the carrier reported it (Twilio's StirVerstat); "
        "also the call's tag attestation.",
    )
    # Filtered on through the (status, revenue, id) and (status, payout, id) indexes (no index of its own: migration 0043).
    status = models.CharField(max_length=20, choices=CallStatus.choices, default=CallStatus.RINGING)
    reject_reason = models.CharField(max_length=200, blank=True)
    started_at = models.DateTimeField(default=timezone.now, db_index=True)
    answered_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    duration = models.PositiveIntegerField(default=0, help_text="Seconds, from Twilio's final status.")
    talk_time = models.PositiveIntegerField(default=0, help_text=_("Seconds connected to a handler."))
    last_sequence = models.IntegerField(default=-1, help_text="Highest status-callback SequenceNumber applied.")
    tags = models.JSONField(default=dict, blank=True, help_text="The call's tags: caller geo, IVR keys and tags, marketing data.")
    marketing_data = models.JSONField(default=dict, blank=True, help_text="UTM parameters, click ids and custom data of the visitor or static number.")
    landing_page = models.URLField(max_length=2000, blank=True)
    referrer = models.URLField(max_length=2000, blank=True)
    visitor_id = models.CharField(max_length=64, blank=True)
    decision = models.JSONField(default=dict, blank=True, help_text=_("The routing plan and why each handler was skipped."))
    # The TwiML given to each of the call's webhooks (a retried request gets the very same answer), by request key.
    # Beside the routing state, in a column the report rollups do not watch: storing an answer changes no figure.
    answers = models.JSONField(null=True, blank=True, editable=False, help_text="The TwiML answered to each webhook of the call.")
    plan_index = models.PositiveSmallIntegerField(default=0, help_text="The next step of the plan to dial.")
    fallback_step = models.CharField(max_length=30, blank=True, help_text="Which fallback took the call, if any.")
    used_failsafe = models.BooleanField(default=False)
    failsafe_reason = models.CharField(max_length=200, blank=True, help_text="Why the call went to the fail-safe number.")
    recording_url = models.URLField(max_length=1000, blank=True)
    recording_sid = models.CharField(max_length=64, blank=True, help_text="The carrier's RecordingSid of the call's recording.")
    recording_status = models.CharField(max_length=20, choices=RecordingStatus.choices, default=RecordingStatus.NONE, blank=True)
    recording_duration = models.PositiveIntegerField(default=0, help_text="Seconds of recorded audio.")
    voicemail_url = models.URLField(max_length=1000, blank=True)
    conversion_status = models.CharField(max_length=20, choices=ConversionStatus.choices, default=ConversionStatus.PENDING)
    converted = models.BooleanField(default=False, db_index=True)
    converted_at = models.DateTimeField(null=True, blank=True)
    conversion_reason = models.CharField(max_length=300, blank=True, help_text="Why the call did or did not convert (the revenue side).")
    revenue_converted = models.BooleanField(
        default=False, help_text=_("The handler's side converted (the handler pays us); conversion caps count these.")
    )
    payout_converted = models.BooleanField(default=False, help_text=_("The source's side converted (we pay the source)."))
    conversion_evaluated_at = models.DateTimeField(
        null=True, blank=True, help_text="When the conversion rules were applied to the completed call (once)."
    )
    revenue = models.DecimalField(max_digits=10, decimal_places=2, default=Decimal("0"))
    payout = models.DecimalField(max_digits=10, decimal_places=2, default=Decimal("0"))
    payout_reason = models.CharField(max_length=300, blank=True, help_text=_("Why the source's side did or did not convert."))
    is_test = models.BooleanField(
        "test call", default=False,
        help_text="Placed from the admin's \"Test call\" (or simulate_call --test): left out of the reports, the caps' "
        "counts and conversions, and sends webhooks only when the operator asked.",
    )

    objects = CallQuerySet.as_manager()

    class Meta:
        ordering = ["-started_at"]
        permissions = [("listen_recording", "Can listen to call recordings")]
        indexes = [
            models.Index(fields=["campaign", "started_at"]),
            models.Index(fields=["source", "started_at"]),
            models.Index(fields=["handler", "started_at"]),
            models.Index(fields=["caller_number", "started_at"]),
            models.Index(fields=["handler", "revenue_converted", "converted_at"], name="call_handler_conversions"),
            # The calls a campaign's spam rules scored (they carry the tag "spam"): the dashboard's spam panel reads a
            # period's without the other calls (calltrack.spam_figures; bench/spam_panel.py).
            models.Index(fields=["started_at"], name="call_scored_started", condition=models.Q(tags__has_key="spam")),
            # An account's call log, newest first (issue 30): without it a small client's page beside a large one's
            # history walks the whole started_at index to find its rows (tracking 0042).
            models.Index(fields=["account", "started_at", "id"], name="call_account_started"),
        ]

    def __str__(self) -> str:
        return f"{self.caller_number} -> {self.called_number} ({self.call_sid})"

    @property
    def margin(self) -> Decimal:
        return self.revenue - self.payout

    @property
    def is_final(self) -> bool:
        return self.status in CallStatus.final()

    #: The columns the routing state is kept in (``state_keep`` sets them).
    STATE_FIELDS = ("decision", "plan_index")
    #: The column that holds the routing state (a field name: who may see it is decided by name).
    STATE_COLUMN = "decision"
    #: The spam mark's action and codes (``tracking.call_state.SpamMark``) as ORM lookups: the reports filter and
    #: group the calls by them in SQL; only this model names where the state keeps them.
    STATE_SPAM_ACTION = "decision__spam__action"
    STATE_SPAM_CODES = "decision__spam__codes"

    @property
    def state(self) -> CallState:
        """The routing state kept in ``decision``, typed (a fresh copy: routing's unit of work loads its own and writes
        it back; see ``tracking.call_state``)."""
        return CallState.from_json(self.decision, plan_index=self.plan_index)

    @property
    def state_queue(self) -> QueueStay | None:
        """The call's stay in its campaign's queue, read without the rest of its state."""
        return CallState.queue_from_json(self.decision)

    @property
    def state_spam(self) -> SpamMark | None:
        """The call's spam score and what was done about it, read without the rest of its state."""
        return CallState.spam_from_json(self.decision)

    def state_keep(self, state: CallState) -> None:
        """Set ``decision`` and ``plan_index`` from ``state`` (saved by whoever saves the call)."""
        self.decision, self.plan_index = state.to_json(), state.plan_index

    @property
    def test_clock(self) -> datetime | None:
        """The moment a test call's routing reads business and tagging hours at (the operator's frozen clock), or None."""
        test = self.state.test if self.is_test else None
        return test.clock if test is not None else None

    @property
    def test_sends_webhooks(self) -> bool:
        """A test call whose operator asked for the campaign's webhooks (a real call always sends them)."""
        test = self.state.test if self.is_test else None
        return not self.is_test or (test is not None and test.webhooks)

    @property
    def caller_name(self) -> str:
        """The caller's name as the carrier's caller name lookup gave it (Twilio's ``CallerName``), kept as the
        tag ``caller_name``; '' when none came."""
        value = (self.tags or {}).get("caller_name", "") if isinstance(self.tags, dict) else ""
        return value if isinstance(value, str) else ""

    @property
    def line_type(self) -> str:
        """The caller's line type from the carrier lookup (``mobile``, ``nonFixedVoip``, ...), kept as the tag
        ``line_type``; '' when the campaign's spam rules asked no lookup or the carrier did not answer."""
        value = (self.tags or {}).get("line_type", "") if isinstance(self.tags, dict) else ""
        return value if isinstance(value, str) else ""

    @property
    def has_recording(self) -> bool:
        """A recording that can be played now (ready, not deleted by retention)."""
        return self.recording_status == RecordingStatus.COMPLETED and bool(self.recording_sid)


class AttemptKind(models.TextChoices):
    HANDLER = "handler", _("Handler")
    NO_ANSWER_FORWARD = "no_answer_forward", "No-answer forward"
    VOICEMAIL = "voicemail", "Voicemail"
    FALLBACK = "fallback", "Fallback chain"
    FAILSAFE = "failsafe", "Fail-safe"
    NUMBER = "number", "Number (menu key, lookup table, destination)"
    QUEUE = "queue", _("Queue (a freed handler takes the next caller waiting)")


class AttemptStatus(models.TextChoices):
    DIALING = "dialing", "Dialing"
    ANSWERED = "answered", "Answered"
    COMPLETED = "completed", "Completed"
    BUSY = "busy", "Busy"
    NO_ANSWER = "no_answer", "No answer"
    FAILED = "failed", "Failed"
    CANCELED = "canceled", "Canceled"


class CallAttemptQuerySet(models.QuerySet):
    def holding_slot(self) -> CallAttemptQuerySet:
        return self.filter(holds_slot=True)


class CallAttempt(models.Model):
    call = models.ForeignKey(Call, on_delete=models.CASCADE, related_name="attempts")
    sequence = models.PositiveSmallIntegerField(default=0)
    kind = models.CharField(max_length=20, choices=AttemptKind.choices, default=AttemptKind.HANDLER)
    # Indexed by the (handler, started_at) and (handler, holds_slot) indexes below.
    handler = models.ForeignKey("tracking.Handler", verbose_name=pgettext_lazy("party", "handler"), null=True, blank=True, on_delete=models.SET_NULL, related_name="attempts", db_index=False)
    receiving_number = models.ForeignKey("numbers.ReceivingNumber", null=True, blank=True, on_delete=models.SET_NULL, related_name="attempts")
    number_dialed = models.CharField(max_length=32)
    status = models.CharField(max_length=20, choices=AttemptStatus.choices, default=AttemptStatus.DIALING)
    started_at = models.DateTimeField(default=timezone.now)
    ended_at = models.DateTimeField(null=True, blank=True)
    duration = models.PositiveIntegerField(default=0, help_text="Seconds connected (DialCallDuration).")
    holds_slot = models.BooleanField(default=False, help_text=_("Counts toward the handler's concurrency cap until the attempt ends."))
    slot_expires_at = models.DateTimeField(null=True, blank=True, help_text="A lost callback cannot hold the slot past this.")
    counted = models.BooleanField(default=False, help_text=_("Counts toward the handler's hourly/daily/monthly/total caps."))

    objects = CallAttemptQuerySet.as_manager()

    class Meta:
        ordering = ["call_id", "sequence", "id"]  # columns: ordering by "call" would join the calls table
        indexes = [
            models.Index(fields=["handler", "started_at"]),
            models.Index(fields=["handler", "holds_slot"]),
        ]

    def __str__(self) -> str:
        return f"{self.number_dialed} ({self.get_status_display()})"


class QueuedCall(models.Model):
    """A caller waiting in the campaign's queue (Twilio ``<Enqueue>``): every handler was busy. ``offered`` is the
    handler leg dialled with ``<Dial><Queue>`` to take this caller (one at a time, decided under the row lock)."""

    call = models.OneToOneField(Call, on_delete=models.CASCADE, related_name="queued")
    campaign = models.ForeignKey("tracking.Campaign", on_delete=models.CASCADE, related_name="queued_calls")
    enqueued_at = models.DateTimeField(default=timezone.now)
    left_at = models.DateTimeField(null=True, blank=True)
    result = models.CharField(max_length=20, blank=True, help_text="Twilio's QueueResult: bridged, leave, hangup, queue-full ...")
    offered = models.ForeignKey(CallAttempt, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["enqueued_at", "id"]
        indexes = [models.Index(fields=["campaign", "left_at", "enqueued_at"])]

    def __str__(self) -> str:
        return f"{self.call_id} queued at {self.enqueued_at:%H:%M:%S}"


class CallEvent(models.Model):
    """One step of a call's timeline, for the operator."""

    call = models.ForeignKey(Call, on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField(default=timezone.now)
    kind = models.CharField(max_length=40)
    message = models.CharField(max_length=500)
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    RETRYING = "retrying", "Retrying"
    FAILED = "failed", "Failed"


class WebhookDelivery(models.Model):
    webhook = models.ForeignKey("tracking.Webhook", on_delete=models.CASCADE, related_name="deliveries")
    call = models.ForeignKey(Call, on_delete=models.CASCADE, related_name="webhook_deliveries", null=True, blank=True,
                             help_text="The call the event is about (a text's events have none).")
    text = models.ForeignKey("tracking.TextMessage", on_delete=models.CASCADE, related_name="webhook_deliveries", null=True, blank=True,
                             help_text="The text a message.received or message.sent event is about.")
    event = models.CharField(max_length=30)
    status = models.CharField(max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    url = models.URLField(max_length=2000, blank=True)
    body = models.TextField(blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    response_excerpt = models.CharField(max_length=500, blank=True)
    next_attempt_at = models.DateTimeField(
        null=True, blank=True,
        help_text="When the next try is due: a retry's time, or while a try is under way the end of its lease (blank: due now).",
    )
    created_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "webhook deliveries"
        indexes = [
            # The every-minute requeue of lost tasks (tracking.services.webhooks.webhook_deliveries_requeue) reads only
            # the deliveries still being tried: a small index whatever the history.
            models.Index(fields=["created_at"], name="tracking_delivery_open_idx", condition=models.Q(status__in=["pending", "retrying"])),
        ]

    def __str__(self) -> str:
        return f"{self.event} -> {self.url} ({self.status})"


class WebhookAttempt(models.Model):
    """One try at sending a delivery: what the receiver answered, and when."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveSmallIntegerField(help_text="1 for the first try.")
    at = models.DateTimeField(default=timezone.now)
    duration_ms = models.PositiveIntegerField(default=0)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True, help_text="Timeout or connection error, when there was no answer.")
    response_excerpt = models.CharField(max_length=500, blank=True)
    outcome = models.CharField(max_length=10, choices=DeliveryStatus.choices, help_text="What this try led to.")

    class Meta:
        ordering = ["delivery", "number", "id"]

    def __str__(self) -> str:
        return f"#{self.number}: {self.status_code or self.error} ({self.outcome})"
