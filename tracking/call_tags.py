"""Calls by their tags (caller geo, IVR keys, marketing data and the custom parameters landing pages pass), and
the call log's CSV export with a column per tag: what the admin's call log and the API's ``tag`` filter share."""

from __future__ import annotations

import re
from typing import Any

from django.db.models import Case, QuerySet, TextField, Value, When
from django.db.models.fields.json import KeyTextTransform

from calltrack.scoping import UNSCOPED, Scope, tag_name_hidden
from tracking.models import Call

TAG_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
MAX_TAG_VALUE = 500
_NUMBER = re.compile(r"^[+-]?\d+(\.\d+)?$")


class BadTagFilter(ValueError):
    """A ``name`` or ``name:value`` filter that cannot name a tag; ``str()`` says why."""


def tag_filter_parse(spec: str) -> tuple[str, str | None]:
    """``"plan"`` -> ("plan", None): calls that have the tag; ``"plan:gold"`` -> ("plan", "gold"): calls whose
    tag has that value. Raises BadTagFilter for a name that is not a tag name or a value no tag can hold."""
    name, sep, value = spec.partition(":")
    name = name.strip()
    if not TAG_NAME.match(name):
        raise BadTagFilter(f"'{name[:64]}' is not a tag name (letters, digits, '_', '.', '-'; 64 at most)")
    if not sep:
        return name, None
    if len(value) > MAX_TAG_VALUE or "\x00" in value or any(0xD800 <= ord(c) <= 0xDFFF for c in value):
        raise BadTagFilter(f"the value of tag '{name}' is longer than {MAX_TAG_VALUE} characters or holds a NUL or a lone surrogate")
    return name, value.strip()


def calls_with_tag(queryset: QuerySet[Call], *, name: str, value: str | None) -> QuerySet[Call]:
    """Calls having tag ``name`` (any value), or with ``value`` (in any case)."""
    if value is None:
        return queryset.filter(tags__has_key=name)
    # An explicit key transform: a tag named like a lookup ("contains", "exact") is still just a key. Values match in
    # any case ("hours:Weekend" finds "weekend"), as people type them.
    return queryset.alias(_tag_value=KeyTextTransform(name, "tags")).filter(_tag_value__iexact=value)


def recent_tag_values(*, queryset: QuerySet[Call], name: str | None = None, sample: int = 500) -> list[str]:
    """Tag names seen on the ``sample`` latest calls of ``queryset`` (or, with ``name``, that tag's values), sorted:
    the choices of the admin's tag filter. One query, bounded by ``sample``."""
    seen: set[str] = set()
    for tags in queryset.order_by("-started_at").values_list("tags", flat=True)[:sample]:
        if not isinstance(tags, dict):
            continue
        if name is None:
            seen.update(str(k) for k in tags)
        elif tags.get(name) not in (None, ""):
            seen.add(str(tags[name]))
    return sorted(seen)


def tag_columns_annotate(
    *, queryset: QuerySet[Call], exclude: set[str] = frozenset(), sample: int = 500, scope: Scope = UNSCOPED,
) -> tuple[QuerySet[Call], list[tuple[str, str]]]:
    """``queryset`` with one annotation per tag name seen on its ``sample`` latest calls (not in ``exclude``), and
    the export columns reading them: [("tag:plan", "_tag_0"), ...]. One bounded query to find the names. Tags
    ``scope`` may not see are left out: a name always hidden from it, and (for a handler) a cell whose tag came
    from the call's marketing data is empty (``calltrack.scoping.visible_tags``)."""
    names = [
        n for n in recent_tag_values(queryset=queryset, sample=sample)
        if n not in exclude and TAG_NAME.match(n) and not tag_name_hidden(scope, n)
    ]
    annotations: dict[str, Any] = {f"_tag_{i}": KeyTextTransform(name, "tags") for i, name in enumerate(names)}
    if scope.handler_id is not None:
        annotations = {
            alias: Case(When(marketing_data__has_key=name, then=Value(None)), default=expression, output_field=TextField())
            for (alias, expression), name in zip(annotations.items(), names)
        }
    return queryset.annotate(**annotations), [(f"tag:{name}", f"_tag_{i}") for i, name in enumerate(names)]
