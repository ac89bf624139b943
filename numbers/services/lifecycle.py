"""Buying, moving, quarantining and releasing tracking numbers.

Rules every path shares (admin actions, API, commands, tasks):

- A source's static number cap holds wherever a static number is assigned to
  it (:func:`static_cap_check`, under a lock on the source rows).
- A number is in at most one pool, is static or pooled (never both), and is
  never active while porting out (its ``status`` says which).
- A number leaving a pool, or released by hand, is quarantined for
  CALLTRACK_QUARANTINE_DAYS: it keeps its campaign (calls go to the campaign's
  fail-safe) and its pool (for the record; pools hand out active numbers only),
  and cannot join another pool. When the quarantine ends
  :func:`numbers_release_quarantined` gives it back to the carrier.
- Every state change writes a NumberEvent.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction
from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet
from django.utils import timezone

from calltrack import phone
from calltrack.numbers.models import LocalCarrierNumber, NumberKind, NumberPool, NumberSession, NumberStatus, TrackingNumber
from calltrack.numbers.providers import (
    Carrier,
    CarrierCache,
    CarrierError,
    fallback_url,
    get_carrier,
    sms_webhook_urls,
    webhook_urls,
)
from calltrack.numbers.services.errors import NumberError
from calltrack.numbers.services.events import number_event_build, number_events_save
from tracking.models import Campaign, Source

log = logging.getLogger(__name__)

MAX_BUY = 500


def quarantine_days() -> int:
    return settings.CALLTRACK_QUARANTINE_DAYS


# --- static number caps -------------------------------------------------------------------------------------------


def static_cap_check(*, additions: Mapping[int, int], lock: bool = True) -> None:
    """Refuse if adding ``additions`` ({source_id: new static numbers}) would pass a source's static number cap.

    Call it inside ``transaction.atomic()``: with ``lock`` the source rows are
    locked (``SELECT ... FOR UPDATE``) so two concurrent assignments cannot both
    take the last place. Raises NumberError naming each source, its cap and count.
    """
    wanted = {source_id: n for source_id, n in additions.items() if source_id and n > 0}
    if not wanted:
        return
    sources = Source.objects.filter(pk__in=wanted, static_number_cap__isnull=False)
    if lock:
        sources = sources.select_for_update()
    capped = {source.pk: source for source in sources}
    if not capped:
        return
    held = dict(
        TrackingNumber.objects.filter(source_id__in=capped, kind=NumberKind.STATIC)
        .exclude(status=NumberStatus.RELEASED)
        .values_list("source_id").annotate(n=Count("id")).values_list("source_id", "n")
    )
    problems = []
    for source_id, source in capped.items():
        have, adding, cap = held.get(source_id, 0), wanted[source_id], source.static_number_cap or 0  # only capped sources
        if have + adding > cap:
            problems.append(
                f"Source '{source}' may hold {cap} static numbers (its static number cap); it holds {have} "
                f"and this would add {adding}."
            )
    if problems:
        raise NumberError(" ".join(problems), problems=problems)


# --- buying -------------------------------------------------------------------------------------------------------


@dataclass
class BuyTarget:
    """Where bought numbers go: a pool, or a campaign (static numbers, optionally credited to a source)."""

    pool: NumberPool | None = None
    campaign: Campaign | None = None
    source: Source | None = None
    label: str = ""
    marketing_data: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
        if self.pool and (self.source or self.marketing_data):
            raise NumberError("Pool numbers take their source and data from visitors; give a pool, or a campaign and source.")
        if not self.pool and not self.campaign:
            raise NumberError("Say where the numbers go: a pool, or a campaign (and optionally a source).")

    @property
    def kind(self) -> str:
        return NumberKind.POOL if self.pool else NumberKind.STATIC


def numbers_buy(
    *, count: int, target: BuyTarget, area_code: str = "", toll_free: bool = False, near: str = "", contains: str = "",
    country: str = "US", actor: AbstractBaseUser | None = None, actor_label: str = "", carrier: Carrier | None = None,
    reason: str = "",
) -> list[TrackingNumber]:
    """Buy ``count`` numbers at the carrier and make them active tracking numbers of ``target``.

    Searches first and buys nothing unless the carrier offers all ``count``
    numbers. Checks the source's static number cap under a lock on the source
    row. If the carrier fails half way, the numbers already bought are kept and
    recorded, and NumberError says how many were bought. Not idempotent: each
    call buys new numbers.
    """
    if count < 1 or count > MAX_BUY:
        raise NumberError(f"--count must be between 1 and {MAX_BUY}, not {count}.")
    if sum(bool(x) for x in (area_code, toll_free, near)) != 1:
        raise NumberError("Choose exactly one of an area code, toll-free, or a number to buy near.")
    if near:
        try:
            near = phone.to_e164(near)
        except phone.InvalidPhoneNumber as exc:
            raise NumberError(f"--near: {exc}")
    target.validate()
    campaign = target.pool.campaign if target.pool else target.campaign
    # The numbers belong to the pool's or the campaign's account, and are bought in its Twilio subaccount if it has one.
    account_id = target.pool.account_id if target.pool else target.campaign.account_id  # validate(): one is set
    carrier = carrier or get_carrier(account_id=account_id)
    account_failsafe = _account_failsafe(account_id)
    where = f"area code {area_code}" if area_code else ("toll-free" if toll_free else f"near {near}")
    voice_url, status_url = webhook_urls()
    sms_url = sms_webhook_urls()[0]
    bought: list[TrackingNumber] = []
    with transaction.atomic():
        if target.kind == NumberKind.STATIC and target.source:
            static_cap_check(additions={target.source.pk: count})
        try:
            offered = carrier.search(country=country, number_type="toll_free" if toll_free else "local",
                                     area_code=area_code, contains=contains, near_number=near, limit=count * 2 + 5)
        except CarrierError as exc:
            raise NumberError(f"The carrier could not search for numbers ({where}): {exc}")
        # A number we hold (e.g. imported by hand) is not for sale to us; a released one comes back as the same row.
        known = {tn.number: tn for tn in TrackingNumber.objects.filter(number__in=[a.number for a in offered])}
        offered = [a for a in offered if a.number not in known or known[a.number].status == NumberStatus.RELEASED][:count]
        if len(offered) < count:
            raise NumberError(f"The carrier offers only {len(offered)} numbers {where}, fewer than the {count} asked; nothing was bought.")
        events = []
        failure = ""
        for available in offered:
            try:
                failsafe = ((known[available.number].failsafe_number if available.number in known else "")
                            or (campaign.failsafe_number if campaign else "") or account_failsafe)
                purchased = carrier.buy(number=available.number, voice_url=voice_url, status_url=status_url, sms_url=sms_url,
                                        fallback_url=fallback_url(failsafe))
            except CarrierError as exc:
                failure = str(exc)
                break
            number = known.get(purchased.number) or TrackingNumber(number=purchased.number)
            from_status = number.status if number.pk else ""
            number.account_id = account_id  # a released number bought again belongs to its new account
            number.kind, number.status, number.campaign, number.pool = target.kind, NumberStatus.ACTIVE, campaign, target.pool
            number.source = target.source if target.kind == NumberKind.STATIC else None
            number.label = target.label
            number.marketing_data = target.marketing_data if target.kind == NumberKind.STATIC else {}
            number.carrier, number.carrier_id, number.quarantined_until = carrier.name, purchased.carrier_id, None
            number.save()
            bought.append(number)
            events.append(number_event_build(
                number=number, from_status=from_status, to_status=NumberStatus.ACTIVE, actor=actor, actor_label=actor_label,
                reason=reason or f"Bought ({where}) for {target.pool or campaign}",
                changes={"carrier": carrier.name, "pool": target.pool.pk if target.pool else None, "campaign": campaign.pk if campaign else None},
            ))
        number_events_save(events)
    if failure:
        raise NumberError(f"Bought {len(bought)} of {count} numbers; then the carrier refused: {failure}")
    return bought


# --- webhooks and voice fallback at the carrier ------------------------------------------------------------------


def tracking_number_failsafe(tracking_number: TrackingNumber) -> str:
    """The fail-safe a number's voice fallback URL dials: its own, else its campaign's (or its pool's campaign's),
    else its account's; '' leaves CALLTRACK_FAILSAFE_NUMBER to the fallback view."""
    pool = tracking_number.pool if tracking_number.pool_id else None
    campaign = tracking_number.campaign or (pool.campaign if pool is not None else None)
    return (tracking_number.failsafe_number or (campaign.failsafe_number if campaign else "")
            or (tracking_number.account.failsafe_number if tracking_number.account_id is not None else ""))


def _account_failsafe(account_id: int | None) -> str:
    from calltrack.models import Account

    if account_id is None:
        return ""
    return Account.objects.filter(pk=account_id).values_list("failsafe_number", flat=True).first() or ""


def numbers_configure(*, numbers: Iterable[TrackingNumber], carrier: Carrier | None = None) -> list[tuple[str, str]]:
    """Point each number's voice URL, status callback and voice fallback URL (with its current fail-safe) at
    calltrack, at the carrier. Run it after changing a fail-safe or CALLTRACK_PUBLIC_BASE_URL (``manage.py
    numbers_configure``). Idempotent; writes nothing here. Returns the (number, reason) pairs the carrier refused.
    Without ``carrier``, each number's carrier in its account's Twilio subaccount (or the install's)."""
    carriers = CarrierCache(lambda *a, **k: get_carrier(*a, **k))
    voice_url, status_url = webhook_urls()
    sms_url = sms_webhook_urls()[0]
    failed: list[tuple[str, str]] = []
    for tn in numbers:
        try:
            (carrier or carriers.get(None, tn.account_id)).configure(number=tn.number, carrier_id=tn.carrier_id, voice_url=voice_url, status_url=status_url, sms_url=sms_url,
                              fallback_url=fallback_url(tracking_number_failsafe(tn)))
        except CarrierError as exc:
            failed.append((tn.number, str(exc)))
    return failed


FALLBACK_REFRESH_TASK = "calltrack.numbers.tasks.numbers_fallback_refresh_task"  # also named in tracking.services.campaigns


def numbers_fallback_refresh_queue(*, number_ids: Iterable[int] = (), campaign_id: int | None = None, account_id: int | None = None) -> None:
    """After a fail-safe changed (a number's, a campaign's for its numbers, or an account's for all of its
    numbers), queue the task that gives Twilio the new voice fallback URLs, once the surrounding transaction
    commits. Only with the Twilio carrier (the local one never falls back) and CALLTRACK_FALLBACK_URL on."""
    if settings.CALLTRACK_CARRIER != "twilio" or not settings.CALLTRACK_FALLBACK_URL:
        return
    from django_q.tasks import async_task

    ids = sorted(set(number_ids))
    if account_id is not None:
        transaction.on_commit(lambda: async_task(FALLBACK_REFRESH_TASK, ids, campaign_id, account_id), robust=True)
    else:
        transaction.on_commit(lambda: async_task(FALLBACK_REFRESH_TASK, ids, campaign_id), robust=True)


def numbers_fallback_refresh(*, number_ids: Iterable[int] = (), campaign_id: int | None = None, account_id: int | None = None,
                             carrier: Carrier | None = None) -> list[tuple[str, str]]:
    """Configure at the carrier the numbers it holds among ``number_ids``, the campaign's (static and pool
    numbers) and the account's, with their current fail-safe; each in its account's Twilio subaccount unless
    ``carrier`` is given. Idempotent. Returns the carrier's refusals."""
    name = carrier.name if carrier is not None else (settings.CALLTRACK_CARRIER or "local").lower()
    qs = TrackingNumber.objects.select_related("campaign", "pool__campaign", "account").filter(
        carrier=name, status__in=[NumberStatus.ACTIVE, NumberStatus.QUARANTINED])
    wanted = Q(pk__in=list(number_ids))
    if campaign_id is not None:
        wanted |= Q(campaign_id=campaign_id) | Q(pool__campaign_id=campaign_id)
    if account_id is not None:
        wanted |= Q(account_id=account_id)
    failed = numbers_configure(numbers=qs.filter(wanted).order_by("pk"), carrier=carrier)
    for number, why in failed:
        log.warning("%s: cannot update the voice fallback URL at the carrier: %s", number, why)
    return failed


# --- quarantine and release ---------------------------------------------------------------------------------------


def idle_pool_numbers(*, pool: NumberPool, at: datetime | None = None) -> QuerySet[TrackingNumber]:
    """A pool's active numbers that no live visitor session holds, least recently shown first."""
    live = NumberSession.objects.live(at or timezone.now()).filter(tracking_number=OuterRef("pk"))
    return (
        TrackingNumber.objects.filter(pool=pool, status=NumberStatus.ACTIVE)
        .exclude(Exists(live))
        .order_by(F("last_assigned_at").asc(nulls_first=True), "number")
    )


def numbers_quarantine(
    *, numbers: Iterable[TrackingNumber], reason: str, actor: AbstractBaseUser | None = None, actor_label: str = "",
    now: datetime | None = None,
) -> list[TrackingNumber]:
    """Quarantine numbers for CALLTRACK_QUARANTINE_DAYS, then they are released (the release path of every number).

    Locks the rows. All or nothing: a number porting in or out refuses the whole
    call. Idempotent: numbers already quarantined or released are left as they
    are. Returns the numbers that changed.
    """
    now = now or timezone.now()
    ids = [n.pk for n in numbers]
    until = now + timedelta(days=quarantine_days())
    with transaction.atomic():
        rows = list(TrackingNumber.objects.select_for_update().filter(pk__in=ids).order_by("pk"))
        busy = [n.number for n in rows if n.status in (NumberStatus.PORTING_IN, NumberStatus.PORTING_OUT)]
        if busy:
            raise NumberError(f"Cannot release numbers that are porting (finish or cancel the port first): {', '.join(busy)}.")
        changed = [n for n in rows if n.status == NumberStatus.ACTIVE]
        events = []
        for n in changed:
            events.append(number_event_build(
                number=n, from_status=n.status, to_status=NumberStatus.QUARANTINED, actor=actor, actor_label=actor_label,
                reason=reason, at=now, changes={"quarantined_until": until.isoformat(), "pool": n.pool_id},
            ))
            n.status, n.quarantined_until, n.updated_at = NumberStatus.QUARANTINED, until, now
        if changed:
            TrackingNumber.objects.bulk_update(changed, ["status", "quarantined_until", "updated_at"])
        number_events_save(events)
    return changed


def numbers_release(
    *, numbers: list[str] | None = None, pool: NumberPool | None = None, count: int | None = None, reason: str = "",
    actor: AbstractBaseUser | None = None, actor_label: str = "", now: datetime | None = None, account_id: int | None = None,
) -> list[TrackingNumber]:
    """Release numbers by number, or ``count`` idle numbers of ``pool``: they go to quarantine first. With
    ``account_id``, a number of another account is refused as unknown.

    Refuses (changing nothing) unknown numbers, or a pool without ``count`` idle
    numbers. Idempotent for numbers already quarantined or released.
    """
    now = now or timezone.now()
    if numbers:
        wanted, problems = [], []
        for value in numbers:
            try:
                wanted.append(phone.to_e164(value))
            except phone.InvalidPhoneNumber as exc:
                problems.append(str(exc))
        found = {n.number: n for n in TrackingNumber.objects.filter(number__in=wanted)
                 if account_id is None or n.account_id == account_id}
        problems += [f"{n} is not one of our tracking numbers." for n in wanted if n not in found]
        if problems:
            raise NumberError(" ".join(problems), problems=problems)
        chosen = list(found.values())
        why = reason or "Released by hand"
    elif pool is not None and count:
        chosen = list(idle_pool_numbers(pool=pool, at=now)[:count])
        if len(chosen) < count:
            raise NumberError(f"Pool '{pool}' has only {len(chosen)} idle numbers (the others are shown to live visitors); asked to release {count}.")
        why = reason or f"Removed from pool '{pool}'"
    else:
        raise NumberError("Give numbers to release, or a pool and a count.")
    refused = [_held_elsewhere_reason(n) for n in held_elsewhere(chosen)]
    if refused:
        raise NumberError(" ".join(refused), problems=refused)
    return numbers_quarantine(numbers=chosen, reason=why, actor=actor, actor_label=actor_label, now=now)


def held_elsewhere(numbers: Iterable[TrackingNumber]) -> list[TrackingNumber]:
    """The numbers recorded as the simulated ``local`` carrier's that it does not hold, while a real carrier is
    configured (CALLTRACK_CARRIER): recorded before numbers named their carrier, they are at the real one, and
    releasing them "locally" would leave them billed there and pointing at calltrack. One query, none under ``local``."""
    configured = (settings.CALLTRACK_CARRIER or "local").lower()
    suspects = [n for n in numbers if n.carrier == "local" and n.status != NumberStatus.RELEASED]
    if configured == "local" or not suspects:
        return []
    owned = set(LocalCarrierNumber.objects.filter(
        number__in=[n.number for n in suspects], state__in=[LocalCarrierNumber.State.OWNED, LocalCarrierNumber.State.PORTING_OUT],
    ).values_list("number", flat=True))
    return [n for n in suspects if n.number not in owned]


def _held_elsewhere_reason(number: TrackingNumber) -> str:
    configured = (settings.CALLTRACK_CARRIER or "local").lower()
    return (f"{number.number} is recorded as the local carrier's, which does not hold it, while CALLTRACK_CARRIER is {configured}: "
            f"releasing it here would leave it billed at {configured}. Record its carrier first (numbers_import --update "
            "with a 'carrier' column).")


@dataclass
class ReleaseReport:
    released: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)


def numbers_release_quarantined(*, now: datetime | None = None, actor_label: str = "numbers_release_quarantined") -> ReleaseReport:
    """Give numbers whose quarantine has ended back to their carrier and mark them released.

    Safe to run twice (a number is released once: the status flips by a
    conditional UPDATE). A carrier failure leaves the number quarantined for the
    next run and is reported.
    """
    now = now or timezone.now()
    report = ReleaseReport()
    carriers = CarrierCache(lambda *a, **k: get_carrier(*a, **k))
    due = TrackingNumber.objects.filter(status=NumberStatus.QUARANTINED, quarantined_until__lte=now).order_by("quarantined_until")
    for number in due.iterator(chunk_size=500):
        if held_elsewhere([number]):  # left quarantined (its calls go to the fail-safe) until its carrier is recorded
            report.failed.append((number.number, _held_elsewhere_reason(number)))
            continue
        try:
            carrier = carriers.get(number.carrier, number.account_id)  # in the account's Twilio subaccount, if it has one
            carrier.release(number=number.number, carrier_id=number.carrier_id)
        except (CarrierError, Exception) as exc:  # one bad number must not stop the others
            log.warning("release of %s failed: %s", number.number, exc)
            report.failed.append((number.number, str(exc)))
            continue
        with transaction.atomic():
            won = TrackingNumber.objects.filter(pk=number.pk, status=NumberStatus.QUARANTINED).update(
                status=NumberStatus.RELEASED, pool=None, updated_at=now
            )
            if won:
                number_event_build(
                    number=number, from_status=NumberStatus.QUARANTINED, to_status=NumberStatus.RELEASED,
                    actor_label=actor_label, at=now, reason=f"Quarantine ended; released at {number.carrier}",
                    changes={"pool": [number.pool_id, None]},
                ).save()
                report.released.append(number.number)
    return report


# --- moving -------------------------------------------------------------------------------------------------------


def numbers_move(
    *, numbers: Iterable[TrackingNumber], pool: NumberPool | None = None, campaign: Campaign | None = None,
    source: Source | None = None, actor: AbstractBaseUser | None = None, actor_label: str = "", reason: str = "",
) -> int:
    """Move active numbers into ``pool``, or make them static numbers of ``campaign`` (credited to ``source``).

    A number already in another pool is refused: leaving a pool means
    quarantine first. Quarantined, porting and released numbers are refused.
    The source's static number cap is checked for the whole batch under a lock.
    All or nothing. Returns how many numbers changed (moving a number where it
    already is changes nothing, so this is idempotent).
    """
    if bool(pool) == bool(campaign):
        raise NumberError("Move to a pool, or to a campaign; not both and not neither.")
    if pool and source:
        raise NumberError("Pool numbers take the pool's source; give a source only with a campaign.")
    ids = [n.pk for n in numbers]
    with transaction.atomic():
        rows = list(TrackingNumber.objects.select_for_update(of=("self",)).filter(pk__in=ids).select_related("pool").order_by("pk"))
        problems = []
        for n in rows:
            if n.status != NumberStatus.ACTIVE:
                extra = f" until {n.quarantined_until:%Y-%m-%d}" if n.status == NumberStatus.QUARANTINED and n.quarantined_until else ""
                problems.append(f"{n.number} is {n.get_status_display().lower()}{extra}; only active numbers can move.")
            elif n.pool_id and n.pool_id != (pool.pk if pool else None):
                problems.append(
                    f"{n.number} is in pool '{n.pool}'; a number leaving a pool is quarantined first "
                    f"({quarantine_days()} days), so release it instead."
                )
        if problems:
            raise NumberError(" ".join(problems), problems=problems)
        if campaign and source:
            adding = sum(1 for n in rows if not (n.kind == NumberKind.STATIC and n.source_id == source.pk))
            static_cap_check(additions={source.pk: adding})
        events, changed = [], []
        for n in rows:
            before = {"kind": n.kind, "pool": n.pool_id, "campaign": n.campaign_id, "source": n.source_id}
            if pool:
                n.kind, n.pool, n.campaign, n.source, n.marketing_data = NumberKind.POOL, pool, pool.campaign, None, {}
            else:
                n.kind, n.pool, n.campaign = NumberKind.STATIC, None, campaign
                if source:
                    n.source = source
            after = {"kind": n.kind, "pool": n.pool_id, "campaign": n.campaign_id, "source": n.source_id}
            diff = {k: [before[k], v] for k, v in after.items() if before[k] != v}
            if not diff:
                continue
            changed.append(n)
            events.append(number_event_build(
                number=n, from_status=n.status, to_status=n.status, actor=actor, actor_label=actor_label, changes=diff,
                reason=reason or (f"Moved to pool '{pool}'" if pool else f"Moved to campaign '{campaign}'"),
            ))
        for n in changed:
            n.updated_at = timezone.now()
        if changed:
            TrackingNumber.objects.bulk_update(changed, ["kind", "pool", "campaign", "source", "marketing_data", "updated_at"])
        number_events_save(events)
    return len(changed)


