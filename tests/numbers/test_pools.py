from __future__ import annotations

import io
import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.test import override_settings
from django_q.models import Schedule
from lxml import etree

from calltrack.numbers.models import NumberStatus, PoolResize, PoolSample, TrackingNumber
from calltrack.numbers.services.pools import (
    pool_autoscale,
    pool_chart_svg,
    pool_samples_record,
    pool_target_size,
    pools_autoscale,
)
from calltrack.schedules import SCHEDULES
from tests.numbers.factories import NumberPoolFactory, NumberSessionFactory, TrackingNumberFactory

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)


SERIAL = itertools.count(1000)


def pool_with(count: int, **kwargs):
    pool = NumberPoolFactory(autoscale=True, **kwargs)
    numbers = [TrackingNumberFactory(number=f"+1415230{next(SERIAL):04d}", pool=pool, kind="pool", campaign=pool.campaign) for _ in range(count)]
    return pool, numbers


def samples(pool, lives: list[int], *, size: int, end=NOW, minutes=10):
    for i, live in enumerate(lives):
        PoolSample.objects.create(pool=pool, at=end - timedelta(minutes=minutes * (len(lives) - 1 - i)), live_sessions=live, size=size)


def test_sampling_counts_live_sessions_and_active_numbers_per_pool():
    pool, numbers = pool_with(3)
    numbers[2].status = NumberStatus.QUARANTINED
    numbers[2].save()
    NumberSessionFactory(pool=pool, tracking_number=numbers[0], started_at=NOW - timedelta(minutes=5), expires_at=NOW + timedelta(minutes=5))
    NumberSessionFactory(pool=pool, tracking_number=numbers[1], started_at=NOW - timedelta(hours=2), expires_at=NOW - timedelta(minutes=1))
    empty = NumberPoolFactory()
    pool_samples_record(at=NOW)
    sample = PoolSample.objects.get(pool=pool)
    assert (sample.live_sessions, sample.size, sample.at) == (1, 2, NOW)
    assert PoolSample.objects.get(pool=empty).size == 0


def test_target_is_peak_times_headroom_within_min_and_max():
    pool = NumberPoolFactory(autoscale_min=5, autoscale_max=20, autoscale_headroom=Decimal("0.20"))
    assert pool_target_size(pool=pool, peak=10) == 12
    assert pool_target_size(pool=pool, peak=1) == 5
    assert pool_target_size(pool=pool, peak=100) == 20


def test_autoscaling_up_buys_numbers_in_the_pools_area_code_and_logs_why():
    pool, _ = pool_with(5, autoscale_min=2, autoscale_max=50)
    samples(pool, [3, 9, 4], size=5)
    resize = pool_autoscale(pool=pool, now=NOW)
    assert (resize.from_size, resize.to_size, resize.peak_sessions) == (5, 11, 9)
    assert "peak 9 live sessions" in resize.reason and "bought 6 (415)" in resize.reason
    assert TrackingNumber.objects.filter(pool=pool, status="active", area_code="415").count() == 11
    assert pool_autoscale(pool=pool, now=NOW) is None  # at target: nothing to do, nothing logged


def test_autoscaling_up_first_takes_back_its_own_quarantined_numbers():
    pool, numbers = pool_with(4, autoscale_min=1, autoscale_max=50)
    numbers[0].status = NumberStatus.QUARANTINED
    numbers[0].save()
    samples(pool, [4], size=3)
    resize = pool_autoscale(pool=pool, now=NOW)
    assert "took back 1 quarantined" in resize.reason and "bought 1" in resize.reason
    numbers[0].refresh_from_db()
    assert numbers[0].status == NumberStatus.ACTIVE


def test_autoscaling_down_quarantines_idle_numbers_only_with_enough_history():
    pool, numbers = pool_with(10, autoscale_min=2, autoscale_max=50)
    NumberSessionFactory(pool=pool, tracking_number=numbers[0], started_at=NOW - timedelta(minutes=1), expires_at=NOW + timedelta(minutes=20))
    with override_settings(CALLTRACK_AUTOSCALE_WINDOW_MINUTES=60):
        samples(pool, [1], size=10)
        assert pool_autoscale(pool=pool, now=NOW) is None  # one sample is not half a window
        samples(pool, [1, 1, 1, 1], size=10, end=NOW - timedelta(minutes=10))
        resize = pool_autoscale(pool=pool, now=NOW)
    assert (resize.from_size, resize.to_size) == (10, 2)
    assert "quarantined 8 idle" in resize.reason
    numbers[0].refresh_from_db()
    assert numbers[0].status == NumberStatus.ACTIVE  # a live visitor's number stays
    quarantined = TrackingNumber.objects.filter(pool=pool, status=NumberStatus.QUARANTINED)
    assert quarantined.count() == 8 and all(n.campaign_id == pool.campaign_id for n in quarantined)


def test_pools_without_autoscaling_or_samples_are_left_alone():
    pool, _ = pool_with(3)
    pool.autoscale = False
    pool.save()
    samples(pool, [50], size=3)
    pool_with(3)  # autoscaling on, no samples
    assert pools_autoscale(now=NOW) == []
    assert not PoolResize.objects.exists()


def test_the_chart_is_valid_svg_with_both_series():
    pool, _ = pool_with(2)
    samples(pool, [1, 4, 2], size=5, end=NOW)
    svg = pool_chart_svg(pool=pool, now=NOW, hours=1)
    doc = etree.fromstring(svg.encode())
    ns = {"s": "http://www.w3.org/2000/svg"}
    assert doc.find("s:polyline[@class='size']", ns) is not None
    assert doc.find("s:polyline[@class='live']", ns) is not None
    assert "live sessions (peak 4)" in svg and "pool size (now 5)" in svg
    assert "No samples yet" in pool_chart_svg(pool=NumberPoolFactory(), now=NOW)


def test_schedules_command_is_idempotent():
    call_command("calltrack_schedules", stdout=io.StringIO())
    call_command("calltrack_schedules", stdout=io.StringIO())
    funcs = set(Schedule.objects.values_list("func", flat=True))
    assert funcs == {
        "calltrack.numbers.tasks.pool_samples_record_task", "calltrack.numbers.tasks.pools_autoscale_task",
        "calltrack.numbers.tasks.numbers_release_quarantined_task", "calltrack.numbers.tasks.port_requests_sync_task",
        "tracking.tasks.conversions_expire", "calltrack.numbers.tasks.recordings_expire_task",
        "routing.tasks.attempt_slots_release_stale_task", "routing.tasks.cap_counters_fold_task",
        "tracking.tasks.report_rollups_refresh_task", "calltrack.tasks.rate_counters_purge_task",
        "calltrack.alerts_check.alerts_check_task", "tracking.tasks.alerts_digest_task",
        "tracking.tasks.conversion_uploads_due_task", "tracking.tasks.webhook_deliveries_requeue_task",
        "calltrack.numbers.tasks.text_forwards_requeue_task",
    }
    assert Schedule.objects.count() == len(SCHEDULES)
    assert Schedule.objects.get(func="calltrack.numbers.tasks.pool_samples_record_task").minutes == 1
    assert Schedule.objects.get(func="routing.tasks.attempt_slots_release_stale_task").minutes == 5


def test_the_stale_slot_schedule_releases_expired_slots_only():
    from datetime import timedelta

    from django.utils import timezone
    from django.utils.module_loading import import_string

    from calltrack.schedules import SCHEDULES
    from tests.tracking.factories import CallAttemptFactory

    now = timezone.now()
    stale = CallAttemptFactory(holds_slot=True, slot_expires_at=now - timedelta(minutes=1))
    live = CallAttemptFactory(holds_slot=True, slot_expires_at=now + timedelta(minutes=5))
    path = next(func for name, func, *_ in SCHEDULES if func.endswith("attempt_slots_release_stale_task"))
    assert import_string(path)() == "1 stale slots released"
    stale.refresh_from_db()
    live.refresh_from_db()
    assert (stale.holds_slot, live.holds_slot) == (False, True)
    assert import_string(path)() == "0 stale slots released"  # safe to run twice


def test_tasks_run_end_to_end():
    from calltrack.numbers import tasks

    pool_with(2)
    assert tasks.pool_samples_record_task() == "1 pool samples"
    assert tasks.pools_autoscale_task().endswith(": 2 -> 5")  # min size 5
    assert tasks.numbers_release_quarantined_task() == "0 released, 0 failed"
    assert "0 completed" in tasks.port_requests_sync_task()
