"""The DNI tests count rate limits and new sessions in the cache: each test starts and ends with it empty; the
browser tests share one Chromium page fixture."""

from __future__ import annotations

import pytest
from django.core.cache import cache


@pytest.fixture(autouse=True)
def _empty_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def page(browser):
    """A fresh Chromium page (the tag's browser tests), closed with its context."""
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()
