"""Model and form fields shared by the apps."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.db import models

from calltrack import phone


class PhoneNumberFormField(forms.CharField):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("widget", forms.TextInput(attrs={"placeholder": "+14155550123", "size": 18}))
        super().__init__(*args, **kwargs)

    def to_python(self, value: Any) -> str:
        value = super().to_python(value)
        if value in self.empty_values:
            return value
        try:
            return phone.to_e164(value)
        except phone.InvalidPhoneNumber as exc:
            raise phone.validation_error(exc) from None


class PhoneNumberField(models.CharField):
    """A phone number stored in E.164; national formats are read in CALLTRACK_DEFAULT_REGION."""

    description = "Phone number (E.164)"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", 20)
        super().__init__(*args, **kwargs)

    def deconstruct(self) -> tuple[Any, ...]:
        name, path, args, kwargs = super().deconstruct()
        if kwargs.get("max_length") == 20:
            del kwargs["max_length"]
        return name, path, args, kwargs

    def to_python(self, value: Any) -> Any:
        value = super().to_python(value)
        if value in (None, ""):
            return value
        try:
            return phone.to_e164(value)
        except phone.InvalidPhoneNumber as exc:
            raise phone.validation_error(exc) from None

    def formfield(self, **kwargs: Any) -> forms.Field:
        kwargs.setdefault("form_class", PhoneNumberFormField)
        return super().formfield(**kwargs)


def validate_send_digits(value: str) -> None:
    """Twilio's sendDigits: 0-9, * and #, with ``w`` (half a second) and ``W`` (one second) pauses."""
    allowed = set("0123456789*#wW")
    bad = sorted({ch for ch in value if ch not in allowed})
    if bad:
        raise ValidationError(
            "Digits may only contain 0-9, *, # and w/W pauses; found %(bad)s.",
            code="invalid_digits",
            params={"bad": ", ".join(repr(ch) for ch in bad)},
        )
    if value and not any(ch not in "wW" for ch in value):
        raise ValidationError("Digits cannot be only pauses.", code="invalid_digits")
