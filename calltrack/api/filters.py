"""Filters shared by the apps' APIs."""

from __future__ import annotations

import django_filters
from django import forms

MAX_ID = 2**63 - 1


class IdField(forms.IntegerField):
    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(*args, **kwargs)


class IdFilter(django_filters.Filter):
    """Rows pointing to the object with this id.

    Unlike ModelChoiceFilter, an id that does not exist filters to nothing instead of
    answering "not a valid choice": a collaborator cannot probe which ids exist.
    """

    field_class = IdField
