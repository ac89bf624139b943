"""The one way a model row is written from the admin, the API and the commands: validate fully, then save."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from django.db import models

M = TypeVar("M", bound=models.Model)


def instance_apply_and_save(*, instance: M, fields: Mapping[str, Any]) -> M:
    """Set ``fields`` on ``instance``, run ``full_clean()`` (field validators, ``clean()``, uniqueness)
    and save. Raises django ValidationError keyed by field name; nothing is written then.
    """
    for name, value in fields.items():
        setattr(instance, name, value)
    instance.full_clean()
    instance.save()
    return instance
