"""Serializers of sources, handlers, campaigns and calls (explicit field lists)."""

from __future__ import annotations

from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from calltrack.api.fields import ScopedFieldsMixin
from calltrack.api.serializers import BusinessHoursField, JSONObjectField, MarketingDataField, ModelSerializer, TagCriteriaField
from calltrack.scoping import HIDDEN_CALL_FIELDS, STAFF_ONLY_CALL_FIELDS, can_play_recordings, side_field, visible_tags
from tracking import menu_tree
from tracking.models import (
    AuditOrigin,
    Call,
    CallAttempt,
    Campaign,
    CampaignHandler,
    ConversionDestination,
    ConversionRule,
    ConversionUpload,
    Handler,
    RecordingStatus,
    RoutingTable,
    RoutingTableRow,
    Source,
    TaggingHours,
)
from tracking.spam_rules import spam_rules_problems


class SourceSerializer(ModelSerializer):
    class Meta:
        model = Source
        fields = [
            "id", "name", "source_id", "first_name", "last_name", "company", "static_number_cap", "google_call_asset", "notes",
            "paused_at", "paused_reason", "created_at", "updated_at",
        ]
        read_only_fields = ["paused_at", "paused_reason", "created_at", "updated_at"]


class HandlerSerializer(ModelSerializer):
    business_hours = BusinessHoursField(required=False, help_text=Handler._meta.get_field("business_hours").help_text)
    tag_criteria = TagCriteriaField(required=False, help_text=Handler._meta.get_field("tag_criteria").help_text)

    class Meta:
        model = Handler
        fields = [
            "id", "name", "buyer_id", "receiving_number", "enabled", "priority", "weight", "ring_timeout",
            "concurrency_cap", "hourly_cap", "daily_cap", "monthly_cap", "total_cap", "cap_counts", "duplicate_days", "duplicate_on",
            "timezone", "always_open", "business_hours", "location_zip", "latitude", "longitude", "tag_criteria", "created_at", "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]


class CampaignHandlerSerializer(ModelSerializer):
    handler_name = serializers.CharField(source="handler.name", read_only=True)
    effective_priority = serializers.IntegerField(read_only=True, help_text="The priority routing uses here.")
    effective_weight = serializers.IntegerField(read_only=True, help_text="The weight routing uses here.")
    effective_duplicate_days = serializers.IntegerField(
        read_only=True, allow_null=True, help_text="The duplicate restriction routing uses here, in days (null: none).")

    class Meta:
        model = CampaignHandler
        fields = ["handler", "handler_name", "priority", "weight", "enabled", "position", "duplicate_days", "effective_priority",
                  "effective_weight", "effective_duplicate_days"]
        extra_kwargs = {"position": {"required": False, "help_text": "Order for sequential and round-robin routing; blank: the list's order."}}


_MENU_KEY = {
    "type": "object",
    "properties": {
        "digit": {"type": "string", "description": "The key: 0-9, * or #."},
        "label": {"type": "string", "description": "What the option is, e.g. 'Sales'."},
        "does": {"type": "string", "description": "What the key does, in words."},
        "response": {"type": "string", "description": "Said to the caller after the key press."},
        "back_to": {"type": "string", "description": "The menu above this one the key goes back to (not expanded again)."},
        "submenu": {"type": "object", "nullable": True, "description": "The sub-menu the key opens (same shape as the menu)."},
    },
}
_MENU_SCHEMA = {
    "type": "object",
    "properties": {
        "menu": {"type": "integer", "nullable": True, "description": "The sub-menu's id (null: the campaign's main menu)."},
        "name": {"type": "string", "description": "The menu's name ('Main menu' for the campaign's own)."},
        "prompt": {"type": "string", "description": "What the caller hears."},
        "keys": {"type": "array", "items": _MENU_KEY, "description": "The menu's keys, in key order."},
    },
}


class CampaignSerializer(ModelSerializer):
    handlers = CampaignHandlerSerializer(
        many=True,
        source="campaign_handlers",
        required=False,
        help_text=_("The campaign's handlers with this campaign's priority and weight (blank: the handler's own). "
        "Sending the list replaces the whole list."),
    )
    spam_rules = JSONObjectField(required=False, help_text=Campaign._meta.get_field("spam_rules").help_text)
    ivr_menu_tree = serializers.SerializerMethodField(
        help_text="The voice menus as a tree (read-only; edited in the admin): the main menu, each key with what it "
        "does and what it says, and the sub-menus keys open ('back_to' names a menu above, where a key loops back)."
    )

    class Meta:
        model = Campaign
        fields = [
            "id", "name", "campaign_id", "enabled", "routing_strategy", "nearest_fallback", "sticky_routing", "route_to_destination", "handlers",
            "greeting_kind", "greeting_text", "greeting_voice", "greeting_language", "greeting_url",
            "ivr_prompt", "ivr_timeout", "ivr_repeat", "ivr_default_digit", "ivr_menu_tree", "record_calls", "no_answer_message",
            "queue_enabled", "queue_max_wait", "queue_hold_music_url", "queue_message", "failsafe_number", "company_phone", "fallback_credit",
            "spam_action", "spam_threshold", "spam_rules", "config_version", "created_at", "updated_at",
        ]
        read_only_fields = ["config_version", "created_at", "updated_at"]
        # The uniqueness of (campaign, handler) is checked by the service, entry by entry.
        validators: list = []

    def validate_spam_rules(self, value):
        problems = spam_rules_problems(value)
        if problems:
            raise serializers.ValidationError(problems)
        return value

    @extend_schema_field(_MENU_SCHEMA)
    def get_ivr_menu_tree(self, obj: Campaign) -> dict:
        prefetched = "ivr_options" in getattr(obj, "_prefetched_objects_cache", {})
        return menu_tree.tree_json(menu_tree.campaign_menu_tree(obj, prefetched=prefetched).root)


class CallAttemptSerializer(ModelSerializer):
    class Meta:
        model = CallAttempt
        fields = [
            "id", "sequence", "kind", "handler", "receiving_number", "number_dialed", "status", "started_at",
            "ended_at", "duration", "counted",
        ]
        read_only_fields = fields


class ConversionUploadSerializer(ModelSerializer):
    destination_name = serializers.CharField(source="destination.name", read_only=True, help_text=_("The destination's name."))
    platform = serializers.CharField(source="destination.kind", read_only=True,
                                     help_text=_("The destination's platform: local, google_ads, ga4, meta or microsoft."))

    class Meta:
        model = ConversionUpload
        fields = ["destination", "destination_name", "platform", "status", "reason", "value", "currency", "adjustment", "platform_id",
                  "attempts", "next_try_at", "sent_at"]
        read_only_fields = fields
        extra_kwargs = {
            "destination": {"help_text": _("The conversion destination's id.")},
            "status": {"help_text": _("pending, sent, refused (by the platform) or not_eligible (no click id, outside the window, no consent).")},
            "value": {"help_text": _("The value sent.")},
            "currency": {"help_text": _("The value's ISO 4217 currency.")},
            "attempts": {"help_text": _("Tries made so far.")},
            "next_try_at": {"help_text": _("When it is tried next (a delay or a retry); null when none is due.")},
            "sent_at": {"help_text": _("When the platform accepted it.")},
        }


class CallSerializer(ScopedFieldsMixin, ModelSerializer):
    """A call with its legs, attribution (source, tracking number, visitor) and marketing data.

    For collaborators, fields about the other side are null: a source collaborator does not see
    the campaign, the handler, the revenue or the routing decision (and no legs); a handler
    collaborator does not see the campaign, the source's record, the payout, the visitor session
    or the routing decision (and only its own legs).
    """

    source_public_id = serializers.CharField(
        source="source.source_id", read_only=True, allow_null=True, default=None, help_text=_("The source's public ID (source_id).")
    )
    attempts = CallAttemptSerializer(many=True, read_only=True, help_text="The legs dialled for this call, in order.")
    marketing_data = MarketingDataField(read_only=True, help_text=Call._meta.get_field("marketing_data").help_text)
    tags = JSONObjectField(read_only=True, help_text=Call._meta.get_field("tags").help_text)
    decision = JSONObjectField(source="state.to_json", read_only=True, help_text=Call._meta.get_field("decision").help_text)
    margin = serializers.DecimalField(max_digits=11, decimal_places=2, read_only=True, help_text="Revenue minus payout.")
    caller_name = serializers.CharField(
        read_only=True, help_text="The caller's name from the carrier's caller name lookup (Twilio's CallerName); '' when none came.",
    )
    recording_status = serializers.ChoiceField(
        choices=RecordingStatus.choices, read_only=True,
        help_text="The recording's state: '' none, in-progress, completed (ready to play), absent, failed, deleted (retention).",
    )
    recording_url = serializers.SerializerMethodField(
        help_text="Where calltrack plays the call's recording (GET with this API's authentication; audio/mpeg or audio/wav); "
        "null without a playable recording. The carrier's own URL and credentials are never shown."
    )

    conversion_uploads = serializers.SerializerMethodField(
        help_text="What was sent to each ad platform for this call: status (pending, sent, refused, not_eligible) and why "
        "(empty for collaborators).",
    )

    hidden_values = {"decision": {}, "conversion_uploads": []}
    hidden_from = {kind: tuple(sorted(names | STAFF_ONLY_CALL_FIELDS)) for kind, names in HIDDEN_CALL_FIELDS.items()}

    class Meta:
        model = Call
        fields = [
            "id", "call_sid", "status", "started_at", "answered_at", "ended_at", "duration", "talk_time",
            "caller_number", "caller_name", "attestation", "called_number", "caller_city", "caller_state", "caller_zip",
            "caller_country", "tracking_number", "campaign", "source", "source_public_id", "handler", "session", "visitor_id",
            "landing_page", "referrer", "marketing_data", "tags", "reject_reason", "fallback_step", "used_failsafe",
            "recording_url", "recording_sid", "recording_status", "recording_duration", "voicemail_url",
            "conversion_status", "converted", "converted_at", "conversion_reason",
            "revenue", "payout", "margin", "payout_reason", "decision", "attempts", "is_test", "conversion_uploads",
        ]
        read_only_fields = fields

    def to_representation(self, instance: Call) -> dict:
        data = super().to_representation(instance)
        scope = self.context.get("scope")
        if scope is not None and scope.is_collaborator:
            # "converted" is the collaborator's own side; a handler reads no tag that names the source or came from
            # the visitor's marketing data (calltrack.scoping, the one list).
            data["converted"] = bool(getattr(instance, side_field(scope, "converted")))
            data["tags"] = visible_tags(scope, instance.tags, instance.marketing_data)
        request = self.context.get("request")
        if "voicemail_url" in data and not can_play_recordings(getattr(request, "user", None)):
            data["voicemail_url"] = ""  # the carrier's media URL: only for who may listen
        return data

    @extend_schema_field(ConversionUploadSerializer(many=True))
    def get_conversion_uploads(self, call: Call) -> list[dict]:
        scope = self.context.get("scope")
        if scope is not None and scope.is_collaborator:  # not even read (the view prefetches them for staff only)
            return []
        return ConversionUploadSerializer(call.conversion_uploads.all(), many=True, context=self.context).data

    def get_recording_url(self, call: Call) -> str | None:
        if not call.has_recording:
            return None
        path = reverse("api:call-recording", args=[call.pk])
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request is not None else path

class TaggingHoursSerializer(ModelSerializer):
    hours = BusinessHoursField(required=False, help_text=TaggingHours._meta.get_field("hours").help_text)

    class Meta:
        model = TaggingHours
        fields = ["id", "name", "campaign", "enabled", "timezone", "hours", "match", "tag_key", "tag_value", "created_at"]
        read_only_fields = ["created_at"]


class ConversionRuleSerializer(ModelSerializer):
    class Meta:
        model = ConversionRule
        fields = ["id", "campaign", "handler", "side", "kind", "min_duration", "revenue", "payout", "postback_window",
                  "dedupe_window", "dedupe_scope", "dedupe_max_payable"]


class ConversionDestinationSerializer(ModelSerializer):
    credentials = serializers.DictField(
        child=serializers.CharField(allow_blank=True, max_length=4000), write_only=True, required=False,
        help_text=_("The platform's credentials, write-only: never returned. Names given replace those names; a name set to "
                    "\"\" removes it; names not given are kept."),
    )
    credential_names = serializers.ListField(child=serializers.CharField(), read_only=True,
                                             help_text=_("The names of the stored credentials (their values are never shown)."))

    class Meta:
        model = ConversionDestination
        fields = ["id", "campaign", "source", "name", "kind", "enabled", "trigger", "min_talk_time", "value_from", "fixed_value",
                  "currency", "delay_minutes", "consent_required", "hashed_phone_allowed", "account_id", "conversion_action",
                  "account_timezone", "credentials", "credential_names", "created_at", "updated_at"]
        read_only_fields = ["created_at", "updated_at"]
        extra_kwargs = {
            "name": {"help_text": _("The destination's name, as the call page and the dashboard show it.")},
            "enabled": {"help_text": _("Whether calls are sent to it.")},
            "fixed_value": {"help_text": _("The value sent when the value is fixed.")},
        }


class RoutingTableSerializer(ModelSerializer):
    row_count = serializers.IntegerField(read_only=True, help_text="How many rows the table holds.")

    class Meta:
        model = RoutingTable
        fields = ["id", "campaign", "name", "tag_key", "when_unavailable", "enabled", "position", "row_count"]


class RoutingTableRowSerializer(ModelSerializer):
    class Meta:
        model = RoutingTableRow
        fields = ["id", "value", "handler", "number"]
        read_only_fields = fields


class RoutingTableRowsWriteSerializer(serializers.Serializer):
    rows = serializers.ListField(
        child=serializers.DictField(child=serializers.CharField(allow_blank=True, max_length=200)), max_length=10000,
        help_text=_("Rows {value, handler (id, buyer id or name), number}: a value already in the table is updated."),
    )
    replace = serializers.BooleanField(default=False, help_text="Delete the table's rows first (same transaction).")


@extend_schema_field({"oneOf": [{"type": "string"}, {"type": "number"}, {"type": "boolean"}], "nullable": True})  # an integer is a number: one branch each
class HistoryValueField(serializers.JSONField):
    """A recorded value: a string, a number, a boolean or null."""


class MoneyChangeValueSerializer(serializers.Serializer):
    field = serializers.CharField(read_only=True, help_text="The column that changed, e.g. revenue, payout, priority, daily_cap.")
    label = serializers.CharField(read_only=True, help_text="The column's name in words.")
    before = HistoryValueField(
        read_only=True, allow_null=True,
        help_text="The value before (null for a new row). Amounts are strings with two decimals; a webhook's secret "
        "is only its fingerprint.",
    )
    after = HistoryValueField(read_only=True, allow_null=True, help_text="The value after (null for a deleted row).")


class MoneyChangeSerializer(serializers.Serializer):
    """One recorded change of a call's value or of a party's terms (tracking.MoneyChange), newest first."""

    id = serializers.IntegerField(read_only=True, help_text="The change's id (increasing in the order changes were written).")
    at = serializers.DateTimeField(read_only=True, help_text="When the writing transaction started.")
    table = serializers.CharField(
        read_only=True, help_text=_("What changed: call, handler, source, campaignhandler, conversionrule or webhook."),
    )
    object_id = serializers.IntegerField(read_only=True, help_text="The id of the row that changed.")
    op = serializers.ChoiceField(
        choices=["insert", "update", "delete"], read_only=True, help_text="insert: the row was created; delete: removed.",
    )
    origin = serializers.ChoiceField(
        choices=AuditOrigin.choices, read_only=True,
        help_text="From where: admin, api, postback, rule (the conversion rules at the call's end), task, command; "
        "'' for a write outside the application (a shell, a SQL console).",
    )
    user = serializers.IntegerField(source="user_id", read_only=True, allow_null=True, help_text="The user's id, if a user did it.")
    actor = serializers.CharField(read_only=True, help_text=_("Who, in words: a username, a handler's postback."))
    changes = MoneyChangeValueSerializer(
        source="values", many=True, read_only=True,
        help_text="The values that changed (for a collaborator, not the other side's money).",
    )
