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


def logged_in_page(browser, live_server, *, username: str, viewport: dict[str, int], **context: Any):
    """A Chromium page logged in to the admin as a new superuser ``username``; yields the page, then closes it."""
    from django.contrib.auth import get_user_model

    password = f"{username}-pass-1"
    get_user_model().objects.create_superuser(username, f"{username}@example.com", password)
    browser_context = browser.new_context(viewport=viewport, **context)
    page = browser_context.new_page()
    page.set_default_timeout(15_000)
    page.goto(f"{live_server.url}/admin/login/?next=/admin/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/admin/")
    yield page
    browser_context.close()
