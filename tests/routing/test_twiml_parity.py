"""routing.twiml writes its documents as strings: byte for byte what the twilio library's VoiceResponse writes
(tests/routing/twiml_reference.py, the same functions built with the library), for every function, with text
generated to hold whatever XML must escape (quotes, ampersands, angle brackets, CR/LF/tab, other scripts)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from routing import twiml
from tests.routing import twiml_reference as reference

# Text with every character XML escapes, other scripts and emoji; no surrogates (a request's text is decoded
# UTF-8), checked apart below.
TEXT = st.text(alphabet=st.one_of(st.sampled_from('&<>"\'\r\n\t #=?/'), st.characters(exclude_categories=("Cs",))), max_size=40)
VOICE = st.builds(twiml.Voice, st.sampled_from(["", "alice", "man", "Polly.Matthew", "Google.x", "bad voice"]), st.sampled_from(["", "en-US", "fr-FR"]))
GREETING = st.one_of(st.none(), st.builds(twiml.Greeting, st.sampled_from(["none", "say", "play"]), TEXT, TEXT, VOICE))
NUMBERS = st.lists(st.builds(twiml.DialNumber, TEXT, TEXT, TEXT, TEXT), max_size=12)
RUNS = settings(max_examples=60, deadline=None)


@RUNS
@given(numbers=NUMBERS, action=TEXT, timeout=st.integers(0, 600), caller_id=TEXT, record=st.booleans(), recording_callback=TEXT, greeting=GREETING)
def test_dial(numbers, action, timeout, caller_id, record, recording_callback, greeting):
    kwargs = dict(numbers=numbers, action=action, timeout=timeout, caller_id=caller_id, record=record, recording_callback=recording_callback, greeting=greeting)
    assert twiml.dial(**kwargs) == reference.dial(**kwargs)


@RUNS
@given(prompt=TEXT, action=TEXT, timeout=st.integers(0, 60), redirect=TEXT, voice=VOICE, greeting=GREETING)
def test_menu(prompt, action, timeout, redirect, voice, greeting):
    kwargs = dict(prompt=prompt, action=action, timeout=timeout, redirect=redirect, voice=voice, greeting=greeting)
    assert twiml.menu(**kwargs) == reference.menu(**kwargs)


@RUNS
@given(message=TEXT, action=TEXT, voice=VOICE, max_length=st.integers(1, 3600), greeting=GREETING, number=TEXT, caller_id=TEXT)
def test_messages_voicemail_and_failsafe(message, action, voice, max_length, greeting, number, caller_id):
    assert twiml.say_hangup(message, voice, greeting) == reference.say_hangup(message, voice, greeting)
    assert twiml.voicemail(message=message, action=action, voice=voice, max_length=max_length, greeting=greeting) == reference.voicemail(
        message=message, action=action, voice=voice, max_length=max_length, greeting=greeting)
    assert twiml.whisper(message, voice) == reference.whisper(message, voice)
    assert twiml.failsafe(number, caller_id=caller_id, message=message) == reference.failsafe(number, caller_id=caller_id, message=message)


@RUNS
@given(name=TEXT, action=TEXT, url=TEXT, message=TEXT, music_url=TEXT, voice=VOICE, greeting=GREETING)
def test_queues(name, action, url, message, music_url, voice, greeting):
    assert twiml.enqueue(name=name, action=action, wait_url=url, greeting=greeting) == reference.enqueue(name=name, action=action, wait_url=url, greeting=greeting)
    assert twiml.queue_wait(message=message, music_url=music_url, voice=voice) == reference.queue_wait(message=message, music_url=music_url, voice=voice)
    assert twiml.queue_leave(url=url) == reference.queue_leave(url=url)
    assert twiml.queue_dial(name=name, bridge_url=url) == reference.queue_dial(name=name, bridge_url=url)
    assert twiml.queue_dial(name=name, bridge_url=url, whisper=message, voice=voice) == reference.queue_dial(
        name=name, bridge_url=url, whisper=message, voice=voice)


def test_the_answers_without_arguments():
    for name in ("reject", "hangup", "empty"):
        assert getattr(twiml, name)() == getattr(reference, name)()


@pytest.mark.parametrize("text", ["\ud800", "a\udfffb", "caf\u00e9 \ud83d\ude00 \U0001f600"])
def test_a_lone_surrogate_becomes_a_character_reference_as_in_the_library(text):
    number = twiml.DialNumber(text, whisper_url=text)
    assert twiml.dial(numbers=[number], action=text, timeout=5) == reference.dial(numbers=[number], action=text, timeout=5)
    assert twiml.whisper(text) == reference.whisper(text)
