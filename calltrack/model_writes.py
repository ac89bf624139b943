"""The one way a model row is written from the admin, the API and the commands: validate fully, then save
only what the edit changed (HackSoft's ``model_update``).

An edit is loaded (a form, a serializer) some time before it is saved. Meanwhile the hot paths write their
own columns under row locks or in conditional UPDATEs: DNI gives a pool number to a visitor
(``TrackingNumber.current_session`` / ``last_assigned_at``), a pool overflows (``NumberPool.overflow_count``),
round robin moves (``Campaign.rr_position``), a change bumps ``Campaign.config_version``. Saving the whole
row would write those back as the edit read them, undoing the hot path's work. So an update names its
columns: the fields given, plus what validation derived from them (a number's area code, normalized
business hours), plus ``auto_now`` stamps; and never a hot-path column.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from django.db import models

M = TypeVar("M", bound=models.Model)

# Columns that only the hot paths (or their own services, under row locks) write: an edit never saves them.
# A pool number's holder and last assignment (DNI); a number's status and quarantine (the lifecycle and porting
# services: release, quarantine, its scheduled end); a pool's counters (DNI overflows, dropped parameters); a
# campaign's round-robin cursor (voice routing) and config version (bumped by triggers: tracking/sql/config_version.*.sql).
HOT_PATH_COLUMNS: dict[str, frozenset[str]] = {
    "numbers.trackingnumber": frozenset({"current_session", "last_assigned_at", "status", "quarantined_until"}),
    "numbers.numberpool": frozenset({"overflow_count", "dropped_parameter_count"}),
    "tracking.campaign": frozenset({"rr_position", "config_version"}),
    # Written by the pause and resume services only (a fraud monitor may pause a source while its page is open).
    "tracking.source": frozenset({"paused_at", "paused_reason"}),
    "tracking.fraudmonitor": frozenset({"last_checked_at", "last_result"}),
    "tracking.alertrecipient": frozenset({"last_digest_at"}),
}


def hot_path_columns(model: type[models.Model]) -> frozenset[str]:
    """The field names of ``model`` that edits must never write (see ``HOT_PATH_COLUMNS``)."""
    return HOT_PATH_COLUMNS.get(model._meta.label_lower, frozenset())


def _field_name(instance: models.Model, name: str) -> str:
    """The concrete field's name for a field name or attname (``campaign`` for ``campaign_id``)."""
    field = instance._meta.get_field(name)
    if not getattr(field, "concrete", False) or field.primary_key or field.many_to_many:
        raise ValueError(f"{type(instance).__name__}.{name} is not a column an edit can save")
    return field.name


def _values(instance: models.Model) -> dict[str, Any]:
    return {f.name: f.value_from_object(instance) for f in instance._meta.concrete_fields if not f.primary_key}


def instance_apply_and_save(*, instance: M, fields: Mapping[str, Any], also: Iterable[str] = ()) -> M:
    """Set ``fields`` on ``instance``, run ``full_clean()`` (field validators, ``clean()``, uniqueness)
    and save. Raises django ValidationError keyed by field name; nothing is written then.

    A new row is inserted whole. An existing row is saved with ``update_fields``: the names in ``fields``
    and ``also`` (values already set on the instance, e.g. by an admin form), the fields ``full_clean()``
    changed (derived values), and the columns the model derives itself (``editable=False``, ``auto_now``). Hot-path columns (``HOT_PATH_COLUMNS``) are never
    written by an edit: naming one raises ValueError.
    """
    for name, value in fields.items():
        setattr(instance, name, value)
    if instance._state.adding or instance.pk is None:
        instance.full_clean()
        instance.save()
        return instance
    given = {_field_name(instance, name) for name in (*fields, *also)}
    refused = given & hot_path_columns(type(instance))
    if refused:
        raise ValueError(f"{', '.join(sorted(refused))} of {type(instance).__name__} is written by its hot path only, never by an edit")
    before = _values(instance)
    instance.full_clean()
    derived = {name for name, value in _values(instance).items() if value != before[name]}
    # Columns the model derives itself (editable=False: a number's area code, ``auto_now`` stamps) go with every
    # edit: an admin form has already run ``full_clean()``, so the difference above cannot see them.
    own = {f.name for f in instance._meta.concrete_fields if not f.editable and not f.primary_key and f.name != "account"}
    update = (given | derived | own) - hot_path_columns(type(instance))
    instance.save(update_fields=sorted(update))
    return instance
