"""Porting numbers in from another carrier and out to one.

Port in: :func:`port_in_create` records a PortRequest and the numbers as
tracking numbers in status ``porting_in`` (they take no calls yet), then asks
the carrier. :func:`port_requests_sync` (a scheduled task) follows each
request: on completion the numbers become active on the chosen campaign or
pool with our webhooks configured; on rejection they are marked released.

Port out: :func:`port_out_start` marks numbers ``porting_out``; calls keep
routing until the carrier says the number has left, then it is released.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from calltrack import phone
from calltrack.numbers.models import NumberKind, NumberPool, NumberStatus, PortDirection, PortRequest, PortStatus, TrackingNumber
from calltrack.numbers.providers import Carrier, CarrierError, fallback_url, get_carrier, sms_webhook_urls, webhook_urls
from calltrack.numbers.services.errors import NumberError
from calltrack.numbers.services.events import number_event_build, number_events_save
from calltrack.numbers.services.lifecycle import static_cap_check, tracking_number_failsafe
from tracking.models import Campaign, Source

log = logging.getLogger(__name__)
MAX_PORT = 1000  # Twilio's limit per port-in request


def _clean_numbers(values: Iterable[str]) -> list[str]:
    cleaned, problems, seen = [], [], set()
    for n, value in enumerate(values, start=1):
        try:
            e164 = phone.to_e164(value)
        except phone.InvalidPhoneNumber as exc:
            problems.append(f"number {n}: {exc}")
            continue
        if e164 in seen:
            problems.append(f"number {n}: {e164} is listed twice")
            continue
        seen.add(e164)
        cleaned.append(e164)
    if problems:
        raise NumberError(" ".join(problems), problems=problems)
    if not cleaned:
        raise NumberError("List at least one number to port.")
    return cleaned


def port_in_create(
    *, numbers: Iterable[str], loa_name: str, loa_address: str, other_carrier: str = "", campaign: Campaign | None = None,
    source: Source | None = None, pool: NumberPool | None = None, actor: AbstractBaseUser | None = None,
    actor_label: str = "", submit: bool = True, carrier: Carrier | None = None,
) -> PortRequest:
    """Start a port-in of ``numbers`` to a campaign (static, credited to ``source``) or a pool.

    Refuses (writing nothing) bad or repeated numbers, numbers we already hold,
    a missing LOA name/address, a missing destination, or a source whose static
    number cap the numbers would pass (checked under a lock on the source). With
    ``submit`` the request goes to the carrier at once; if the carrier is
    unreachable it stays pending and the sync task retries.
    """
    numbers = _clean_numbers(numbers)
    if len(numbers) > MAX_PORT:
        raise NumberError(f"One port-in takes at most {MAX_PORT} numbers; split the list.")
    if not (loa_name.strip() and loa_address.strip()):
        raise NumberError("A port-in needs the LOA name and address of the account holder (--loa-name, --loa-address).")
    if bool(pool) == bool(campaign):
        raise NumberError("Say where the ported numbers go: a pool, or a campaign (and optionally a source).")
    if pool and source:
        raise NumberError("Pool numbers take the pool's source; give a source only with a campaign.")
    carrier_name = carrier.name if carrier else get_carrier().name
    with transaction.atomic():
        existing = {tn.number: tn for tn in TrackingNumber.objects.select_for_update().filter(number__in=numbers)}
        held = [n for n, tn in existing.items() if tn.status != NumberStatus.RELEASED]
        if held:
            raise NumberError(f"Already our numbers (nothing to port): {', '.join(sorted(held))}.")
        if campaign and source:
            static_cap_check(additions={source.pk: len(numbers)})
        request = PortRequest(
            direction=PortDirection.IN, status=PortStatus.PENDING, numbers=numbers, loa_name=loa_name.strip(),
            loa_address=loa_address.strip(), other_carrier=other_carrier, carrier=carrier_name, campaign=campaign or pool.campaign,
            source=source, pool=pool, account_id=(pool or campaign).account_id,  # one is set (checked above)
            created_by=actor if actor and actor.pk else None,  # type: ignore[misc]  # AUTH_USER_MODEL: the stubs type it auth.User
        )
        request.full_clean(exclude=["created_by", "campaign", "source", "pool"])
        request.save()
        kind = NumberKind.POOL if pool else NumberKind.STATIC
        events = []
        for e164 in numbers:
            tn = existing.get(e164) or TrackingNumber(number=e164)
            before = tn.status if tn.pk else ""
            tn.kind, tn.status, tn.pool, tn.campaign = kind, NumberStatus.PORTING_IN, pool, request.campaign
            tn.source = source if kind == NumberKind.STATIC else None
            tn.carrier, tn.carrier_id, tn.quarantined_until = carrier_name, "", None
            tn.account_id = request.account_id
            tn.save()
            events.append(number_event_build(
                number=tn, from_status=before, to_status=NumberStatus.PORTING_IN, actor=actor, actor_label=actor_label,
                reason=f"Port-in #{request.pk} from {other_carrier or 'another carrier'} started",
                changes={"port_request": request.pk},
            ))
        number_events_save(events)
    if submit:
        port_in_submit(request=request, carrier=carrier)
        request.refresh_from_db()
    return request


def port_in_submit(*, request: PortRequest, carrier: Carrier | None = None) -> PortRequest:
    """Send a pending port-in to the carrier. Idempotent: only a pending request is sent (conditional UPDATE)."""
    if request.status != PortStatus.PENDING:
        return request
    carrier = carrier or get_carrier(request.carrier, account_id=request.account_id)
    try:
        request_id = carrier.port_in_start(numbers=request.numbers, loa_name=request.loa_name, loa_address=request.loa_address,
                                           losing_carrier=request.other_carrier)
    except CarrierError as exc:
        if exc.code == "invalid":
            _port_in_finish(request=request, status=PortStatus.REJECTED, reason=str(exc), carrier=carrier)
        else:
            log.warning("port-in #%s not submitted yet: %s", request.pk, exc)
            PortRequest.objects.filter(pk=request.pk).update(rejection_reason=f"Not submitted yet: {exc}"[:500])
        return request
    PortRequest.objects.filter(pk=request.pk, status=PortStatus.PENDING).update(
        status=PortStatus.SUBMITTED, carrier_request_id=request_id, submitted_at=timezone.now(), rejection_reason="",
    )
    request.refresh_from_db()
    return request


def _port_in_finish(*, request: PortRequest, status: str, reason: str, carrier: Carrier, now: datetime | None = None) -> None:
    now = now or timezone.now()
    with transaction.atomic():
        won = PortRequest.objects.filter(pk=request.pk, status__in=[PortStatus.PENDING, PortStatus.SUBMITTED]).update(
            status=status, completed_at=now if status == PortStatus.COMPLETED else None, rejection_reason=reason[:500],
        )
        if not won:
            return
        numbers = list(TrackingNumber.objects.select_for_update().filter(number__in=request.numbers, status=NumberStatus.PORTING_IN))
        voice_url, status_url = webhook_urls()
        sms_url = sms_webhook_urls()[0]
        events = []
        for tn in numbers:
            if status == PortStatus.COMPLETED:
                tn.status = NumberStatus.ACTIVE
                try:
                    carrier.configure(number=tn.number, carrier_id=tn.carrier_id, voice_url=voice_url, status_url=status_url, sms_url=sms_url,
                                      fallback_url=fallback_url(tracking_number_failsafe(tn)))
                    why = f"Port-in #{request.pk} completed; webhooks configured"
                except CarrierError as exc:
                    why = f"Port-in #{request.pk} completed, but configuring the webhooks failed: {exc}"
            else:
                tn.status, tn.pool = NumberStatus.RELEASED, None
                why = f"Port-in #{request.pk} rejected: {reason}"
            tn.updated_at = now
            events.append(number_event_build(number=tn, from_status=NumberStatus.PORTING_IN, to_status=tn.status,
                                             actor_label="port_requests_sync", at=now, reason=why, changes={"port_request": request.pk}))
        TrackingNumber.objects.bulk_update(numbers, ["status", "pool", "updated_at"])
        number_events_save(events)


def port_out_start(
    *, numbers: Iterable[str], to_carrier: str, actor: AbstractBaseUser | None = None, actor_label: str = "",
    account_id: int | None = None,
) -> PortRequest:
    """Mark numbers as porting out to ``to_carrier``: calls keep routing until the port completes.

    Refuses unknown numbers (with ``account_id``: numbers of other accounts too), numbers of several accounts, and
    numbers that are porting in or released. The request belongs to the numbers' account.
    Idempotent: numbers already porting out are left alone (and if all are, the
    open request is returned).
    """
    numbers = _clean_numbers(numbers)
    if not to_carrier.strip():
        raise NumberError("Say which carrier the numbers go to (--to-carrier).")
    with transaction.atomic():
        held = TrackingNumber.objects.select_for_update().filter(number__in=numbers)
        rows = {tn.number: tn for tn in (held.filter(account_id=account_id) if account_id is not None else held)}
        problems = [f"{n} is not one of our tracking numbers." for n in numbers if n not in rows]
        if len({tn.account_id for tn in rows.values()}) > 1:
            problems.append("The numbers belong to several accounts: port each account's numbers out on its own.")
        problems += [f"{n} is {tn.get_status_display().lower()} and cannot port out." for n, tn in rows.items()
                     if tn.status in (NumberStatus.PORTING_IN, NumberStatus.RELEASED)]
        if problems:
            raise NumberError(" ".join(problems), problems=problems)
        moving = [tn for tn in rows.values() if tn.status != NumberStatus.PORTING_OUT]
        if not moving:
            open_request = PortRequest.objects.filter(direction=PortDirection.OUT, status=PortStatus.SUBMITTED).order_by("-created_at")
            for request in open_request:
                if set(numbers) <= set(request.numbers):
                    return request
        carrier_errors = []
        references = []
        for tn in moving:
            try:
                references.append(get_carrier(tn.carrier, account_id=tn.account_id).port_out_start(number=tn.number, carrier_id=tn.carrier_id, to_carrier=to_carrier))
            except CarrierError as exc:
                carrier_errors.append(f"{tn.number}: {exc}")
        if carrier_errors:
            raise NumberError("The carrier refused the port out: " + " ".join(carrier_errors), problems=carrier_errors)
        request = PortRequest.objects.create(
            direction=PortDirection.OUT, status=PortStatus.SUBMITTED, numbers=[tn.number for tn in moving],
            other_carrier=to_carrier, carrier=moving[0].carrier if moving else "local", submitted_at=timezone.now(),
            **({"account_id": moving[0].account_id} if moving else {}),
            carrier_request_id=references[0] if len(references) == 1 else "", created_by=actor if actor and actor.pk else None,  # type: ignore[misc]  # AUTH_USER_MODEL: the stubs type it auth.User
        )
        events = []
        now = timezone.now()
        for tn in moving:
            events.append(number_event_build(
                number=tn, from_status=tn.status, to_status=NumberStatus.PORTING_OUT, actor=actor, actor_label=actor_label, at=now,
                reason=f"Port-out #{request.pk} to {to_carrier} started; calls keep routing until it completes",
                changes={"port_request": request.pk},
            ))
            tn.status, tn.quarantined_until, tn.updated_at = NumberStatus.PORTING_OUT, None, now
        TrackingNumber.objects.bulk_update(moving, ["status", "quarantined_until", "updated_at"])
        number_events_save(events)
    return request


def _port_out_check(*, request: PortRequest, now: datetime) -> None:
    numbers = list(TrackingNumber.objects.filter(number__in=request.numbers, status=NumberStatus.PORTING_OUT))
    for tn in numbers:
        try:
            result = get_carrier(tn.carrier, account_id=tn.account_id).port_out_status(number=tn.number, carrier_id=tn.carrier_id)
        except CarrierError as exc:
            log.warning("port-out #%s: status of %s unknown: %s", request.pk, tn.number, exc)
            continue
        if result.status != PortStatus.COMPLETED:
            continue
        with transaction.atomic():
            if TrackingNumber.objects.filter(pk=tn.pk, status=NumberStatus.PORTING_OUT).update(status=NumberStatus.RELEASED, pool=None, updated_at=now):
                number_event_build(number=tn, from_status=NumberStatus.PORTING_OUT, to_status=NumberStatus.RELEASED,
                                   actor_label="port_requests_sync", at=now,
                                   reason=f"Port-out #{request.pk} to {request.other_carrier} completed").save()
    if not TrackingNumber.objects.filter(number__in=request.numbers, status=NumberStatus.PORTING_OUT).exists():
        PortRequest.objects.filter(pk=request.pk, status=PortStatus.SUBMITTED).update(status=PortStatus.COMPLETED, completed_at=now)


def port_requests_sync(*, now: datetime | None = None) -> dict[str, int]:
    """Follow every open port (the scheduled task). Safe to run twice: each step is a conditional update.

    Pending port-ins are (re)submitted; submitted ones are asked for their
    status; completed port-ins activate their numbers, rejected ones release
    them; port-outs complete number by number.
    """
    now = now or timezone.now()
    counts = {"submitted": 0, "completed": 0, "rejected": 0, "waiting": 0}
    for request in PortRequest.objects.filter(status__in=[PortStatus.PENDING, PortStatus.SUBMITTED]).order_by("created_at"):
        if request.direction == PortDirection.OUT:
            _port_out_check(request=request, now=now)
            request.refresh_from_db()
            counts["completed" if request.status == PortStatus.COMPLETED else "waiting"] += 1
            continue
        carrier = get_carrier(request.carrier, account_id=request.account_id)  # the account's Twilio subaccount, if any
        if request.status == PortStatus.PENDING:
            port_in_submit(request=request, carrier=carrier)
            request.refresh_from_db()
            if request.status == PortStatus.SUBMITTED:
                counts["submitted"] += 1
            if request.status != PortStatus.SUBMITTED:
                counts["rejected" if request.status == PortStatus.REJECTED else "waiting"] += 1
                continue
        try:
            result = carrier.port_in_status(request_id=request.carrier_request_id)
        except CarrierError as exc:
            log.warning("port-in #%s: status unknown: %s", request.pk, exc)
            counts["waiting"] += 1
            continue
        if result.status in (PortStatus.COMPLETED, PortStatus.REJECTED):
            _port_in_finish(request=request, status=result.status, reason=result.reason, carrier=carrier, now=now)
            counts[result.status] += 1
        else:
            counts["waiting"] += 1
    return counts


def port_in_numbers_from_csv(text: str) -> list[str]:
    """The numbers of a port-in file: a 'number' column if the first line names it, else the first column."""
    import csv
    import io

    rows = [row for row in csv.reader(io.StringIO(text)) if row and any(cell.strip() for cell in row)]
    if not rows:
        raise NumberError("The file lists no numbers.")
    header = [cell.strip().lower() for cell in rows[0]]
    column = header.index("number") if "number" in header else 0
    start = 1 if "number" in header or not any(ch.isdigit() for ch in rows[0][0]) else 0
    return [row[column].strip() for row in rows[start:] if len(row) > column and row[column].strip()]
