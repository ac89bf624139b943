from __future__ import annotations

import threading

import pytest
from django.db import connection

from calltrack.numbers.models import TrackingNumber
from calltrack.numbers.services import NumberError
from calltrack.numbers.services.lifecycle import BuyTarget, numbers_buy
from tests.tracking.factories import CampaignFactory, SourceFactory


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_buys_cannot_both_take_the_last_place_under_a_source_cap():
    campaign = CampaignFactory()
    source = SourceFactory(static_number_cap=1)
    results: list[str] = []
    barrier = threading.Barrier(2)

    def buy(area_code: str) -> None:
        try:
            barrier.wait()
            numbers_buy(count=1, target=BuyTarget(campaign=campaign, source=source), area_code=area_code)
            results.append("bought")
        except NumberError as exc:
            results.append(str(exc))
        finally:
            connection.close()

    threads = [threading.Thread(target=buy, args=(code,)) for code in ("415", "303")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r if r == "bought" else "refused" for r in results) == ["bought", "refused"]
    assert TrackingNumber.objects.filter(source=source).count() == 1
