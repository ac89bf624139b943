"""The ``account`` column of every row that belongs to an account, and its default: the account the running request
acts in (``calltrack.accounts`` sets it), else the install's first. Kept apart from ``calltrack.accounts`` (which
reads memberships): the models import this, and the call path imports the models."""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

from django.db import models

from calltrack.models import Account

#: The account the running request acts in (None outside a request: a task, a command).
_CURRENT: ContextVar[int | None] = ContextVar("calltrack_account", default=None)


def default_account_id() -> int:
    """The model default of every ``account`` field: the account the running request acts in, else the install's
    first (:func:`first_account_id`), so that code and tests written for one account keep working."""
    current = _CURRENT.get()
    return current if current is not None else first_account_id()


def first_account_id() -> int:
    """The install's first account (the lowest id: where everything went when accounts came, and whose pools a page
    tag names by their key alone). Created again if the table was emptied (a test's flush)."""
    pk = Account.objects.order_by("pk").values_list("pk", flat=True).first()
    if pk is None:
        pk = Account.objects.get_or_create(slug="default", defaults={"name": "Default"})[0].pk
    return pk


def account_field(*, null: bool = False, db_index: bool = True) -> Any:
    """The ``account`` column of a row that belongs to an account: set when the row is created (from the request's
    account, or from the tracking number or party it belongs to), never edited in a form."""
    return models.ForeignKey(
        "calltrack.Account", on_delete=models.PROTECT, default=default_account_id, null=null, editable=False,
        related_name="+", db_index=db_index, help_text="The account it belongs to.",
    )
