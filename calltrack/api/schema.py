"""OpenAPI generation: every operation documents its error responses, with their shapes."""

from __future__ import annotations

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


class AutoSchema(SpectacularAutoSchema):
    """Adds the error responses every endpoint can give (400, 401, 403, 404; 409 on DELETE)."""

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        errors = dict(_ERRORS)
        if self.method == "DELETE":
            errors["409"] = ("Still used by other records (e.g. a receiving number a handler forwards to).", ErrorSerializer)
        for code, (description, schema) in errors.items():
            if code in responses:
                continue
            body = self._get_response_for_code(OpenApiResponse(response=schema, description=description), code, direction=direction)
            responses[code] = body
        return responses
