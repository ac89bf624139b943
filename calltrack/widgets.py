"""Admin widgets: business hours as a weekly grid, charts as inline SVG (no CDN, no JS framework)."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from calltrack import hours as hours_rules


class BusinessHoursWidget(forms.Widget):
    """Seven rows, one per day, each a comma-separated list of ranges (``09:00-12:00, 13:00-17:00``)."""

    template_name = "calltrack/widgets/business_hours.html"

    def format_value(self, value: Any) -> dict[str, str]:
        if isinstance(value, str):
            try:
                value = json.loads(value) if value else {}
            except ValueError:
                return {}
        value = value or {}
        out = {}
        for day in hours_rules.DAYS:
            ranges = value.get(day, [])
            out[day] = ranges if isinstance(ranges, str) else ", ".join(ranges)
        return out

    def get_context(self, name: str, value: Any, attrs: dict | None) -> dict:
        context = super().get_context(name, value, attrs)
        days = self.format_value(value)
        context["widget"]["days"] = [
            {"key": day, "label": hours_rules.DAY_NAMES[day], "value": days.get(day, ""), "name": f"{name}_{day}"}
            for day in hours_rules.DAYS
        ]
        context["widget"]["presets"] = [
            {"label": label, "json": json.dumps({d: ", ".join(r) for d, r in preset.items()})}
            for label, preset in hours_rules.PRESETS.items()
        ]
        return context

    def value_from_datadict(self, data, files, name: str) -> dict[str, str]:
        return {day: data.get(f"{name}_{day}", "") for day in hours_rules.DAYS}

    def value_omitted_from_data(self, data, files, name: str) -> bool:
        return not any(f"{name}_{day}" in data for day in hours_rules.DAYS)


class BusinessHoursField(forms.Field):
    widget = BusinessHoursWidget

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.pop("encoder", None)
        kwargs.pop("decoder", None)
        kwargs.pop("max_length", None)
        super().__init__(*args, **kwargs)

    def to_python(self, value: Any) -> dict[str, list[str]]:
        if not value:
            return {}
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                raise ValidationError("Business hours must be a weekly grid of ranges.")
        raw = {day: [r.strip() for r in text.split(",") if r.strip()] if isinstance(text, str) else text for day, text in value.items()}
        try:
            return hours_rules.validate({day: ranges for day, ranges in raw.items() if ranges})
        except hours_rules.HoursError as exc:
            raise ValidationError(str(exc)) from None

    def prepare_value(self, value: Any) -> Any:
        return value

    def has_changed(self, initial: Any, data: Any) -> bool:
        try:
            return self.to_python(data) != (initial or {})
        except ValidationError:
            return True


class PrettyJSONWidget(forms.Textarea):
    """JSON shown indented, so operators can read and edit tag criteria and filters."""

    def __init__(self, attrs: dict | None = None) -> None:
        super().__init__(attrs={"rows": 6, "cols": 80, "style": "font-family: monospace", **(attrs or {})})

    def format_value(self, value: Any) -> str:
        try:
            return json.dumps(json.loads(value) if isinstance(value, str) else value, indent=2)
        except (TypeError, ValueError):
            return super().format_value(value)
