"""Base serializer and documented JSON shapes shared by the apps' APIs."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from calltrack import hours as hours_rules
from calltrack import tags as tag_rules
from calltrack.api.fields import PhoneNumberSerializerField
from calltrack.fields import PhoneNumberField
from calltrack.scoping import account_choices_limited


@extend_schema_field(
    {"oneOf": [{"type": "string", "format": "uri"}, {"type": "string", "maxLength": 0}], "description": "A URL, or empty when none."}
)
class BlankableURLField(serializers.URLField):
    """A URL that may be empty: documented as "a URI or the empty string" so responses match the schema."""


# Descriptions of fields whose model field has no help text (the model's help text wins when there is one).
FIELD_HELP = {
    "id": "The object's id.",
    "created_at": "When this was created.",
    "updated_at": "When this was last changed.",
    "config_version": "Grows on every change of the campaign's routing configuration (its own settings, who takes its calls and on which lines, IVR, conversion rules, webhooks, lookup tables, tagging hours); caches compare it.",
    "country": "ISO country code, derived from the number.",
    "quarantined_until": "While quarantined: when the number may serve again.",
    "call_sid": "Twilio's CallSid of the inbound call.",
    "status": "Where the call or leg stands.",
    "started_at": "When it started.",
    "answered_at": _("When a handler answered; null if nobody did."),
    "ended_at": "When it ended; null while in progress.",
    "caller_number": "Who called: E.164 when it could be read.",
    "called_number": "The number dialled (the tracking number, E.164).",
    "caller_city": "The caller's city, as the carrier reports it.",
    "caller_state": "The caller's state or region, as the carrier reports it.",
    "caller_zip": "The caller's postal code, as the carrier reports it.",
    "caller_country": "The caller's country code, as the carrier reports it.",
    "campaign": "The campaign's id.",
    "source": _("The source's id (who gets credit)."),
    "tracking_number": "The tracking number's id.",
    "visitor_id": "The web visitor's id (pool numbers).",
    "reject_reason": "Why the call was rejected (blocked caller, filter), if it was.",
    "used_failsafe": "Whether the fail-safe number took the call.",
    "conversion_status": "Whether the call converted, did not, or is still pending.",
    "converted": "Whether the call converted.",
    "converted_at": "When the call converted.",
    "revenue": _("What the handler pays for this call."),
    "payout": _("What the source is paid for this call."),
    "payout_reason": "Why the payout is what it is.",
    "sequence": "The leg's place in the call (0 first).",
    "kind": _("What this leg was for: a handler, a no-answer forward, voicemail, the fallback chain, the fail-safe."),
    "handler": _("The handler's id."),
    "receiving_number": "The receiving number's id.",
    "number_dialed": "The number dialled for this leg (E.164).",
    "pool": "The pool's id.",
    "expires_at": "When the visitor's number goes back to the pool (heartbeats extend it).",
    "last_seen_at": "The visitor's last page activity.",
    "ip_address": "The visitor's IP address.",
    "is_overflow": "Whether the visitor found every number in use.",
    "page_url": "The page that asked for a number.",
    "landing_page": "The visitor's landing page.",
    "referrer": "The page that sent the visitor.",
    "destination_number": "The page's own number that the pool number replaced.",
    "handler_name": _("The handler's name."),
}


class ModelSerializer(serializers.ModelSerializer):
    """ModelSerializer whose phone number fields go through ``calltrack.phone.to_e164``.

    Serializers here only shape and type-check input: writes are done by the
    views through the apps' services (full_clean + save), so the API, the admin
    and the commands share one set of rules.
    """

    serializer_field_mapping = {**serializers.ModelSerializer.serializer_field_mapping, PhoneNumberField: PhoneNumberSerializerField}

    def get_fields(self):
        fields = super().get_fields()
        for name, field in fields.items():
            if not getattr(field, "help_text", None) and name in FIELD_HELP:
                field.help_text = FIELD_HELP[name]
        scope = self.context.get("scope")
        if scope is not None:
            # A related row is chosen by id among the account's own: another account's id is "does not exist".
            for field in fields.values():
                relation = field.child_relation if isinstance(field, serializers.ManyRelatedField) else field
                queryset = getattr(relation, "queryset", None)
                if queryset is not None:
                    relation.queryset = account_choices_limited(queryset, scope)
        return fields

    def build_standard_field(self, field_name, model_field):
        field_class, kwargs = super().build_standard_field(field_name, model_field)
        if field_class is serializers.URLField and model_field.blank:
            field_class = BlankableURLField
        return field_class, kwargs

    def create(self, validated_data):  # pragma: no cover - views call the services
        raise NotImplementedError("Writes go through the app's services; see the view's perform_create().")

    def update(self, instance, validated_data):  # pragma: no cover
        raise NotImplementedError("Writes go through the app's services; see the view's perform_update().")


def _contains_nul(value: object) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_contains_nul(k) or _contains_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_contains_nul(v) for v in value)
    return False


class SafeJSONField(serializers.JSONField):
    """JSON input without NUL characters (PostgreSQL's jsonb cannot store them), and of the declared kind."""

    expected_type: type | None = None

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if _contains_nul(value):
            raise serializers.ValidationError("Text may not contain NUL characters.", code="null_characters")
        if self.expected_type is not None and not isinstance(value, self.expected_type):
            kind = "an object" if self.expected_type is dict else "a list"
            raise serializers.ValidationError(f"Must be {kind}.", code="invalid_type")
        return value


_RANGE = {
    "type": "string",
    "description": _("An open range in the handler's time zone: HH:MM-HH:MM, with +1 when it closes after midnight."),
    "example": "09:00-17:00",
}


@extend_schema_field(
    {
        "type": "object",
        "description": _("Open ranges per day (mon..sun) in the handler's time zone; a day left out is closed. "
        "Ranges may not overlap; one past midnight ends with +1 (22:00-02:00+1)."),
        "properties": {
            day: {"type": "array", "items": _RANGE, "description": f"{hours_rules.DAY_NAMES[day]}'s open ranges."}
            for day in hours_rules.DAYS
        },
        "additionalProperties": False,
        "example": {"mon": ["09:00-12:00", "13:00-17:00"], "fri": ["22:00-02:00+1"]},
    }
)
class BusinessHoursField(SafeJSONField):
    """Business hours as readable JSON; validated by ``calltrack.hours`` in ``Handler.clean()``."""


_RULE_PROPERTIES = {
    "key": {"type": "string", "description": "A tag: " + ", ".join(tag_rules.WELL_KNOWN_KEYS) + ", an IVR tag or a marketing data key."},
    "op": {"type": "string", "enum": list(tag_rules.OPS), "description": "How the tag is compared."},
    "value": {
        "oneOf": [{"type": "string"}, {"type": "number"}, {"type": "array", "items": {"oneOf": [{"type": "string"}, {"type": "number"}]}}],
        "description": "equals, contains, starts_with: one text; less_than / greater_than: a number; between: [low, high] "
        "(inclusive); one_of / not_one_of: a list (or comma-separated text); present: none.",
    },
}


@extend_schema_field(
    {
        "type": "array",
        "description": tag_rules.HELP_TEXT,
        "items": {"type": "object", "properties": _RULE_PROPERTIES, "required": ["key", "op"], "additionalProperties": False},
        "example": [{"key": "caller_state", "op": "one_of", "value": ["CA", "NV"]}],
    }
)
class TagCriteriaField(SafeJSONField):
    """Tag criteria as readable JSON; validated by ``calltrack.tags`` in ``Handler.clean()``."""


@extend_schema_field(
    {
        "type": "array",
        "description": tag_rules.FILTERS_HELP_TEXT,
        "items": {
            "type": "object",
            "properties": {
                "action": {"type": "string", "enum": list(tag_rules.FILTER_ACTIONS), "description": "accept: calls must match one accept rule; reject: matching calls are rejected."},
                **_RULE_PROPERTIES,
            },
            "required": ["action", "key", "op"],
            "additionalProperties": False,
        },
        "example": [{"action": "reject", "key": "caller_state", "op": "one_of", "value": ["AK", "HI"]}],
    }
)
class NumberFiltersField(SafeJSONField):
    """A tracking number's accept/reject filters; validated by ``calltrack.tags`` in ``TrackingNumber.clean()``."""


@extend_schema_field(
    {
        "type": "object",
        "additionalProperties": True,
        "description": "Marketing data: UTM parameters, click ids and custom keys.",
        "example": {"utm_source": "billboard", "utm_campaign": "spring"},
    }
)
class MarketingDataField(SafeJSONField):
    expected_type = dict


@extend_schema_field({"type": "object", "additionalProperties": True})
class JSONObjectField(SafeJSONField):
    """A free-form JSON object (documented as such rather than as "any value")."""

    expected_type = dict


class BulkNumbersSerializer(serializers.Serializer):
    numbers = serializers.ListField(
        child=serializers.CharField(max_length=32),
        min_length=1,
        max_length=500,
        help_text="Tracking numbers, E.164 (+14155550123) or the default region's national format; at most 500.",
    )
