"""Writes to tagging hours. Every change reloads the routing configuration of the campaigns it tags: a database
trigger bumps their ``config_version`` (every campaign's for an account-wide schedule)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db import transaction

from calltrack.model_writes import instance_apply_and_save
from tracking.models.tagging import TaggingHours


@transaction.atomic
def tagging_hours_create(*, fields: Mapping[str, Any]) -> TaggingHours:
    """Create a schedule after full validation (hours, time zone, tag); its campaigns reload their configuration."""
    schedule = TaggingHours()
    for name, value in fields.items():
        setattr(schedule, name, value)
    schedule.full_clean()
    schedule.save()
    return schedule


@transaction.atomic
def tagging_hours_update(*, tagging_hours: TaggingHours, fields: Mapping[str, Any]) -> TaggingHours:
    """Change the given fields after full validation and save only those; the campaigns tagged before and after
    the change reload their configuration."""
    return instance_apply_and_save(instance=tagging_hours, fields=fields)  # with what clean() normalized (the hours)


@transaction.atomic
def tagging_hours_delete(*, tagging_hours: TaggingHours) -> None:
    """Delete a schedule; the calls it tagged keep their tags."""
    tagging_hours.delete()
