"""The pool admin shows each pool's size, numbers in use now and overflow count."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from calltrack.numbers.dni.services import Visit, number_assign
from calltrack.numbers.models import OverflowPolicy
from tests.numbers.factories import NumberPoolFactory, TrackingNumberFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def busy_pool():
    pool = NumberPoolFactory(name="Main site", overflow_policy=OverflowPolicy.FALLBACK, fallback_number="+18005550100")
    for n in ("+14152000001", "+14152000002", "+14152000003"):
        TrackingNumberFactory(number=n, kind="pool", pool=pool, campaign=pool.campaign)
    for i in range(4):  # three take a number, the fourth overflows
        number_assign(pool=pool, visit=Visit(visitor_id=f"visitor-{i:03d}"))
    return pool


def cells(html: str) -> list[str]:
    return [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>", html, re.S)]


def test_pool_list_shows_size_in_use_and_overflows(admin_client, busy_pool):
    html = admin_client.get(reverse("admin:numbers_numberpool_changelist")).content.decode()
    row = cells(html)
    # ... number_type, size, in use now, overflow count ...
    assert ["3", "3", "1"] == row[row.index("Match the destination (toll-free for toll-free, same area code for local)") + 1:][:3]


def test_pool_page_shows_the_same_figures_read_only(admin_client, busy_pool):
    html = admin_client.get(reverse("admin:numbers_numberpool_change", args=[busy_pool.pk])).content.decode()
    text = " ".join(re.sub(r"<[^>]+>", " ", html).split())  # the page as read, without the theme's markup
    for label, value in (("numbers", "3"), ("in use now", "3"), ("Overflow count", "1")):
        assert re.search(rf"\b{label}:? {value}\b", text, re.I), label
