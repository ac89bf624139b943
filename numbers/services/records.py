"""Writes to receiving numbers, tracking number records and pools (admin, API and commands share them).

Buying, releasing, porting and quarantine are number lifecycle operations with
their own services; pool membership is in ``pool_membership``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction

from calltrack.model_writes import hot_path_columns, instance_apply_and_save
from calltrack.numbers.models import NumberKind, NumberPool, NumberStatus, PoolParameter, ReceivingNumber, TrackingNumber
from calltrack.numbers.providers import Carrier, CarrierError, get_carrier, sms_webhook_urls, webhook_urls
from calltrack.numbers.services.errors import NumberError
from calltrack.numbers.services.events import number_event_record
from calltrack.numbers.services.lifecycle import numbers_fallback_refresh_queue, static_cap_check


def receiving_number_create(*, fields: Mapping[str, Any]) -> ReceivingNumber:
    """Create a receiving number after full validation (country derived from the number)."""
    return instance_apply_and_save(instance=ReceivingNumber(), fields=fields)


@transaction.atomic
def receiving_number_update(*, receiving_number: ReceivingNumber, fields: Mapping[str, Any]) -> ReceivingNumber:
    """Change a receiving number; campaigns dialling it reload their cached routing configuration (a database
    trigger bumps their ``config_version``)."""
    return instance_apply_and_save(instance=receiving_number, fields=fields)


@transaction.atomic
def receiving_number_delete(*, receiving_number: ReceivingNumber) -> None:
    """Delete a receiving number. Refused (ProtectedError) while a handler forwards to it (so no campaign dials it)."""
    receiving_number.delete()


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
        saved = {f.attname for f in TrackingNumber._meta.concrete_fields if f.name in changed or f.attname in changed}
        diff = {f.removesuffix("_id"): [before[f], getattr(tracking_number, f)] for f in _WATCHED
                if f in saved and before[f] != getattr(tracking_number, f)}
        if diff:
            number_event_record(number=tracking_number, from_status=before["status"], to_status=tracking_number.status,
                                actor=actor, reason=reason or "Edited", changes=diff)
        if "failsafe_number" in diff or "campaign" in diff or "pool" in diff:
            numbers_fallback_refresh_queue(number_ids=[tracking_number.pk])
    return tracking_number


class Provisioning:
    """How a number typed into the admin's "Add" reaches calltrack."""

    BUY = "buy"  # buy it at the carrier, with our voice and status webhooks set
    CONNECT = "connect"  # already on the carrier account: point its webhooks at us
    RECORD = "record"  # only record it (the operator points the number at us by hand)
    CHOICES = [
        (BUY, "Buy it at the carrier and point it here"),
        (CONNECT, "It is already on the carrier account: point it here"),
        (RECORD, "Only record it (I will point it at calltrack myself)"),
    ]


def tracking_number_provision(
    *, tracking_number: TrackingNumber, how: str, actor: AbstractBaseUser | None = None, carrier: Carrier | None = None,
    where: str = "in the admin",
) -> TrackingNumber:
    """Add a new tracking number and make it reach us through the configured carrier (CALLTRACK_CARRIER).

    ``how`` is a :class:`Provisioning` value. The row is validated before the carrier is asked, so a refused form
    never buys a number; a carrier refusal raises ValidationError on ``number`` with the carrier's sentence and
    records nothing. Not idempotent for BUY (each call buys).
    """
    if tracking_number.pk:
        raise ValueError("tracking_number_provision adds a new number; edit an existing one with tracking_number_save")
    carrier = carrier or get_carrier(account_id=tracking_number.account_id)  # the account's Twilio subaccount, if any
    tracking_number.carrier = carrier.name
    tracking_number.full_clean(validate_unique=True, validate_constraints=True)
    voice_url, status_url = webhook_urls()
    sms_url = sms_webhook_urls()[0]
    try:
        if how == Provisioning.BUY:
            tracking_number.carrier_id = carrier.buy(number=tracking_number.number, voice_url=voice_url, status_url=status_url, sms_url=sms_url).carrier_id
            reason = f"Bought at {carrier.name} {where}"
        elif how == Provisioning.CONNECT:
            carrier.configure(number=tracking_number.number, carrier_id=tracking_number.carrier_id, voice_url=voice_url, status_url=status_url, sms_url=sms_url)
            reason = f"Connected at {carrier.name} {where} (voice webhook set)"
        else:
            reason = f"Recorded {where} without provisioning"
    except CarrierError as exc:
        raise ValidationError({"number": f"The carrier ({carrier.name}) refused: {exc}"}) from None
    try:
        return tracking_number_save(tracking_number=tracking_number, actor=actor, reason=reason)
    except ValidationError:
        if how == Provisioning.BUY:  # e.g. the source's static cap was taken meanwhile: do not keep paying for it
            carrier.release(number=tracking_number.number, carrier_id=tracking_number.carrier_id)
        raise


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


@transaction.atomic
def pool_create(*, fields: Mapping[str, Any]) -> NumberPool:
    """Create a pool after full validation (``key`` derived from the name when blank); ``fields`` may hold
    ``parameters``, the custom parameters it accepts (see :func:`pool_parameters_set`). All or nothing."""
    values = dict(fields)
    entries = values.pop("parameters", None)
    pool = instance_apply_and_save(instance=NumberPool(), fields=values)
    if entries is not None:
        pool_parameters_set(pool=pool, entries=entries)
    return pool


def pool_save_new(*, pool: NumberPool) -> NumberPool:
    """Create a pool whose values are already set on it (the admin's form) after full validation."""
    return instance_apply_and_save(instance=pool, fields={})


@transaction.atomic
def pool_update(*, pool: NumberPool, fields: Mapping[str, Any]) -> NumberPool:
    """Change the given fields after full validation (the live ``overflow_count`` is never written back); with
    ``parameters`` in ``fields``, replace its accepted custom parameters. All or nothing."""
    values = dict(fields)
    entries = values.pop("parameters", None)
    instance_apply_and_save(instance=pool, fields=values)
    if entries is not None:
        pool_parameters_set(pool=pool, entries=entries)
    return pool


@transaction.atomic
def pool_parameters_set(*, pool: NumberPool, entries: Sequence[Mapping[str, Any]]) -> list[PoolParameter]:
    """Replace the custom parameters ``pool`` accepts with ``entries`` ({name, kind, max_length}): every entry
    is validated before anything is written (errors under ``parameters``, naming the entry); a parameter kept
    by name is updated in place."""
    current = {p.name: p for p in PoolParameter.objects.filter(pool=pool)}
    problems: list[str] = []
    rows: list[PoolParameter] = []
    names: set[str] = set()
    for n, entry in enumerate(entries, start=1):
        name = str(entry.get("name") or "")
        if name in names:
            problems.append(f"entry {n}: '{name}' is listed twice")
            continue
        names.add(name)
        row = current.get(name) or PoolParameter(pool=pool)
        for field in ("name", "kind", "max_length"):
            if field in entry:
                setattr(row, field, entry[field])
        try:
            row.full_clean(exclude=["pool"], validate_unique=False, validate_constraints=False)
        except ValidationError as exc:
            problems.extend(f"entry {n}: {field}: {m}" for field, messages in exc.message_dict.items() for m in messages)
        rows.append(row)
    if problems:
        raise ValidationError({"parameters": problems})
    PoolParameter.objects.filter(pool=pool).exclude(name__in=names).delete()
    for row in rows:
        row.save()
    return rows


def pool_delete(*, pool: NumberPool) -> None:
    """Delete a pool; refused while it still hands out numbers (remove them first, which quarantines them).

    Quarantined numbers only keep the pool for the record and lose it (SET_NULL).
    """
    active = pool.numbers.filter(status=NumberStatus.ACTIVE).count()
    if active:
        raise ValidationError({"numbers": f"The pool still has {active} active numbers; remove them first."})
    pool.delete()


def pool_parameter_save(*, parameter: PoolParameter, fields: Mapping[str, Any]) -> PoolParameter:
    """Declare or change a custom parameter a pool accepts from its landing pages, after full validation
    (name format, reserved names, one name per pool). Effective on the next tag request."""
    return instance_apply_and_save(instance=parameter, fields=fields)


def pool_parameter_delete(*, parameter: PoolParameter) -> None:
    """Stop accepting a custom parameter; calls already made keep their tags."""
    parameter.delete()
