"""The dashboard's spam panel (issue 28): for a period and a scope, how many calls were scored, how many reached
their campaign's threshold, what was done about them, the reasons that fired most and the numbers that called most.

Two statements over the period's scored calls (the ``started_at`` range of the scoped calls, through a partial
index): the marks grouped (spam or not, the action, the reasons' list; summed here) and the top callers (GROUP BY the
caller's number). What was done and why lives in the call's routing decision, which collaborators do not see
(``calltrack.scoping.HIDDEN_CALL_FIELDS``): for them the panel has the counts and the callers only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from django.db.models import Count, Q
from django.db.models.fields.json import KT

from calltrack import reports
from calltrack.scoping import Scope, hidden_call_fields
from tracking.models import Call
from tracking.spam_rules import DEFAULT_WEIGHTS

#: The actions, as the call log's spam filter names them: (filter value, label, what the call's spam mark says).
ACTIONS: tuple[tuple[str, str, Q], ...] = (
    ("reject", "Rejected", Q(**{Call.STATE_SPAM_ACTION: "reject"})),
    ("challenge", "Challenged", Q(**{f"{Call.STATE_SPAM_ACTION}__in": ["challenge", "passed"]})),
    ("passed", "… pressed 1 (connected)", Q(**{Call.STATE_SPAM_ACTION: "passed"})),
    ("failed", "… did not (hung up)", Q(**{Call.STATE_SPAM_ACTION: "challenge"})),
    ("not_payable", "Routed, not payable", Q(**{Call.STATE_SPAM_ACTION: "not_payable"})),
    ("tag", "Only tagged", Q(**{Call.STATE_SPAM_ACTION: "tag"})),
)

#: Each reason's short name on the panel.
REASON_LABELS = {
    "attestation_failed": "STIR/SHAKEN failed",
    "attestation_c": "Attestation C only",
    "attestation_none": "Not verified",
    "caller_name": "Spam caller name",
    "invalid_number": "Impossible number",
    "anonymous": "Anonymous caller",
    "blocked": "Block list",
    "repeat_dialer": "Repeat dialer",
    "unpublished_number": "Never-published number",
    "line_type": "Line type",
}
TOP = 5


def reason_q(code: str) -> Q:
    """Calls whose spam mark lists ``code`` among its reasons. The codes are a JSON list on the call's decision;
    its text holds ``"code"`` with the quotes, so one code never matches another that starts like it."""
    return Q(**{f"{Call.STATE_SPAM_CODES}__icontains": f'"{code}"'})


@dataclass
class SpamFigures:
    scored: int = 0
    spam: int = 0
    detail: bool = True  # actions and reasons (from the routing decision): not for collaborators
    actions: list[tuple[str, str, int]] = field(default_factory=list)  # (filter value, label, calls)
    reasons: list[tuple[str, str, int]] = field(default_factory=list)  # (code, label, calls), most first, none at 0
    callers: list[tuple[str, int]] = field(default_factory=list)  # (caller number, spam calls), most first


def spam_figures(*, scope: Scope, period: reports.Period) -> SpamFigures:
    """The period's spam figures for ``scope`` (test calls left out, as in every figure)."""
    # Only the scored calls (the tag "spam" is on every call a campaign scored): the partial index on their start
    # (tracking migration 0031, call_scored_started) reads them without the period's other calls.
    calls = reports.scoped_calls(scope).filter(started_at__gte=period.start, started_at__lt=period.end, tags__has_key="spam")
    detail = Call.STATE_COLUMN not in hidden_call_fields(scope)
    # One GROUP BY over what the marks say (spam or not, the action, the reasons' list): a few dozen groups at most
    # (actions x combinations of reasons), summed here, instead of one conditional count per action and reason.
    marks = {"spam": KT("tags__spam")}
    if detail:
        marks.update(action=KT(Call.STATE_SPAM_ACTION), codes=KT(Call.STATE_SPAM_CODES))
    figures = SpamFigures(detail=detail)
    actions = dict.fromkeys((key for key, _, _ in ACTIONS), 0)
    reasons = dict.fromkeys(DEFAULT_WEIGHTS, 0)
    for row in calls.values(**marks).annotate(n=Count("id")).order_by():
        figures.scored += row["n"]
        if row["spam"] != "yes":
            continue
        figures.spam += row["n"]
        if detail:
            for key in _action_keys(row["action"]):
                actions[key] += row["n"]
            for code in _codes(row["codes"]):
                if code in reasons:
                    reasons[code] += row["n"]
    if not figures.spam:
        return figures
    if detail:
        figures.actions = [(key, label, actions[key]) for key, label, _ in ACTIONS]
        figures.reasons = sorted(((code, REASON_LABELS.get(code, code), n) for code, n in reasons.items() if n), key=lambda r: -r[2])
    top = calls.filter(tags__spam="yes").values("caller_number").annotate(n=Count("id")).order_by("-n", "caller_number")[:TOP]
    figures.callers = [(r["caller_number"], r["n"]) for r in top]
    return figures


#: The panel's action rows a call's mark counts in (a challenge passed or not is also "challenged").
_ACTION_KEYS = {"reject": ("reject",), "challenge": ("challenge", "failed"), "passed": ("challenge", "passed"),
                "not_payable": ("not_payable",), "tag": ("tag",)}


def _action_keys(action: object) -> tuple[str, ...]:
    return _ACTION_KEYS.get(action, ()) if isinstance(action, str) else ()


def _codes(text: object) -> list[str]:
    """The reasons' codes of a mark, from the JSON text the database gives (a list of strings; anything else: none)."""
    if isinstance(text, list):
        value: object = text
    else:
        try:
            value = json.loads(text) if isinstance(text, str) else None
        except ValueError:
            return []
    return [c for c in value if isinstance(c, str)] if isinstance(value, list) else []
