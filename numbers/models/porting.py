"""Porting numbers in and out, and the simulated carrier's inventory."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from calltrack import phone
from calltrack.account_fields import account_field


class PortDirection(models.TextChoices):
    IN = "in", "Port in"
    OUT = "out", "Port out"


class PortStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SUBMITTED = "submitted", "Submitted"
    COMPLETED = "completed", "Completed"
    REJECTED = "rejected", "Rejected"
    CANCELED = "canceled", "Canceled"


class PortRequest(models.Model):
    account = account_field()
    direction = models.CharField(max_length=3, choices=PortDirection.choices, default=PortDirection.IN, help_text="In: numbers come to us from another carrier. Out: our numbers leave.")
    status = models.CharField(
        max_length=10, choices=PortStatus.choices, default=PortStatus.PENDING, db_index=True,
        help_text="Followed by a scheduled task; completed port-ins become active tracking numbers.",
    )
    numbers = models.JSONField(default=list, help_text="The numbers being ported, in E.164.")
    loa_name = models.CharField("LOA name", max_length=200, blank=True, help_text="Name of the account holder signing the letter of authorization.")
    loa_address = models.TextField("LOA address", blank=True, help_text="Service address on the losing carrier's account.")
    other_carrier = models.CharField(max_length=100, blank=True, help_text="The carrier numbers come from (port in) or go to (port out).")
    carrier = models.CharField(max_length=20, default="local", help_text="Our carrier handling the port.")
    carrier_request_id = models.CharField(max_length=64, blank=True)
    campaign = models.ForeignKey("tracking.Campaign", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", help_text="Port in: the campaign the numbers join when the port completes.")
    source = models.ForeignKey("tracking.Source", verbose_name=pgettext_lazy("party", "source"), null=True, blank=True, on_delete=models.SET_NULL, related_name="+", help_text=_("Port in: the source credited for the numbers."))
    pool = models.ForeignKey("numbers.NumberPool", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", help_text="Port in: the pool the numbers join.")
    rejection_reason = models.CharField(max_length=500, blank=True, help_text="Why the losing carrier refused the port, if it did.")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    submitted_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.get_direction_display()} of {len(self.numbers)} numbers ({self.get_status_display()})"

    def clean(self) -> None:
        if not isinstance(self.numbers, list) or not self.numbers:
            raise ValidationError({"numbers": "List at least one number."})
        cleaned, problems = [], []
        for n, value in enumerate(self.numbers, start=1):
            try:
                cleaned.append(phone.to_e164(value))
            except phone.InvalidPhoneNumber as exc:
                problems.append(f"number {n}: {exc}")
        if problems:
            raise ValidationError({"numbers": "; ".join(problems)})
        self.numbers = cleaned
        if self.direction == PortDirection.IN and not (self.loa_name and self.loa_address):
            raise ValidationError("A port-in needs the LOA name and address of the account holder.")


class LocalCarrierNumber(models.Model):
    """The `local` carrier's inventory: a simulated carrier that lives in the database."""

    class State(models.TextChoices):
        AVAILABLE = "available", "Available"
        OWNED = "owned", "Owned by us"
        PORTING_IN = "porting_in", "Porting in"
        PORTING_OUT = "porting_out", "Porting out"
        PORTED_OUT = "ported_out", "Ported out"

    number = models.CharField(max_length=20, unique=True, help_text="A number in the simulated carrier's stock (E.164).")
    state = models.CharField(max_length=12, choices=State.choices, default=State.AVAILABLE, db_index=True, help_text="Whether we can buy it, own it, or ported it away.")
    number_type = models.CharField(max_length=10, default="local", help_text="local, toll_free or mobile.")
    area_code = models.CharField(max_length=6, blank=True, db_index=True, help_text="The number's area code.")
    voice_url = models.URLField(max_length=500, blank=True, help_text="Where the carrier sends incoming calls (our /voice/incoming).")
    status_callback = models.URLField(max_length=500, blank=True, help_text="Where the carrier reports call status (our /voice/status).")
    sms_url = models.URLField(max_length=500, blank=True, help_text="Where the carrier sends incoming texts (our /sms/incoming).")
    port_request_id = models.CharField(max_length=40, blank=True, db_index=True, help_text="The simulated port this number is part of.")
    other_carrier = models.CharField(max_length=100, blank=True, help_text="The carrier a simulated port comes from or goes to.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["number"]

    def __str__(self) -> str:
        return f"{self.number} ({self.state})"


class LocalCarrierMessage(models.Model):
    """A text the `local` carrier was asked to send: what a real carrier would have delivered, kept for the demo and
    the tests (its delivery status comes back through the signed status callback, as Twilio's does)."""

    sid = models.CharField(max_length=64, unique=True, help_text="The simulated MessageSid (SM + 32 hex digits).")
    from_number = models.CharField(max_length=32)
    to_number = models.CharField(max_length=32)
    body = models.TextField(blank=True)
    media_urls = models.JSONField(default=list, blank=True)
    status_callback = models.URLField(max_length=1000, blank=True, help_text="Where the delivery status is reported.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.from_number} -> {self.to_number} ({self.sid})"
