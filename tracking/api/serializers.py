"""Serializers of sources, handlers, campaigns and calls (explicit field lists)."""

from __future__ import annotations

from django.urls import reverse
from rest_framework import serializers

from calltrack.api.fields import ScopedFieldsMixin
from calltrack.api.serializers import BusinessHoursField, JSONObjectField, MarketingDataField, ModelSerializer, TagCriteriaField
from calltrack.scoping import HIDDEN_CALL_FIELDS
from tracking.models import Call, CallAttempt, Campaign, CampaignHandler, Handler, RecordingStatus, Source


class SourceSerializer(ModelSerializer):
    class Meta:
        model = Source
        fields = [
            "id", "name", "source_id", "first_name", "last_name", "company", "static_number_cap", "notes",
            "created_at", "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]


class HandlerSerializer(ModelSerializer):
    business_hours = BusinessHoursField(required=False, help_text=Handler._meta.get_field("business_hours").help_text)
    tag_criteria = TagCriteriaField(required=False, help_text=Handler._meta.get_field("tag_criteria").help_text)

    class Meta:
        model = Handler
        fields = [
            "id", "name", "buyer_id", "receiving_number", "enabled", "priority", "weight", "ring_timeout",
            "concurrency_cap", "hourly_cap", "daily_cap", "monthly_cap", "total_cap", "cap_counts", "timezone",
            "always_open", "business_hours", "tag_criteria", "created_at", "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]


class CampaignHandlerSerializer(ModelSerializer):
    handler_name = serializers.CharField(source="handler.name", read_only=True)
    effective_priority = serializers.IntegerField(read_only=True, help_text="The priority routing uses here.")
    effective_weight = serializers.IntegerField(read_only=True, help_text="The weight routing uses here.")

    class Meta:
        model = CampaignHandler
        fields = ["handler", "handler_name", "priority", "weight", "enabled", "position", "effective_priority", "effective_weight"]
        extra_kwargs = {"position": {"required": False, "help_text": "Order for sequential and round-robin routing; blank: the list's order."}}


class CampaignSerializer(ModelSerializer):
    handlers = CampaignHandlerSerializer(
        many=True,
        source="campaign_handlers",
        required=False,
        help_text="The campaign's handlers with this campaign's priority and weight (blank: the handler's own). "
        "Sending the list replaces the whole list.",
    )

    class Meta:
        model = Campaign
        fields = [
            "id", "name", "campaign_id", "enabled", "routing_strategy", "sticky_routing", "handlers",
            "greeting_kind", "greeting_text", "greeting_voice", "greeting_language", "greeting_url",
            "ivr_prompt", "ivr_timeout", "ivr_repeat", "ivr_default_digit", "record_calls", "no_answer_message",
            "failsafe_number", "company_phone", "config_version", "created_at", "updated_at",
        ]
        read_only_fields = ["config_version", "created_at", "updated_at"]
        # The uniqueness of (campaign, handler) is checked by the service, entry by entry.
        validators: list = []


class CallAttemptSerializer(ModelSerializer):
    class Meta:
        model = CallAttempt
        fields = [
            "id", "sequence", "kind", "handler", "receiving_number", "number_dialed", "status", "started_at",
            "ended_at", "duration", "counted",
        ]
        read_only_fields = fields


class CallSerializer(ScopedFieldsMixin, ModelSerializer):
    """A call with its legs, attribution (source, tracking number, visitor) and marketing data.

    For collaborators, fields about the other side are null: a source collaborator does not see
    the campaign, the handler, the revenue or the routing decision (and no legs); a handler
    collaborator does not see the campaign, the source's record, the payout, the visitor session
    or the routing decision (and only its own legs).
    """

    source_public_id = serializers.CharField(
        source="source.source_id", read_only=True, allow_null=True, default=None, help_text="The source's public ID (source_id)."
    )
    attempts = CallAttemptSerializer(many=True, read_only=True, help_text="The legs dialled for this call, in order.")
    marketing_data = MarketingDataField(read_only=True, help_text=Call._meta.get_field("marketing_data").help_text)
    tags = JSONObjectField(read_only=True, help_text=Call._meta.get_field("tags").help_text)
    decision = JSONObjectField(read_only=True, help_text=Call._meta.get_field("decision").help_text)
    margin = serializers.DecimalField(max_digits=11, decimal_places=2, read_only=True, help_text="Revenue minus payout.")
    recording_status = serializers.ChoiceField(
        choices=RecordingStatus.choices, read_only=True,
        help_text="The recording's state: '' none, in-progress, completed (ready to play), absent, failed, deleted (retention).",
    )
    recording_url = serializers.SerializerMethodField(
        help_text="Where calltrack plays the call's recording (GET with this API's authentication; audio/mpeg or audio/wav); "
        "null without a playable recording. The carrier's own URL and credentials are never shown."
    )

    hidden_values = {"decision": {}}
    hidden_from = {kind: tuple(sorted(names)) for kind, names in HIDDEN_CALL_FIELDS.items()}

    class Meta:
        model = Call
        fields = [
            "id", "call_sid", "status", "started_at", "answered_at", "ended_at", "duration", "talk_time",
            "caller_number", "called_number", "caller_city", "caller_state", "caller_zip", "caller_country",
            "tracking_number", "campaign", "source", "source_public_id", "handler", "session", "visitor_id",
            "landing_page", "referrer", "marketing_data", "tags", "reject_reason", "fallback_step", "used_failsafe",
            "recording_url", "recording_sid", "recording_status", "recording_duration", "voicemail_url",
            "conversion_status", "converted", "converted_at", "conversion_reason",
            "revenue", "payout", "margin", "payout_reason", "decision", "attempts",
        ]
        read_only_fields = fields

    def get_recording_url(self, call: Call) -> str | None:
        if not call.has_recording:
            return None
        path = reverse("api:call-recording", args=[call.pk])
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request is not None else path
