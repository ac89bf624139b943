"""Serializer fields shared by the apps' APIs."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from calltrack import phone


@extend_schema_field({"type": "string", "example": "+14155550123", "description": "A phone number; stored in E.164."})
class PhoneNumberSerializerField(serializers.CharField):
    """A phone number read through ``calltrack.phone.to_e164``: the error names the field and says why."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", 32)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        value = super().to_internal_value(data)
        if value == "":
            return value
        try:
            return phone.to_e164(value)
        except phone.InvalidPhoneNumber as exc:
            raise serializers.ValidationError(str(exc), code="invalid_phone") from None


class ScopedFieldsMixin:
    """Blank out fields a collaborator may not see (``null`` in their responses, documented as nullable).

    Set ``hidden_from = {"source": (...field names...), "handler": (...)}`` on the serializer class;
    the view puts the requester's scope in the serializer context as ``scope``.
    """

    hidden_from: dict[str, tuple[str, ...]] = {}

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()  # type: ignore[misc]
        hidden = {name for names in self.hidden_from.values() for name in names}
        for name in hidden:
            if name in fields:
                fields[name].allow_null = True
        return fields

    def to_representation(self, instance: Any) -> dict[str, Any]:
        data = super().to_representation(instance)  # type: ignore[misc]
        scope = self.context.get("scope")  # type: ignore[attr-defined]
        if scope is not None and scope.kind:
            for name in self.hidden_from.get(scope.kind, ()):
                if name in data:
                    data[name] = None
        return data
