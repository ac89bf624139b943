"""Public identifiers (source id, campaign id, pool key): readable, unique, stable."""

from __future__ import annotations

import secrets

from django.db import models
from django.utils.text import slugify

#: Slugs unique within their account (the model's UniqueConstraint on (account, field)).
_PER_ACCOUNT = {"tracking.source": ("source_id",), "tracking.campaign": ("campaign_id",), "numbers.numberpool": ("key",)}


def unique_slug(instance: models.Model, field: str, text: str, *, max_length: int = 50) -> str:
    """A slug of ``text`` not used by another row of the model (``acme``, ``acme-2``, ...); of the same account, for
    a model whose slug is unique per account (a source id, a campaign id, a pool key)."""
    model = type(instance)
    base = (slugify(text) or secrets.token_hex(4))[: max_length - 4].strip("-") or secrets.token_hex(4)
    others = model._default_manager.exclude(pk=instance.pk) if instance.pk else model._default_manager.all()
    if field in _PER_ACCOUNT.get(model._meta.label_lower, ()):
        others = others.filter(account_id=instance.account_id)  # type: ignore[attr-defined]
    taken = set(others.filter(**{f"{field}__startswith": base}).values_list(field, flat=True))
    candidate, n = base, 2
    while candidate in taken:
        candidate = f"{base}-{n}"
        n += 1
    return candidate
