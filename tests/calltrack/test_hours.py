from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from calltrack import hours

UTC = ZoneInfo("UTC")


def at(tz: str, *args: int) -> datetime:
    return datetime(*args, tzinfo=ZoneInfo(tz))


def test_open_inside_a_range_in_the_handlers_own_zone():
    h = {"mon": ["09:00-17:00"]}
    # 2026-11-23 is a Monday. 09:30 in Denver is 16:30 UTC.
    assert hours.is_open(h, "America/Denver", at("UTC", 2026, 11, 23, 16, 30))
    assert not hours.is_open(h, "America/Denver", at("UTC", 2026, 11, 23, 15, 30))
    assert not hours.is_open(h, "America/Denver", at("America/Denver", 2026, 11, 23, 17, 0))


def test_overnight_range_runs_into_the_next_day():
    h = {"fri": ["22:00-02:00+1"]}
    assert hours.is_open(h, "America/New_York", at("America/New_York", 2026, 11, 27, 23, 0))
    assert hours.is_open(h, "America/New_York", at("America/New_York", 2026, 11, 28, 1, 59))
    assert not hours.is_open(h, "America/New_York", at("America/New_York", 2026, 11, 28, 2, 0))


def test_sunday_overnight_wraps_to_monday_morning():
    h = {"sun": ["23:00-03:00+1"]}
    assert hours.is_open(h, "UTC", at("UTC", 2026, 11, 23, 2, 0))  # Monday 02:00


def test_wall_clock_hours_hold_across_a_dst_change():
    h = {"sun": ["09:00-10:00"]}
    # US DST ends 2026-11-01: 09:30 New York is 14:30 UTC after, 13:30 UTC the Sunday before.
    assert hours.is_open(h, "America/New_York", at("UTC", 2026, 11, 1, 14, 30))
    assert hours.is_open(h, "America/New_York", at("UTC", 2026, 10, 25, 13, 30))
    assert not hours.is_open(h, "America/New_York", at("UTC", 2026, 11, 1, 13, 30))


def test_always_open_ignores_the_schedule():
    assert hours.is_open({}, "UTC", at("UTC", 2026, 11, 23, 3, 0), always_open=True)


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"mon": ["17:00-09:00"]}, "closes before it opens"),
        ({"mon": ["09:00-09:00"]}, "closes before it opens"),
        ({"mon": ["09:00-12:00", "11:00-13:00"]}, "overlaps"),
        ({"fri": ["22:00-02:00+1"], "sat": ["01:00-05:00"]}, "overlaps"),
        ({"sun": ["22:00-04:00+1"], "mon": ["03:00-05:00"]}, "overlaps"),
        ({"mon": ["9-5"]}, "not a range"),
        ({"mon": ["25:00-26:00"]}, "not a time of day"),
        ({"funday": ["09:00-10:00"]}, "not a day"),
        ({"mon": ["09:00-17:00+1"]}, "+1 is only for"),
        (["09:00-17:00"], "must map days"),
    ],
)
def test_bad_hours_are_refused_with_the_reason(bad, message):
    with pytest.raises(hours.HoursError) as info:
        hours.validate(bad)
    assert message in str(info.value)


def test_valid_hours_are_normalized():
    assert hours.validate({"tue": "09:00 - 12:00, 13:00-17:00", "mon": ["00:00-24:00"]}) == {
        "mon": ["00:00-24:00"],
        "tue": ["09:00-12:00", "13:00-17:00"],
    }


def test_unknown_time_zone_is_refused():
    with pytest.raises(hours.HoursError, match="IANA"):
        hours.zone("Mars/Olympus")
