"""Tag criteria and number filters: rules over a call's tags, as plain data.

A call's tags are a flat ``{key: value}`` map: ``caller_state``, ``caller_zip``,
``caller_city``, ``caller_country``, ``key_pressed`` (the last IVR key), ``source``
(the source id), every IVR tag, and every marketing data key of the visitor or
static number (``utm_source``, ``gclid``, ...). A criterion is
``{"key": "caller_state", "op": "one_of", "value": ["CA", "NV"]}``; a handler
matches when all of its criteria do. Keys and values compare case-insensitively.

Branches: a rule may carry ``"group": N`` (1-20; none is group 1). The rules of one group must all hold, and a
handler matches when one of its groups does (OR between groups): ``[{"key": "caller_state", "op": "equals",
"value": "CO"}, {"key": "utm_source", "op": "equals", "value": "google", "group": 2}]`` takes Colorado callers and
anyone from Google. The rule ``{"op": "else"}`` alone makes the handler the campaign's *else route*: it takes a
call only when no other handler's criteria match it (``routing.decision.plan_build``).

Numeric ops compare the tag read as a number (``"age": "34"``; ``"$1,200"`` reads 1200): ``less_than`` /
``greater_than`` are strict, ``between`` takes ``[low, high]`` inclusive; a tag that is absent or is not a
number never matches them. ``contains`` / ``starts_with`` compare text, case-insensitively.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

OPS = ("equals", "one_of", "not_one_of", "present", "less_than", "greater_than", "between", "contains", "starts_with", "else")
ELSE = "else"
MAX_GROUPS = 20
OP_LABELS = {
    "equals": "equals",
    "one_of": "is one of",
    "not_one_of": "is not one of",
    "present": "is present",
    "less_than": "is less than",
    "greater_than": "is greater than",
    "between": "is between (inclusive)",
    "contains": "contains",
    "starts_with": "starts with",
    "else": "else (only when nobody else's rules match)",
}
NUMERIC_OPS = ("less_than", "greater_than")
TEXT_OPS = ("contains", "starts_with")
# Numbers the database and a JSON client can both hold exactly; past this a value is refused, not rounded.
_NUMBER_LIMIT = Decimal("1e15")
WELL_KNOWN_KEYS = (
    "caller_state", "caller_zip", "caller_city", "caller_country", "key_pressed", "source", "caller_name", "attestation",
    "line_type", "spam_score", "spam",
)
# Tags only the carrier's report and the spam score set: a visitor's marketing data cannot (a landing page's
# ?attestation=passed_a would otherwise pass a number rule meant for verified callers).
IDENTITY_KEYS = ("caller_name", "attestation", "line_type", "spam_score", "spam")
SPAM_SCORE, SPAM, LINE_TYPE = "spam_score", "spam", "line_type"
_KEY = re.compile(r"^[A-Za-z0-9_.:\-]{1,64}$")

HELP_TEXT = (
    'A list of rules, all of which a call must match, e.g. [{"key": "caller_state", "op": "one_of", '
    '"value": ["CA", "NV"]}, {"key": "utm_source", "op": "equals", "value": "google"}]. Keys: caller_state, '
    "caller_zip, caller_city, caller_country, key_pressed (IVR), source, caller_name, attestation (passed_a, passed_b, "
    "passed_c, failed, none), line_type (the carrier lookup's: mobile, landline, fixedVoip, nonFixedVoip, tollFree, ...), "
    "spam_score, spam (yes/no), or any marketing data key. "
    "Ops: equals, one_of, not_one_of, present, less_than, greater_than, between (value [low, high], inclusive), "
    "contains, starts_with. OR between groups: give rules a \"group\": 2, 3 ... (a call matching every rule of one "
    'group matches). The single rule {"op": "else"} makes this the campaign\'s else route: it takes only the calls '
    "nobody else's rules match."
)


class TagRuleError(ValueError):
    pass


def _as_list(value: Any) -> list[str]:
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, list) and all(isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in value):
        return [str(v).strip() for v in value if str(v).strip()]
    raise TagRuleError("a list of values (or a comma-separated text)")


def to_number(value: Any) -> Decimal | None:
    """A tag or rule value read as a number (``"34"``, ``"1,200.50"``, ``"$99"``), or None when it is not one."""
    if isinstance(value, bool) or value is None:
        return None
    text = str(value).strip().replace(",", "").removeprefix("$").strip()
    if not text or len(text) > 32:
        return None
    try:
        number = Decimal(text)
    except InvalidOperation:
        return None
    if not number.is_finite() or abs(number) >= _NUMBER_LIMIT:
        return None
    return number


def _number_text(value: Any) -> str | None:
    number = to_number(value)
    return None if number is None else format(number.normalize(), "f")


def validate(criteria: object) -> list[dict[str, Any]]:
    """Normalize a list of criteria or raise TagRuleError naming each bad rule."""
    if criteria in (None, ""):
        return []
    if not isinstance(criteria, list):
        raise TagRuleError("Tag criteria must be a list of rules like {\"key\": ..., \"op\": ..., \"value\": ...}.")
    out: list[dict[str, Any]] = []
    problems: list[str] = []
    if any(isinstance(rule, Mapping) and str(rule.get("op", "")).strip() == ELSE for rule in criteria):
        if len(criteria) != 1:
            raise TagRuleError("The 'else' rule stands alone: the else route has no other rules.")
        return [{"op": ELSE}]
    for n, rule in enumerate(criteria, start=1):
        if not isinstance(rule, Mapping):
            problems.append(f"rule {n} is not an object")
            continue
        unknown = set(rule) - {"key", "op", "value", "group"}
        key = str(rule.get("key", "")).strip()
        op = str(rule.get("op", "equals")).strip()
        group = rule.get("group", 1)
        if group in (None, ""):
            group = 1
        if isinstance(group, str) and group.strip().isdigit():
            group = int(group.strip())
        if unknown:
            problems.append(f"rule {n} has unknown fields {', '.join(sorted(unknown))}")
        if isinstance(group, bool) or not isinstance(group, int) or not 1 <= group <= MAX_GROUPS:
            problems.append(f"rule {n}: group must be a whole number from 1 to {MAX_GROUPS}")
            group = 1
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
        elif op in NUMERIC_OPS:
            raw = rule.get("value")
            value = _number_text(raw) if isinstance(raw, (str, int, float)) else None
            if value is None:
                problems.append(f"rule {n}: '{op}' needs a number, got {raw!r}")
        elif op == "between":
            try:
                bounds = _as_list(rule.get("value"))
            except TagRuleError:
                bounds = []
            numbers = [_number_text(b) for b in bounds]
            if len(numbers) != 2 or None in numbers:
                problems.append(f"rule {n}: 'between' needs two numbers, low and high (e.g. 18, 65)")
            elif Decimal(str(numbers[0])) > Decimal(str(numbers[1])):
                problems.append(f"rule {n}: 'between' needs the low number first ({numbers[0]} > {numbers[1]})")
            else:
                value = numbers
        elif op in TEXT_OPS:
            raw = rule.get("value")
            if not isinstance(raw, (str, int)) or str(raw).strip() == "":
                problems.append(f"rule {n}: '{op}' needs a text")
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
        if group != 1:
            cleaned["group"] = group
        out.append(cleaned)
    if problems:
        raise TagRuleError("; ".join(problems))
    return out


def _norm(value: Any) -> str:
    return str(value).strip().lower()


def is_else(criteria: Iterable[Mapping[str, Any]]) -> bool:
    """Whether these criteria make the handler the campaign's else route."""
    return any(rule.get("op") == ELSE for rule in criteria)


def groups(criteria: Iterable[Mapping[str, Any]]) -> list[list[Mapping[str, Any]]]:
    """The rules by group, in group order (rules without a group are group 1)."""
    by_group: dict[int, list[Mapping[str, Any]]] = {}
    for rule in criteria:
        by_group.setdefault(int(rule.get("group") or 1), []).append(rule)
    return [by_group[g] for g in sorted(by_group)]


def matches(criteria: Iterable[Mapping[str, Any]], tags: Mapping[str, Any]) -> tuple[bool, str]:
    """(True, "") when every rule of one group holds for ``tags``; else (False, why in words: the first failing rule,
    or of each group "; or " between). The else rule matches nothing here (the plan decides it)."""
    rules = list(criteria)
    if is_else(rules):
        return False, "the else route"
    return groups_match(groups(rules), tags)


def groups_match(parts: Sequence[Sequence[Mapping[str, Any]]], tags: Mapping[str, Any]) -> tuple[bool, str]:
    """``matches`` for criteria already split by ``groups`` (not the else route): routing keeps each handler's split
    with its cached configuration."""
    if len(parts) <= 1:
        return _all_hold(parts[0] if parts else (), tags)
    reasons = []
    for part in parts:
        ok, why = _all_hold(part, tags)
        if ok:
            return True, ""
        reasons.append(why)
    return False, "; or ".join(reasons)


def _all_hold(criteria: Iterable[Mapping[str, Any]], tags: Mapping[str, Any]) -> tuple[bool, str]:
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
        elif op == "not_one_of":  # an absent tag is not one of them
            ok = have is None or _norm(have) not in {_norm(v) for v in rule["value"]}
        elif op in ("less_than", "greater_than", "between"):
            number = to_number(have)
            if number is None:
                ok = False
            elif op == "less_than":
                ok = number < Decimal(rule["value"])
            elif op == "greater_than":
                ok = number > Decimal(rule["value"])
            else:
                low, high = rule["value"]
                ok = Decimal(low) <= number <= Decimal(high)
        elif op == "contains":
            ok = have is not None and _norm(rule["value"]) in _norm(have)
        else:  # starts_with
            ok = have is not None and _norm(have).startswith(_norm(rule["value"]))
        if not ok:
            return False, describe(rule, have)
    return True, ""


def describe(rule: Mapping[str, Any], have: Any = None) -> str:
    value = rule.get("value")
    shown = ", ".join(str(v) for v in value) if isinstance(value, list) else value
    op = rule["op"]
    if op == "between" and isinstance(value, list):
        want = f"between {value[0]} and {value[1]}"
    else:
        want = {
            "equals": f"= {shown}", "one_of": f"in [{shown}]", "not_one_of": f"not in [{shown}]", "present": "present",
            "less_than": f"< {shown}", "greater_than": f"> {shown}", "contains": f"contains '{shown}'",
            "starts_with": f"starts with '{shown}'",
        }[op]
    return f"{rule['key']} {want} (call has {have if have is not None else 'none'})"


# Number filters on a tracking number: accept or reject by caller state / zip / source / tag.
FILTER_ACTIONS = ("accept", "reject")
FILTERS_HELP_TEXT = (
    'Rules checked before routing, e.g. [{"action": "reject", "key": "caller_state", "op": "one_of", "value": ["AK", "HI"]}]. '
    "With any 'accept' rule, a call must match one of them; a call matching a 'reject' rule is rejected. "
    "Keys as in tag criteria (caller_state, caller_zip, source, any tag), and the caller's identity: caller_name, "
    "attestation (passed_a, passed_b, passed_c, failed, none), line_type (the carrier lookup's: mobile, landline, "
    "fixedVoip, nonFixedVoip, tollFree, ...), spam_score, spam (yes/no)."
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
        if str(rule.get("op", "")).strip() == ELSE or "group" in rule:
            problems.append(f"filter {n}: a number's filters take no 'else' and no group (each accept or reject rule stands alone)")
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
            have = {_norm(k): v for k, v in tags.items()}.get(_norm(rule["key"]))
            return False, f"rejected by filter {describe(rule, have)}"
    accepts = [r for r in filters if r["action"] == "accept"]
    if accepts and not any(matches([r], tags)[0] for r in accepts):
        return False, "matched no accept filter"
    return True, ""


# --- Coverage: which callers a handler's criteria take, in words ------------------------------------------------


def _allowed(rules: list[Mapping[str, Any]], *, upper: bool) -> tuple[set[str] | None, set[str], bool, list[str]]:
    """The values a key may have under ``rules`` (all on that key): (only these, or None for any; never these;
    whether the tag must be known; the comparisons it must pass, in words)."""
    only: set[str] | None = None
    never: set[str] = set()
    known = False
    compared: list[str] = []

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
        elif op == "not_one_of":
            never |= {norm(v) for v in rule["value"]}
        else:  # a comparison (less_than, greater_than, between, contains, starts_with): only known values pass it
            known = True
            compared.append(describe(rule).split(" (call has")[0].removeprefix(f"{rule['key']} "))
    return only, never, known, compared


def allowed_text(rules: list[Mapping[str, Any]], *, upper: bool = False) -> list[str]:
    """What ``rules`` on one key let through, in words: the values (["CA", "NV"]), ["all"], ["any known"],
    ["all except CA, NY"], ["none"]."""
    only, never, known, compared = _allowed(rules, upper=upper)
    lowered_never = {v.lower() for v in never}
    if only is not None:
        left = sorted(v for v in only if v.lower() not in lowered_never)
        return [*(left or ["none"]), *compared] if left else ["none"]
    if never:
        return [("any known except " if known else "all except ") + ", ".join(sorted(never)), *compared]
    if compared:
        return compared
    return ["any known"] if known else ["all"]


def coverage(criteria: list[Mapping[str, Any]]) -> tuple[list[str], list[str]]:
    """A handler's tag criteria as coverage: (the caller states it takes, its other conditions in words, one per
    key, e.g. "caller_zip: 80202, 80203", "utm_source: all except bing"). Every operator counts: a state taken
    by equals/one_of, refused by not_one_of, required by present; the same for any other key."""
    if is_else(criteria or []):
        return ["calls no other handler takes"], ["the else route"]
    parts = groups(criteria or [])
    if len(parts) > 1:  # OR between groups: each group's coverage, "or" between
        covered = [coverage(part) for part in parts]
        states = sorted({s for group_states, _ in covered for s in group_states})
        return (["all"] if "all" in states else states), [
            f"group {n}: " + ("; ".join(["caller_state: " + ", ".join(gs), *go]) if go or gs != ["all"] else "all")
            for n, (gs, go) in enumerate(covered, start=1)
        ]
    by_key: dict[str, list[Mapping[str, Any]]] = {}
    for rule in criteria or []:
        by_key.setdefault(_norm(rule.get("key", "")), []).append(rule)
    states = allowed_text(by_key.pop("caller_state", []), upper=True)
    others = [f"{key}: {', '.join(allowed_text(rules, upper=key == 'caller_country'))}" for key, rules in sorted(by_key.items())]
    return states, others


# Lookup tables (routing by value): the detected destination is matched as an E.164 number, anything else as text.
DESTINATION = "destination"


def lookup_value(key: str, value: object) -> str:
    """A value as lookup tables store and match it: trimmed and lower-case; a destination as an E.164 number."""
    from calltrack import phone  # Django-aware (the default region): imported here so this module stays pure

    text = str(value if value is not None else "").strip()
    if key == DESTINATION:
        return phone.to_e164_or_none(text) or text.lower()
    return text.lower()


# A lookup table keyed on more than one value (Invoca's combined data factors): its key lists the tags, comma-separated
# ("caller_state,utm_source"), and each row's value gives theirs in that order, "|" between ("co|google").
KEY_SEPARATOR = ","
VALUE_SEPARATOR = "|"
MAX_LOOKUP_KEYS = 3


def lookup_keys(tag_key: str) -> list[str]:
    """The tags a lookup table is keyed on, in order."""
    return [k.strip() for k in str(tag_key or "").split(KEY_SEPARATOR) if k.strip()]


def lookup_row_value(tag_key: str, value: object) -> str:
    """A row's value as the table stores and matches it: one value per key of the table, each as ``lookup_value``
    stores it, "|" between; '' when the number of values is not the number of keys."""
    keys = lookup_keys(tag_key)
    if len(keys) <= 1:
        return lookup_value(keys[0] if keys else "", value)
    parts = str(value if value is not None else "").split(VALUE_SEPARATOR)
    if len(parts) != len(keys):
        return ""
    cleaned = [lookup_value(key, part) for key, part in zip(keys, parts, strict=True)]
    return VALUE_SEPARATOR.join(cleaned) if all(cleaned) else ""


def lookup_call_value(tag_key: str, tags: Mapping[str, Any]) -> str:
    """The value a call looks up in a table keyed on ``tag_key``: '' when the call lacks one of its tags."""
    lowered = {str(k).lower(): v for k, v in tags.items() if v not in (None, "")}
    parts = []
    for key in lookup_keys(tag_key):
        raw = lowered.get(key.lower())
        value = lookup_value(key, raw) if raw is not None else ""
        if not value:
            return ""
        parts.append(value)
    return VALUE_SEPARATOR.join(parts)
