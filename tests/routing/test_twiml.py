"""Every kind of answer validates against Twilio's TwiML schema."""

from __future__ import annotations

from lxml import etree

from routing import twiml

VOICE = twiml.Voice("alice", "en-US")
GREETING = twiml.Greeting("say", "Welcome.", voice=VOICE)


def test_dial_with_every_attribute(assert_valid_twiml):
    numbers = [twiml.DialNumber(f"+1303555{i:04d}", "ww12#", f"https://x.test/voice/whisper?attempt={i}", f"https://x.test/s?a={i}") for i in range(10)]
    xml = twiml.dial(numbers=numbers, action="https://x.test/voice/dial-status?call=1&seq=1", timeout=25, caller_id="+14155550100", record=True, greeting=GREETING)
    assert_valid_twiml(xml)
    dial = etree.fromstring(xml.encode()).find("Dial")
    assert dial.get("answerOnBridge") == "true" and dial.get("record") == "record-from-answer-dual"
    assert len(dial.findall("Number")) == 10
    assert dial.find("Number").get("statusCallbackEvent") == "answered completed"


def test_dial_never_holds_more_than_ten_numbers(assert_valid_twiml):
    xml = twiml.dial(numbers=[twiml.DialNumber(f"+1303555{i:04d}") for i in range(12)], action="/a", timeout=30)
    assert_valid_twiml(xml)
    assert len(etree.fromstring(xml.encode()).findall("Dial/Number")) == 10


def test_menu_reject_hangup_voicemail_whisper_empty_and_failsafe(assert_valid_twiml):
    for xml in (
        twiml.menu(prompt="Press 1.", action="/g?r=1", timeout=5, redirect="/g?r=1", voice=VOICE, greeting=twiml.Greeting("play", url="https://x.test/a.mp3")),
        twiml.reject(),
        twiml.say_hangup("Bye.", VOICE),
        twiml.voicemail(message="Leave a message.", action="/v?call=1", voice=VOICE),
        twiml.whisper("Call from Roofing.", VOICE),
        twiml.hangup(),
        twiml.empty(),
        twiml.failsafe("+13035550100", caller_id="+14155550100"),
        twiml.failsafe(""),
    ):
        assert_valid_twiml(xml)


def test_voices_the_schema_does_not_know_are_left_to_twilios_default():
    assert twiml.Voice("alice", "en-US").attrs() == {"voice": "Polly.Joanna", "language": "en-US"}
    assert twiml.Voice("Polly.Matthew").attrs() == {"voice": "Polly.Matthew"}
    assert twiml.Voice("Google.en-US-Neural2-A").attrs() == {}
