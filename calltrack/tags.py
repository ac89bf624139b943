"""Tag criteria and number filters: rules over a call's tags, as plain data.

A call's tags are a flat ``{key: value}`` map: ``caller_state``, ``caller_zip``,
``caller_city``, ``caller_country``, ``key_pressed`` (the last IVR key), ``source``
(the source id), every IVR tag, and every marketing data key of the visitor or
static number (``utm_source``, ``gclid``, ...). A criterion is
``{"key": "caller_state", "op": "one_of", "value": ["CA", "NV"]}``; a handler
matches when all of its criteria do. Keys and values compare case-insensitively.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

OPS = ("equals", "one_of", "not_one_of", "present")
WELL_KNOWN_KEYS = ("caller_state", "caller_zip", "caller_city", "caller_country", "key_pressed", "source")
_KEY = re.compile(r"^[A-Za-z0-9_.:\-]{1,64}$")

HELP_TEXT = (
    'A list of rules, all of which a call must match, e.g. [{"key": "caller_state", "op": "one_of", '
    '"value": ["CA", "NV"]}, {"key": "utm_source", "op": "equals", "value": "google"}]. Keys: caller_state, '
    "caller_zip, caller_city, caller_country, key_pressed (IVR), source, or any marketing data key. "
    "Ops: equals, one_of, not_one_of, present."
)


class TagRuleError(ValueError):
    pass


def _as_list(value: Any) -> list[str]:
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, list) and all(isinstance(v, (str, int)) for v in value):
        return [str(v).strip() for v in value if str(v).strip()]
    raise TagRuleError("a list of values (or a comma-separated text)")


def validate(criteria: object) -> list[dict[str, Any]]:
    """Normalize a list of criteria or raise TagRuleError naming each bad rule."""
    if criteria in (None, ""):
        return []
    if not isinstance(criteria, list):
        raise TagRuleError("Tag criteria must be a list of rules like {\"key\": ..., \"op\": ..., \"value\": ...}.")
    out: list[dict[str, Any]] = []
    problems: list[str] = []
    for n, rule in enumerate(criteria, start=1):
        if not isinstance(rule, Mapping):
            problems.append(f"rule {n} is not an object")
            continue
        unknown = set(rule) - {"key", "op", "value"}
        key = str(rule.get("key", "")).strip()
        op = str(rule.get("op", "equals")).strip()
        if unknown:
            problems.append(f"rule {n} has unknown fields {', '.join(sorted(unknown))}")
        if not _KEY.match(key):
            problems.append(f"rule {n}: key '{key}' must be 1-64 letters, digits or _ . : -")
        if op not in OPS:
            problems.append(f"rule {n}: op '{op}' must be one of {', '.join(OPS)}")
            continue
        value: Any = None
        if op == "equals":
            raw = rule.get("value")
            if not isinstance(raw, (str, int)) or str(raw).strip() == "":
                problems.append(f"rule {n}: 'equals' needs a value")
            else:
                value = str(raw).strip()
        elif op in ("one_of", "not_one_of"):
            try:
                value = _as_list(rule.get("value"))
            except TagRuleError as exc:
                problems.append(f"rule {n}: '{op}' needs {exc}")
            else:
                if not value:
                    problems.append(f"rule {n}: '{op}' needs at least one value")
        cleaned: dict[str, Any] = {"key": key, "op": op}
        if op != "present":
            cleaned["value"] = value
        out.append(cleaned)
    if problems:
        raise TagRuleError("; ".join(problems))
    return out


def _norm(value: Any) -> str:
    return str(value).strip().lower()


def matches(criteria: Iterable[Mapping[str, Any]], tags: Mapping[str, Any]) -> tuple[bool, str]:
    """(True, "") when every rule holds for ``tags``; else (False, the first failing rule in words)."""
    lowered = {_norm(k): v for k, v in tags.items() if v not in (None, "")}
    for rule in criteria:
        key, op = rule["key"], rule["op"]
        have = lowered.get(_norm(key))
        if op == "present":
            ok = have is not None
        elif op == "equals":
            ok = have is not None and _norm(have) == _norm(rule["value"])
        elif op == "one_of":
            ok = have is not None and _norm(have) in {_norm(v) for v in rule["value"]}
        else:  # not_one_of: an absent tag is not one of them
            ok = have is None or _norm(have) not in {_norm(v) for v in rule["value"]}
        if not ok:
            return False, describe(rule, have)
    return True, ""


def describe(rule: Mapping[str, Any], have: Any = None) -> str:
    value = rule.get("value")
    shown = ", ".join(value) if isinstance(value, list) else value
    want = {"equals": f"= {shown}", "one_of": f"in [{shown}]", "not_one_of": f"not in [{shown}]", "present": "present"}[rule["op"]]
    return f"{rule['key']} {want} (call has {have if have is not None else 'none'})"


# Number filters on a tracking number: accept or reject by caller state / zip / source / tag.
FILTER_ACTIONS = ("accept", "reject")
FILTERS_HELP_TEXT = (
    'Rules checked before routing, e.g. [{"action": "reject", "key": "caller_state", "op": "one_of", "value": ["AK", "HI"]}]. '
    "With any 'accept' rule, a call must match one of them; a call matching a 'reject' rule is rejected. "
    "Keys as in tag criteria (caller_state, caller_zip, source, any tag)."
)


def validate_filters(filters: object) -> list[dict[str, Any]]:
    if filters in (None, ""):
        return []
    if not isinstance(filters, list):
        raise TagRuleError("Filters must be a list of rules with an action (accept or reject).")
    problems: list[str] = []
    out: list[dict[str, Any]] = []
    for n, rule in enumerate(filters, start=1):
        if not isinstance(rule, Mapping):
            problems.append(f"filter {n} is not an object")
            continue
        action = str(rule.get("action", "")).strip()
        if action not in FILTER_ACTIONS:
            problems.append(f"filter {n}: action '{action}' must be accept or reject")
            continue
        try:
            (cleaned,) = validate([{k: v for k, v in rule.items() if k != "action"}])
        except TagRuleError as exc:
            problems.append(f"filter {n}: {str(exc).removeprefix('rule 1: ')}")
            continue
        out.append({"action": action, **cleaned})
    if problems:
        raise TagRuleError("; ".join(problems))
    return out


def filter_verdict(filters: list[dict[str, Any]], tags: Mapping[str, Any]) -> tuple[bool, str]:
    """(accepted, reason). Rejections win; with accept rules present, one must match."""
    for rule in filters:
        if rule["action"] == "reject" and matches([rule], tags)[0]:
            return False, f"rejected by filter {describe(rule)}"
    accepts = [r for r in filters if r["action"] == "accept"]
    if accepts and not any(matches([r], tags)[0] for r in accepts):
        return False, "matched no accept filter"
    return True, ""


# --- Coverage: which callers a handler's criteria take, in words ------------------------------------------------


def _allowed(rules: list[Mapping[str, Any]], *, upper: bool) -> tuple[set[str] | None, set[str], bool]:
    """The values a key may have under ``rules`` (all on that key): (only these, or None for any; never these;
    whether the tag must be known)."""
    only: set[str] | None = None
    never: set[str] = set()
    known = False

    def norm(v: Any) -> str:
        return str(v).strip().upper() if upper else str(v).strip()

    for rule in rules:
        op = rule["op"]
        if op == "present":
            known = True
        elif op in ("equals", "one_of"):
            values = {norm(v) for v in (rule["value"] if isinstance(rule["value"], list) else [rule["value"]])}
            only = values if only is None else {v for v in only if v.lower() in {w.lower() for w in values}}
            known = True
        else:  # not_one_of
            never |= {norm(v) for v in rule["value"]}
    return only, never, known


def allowed_text(rules: list[Mapping[str, Any]], *, upper: bool = False) -> list[str]:
    """What ``rules`` on one key let through, in words: the values (["CA", "NV"]), ["all"], ["any known"],
    ["all except CA, NY"], ["none"]."""
    only, never, known = _allowed(rules, upper=upper)
    lowered_never = {v.lower() for v in never}
    if only is not None:
        left = sorted(v for v in only if v.lower() not in lowered_never)
        return left or ["none"]
    if never:
        return [("any known except " if known else "all except ") + ", ".join(sorted(never))]
    return ["any known"] if known else ["all"]


def coverage(criteria: list[Mapping[str, Any]]) -> tuple[list[str], list[str]]:
    """A handler's tag criteria as coverage: (the caller states it takes, its other conditions in words, one per
    key, e.g. "caller_zip: 80202, 80203", "utm_source: all except bing"). Every operator counts: a state taken
    by equals/one_of, refused by not_one_of, required by present; the same for any other key."""
    by_key: dict[str, list[Mapping[str, Any]]] = {}
    for rule in criteria or []:
        by_key.setdefault(_norm(rule.get("key", "")), []).append(rule)
    states = allowed_text(by_key.pop("caller_state", []), upper=True)
    others = [f"{key}: {', '.join(allowed_text(rules, upper=key == 'caller_country'))}" for key, rules in sorted(by_key.items())]
    return states, others
