"""Query filters of the tracking API (django-filter)."""

from __future__ import annotations

import django_filters
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _
from rest_framework.exceptions import ValidationError

from calltrack import phone
from calltrack.api.filters import IdFilter, UtcDateTimeFilter
from calltrack.scoping import Scope, calls_with_visible_tag, hidden_call_fields, scope_for, side_field
from tracking import call_tags
from tracking.models import (
    Attestation,
    Call,
    CallStatus,
    Campaign,
    ConversionDestination,
    ConversionKind,
    ConversionRule,
    DestinationKind,
    Handler,
    RoutingTable,
    Source,
    TaggingHours,
)


class SourceFilter(django_filters.FilterSet):
    name = django_filters.CharFilter(lookup_expr="icontains", help_text="Part of the name (case-insensitive).")

    class Meta:
        model = Source
        fields = ["name", "source_id"]


class HandlerFilter(django_filters.FilterSet):
    name = django_filters.CharFilter(lookup_expr="icontains", help_text="Part of the name (case-insensitive).")
    campaign = IdFilter(field_name="campaign_handlers__campaign_id", distinct=True, help_text=_("Handlers of this campaign (id)."))
    receiving_number = IdFilter(field_name="receiving_number_id", help_text=_("Handlers forwarding to this receiving number (id)."))

    class Meta:
        model = Handler
        fields = ["name", "enabled", "buyer_id", "receiving_number", "campaign"]


class CampaignFilter(django_filters.FilterSet):
    name = django_filters.CharFilter(lookup_expr="icontains", help_text="Part of the name (case-insensitive).")

    class Meta:
        model = Campaign
        fields = ["name", "enabled", "campaign_id", "routing_strategy"]


class CallFilter(django_filters.FilterSet):
    started_after = UtcDateTimeFilter(
        field_name="started_at", lookup_expr="gte", help_text="Calls started at or after this moment (ISO 8601)."
    )
    started_before = UtcDateTimeFilter(
        field_name="started_at", lookup_expr="lt", help_text="Calls started before this moment (ISO 8601)."
    )
    status = django_filters.MultipleChoiceFilter(choices=CallStatus.choices, help_text="One or more statuses (repeat the parameter).")
    campaign = IdFilter(field_name="campaign_id", help_text="The campaign's id.")
    source = IdFilter(field_name="source_id", help_text=_("The source's id."))
    handler = IdFilter(field_name="handler_id", help_text=_("The handler's id (who answered or was last dialled)."))
    caller = django_filters.CharFilter(
        method="filter_caller", help_text="The caller's number, in any format (read as E.164 when it is a valid number)."
    )
    tracking_number = IdFilter(field_name="tracking_number_id", help_text="The tracking number's id.")
    called_number = django_filters.CharFilter(method="filter_called", help_text="The number dialled (the tracking number), in any format.")
    converted = django_filters.BooleanFilter()
    is_test = django_filters.BooleanFilter(help_text="true: only test calls (the admin's Test call); false: every call but them.")
    attestation = django_filters.MultipleChoiceFilter(
        choices=Attestation.choices,
        help_text="The caller ID's STIR/SHAKEN verification: passed_a, passed_b, passed_c, failed, none, or '' (not reported); repeat the parameter for several.",
    )
    tag = django_filters.CharFilter(
        method="filter_tag",
        help_text="A tag: 'name' for calls that have it, 'name:value' for that value (custom parameters from landing pages, "
        "IVR keys and marketing data arrive as tags).",
    )

    class Meta:
        model = Call
        fields = [
            "started_after", "started_before", "status", "campaign", "source", "handler", "caller", "tracking_number", "called_number",
            "converted", "is_test", "attestation", "tag",
        ]

    @staticmethod
    def _number(value: str) -> str:
        return phone.to_e164_or_none(value) or value.strip()

    def filter_tag(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        try:
            tag, wanted = call_tags.tag_filter_parse(value)
        except call_tags.BadTagFilter as exc:
            raise ValidationError({"tag": [str(exc)]})
        visible = calls_with_visible_tag(queryset, self._scope(), tag)
        if visible is None:  # a tag the requester may not see: ignored, as a filter on a hidden party is
            return queryset
        return call_tags.calls_with_tag(visible, name=tag, value=wanted)

    def _scope(self) -> Scope:
        return scope_for(getattr(self.request, "user", None))

    def filter_queryset(self, queryset: QuerySet) -> QuerySet:
        """Filters on what the requester may not see (``?handler=`` for a source collaborator, ``?source=`` and
        ``?campaign=`` for a handler collaborator) are ignored: they would tell which of its calls match."""
        scope = self._scope()
        hidden = hidden_call_fields(scope)
        for name, value in self.form.cleaned_data.items():
            side = side_field(scope, name)
            if side != name:  # "converted": a collaborator's own side
                queryset = queryset.filter(**{side: value}) if value is not None else queryset
            elif name not in hidden:
                queryset = self.filters[name].filter(queryset, value)
        return queryset

    def filter_caller(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(caller_number=self._number(value))

    def filter_called(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(called_number=self._number(value))



class ConversionDestinationFilter(django_filters.FilterSet):
    campaign = IdFilter(field_name="campaign_id", help_text="Destinations of this campaign (id).")
    kind = django_filters.ChoiceFilter(choices=DestinationKind.choices, help_text="Destinations of this platform.")
    enabled = django_filters.BooleanFilter(help_text="true: only enabled destinations.")

    class Meta:
        model = ConversionDestination
        fields = ["campaign", "kind", "enabled"]


class TaggingHoursFilter(django_filters.FilterSet):
    campaign = IdFilter(field_name="campaign_id", help_text="Schedules of this campaign (id).")
    account_wide = django_filters.BooleanFilter(
        field_name="campaign", lookup_expr="isnull", help_text="true: only the account-wide schedules; false: only campaigns'."
    )
    enabled = django_filters.BooleanFilter(help_text="true: only enabled schedules.")
    tag_key = django_filters.CharFilter(help_text="Schedules setting this tag.")

    class Meta:
        model = TaggingHours
        fields = ["campaign", "account_wide", "enabled", "tag_key"]


class ConversionRuleFilter(django_filters.FilterSet):
    campaign = IdFilter(field_name="campaign_id", help_text="Rules of this campaign (id).")
    kind = django_filters.ChoiceFilter(choices=ConversionKind.choices, help_text="Rules of this kind.")

    class Meta:
        model = ConversionRule
        fields = ["campaign", "kind"]


class RoutingTableFilter(django_filters.FilterSet):
    campaign = IdFilter(field_name="campaign_id", help_text="Tables of this campaign (id).")
    enabled = django_filters.BooleanFilter(help_text="true: only enabled tables.")
    tag_key = django_filters.CharFilter(help_text="Tables looking up this tag.")

    class Meta:
        model = RoutingTable
        fields = ["campaign", "enabled", "tag_key"]
