"""Custom caller parameters from landing pages (Retreaver's parameter mapping).

A pool declares which parameters it accepts (``PoolParameter``: name, kind, maximum length). The tag sends
what the page has; :func:`custom_parameters_accept` keeps the declared ones whose value fits, normalised,
and counts the rest on the pool (``NumberPool.dropped_parameter_count``). The kept ones join the visitor's
session data, so a call to the number shown carries them as tags: routing tag criteria, webhook tokens
(``[tag:NAME]``), the call page, the call log's filter and its export all read them there.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from django.db.models import F

from calltrack.numbers.models import NumberPool, ParameterKind, PoolParameter

MAX_SENT = 30  # names one request may send (the tag sends at most this many)
MAX_SENT_NAME = 64
MAX_SENT_VALUE = 2000

_INTEGER = re.compile(r"^[+-]?\d{1,18}$")
_TRUE, _FALSE = {"true", "1", "yes", "on"}, {"false", "0", "no", "off"}


@dataclass(frozen=True)
class ParameterRule:
    """One declared parameter as the DNI path needs it."""

    name: str
    kind: str
    max_length: int


def pool_parameter_rules(*, pool_id: int) -> dict[str, ParameterRule]:
    """The pool's declared parameters by name (one query)."""
    rows = PoolParameter.objects.filter(pool_id=pool_id).values_list("name", "kind", "max_length")
    return {name: ParameterRule(name, kind, max_length) for name, kind, max_length in rows}


def parameter_value(*, rule: ParameterRule, value: str) -> str | None:
    """``value`` normalised for ``rule`` (integers without sign noise, decimals as written, booleans as
    true/false, text stripped), or None when it does not fit the kind or is longer than allowed."""
    text = value.strip()
    if not text or len(text) > rule.max_length:
        return None
    if rule.kind == ParameterKind.INTEGER:
        return str(int(text)) if _INTEGER.match(text) else None
    if rule.kind == ParameterKind.DECIMAL:
        try:
            number = Decimal(text)
        except InvalidOperation:
            return None
        return str(number) if number.is_finite() and abs(number) < Decimal(10) ** 15 else None
    if rule.kind == ParameterKind.BOOLEAN:
        lowered = text.lower()
        return "true" if lowered in _TRUE else "false" if lowered in _FALSE else None
    return text


def custom_parameters_accept(*, pool_id: int, sent: Mapping[str, str]) -> dict[str, str]:
    """The declared parameters of ``sent`` whose value fits, normalised; every other name sent is dropped and
    counted on the pool (one conditional UPDATE, only when something was dropped). Reads the pool's
    declarations once per call (one query, only when something was sent)."""
    if not sent:
        return {}
    rules = pool_parameter_rules(pool_id=pool_id)
    accepted: dict[str, str] = {}
    for name, value in sent.items():
        rule = rules.get(name)
        kept = parameter_value(rule=rule, value=value) if rule else None
        if kept is not None:
            accepted[name] = kept
    dropped = len(sent) - len(accepted)
    if dropped:
        NumberPool.objects.filter(pk=pool_id).update(dropped_parameter_count=F("dropped_parameter_count") + dropped)
    return accepted
