"""Admin widgets: business hours as a weekly grid, charts as inline SVG (no CDN, no JS framework)."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from calltrack import hours as hours_rules
from calltrack import tags as tag_rules


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
            data = json.loads(value) if isinstance(value, str) else value
        except (TypeError, ValueError):
            return super().format_value(value)
        # Nothing is shown as nothing (the placeholder says what goes here), not as "{}" or "null".
        return "" if data in ({}, [], None) else json.dumps(data, indent=2)


class JSONObjectFormField(forms.JSONField):
    """A JSON object typed in the admin: a blank or absent box (a browser posts a textarea's newline) is {}, the
    model's default, not an error."""

    def to_python(self, value: Any) -> Any:
        if value is None or (isinstance(value, str) and not value.strip()):
            return {}
        result = super().to_python(value)
        return {} if result is None else result  # "null" too

    def has_changed(self, initial: Any, data: Any) -> bool:
        if isinstance(data, str) and not data.strip() and initial in ({}, "{}", None, ""):
            return False
        return super().has_changed(initial, data)


class TagRulesWidget(forms.Widget):
    """Tag criteria (or a number's accept/reject filters) as a table: one rule a row, key / comparison / value.

    Rows post as repeated fields (``<name>_key``, ``<name>_op``, ``<name>_value``; for criteria ``<name>_group`` (OR
    between groups), for filters ``<name>_action``), so "Add a rule" simply clones a row. A row with no key is ignored
    (blank rows are free), except the "else" rule, which has none.
    """

    template_name = "calltrack/widgets/tag_rules.html"
    blank_rows = 2

    def __init__(self, *, with_action: bool = False, attrs: dict | None = None) -> None:
        super().__init__(attrs)
        self.with_action = with_action

    def _rules(self, value: Any) -> list[dict[str, Any]]:
        if isinstance(value, str):
            try:
                value = json.loads(value) if value else []
            except ValueError:
                return []
        return [r for r in (value or []) if isinstance(r, dict)]

    def get_context(self, name: str, value: Any, attrs: dict | None) -> dict:
        context = super().get_context(name, value, attrs)
        rows = []
        for rule in self._rules(value) + [{}] * self.blank_rows:
            shown = rule.get("value", "")
            group = rule.get("group") or ""
            rows.append({
                "action": rule.get("action", "accept"), "key": rule.get("key", ""), "op": rule.get("op", "equals"),
                "value": ", ".join(str(v) for v in shown) if isinstance(shown, list) else ("" if shown is None else str(shown)),
                "group": "" if group in ("", 1) else group,
            })
        ops = [(op, label) for op, label in tag_rules.OP_LABELS.items() if not (self.with_action and op == tag_rules.ELSE)]
        context["widget"].update({
            "rows": rows, "with_action": self.with_action, "ops": ops,
            "actions": [("accept", "accept only"), ("reject", "reject")], "keys": tag_rules.WELL_KNOWN_KEYS,
        })
        return context

    def value_from_datadict(self, data, files, name: str) -> list[dict[str, str]]:
        getlist = data.getlist if hasattr(data, "getlist") else (lambda key: [data[key]] if key in data else [])
        keys, ops, values = getlist(f"{name}_key"), getlist(f"{name}_op"), getlist(f"{name}_value")
        actions, groups = getlist(f"{name}_action"), getlist(f"{name}_group")
        rows: list[dict[str, Any]] = []
        for i, key in enumerate(keys):
            op = ops[i] if i < len(ops) else "equals"
            if op == tag_rules.ELSE and not self.with_action:
                rows.append({"op": op})
                continue
            if not str(key).strip():
                continue
            row: dict[str, Any] = {"key": str(key).strip(), "op": op, "value": values[i] if i < len(values) else ""}
            group = str(groups[i]).strip() if i < len(groups) else ""
            if group and not self.with_action:
                row["group"] = group
            if self.with_action:
                row = {"action": actions[i] if i < len(actions) else "", **row}
            rows.append(row)
        return rows

    def value_omitted_from_data(self, data, files, name: str) -> bool:
        return f"{name}_key" not in data


class TagRulesField(forms.Field):
    """The form side of ``TagRulesWidget``: rows in, rules validated by ``calltrack.tags`` out."""

    def __init__(self, *args: Any, with_action: bool = False, **kwargs: Any) -> None:
        for unused in ("encoder", "decoder", "max_length"):
            kwargs.pop(unused, None)
        kwargs.setdefault("widget", TagRulesWidget(with_action=with_action))
        self.with_action = with_action
        super().__init__(*args, **kwargs)

    def to_python(self, value: Any) -> list[dict[str, Any]]:
        if not value:
            return []
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                raise ValidationError("Rules must be a list of rows.") from None
        rows = []
        for row in value:
            row = dict(row)
            if row.get("op") in ("present", tag_rules.ELSE):
                row.pop("value", None)
            if row.get("op") == tag_rules.ELSE:
                row.pop("key", None)
            rows.append(row)
        try:
            return tag_rules.validate_filters(rows) if self.with_action else tag_rules.validate(rows)
        except tag_rules.TagRuleError as exc:
            raise ValidationError(str(exc)) from None

    def prepare_value(self, value: Any) -> Any:
        return value

    def has_changed(self, initial: Any, data: Any) -> bool:
        try:
            return self.to_python(data) != (initial or [])
        except ValidationError:
            return True
