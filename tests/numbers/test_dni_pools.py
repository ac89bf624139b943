"""The DNI endpoints read a pool as a frozen settings value with every field it needs, never a half-built model."""

from __future__ import annotations

import dataclasses

import pytest

from calltrack.numbers.dni.pools import POOL_FIELDS, PoolSettings, pool_settings
from calltrack.numbers.models import NumberPool
from tests.numbers.factories import NumberPoolFactory

pytestmark = pytest.mark.django_db


def test_pool_settings_hold_every_field_as_the_orm_reads_it():
    pool = NumberPoolFactory(key="acme", match_area_code=True, session_lifetime=900, overflow_policy="fallback",
                             fallback_number="+14155550100", allowed_origins="https://www.acme.example/\nhttps://shop.acme.example")
    settings = pool_settings("acme")
    assert isinstance(settings, PoolSettings)
    assert dataclasses.asdict(settings) == NumberPool.objects.values(*POOL_FIELDS).get(pk=pool.pk)
    assert settings.pk == pool.pk and settings.match_area_code is True
    assert settings.origins == pool.origins == ["https://www.acme.example", "https://shop.acme.example"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.session_lifetime = 1  # type: ignore[misc]


def test_a_disabled_or_unknown_pool_has_no_settings():
    NumberPoolFactory(key="off", enabled=False)
    assert pool_settings("off") is None and pool_settings("nope") is None


def test_every_settings_field_is_a_column_of_the_pool():
    columns = {f.attname for f in NumberPool._meta.concrete_fields} | {"id"}
    assert set(POOL_FIELDS) <= columns
