"""The texts log (the call log's sibling), its CSV export, the conversation page (texts and calls of one contact in one
timeline, with the operator's reply box) and a campaign's routing for texts (issue 29). Behind the gate
(``calltrack/scoping.py``): a collaborator sees only its texts, without the other side's fields, and writes nothing."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models
from django.http import Http404
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.dateparse import parse_date
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from unfold.contrib.filters.admin import AutocompleteSelectFilter, BooleanRadioFilter, ChoicesDropdownFilter
from unfold.decorators import display
from unfold.paginator import InfinitePaginator

from calltrack import csv_export, phone
from calltrack.admin_base import BillingRecordsAdminMixin, ModelAdmin, ServiceWritesAdminMixin
from calltrack.admin_scoping import CollaboratorScopedAdminMixin
from calltrack.formats import money
from calltrack.numbers.providers import CarrierError
from calltrack.numbers.services import texts as outbound
from calltrack.scoping import HIDDEN_TEXT_FIELDS, Scope, hidden_text_fields, may, scope_for, visible_calls, visible_texts
from tracking import admin_call_log as call_log
from tracking.models import (
    Call,
    Contact,
    EmailForwardStatus,
    TextDirection,
    TextEmailForward,
    TextMessage,
    TextPurpose,
    TextRoute,
    TextStatus,
)
from tracking.models.texts import body_clean, forward_waiting_q, outbound_failed_q, outbound_sent_q
from tracking.services import texts as text_route_services
from tracking.services.conversions import ConversionRefused

CONVERSATION_LIMIT = 200  # the latest texts and calls a conversation page shows (older ones: the logs)


def national(number: str) -> str:
    return phone.format_national(number) if number.startswith("+1") and len(number) == 12 else (number or "-")


class DeliveryFilter(admin.SimpleListFilter):
    """``?delivery=sent|waiting|failed``: our texts as the dashboard's figures count them (``tracking.models.texts``):
    taken by the carrier, forwards still waiting for a worker, or not sent."""

    title = "delivery"
    parameter_name = "delivery"
    CHOICES = {"sent": ("Sent (the carrier took it)", outbound_sent_q), "waiting": ("Forwards waiting", forward_waiting_q),
               "failed": ("Not sent (failed)", outbound_failed_q)}

    def lookups(self, request, model_admin):
        return [(key, label) for key, (label, _) in self.CHOICES.items()]

    def queryset(self, request, queryset):
        chosen = self.CHOICES.get(self.value() or "")
        return queryset.filter(chosen[1]()) if chosen else queryset


class TextCollaboratorScope(CollaboratorScopedAdminMixin):
    collaborator_kinds = ("source", "handler")
    collaborator_queryset = staticmethod(visible_texts)
    collaborator_hidden = {kind: tuple(sorted(names)) for kind, names in HIDDEN_TEXT_FIELDS.items()}
    collaborator_column_fields = {"revenue_money": "revenue", "payout_money": "payout", "number": "to_number"}
    collaborator_list_filter = {kind: ("direction", "status", DeliveryFilter, "converted") for kind in ("source", "handler")}


@admin.register(TextMessage)
class TextMessageAdmin(TextCollaboratorScope, BillingRecordsAdminMixin, ModelAdmin):
    """The texts log: every text in and out, filtered like the call log, exported as CSV; a text opens on its
    conversation."""

    list_display = ["when", "direction_label", "contact", "number", "source", "campaign", "excerpt", "status_label", "converted",
                    "revenue_money", "payout_money"]
    list_display_links = None
    list_filter = [
        ("created_at", call_log.LocalDateRangeFilter),
        ("direction", ChoicesDropdownFilter),
        ("purpose", ChoicesDropdownFilter),
        ("status", ChoicesDropdownFilter),
        DeliveryFilter,
        ("converted", BooleanRadioFilter),
        ("source", AutocompleteSelectFilter),
        ("campaign", AutocompleteSelectFilter),
        ("tracking_number", AutocompleteSelectFilter),
        *call_log.MARKETING_FILTERS,
    ]
    list_filter_submit = True
    search_fields = ["contact_number", "message_sid", "body"]
    search_help_text = "A number as stored (+14155550100), a MessageSid or words of the text."
    list_select_related = ["campaign", "source"]
    show_full_result_count = False
    paginator = InfinitePaginator
    list_per_page = 50
    change_list_template = "admin/tracking/textmessage/change_list.html"

    @display(description="time", ordering="created_at")
    def when(self, obj: TextMessage) -> str:
        return date_format(timezone.localtime(obj.created_at), "SHORT_DATETIME_FORMAT")

    @display(description="", label={"in": "info", "out": "success"})
    def direction_label(self, obj: TextMessage) -> str:
        return "in" if obj.direction == TextDirection.INBOUND else "out"

    @display(description="contact")
    def contact(self, obj: TextMessage):
        url = reverse("admin:tracking_textmessage_conversation", args=[obj.contact_number])
        return format_html('<a class="ct-number underline" href="{}">{}</a>', url, national(obj.contact_number))

    @display(description="number")
    def number(self, obj: TextMessage) -> str:
        return national(obj.to_number if obj.direction == TextDirection.INBOUND else obj.from_number)

    @display(description="text")
    def excerpt(self, obj: TextMessage):
        body = obj.body if len(obj.body) <= 60 else obj.body[:59] + "\u2026"
        media = f" [{len(obj.media_urls)} media]" if obj.media_urls else ""
        return format_html('<span title="{}">{}{}</span>', obj.body[:500], body, media)

    @display(description="status", ordering="status", label={
        "received": "info", "delivered": "success", "sent": "success", "queued": "info", "sending": "info",
        "undelivered": "danger", "failed": "danger",
    })
    def status_label(self, obj: TextMessage) -> str:
        return obj.get_status_display().lower()

    @display(description="revenue", ordering="revenue")
    def revenue_money(self, obj: TextMessage) -> str:
        return money(obj.revenue)

    @display(description="payout", ordering="payout")
    def payout_money(self, obj: TextMessage) -> str:
        return money(obj.payout)

    # Texts are records: nobody edits them here (BillingRecordsAdminMixin).

    actions = ["convert_texts"]

    def has_convert_permission(self, request) -> bool:
        return may(request.user, "text.convert", admin=True)

    @admin.action(description=_("Convert the selected texts (as the handler's postback would)"), permissions=["convert"])
    def convert_texts(self, request, queryset) -> None:
        for text in queryset:
            try:
                text_route_services.text_convert(text=text, source=f"{request.user} (admin)")
                self.message_user(request, f"Text #{text.pk} converted.", messages.SUCCESS)
            except ConversionRefused as exc:
                self.message_user(request, f"Text #{text.pk}: {exc}", messages.WARNING)

    def changelist_view(self, request, extra_context=None):
        """The log; a query parameter it cannot use (a date that does not exist, a status that is none, an id in
        other digits, an unknown filter or column) is a 400 page naming it, never the whole log instead."""
        problem = self.has_view_permission(request) and call_log.call_log_query_problem(
            model=TextMessage, params=request.GET, date_ranges=("created_at",))
        if problem:
            return _bad_query(self, request, problem)
        try:
            return super().changelist_view(request, extra_context=extra_context)
        except BadTextLogQuery as exc:
            return _bad_query(self, request, str(exc))

    def get_changelist_instance(self, request):
        """Django's changelist, with what it would drop or answer with the whole log (``?e=1``) refused instead:
        ``BadTextLogQuery`` names the parameter."""
        problem = text_log_query_problem(request.GET)
        if problem:
            raise BadTextLogQuery(problem)
        try:
            changelist = super().get_changelist_instance(request)
        except IncorrectLookupParameters as exc:
            raise BadTextLogQuery(_lookup_problem_words(exc)) from exc
        problem = _ordering_problem(changelist)
        if problem:
            raise BadTextLogQuery(problem)
        return changelist

    readonly_fields = [f.name for f in TextMessage._meta.fields]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        """A text's page is its conversation (the reply box posts there)."""
        obj = self.get_object(request, object_id)
        if obj is None or not self.has_view_permission(request, obj):
            raise Http404("No such text.")
        return self.conversation_view(request, obj.contact_number)

    # --- The CSV export and the conversation page ----------------------------------------------------------------

    def get_urls(self):
        return [
            path("export.csv", self.admin_site.admin_view(self.export_csv_view), name="tracking_textmessage_export"),
            path("conversation/<str:contact>/", self.admin_site.admin_view(self.conversation_view), name="tracking_textmessage_conversation"),
            *super().get_urls(),
        ]

    def export_csv_view(self, request):
        """The log as filtered and searched on screen, streamed through the project's CSV writer (formula-safe
        cells, constant memory); the columns a collaborator may not see are left out."""
        if not self.has_view_permission(request) or not may(request.user, "text.export"):
            raise PermissionDenied
        problem = call_log.call_log_query_problem(model=TextMessage, params=request.GET, date_ranges=("created_at",))
        if problem:
            return _bad_query(self, request, problem)
        try:
            changelist = self.get_changelist_instance(request)
        except BadTextLogQuery as exc:
            return _bad_query(self, request, str(exc))
        columns = text_export_columns(scope_for(request.user))
        rows = changelist.queryset.order_by("-created_at", "-pk").values_list(*[lookup for _, lookup in columns])
        tz = timezone.get_current_timezone()
        return csv_export.csv_streaming_response(
            filename=f"texts-{timezone.localtime():%Y%m%d-%H%M}.csv", header=[name for name, _ in columns],
            rows=([v.astimezone(tz).isoformat(timespec="seconds") if hasattr(v, "astimezone") else v for v in row]
                  for row in rows.iterator(chunk_size=2000)),
        )

    def conversation_view(self, request, contact: str):
        """The contact's texts and calls in one timeline (the latest ``CONVERSATION_LIMIT`` of each), the operator's
        reply box under it. A collaborator sees its own texts and calls only, and no reply box."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        # A number as stored (E.164), else the value cleaned of what no database stores (NUL, lone surrogates).
        number = phone.to_e164_or_none(contact[:40]) or body_clean(contact, 32)
        scope = scope_for(request.user)
        texts = list(visible_texts(TextMessage.objects.conversation(number), scope).select_related("campaign", "source", "sent_by").order_by("-created_at", "-pk")[:CONVERSATION_LIMIT])
        calls = list(visible_calls(Call.objects.filter(caller_number=number), scope)
                     .select_related("campaign", "source").order_by("-started_at")[:CONVERSATION_LIMIT])
        if not texts and not calls:
            raise Http404("Nothing from this number that you may see.")
        # Where each text was forwarded (a handler's number, an email address) and how far each forward got: staff only
        # (a collaborator sees neither the other side's handler nor the campaign's address).
        forwards: list[TextMessage] = []
        emails: list[TextEmailForward] = []
        if not scope.is_collaborator:
            forwards = list(TextMessage.objects.filter(contact_number=number, purpose=TextPurpose.FORWARD, direction=TextDirection.OUTBOUND)
                            .select_related("handler").order_by("-created_at", "-pk")[:CONVERSATION_LIMIT])
            emails = list(TextEmailForward.objects.filter(text__contact_number=number).order_by("-created_at", "-pk")[:CONVERSATION_LIMIT])
        can_reply = may(request.user, "text.reply", admin=True) and phone.to_e164_or_none(number) == number
        latest_inbound = next((t for t in texts if t.direction == TextDirection.INBOUND), None)
        form = ReplyForm(request.POST or None) if can_reply else None
        if request.method == "POST":
            if form is None:
                raise PermissionDenied
            if form.is_valid():
                return self._reply(request, number=number, about=latest_inbound, body=form.cleaned_data["body"])
        # The caller's contact record (a name, notes, an assigned agent), for those who may see contacts.
        contact_admin = self.admin_site._registry.get(Contact)
        record = (contact_admin.get_queryset(request).filter(phone_number=number).first()  # the account's record (account-scoped)
                  if contact_admin and contact_admin.has_view_permission(request) else None)
        context = {
            **self.admin_site.each_context(request), "opts": self.model._meta, "title": f"Conversation with {national(number)}",
            "contact_record": record,
            "contact_url": reverse("admin:tracking_contact_change", args=[record.pk]) if record is not None else "",
            "contact": number, "contact_display": national(number), "entries": conversation_entries(texts, calls, scope, forwards=forwards, emails=emails),
            "form": form, "reply_from": national(latest_inbound.to_number) if latest_inbound else "",
            "opted_out": bool(latest_inbound) and outbound.text_opted_out(contact_number=number, our_number=latest_inbound.to_number),
            "log_url": reverse("admin:tracking_textmessage_changelist"),
        }
        return TemplateResponse(request, "admin/tracking/textmessage/conversation.html", context)

    def _reply(self, request, *, number: str, about: TextMessage | None, body: str):
        here = reverse("admin:tracking_textmessage_conversation", args=[number])
        if about is None:
            messages.error(request, "This contact never texted one of our numbers: there is no number to reply from.")
            return redirect(here)
        try:
            outbound.text_send(to=number, from_number=about.to_number, body=body, purpose=TextPurpose.REPLY,
                               thread=outbound.Thread(about), sent_by=request.user)
        except (outbound.TextRefused, CarrierError) as exc:
            messages.error(request, f"Not sent: {exc}")
        else:
            messages.success(request, "Reply sent.")
        return redirect(here)


class ReplyForm(forms.Form):
    body = forms.CharField(max_length=1600, widget=forms.Textarea(attrs={"rows": 3, "class": "ct-reply"}), label="Reply",
                           help_text="Sent from the tracking number the contact last texted, through the carrier.")


def text_export_columns(scope: Scope) -> list[tuple[str, str]]:
    """The CSV's (header, lookup) pairs, without what ``scope`` may not see."""
    hidden = hidden_text_fields(scope)
    columns = [
        ("time", "created_at"), ("direction", "direction"), ("purpose", "purpose"), ("from", "from_number"), ("to", "to_number"),
        ("contact", "contact_number"), ("body", "body"), ("status", "status"), ("source", "source__name"),
        ("campaign", "campaign__name"), ("tracking_number", "tracking_number__number"), ("visitor_id", "visitor_id"),
        ("landing_page", "landing_page"), ("utm_source", "marketing_data__utm_source"), ("utm_medium", "marketing_data__utm_medium"),
        ("utm_campaign", "marketing_data__utm_campaign"), ("caller_city", "caller_city"), ("caller_state", "caller_state"),
        ("converted", "converted"), ("revenue", "revenue"), ("payout", "payout"), ("message_sid", "message_sid"),
    ]
    return [(name, lookup) for name, lookup in columns if lookup.split("__")[0] not in hidden]


def conversation_entries(texts: list[TextMessage], calls: list[Call], scope: Scope, *, forwards: Sequence[TextMessage] = (),
                         emails: Sequence[TextEmailForward] = ()) -> list[dict[str, Any]]:
    """Texts, calls and the texts' forwards (with how far each got) in one timeline, oldest first."""
    hidden = hidden_text_fields(scope)
    entries: list[dict[str, Any]] = [
        {"kind": "text", "at": t.created_at, "inbound": t.direction == TextDirection.INBOUND, "body": t.body, "media": t.media_urls,
         "status": t.get_status_display(), "purpose": t.get_purpose_display(), "campaign": "" if "campaign" in hidden else (t.campaign or ""),
         "source": "" if "source" in hidden else (t.source or ""), "by": "" if "sent_by" in hidden else (t.sent_by or "")}
        for t in texts
    ]
    entries += [
        {"kind": "call", "at": c.started_at, "inbound": True, "status": c.get_status_display(), "duration": c.duration,
         "url": reverse("admin:tracking_call_change", args=[c.pk])}
        for c in calls
    ]
    entries += [
        {"kind": "forward", "at": f.created_at, "channel": "sms", "to": f"{f.handler or 'handler'} ({national(f.to_number)})",
         "status": f.get_status_display().lower(), "detail": f"error {f.error_code}" if f.error_code else ""}
        for f in forwards
    ]
    entries += [
        {"kind": "forward", "at": e.created_at, "channel": "email", "to": e.address, "status": e.get_status_display().lower(),
         "detail": _email_forward_detail(e)}
        for e in emails
    ]
    return sorted(entries, key=lambda e: e["at"])


def _email_forward_detail(forward: TextEmailForward) -> str:
    tries = f"{forward.attempts} {'try' if forward.attempts == 1 else 'tries'}"
    if forward.status == EmailForwardStatus.SENT and forward.sent_at is not None:
        return f"{tries}, sent {date_format(timezone.localtime(forward.sent_at), 'SHORT_DATETIME_FORMAT')}"
    if forward.status == EmailForwardStatus.QUEUED and forward.attempts:
        when = date_format(timezone.localtime(forward.next_attempt_at), "SHORT_DATETIME_FORMAT")
        return f"{tries}, next at {when}: {forward.last_error}"
    return f"{tries}: {forward.last_error}" if forward.last_error else tries


class BadTextLogQuery(Exception):
    """A query parameter the texts log cannot use; ``str()`` says which and why, for the operator."""


#: The log's choice filters (``?status__exact=sent``, ``?direction=inbound``): a value that is none of the choices.
_CHOICE_FIELDS = {"direction": TextDirection, "purpose": TextPurpose, "status": TextStatus}
_ID_LOOKUPS = {"exact", "gt", "gte", "lt", "lte", "in"}
_ASCII_INTEGER = re.compile(r"^-?[0-9]+$")
MAX_PAGE = 1_000_000


#: The parameters the log reads besides field lookups: search, order, page, Django's own, its list filters' own.
_PLAIN_PARAMETERS = frozenset({"q", "o", "p", "e", "all", "_popup", "_to_field", "created_at_from", "created_at_to", "delivery",
                               *(f.key for f in call_log.MARKETING_FILTERS), *(f"{f.key}__none" for f in call_log.MARKETING_FILTERS)})
#: The fields the log filters on, and the lookups it takes on them (what its filters, the dashboard's links and an
#: operator's hand-made address use). Others are refused: Django would hand any lookup on a text's own columns to the
#: database (``body__regex=(`` a PostgreSQL error, ``tags__plan__range=a`` a crash before the query), or drop it.
_FILTER_FIELDS = frozenset({"id", "direction", "purpose", "status", "converted", "is_test", "source", "campaign", "tracking_number",
                            "handler", "source__id", "campaign__id", "tracking_number__id", "handler__id", "contact_number",
                            "message_sid", "from_number", "to_number", "created_at", "revenue", "payout"})
#: No ``range``: Django's changelist hands its value unsplit to the query (a crash on a JSON key, a refusal elsewhere).
_FILTER_LOOKUPS = frozenset({"", "exact", "in", "isnull", "gt", "gte", "lt", "lte"})
_DATE_TRANSFORMS = frozenset({"date", "year", "month", "day", "hour"})  # created_at__date=2026-03-02, created_at__year__gte=2026
_MONEY = re.compile(r"^-?[0-9]{1,8}(\.[0-9]{1,2})?$")


def text_log_query_problem(params: Any) -> str | None:
    """Why the texts log cannot use ``params`` (beyond ``call_log_query_problem``'s dates and numbers), in words for
    the operator; None when it can. A parameter or lookup the log does not filter with, a choice that is none of
    the field's choices, a ``delivery`` that is none of its three, an id or a date written in other digits than 0-9
    (Arabic-Indic, full-width: Python reads them, an operator did not mean them), an amount that is not one, a
    date range that ends before it starts, a page that is not a page number."""
    for key, values in params.lists():
        problem = _text_key_problem(key)
        if problem:
            return problem
        for value in values:
            problem = _text_param_problem(key, value)
            if problem:
                return problem
    start, end = _day(params.get("created_at_from")), _day(params.get("created_at_to"))
    if start and end and start > end:
        return f"created_at: the range ends ({end}) before it starts ({start})."
    return None


def _day(text: str | None) -> date | None:
    try:
        return parse_date(text) if text else None
    except ValueError:  # a day that does not exist: call_log_query_problem names it
        return None


def _text_key_problem(key: str) -> str | None:
    if key in _PLAIN_PARAMETERS:
        return None
    for field in sorted(_FILTER_FIELDS, key=len, reverse=True):  # source__id before source
        if key == field or key.startswith(f"{field}__"):
            lookup = key[len(field) + 2:]
            transform, _, after = lookup.partition("__")
            if lookup in _FILTER_LOOKUPS or (field == "created_at" and transform in _DATE_TRANSFORMS and after in _FILTER_LOOKUPS):
                return None
            return f"{key}: the texts log does not filter {field} with {lookup!r} (it takes {', '.join(sorted(_FILTER_LOOKUPS - {''}))})."
    return f"{key}: the texts log does not filter with this parameter."


def _text_param_problem(key: str, value: str) -> str | None:
    if key.endswith("__isnull") and value.lower() not in ("true", "false", "1", "0"):  # Django reads any other word as true
        return f"{key}: {value!r} is not true or false (1 or 0)."
    if key.split("__")[0] in ("revenue", "payout") and not key.endswith("__isnull"):
        for part in value.split(",") if key.endswith("__in") else [value]:
            if not _MONEY.match(part.strip()):
                return f"{key}: {part!r} is not an amount (like 120 or 99.50)."
        return None
    if key == "p":
        if not (_ASCII_INTEGER.match(value) and 1 <= int(value) <= MAX_PAGE):
            return f"p: {value!r} is not a page number (1 to {MAX_PAGE:,})."
        return None
    if key == DeliveryFilter.parameter_name:
        return None if value in DeliveryFilter.CHOICES else f"delivery: {value!r} is none of {', '.join(DeliveryFilter.CHOICES)}."
    name, _, lookup = key.partition("__")
    if name in _CHOICE_FIELDS and lookup in ("", "exact", "in"):
        choices = _CHOICE_FIELDS[name]
        for part in value.split(",") if lookup == "in" else [value]:
            if part not in choices.values:
                return f"{key}: {part!r} is none of the {name} values ({', '.join(choices.values)})."
        return None
    if key.startswith("created_at") and not value.isascii():
        return f"{key}: {value!r} is not a date or a moment written with the digits 0-9."
    field, rest = call_log._lookup_field(TextMessage, key)
    target = field.target_field if field is not None and field.is_relation and not field.many_to_many else field
    if isinstance(target, (models.AutoField, models.IntegerField)) and (rest[0] if rest else "exact") in _ID_LOOKUPS and len(rest) <= 1:
        for part in value.split(",") if rest[:1] == ["in"] else [value]:
            if not _ASCII_INTEGER.match(part.strip()):
                return f"{key}: {part!r} is not a whole number written with the digits 0-9."
    return None


def _lookup_problem_words(exc: IncorrectLookupParameters) -> str:
    """Django's reason for refusing a lookup, as one sentence."""
    cause = exc.args[0] if exc.args else ""
    # A value's reason only: an unknown field's would list the model's fields (a collaborator's hidden ones too).
    detail = " ".join(cause.messages) if isinstance(cause, ValidationError) else ""
    return f"The address has a filter, page or value the texts log does not know{f' ({detail})' if detail else ''}."


def _ordering_problem(changelist) -> str | None:
    """``?o=``: each part a column number of the log (``-`` for descending) whose column can be sorted; Django
    skips the others silently."""
    raw = changelist.params.get("o") or ""
    for part in raw.split(".") if raw else []:
        rest, _, index = part.rpartition("-")
        if rest or not _ASCII_INTEGER.match(index) or int(index) >= len(changelist.list_display):
            return f"o: {part!r} is not a column of the texts log (0 to {len(changelist.list_display) - 1}, '-' before it to reverse)."
        if not changelist.get_ordering_field(changelist.list_display[int(index)]):
            return f"o: the column {part!r} cannot be sorted."
    return None


def _bad_query(model_admin: ModelAdmin, request, problem: str) -> TemplateResponse:
    context = {**model_admin.admin_site.each_context(request), "opts": model_admin.model._meta, "title": "The texts log cannot use this filter",
               "problem": problem, "log_url": reverse("admin:tracking_textmessage_changelist")}
    return TemplateResponse(request, "admin/tracking/call/bad_query.html", context, status=400)


@admin.register(TextRoute)
class TextRouteAdmin(ServiceWritesAdminMixin, ModelAdmin):
    """A campaign's routing for texts: forwards, auto-replies (another one when closed), HELP, conversion."""

    write_services = (text_route_services.text_route_create, text_route_services.text_route_update, text_route_services.text_route_delete)
    service_arg = "text_route"
    list_display = ["campaign", "forward_handler", "forward_email", "has_auto_reply", "convert_on"]
    list_select_related = ["campaign", "forward_handler"]
    autocomplete_fields = ["campaign", "forward_handler"]
    search_fields = ["campaign__name"]
    fieldsets = [
        (None, {"fields": ["campaign"]}),
        ("Forward", {"fields": ["forward_handler", "forward_email"]}),
        ("Answers", {"fields": ["auto_reply", "auto_reply_closed", "timezone", "business_hours", "help_reply"]}),
        ("Conversion", {"fields": ["convert_on", "convert_keyword", "revenue", "payout"]}),
    ]

    @display(description="auto-reply", boolean=True)
    def has_auto_reply(self, obj: TextRoute) -> bool:
        return bool(obj.auto_reply.strip() or obj.auto_reply_closed.strip())
