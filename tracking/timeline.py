"""A call's routing timeline for the admin: each step, each attempt, and why handlers were skipped."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.template.loader import render_to_string
from django.utils.safestring import SafeString

from tracking.models import Call

SKIP_LABELS = {
    "closed": "closed", "capped": "capped", "tag_mismatch": "tag mismatch", "disabled": "disabled", "no_number": "no number",
    "ivr_choice": "IVR choice", "attempt_rule": "attempt rule",
}


@dataclass(frozen=True)
class Row:
    at: datetime | None
    kind: str
    text: str
    outcome: str = ""
    duration: int | None = None


def call_timeline_rows(call: Call) -> list[Row]:
    """Events and attempts of ``call`` merged in time order (two queries)."""
    rows = [Row(e.at, e.kind, e.message) for e in call.events.all()]
    for a in call.attempts.select_related("handler").all():
        who = a.handler.name if a.handler else a.get_kind_display()
        rows.append(Row(a.started_at, f"attempt {a.sequence}", f"{who} at {a.number_dialed}", a.get_status_display(), a.duration))
    rows.sort(key=lambda r: (r.at is None, r.at))
    return rows


def call_skips(call: Call) -> list[dict[str, Any]]:
    return [
        {**s, "label": SKIP_LABELS.get(s.get("reason", ""), s.get("reason", ""))}
        for s in (call.decision or {}).get("skipped", [])
    ]


def call_timeline(call: Call) -> SafeString:
    """The timeline as HTML (a template; everything in it is escaped)."""
    decision = call.decision or {}
    return render_to_string(
        "tracking/call_timeline.html",
        {
            "rows": call_timeline_rows(call),
            "skips": call_skips(call),
            "strategy": decision.get("strategy", ""),
            "steps": decision.get("steps", []),
            "options": decision.get("options", {}),
            "sticky": decision.get("sticky_handler"),
            "tail": decision.get("tail", []),
        },
    )
