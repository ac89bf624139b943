"""The shared layer's tables: rate-limit counters kept in the database when the cache cannot increment atomically
(calltrack.ratelimit)."""

from __future__ import annotations

import re

from django.conf import settings
from django.db import models

from calltrack.fields import PhoneNumberField

TWILIO_ACCOUNT_SID = re.compile(r"AC[0-9a-fA-F]{32}")
TWILIO_AUTH_TOKEN = re.compile(r"[0-9a-fA-F]{32}")
# Named without the party words: the choice is shown in either vocabulary (tests/calltrack/test_nomenclature.py).
NOMENCLATURE_CHOICES = [("standard", "Standard"), ("performance", "Performance marketing")]


def mask_secret(value: str) -> str:
    """A secret as shown back (admin, API, logs): its last four characters, never the whole."""
    return f"\u2022\u2022\u2022\u2022{value[-4:]}" if value else ""


class RateCounter(models.Model):
    """One client's count in one limit's current window: incremented by one ``INSERT ... ON CONFLICT DO UPDATE ...
    RETURNING`` (atomic on PostgreSQL and SQLite), never read then written. A row whose window has ended is reset by
    the next hit, and deleted by the ``rate_counters_purge`` task."""

    key = models.CharField(max_length=250, primary_key=True, help_text="The limit's scope, the client and the period.")
    window_end = models.BigIntegerField(db_index=True, help_text="When the counted window ends (Unix seconds).")
    hits = models.PositiveIntegerField(default=0, help_text="Requests counted in the window.")

    class Meta:
        verbose_name = "rate-limit counter"

    def __str__(self) -> str:
        return f"{self.key}: {self.hits}"


class AccountRole(models.TextChoices):
    """What a member may do in an account (collaborators, a source's or a handler's login, are not members: they
    see their own source or handler inside its account, ``tracking.Collaborator``)."""

    OWNER = "owner", "Owner"  # everything its Django permissions allow, and the account's members
    ADMIN = "admin", "Admin"  # configure: everything its Django permissions allow
    ANALYST = "analyst", "Analyst"  # read everything, change nothing
    BILLING = "billing", "Billing"  # the account's usage only


class Account(models.Model):
    """One client of the install (an agency runs many): every party, number, call, text and setting belongs to
    exactly one, and nobody sees another's rows (``calltrack.scoping``). A fresh install has one, "Default"."""

    name = models.CharField(max_length=200, help_text="The client's name, shown in the account switcher.")
    slug = models.SlugField(max_length=64, unique=True, help_text="Short id for the API's account parameter and the commands' --account.")
    time_zone = models.CharField(
        max_length=64, blank=True,
        help_text="The zone the console's days are read in (the dashboard, the reports, usage). Blank: the install's TIME_ZONE.",
    )
    currency = models.CharField(max_length=3, blank=True, help_text="ISO 4217 code money is shown in. Blank: the install's.")
    nomenclature = models.CharField(
        max_length=20, blank=True, choices=NOMENCLATURE_CHOICES,
        help_text="The console's words for the parties of this account's calls: standard, or performance marketing's. "
                  "Blank: the install's CALLTRACK_NOMENCLATURE.",
    )
    failsafe_number = PhoneNumberField(
        blank=True,
        help_text="Dialled when anything fails while routing a call of this account and neither its tracking number nor "
                  "its campaign has a fail-safe of its own. Blank: the install's CALLTRACK_FAILSAFE_NUMBER.",
    )
    twilio_account_sid = models.CharField(
        max_length=34, blank=True, verbose_name="Twilio subaccount SID",
        help_text="The client's Twilio subaccount (AC followed by 32 hex digits): its numbers are bought, configured and "
                  "released there, its texts, queue dials and recordings go through it, and its webhooks are checked "
                  "with its auth token. Blank: the install's TWILIO_ACCOUNT_SID.",
    )
    twilio_auth_token = models.CharField(
        max_length=64, blank=True, verbose_name="Twilio subaccount auth token",
        help_text="The subaccount's auth token (never shown back in full). Set together with the SID.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["pk"]
        constraints = [
            # A Twilio subaccount signs its numbers' webhooks: it belongs to one account (routing.signatures).
            models.UniqueConstraint(fields=["twilio_account_sid"], condition=~models.Q(twilio_account_sid=""),
                                    name="account_twilio_subaccount_once",
                                    violation_error_message="This Twilio subaccount belongs to another account."),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        from zoneinfo import available_timezones

        from django.core.exceptions import ValidationError

        if self.time_zone and self.time_zone not in available_timezones():
            raise ValidationError({"time_zone": f"{self.time_zone!r} is not a time zone (e.g. America/New_York)."})
        if self.currency and not (len(self.currency) == 3 and self.currency.isalpha() and self.currency.isupper()):
            raise ValidationError({"currency": "An ISO 4217 code, three capital letters (USD, EUR)."})
        if self.twilio_account_sid and not TWILIO_ACCOUNT_SID.fullmatch(self.twilio_account_sid):
            raise ValidationError({"twilio_account_sid": "A Twilio account SID is AC followed by 32 hex digits."})
        if self.twilio_auth_token and not TWILIO_AUTH_TOKEN.fullmatch(self.twilio_auth_token):
            raise ValidationError({"twilio_auth_token": "A Twilio auth token is 32 hex digits."})
        if self.twilio_account_sid and self.twilio_account_sid == settings.TWILIO_ACCOUNT_SID:
            raise ValidationError({"twilio_account_sid": "This is the install's own Twilio account (TWILIO_ACCOUNT_SID): leave it blank."})
        if bool(self.twilio_account_sid) != bool(self.twilio_auth_token):
            raise ValidationError("Set both the Twilio subaccount SID and its auth token, or neither (the install's account).")

    @property
    def carrier_credentials(self) -> tuple[str, str] | None:
        """The subaccount's (SID, auth token), or None: the install's TWILIO_* settings."""
        if self.twilio_account_sid and self.twilio_auth_token:
            return self.twilio_account_sid, self.twilio_auth_token
        return None


class Membership(models.Model):
    """A user's place in an account: its role there. A user may belong to several accounts and switches between them
    in the admin's header; a staff user who belongs to none works in the first account (a single-account install
    needs no memberships)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=AccountRole.choices, default=AccountRole.ADMIN)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "account"], name="membership_once_per_account")]

    def __str__(self) -> str:
        return f"{self.user} in {self.account} ({self.get_role_display()})"


#: An account token's key starts with this (the API tells it from a user's own token without a second lookup).
ACCOUNT_TOKEN_PREFIX = "ct_"


def _token_key() -> str:
    import secrets

    return ACCOUNT_TOKEN_PREFIX + secrets.token_hex(18)


class AccountToken(models.Model):
    """An API token bound to one account: requests with it act in that account only, whatever other accounts its
    user belongs to (``Authorization: Token <key>``, like the install's own tokens)."""

    key = models.CharField(max_length=40, primary_key=True, default=_token_key, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="account_tokens")
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="tokens")
    name = models.CharField(max_length=100, blank=True, help_text="What uses it, e.g. 'CRM sync'.")
    created = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.name or 'token'} ({self.account})"
