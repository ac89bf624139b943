"""Build an admin form's POST data from the page the admin rendered (its fields' current values and the inline
formsets' management forms), so a test changes only what an operator would change."""

from __future__ import annotations

from typing import Any


def _value(bound) -> Any:
    value = bound.value()
    if value is None:
        return ""
    if isinstance(value, bool):
        return "on" if value else ""
    return value


def admin_post_data(response) -> dict[str, Any]:
    context = response.context
    form = context["adminform"].form
    data: dict[str, Any] = {}
    for name in form.fields:
        bound = form[name]
        if name == "business_hours":
            for day, text in bound.field.widget.format_value(bound.value()).items():
                data[f"business_hours_{day}"] = text
            continue
        value = _value(bound)
        if value == "" and isinstance(bound.value(), bool):
            continue
        data[bound.html_name] = value
    for inline in context.get("inline_admin_formsets", []):
        formset = inline.formset
        management = formset.management_form
        for name in management.fields:
            data[management.add_prefix(name)] = management[name].value()
        for subform in formset.forms:
            for name in subform.fields:
                value = _value(subform[name])
                if value == "":
                    continue
                data[subform.add_prefix(name)] = value.pk if hasattr(value, "pk") else value
    return {k: v for k, v in data.items() if v != ""}
