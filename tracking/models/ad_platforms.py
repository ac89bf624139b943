"""Conversion destinations: the ad platforms a campaign's converting calls are sent back to, and each upload's status.

A ``ConversionDestination`` says where (a platform and its account), when (a side of the conversion, or a qualified
call), what (the conversion's value or a fixed one) and under which conditions (consent, hashed phones). Each call
makes at most one ``ConversionUpload`` per destination (unique together): its status is what the call page, the call
log's filter, the dashboard and the API show. The services are in ``tracking.services.ad_uploads``.
"""

from __future__ import annotations

from decimal import Decimal

from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy


class DestinationKind(models.TextChoices):
    LOCAL = "local", _("Local (records what would be sent)")
    GOOGLE_ADS = "google_ads", _("Google Ads")
    GA4 = "ga4", _("Google Analytics 4")
    META = "meta", _("Meta (Facebook, Instagram)")
    MICROSOFT = "microsoft", _("Microsoft Advertising")


class UploadTrigger(models.TextChoices):
    REVENUE = "revenue", _("The revenue side converts")
    PAYOUT = "payout", _("The payout side converts")
    QUALIFIED = "qualified", _("A qualified call (answered and talked at least the minimum)")


class UploadValue(models.TextChoices):
    CONVERSION = "conversion", _("The conversion's amount (revenue or payout, as triggered)")
    FIXED = "fixed", _("A fixed value")


class UploadStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    SENT = "sent", _("Sent")
    REFUSED = "refused", _("Refused by the platform")
    NOT_ELIGIBLE = "not_eligible", _("Not eligible")


class Adjustment(models.TextChoices):
    NONE = "", _("None")
    RETRACTION = "retraction", _("Retraction (the conversion was revoked)")
    RESTATEMENT = "restatement", _("Restatement (the conversion's value changed)")


class ConversionDestination(models.Model):
    campaign = models.ForeignKey(
        "tracking.Campaign", verbose_name=pgettext_lazy("party", "campaign"), on_delete=models.CASCADE,
        related_name="conversion_destinations", help_text=_("The campaign whose converting calls are sent."),
    )
    source = models.ForeignKey(
        "tracking.Source", verbose_name=pgettext_lazy("party", "source"), null=True, blank=True, on_delete=models.CASCADE,
        related_name="conversion_destinations", help_text=_("Only calls from this source; blank: every call of the campaign."),
    )
    name = models.CharField(max_length=100, help_text=_("As the call page and the dashboard show it."))
    kind = models.CharField(
        _("platform"), max_length=20, choices=DestinationKind.choices, default=DestinationKind.LOCAL,
        help_text=_("Where uploads go. Local records what would be sent, on the call page, and sends nothing."),
    )
    enabled = models.BooleanField(default=True, help_text=_("Off: no new uploads (those already made stay as they are)."))
    trigger = models.CharField(
        max_length=20, choices=UploadTrigger.choices, default=UploadTrigger.REVENUE,
        help_text=_("What makes a call worth sending: a side of its conversion, or a qualified call."),
    )
    min_talk_time = models.PositiveIntegerField(
        _("qualified after (seconds)"), default=60, validators=[MaxValueValidator(86400)],
        help_text=_("A qualified call: answered and talked at least this long (only for the qualified trigger)."),
    )
    value_from = models.CharField(
        _("value"), max_length=20, choices=UploadValue.choices, default=UploadValue.CONVERSION,
        help_text=_("The value sent: the conversion's revenue or payout (as the trigger says), or the fixed value."),
    )
    fixed_value = models.DecimalField(
        max_digits=10, decimal_places=2, default=Decimal("0"), validators=[MinValueValidator(0)],
        help_text=_("The value sent when the value is fixed."),
    )
    currency = models.CharField(
        max_length=3, default="USD", validators=[RegexValidator(r"^[A-Z]{3}$", _("An ISO 4217 code such as USD."))],
        help_text=_("ISO 4217 code of the value (USD, EUR ...)."),
    )
    delay_minutes = models.PositiveIntegerField(
        _("delay (minutes)"), default=0, validators=[MaxValueValidator(43200)],
        help_text=_("Wait this long after the trigger before sending (some conversion types are refused when too recent)."),
    )
    consent_required = models.BooleanField(
        default=False,
        help_text=_("Send only when the landing page reported consent: the pool accepts a custom parameter named "
                    "'consent' and the visitor's page sent consent=granted (or yes, true, 1)."),
    )
    hashed_phone_allowed = models.BooleanField(
        _("send the hashed phone"), default=False,
        help_text=_("Send the caller's number, normalised to E.164 and SHA-256 hashed (never in clear): Google's "
                    "enhanced conversions for leads when there is no click id, Meta's user_data.ph."),
    )
    account_id = models.CharField(
        max_length=100, blank=True,
        help_text=_("Google Ads: the customer id (digits); GA4: the measurement id (G-...); Meta: the pixel (dataset) id; "
                    "Microsoft: the account id."),
    )
    conversion_action = models.CharField(
        max_length=200, blank=True,
        help_text=_("Google Ads: the conversion action's id; GA4: the event name (default phone_call_conversion); "
                    "Meta: the event name (default Lead); Microsoft: the offline conversion goal's name."),
    )
    account_timezone = models.CharField(
        _("account time zone"), max_length=64, default="UTC",
        help_text=_("Google Ads: the account's time zone (conversion times are written in it, with their offset)."),
    )
    # Stored server-side only: the admin and the API accept new values and never show them back.
    credentials = models.JSONField(default=dict, blank=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["campaign_id", "name", "id"]
        verbose_name = _("conversion destination")

    def __str__(self) -> str:
        return f"{self.name} ({self.get_kind_display()})"

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        from tracking.services.ad_platforms import destination_problems

        problems = destination_problems(self)
        if problems:
            raise ValidationError(problems)

    @property
    def credential_names(self) -> list[str]:
        """The names of the stored credentials (their values are never shown)."""
        return sorted(k for k, v in (self.credentials or {}).items() if v)


class ConversionUploadQuerySet(models.QuerySet):
    def due(self, now) -> ConversionUploadQuerySet:
        return self.filter(status=UploadStatus.PENDING, next_try_at__lte=now)


class ConversionUpload(models.Model):
    call = models.ForeignKey("tracking.Call", on_delete=models.CASCADE, related_name="conversion_uploads")
    destination = models.ForeignKey(ConversionDestination, on_delete=models.CASCADE, related_name="uploads")
    status = models.CharField(max_length=20, choices=UploadStatus.choices, default=UploadStatus.PENDING, db_index=True)
    reason = models.CharField(max_length=500, blank=True, help_text=_("Why, in words: the platform's answer, or why not eligible."))
    value = models.DecimalField(max_digits=10, decimal_places=2, default=Decimal("0"))
    currency = models.CharField(max_length=3, blank=True)
    adjustment = models.CharField(max_length=20, choices=Adjustment.choices, default=Adjustment.NONE, blank=True,
                                  help_text=_("An adjustment waiting to be sent (or the last one sent)."))
    platform_id = models.CharField(max_length=200, blank=True, help_text=_("The platform's id of what it received."))
    response = models.TextField(blank=True, help_text=_("The platform's answer (its first 2,000 characters)."))
    conversion_time = models.DateTimeField(null=True, blank=True, help_text=_("The conversion time sent (adjustments name it again)."))
    attempts = models.PositiveSmallIntegerField(default=0)
    next_try_at = models.DateTimeField(null=True, blank=True)
    payload = models.JSONField(default=dict, blank=True, help_text=_("The request last sent (hashed, no credentials)."))
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ConversionUploadQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["call", "destination"], name="conversion_upload_once_per_destination")]
        indexes = [models.Index(fields=["destination", "status"], name="conversion_upload_dest_status")]
        verbose_name = _("conversion upload")

    def __str__(self) -> str:
        return f"call #{self.call_id} -> {self.destination_id}: {self.status}"
