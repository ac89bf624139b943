"""Adding and removing many tracking numbers to and from a pool in one request, all or nothing.

A thin layer over the number lifecycle (``calltrack.numbers.services.lifecycle``), which
owns the rules: it reads the numbers as the operator typed them and names each
one that is wrong; ``numbers_move`` puts numbers in a pool (only active numbers,
never from another pool; a static number becomes a pool number), and
``numbers_quarantine`` takes them out of service for CALLTRACK_QUARANTINE_DAYS
(they keep their pool for the record; pools only hand out active numbers).
Every change is recorded as a NumberEvent by those services.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from calltrack import phone
from calltrack.numbers.models import NumberPool, TrackingNumber
from calltrack.numbers.services.errors import NumberError
from calltrack.numbers.services.lifecycle import numbers_move, numbers_quarantine

MAX_NUMBERS_PER_REQUEST = 500


def _normalize(numbers: Sequence[str]) -> list[str]:
    if not numbers:
        raise ValidationError({"numbers": "List at least one number."})
    if len(numbers) > MAX_NUMBERS_PER_REQUEST:
        raise ValidationError({"numbers": f"At most {MAX_NUMBERS_PER_REQUEST} numbers per request; got {len(numbers)}."})
    out: list[str] = []
    problems: list[str] = []
    for n, value in enumerate(numbers, start=1):
        try:
            e164 = phone.to_e164(value)
        except phone.InvalidPhoneNumber as exc:
            problems.append(f"number {n}: {exc}")
            continue
        if e164 not in out:
            out.append(e164)
    if problems:
        raise ValidationError({"numbers": problems})
    return out


def _rows(wanted: list[str], *, account_id: int | None, pool: NumberPool | None = None) -> list[TrackingNumber]:
    """The numbers of the account, in the order given; unknown ones (another account's are unknown here) or, with
    ``pool``, ones not in it refuse the request."""
    found = {row.number: row for row in TrackingNumber.objects.filter(number__in=wanted, account_id=account_id or 0)}
    problems = []
    for n, e164 in enumerate(wanted, start=1):
        row = found.get(e164)
        if row is None:
            problems.append(f"number {n} ({e164}): no such tracking number")
        elif pool is not None and row.pool_id != pool.pk:
            problems.append(f"number {n} ({e164}): does not serve this pool")
    if problems:
        raise ValidationError({"numbers": problems})
    return [found[e164] for e164 in wanted]


def _user(actor: Any) -> Any:
    return actor if actor is not None and getattr(actor, "is_authenticated", False) else None


def pool_numbers_add(*, pool: NumberPool, numbers: Sequence[str], actor: Any = None, actor_label: str = "") -> int:
    """Put the given numbers (E.164 or national format) in ``pool``, all or nothing; returns how many changed.

    The lifecycle's ``numbers_move`` decides (and locks the rows): active numbers
    only, none from another pool; a number already in this pool is left as is,
    so repeating the request is harmless. Refusals come back as a ValidationError
    on ``numbers`` listing every problem.
    """
    rows = _rows(_normalize(numbers), account_id=pool.account_id)
    try:
        with transaction.atomic():
            return numbers_move(numbers=rows, pool=pool, actor=_user(actor), actor_label=actor_label, reason=f"Added to pool '{pool}'")
    except NumberError as exc:
        raise ValidationError({"numbers": exc.problems or [str(exc)]}) from None


def pool_numbers_remove(*, pool: NumberPool, numbers: Sequence[str], actor: Any = None, actor_label: str = "") -> int:
    """Take the given numbers out of service in ``pool`` (quarantine), all or nothing; returns how many changed.

    Every number must belong to this pool. Idempotent: already quarantined numbers
    are left as they are. Locks the rows (``numbers_quarantine``).
    """
    rows = _rows(_normalize(numbers), account_id=pool.account_id, pool=pool)
    try:
        return len(numbers_quarantine(numbers=rows, reason=f"Removed from pool '{pool}'", actor=_user(actor), actor_label=actor_label))
    except NumberError as exc:
        raise ValidationError({"numbers": exc.problems or [str(exc)]}) from None

