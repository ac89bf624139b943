"""Public identifiers (source id, campaign id, pool key): readable, unique, stable."""

from __future__ import annotations

import secrets

from django.db import models
from django.utils.text import slugify


def unique_slug(instance: models.Model, field: str, text: str, *, max_length: int = 50) -> str:
    """A slug of ``text`` not used by another row of the model (``acme``, ``acme-2``, ...)."""
    model = type(instance)
    base = (slugify(text) or secrets.token_hex(4))[: max_length - 4].strip("-") or secrets.token_hex(4)
    others = model._default_manager.exclude(pk=instance.pk) if instance.pk else model._default_manager.all()
    taken = set(others.filter(**{f"{field}__startswith": base}).values_list(field, flat=True))
    candidate, n = base, 2
    while candidate in taken:
        candidate = f"{base}-{n}"
        n += 1
    return candidate
