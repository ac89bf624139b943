"""Campaigns: the call experience (handlers and strategy, prompts, IVR, conversion rules, webhooks)."""

from __future__ import annotations

import json
import secrets
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from calltrack import outbound, strategies
from calltrack.account_fields import account_field
from calltrack.fields import PhoneNumberField
from calltrack.ids import unique_slug
from tracking import webhook_templates
from tracking.spam_rules import HELP_TEXT as spam_rules_help
from tracking.spam_rules import SpamAction, spam_rules_problems


class RoutingStrategy(models.TextChoices):
    # Names and labels from calltrack.strategies, which routing.decision reads too (a test checks both agree).
    PRIORITY_WEIGHT = strategies.PRIORITY_WEIGHT, strategies.LABELS[strategies.PRIORITY_WEIGHT]
    ROUND_ROBIN = strategies.ROUND_ROBIN, strategies.LABELS[strategies.ROUND_ROBIN]
    SEQUENTIAL = strategies.SEQUENTIAL, strategies.LABELS[strategies.SEQUENTIAL]
    SIMULTANEOUS = strategies.SIMULTANEOUS, strategies.LABELS[strategies.SIMULTANEOUS]
    LEAST_CONNECTED = strategies.LEAST_CONNECTED, strategies.LABELS[strategies.LEAST_CONNECTED]
    NEAREST = strategies.NEAREST, strategies.LABELS[strategies.NEAREST]


class GreetingKind(models.TextChoices):
    NONE = "none", "No greeting"
    SAY = "say", "Say a text"
    PLAY = "play", "Play an audio file"


class FallbackCredit(models.TextChoices):
    """Whether a handler is credited with a call its line answered as a step of the fallback chain."""

    NEVER = "never", _("Never: a call the fallback chain answers is credited to no handler")
    ASSIGNED_AGENT = "assigned_agent", _("When the handler's line is the tracking number's or the caller's assigned agent")


class Campaign(models.Model):
    account = account_field()
    name = models.CharField(max_length=200, help_text="Your name for this call experience.")
    campaign_id = models.SlugField(
        "campaign ID",
        max_length=64,
        blank=True,
        help_text="Public identifier for other systems. Leave blank to have one generated.",
    )
    enabled = models.BooleanField(default=True, help_text="Untick to send every call of this campaign to the fail-safe number.")
    routing_strategy = models.CharField(
        max_length=20,
        choices=RoutingStrategy.choices,
        default=RoutingStrategy.PRIORITY_WEIGHT,
        help_text=_("How the open, matching handlers are dialled: by priority then weight; round robin (even spread); "
        "sequential (in the list's order); simultaneous (ring up to 10 at once, first to answer wins); least connected; "
        "nearest to the caller (handlers' location zip or coordinates; the caller's zip or area code)."),
    )
    nearest_fallback = models.CharField(
        max_length=20, default=RoutingStrategy.PRIORITY_WEIGHT,
        choices=[c for c in RoutingStrategy.choices if c[0] != RoutingStrategy.NEAREST],
        help_text=_("For 'nearest to the caller': how handlers are ordered when the caller's place is unknown "
        "(no zip, no US area code)."),
    )
    route_to_destination = models.BooleanField(
        default=False,
        help_text=_("A pool call goes to the handler (or receiving number) whose number the visitor's page showed (the "
        "detected destination), so one pool serves many locations; without one, routing as usual."),
    )
    sticky_routing = models.BooleanField(
        default=False, help_text=_("A repeat caller rings first the handler who answered them last time.")
    )
    handlers = models.ManyToManyField(
        "tracking.Handler", verbose_name=pgettext_lazy("party", "handlers"), through="CampaignHandler", related_name="campaigns", blank=True
    )
    greeting_kind = models.CharField(max_length=10, choices=GreetingKind.choices, default=GreetingKind.NONE, help_text="What the caller hears first.")
    greeting_text = models.TextField(blank=True, help_text="Text read to the caller (for 'say a text').")
    greeting_voice = models.CharField(max_length=50, default="alice", blank=True, help_text="Twilio voice, e.g. alice, man, woman, Polly.Joanna.")
    greeting_language = models.CharField(max_length=10, default="en-US", blank=True, help_text="Language of the spoken text, e.g. en-US, es-MX.")
    greeting_url = models.URLField(blank=True, help_text="Audio file played to the caller (for 'play an audio file').")
    ivr_prompt = models.TextField(
        blank=True,
        help_text="Menu read to the caller, e.g. 'For sales press 1, for support press 2.' Leave blank for no menu; "
        "the options are below.",
    )
    ivr_timeout = models.PositiveSmallIntegerField(default=5, validators=[MinValueValidator(1), MaxValueValidator(60)], help_text="Seconds to wait for a key press.")
    ivr_repeat = models.PositiveSmallIntegerField(default=1, validators=[MinValueValidator(0), MaxValueValidator(5)], help_text="How many times the menu is repeated when no key is pressed.")
    ivr_default_digit = models.CharField(
        max_length=1, blank=True, help_text="The option taken when the caller presses nothing (blank: route as if no menu)."
    )
    record_calls = models.BooleanField(default=False, help_text="Record connected calls (mind the law on consent where your callers are).")
    no_answer_message = models.CharField(
        max_length=500,
        blank=True,
        default="Sorry, nobody is available to take your call. Please try again later.",
        help_text=_("Said before hanging up when no handler answered and no fallback number is set."),
    )
    failsafe_number = PhoneNumberField(
        blank=True,
        help_text="Dialled when anything goes wrong while routing a call of this campaign (used when the tracking "
        "number has none of its own).",
    )
    company_phone = PhoneNumberField(
        blank=True, help_text=_("Last step of the fallback chain: dialled when no handler, agent or forwarding number took the call.")
    )
    fallback_credit = models.CharField(
        _("credit fallback answers to handlers"), max_length=20, choices=FallbackCredit.choices, default=FallbackCredit.NEVER,
        help_text=_("A handler's line reached by the fallback chain (as an assigned agent, the forwarding number or the company "
        "phone) may belong to a handler routing skipped (closed, at a cap). Never: the call is recorded as answered by the "
        "fallback chain, with no handler, no handler revenue and nothing counted toward the handler's caps. When the "
        "handler is the assigned agent: the tracking number's or the caller's assigned agent step credits the handler whose "
        "line it is (the other steps never do)."),
    )
    queue_enabled = models.BooleanField(
        _("queue callers when every handler is busy"), default=False,
        help_text=_("When every eligible handler is busy (a cap is full), the caller waits in a queue with hold music or a "
        "message and their position instead of going straight to the fallback chain. A handler whose call ends takes the "
        "next caller waiting."),
    )
    queue_max_wait = models.PositiveIntegerField(
        "maximum wait (seconds)", default=120, validators=[MinValueValidator(10), MaxValueValidator(3600)],
        help_text="After this long in the queue the caller leaves it and the call continues down the fallback chain.",
    )
    queue_hold_music_url = models.URLField(
        "hold music URL", max_length=500, blank=True,
        help_text="An MP3 or WAV played to waiting callers (blank: the queue message and a short pause).",
    )
    queue_message = models.CharField(
        max_length=300, blank=True, default="All of our lines are busy. Please hold, you are caller number {position}.",
        help_text="Said to waiting callers each time the hold music starts again; {position} is their place in the queue.",
    )
    spam_action = models.CharField(
        "above the spam threshold", max_length=20, choices=SpamAction.choices, default=SpamAction.OFF,
        help_text="Each call gets a spam score from its caller ID's verification, caller name, number, the block list "
        "and repeat dialling (the rules below). At or above the threshold: only tag it (spam=yes), route it but pay "
        "nobody for it, ask the caller to press 1, or reject it. Off: no score, nothing read.",
    )
    spam_threshold = models.PositiveSmallIntegerField(
        default=50, validators=[MinValueValidator(1), MaxValueValidator(10000)],
        help_text="The score (the sum of the reasons' points) from which a call counts as spam.",
    )
    spam_rules = models.JSONField(default=dict, blank=True, help_text=spam_rules_help)
    rr_position = models.BigIntegerField(default=0, editable=False, help_text="Round-robin cursor (kept in the database so every app server shares it).")
    config_version = models.PositiveIntegerField(default=1, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["account", "campaign_id"], name="campaign_id_unique_per_account")]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs) -> None:
        if not self.campaign_id:
            self.campaign_id = unique_slug(self, "campaign_id", self.name, max_length=64)
        super().save(*args, **kwargs)

    def clean(self) -> None:
        errors: dict[str, str] = {}
        if self.greeting_kind == GreetingKind.SAY and not self.greeting_text.strip():
            errors["greeting_text"] = "Write the text to say, or choose another greeting."
        if self.greeting_kind == GreetingKind.PLAY and not self.greeting_url:
            errors["greeting_url"] = "Give the audio file's URL, or choose another greeting."
        if self.ivr_default_digit and self.ivr_default_digit not in "0123456789*#":
            errors["ivr_default_digit"] = "A single key: 0-9, * or #."
        problems = spam_rules_problems(self.spam_rules)
        if problems:
            errors["spam_rules"] = " ".join(problems)
        if errors:
            raise ValidationError(errors)


class CampaignHandler(models.Model):
    """A handler's place in a campaign, with the campaign's own priority, weight and switch."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="campaign_handlers")
    handler = models.ForeignKey("tracking.Handler", verbose_name=pgettext_lazy("party", "handler"), on_delete=models.CASCADE, related_name="campaign_handlers")
    priority = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(99)],
        help_text=_("Overrides the handler's priority in this campaign (blank: the handler's own)."),
    )
    weight = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(1000)],
        help_text=_("Overrides the handler's weight in this campaign (blank: the handler's own)."),
    )
    enabled = models.BooleanField(default=True, help_text=_("Untick to stop this handler's calls in this campaign only."))
    position = models.PositiveIntegerField(default=0, help_text="Order for sequential and round-robin routing (lowest first).")
    # Nullable without a default: SQLite adds the column in place, keeping the table's money history triggers.
    duplicate_days = models.PositiveIntegerField(
        "duplicate days", null=True, blank=True, validators=[MaxValueValidator(3650)],
        help_text=_("Overrides the handler's duplicate restriction in this campaign: days in which a caller it had goes to "
                    "the other handlers (blank: the handler's own; 0: not restricted here)."),
    )

    class Meta:
        ordering = ["position", "id"]
        constraints = [models.UniqueConstraint(fields=["campaign", "handler"], name="campaign_handler_unique")]
        verbose_name = _("campaign handler")

    def __str__(self) -> str:
        return f"{self.handler} in {self.campaign}"

    @property
    def effective_priority(self) -> int:
        return self.priority if self.priority is not None else self.handler.priority

    @property
    def effective_weight(self) -> int:
        return self.weight if self.weight is not None else self.handler.weight

    @property
    def effective_duplicate_days(self) -> int | None:
        return (self.duplicate_days or None) if self.duplicate_days is not None else self.handler.duplicate_days


class IVRAction(models.TextChoices):
    TAG = "tag", "Set a tag and route"
    HANDLER = "handler", _("Go straight to a handler")
    MENU = "menu", "Open a sub-menu"
    NUMBER = "number", "Dial a number"
    VOICEMAIL = "voicemail", "Take a voicemail"


KEYS = "0123456789*#"


class IVRMenu(models.Model):
    """A sub-menu of a campaign's voice menu, opened by a key of another menu (the campaign's own menu is its
    ``ivr_prompt`` and the options without a menu). Menus may lead back to each other ("9 for the main menu")."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="ivr_menus", help_text="The campaign whose callers hear this menu.")
    name = models.CharField(max_length=100, help_text="Your name for this menu, e.g. 'Sales' (shown in the menu tree).")
    prompt = models.TextField(help_text="What the caller hears, e.g. 'New customers press 1, existing customers press 2.'")
    timeout = models.PositiveSmallIntegerField(default=5, validators=[MinValueValidator(1), MaxValueValidator(60)], help_text="Seconds to wait for a key press.")
    repeat = models.PositiveSmallIntegerField(default=1, validators=[MinValueValidator(0), MaxValueValidator(5)], help_text="How many times the menu is repeated when no key is pressed.")
    default_digit = models.CharField(max_length=1, blank=True, help_text="The option taken when the caller presses nothing (blank: route as if no menu).")

    class Meta:
        ordering = ["campaign_id", "name", "id"]
        constraints = [models.UniqueConstraint(fields=["campaign", "name"], name="ivr_menu_name_unique")]
        verbose_name = "IVR sub-menu"
        verbose_name_plural = "IVR sub-menus"

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if self.default_digit and self.default_digit not in KEYS:
            raise ValidationError({"default_digit": "A single key: 0-9, * or #."})


class IVROption(models.Model):
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="ivr_options")
    menu = models.ForeignKey(
        IVRMenu, null=True, blank=True, on_delete=models.CASCADE, related_name="options",
        help_text="The sub-menu this key belongs to (blank: the campaign's main menu).",
    )
    digit = models.CharField(max_length=1, help_text="The key the caller presses: 0-9, * or #.")
    label = models.CharField(max_length=100, blank=True, help_text="What this option is, e.g. 'Sales'.")
    action = models.CharField(max_length=10, choices=IVRAction.choices, default=IVRAction.TAG, help_text="What the key does.")
    tag_key = models.CharField(
        max_length=64, blank=True,
        help_text="Tag set on the call (e.g. 'department'); routing tag criteria can use it. Any action may set one.",
    )
    tag_value = models.CharField(max_length=200, blank=True, help_text="The tag's value (e.g. 'sales'). Defaults to the key pressed.")
    handler = models.ForeignKey(
        "tracking.Handler", verbose_name=pgettext_lazy("party", "handler"), null=True, blank=True, on_delete=models.CASCADE, related_name="+",
        help_text=_("For 'go straight to a handler': the handler dialled."),
    )
    submenu = models.ForeignKey(
        IVRMenu, null=True, blank=True, on_delete=models.CASCADE, related_name="opened_by",
        help_text="For 'open a sub-menu': the menu the key opens (another menu of this campaign).",
    )
    number = PhoneNumberField(
        blank=True, help_text="For 'dial a number': the number dialled; when it does not answer, the campaign's fallback chain follows.",
    )
    response = models.CharField(max_length=300, blank=True, help_text="Said after the key press, e.g. 'Connecting you to sales.'")

    class Meta:
        ordering = ["digit"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "digit"], condition=models.Q(menu__isnull=True), name="ivr_option_digit_unique"),
            models.UniqueConstraint(fields=["menu", "digit"], condition=models.Q(menu__isnull=False), name="ivr_option_menu_digit_unique"),
        ]
        verbose_name = "IVR option"

    def __str__(self) -> str:
        return f"{self.digit}: {self.label or self.get_action_display()}"

    def clean(self) -> None:
        errors: dict[str, str] = {}
        if self.digit not in list(KEYS):
            errors["digit"] = "A single key: 0-9, * or #."
        if self.action == IVRAction.HANDLER and not self.handler_id:
            errors[_("handler")] = _("Choose the handler this key goes to.")
        if self.action == IVRAction.TAG and not self.tag_key:
            errors["tag_key"] = "Name the tag this key sets."
        if self.action == IVRAction.MENU:
            if not self.submenu_id:
                errors["submenu"] = "Choose the sub-menu this key opens."
            elif self.campaign_id and self.submenu.campaign_id != self.campaign_id:
                errors["submenu"] = "Choose a menu of this campaign."
            elif self.menu_id and self.submenu_id == self.menu_id:
                errors["submenu"] = "A key cannot open the menu it is in (leave the menu to repeat it on no key)."
        if self.action == IVRAction.NUMBER and not self.number:
            errors["number"] = "Give the number this key dials."
        if self.menu_id and self.campaign_id and self.menu.campaign_id != self.campaign_id:
            errors["menu"] = "Choose a menu of this campaign."
        if errors:
            raise ValidationError(errors)


class ConversionKind(models.TextChoices):
    TIMER = "timer", "Timer (connected at least N seconds)"
    ATTEMPT = "attempt", _("Attempt (a handler was dialled)")
    POSTBACK = "postback", _("Postback (the handler's CRM confirms)")


class ConversionSide(models.TextChoices):
    BOTH = "both", "Revenue and payout"
    REVENUE = "revenue", _("Revenue only (what the handler pays us)")
    PAYOUT = "payout", _("Payout only (what we pay the source)")


class DedupeScope(models.TextChoices):
    CAMPAIGN = "campaign", "Per campaign"
    HANDLER = "handler", _("Per handler")


class ConversionRule(models.Model):
    """When a call converts and what it is worth. Several timer rules: only the highest threshold reached pays."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="conversion_rules", help_text="The campaign whose calls this rule values.")
    handler = models.ForeignKey(
        "tracking.Handler", verbose_name=pgettext_lazy("party", "handler"), null=True, blank=True, on_delete=models.CASCADE, related_name="conversion_rules",
        help_text=_("Set to make this rule this handler's own terms in the campaign (overriding the campaign's rules)."),
    )
    side = models.CharField(max_length=10, choices=ConversionSide.choices, default=ConversionSide.BOTH, help_text="Which side of the deal this rule decides (split conversions).")
    kind = models.CharField(max_length=10, choices=ConversionKind.choices, default=ConversionKind.TIMER, help_text="What makes the call convert.")
    min_duration = models.PositiveIntegerField(default=0, help_text="Timer: seconds the call must be connected.")
    revenue = models.DecimalField(max_digits=10, decimal_places=2, default=Decimal("0"), validators=[MinValueValidator(Decimal("0"))], help_text=_("What the handler pays us for such a call."))
    payout = models.DecimalField(max_digits=10, decimal_places=2, default=Decimal("0"), validators=[MinValueValidator(Decimal("0"))], help_text=_("What we pay the source for such a call."))
    postback_window = models.PositiveIntegerField(default=1440, help_text="Postback: minutes after the call in which the CRM may confirm.")
    dedupe_window = models.PositiveIntegerField(null=True, blank=True, help_text="Hours in which a repeat caller is not paid again. Blank: every call pays.")
    dedupe_scope = models.CharField(max_length=10, choices=DedupeScope.choices, default=DedupeScope.CAMPAIGN, help_text=_("Whether a repeat is counted within the campaign or per handler."))
    # Nullable without a default (blank means 1): SQLite adds the column in place, keeping the table's triggers.
    dedupe_max_payable = models.PositiveIntegerField(
        "de-dupe max payable", null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(1000)],
        help_text="With a de-dupe window: the most times a caller is paid within it (e.g. 2: the third call in the window "
                  "does not pay). Blank: 1.",
    )

    class Meta:
        ordering = ["campaign_id", "handler_id", "kind", "min_duration"]  # columns, not the related models

    def __str__(self) -> str:
        who = f" ({self.handler})" if self.handler_id else ""
        return f"{self.get_kind_display()}{who}"

    def clean(self) -> None:
        errors: dict[str, str] = {}
        if self.side == ConversionSide.REVENUE and self.payout:
            errors["payout"] = "A revenue-only rule pays no payout: leave it at 0, or add a payout rule."
        if self.side == ConversionSide.PAYOUT and self.revenue:
            errors["revenue"] = "A payout-only rule earns no revenue: leave it at 0, or add a revenue rule."
        if self.kind == ConversionKind.POSTBACK and not self.postback_window:
            errors["postback_window"] = "Give the minutes after the call in which the CRM may confirm (at least 1)."
        if self.dedupe_window == 0:
            errors["dedupe_window"] = "Leave blank for no de-duplication, or give at least 1 hour."
        if self.dedupe_max_payable is not None and self.dedupe_max_payable > 1 and not self.dedupe_window:
            errors["dedupe_max_payable"] = "Give the de-dupe window in which the caller is paid at most this many times."
        if self.kind != ConversionKind.TIMER and self.min_duration:
            errors["min_duration"] = "Only timer rules have a duration; leave it at 0."
        if errors:
            raise ValidationError(errors)


def _webhook_secret() -> str:
    return secrets.token_urlsafe(32)


class WebhookEvent(models.TextChoices):
    CALL_STARTED = "call.started", "Call started"
    CALL_ROUTED = "call.routed", "Call routed"
    CALL_ANSWERED = "call.answered", "Call answered"
    CALL_COMPLETED = "call.completed", "Call completed"
    CALL_CONVERTED = "call.converted", "Call converted"
    CALL_RECORDED = "call.recorded", "Call recording ready"
    MESSAGE_RECEIVED = "message.received", "Text received"
    MESSAGE_SENT = "message.sent", "Text sent"


class WebhookMethod(models.TextChoices):
    GET = "GET", "GET (tokens in the URL)"
    POST_JSON = "POST_JSON", "POST JSON"
    POST_FORM = "POST_FORM", "POST form"


class Webhook(models.Model):
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="webhooks", help_text="The campaign whose calls trigger this webhook.")
    name = models.CharField(max_length=100, blank=True, help_text="What this webhook feeds, e.g. 'CRM lead'.")
    enabled = models.BooleanField(default=True, help_text="Untick to stop sending this webhook.")
    events = models.JSONField(default=list, help_text="Which call events send this webhook.")
    url = models.URLField(max_length=1000, help_text="Where to send it. Replacement tokens like [caller_number] may appear in the URL.")
    method = models.CharField(max_length=10, choices=WebhookMethod.choices, default=WebhookMethod.POST_JSON, help_text="How the data is sent.")
    body_template = models.TextField(blank=True, help_text=webhook_templates.HELP_TEXT)
    secret = models.CharField(max_length=100, default=_webhook_secret, help_text="Signs each delivery (HMAC-SHA256 of the body in the X-Calltrack-Signature header).")
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["campaign", "name"]

    def __str__(self) -> str:
        return self.name or self.url

    def clean(self) -> None:
        valid = set(WebhookEvent.values)
        errors: dict[str, str] = {}
        if not isinstance(self.events, list) or not self.events or not set(self.events) <= valid:
            errors["events"] = f"Choose one or more of: {', '.join(WebhookEvent.values)}."
        for field, where in (("url", "URL"), ("body_template", "body template")):
            try:
                webhook_templates.validate(getattr(self, field) or "", where=where)
            except webhook_templates.TemplateError as exc:
                errors[field] = str(exc)
        if "url" not in errors and self.url:
            # The URL with its tokens filled in, as it will be called: http(s) only, never this server or a private network.
            problem = outbound.url_problem(webhook_templates.render(self.url, values=webhook_templates.sample_values(), escape="url"))
            if problem:
                errors["url"] = f"This URL cannot receive webhooks: {problem}."
        if "body_template" not in errors and self.body_template.strip():
            if self.method == WebhookMethod.GET:
                errors["body_template"] = "A GET sends no body: put the tokens in the URL's query string, or choose POST."
            elif self.method == WebhookMethod.POST_JSON:
                rendered = webhook_templates.render(self.body_template, values=webhook_templates.sample_values(), escape="json")
                try:
                    json.loads(rendered)
                except ValueError as exc:
                    errors["body_template"] = f"The body is not valid JSON once tokens are filled in: {exc}."
        if errors:
            raise ValidationError(errors)
