"""Writing the assigned number like the page wrote its own; area code states; rate settings."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from calltrack import ratelimit
from calltrack.numbers.dni import geo


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("(800) 555-0199", "(415) 200-0001"),
        ("800.555.0199", "415.200.0001"),
        ("1-800-555-0199", "1-415-200-0001"),
        ("+1 800 555 0199", "+1 415 200 0001"),
        ("+18005550199", "+14152000001"),
        ("8005550199", "4152000001"),
        ("555-0199", "(415) 200-0001"),  # digits do not line up: national format
    ],
)
def test_the_new_number_keeps_the_pages_formatting(template, expected):
    assert geo.format_like(template, "+14152000001") == expected


def test_uk_numbers_keep_their_trunk_zero():
    assert geo.format_like("020 7946 0018", "+442079460999") == "020 7946 0999"


def test_area_codes_know_their_state():
    assert geo.nanp_state("303") == "Colorado"
    assert {"303", "720", "719", "970"} <= geo.nanp_area_codes_in_state("Colorado")
    assert "415" not in geo.nanp_area_codes_in_state("Colorado")
    assert geo.nanp_area_codes_in_state("") == frozenset()


@pytest.mark.parametrize(
    ("text", "limit", "period"),
    [("120/minute", 120, 60), ("10/s", 10, 1), ("5 / hours", 5, 3600), ("1000/day", 1000, 86400), ("30/min", 30, 60)],
)
def test_rates_read_like_their_settings(text, limit, period):
    rate = ratelimit.parse_rate(text)
    assert (rate.limit, rate.period) == (limit, period)


@pytest.mark.parametrize("text", ["", "0", "off", "0/minute"])
def test_empty_or_zero_rates_mean_no_limit(text):
    assert ratelimit.parse_rate(text) is None


def test_a_bad_rate_names_the_setting():
    with pytest.raises(ImproperlyConfigured, match="CALLTRACK_DNI_RATE_LIMIT_IP='lots' is not a rate"):
        ratelimit.parse_rate("lots", setting="CALLTRACK_DNI_RATE_LIMIT_IP")
    with pytest.raises(ImproperlyConfigured):
        ratelimit.parse_rate("10/fortnight")


def test_counters_refuse_past_the_limit_and_start_again_next_window():
    from django.core.cache import cache

    cache.clear()
    rate = ratelimit.parse_rate("2/minute")
    t = 60 * 16_000 + 20.0  # 20 s into a minute
    verdicts = [ratelimit.hit(scope="t", key="k", rate=rate, now=t) for _ in range(3)]
    assert [v.allowed for v in verdicts] == [True, True, False]
    assert verdicts[2].retry_after == 40
    assert ratelimit.hit(scope="t", key="k", rate=rate, now=t + 60).allowed
    assert ratelimit.hit(scope="t", key="other", rate=rate, now=t).allowed


class _CountingCache:
    """The real cache, counting the operations a hit sends (each is a round trip with Redis)."""

    def __init__(self, real, *, lose_race_once: bool = False) -> None:
        self.real, self.calls, self.lose_race_once = real, [], lose_race_once

    def __getattr__(self, name):
        method = getattr(self.real, name)

        def counted(*args, **kwargs):
            self.calls.append(name)
            if name == "add" and self.lose_race_once:
                # Another process creates the counter between our incr() and add().
                self.lose_race_once = False
                self.real.set(args[0], 1, timeout=kwargs.get("timeout"))
                return False
            return method(*args, **kwargs)

        return counted


def test_a_counted_request_costs_one_cache_operation_once_the_windows_counter_exists(monkeypatch):
    from django.core.cache import cache

    cache.clear()
    counting = _CountingCache(cache)
    monkeypatch.setattr(ratelimit, "cache", counting)
    rate = ratelimit.parse_rate("5/minute")
    t = 60 * 16_001 + 1.0

    assert ratelimit.hit(scope="t", key="k", rate=rate, now=t).allowed
    assert counting.calls == ["incr", "add"]  # the window's first request creates the counter
    counting.calls.clear()
    assert ratelimit.hit(scope="t", key="k", rate=rate, now=t).allowed
    assert counting.calls == ["incr"]


def test_a_counter_created_by_a_concurrent_request_counts_both(monkeypatch):
    from django.core.cache import cache

    cache.clear()
    monkeypatch.setattr(ratelimit, "cache", _CountingCache(cache, lose_race_once=True))
    rate = ratelimit.parse_rate("2/minute")
    t = 60 * 16_002 + 1.0

    assert ratelimit.hit(scope="t", key="k", rate=rate, now=t).allowed  # the other request's 1, then ours: 2
    assert not ratelimit.hit(scope="t", key="k", rate=rate, now=t).allowed  # 3 > 2
