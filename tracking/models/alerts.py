"""Fraud monitors (pay-per-call traffic watched against its own baseline) and alerts (one row per episode of
trouble, whoever noticed it), with the addresses alerts are sent to."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from calltrack.account_fields import account_field
from tracking.models.campaigns import _webhook_secret


class MonitorKind(models.TextChoices):
    ANSWER_RATE_DROP = "answer_rate_drop", _("Answer rate drop")
    SHORT_CALLS = "short_calls", _("Short-call spike")
    REPEAT_CALLERS = "repeat_callers", _("Repeat-caller spike")
    OFF_HOURS = "off_hours", _("Traffic outside the campaign's hours")
    CONVERSION_RATE_DROP = "conversion_rate_drop", _("Conversion rate drop")


#: Kinds whose bad direction is a fall (the others rise).
DROP_KINDS = frozenset({MonitorKind.ANSWER_RATE_DROP, MonitorKind.CONVERSION_RATE_DROP})


class FraudMonitor(models.Model):
    """One check of a source's or a handler's traffic: the share of calls with some trait (short, a repeat caller,
    outside hours, answered, converted) in the last ``window_minutes``, against the same share over the
    ``baseline_hours`` before it. Evaluated by a scheduled task (``calltrack.alerts_check.alerts_check_task``)."""

    account = account_field()

    name = models.CharField(max_length=100, help_text=_("Your name for this monitor, e.g. 'Google Ads: short calls'."))
    kind = models.CharField(
        max_length=30, choices=MonitorKind.choices,
        help_text=_("What it watches. Answer rate: answered calls of all ended calls. Short calls: answered calls that "
                    "talked less than the short-call seconds. Repeat callers: calls from a number that already called "
                    "in the window before it. Outside hours: calls that arrived when none of the campaign's handlers "
                    "was open. Conversion rate: converted calls of answered calls (the source's or handler's own side)."),
    )
    source = models.ForeignKey(
        "tracking.Source", verbose_name=pgettext_lazy("party", "source"), null=True, blank=True, on_delete=models.CASCADE,
        related_name="fraud_monitors", help_text=_("The source watched. Leave both source and handler blank to watch every source, each on its own."),
    )
    handler = models.ForeignKey(
        "tracking.Handler", verbose_name=pgettext_lazy("party", "handler"), null=True, blank=True, on_delete=models.CASCADE,
        related_name="fraud_monitors", help_text=_("The handler watched, instead of a source."),
    )
    enabled = models.BooleanField(default=True, help_text=_("Untick to stop evaluating this monitor."))
    window_minutes = models.PositiveIntegerField(
        default=60, validators=[MinValueValidator(5), MaxValueValidator(7 * 24 * 60)],
        help_text=_("The rolling window looked at, in minutes (the last hour by default)."),
    )
    baseline_hours = models.PositiveIntegerField(
        default=7 * 24, validators=[MinValueValidator(1), MaxValueValidator(90 * 24)],
        help_text=_("The hours before the window that make the baseline (a week by default)."),
    )
    min_calls = models.PositiveIntegerField(
        default=20, validators=[MinValueValidator(1), MaxValueValidator(1_000_000)],
        help_text=_("Calls the window needs before it is judged (fewer: nothing changes). A baseline with fewer is no "
                    "baseline: a rise is measured from 0, a drop is not judged."),
    )
    threshold_points = models.PositiveSmallIntegerField(
        default=20, validators=[MinValueValidator(1), MaxValueValidator(100)],
        help_text=_("Percentage points the window's share must move from the baseline's, the bad way, to trigger "
                    "(e.g. 20: short calls from 5% to 25%, or an answer rate from 70% to 50%)."),
    )
    short_seconds = models.PositiveIntegerField(
        default=15, validators=[MinValueValidator(1), MaxValueValidator(3600)],
        help_text=_("Short-call monitors: an answered call that talked less than this many seconds is short."),
    )
    alert = models.BooleanField(default=True, help_text=_("Raise an alert (dashboard, email, webhook) when it triggers."))
    pause_source = models.BooleanField(
        _("pause the source"), default=False,
        help_text=_("Pause the source when it triggers: its numbers' calls go where a disabled campaign's go (the "
                    "fail-safe) until someone resumes it. Source monitors only."),
    )
    last_checked_at = models.DateTimeField(null=True, blank=True, editable=False, help_text=_("When the scheduled check last evaluated it."))
    last_result = models.CharField(max_length=300, blank=True, editable=False, help_text=_("What the last evaluation measured."))
    created_at = models.DateTimeField(default=timezone.now, editable=False, help_text=_("When it was created."))

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        errors: dict[str, str] = {}
        if self.source_id and self.handler_id:
            errors["handler"] = str(_("Watch a source or a handler, not both."))
        if self.pause_source and self.handler_id:
            errors["pause_source"] = str(_("Only a source can be paused: a handler monitor can alert only."))
        if errors:
            raise ValidationError(errors)


class AlertKind(models.TextChoices):
    POOL_OVERFLOW = "pool_overflow", _("Pool ran out of numbers")
    HANDLER_CAP = "handler_cap", _("Handler at its cap")
    WEBHOOK_FAILING = "webhook_failing", _("Webhooks failing")
    NUMBER_STATUS = "number_status", _("Numbers in quarantine")
    PORT_PENDING = "port_pending", _("Numbers pending port")
    SPAM_SURGE = "spam_surge", _("Spam surge")
    FRAUD_MONITOR = "fraud_monitor", _("Fraud monitor")
    AD_UPLOADS_FAILING = "ad_uploads_failing", _("Ad-platform uploads failing")
    CLUSTER_DOWN = "cluster_down", _("Task cluster not running")


class AlertLevel(models.TextChoices):
    WARNING = "warning", _("Warning")
    DANGER = "danger", _("Danger")


class AlertQuerySet(models.QuerySet):
    def open(self) -> AlertQuerySet:
        return self.filter(cleared_at__isnull=True)

    def unacknowledged(self) -> AlertQuerySet:
        return self.filter(acknowledged_at__isnull=True)


class Alert(models.Model):
    """One episode of a condition: opened once (``key`` names the condition, unique among open alerts), seen
    again while it lasts, cleared when it ends; a new episode is a new row. Shown until acknowledged."""

    account = account_field()

    kind = models.CharField(max_length=30, choices=AlertKind.choices, help_text=_("What kind of trouble."))
    level = models.CharField(max_length=10, choices=AlertLevel.choices, default=AlertLevel.WARNING, help_text=_("How bad."))
    key = models.CharField(max_length=200, help_text=_("The condition this episode is of: the same key while it lasts, a new row the next time."))
    message = models.CharField(max_length=500, help_text=_("What happened, in words (kept up to date while it lasts)."))
    url = models.CharField(max_length=500, blank=True, help_text=_("Where to look (an admin page)."))
    source = models.ForeignKey(
        "tracking.Source", verbose_name=pgettext_lazy("party", "source"), null=True, blank=True, on_delete=models.SET_NULL,
        related_name="alerts", help_text=_("The source it is about (its collaborators see it), if any."),
    )
    handler = models.ForeignKey(
        "tracking.Handler", verbose_name=pgettext_lazy("party", "handler"), null=True, blank=True, on_delete=models.SET_NULL,
        related_name="alerts", help_text=_("The handler it is about (its collaborators see it), if any."),
    )
    monitor = models.ForeignKey(FraudMonitor, null=True, blank=True, on_delete=models.SET_NULL, related_name="alerts",
                                help_text=_("The fraud monitor that raised it, if any."))
    opened_at = models.DateTimeField(default=timezone.now, help_text=_("When the episode began."))
    last_seen_at = models.DateTimeField(default=timezone.now, help_text=_("When its check last saw the condition."))
    cleared_at = models.DateTimeField(null=True, blank=True, help_text=_("When the condition ended (blank: still open)."))
    acknowledged_at = models.DateTimeField(null=True, blank=True, help_text=_("When someone took it off the dashboard."))
    acknowledged_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                                        help_text=_("Who acknowledged it."))
    notified_at = models.DateTimeField(null=True, blank=True, help_text=_("When it was sent to the recipients who get each alert."))
    notify_log = models.TextField(blank=True, help_text=_("What sending it did, per recipient."))
    silent = models.BooleanField(
        default=False, help_text=_("Recorded only (a monitor that pauses without alerting): never shown on the dashboard nor sent."),
    )

    objects = AlertQuerySet.as_manager()

    class Meta:
        ordering = ["-opened_at", "-id"]
        constraints = [
            # One open episode of a condition in each account (a spam surge in A and in B are two).
            models.UniqueConstraint(fields=["account", "key"], condition=models.Q(cleared_at__isnull=True), name="alert_one_open_episode"),
        ]
        indexes = [models.Index(fields=["acknowledged_at", "opened_at"], name="alert_unacked_idx")]

    def __str__(self) -> str:
        return self.message


class AlertDelivery(models.TextChoices):
    EACH = "each", _("Each alert as it opens")
    DIGEST = "digest", _("A daily digest")


class AlertRecipient(models.Model):
    """An address alerts are sent to: an email address and/or a webhook (signed like the campaigns' webhooks)."""

    account = account_field()

    name = models.CharField(max_length=100, help_text=_("Who this is, e.g. 'On-call' or 'Google Ads team'."))
    enabled = models.BooleanField(default=True, help_text=_("Untick to stop sending alerts here."))
    email = models.EmailField(blank=True, help_text=_("Sent with Django's mail settings (EMAIL_*)."))
    webhook_url = models.URLField(
        max_length=1000, blank=True,
        help_text=_("POSTed as JSON, signed: X-Calltrack-Signature: sha256=HMAC-SHA256 of the body with the secret below. "
                    "Public addresses only (CALLTRACK_OUTBOUND_ALLOW lists exceptions)."),
    )
    webhook_secret = models.CharField(max_length=100, default=_webhook_secret, help_text=_("Signs each webhook."))
    delivery = models.CharField(
        max_length=10, choices=AlertDelivery.choices, default=AlertDelivery.EACH,
        help_text=_("Each alert when it opens, or one message a day listing the alerts opened since the last one."),
    )
    kinds = models.JSONField(
        default=list, blank=True, help_text=_("The alert kinds sent here (a list of kind names); empty: every kind."),
    )
    collaborator = models.ForeignKey(
        "tracking.Collaborator", null=True, blank=True, on_delete=models.CASCADE, related_name="alert_recipients",
        help_text=_("A source's or handler's login: this address then gets only the alerts about that source or handler."),
    )
    last_digest_at = models.DateTimeField(null=True, blank=True, editable=False, help_text=_("When the last digest was sent."))
    created_at = models.DateTimeField(default=timezone.now, editable=False, help_text=_("When it was added."))

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        from calltrack import outbound

        errors: dict[str, str] = {}
        if not self.email and not self.webhook_url:
            errors["email"] = str(_("Give an email address, a webhook URL, or both."))
        if self.webhook_url:
            problem = outbound.url_problem(self.webhook_url)
            if problem:
                errors["webhook_url"] = problem
        if not isinstance(self.kinds, list) or any(k not in AlertKind.values for k in self.kinds):
            errors["kinds"] = str(_("A list of alert kinds: {kinds}.")).format(kinds=", ".join(AlertKind.values))
        if errors:
            raise ValidationError(errors)
