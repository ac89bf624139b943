from __future__ import annotations

from datetime import timedelta

import factory
from django.utils import timezone
from factory.django import DjangoModelFactory

from calltrack.numbers.models import NumberPool, NumberSession, PortRequest, ReceivingNumber, TrackingNumber

__all__ = ["ReceivingNumberFactory", "TrackingNumberFactory", "NumberPoolFactory", "NumberSessionFactory", "PortRequestFactory"]


class ReceivingNumberFactory(DjangoModelFactory):
    class Meta:
        model = ReceivingNumber

    # 303 (Denver) numbers in the 555-01xx fictional range are valid for phonenumbers.
    number = factory.Sequence(lambda n: f"+1303{2000000 + n:07d}")
    label = factory.Sequence(lambda n: f"Line {n}")


class TrackingNumberFactory(DjangoModelFactory):
    class Meta:
        model = TrackingNumber

    number = factory.Sequence(lambda n: f"+1415{2000000 + n:07d}")
    campaign = factory.SubFactory("tests.tracking.factories.CampaignFactory")


class NumberPoolFactory(DjangoModelFactory):
    class Meta:
        model = NumberPool

    name = factory.Sequence(lambda n: f"Pool {n}")
    campaign = factory.SubFactory("tests.tracking.factories.CampaignFactory")


class NumberSessionFactory(DjangoModelFactory):
    class Meta:
        model = NumberSession

    pool = factory.SubFactory(NumberPoolFactory)
    visitor_id = factory.Sequence(lambda n: f"v{n}")
    expires_at = factory.LazyFunction(lambda: timezone.now() + timedelta(minutes=30))


class PortRequestFactory(DjangoModelFactory):
    class Meta:
        model = PortRequest

    numbers = factory.LazyFunction(lambda: ["+14155550199"])
    loa_name = "Jane Doe"
    loa_address = "1 Main St, Springfield"
