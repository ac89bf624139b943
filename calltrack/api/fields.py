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
    """Blank out fields a collaborator may not see.

    Set ``hidden_from = {"source": (...field names...), "handler": (...)}`` on the serializer class;
    the view puts the requester's scope in the serializer context as ``scope``. A hidden text field
    reads "", a field listed in ``hidden_values`` reads that value (e.g. ``[]``), any other reads
    null and is documented as nullable (input still may not be null where the model forbids it).
    """

    hidden_from: dict[str, tuple[str, ...]] = {}
    hidden_values: dict[str, Any] = {}

    def _hidden_value(self, field: serializers.Field, name: str) -> Any:
        if name in self.hidden_values:
            return self.hidden_values[name]
        if isinstance(field, serializers.CharField) and not field.allow_null:
            return ""
        return None

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()  # type: ignore[misc]
        self._forced_null: set[str] = set()
        hidden = {name for names in self.hidden_from.values() for name in names}
        for name in hidden:
            field = fields.get(name)
            if field is not None and not field.allow_null and self._hidden_value(field, name) is None:
                field.allow_null = True
                if not field.read_only:
                    self._forced_null.add(name)
        return fields

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs = super().validate(attrs)  # type: ignore[misc]
        errors = {name: ["This field may not be null."] for name in self._forced_null if name in attrs and attrs[name] is None}
        if errors:
            raise serializers.ValidationError(errors)
        return attrs

    def to_representation(self, instance: Any) -> dict[str, Any]:
        data = super().to_representation(instance)  # type: ignore[misc]
        scope = self.context.get("scope")  # type: ignore[attr-defined]
        if scope is not None and scope.kind:
            fields = self.fields  # type: ignore[attr-defined]
            for name in self.hidden_from.get(scope.kind, ()):
                if name in data:
                    data[name] = self._hidden_value(fields[name], name)
        return data
