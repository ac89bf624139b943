"""Writes to receiving numbers, tracking number records and pools (admin, API and commands share them).

Buying, releasing, porting and quarantine are number lifecycle operations with
their own services; pool membership is in ``pool_membership``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction

from calltrack.model_writes import hot_path_columns, instance_apply_and_save
from calltrack.numbers.models import NumberKind, NumberPool, NumberStatus, ReceivingNumber, TrackingNumber
from calltrack.numbers.services.errors import NumberError
from calltrack.numbers.services.events import number_event_record
from calltrack.numbers.services.lifecycle import static_cap_check
from tracking.services.campaign_config import campaign_config_touch, campaigns_using


def receiving_number_create(*, fields: Mapping[str, Any]) -> ReceivingNumber:
    """Create a receiving number after full validation (country derived from the number)."""
    return instance_apply_and_save(instance=ReceivingNumber(), fields=fields)


@transaction.atomic
def receiving_number_update(*, receiving_number: ReceivingNumber, fields: Mapping[str, Any]) -> ReceivingNumber:
    """Change a receiving number; campaigns dialling it reload their cached routing configuration."""
    instance_apply_and_save(instance=receiving_number, fields=fields)
    campaign_config_touch(receiving_number_ids=[receiving_number.pk])
    return receiving_number


@transaction.atomic
def receiving_number_delete(*, receiving_number: ReceivingNumber) -> None:
    """Delete a receiving number. Refused (ProtectedError) while a handler forwards to it; campaigns that
    dialled it reload their cached routing configuration."""
    campaign_ids = campaigns_using(receiving_number_ids=[receiving_number.pk])
    receiving_number.delete()
    campaign_config_touch(campaign_ids=campaign_ids)


_WATCHED = ["kind", "campaign_id", "source_id", "pool_id", "label", "marketing_data", "failsafe_number", "forwarding_number", "status"]


def _static_cap_locked(number: TrackingNumber, *, was: tuple[str, int | None] | None) -> None:
    """The lifecycle's static number cap check, under a lock on the source row, when ``number`` newly
    becomes a static number of its source (``clean()`` checks too, but without the lock)."""
    if number.kind != NumberKind.STATIC or not number.source_id or number.status == NumberStatus.RELEASED:
        return
    if was == (NumberKind.STATIC, number.source_id):
        return
    try:
        static_cap_check(additions={number.source_id: 1})
    except NumberError as exc:
        raise ValidationError({"source": exc.problems or [str(exc)]}) from None


@transaction.atomic
def tracking_number_save(
    *, tracking_number: TrackingNumber, changed: Iterable[str] | None = None, actor: AbstractBaseUser | None = None,
    reason: str = "",
) -> TrackingNumber:
    """Validate and save a tracking number whose new values are already set on it (new or existing).

    An existing number saves only ``changed`` (the fields the edit set; None: those whose value differs from
    the row's), never the columns DNI owns (``current_session``, ``last_assigned_at``): an edit loaded before
    a visitor was given the number keeps the visitor's hold.

    The previous state is read from the database, so the rules hold whoever set the values (admin form,
    API serializer, command): the source's static number cap is checked under a lock on the source row
    (two requests cannot both take its last place), and every change is recorded as a NumberEvent
    (who, when, from, to, why). Raises ValidationError keyed by field; nothing is written then.
    """
    existing = tracking_number.pk is not None and not tracking_number._state.adding
    editable = [f for f in TrackingNumber._meta.concrete_fields
                if f.editable and not f.primary_key and f.name not in hot_path_columns(TrackingNumber)]
    columns = sorted({*_WATCHED, *(f.attname for f in editable)})
    row = TrackingNumber.objects.filter(pk=tracking_number.pk).values(*columns).first() if existing else None
    before = {f: row[f] for f in _WATCHED} if row else None
    was = (before["kind"], before["source_id"]) if before else None
    _static_cap_locked(tracking_number, was=was)
    if changed is None:
        changed = [f.name for f in editable if row is not None and row[f.attname] != getattr(tracking_number, f.attname)]
    changed = list(changed)
    instance_apply_and_save(instance=tracking_number, fields={}, also=changed)
    if before is None:
        number_event_record(number=tracking_number, from_status="", to_status=tracking_number.status, actor=actor,
                            reason=reason or "Added", changes={"kind": tracking_number.kind})
    else:
        # Only what this edit saved: a column moved by someone else since the edit was loaded is not its change.
        saved = {TrackingNumber._meta.get_field(name).attname for name in changed}
        diff = {f.removesuffix("_id"): [before[f], getattr(tracking_number, f)] for f in _WATCHED
                if f in saved and before[f] != getattr(tracking_number, f)}
        if diff:
            number_event_record(number=tracking_number, from_status=before["status"], to_status=tracking_number.status,
                                actor=actor, reason=reason or "Edited", changes=diff)
    return tracking_number


def tracking_number_create(*, fields: Mapping[str, Any], actor: AbstractBaseUser | None = None, reason: str = "") -> TrackingNumber:
    """Record a tracking number we hold (type, area code and country derived); see :func:`tracking_number_save`."""
    return tracking_number_save(tracking_number=TrackingNumber(**fields), actor=actor, reason=reason)


def tracking_number_update(
    *, tracking_number: TrackingNumber, fields: Mapping[str, Any], actor: AbstractBaseUser | None = None, reason: str = ""
) -> TrackingNumber:
    """Change a number's settings; see :func:`tracking_number_save`."""
    for name, value in fields.items():
        setattr(tracking_number, name, value)
    return tracking_number_save(tracking_number=tracking_number, changed=list(fields), actor=actor, reason=reason)


def tracking_number_delete(*, tracking_number: TrackingNumber) -> None:
    """Forget a released number. A number still held must be released first (the carrier still bills it)."""
    if tracking_number.status != NumberStatus.RELEASED:
        raise ValidationError(
            {"status": f"{tracking_number} is {tracking_number.get_status_display().lower()}; release it before deleting it."}
        )
    tracking_number.delete()


def pool_create(*, fields: Mapping[str, Any]) -> NumberPool:
    """Create a pool after full validation (``key`` derived from the name when blank)."""
    return instance_apply_and_save(instance=NumberPool(), fields=fields)


def pool_save_new(*, pool: NumberPool) -> NumberPool:
    """Create a pool whose values are already set on it (the admin's form) after full validation."""
    return instance_apply_and_save(instance=pool, fields={})


def pool_update(*, pool: NumberPool, fields: Mapping[str, Any]) -> NumberPool:
    """Change the given fields after full validation; the live ``overflow_count`` is never written back."""
    return instance_apply_and_save(instance=pool, fields=fields)


def pool_delete(*, pool: NumberPool) -> None:
    """Delete a pool; refused while it still hands out numbers (remove them first, which quarantines them).

    Quarantined numbers only keep the pool for the record and lose it (SET_NULL).
    """
    active = pool.numbers.filter(status=NumberStatus.ACTIVE).count()
    if active:
        raise ValidationError({"numbers": f"The pool still has {active} active numbers; remove them first."})
    pool.delete()
