"""Query filters of the numbers API (django-filter)."""

from __future__ import annotations

import django_filters
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from calltrack import phone
from calltrack.api.filters import IdFilter, UtcDateTimeFilter
from calltrack.numbers.models import NumberPool, NumberSession, ReceivingNumber, TrackingNumber


class _PhoneNumberFilterSet(django_filters.FilterSet):
    label = django_filters.CharFilter(lookup_expr="icontains", help_text="Part of the label (case-insensitive).")
    number = django_filters.CharFilter(method="filter_number", help_text="The number, in any format.")

    def filter_number(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(number=phone.to_e164_or_none(value) or value.strip())


class ReceivingNumberFilter(_PhoneNumberFilterSet):
    no_answer_forward_to = IdFilter(field_name="no_answer_forward_to_id", help_text="Numbers forwarding to this one (id).")

    class Meta:
        model = ReceivingNumber
        fields = ["label", "number", "no_answer_action", "no_answer_forward_to"]


class TrackingNumberFilter(_PhoneNumberFilterSet):
    campaign = IdFilter(field_name="campaign_id", help_text="The campaign's id.")
    source = IdFilter(field_name="source_id", help_text=_("The source's id."))
    pool = IdFilter(field_name="pool_id", help_text="The pool's id.")

    class Meta:
        model = TrackingNumber
        fields = ["label", "number", "kind", "status", "number_type", "area_code", "campaign", "source", "pool"]


class NumberPoolFilter(django_filters.FilterSet):
    name = django_filters.CharFilter(lookup_expr="icontains", help_text="Part of the name (case-insensitive).")
    campaign = IdFilter(field_name="campaign_id", help_text="The campaign's id.")
    source = IdFilter(field_name="source_id", help_text=_("The source's id."))

    class Meta:
        model = NumberPool
        fields = ["name", "key", "enabled", "campaign", "source"]


class NumberSessionFilter(django_filters.FilterSet):
    pool = IdFilter(field_name="pool_id", help_text="The pool's id.")
    tracking_number = IdFilter(field_name="tracking_number_id", help_text="The tracking number's id.")
    live = django_filters.BooleanFilter(method="filter_live", help_text="true: sessions not yet expired; false: expired ones.")
    started_after = UtcDateTimeFilter(field_name="started_at", lookup_expr="gte")
    started_before = UtcDateTimeFilter(field_name="started_at", lookup_expr="lt")

    class Meta:
        model = NumberSession
        fields = ["pool", "tracking_number", "visitor_id", "is_overflow", "live", "started_after", "started_before"]

    def filter_live(self, queryset: QuerySet, name: str, value: bool | None) -> QuerySet:
        if value is None:
            return queryset
        now = timezone.now()
        return queryset.filter(expires_at__gt=now) if value else queryset.filter(expires_at__lte=now)
