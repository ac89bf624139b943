"""Edits from the admin and the API save only the fields they change: a hot path's write that commits
between an edit's load and its save survives (PostgreSQL, real threads and connections)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from lxml import html

from calltrack.model_writes import instance_apply_and_save  # noqa
from calltrack.numbers.dni.services import Visit, number_assign
from calltrack.numbers.models import NumberPool, NumberSession, NumberStatus, OverflowPolicy, TrackingNumber
from calltrack.numbers.services import records
from calltrack.numbers.services.lifecycle import BuyTarget, numbers_buy, numbers_release, numbers_release_quarantined
from routing.store.voice import round_robin_next
from tests.numbers.factories import NumberPoolFactory, TrackingNumberFactory
from tests.tracking.factories import CampaignFactory, UserFactory
from tracking.models import Campaign
from tracking.services.campaigns import campaign_update

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def interleave(load: Callable[[], object], hot: Callable[[], object], save: Callable[[object], object]) -> None:
    """Thread A loads a row (an edit form or a serializer); thread B runs a hot path that commits; then A saves.
    Each thread has its own database connection; the first error of either is raised."""
    loaded, committed = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def editor() -> None:
        try:
            obj = load()
            loaded.set()
            assert committed.wait(30), "the hot path did not commit"
            save(obj)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
            loaded.set()
        finally:
            connection.close()

    def hot_path() -> None:
        try:
            assert loaded.wait(30), "the edit did not load"
            hot()
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            committed.set()
            connection.close()

    threads = [threading.Thread(target=editor), threading.Thread(target=hot_path)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    if errors:
        raise errors[0]


def pool_of(size: int, **kwargs) -> NumberPool:
    pool = NumberPoolFactory(**kwargs)
    for i in range(size):
        TrackingNumberFactory(number=f"+1415{3100000 + i:07d}", kind="pool", pool=pool, campaign=pool.campaign, label=f"n{i}")
    return pool


def test_a_label_edit_loaded_before_a_dni_assignment_committed_keeps_the_visitors_hold():
    pool = pool_of(1)
    number = pool.numbers.get()
    interleave(
        load=lambda: TrackingNumber.objects.get(pk=number.pk),
        hot=lambda: number_assign(pool=NumberPool.objects.get(pk=pool.pk), visit=Visit(visitor_id="visitor-1")),
        save=lambda tn: records.tracking_number_update(tracking_number=tn, fields={"label": "Billboard"}, actor=UserFactory()),
    )
    session = NumberSession.objects.get(visitor_id="visitor-1")
    number.refresh_from_db()
    assert number.label == "Billboard"
    assert number.current_session_id == session.pk
    assert number.last_assigned_at is not None


def _form_data(client, url: str) -> dict[str, str]:
    """The change form's current values, as the browser would post them (inline management forms included)."""
    doc = html.fromstring(client.get(url).content)
    form = doc.forms[-1] if len(doc.forms) > 1 else doc.forms[0]
    return dict(form.form_values())


def _updates_of(queries, table: str) -> list[str]:
    return [q["sql"] for q in queries if q["sql"].startswith(f'UPDATE "{table}"')]


@pytest.mark.parametrize("model, hot", [
    ("trackingnumber", ["current_session_id", "last_assigned_at"]),
    ("numberpool", ["overflow_count"]),
    ("campaign", ["rr_position"]),
])
def test_an_admin_change_form_writes_only_what_the_operator_changed_never_a_hot_path_column(admin_client, model, hot):
    pool = pool_of(1)
    obj = {"trackingnumber": pool.numbers.get(), "numberpool": pool, "campaign": pool.campaign}[model]
    app = "tracking" if model == "campaign" else "numbers"
    url = f"/admin/{app}/{model}/{obj.pk}/change/"
    data = _form_data(admin_client, url)
    data["label" if model == "trackingnumber" else "name"] = "Edited in the admin"
    with CaptureQueriesContext(connection) as queries:
        response = admin_client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:2000]
    updates = _updates_of(queries, obj._meta.db_table)
    assert updates and all(f'"{column}"' not in sql.split(" WHERE ")[0] for sql in updates for column in hot)
    obj.refresh_from_db()
    assert "Edited in the admin" in (obj.label if model == "trackingnumber" else obj.name)


def test_many_label_edits_racing_many_assignments_lose_no_hold():
    pool = pool_of(12, overflow_policy=OverflowPolicy.REUSE_OLDEST)
    numbers = list(pool.numbers.order_by("pk"))
    barrier = threading.Barrier(24)
    errors: list[BaseException] = []

    def edit(i: int) -> None:
        try:
            tn = TrackingNumber.objects.get(pk=numbers[i].pk)  # loaded before the others commit
            barrier.wait(30)
            records.tracking_number_update(tracking_number=tn, fields={"label": f"edited {i}"})
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            connection.close()

    def assign(i: int) -> None:
        try:
            barrier.wait(30)
            number_assign(pool=NumberPool.objects.get(pk=pool.pk), visit=Visit(visitor_id=f"racer-{i}"))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=edit, args=(i,)) for i in range(12)] + [threading.Thread(target=assign, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    # Every number holds the newest session opened on it, and carries its edit.
    for tn in TrackingNumber.objects.filter(pool=pool):
        newest = NumberSession.objects.filter(tracking_number=tn).order_by("-started_at", "-pk").values_list("pk", flat=True).first()
        assert tn.current_session_id == newest
        assert tn.label.startswith("edited ")
    assert NumberSession.objects.count() == 12


def test_a_pool_edit_loaded_before_an_overflow_keeps_the_overflow_count():
    pool = pool_of(1, overflow_policy=OverflowPolicy.FALLBACK, fallback_number="+18005550100")
    number_assign(pool=pool, visit=Visit(visitor_id="first"))
    interleave(
        load=lambda: NumberPool.objects.get(pk=pool.pk),
        hot=lambda: number_assign(pool=NumberPool.objects.get(pk=pool.pk), visit=Visit(visitor_id="second")),
        save=lambda p: records.pool_update(pool=p, fields={"name": "Renamed"}),
    )
    pool.refresh_from_db()
    assert (pool.name, pool.overflow_count) == ("Renamed", 1)


def test_a_campaign_edit_loaded_before_round_robin_moves_keeps_the_cursor_and_bumps_the_version():
    campaign = CampaignFactory()
    version = campaign.config_version
    interleave(
        load=lambda: Campaign.objects.get(pk=campaign.pk),
        hot=lambda: [round_robin_next(campaign.pk) for _ in range(3)],
        save=lambda c: campaign_update(campaign=c, fields={"name": "Renamed"}),
    )
    campaign.refresh_from_db()
    assert (campaign.name, campaign.rr_position, campaign.config_version) == ("Renamed", 3, version + 1)


def test_a_label_edit_loaded_before_the_quarantine_ended_keeps_the_number_released():
    pool = NumberPoolFactory()
    (number,) = numbers_buy(count=1, target=BuyTarget(pool=pool), area_code="415")
    numbers_release(numbers=[number.number], reason="campaign over")
    interleave(
        load=lambda: TrackingNumber.objects.get(pk=number.pk),
        hot=lambda: numbers_release_quarantined(now=timezone.now() + timedelta(days=365)),
        save=lambda tn: records.tracking_number_update(tracking_number=tn, fields={"label": "Old billboard"}),
    )
    number.refresh_from_db()
    assert (number.label, number.status, number.pool_id) == ("Old billboard", NumberStatus.RELEASED, None)


def test_an_edit_naming_a_hot_path_column_is_refused():
    campaign = CampaignFactory()
    with pytest.raises(ValueError, match="rr_position"):
        instance_apply_and_save(instance=campaign, fields={"rr_position": 7})
