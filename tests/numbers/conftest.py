"""The DNI tests count rate limits and new sessions in the cache: each test starts and ends with it empty."""

from __future__ import annotations

import pytest
from django.core.cache import cache


@pytest.fixture(autouse=True)
def _empty_cache():
    cache.clear()
    yield
    cache.clear()
