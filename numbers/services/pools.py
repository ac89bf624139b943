"""Pool life: measuring pools (PoolSample), autoscaling them (PoolResize), and the admin's chart.

A pool's size is its count of *active* numbers: quarantined numbers keep their
``pool`` for the record but are never handed out.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from xml.sax.saxutils import escape

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Max, Min
from django.utils import timezone

from calltrack.numbers.models import (
    NumberPool,
    NumberSession,
    NumberStatus,
    PoolNumberType,
    PoolResize,
    PoolSample,
    TrackingNumber,
)
from calltrack.numbers.providers import Carrier
from calltrack.numbers.services.errors import NumberError
from calltrack.numbers.services.events import number_event_build, number_events_save
from calltrack.numbers.services.lifecycle import BuyTarget, idle_pool_numbers, numbers_buy, numbers_quarantine


def autoscale_window() -> timedelta:
    return timedelta(minutes=settings.CALLTRACK_AUTOSCALE_WINDOW_MINUTES)


def pool_size(*, pool: NumberPool) -> int:
    return TrackingNumber.objects.filter(pool=pool, status=NumberStatus.ACTIVE).count()


def pool_samples_record(*, at: datetime | None = None) -> list[PoolSample]:
    """Record one PoolSample per enabled pool: live sessions now, active numbers, overflow count.

    Three aggregate queries whatever the number of pools, then one insert.
    Running it twice in a minute just adds a sample (harmless for a peak).
    """
    at = at or timezone.now()
    pools = list(NumberPool.objects.filter(enabled=True).only("pk", "overflow_count"))
    ids = [p.pk for p in pools]
    sizes = dict(
        TrackingNumber.objects.filter(pool_id__in=ids, status=NumberStatus.ACTIVE)
        .values_list("pool_id").annotate(n=Count("id")).values_list("pool_id", "n")
    )
    live = dict(
        NumberSession.objects.live(at).filter(pool_id__in=ids, started_at__lte=at)
        .values_list("pool_id").annotate(n=Count("id")).values_list("pool_id", "n")
    )
    samples = [
        PoolSample(pool=p, at=at, live_sessions=live.get(p.pk, 0), size=sizes.get(p.pk, 0), overflow_count=p.overflow_count)
        for p in pools
    ]
    return PoolSample.objects.bulk_create(samples)


def _buy_options(pool: NumberPool) -> dict[str, Any]:
    if pool.number_type == PoolNumberType.TOLL_FREE:
        return {"toll_free": True}
    if pool.buy_area_code:
        return {"area_code": pool.buy_area_code}
    common = (
        TrackingNumber.objects.filter(pool=pool).exclude(status=NumberStatus.RELEASED)
        .values_list("number_type", "area_code").annotate(n=Count("id")).order_by("-n", "area_code").first()
    )
    if common is None:
        raise NumberError(f"Pool '{pool}' has no numbers to copy an area code from; set its buy area code.")
    number_type, area_code = common[0], common[1]
    if number_type == "toll_free" and pool.number_type != PoolNumberType.LOCAL:
        return {"toll_free": True}
    return {"area_code": area_code}


def pool_target_size(*, pool: NumberPool, peak: int) -> int:
    """peak x (1 + headroom), rounded up, within the pool's min and max."""
    wanted = math.ceil(Decimal(peak) * (1 + pool.autoscale_headroom))
    return max(pool.autoscale_min, min(pool.autoscale_max, wanted))


def pool_autoscale(
    *, pool: NumberPool, now: datetime | None = None, carrier: Carrier | None = None, actor_label: str = "pools_autoscale",
) -> PoolResize | None:
    """Resize ``pool`` toward its measured peak of live sessions x (1 + headroom), within min..max.

    Growing first takes back this pool's own quarantined numbers (they never
    left it), then buys through the carrier. Shrinking quarantines idle numbers
    (never one a live visitor holds), and only once samples cover at least half
    the window, so a fresh pool is not emptied on its first quiet minute.
    Locks the pool row, so two workers never resize the same pool at once.
    Returns the logged PoolResize, or None when nothing was to be done.
    """
    now = now or timezone.now()
    window = autoscale_window()
    with transaction.atomic():
        pool = NumberPool.objects.select_for_update().get(pk=pool.pk)
        stats = PoolSample.objects.filter(pool=pool, at__gt=now - window, at__lte=now).aggregate(
            peak=Max("live_sessions"), first=Min("at"))
        if stats["first"] is None:
            return None
        peak = stats["peak"] or 0
        size = pool_size(pool=pool)
        target = pool_target_size(pool=pool, peak=peak)
        hours = window.total_seconds() / 3600
        basis = (f"peak {peak} live sessions in the last {hours:g} h x {1 + pool.autoscale_headroom:.2f} headroom"
                 f" -> {target} (limits {pool.autoscale_min}..{pool.autoscale_max})")
        if target == size:
            return None
        notes: list[str] = []
        if target > size:
            need = target - size
            reclaim = list(
                TrackingNumber.objects.select_for_update().filter(pool=pool, status=NumberStatus.QUARANTINED)
                .order_by("-quarantined_until")[:need]
            )
            events = []
            for n in reclaim:
                events.append(number_event_build(
                    number=n, from_status=n.status, to_status=NumberStatus.ACTIVE, actor_label=actor_label, at=now,
                    reason=f"Autoscaling took it back into pool '{pool}' (it never left the pool)",
                ))
                n.status, n.quarantined_until, n.updated_at = NumberStatus.ACTIVE, None, now
            if reclaim:
                TrackingNumber.objects.bulk_update(reclaim, ["status", "quarantined_until", "updated_at"])
                number_events_save(events)
                notes.append(f"took back {len(reclaim)} quarantined")
            need -= len(reclaim)
            if need:
                try:
                    options = _buy_options(pool)
                    bought = numbers_buy(count=need, target=BuyTarget(pool=pool), carrier=carrier, actor_label=actor_label,
                                         reason=f"Autoscaling pool '{pool}'", **options)
                    where = options.get("area_code") or "toll-free"
                    notes.append(f"bought {len(bought)} ({where})")
                except NumberError as exc:
                    notes.append(f"could not buy {need}: {exc}")
        else:
            excess = size - target
            covered = now - stats["first"]
            if covered < window / 2:
                return None
            idle = list(idle_pool_numbers(pool=pool, at=now)[:excess])
            if idle:
                numbers_quarantine(numbers=idle, reason=f"Autoscaling shrank pool '{pool}'", actor_label=actor_label, now=now)
                notes.append(f"quarantined {len(idle)} idle")
            if len(idle) < excess:
                notes.append(f"{excess - len(idle)} more are shown to live visitors and stay")
        new_size = pool_size(pool=pool)
        if new_size == size and not notes:
            return None
        return PoolResize.objects.create(
            pool=pool, at=now, from_size=size, to_size=new_size, peak_sessions=peak,
            reason=f"{basis}; {'; '.join(notes)}"[:500],
        )


def pools_autoscale(*, now: datetime | None = None, carrier: Carrier | None = None) -> list[PoolResize]:
    """Autoscale every enabled pool with autoscaling on. Safe to run twice (a second run finds nothing to do)."""
    resizes = []
    for pool in NumberPool.objects.filter(enabled=True, autoscale=True).order_by("pk"):
        resize = pool_autoscale(pool=pool, now=now, carrier=carrier)
        if resize is not None:
            resizes.append(resize)
    return resizes


# --- chart ---------------------------------------------------------------------------------------------------------


def pool_chart_svg(*, pool: NumberPool, hours: int = 24, now: datetime | None = None, width: int = 720, height: int = 220) -> str:
    """An inline SVG of live sessions vs pool size over the last ``hours`` (server-side, no JavaScript)."""
    now = now or timezone.now()
    since = now - timedelta(hours=hours)
    samples = list(PoolSample.objects.filter(pool=pool, at__gte=since, at__lte=now).order_by("at").values_list("at", "live_sessions", "size"))
    left, right, top, bottom = 44, 12, 14, 30
    plot_w, plot_h = width - left - right, height - top - bottom
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="pool-chart" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="Live sessions and pool size, last {hours} hours">',
        f"<title>{escape(str(pool))}: live sessions vs pool size, last {hours} hours</title>",
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="#fafafa" stroke="#ccc"/>',
    ]
    if not samples:
        parts.append(f'<text x="{width / 2:.0f}" y="{height / 2:.0f}" text-anchor="middle" fill="#666" font-size="13">'
                     "No samples yet: the pool sampling task records one a minute.</text></svg>")
        return "".join(parts)
    # Keep the SVG small: at most ~2 points per pixel column (max per bucket keeps the peaks).
    step = max(1, len(samples) // (plot_w * 2))
    if step > 1:
        bucketed = []
        for i in range(0, len(samples), step):
            chunk = samples[i:i + step]
            bucketed.append((chunk[0][0], max(c[1] for c in chunk), chunk[-1][2]))
        samples = bucketed
    y_max = max(max(s[1] for s in samples), max(s[2] for s in samples), 1)
    y_max = int(math.ceil(y_max * 1.1))
    span = (now - since).total_seconds()

    def x(at: datetime) -> float:
        return left + plot_w * (at - since).total_seconds() / span

    def y(value: int) -> float:
        return top + plot_h - plot_h * value / y_max

    for i in range(5):  # horizontal grid and y labels
        value = round(y_max * i / 4)
        parts.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y(value):.1f}" y2="{y(value):.1f}" stroke="#e5e5e5"/>')
        parts.append(f'<text x="{left - 6}" y="{y(value) + 4:.1f}" text-anchor="end" font-size="11" fill="#555">{value}</text>')
    for i in range(7):  # x labels
        at = since + timedelta(seconds=span * i / 6)
        local = timezone.localtime(at)
        parts.append(f'<text x="{x(at):.1f}" y="{height - 10}" text-anchor="middle" font-size="11" fill="#555">{local:%H:%M}</text>')
    size_points = []
    for i, (at, _, size) in enumerate(samples):
        if i:
            size_points.append(f"{x(at):.1f},{y(samples[i - 1][2]):.1f}")  # a step: size holds until it changes
        size_points.append(f"{x(at):.1f},{y(size):.1f}")
    live_points = " ".join(f"{x(at):.1f},{y(live):.1f}" for at, live, _ in samples)
    parts.append(f'<polyline class="size" fill="none" stroke="#2b6cb0" stroke-width="2" points="{" ".join(size_points)}"/>')
    parts.append(f'<polyline class="live" fill="none" stroke="#dd6b20" stroke-width="1.5" points="{live_points}"/>')
    peak = max(s[1] for s in samples)
    parts.append(
        f'<g font-size="12"><rect x="{left + 8}" y="{top + 6}" width="12" height="3" fill="#2b6cb0"/>'
        f'<text x="{left + 24}" y="{top + 11}">pool size (now {samples[-1][2]})</text>'
        f'<rect x="{left + 170}" y="{top + 6}" width="12" height="3" fill="#dd6b20"/>'
        f'<text x="{left + 186}" y="{top + 11}">live sessions (peak {peak})</text></g>'
    )
    parts.append("</svg>")
    return "".join(parts)
