"""TwiML rendering for every answer the voice webhooks give.

Plain data in, XML text out. Every function returns a complete ``<Response>`` document that validates
against Twilio's TwiML schema (tests/routing/test_twiml.py checks each kind). The documents are written
as strings, byte for byte what the twilio library's ``VoiceResponse`` writes (attributes sorted by name,
ElementTree's escaping, ``<Tag />`` when empty; tests/routing/test_twiml_parity.py compares the two on
every function with generated text): the library builds an ElementTree per answer, which cost a
``/voice/incoming`` request 75 microseconds for a two-number ``<Dial>`` with every attribute, 15 for the string.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

CONTENT_TYPE = "text/xml"
# The voices the TwiML schema knows; Twilio maps the retired 'alice' to Polly.Joanna, so do we.
_VOICE = re.compile(r"^(man|woman|male|female|eve|brian|Polly\.[a-zA-Z]+)$")
_VOICE_ALIASES = {"alice": "Polly.Joanna"}
DEFAULT_SORRY = "Sorry, we cannot take your call right now. Please try again later."
_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>'


@dataclass(frozen=True)
class Voice:
    voice: str = ""
    language: str = ""

    def attrs(self) -> dict[str, str]:
        out: dict[str, str] = {}
        voice = _VOICE_ALIASES.get(self.voice, self.voice)
        if voice and _VOICE.match(voice):
            out["voice"] = voice
        if self.language:
            out["language"] = self.language
        return out


@dataclass(frozen=True)
class Greeting:
    kind: str = "none"  # none | say | play
    text: str = ""
    url: str = ""
    voice: Voice = Voice()


@dataclass(frozen=True)
class DialNumber:
    number: str
    send_digits: str = ""
    whisper_url: str = ""
    status_callback: str = ""


def _escape_text(text: str) -> str:
    """Element text as ElementTree escapes it."""
    if "&" in text:
        text = text.replace("&", "&amp;")
    if "<" in text:
        text = text.replace("<", "&lt;")
    if ">" in text:
        text = text.replace(">", "&gt;")
    return text


_ATTRIBUTE_ESCAPES = (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ('"', "&quot;"), ("\r", "&#13;"), ("\n", "&#10;"), ("\t", "&#09;"))


def _escape_attribute(value: object) -> str:
    """An attribute value as the twilio library writes it (booleans lower case) and ElementTree escapes it."""
    text = ("true" if value else "false") if isinstance(value, bool) else str(value)
    for char, entity in _ATTRIBUTE_ESCAPES:
        if char in text:
            text = text.replace(char, entity)
    return text


def _el(tag: str, attrs: Mapping[str, object] | None = None, content: str = "") -> str:
    """One element: its attributes sorted by name, ``content`` already XML (``<Tag />`` when there is none)."""
    written = "".join(f' {name}="{_escape_attribute(attrs[name])}"' for name in sorted(attrs)) if attrs else ""
    return f"<{tag}{written}>{content}</{tag}>" if content else f"<{tag}{written} />"


def _text(tag: str, text: str, attrs: Mapping[str, object] | None = None) -> str:
    return _el(tag, attrs, _escape_text(text))


def _response(*verbs: str) -> str:
    """The document. Characters UTF-8 cannot carry (a lone surrogate) become character references, as in ElementTree."""
    document = _DECLARATION + _el("Response", None, "".join(verbs))
    return document if document.isascii() else document.encode("utf-8", "xmlcharrefreplace").decode("utf-8")


def _greet(greeting: Greeting | None) -> str:
    if greeting is None:
        return ""
    if greeting.kind == "say" and greeting.text.strip():
        return _text("Say", greeting.text.strip(), greeting.voice.attrs())
    if greeting.kind == "play" and greeting.url:
        return _text("Play", greeting.url)
    return ""


def _say(message: str, voice: Voice) -> str:
    return _text("Say", message.strip(), voice.attrs()) if message.strip() else ""


def dial(
    *,
    numbers: Sequence[DialNumber],
    action: str,
    timeout: int,
    caller_id: str = "",
    record: bool = False,
    recording_callback: str = "",
    greeting: Greeting | None = None,
) -> str:
    """``<Dial action timeout answerOnBridge callerId [record]>`` with one ``<Number>`` per handler (max 10).
    With ``record``, ``recording_callback`` is where the carrier reports the recording (in progress, ready)."""
    attrs: dict[str, object] = {"action": action, "method": "POST", "timeout": int(timeout), "answerOnBridge": True}
    if caller_id:
        attrs["callerId"] = caller_id
    if record:
        attrs["record"] = "record-from-answer-dual"
        if recording_callback:
            attrs["recordingStatusCallback"] = recording_callback
            attrs["recordingStatusCallbackMethod"] = "POST"
            attrs["recordingStatusCallbackEvent"] = "in-progress completed absent"
    legs = []
    for n in numbers[:10]:
        leg: dict[str, object] = {}
        if n.send_digits:
            leg["sendDigits"] = n.send_digits
        if n.whisper_url:
            leg["url"] = n.whisper_url
            leg["method"] = "POST"
        if n.status_callback:
            leg["statusCallback"] = n.status_callback
            leg["statusCallbackEvent"] = "answered completed"
            leg["statusCallbackMethod"] = "POST"
        legs.append(_text("Number", n.number, leg))
    return _response(_greet(greeting), _el("Dial", attrs, "".join(legs)))


def menu(*, prompt: str, action: str, timeout: int, redirect: str, voice: Voice, greeting: Greeting | None = None) -> str:
    """The IVR menu: ``<Gather numDigits=1>`` saying the prompt, then ``<Redirect>`` when no key is pressed."""
    gather = {"numDigits": 1, "action": action, "method": "POST", "timeout": int(timeout), "actionOnEmptyResult": False}
    return _response(
        _greet(greeting), _el("Gather", gather, _text("Say", prompt, voice.attrs())), _text("Redirect", redirect, {"method": "POST"}),
    )


def reject() -> str:
    return _response(_el("Reject", {"reason": "rejected"}))


def say_hangup(message: str, voice: Voice = Voice(), greeting: Greeting | None = None) -> str:
    return _response(_greet(greeting), _say(message, voice), _el("Hangup"))


def voicemail(*, message: str, action: str, voice: Voice = Voice(), max_length: int = 120, greeting: Greeting | None = None) -> str:
    """Say the voicemail greeting, ``<Record>`` (beep, up to ``max_length`` seconds), then hang up."""
    record = {"action": action, "method": "POST", "maxLength": max_length, "playBeep": True, "timeout": 5}
    return _response(_greet(greeting), _say(message, voice), _el("Record", record), _el("Hangup"))


def hangup() -> str:
    return _response(_el("Hangup"))


def empty() -> str:
    return _response()


def whisper(text: str, voice: Voice = Voice()) -> str:
    return _response(_say(text, voice))


def failsafe(number: str, *, caller_id: str = "", message: str = DEFAULT_SORRY) -> str:
    """The answer when anything went wrong: dial the fail-safe number, or say sorry and hang up without one."""
    if not number:
        return say_hangup(message)
    attrs: dict[str, object] = {"answerOnBridge": True}
    if caller_id:
        attrs["callerId"] = caller_id
    return _response(_el("Dial", attrs, _text("Number", number)))


def enqueue(*, name: str, action: str, wait_url: str, greeting: Greeting | None = None) -> str:
    """Put the caller in the queue ``name``: Twilio requests ``wait_url`` (with QueuePosition, QueueTime ...) for what
    the caller hears while waiting, and ``action`` with the QueueResult when the caller leaves the queue."""
    attrs = {"action": action, "method": "POST", "waitUrl": wait_url, "waitUrlMethod": "POST"}
    return _response(_greet(greeting), _text("Enqueue", name, attrs))


def queue_wait(*, message: str, music_url: str, voice: Voice = Voice()) -> str:
    """The wait URL's answer while the caller may still wait: the message (with their position), then the hold
    music or a pause. Twilio requests the wait URL again when this ends."""
    return _response(_say(message, voice), _text("Play", music_url) if music_url else _el("Pause", {"length": 15}))


def queue_leave(*, url: str) -> str:
    """The wait URL's answer once the maximum wait has passed: the caller is taken out of the queue to ``url`` (the
    queue's result, which continues down the fallback chain). A ``<Redirect>`` rather than ``<Leave/>``: the TwiML
    schema we validate against (../shared/twiml-schema) has no ``<Leave>``; Twilio dequeues a waiting call that is
    redirected from its wait URL the same way (QueueResult ``redirected``)."""
    return _response(_text("Redirect", url, {"method": "POST"}))


def queue_dial(*, name: str, bridge_url: str, whisper: str = "", voice: Voice = Voice()) -> str:
    """The TwiML of the outbound call to a freed handler: the whisper said to them, then connect them to the first
    caller waiting in ``name``. Twilio requests ``bridge_url`` (``<Queue url>``) for the caller it actually dequeued
    (their CallSid, the dequeuing call's DequeingCallSid) and plays its answer to that caller before connecting
    them: the only moment we learn who was bridged to this line."""
    return _response(_say(whisper, voice), _el("Dial", None, _text("Queue", name, {"url": bridge_url, "method": "POST"})))


# --- Messaging ---------------------------------------------------------------------------------------------------
# The messaging webhook's answers (validated against twiml_messaging.xsd): ``<Response>`` with any ``<Message>``.


@dataclass(frozen=True)
class TextReply:
    body: str
    status_callback: str = ""


def messages(*replies: TextReply) -> str:
    """``<Response>`` with one ``<Message>`` per reply (none: the empty answer, nothing sent). Bodies come cleaned of
    what XML cannot carry (``tracking.models.texts.body_clean``)."""
    verbs = []
    for reply in replies:
        attrs = {"statusCallback": reply.status_callback, "method": "POST"} if reply.status_callback else None
        verbs.append(_text("Message", reply.body, attrs))
    return _response(*verbs)
