"""OpenAPI generation: every operation documents its error responses, with their shapes."""

from __future__ import annotations

from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.utils import OpenApiResponse, inline_serializer
from rest_framework import serializers

ErrorSerializer = inline_serializer(
    name="Error",
    fields={"detail": serializers.CharField(help_text="What went wrong, in a sentence.")},
)

VALIDATION_ERROR = {
    "type": "object",
    "description": "Field name -> list of reasons (nested for lists and nested objects); errors not tied to one field "
    "are under non_field_errors, a body that cannot be read under detail.",
    "additionalProperties": {},
    "example": {"receiving_number": ["Invalid pk \"999\" - object does not exist."], "number": ["'+1555' is not a valid phone number: too short."]},
}

_ERRORS = {
    "400": ("Invalid input: the body names each field that is wrong and why.", VALIDATION_ERROR),
    "401": ("No valid credentials: send 'Authorization: Token <key>' (or log in for the browsable API).", ErrorSerializer),
    "403": ("Authenticated, but not allowed to do this (missing model permission, or a collaborator outside its scope).", ErrorSerializer),
    "404": ("No such object visible to you (also for another collaborator's objects), or no such page.", ErrorSerializer),
}


PARAMETER_HELP = {
    "id": "The object's id.",
    "enabled": "true: only enabled ones; false: only disabled ones.",
    "converted": "true: converted calls only; false: calls that did not convert (yet).",
    "key": "The pool's public key (exact).",
    "source_id": _("The source's public ID (exact)."),
    "campaign_id": "The campaign's public ID (exact).",
    "buyer_id": "The buyer ID (exact).",
    "area_code": "Numbers in this area code, e.g. 415.",
    "visitor_id": "The visitor's id (exact).",
    "is_overflow": "true: sessions that found every number in use.",
    "started_after": "Started at or after this moment (ISO 8601).",
    "started_before": "Started before this moment (ISO 8601).",
    "ordering": "Sort by this field; a leading '-' sorts descending.",
}


class AutoSchema(SpectacularAutoSchema):
    """Adds the error responses every endpoint can give (400, 401, 403, 404; 409 on DELETE) and
    describes parameters the generator leaves bare (path ids, simple filters)."""

    # The operations' and components' descriptions come from docstrings, which gettext cannot mark: they are looked
    # up in the catalog as they are (scripts/vocabulary_catalog.py adds those that name a party to the vocabulary).
    def get_description(self) -> str:  # type: ignore[override]
        description = super().get_description()
        return gettext(description) if description else description

    def _map_basic_serializer(self, serializer, direction):
        result = super()._map_basic_serializer(serializer, direction)
        if isinstance(result.get("description"), str) and result["description"]:
            result["description"] = gettext(result["description"])
        return result

    def _get_parameters(self):
        parameters = super()._get_parameters()
        for parameter in parameters:
            if parameter["in"] == "path" and parameter["name"] == "id":
                # The URL pattern takes 1-18 digits (calltrack.api.views.ID_REGEX); say so as an integer.
                parameter["schema"] = {"type": "integer", "minimum": 1, "maximum": 999_999_999_999_999_999}
            if not parameter.get("description") and parameter["name"] in PARAMETER_HELP:
                parameter["description"] = PARAMETER_HELP[parameter["name"]]
            if parameter["name"] == "ordering":
                fields = getattr(self.view, "ordering_fields", None)
                if fields and fields != "__all__":
                    parameter["description"] = f"{PARAMETER_HELP['ordering']} One of: {', '.join(fields)}."
        return parameters

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        errors = dict(_ERRORS)
        if self.method == "DELETE":
            errors["409"] = (_("Still used by other records (e.g. a receiving number a handler forwards to)."), ErrorSerializer)
        for code, (description, schema) in errors.items():
            if code in responses:
                continue
            body = self._get_response_for_code(OpenApiResponse(response=schema, description=description), code, direction=direction)
            responses[code] = body
        return responses
