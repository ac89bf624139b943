"""Tagging hours: which tags a call gets from when it arrives. Plain data in, plain answers out (no ORM)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from calltrack import hours as hours_rules


@dataclass(frozen=True)
class HoursTag:
    """One tagging-hours schedule as routing sees it. ``campaign_wide`` schedules win over account-wide ones."""

    name: str
    tag_key: str
    tag_value: str
    timezone: str
    hours: dict = field(default_factory=dict)
    inside: bool = True
    campaign_wide: bool = False


@dataclass(frozen=True)
class HoursTagged:
    tags: dict[str, str]
    notes: list[str]


def hours_tags(schedules: Sequence[HoursTag], at: datetime) -> HoursTagged:
    """The tags the schedules give a call arriving at ``at``, with one note per tag saying why.

    Account-wide schedules apply first and a campaign's own then overwrite the same tag, so a campaign can
    say "lunch" where the account says "open". Among schedules of one level, the later in the list wins.
    """
    tags: dict[str, str] = {}
    notes: dict[str, str] = {}
    for schedule in sorted(schedules, key=lambda s: s.campaign_wide):
        open_now = hours_rules.is_open(schedule.hours, schedule.timezone, at)
        if open_now != schedule.inside:
            continue
        local = at.astimezone(hours_rules.zone(schedule.timezone))
        tags[schedule.tag_key] = schedule.tag_value
        where = "during" if schedule.inside else "outside"
        level = "campaign" if schedule.campaign_wide else "account"
        notes[schedule.tag_key] = (
            f"{schedule.tag_key}={schedule.tag_value}: arrived {local:%a %H:%M} {schedule.timezone}, {where} "
            f"{level} tagging hours '{schedule.name}'"
        )
    return HoursTagged(tags=tags, notes=list(notes.values()))
