"""Adding and removing many tracking numbers to and from a pool, all or nothing.

Removal puts each number in quarantine (it keeps routing, but no visitor is
shown it) for CALLTRACK_QUARANTINE_DAYS, so late calls from people who saw it
still reach the campaign. Every change is recorded as a NumberEvent.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from calltrack import phone
from numbers.models import NumberEvent, NumberKind, NumberPool, NumberStatus, TrackingNumber

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


def _locked(numbers: list[str]) -> dict[str, TrackingNumber]:
    rows = TrackingNumber.objects.select_for_update().filter(number__in=numbers).order_by("pk")
    return {row.number: row for row in rows}


def _actor_fields(actor: Any, actor_label: str) -> dict[str, Any]:
    if actor is not None and getattr(actor, "is_authenticated", False):
        return {"actor": actor, "actor_label": actor_label}
    return {"actor": None, "actor_label": actor_label}


def pool_numbers_add(*, pool: NumberPool, numbers: Sequence[str], actor: Any = None, actor_label: str = "") -> list[TrackingNumber]:
    """Put the given numbers (E.164 or national format) in ``pool``, all or nothing.

    Each number must exist, be a pool-kind number, be active, and not serve
    another pool; one that already serves this pool is left as is (so repeating
    the request is harmless). The numbers join the pool's campaign. Locks the
    numbers' rows (select_for_update) for the duration. Returns the numbers changed.
    """
    wanted = _normalize(numbers)
    with transaction.atomic():
        found = _locked(wanted)
        problems: list[str] = []
        for n, e164 in enumerate(wanted, start=1):
            row = found.get(e164)
            if row is None:
                problems.append(f"number {n} ({e164}): no such tracking number")
            elif row.pool_id == pool.pk:
                continue
            elif row.pool_id is not None:
                problems.append(f"number {n} ({e164}): already serves another pool (id {row.pool_id})")
            elif row.kind != NumberKind.POOL:
                problems.append(f"number {n} ({e164}): is a static number; only pool numbers can join a pool")
            elif row.status != NumberStatus.ACTIVE:
                problems.append(f"number {n} ({e164}): is {row.get_status_display().lower()}, not active")
        if problems:
            raise ValidationError({"numbers": problems})
        changed: list[TrackingNumber] = []
        for e164 in wanted:
            row = found[e164]
            if row.pool_id == pool.pk:
                continue
            old_campaign = row.campaign_id
            row.pool = pool
            row.campaign_id = pool.campaign_id
            row.full_clean()
            row.save()
            NumberEvent.objects.create(
                tracking_number=row,
                from_status=row.status,
                to_status=row.status,
                reason=f"Added to pool '{pool}'.",
                changes={"pool": [None, pool.pk], "campaign": [old_campaign, pool.campaign_id]},
                **_actor_fields(actor, actor_label),
            )
            changed.append(row)
    return changed


def pool_numbers_remove(*, pool: NumberPool, numbers: Sequence[str], actor: Any = None, actor_label: str = "") -> list[TrackingNumber]:
    """Take the given numbers out of ``pool`` and quarantine them, all or nothing.

    Every number must serve this pool. Each leaves the pool with status
    quarantined until now + CALLTRACK_QUARANTINE_DAYS and a NumberEvent. Locks
    the numbers' rows. Returns the numbers changed.
    """
    wanted = _normalize(numbers)
    with transaction.atomic():
        found = _locked(wanted)
        problems = [
            f"number {n} ({e164}): " + ("no such tracking number" if e164 not in found else "does not serve this pool")
            for n, e164 in enumerate(wanted, start=1)
            if e164 not in found or found[e164].pool_id != pool.pk
        ]
        if problems:
            raise ValidationError({"numbers": problems})
        until = timezone.now() + timedelta(days=settings.CALLTRACK_QUARANTINE_DAYS)
        changed: list[TrackingNumber] = []
        for e164 in wanted:
            row = found[e164]
            from_status = row.status
            row.pool = None
            row.status = NumberStatus.QUARANTINED
            row.quarantined_until = until
            row.save()
            NumberEvent.objects.create(
                tracking_number=row,
                from_status=from_status,
                to_status=NumberStatus.QUARANTINED,
                reason=f"Removed from pool '{pool}'; quarantined until {until:%Y-%m-%d}.",
                changes={"pool": [pool.pk, None], "quarantined_until": until.isoformat()},
                **_actor_fields(actor, actor_label),
            )
            changed.append(row)
    return changed
