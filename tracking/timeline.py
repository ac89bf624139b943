"""A call's routing timeline for the admin: each step, each attempt, and why handlers were skipped."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _

from tracking.call_state import CallState, NoAnswerStop
from tracking.models import Call
from tracking.models.campaigns import RoutingStrategy

SKIP_LABELS = {
    "closed": "closed", "capped": "capped", "tag_mismatch": "tag mismatch", "disabled": "disabled", "no_number": "no number",
    "ivr_choice": "IVR choice", "lookup_table": "lookup table", "destination": "landing page's destination",
    "attempt_rule": "attempt rule", "duplicate": "duplicate caller",
    "answered_before": "answered before its turn", "caller_hung_up": "caller hung up",
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
    rows = [Row(e.at, _event_label(e.kind), e.message) for e in call.events.all()]
    for a in call.attempts.select_related("handler").all():
        who = a.handler.name if a.handler else a.get_kind_display()
        rows.append(Row(a.started_at, f"attempt {a.sequence}", f"{who} at {a.number_dialed}", a.get_status_display(), a.duration))
    # Within one second, what was decided comes before the legs it dialled ("routed" then "attempt 1"): the events
    # are stamped when the request's writes are made, a moment after the attempt's start.
    rows.sort(key=lambda r: (r.at is None, r.at.replace(microsecond=0) if r.at else None, r.kind.startswith("attempt ")))
    return rows


def _event_label(kind: str) -> str:
    """"call.started" -> "started", "ivr.timeout" -> "IVR timeout": words, not codes."""
    words = kind.removeprefix("call.").replace(".", " ").replace("_", " ")
    return words.replace("ivr", "IVR").replace("dni", "DNI")


def _strategy_label(code: str) -> str:
    try:
        return RoutingStrategy(code).label
    except ValueError:
        return code.replace("_", " ")


def call_skips(call: Call, state: CallState | None = None) -> list[dict[str, Any]]:
    return [
        {**s.to_json(), "label": SKIP_LABELS.get(s.reason, s.reason)}
        for s in (state or call.state).skipped
    ]


def call_timeline(call: Call) -> SafeString:
    """The timeline as HTML (a template; everything in it is escaped)."""
    state = call.state
    return render_to_string(
        "tracking/call_timeline.html",
        {
            "rows": call_timeline_rows(call),
            "call_day": timezone.localtime(call.started_at).date() if call.started_at else None,
            "skips": call_skips(call, state),
            "strategy": _strategy_label(state.strategy),
            "steps": [[state.option_name(h) for h in step] for step in state.steps],
            "sticky": state.sticky_handler,
            "tail": state.tail or [],
        },
    )


# --- The route in plain words (the call page's summary) --------------------------------------------------

STEP_LABELS = {
    "no_answer_forward": "the no-answer forward", "number_agent": "the tracking number's agent",
    "caller_agent": "the caller's agent", "forwarding_number": "the tracking number's forwarding number",
    "company_phone": "the campaign's company phone", "failsafe": "the fail-safe number", "voicemail": "voicemail",
}

_ATTEMPT_OUTCOMES = {
    "answered": "answered", "completed": "answered", "busy": "was busy", "failed": "could not be reached",
    "canceled": "was not reached (the caller hung up first)", "dialing": "is ringing",
}


def _no_answer_phrase(stop: NoAnswerStop, state: CallState) -> str:
    if stop.kind == "queue":
        queue = state.queue
        waited = f" for {queue.seconds} s" if queue is not None and queue.result else ""
        return f"no answer: the caller waited in the queue{waited}"
    return f"no answer: the caller heard the menu '{stop.name}'"


def _attempt_phrase(attempt, tail_labels: dict[str, str]) -> str:
    if attempt.kind == "fallback" and attempt.handler_id:
        # The fallback chain reached a handler's line: which step, the number, and (once answered) whether that
        # handler was credited with the call (the campaign's "credit fallback answers to handlers").
        answered = attempt.status in ("answered", "completed")
        credit = (", credited to them" if attempt.counted else ", not credited to them") if answered else ""
        step = tail_labels.get(attempt.number_dialed) or "the fallback chain"
        who = f"{step} {attempt.number_dialed} (fallback chain; {attempt.handler.name}'s line{credit})"
    elif attempt.handler_id:
        who = attempt.handler.name
    elif attempt.kind == "failsafe":
        who = STEP_LABELS["failsafe"]
    elif attempt.kind == "voicemail":
        return "the caller left a voicemail" if attempt.duration else "the call went to voicemail"
    else:
        who = tail_labels.get(attempt.number_dialed) or attempt.get_kind_display().lower()
    if attempt.status == "no_answer":
        rang = int((attempt.ended_at - attempt.started_at).total_seconds()) if attempt.ended_at else 0
        return f"{who} did not answer in {rang} s" if rang else f"{who} did not answer"
    outcome = _ATTEMPT_OUTCOMES.get(attempt.status, attempt.get_status_display().lower())
    if outcome == "answered" and attempt.duration:
        return f"{who} answered (talked {attempt.duration // 60}:{attempt.duration % 60:02d})"
    return f"{who} {outcome}"


SPAM_OUTCOMES = {
    "reject": "rejected as spam", "not_payable": "routed, but nobody is paid for it", "tag": "tagged spam=yes and routed",
    "challenge": "asked to press 1 to be connected", "passed": "asked to press 1, and the caller did",
}


def spam_story(spam) -> str:
    """The call's spam score in words: "spam score 120 (the caller ID's STIR/SHAKEN verification failed; ...):
    rejected as spam"."""
    why = f" ({'; '.join(spam.reasons)})" if spam.reasons else " (nothing suspicious)"
    outcome = SPAM_OUTCOMES.get(spam.action, "") if spam.is_spam else "below the campaign's threshold"
    return f"spam score {spam.score}{why}" + (f": {outcome}" if outcome else "")


def call_route_story(call: Call) -> list[str]:
    """The route the call took, as sentences an operator reads at a glance (one query for the attempts).

    Handlers the plan left out come first with why ("Denver was closed (closed at Sun 07:00 America/Denver)"),
    then each number dialled and what happened, then the fail-safe or the rejection.
    """
    state = call.state
    parts: list[str] = []
    if state.spam is not None:
        parts.append(spam_story(state.spam))
    if call.status == "rejected":
        parts.append(f"Rejected: {call.reject_reason}" if call.reject_reason else "Rejected before routing")
    for skip in call_skips(call, state):
        detail = f" ({skip['detail']})" if skip.get("detail") else ""
        verb = {"closed": "was closed", "capped": "was at its cap", "tag_mismatch": "did not match the call's tags",
                "disabled": "is disabled", "no_number": "has no receiving number", "ivr_choice": "was not chosen",
                "lookup_table": "was not chosen", "destination": "was not chosen", "duplicate": "had this caller already"}.get(skip.get("reason", ""), skip["label"])
        parts.append(f"{skip.get('name', _('a handler'))} {verb}{detail}")
    tail_labels = {t.number: STEP_LABELS.get(t.step, t.label) for t in state.tail or () if t.number}
    # Where a line's no-answer routing took the caller other than a dial (the queue, a menu), after the legs it followed.
    stops: dict[int, list[str]] = {}
    for stop in state.no_answer:
        stops.setdefault(stop.after, []).append(_no_answer_phrase(stop, state))
    attempts = list(call.attempts.select_related("handler").order_by("sequence", "started_at"))
    for i, attempt in enumerate(attempts):
        parts.append(_attempt_phrase(attempt, tail_labels))
        if i + 1 == len(attempts) or attempts[i + 1].sequence != attempt.sequence:
            parts.extend(stops.pop(attempt.sequence, []))
    parts.extend(phrase for after in sorted(stops) for phrase in stops[after])
    if call.used_failsafe and not any(p.startswith(STEP_LABELS["failsafe"]) for p in parts):
        parts.append(f"{STEP_LABELS['failsafe']} took the call" + (f" ({call.failsafe_reason})" if call.failsafe_reason else ""))
    if not parts:
        parts.append("No routing recorded yet" if not call.is_final else "No number was dialled")
    return [p[0].upper() + p[1:] for p in parts]
