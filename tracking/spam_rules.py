"""A campaign's spam rules (issue 28): what raises a call's spam score, by how much, and what happens above the
campaign's threshold. Pure data and validation (no database): the campaign's ``spam_rules`` JSON is read here,
by the model's ``clean``, the API and the voice path; the score itself is ``routing.spam.spam_score``.

The JSON holds only what the operator changed; everything else takes the defaults below:

    {"weights": {"attestation_failed": 60, "caller_name": 60, ...},   # points per reason (0 turns one off)
     "spam_names": ["SPAM", "SCAM", "FRAUD", "ROBOCALL", "TELEMARKETER"],  # caller names containing one of these
     "repeat_calls": 3, "repeat_minutes": 5,                           # more than 3 calls in 5 minutes (0: off)
     "challenge_prompt": "To be connected, press 1.", "challenge_timeout": 5,
     "unpublished_static": true,                    # static numbers with no source, label or data count as never published
     "spam_line_types": ["nonFixedVoip"],           # the carrier lookup's line types that add the line_type points
     "lookup": []}                                  # the carrier lookup: [], ["line_type"], ["caller_name"] or both

"Never published" (a test-dial pattern: dialers sweeping number ranges, or someone checking a number nobody was
given): a pool number no DNI session was ever assigned (``last_assigned_at`` empty: no visitor was ever shown it), or,
with ``unpublished_static``, a static number that names no source, no label ("where it is shown") and no fixed
marketing data. Both are read from the tracking number's row, loaded with the call: the rule costs no statement.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.db import models


class SpamAction(models.TextChoices):
    """What a call scoring at or above the campaign's threshold gets."""

    OFF = "off", "Off: no spam score"
    TAG = "tag", "Only tag the call (spam=yes, for rules and reports)"
    NOT_PAYABLE = "not_payable", "Route it, but nobody is paid for it (no conversion)"
    CHALLENGE = "challenge", "Ask the caller to press 1 to be connected (no key: hang up)"
    REJECT = "reject", "Reject the call"


#: The reasons a score adds up, with their default points and what they look at.
DEFAULT_WEIGHTS: dict[str, int] = {
    "attestation_failed": 60,   # the caller ID's STIR/SHAKEN verification failed
    "attestation_c": 20,        # verified with attestation C only (the carrier vouches for the gateway, not the caller)
    "attestation_none": 10,     # no verification (no signature): common for old networks, weak on its own
    "caller_name": 60,          # the carrier's caller name contains a spam label ("SPAM LIKELY", "SCAM")
    "invalid_number": 40,       # phonenumbers says the number cannot exist (unallocated range, wrong length)
    "anonymous": 30,            # anonymous, restricted or withheld caller ID
    "blocked": 100,             # on the block list (the call is rejected by the list anyway; the score says so too)
    "repeat_dialer": 50,        # more than repeat_calls calls from this number in repeat_minutes, any campaign
    "unpublished_number": 30,   # the number dialled was never published (see above): a test-dial pattern
    "line_type": 20,            # the carrier lookup says the caller's line is one of spam_line_types (e.g. nonFixedVoip)
}
DEFAULT_SPAM_NAMES = ("SPAM", "SCAM", "FRAUD", "ROBOCALL", "TELEMARKETER")
DEFAULT_CHALLENGE_PROMPT = "To be connected, press 1."
MAX_WEIGHT = 1000
MAX_REPEAT_MINUTES = 24 * 60
DEFAULT_SPAM_LINE_TYPES = ("nonFixedVoip",)
#: Twilio Lookup v2's line types (line_type_intelligence.type); the local carrier answers with the same words.
LINE_TYPES = ("landline", "mobile", "fixedVoip", "nonFixedVoip", "personal", "tollFree", "premium", "sharedCost", "uan",
              "voicemail", "pager", "unknown")
#: What the carrier lookup may be asked: the caller name (CNAM) and the line type.
LOOKUP_FIELDS = ("caller_name", "line_type")
KEYS = ("weights", "spam_names", "repeat_calls", "repeat_minutes", "challenge_prompt", "challenge_timeout",
        "unpublished_static", "spam_line_types", "lookup")

HELP_TEXT = (
    "Only what you change from the defaults, as JSON: {\"weights\": {\"attestation_failed\": 60, \"attestation_c\": 20, "
    "\"attestation_none\": 10, \"caller_name\": 60, \"invalid_number\": 40, \"anonymous\": 30, \"blocked\": 100, "
    "\"repeat_dialer\": 50}, \"spam_names\": [\"SPAM\", \"SCAM\", \"FRAUD\", \"ROBOCALL\", \"TELEMARKETER\"], "
    "\"repeat_dialer\": 50, \"unpublished_number\": 30, \"line_type\": 20}, "
    "\"repeat_calls\": 3, \"repeat_minutes\": 5, \"challenge_prompt\": \"To be connected, press 1.\", \"challenge_timeout\": 5, "
    "\"unpublished_static\": true, \"spam_line_types\": [\"nonFixedVoip\"], \"lookup\": []}. "
    "A weight of 0 turns its reason off; repeat_calls 0 turns the repeat-dialer count off (it costs one indexed read per "
    "call when on). unpublished_number: a pool number no visitor was ever shown, or (unpublished_static) a static "
    "number with no label, no marketing data and nobody credited for its calls. lookup: ask the carrier for the caller's line type "
    "(\"line_type\") and/or caller name (\"caller_name\", only when Twilio sent none), cached per number "
    "(CALLTRACK_CALLER_LOOKUP_DAYS). It costs money on every uncached caller: at Twilio's list prices, about "
    "US$0.008 a line type and US$0.01 a caller name lookup (twilio.com/lookup/pricing); the local carrier is free."
)


@dataclass(frozen=True)
class SpamRules:
    """A campaign's rules, read: the action, its threshold, the weights and the rest (defaults filled in)."""

    action: str = SpamAction.OFF
    threshold: int = 50
    weights: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    spam_names: tuple[str, ...] = DEFAULT_SPAM_NAMES
    repeat_calls: int = 3
    repeat_minutes: int = 5
    challenge_prompt: str = DEFAULT_CHALLENGE_PROMPT
    challenge_timeout: int = 5
    unpublished_static: bool = True
    spam_line_types: tuple[str, ...] = DEFAULT_SPAM_LINE_TYPES
    lookup: tuple[str, ...] = ()

    @property
    def enabled(self) -> bool:
        return self.action != SpamAction.OFF

    @property
    def counts_repeats(self) -> bool:
        """Whether the score needs the repeat-dialer count (one indexed read per call)."""
        return self.enabled and self.repeat_calls > 0 and self.weights.get("repeat_dialer", 0) > 0

    @property
    def judges_publication(self) -> bool:
        """Whether the score asks if the number dialled was ever published (read from its row: no statement)."""
        return self.enabled and self.weights.get("unpublished_number", 0) > 0


def spam_rules_problems(raw: Any) -> list[str]:
    """What is wrong with a campaign's ``spam_rules`` JSON, in words (empty: nothing)."""
    if raw in (None, ""):
        return []
    if not isinstance(raw, Mapping):
        return ["Give an object, e.g. {\"repeat_calls\": 3}."]
    problems = [f"Unknown key '{key}' (keys: {', '.join(KEYS)})." for key in raw if key not in KEYS]
    weights = raw.get("weights", {})
    if not isinstance(weights, Mapping):
        problems.append("weights: an object of reason: points.")
    else:
        for name, value in weights.items():
            if name not in DEFAULT_WEIGHTS:
                problems.append(f"weights: unknown reason '{name}' (reasons: {', '.join(DEFAULT_WEIGHTS)}).")
            elif not _whole(value, 0, MAX_WEIGHT):
                problems.append(f"weights.{name}: a whole number from 0 to {MAX_WEIGHT}.")
    names = raw.get("spam_names", [])
    if not isinstance(names, list) or not all(isinstance(n, str) and n.strip() and len(n) <= 64 for n in names) or len(names) > 100:
        problems.append("spam_names: a list of up to 100 labels (text, at most 64 characters each).")
    if "repeat_calls" in raw and not _whole(raw["repeat_calls"], 0, 1000):
        problems.append("repeat_calls: a whole number from 0 (off) to 1000.")
    if "repeat_minutes" in raw and not _whole(raw["repeat_minutes"], 1, MAX_REPEAT_MINUTES):
        problems.append(f"repeat_minutes: a whole number from 1 to {MAX_REPEAT_MINUTES}.")
    prompt = raw.get("challenge_prompt", DEFAULT_CHALLENGE_PROMPT)
    if not isinstance(prompt, str) or not prompt.strip() or len(prompt) > 500 or "\x00" in prompt:
        problems.append("challenge_prompt: the text said to the caller (at most 500 characters).")
    if "challenge_timeout" in raw and not _whole(raw["challenge_timeout"], 1, 60):
        problems.append("challenge_timeout: seconds to wait for the key, 1 to 60.")
    if "unpublished_static" in raw and not isinstance(raw["unpublished_static"], bool):
        problems.append("unpublished_static: true or false.")
    line_types = raw.get("spam_line_types", [])
    if not isinstance(line_types, list) or not all(isinstance(t, str) and t in LINE_TYPES for t in line_types):
        problems.append(f"spam_line_types: a list of line types ({', '.join(LINE_TYPES)}).")
    lookup = raw.get("lookup", [])
    if not isinstance(lookup, list) or not all(isinstance(f, str) and f in LOOKUP_FIELDS for f in lookup):
        problems.append(f"lookup: a list of what to ask the carrier ({', '.join(LOOKUP_FIELDS)}), or [] (off).")
    return problems


def spam_rules_read(*, action: str, threshold: int, raw: Any) -> SpamRules:
    """The rules of a campaign (its ``spam_action``, ``spam_threshold``, ``spam_rules``). Never raises: a value
    that does not validate takes its default (the admin and the API refuse such values when saving)."""
    if action == SpamAction.OFF or action not in SpamAction.values:
        return SpamRules()
    raw = raw if isinstance(raw, Mapping) else {}
    weights = dict(DEFAULT_WEIGHTS)
    given = raw.get("weights")
    if isinstance(given, Mapping):
        weights.update({k: v for k, v in given.items() if k in DEFAULT_WEIGHTS and _whole(v, 0, MAX_WEIGHT)})
    names = raw.get("spam_names")
    spam_names = tuple(n.strip().upper() for n in names if isinstance(n, str) and n.strip()) if isinstance(names, list) else DEFAULT_SPAM_NAMES
    prompt = raw.get("challenge_prompt")
    return SpamRules(
        action=action, threshold=threshold if _whole(threshold, 1, 10 * MAX_WEIGHT) else 50, weights=weights, spam_names=spam_names,
        repeat_calls=raw["repeat_calls"] if _whole(raw.get("repeat_calls"), 0, 1000) else 3,
        repeat_minutes=raw["repeat_minutes"] if _whole(raw.get("repeat_minutes"), 1, MAX_REPEAT_MINUTES) else 5,
        challenge_prompt=prompt.strip() if isinstance(prompt, str) and prompt.strip() else DEFAULT_CHALLENGE_PROMPT,
        challenge_timeout=raw["challenge_timeout"] if _whole(raw.get("challenge_timeout"), 1, 60) else 5,
        unpublished_static=raw["unpublished_static"] if isinstance(raw.get("unpublished_static"), bool) else True,
        spam_line_types=_known(raw.get("spam_line_types"), LINE_TYPES, DEFAULT_SPAM_LINE_TYPES),
        lookup=_known(raw.get("lookup"), LOOKUP_FIELDS, ()),
    )


def _known(value: Any, known: tuple[str, ...], default: tuple[str, ...]) -> tuple[str, ...]:
    """The known words of a list (in the order of ``known``); ``default`` when it is not a list."""
    if not isinstance(value, list):
        return default
    return tuple(word for word in known if word in value)


def _whole(value: Any, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high
