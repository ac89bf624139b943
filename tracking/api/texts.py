"""The texts over the API (issue 29): read-only, newest first, scoped by the trust gate like the calls: a source
collaborator sees the texts credited to its source, a handler collaborator the texts forwarded to it
(``calltrack.scoping.visible_texts``), neither the other side's parties nor money (``HIDDEN_TEXT_FIELDS``)."""

from __future__ import annotations

from typing import Any

import django_filters
from django.db.models import QuerySet
from django.http import QueryDict
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from calltrack.api.fields import ScopedFieldsMixin
from calltrack.api.filters import IdFilter, StrictBooleanFilter, UtcDateTimeFilter
from calltrack.api.pagination import CreatedAtCursorPagination
from calltrack.api.serializers import JSONObjectField, MarketingDataField, ModelSerializer
from calltrack.api.views import ScopedReadOnlyModelViewSet
from calltrack.scoping import HIDDEN_TEXT_FIELDS, Scope, hidden_text_fields, scope_for, visible_tags, visible_texts
from tracking.models import TextDirection, TextMessage, TextPurpose, TextStatus


class TextMessageSerializer(ScopedFieldsMixin, ModelSerializer):
    """A text on one of our tracking numbers, in or out, with the credit a call to the same number at the same moment
    would get. For collaborators, the other side's fields are null (calltrack.scoping.HIDDEN_TEXT_FIELDS)."""

    media_urls = serializers.ListField(child=serializers.CharField(), read_only=True,
                                       help_text=TextMessage._meta.get_field("media_urls").help_text)
    marketing_data = MarketingDataField(read_only=True, help_text=TextMessage._meta.get_field("marketing_data").help_text)
    tags = JSONObjectField(read_only=True, help_text=TextMessage._meta.get_field("tags").help_text)
    margin = serializers.DecimalField(max_digits=11, decimal_places=2, read_only=True, help_text="Revenue minus payout.")

    hidden_values = {"marketing_data": {}}
    hidden_from = {kind: tuple(sorted(names)) for kind, names in HIDDEN_TEXT_FIELDS.items()}

    class Meta:
        model = TextMessage
        fields = [
            "id", "message_sid", "direction", "purpose", "status", "error_code", "created_at", "status_at",
            "from_number", "to_number", "contact_number", "body", "media_urls", "caller_city", "caller_state", "caller_zip",
            "caller_country", "tracking_number", "campaign", "source", "handler", "session", "visitor_id", "landing_page",
            "referrer", "marketing_data", "tags", "converted", "converted_at", "conversion_reason", "revenue", "payout",
            "margin", "is_test", "sent_by",
        ]
        read_only_fields = fields
        extra_kwargs = {
            "direction": {"help_text": "inbound: from the contact; outbound: one of ours (a reply, an auto-reply, a keyword answer, a forward)."},
            "purpose": {"help_text": _("contact (the contact's text), reply (an operator's), auto_reply, forward (to a handler), keyword (HELP's answer).")},
            "status": {"help_text": "The carrier's status: received for an inbound text; queued, sent, delivered, undelivered, failed... for ours."},
            "to_number": {"help_text": _("The number texted: our tracking number for an inbound text, the contact's (or the handler's) for ours.")},
            "body": {"help_text": "The text, at most 1600 characters."},
            "created_at": {"help_text": "When the text came in or was sent."},
            "tracking_number": {"help_text": "Our tracking number the text came to or was sent from (id)."},
            "campaign": {"help_text": "The campaign credited (id)."},
            "source": {"help_text": _("The source credited (id).")},
            "handler": {"help_text": _("The handler a text was forwarded to (id).")},
            "session": {"help_text": "The visitor's number session the text is credited to (id)."},
            "caller_city": {"help_text": "The contact's city (the carrier's FromCity)."},
            "caller_state": {"help_text": "The contact's state (FromState)."},
            "caller_zip": {"help_text": "The contact's ZIP code (FromZip)."},
            "caller_country": {"help_text": "The contact's country (FromCountry, ISO 3166)."},
            "visitor_id": {"help_text": "The website visitor the text is credited to."},
            "landing_page": {"help_text": "The visitor's landing page."},
            "referrer": {"help_text": "The visitor's referrer."},
            "converted": {"help_text": "Whether the text converted (the first text of a new contact, a keyword, a postback)."},
            "converted_at": {"help_text": "When it converted."},
            "conversion_reason": {"help_text": "Why it converted."},
            "revenue": {"help_text": "Earned for the conversion."},
            "payout": {"help_text": _("Paid to the source for the conversion.")},
            "sent_by": {"help_text": "The operator who wrote a reply (user id); null for the others."},
        }

    def to_representation(self, instance: TextMessage) -> dict:
        data = super().to_representation(instance)
        scope = self.context.get("scope")
        if scope is not None and scope.is_collaborator:  # a handler reads no tag naming the source or from the visitor's marketing
            data["tags"] = visible_tags(scope, instance.tags, instance.marketing_data)
        return data


class TextMessageFilter(django_filters.FilterSet):
    created_after = UtcDateTimeFilter(field_name="created_at", lookup_expr="gte", help_text="Texts at or after this moment (ISO 8601).")
    created_before = UtcDateTimeFilter(field_name="created_at", lookup_expr="lt", help_text="Texts before this moment (ISO 8601).")
    direction = django_filters.ChoiceFilter(choices=TextDirection.choices, help_text="inbound (from contacts) or outbound (ours).")
    purpose = django_filters.MultipleChoiceFilter(choices=TextPurpose.choices, help_text="One or more purposes (repeat the parameter).")
    status = django_filters.MultipleChoiceFilter(choices=TextStatus.choices, help_text="One or more statuses (repeat the parameter).")
    campaign = IdFilter(field_name="campaign_id", help_text="The campaign's id.")
    source = IdFilter(field_name="source_id", help_text=_("The source's id."))
    handler = IdFilter(field_name="handler_id", help_text=_("The handler's id (texts forwarded to it)."))
    tracking_number = IdFilter(field_name="tracking_number_id", help_text="The tracking number's id.")
    converted = StrictBooleanFilter(help_text="true: converted texts only; false: texts that did not convert (yet).")
    is_test = StrictBooleanFilter(help_text="true: only test texts (simulate_text --test); false: every text but them.")

    class Meta:
        model = TextMessage
        fields = ["created_after", "created_before", "direction", "purpose", "status", "campaign", "source", "handler",
                  "tracking_number", "converted", "is_test"]

    def _scope(self) -> Scope:
        return scope_for(getattr(self.request, "user", None))

    def filter_queryset(self, queryset: QuerySet) -> QuerySet:
        """A filter on what the requester may not see (``?campaign=`` for a collaborator, ``?handler=`` for a source's,
        ``?source=`` and ``?tracking_number=`` for a handler's) is ignored: it would tell which of its texts match."""
        hidden = hidden_text_fields(self._scope())
        for name, value in self.form.cleaned_data.items():
            if name not in hidden:
                queryset = self.filters[name].filter(queryset, value)
        return queryset


@extend_schema_view(
    list=extend_schema(summary="List texts (newest first, cursor-paginated)"),
    retrieve=extend_schema(summary="Get a text with its credit and marketing data"),
)
class TextMessageViewSet(ScopedReadOnlyModelViewSet):
    """Texts, read-only. Source collaborators see their source's texts; handler collaborators the texts forwarded to them."""

    serializer_class = TextMessageSerializer
    filterset_class = TextMessageFilter
    pagination_class = CreatedAtCursorPagination
    ordering_fields = ["created_at"]
    collaborator_kinds = ("source", "handler")

    def get_queryset(self) -> QuerySet:
        return visible_texts(TextMessage.objects.all(), self.scope)

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        text_list_query_check(request.query_params)
        return super().list(request, *args, **kwargs)


#: The list's parameters besides its filters: the cursor, the page size, the order, DRF's format override.
LIST_PARAMETERS = frozenset({"cursor", "page_size", "ordering", "format"})
ORDERINGS = frozenset({"created_at", "-created_at"})


def text_list_query_check(params: QueryDict) -> None:
    """What the list's filters do not see themselves, refused with a 400 naming the parameter (a ValidationError):
    a parameter the list does not know (a misspelt filter would list every text), an order other than created_at's,
    a page size that is not 1 to the maximum (the pagination would fall back to its default silently)."""
    errors: dict[str, list[str]] = {}
    for name in params:
        if name not in TextMessageFilter.base_filters and name not in LIST_PARAMETERS:
            errors[name] = [f"Not a parameter of this list (filters: {', '.join(TextMessageFilter.base_filters)}; also "
                            f"{', '.join(sorted(LIST_PARAMETERS))})."]
    for value in params.getlist("ordering"):
        if value not in ORDERINGS:
            errors["ordering"] = [f"{value!r}: the texts are ordered by created_at or -created_at."]
    pagination = CreatedAtCursorPagination
    for value in params.getlist("page_size"):
        if not (value.isascii() and value.isdigit() and 1 <= int(value) <= pagination.max_page_size):
            errors["page_size"] = [f"{value!r}: a page holds 1 to {pagination.max_page_size} texts."]
    if errors:
        raise ValidationError(errors)
