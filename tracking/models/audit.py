"""The money audit trail: every change to what a call is worth and to the terms it is paid on.

Rows are written by database triggers (``tracking/sql/money_history.*.sql``, installed by migrations 0017 and 0025), never
by the application: an ORM save, a ``QuerySet.update()``, the voice path's hand-written SQL and a SQL console are
all recorded alike, in the writer's own statement. Who and from where come from ``calltrack.audit`` (a
transaction-local setting on PostgreSQL, an application SQL function on SQLite); see that module for why.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy


class AuditOrigin(models.TextChoices):
    ADMIN = "admin", "Admin"
    API = "api", "API"
    POSTBACK = "postback", "Postback"
    RULE = "rule", "Conversion rule (status callback)"
    TASK = "task", "Task"
    COMMAND = "command", "Command"
    DATABASE = "", "Database (no application context: a shell, a SQL console)"


#: The audited tables and, for each, the columns recorded (the money and the terms). The trigger files list the same
#: columns; ``tests/tracking/test_money_history.py`` checks that they agree.
AUDITED_COLUMNS: dict[str, tuple[str, ...]] = {
    "call": (
        "converted", "converted_at", "conversion_status", "conversion_reason", "revenue_converted", "revenue",
        "payout_converted", "payout", "payout_reason",
    ),
    "handler": (
        "enabled", "priority", "weight", "ring_timeout", "concurrency_cap", "hourly_cap", "daily_cap", "monthly_cap",
        "total_cap", "cap_counts", "duplicate_days", "duplicate_on",
    ),
    "source": ("static_number_cap",),
    "campaignhandler": ("campaign_id", "handler_id", "enabled", "priority", "weight", "duplicate_days"),
    "conversionrule": ("campaign_id", "handler_id", "side", "kind", "min_duration", "revenue", "payout", "postback_window",
                       "dedupe_window", "dedupe_scope", "dedupe_max_payable"),
    "webhook": ("campaign_id", "enabled", "url", "method", "secret"),
}

#: Columns whose values are never stored: the history keeps a fingerprint (the first 8 hex digits of their MD5),
#: enough to see that they changed.
MASKED_COLUMNS = frozenset({"webhook.secret"})


class MoneyChangeQuerySet(models.QuerySet):
    def of(self, table: str, object_id: int) -> MoneyChangeQuerySet:
        return self.filter(table=table, object_id=object_id)

    def of_handler_terms(self, handler_id: int) -> MoneyChangeQuerySet:
        """The handler's own row, its places in campaigns and its own conversion rules (what it pays)."""
        return self.filter(handler_id=handler_id, table__in=["handler", "campaignhandler", "conversionrule"])


#: The audited tables, in the operator's words (the stored value is the table's name).
AUDITED_TABLES = [
    ("call", _("call")), ("handler", pgettext_lazy("party", "handler")), ("source", pgettext_lazy("party", "source")),
    ("campaignhandler", _("campaign handler")), ("conversionrule", _("conversion rule")), ("webhook", _("webhook")),
]


class MoneyChange(models.Model):
    """One change (insert, update, delete) of an audited row: the recorded columns before and after."""

    table = models.CharField(max_length=20, choices=AUDITED_TABLES, help_text=_("Which kind of row changed: call, handler, source, webhook, ..."))
    object_id = models.BigIntegerField(help_text="The changed row's id (it may since have been deleted).")
    handler_id = models.BigIntegerField(
        pgettext_lazy("party", "handler"), null=True, blank=True, help_text=_("The handler the row concerns, if any."),
    )
    op = models.CharField(max_length=6, help_text="insert, update or delete.")
    at = models.DateTimeField(help_text="When the writing transaction started (database clock).")
    origin = models.CharField(max_length=20, choices=AuditOrigin.choices, blank=True)
    user_id = models.IntegerField(null=True, blank=True, help_text="The logged-in user who made the change, if any.")
    actor = models.CharField(max_length=200, blank=True, help_text=_("Who, in words: a username, a handler's postback."))
    before = models.JSONField(null=True, blank=True, help_text="The recorded columns before (none for an insert).")
    after = models.JSONField(null=True, blank=True, help_text="The recorded columns after (none for a delete).")

    objects = MoneyChangeQuerySet.as_manager()

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["table", "object_id", "at"], name="moneychange_object"),
                   models.Index(fields=["handler_id", "at"], name="moneychange_handler")]
        verbose_name = "money change"

    def __str__(self) -> str:
        return f"{self.get_table_display()} #{self.object_id} {self.op} ({self.origin or 'database'})"

    def changes(self, *, hidden: frozenset[str] | set[str] = frozenset()) -> list[tuple[str, object, object]]:
        """(column, before, after) for each recorded column that differs, in the table's column order; columns in
        ``hidden`` left out (see ``calltrack.scoping.HIDDEN_CALL_FIELDS``)."""
        before, after = self.before or {}, self.after or {}
        out = []
        for column in AUDITED_COLUMNS.get(self.table, ()):
            if column in hidden or (column.endswith("_id") and column[:-3] in hidden):
                continue
            old, new = before.get(column), after.get(column)
            if self.op == "update" and _same(old, new):
                continue
            out.append((column, old if self.op != "insert" else None, new if self.op != "delete" else None))
        return out


def _same(a: object, b: object) -> bool:
    # Amounts come back as numbers from one database and strings from another: compare them as text of their value.
    if isinstance(a, int | float) and isinstance(b, int | float) and not isinstance(a, bool) and not isinstance(b, bool):
        return float(a) == float(b)
    return a == b
