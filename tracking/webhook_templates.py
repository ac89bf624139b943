"""Replacement tokens for outgoing webhooks: the list operators see, validation on save, and rendering.

Plain functions over plain data (a ``dict`` of token values), no ORM: ``tracking.services.webhooks``
builds the values from a call, this module checks templates and fills them in.

A token is a name in square brackets: ``[caller_number]``; ``[tag:state]`` is the call's tag ``state``;
``[data:gclid]`` is any key of the call's marketing data. Values are escaped for where they land: URL
encoding in the URL and in form bodies, JSON string escaping in JSON bodies.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from urllib.parse import quote, quote_plus

# name -> what it is (the admin help text lists these).
TOKENS: dict[str, str] = {
    "event": "the event that sent this webhook (call.started, call.routed, call.answered, call.completed, call.converted)",
    "call_id": "calltrack's id of the call",
    "call_sid": "the carrier's CallSid",
    "caller_number": "the caller's number (E.164)",
    "called_number": "the tracking number dialled",
    "caller_city": "the caller's city",
    "caller_state": "the caller's state",
    "caller_zip": "the caller's ZIP code",
    "caller_country": "the caller's country (ISO code)",
    "campaign_id": "the campaign's public ID",
    "campaign_name": "the campaign's name",
    "source_id": "the source's public ID",
    "source_name": "the source's name",
    "handler_id": "the handler's id",
    "handler_name": "the handler's name",
    "buyer_id": "the handler's buyer ID",
    "status": "the call's status (ringing, in_progress, completed, busy, ...)",
    "started_at": "when the call started (ISO 8601, UTC)",
    "answered_at": "when a handler answered (ISO 8601, UTC)",
    "ended_at": "when the call ended (ISO 8601, UTC)",
    "duration": "the call's length in seconds",
    "talk_time": "seconds connected to a handler",
    "recording_url": "the recording's URL",
    "converted": "true or false",
    "conversion_status": "pending, converted or not_converted",
    "conversion_reason": "why the call did or did not convert",
    "revenue": "what the handler pays for the call",
    "payout": "what the source is paid for the call",
    "margin": "revenue minus payout",
    "visitor_id": "the web visitor credited with the call",
    "landing_page": "the visitor's landing page",
    "referrer": "the visitor's referrer",
    "test_call": "true for a test call (the admin's Test call with \"Send webhooks\" ticked), else false",
    "utm_source": "marketing data: utm_source",
    "utm_medium": "marketing data: utm_medium",
    "utm_campaign": "marketing data: utm_campaign",
    "utm_term": "marketing data: utm_term",
    "utm_content": "marketing data: utm_content",
    "gclid": "marketing data: Google click id",
    "fbclid": "marketing data: Facebook click id",
    "msclkid": "marketing data: Microsoft click id",
    # A text's own tokens (empty for a call); a text's events fill the call tokens from the text.
    "message_sid": "a text's MessageSid (message.received, message.sent; the call tokens then read the text: caller_number "
                   "is the contact, called_number our number, started_at when it was received or sent)",
    "message_body": "the text's body",
    "message_direction": "inbound or outbound",
    "message_media": "the text's media URLs, separated by spaces",
}
#: The tokens only a text's events (message.received, message.sent) fill.
MESSAGE_TOKENS = frozenset({"message_sid", "message_body", "message_direction", "message_media"})
PREFIXES: dict[str, str] = {
    "tag": "[tag:NAME] the call's tag NAME (caller geo, IVR keys, tags set on the number), e.g. [tag:state] "
    "(state, city, zip and country are the caller's)",
    "data": "[data:KEY] any key of the call's marketing data, e.g. [data:keyword]",
}

# Short tag names the documentation uses for the caller's place: [tag:state] is the call's caller_state tag
# (unless the call has a tag literally named "state", e.g. set by an IVR key or marketing data).
TAG_ALIASES: dict[str, str] = {"state": "caller_state", "city": "caller_city", "zip": "caller_zip", "country": "caller_country"}

HELP_TEXT = (
    "Replacement tokens, in square brackets, may appear in the URL and the body: "
    + ", ".join(f"[{name}]" for name in TOKENS)
    + "; [tag:NAME] for any call tag (e.g. [tag:state]); [data:KEY] for any marketing data key. "
    "Unknown tokens are refused when saving. Values are URL-encoded in URLs and form bodies and JSON-escaped "
    "in JSON bodies. A form body looks like caller=[caller_number]&state=[tag:state]; a JSON body like "
    '{"caller": "[caller_number]", "revenue": "[revenue]"}. A blank body sends every call field.'
)

_TOKEN = re.compile(r"\[([A-Za-z_][A-Za-z0-9_]*)(?::([^\[\]\s]+))?\]")


class TemplateError(ValueError):
    """A template names an unknown token; the message says which and where."""


def tokens_in(template: str) -> list[tuple[str, int]]:
    """The tokens of ``template`` with their 1-based line numbers, e.g. [("tag:state", 2)]."""
    found = []
    for match in _TOKEN.finditer(template):
        line = template.count("\n", 0, match.start()) + 1
        name = match.group(1) if match.group(2) is None else f"{match.group(1)}:{match.group(2)}"
        found.append((name, line))
    return found


def validate(template: str, *, where: str) -> None:
    """Refuse unknown tokens. ``where`` names the field in the message (e.g. 'body template')."""
    for name, line in tokens_in(template):
        prefix, _, rest = name.partition(":")
        if rest:
            if prefix not in PREFIXES:
                raise TemplateError(f"Unknown token [{name}] in the {where} (line {line}): use [tag:NAME] or [data:KEY].")
        elif name not in TOKENS:
            raise TemplateError(
                f"Unknown token [{name}] in the {where} (line {line}). Known tokens: "
                + ", ".join(f"[{t}]" for t in TOKENS) + ", [tag:NAME], [data:KEY]."
            )


def _lookup(name: str, values: Mapping[str, str], tags: Mapping[str, object], data: Mapping[str, object]) -> str:
    prefix, _, rest = name.partition(":")
    if rest:
        source = tags if prefix == "tag" else data
        value = source.get(rest)
        if value in (None, "") and prefix == "tag" and rest in TAG_ALIASES:
            value = source.get(TAG_ALIASES[rest])
        return "" if value is None else str(value)
    return values.get(name, "")


def render(
    template: str,
    *,
    values: Mapping[str, str],
    tags: Mapping[str, object] | None = None,
    data: Mapping[str, object] | None = None,
    escape: str,
) -> str:
    """Fill the tokens of ``template``. ``escape``: 'url' (path/query), 'form' (form values), 'json' (inside a JSON string).

    Unknown tokens are left as written (``validate`` refuses them on save).
    """
    tags = tags or {}
    data = data or {}

    def replace(match: re.Match) -> str:
        name = match.group(1) if match.group(2) is None else f"{match.group(1)}:{match.group(2)}"
        prefix = name.partition(":")[0]
        if ":" in name and prefix not in PREFIXES or ":" not in name and name not in TOKENS:
            return match.group(0)
        value = _lookup(name, values, tags, data)
        if escape == "url":
            return quote(value, safe="")
        if escape == "form":
            return quote_plus(value)
        if escape == "json":
            return json.dumps(value)[1:-1]
        raise ValueError(f"unknown escape {escape!r}")

    return _TOKEN.sub(replace, template)


def sample_values() -> dict[str, str]:
    """Plausible values for every token, to test-render a template when it is saved."""
    return {name: f"sample-{name}" for name in TOKENS}
