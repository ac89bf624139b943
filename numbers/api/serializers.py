"""Serializers of receiving numbers, tracking numbers, pools and number sessions."""

from __future__ import annotations

from rest_framework import serializers

from calltrack.account_fields import first_account_id
from calltrack.api.fields import ScopedFieldsMixin
from calltrack.api.serializers import MarketingDataField, ModelSerializer, NumberFiltersField
from calltrack.numbers.dni.pools import pool_tag_name
from calltrack.numbers.models import NumberPool, NumberSession, PoolParameter, ReceivingNumber, TrackingNumber
from calltrack.numbers.services.records import Provisioning


class ReceivingNumberSerializer(ModelSerializer):
    class Meta:
        model = ReceivingNumber
        fields = [
            "id", "number", "country", "label", "extension_digits", "digits_delay", "whisper_message", "skip_whisper",
            "ring_timeout", "no_answer_action", "no_answer_forward_to", "no_answer_menu", "no_answer_message", "created_at",
        ]
        read_only_fields = ["country", "created_at"]


class TrackingNumberSerializer(ScopedFieldsMixin, ModelSerializer):
    """A tracking number. Pool membership changes through the pool's add/remove endpoints and status
    through the number lifecycle (buy, release, quarantine), so both are read-only here."""

    marketing_data = MarketingDataField(required=False, help_text=TrackingNumber._meta.get_field("marketing_data").help_text)
    filters = NumberFiltersField(required=False, help_text=TrackingNumber._meta.get_field("filters").help_text)
    formatted = serializers.CharField(read_only=True, help_text="The number in national format.")
    provisioning = serializers.ChoiceField(
        choices=Provisioning.CHOICES, default=Provisioning.CONNECT, write_only=True,
        help_text="On create, how the number reaches calltrack through the configured carrier (CALLTRACK_CARRIER), which "
        "then holds it: 'connect' (default: already on the carrier account; its webhooks are pointed here), 'buy' (bought "
        "at the carrier and pointed here) or 'record' (only recorded; point it here yourself). Ignored on updates.",
    )

    hidden_values = {"filters": [], "filters_after_ivr": False}
    hidden_from = {"source": ("campaign", "assigned_agent", "forwarding_number", "failsafe_number", "whisper_message", "filters", "filters_after_ivr")}

    class Meta:
        model = TrackingNumber
        fields = [
            "id", "number", "formatted", "label", "kind", "status", "number_type", "area_code", "country", "campaign",
            "source", "pool", "marketing_data", "failsafe_number", "assigned_agent", "forwarding_number",
            "whisper_message", "filters", "filters_after_ivr", "carrier", "carrier_id", "last_assigned_at", "quarantined_until",
            "created_at", "updated_at", "provisioning",
        ]
        # The carrier is the one that holds the number (set when it is provisioned), not a label to type.
        read_only_fields = [
            "status", "number_type", "area_code", "country", "pool", "carrier", "last_assigned_at", "quarantined_until",
            "created_at", "updated_at",
        ]


class PoolParameterSerializer(serializers.ModelSerializer):
    class Meta:
        model = PoolParameter
        fields = ["name", "kind", "max_length"]
        extra_kwargs = {"name": {"validators": []}}  # one name per pool: checked by the pool service


class NumberPoolSerializer(ScopedFieldsMixin, ModelSerializer):
    size = serializers.IntegerField(read_only=True, help_text="Active numbers this pool hands out.")
    parameters = PoolParameterSerializer(
        many=True, required=False,
        help_text="Custom parameters the pool accepts from landing pages (through the tag); they arrive on calls as tags. "
        "Sending the list replaces it.",
    )

    tag_name = serializers.SerializerMethodField(
        help_text="What a page tag calls this pool (data-pool, data-swap): its key for a pool of the install's first account, "
        "else the account's slug, a slash and its key (bravo/spring).")

    hidden_from = {"source": ("campaign",)}

    def get_tag_name(self, pool: NumberPool) -> str:
        # The install's first account and the pool's account slug come annotated on the view's queryset (no statement
        # per pool); a pool from elsewhere reads them.
        first = getattr(pool, "install_first_account_id", None)
        return pool_tag_name(pool, first_id=first if first is not None else first_account_id(), account_slug=getattr(pool, "account_slug", None))

    class Meta:
        model = NumberPool
        fields = [
            "id", "name", "key", "tag_name", "enabled", "campaign", "source", "number_type", "match_area_code", "session_lifetime",
            "attribution_window", "overflow_policy", "fallback_number", "allowed_origins", "overflow_count", "size",
            "autoscale", "autoscale_min", "autoscale_max", "autoscale_headroom", "buy_area_code", "parameters",
            "dropped_parameter_count", "created_at",
        ]
        read_only_fields = ["overflow_count", "dropped_parameter_count", "created_at", "tag_name"]


class PoolStatsSerializer(serializers.Serializer):
    size = serializers.IntegerField(help_text="Active numbers the pool hands out.")
    in_use = serializers.IntegerField(help_text="Numbers shown to a visitor whose session is still live.")
    available = serializers.IntegerField(help_text="Numbers no live visitor holds.")
    live_sessions = serializers.IntegerField(help_text="Visitor sessions not yet expired (including overflow ones).")
    overflows = serializers.IntegerField(help_text="Visitors who found every number in use, since the pool was created.")


class PoolNumbersChangeSerializer(serializers.Serializer):
    pool = serializers.IntegerField(help_text="The pool's id.")
    changed = serializers.IntegerField(help_text="How many numbers were added or removed by this request.")
    numbers = TrackingNumberSerializer(many=True, help_text="The numbers of the request, as they are now.")


class NumberSessionSerializer(ModelSerializer):
    marketing_data = MarketingDataField(read_only=True)
    tracking_number_value = serializers.CharField(
        source="tracking_number.number", read_only=True, allow_null=True, default=None, help_text="The number shown (E.164)."
    )

    class Meta:
        model = NumberSession
        fields = [
            "id", "pool", "tracking_number", "tracking_number_value", "visitor_id", "started_at", "last_seen_at",
            "expires_at", "page_url", "landing_page", "referrer", "destination_number", "marketing_data", "ip_address",
            "is_overflow",
        ]
        read_only_fields = fields
