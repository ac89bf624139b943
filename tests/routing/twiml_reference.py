"""The reference for routing.twiml: its functions as they were written with the twilio library's VoiceResponse.

tests/routing/test_twiml_parity.py checks that routing.twiml's strings are byte for byte what these write.
"""

from __future__ import annotations

from collections.abc import Sequence

from twilio.twiml.voice_response import Dial, Gather, VoiceResponse

from routing.twiml import DEFAULT_SORRY, DialNumber, Greeting, Voice

_VOICE = Voice()


def _greet(target: VoiceResponse | Gather, greeting: Greeting | None) -> None:
    if greeting is None:
        return
    if greeting.kind == "say" and greeting.text.strip():
        target.say(greeting.text.strip(), **greeting.voice.attrs())
    elif greeting.kind == "play" and greeting.url:
        target.play(greeting.url)


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
    response = VoiceResponse()
    _greet(response, greeting)
    attrs: dict[str, object] = {"action": action, "method": "POST", "timeout": int(timeout), "answer_on_bridge": True}
    if caller_id:
        attrs["caller_id"] = caller_id
    if record:
        attrs["record"] = "record-from-answer-dual"
        if recording_callback:
            attrs["recording_status_callback"] = recording_callback
            attrs["recording_status_callback_method"] = "POST"
            attrs["recording_status_callback_event"] = "in-progress completed absent"
    d = Dial(**attrs)
    for n in numbers[:10]:
        kwargs: dict[str, str] = {}
        if n.send_digits:
            kwargs["send_digits"] = n.send_digits
        if n.whisper_url:
            kwargs["url"] = n.whisper_url
            kwargs["method"] = "POST"
        if n.status_callback:
            kwargs["status_callback"] = n.status_callback
            kwargs["status_callback_event"] = "answered completed"
            kwargs["status_callback_method"] = "POST"
        d.number(n.number, **kwargs)
    response.append(d)
    return str(response)


def menu(*, prompt: str, action: str, timeout: int, redirect: str, voice: Voice, greeting: Greeting | None = None) -> str:
    """The IVR menu: ``<Gather numDigits=1>`` saying the prompt, then ``<Redirect>`` when no key is pressed."""
    response = VoiceResponse()
    _greet(response, greeting)
    gather = Gather(num_digits=1, action=action, method="POST", timeout=int(timeout), action_on_empty_result=False)
    gather.say(prompt, **voice.attrs())
    response.append(gather)
    response.redirect(redirect, method="POST")
    return str(response)


def reject() -> str:
    response = VoiceResponse()
    response.reject(reason="rejected")
    return str(response)


def say_hangup(message: str, voice: Voice = _VOICE, greeting: Greeting | None = None) -> str:
    response = VoiceResponse()
    _greet(response, greeting)
    if message.strip():
        response.say(message.strip(), **voice.attrs())
    response.hangup()
    return str(response)


def voicemail(*, message: str, action: str, voice: Voice = _VOICE, max_length: int = 120, greeting: Greeting | None = None) -> str:
    """Say the voicemail greeting, ``<Record>`` (beep, up to ``max_length`` seconds), then hang up."""
    response = VoiceResponse()
    _greet(response, greeting)
    if message.strip():
        response.say(message.strip(), **voice.attrs())
    response.record(action=action, method="POST", max_length=max_length, play_beep=True, timeout=5)
    response.hangup()
    return str(response)


def hangup() -> str:
    response = VoiceResponse()
    response.hangup()
    return str(response)


def empty() -> str:
    return str(VoiceResponse())


def whisper(text: str, voice: Voice = _VOICE) -> str:
    response = VoiceResponse()
    if text.strip():
        response.say(text.strip(), **voice.attrs())
    return str(response)


def failsafe(number: str, *, caller_id: str = "", message: str = DEFAULT_SORRY) -> str:
    """The answer when anything went wrong: dial the fail-safe number, or say sorry and hang up without one."""
    if not number:
        return say_hangup(message)
    response = VoiceResponse()
    attrs: dict[str, object] = {"answer_on_bridge": True}
    if caller_id:
        attrs["caller_id"] = caller_id
    d = Dial(**attrs)
    d.number(number)
    response.append(d)
    return str(response)


def enqueue(*, name: str, action: str, wait_url: str, greeting: Greeting | None = None) -> str:
    """Put the caller in the queue ``name``: Twilio requests ``wait_url`` (with QueuePosition, QueueTime ...) for what
    the caller hears while waiting, and ``action`` with the QueueResult when the caller leaves the queue."""
    response = VoiceResponse()
    _greet(response, greeting)
    response.enqueue(name, action=action, method="POST", wait_url=wait_url, wait_url_method="POST")
    return str(response)


def queue_wait(*, message: str, music_url: str, voice: Voice = _VOICE) -> str:
    """The wait URL's answer while the caller may still wait: the message (with their position), then the hold
    music or a pause. Twilio requests the wait URL again when this ends."""
    response = VoiceResponse()
    if message.strip():
        response.say(message.strip(), **voice.attrs())
    if music_url:
        response.play(music_url)
    else:
        response.pause(length=15)
    return str(response)


def queue_leave(*, url: str) -> str:
    """The wait URL's answer once the maximum wait has passed: the caller is taken out of the queue to ``url`` (the
    queue's result, which continues down the fallback chain). A ``<Redirect>`` rather than ``<Leave/>``: the TwiML
    schema we validate against (../shared/twiml-schema) has no ``<Leave>``; Twilio dequeues a waiting call that is
    redirected from its wait URL the same way (QueueResult ``redirected``)."""
    response = VoiceResponse()
    response.redirect(url, method="POST")
    return str(response)


def queue_dial(*, name: str, bridge_url: str, whisper: str = "", voice: Voice = _VOICE) -> str:
    response = VoiceResponse()
    if whisper.strip():
        response.say(whisper.strip(), **voice.attrs())
    dial = Dial()
    dial.queue(name, url=bridge_url, method="POST")
    response.append(dial)
    return str(response)
