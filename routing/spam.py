"""A call's spam score and its reasons (issue 28): a plain function over what the call says about its caller.

``spam_score`` adds up the points of each reason that applies (the campaign's weights, ``tracking.spam_rules``)
and says, in words, why; the voice path (``routing.services.calls``) reads its inputs (the repeat-dialer count
costs one indexed read, only when the campaign's rules count repeats) and acts on the verdict.
"""

from __future__ import annotations

from dataclasses import dataclass

import phonenumbers

from tracking.spam_rules import SpamRules

ATTESTATION_REASONS = {"failed": "attestation_failed", "passed_c": "attestation_c", "none": "attestation_none"}
_ATTESTATION_WORDS = {
    "attestation_failed": "the caller ID's STIR/SHAKEN verification failed",
    "attestation_c": "the caller ID was only gateway-attested (STIR/SHAKEN C)",
    "attestation_none": "the caller ID was not verified (no STIR/SHAKEN signature)",
}


@dataclass(frozen=True)
class SpamInputs:
    """What the score looks at: the caller's number as received, the carrier's attestation and caller name, the
    block list's verdict, how many calls this number made in the rules' window before this one (None: not
    counted), whether the number dialled was never published (``number_unpublished``) and the caller's line type
    from the carrier lookup ('' when not looked up)."""

    caller: str
    attestation: str = ""
    caller_name: str = ""
    blocked: bool = False
    recent_calls: int | None = None
    unpublished: bool = False
    line_type: str = ""


@dataclass(frozen=True)
class SpamVerdict:
    """The score, the reasons that made it (codes and words, in the order of the rules) and whether it reaches the
    campaign's threshold."""

    score: int
    codes: tuple[str, ...]
    reasons: tuple[str, ...]
    is_spam: bool

    def summary(self) -> str:
        """"spam score 80 (at least 50): the caller ID's verification failed; ..." for the call's route in words."""
        why = "; ".join(self.reasons) if self.reasons else "nothing suspicious"
        return f"spam score {self.score}: {why}"


def spam_score(inputs: SpamInputs, rules: SpamRules) -> SpamVerdict:
    """The call's score under ``rules``: each reason that applies adds its weight (a weight of 0 leaves it out)."""
    found: list[tuple[str, str]] = []
    weights = rules.weights

    def add(code: str, words: str) -> None:
        if weights.get(code, 0) > 0:
            found.append((code, words))

    code = ATTESTATION_REASONS.get(inputs.attestation)
    if code:
        add(code, _ATTESTATION_WORDS[code])
    name = inputs.caller_name.upper()
    label = next((label for label in rules.spam_names if label and label in name), None) if name else None
    if label:
        add("caller_name", f"the caller name '{inputs.caller_name}' has the spam label '{label}'")
    if caller_withheld(inputs.caller):
        add("anonymous", "the caller ID is anonymous or withheld")
    elif not _valid(inputs.caller):
        add("invalid_number", f"{inputs.caller} is not a number that can exist")
    if inputs.blocked:
        add("blocked", "the caller is on the block list")
    if inputs.recent_calls is not None and rules.repeat_calls and inputs.recent_calls >= rules.repeat_calls:
        add("repeat_dialer", f"call {inputs.recent_calls + 1} from this number in {rules.repeat_minutes} min "
                             f"(more than {rules.repeat_calls} is a repeat dialer)")
    if inputs.unpublished:
        add("unpublished_number", "the number dialled was never published (no visitor shown it, no source or label): "
                                  "a test-dial pattern")
    if inputs.line_type and inputs.line_type in rules.spam_line_types:
        add("line_type", f"the carrier says the caller's line is {inputs.line_type}")
    score = sum(weights[c] for c, _ in found)
    return SpamVerdict(score=score, codes=tuple(c for c, _ in found), reasons=tuple(w for _, w in found),
                       is_spam=score >= rules.threshold)


def number_unpublished(*, pool_id: int | None, last_assigned_at: object, source_id: int | None, label: str,
                       marketing_data: object, count_static: bool) -> bool:
    """Whether a tracking number was never published: a pool number that no DNI session was ever given (no visitor
    was shown it: ``last_assigned_at`` is set at every assignment and never cleared), or, with ``count_static``, a
    static number that names nothing about where it is shown (no source to credit, no label, no fixed marketing
    data). All of it is on the number's row, loaded with the call."""
    if pool_id is not None:
        return last_assigned_at is None
    return count_static and source_id is None and not label.strip() and not marketing_data


# What Twilio and carriers send for a caller ID they do not show: words, or Twilio's +266696687 ("ANONYMOUS").
_WITHHELD = {"", "anonymous", "restricted", "private", "unknown", "unavailable", "blocked", "+266696687", "266696687"}


def caller_withheld(caller: str) -> bool:
    """Whether the caller ID is anonymous or withheld (no digits to speak of, or a placeholder)."""
    text = caller.strip().lower()
    return text in _WITHHELD or sum(ch.isdigit() for ch in text) < 3


def _valid(number: str) -> bool:
    """Whether ``phonenumbers`` finds ``number`` (E.164) a valid number: its length and range allocated."""
    try:
        return phonenumbers.is_valid_number(phonenumbers.parse(number, None))
    except phonenumbers.NumberParseException:
        return False
