"""``Campaign.config_version``: the stamp of a campaign's routing configuration.

Voice routing keeps a per-process cache of each campaign's routing configuration (its handlers with their
receiving numbers, IVR options and webhook events) keyed by ``config_version``, which the hot path reads
with the tracking number at no extra cost. Every write path that changes one of those rows (admin, API,
commands) must therefore bump the version of the campaigns concerned, in the same transaction, with these
services. A stale cache can never overbook a cap: caps are re-read from the locked handler rows.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import F, Q

from tracking.models import Campaign


def campaigns_using(*, handler_ids: Iterable[int] = (), receiving_number_ids: Iterable[int] = ()) -> set[int]:
    """Ids of the campaigns whose routing configuration includes these handlers or receiving numbers (through
    their campaign handlers, IVR options or conversion rules). Read it before a delete: the cascade takes the links away."""
    handlers, numbers = [h for h in handler_ids if h], [n for n in receiving_number_ids if n]
    if not handlers and not numbers:
        return set()
    q = Q(pk__in=[])
    if handlers:
        q |= Q(campaign_handlers__handler_id__in=handlers) | Q(ivr_options__handler_id__in=handlers) | Q(conversion_rules__handler_id__in=handlers)
    if numbers:
        q |= Q(campaign_handlers__handler__receiving_number_id__in=numbers)
    return set(Campaign.objects.filter(q).values_list("pk", flat=True).distinct())


def campaign_config_touch(
    *, campaign_ids: Iterable[int] = (), handler_ids: Iterable[int] = (), receiving_number_ids: Iterable[int] = ()
) -> int:
    """Bump ``config_version`` of the given campaigns and of those using the given handlers or receiving
    numbers (one UPDATE). Call it in the transaction that made the change, after the change. Not idempotent
    (each call bumps) but harmless to repeat: a bump only makes routing reload the configuration once.
    Returns how many campaigns were bumped."""
    ids = {c for c in campaign_ids if c} | campaigns_using(handler_ids=handler_ids, receiving_number_ids=receiving_number_ids)
    if not ids:
        return 0
    return Campaign.objects.filter(pk__in=ids).update(config_version=F("config_version") + 1)
