"""Webhooks of an account's Twilio subaccount (issue 30): Twilio signs them with the subaccount's auth token. The
install's token is tried first (no statement, as before); the subaccount's token, found by the request's
AccountSid, only when it fails; a request signed by one account's subaccount about another account's number or
call is refused, and the fail-safe falls back to the account's fail-safe number."""

from __future__ import annotations

import pytest
from django.db import OperationalError
from django.db.backends.base.base import BaseDatabaseWrapper
from lxml import etree

from calltrack.models import Account
from calltrack.numbers.models import TrackingNumber
from routing import signatures
from tests.numbers.factories import TrackingNumberFactory
from tests.routing.conftest import sign
from tests.tracking.factories import CampaignFactory
from tracking.models import Call, TextMessage

pytestmark = pytest.mark.django_db

SUB_SID, SUB_TOKEN = "AC" + "b" * 32, "c" * 32
OTHER_SID, OTHER_TOKEN = "AC" + "d" * 32, "e" * 32


@pytest.fixture(autouse=True)
def _fresh_map():
    signatures.subaccounts_forget()
    yield
    signatures.subaccounts_forget()


@pytest.fixture
def accounts():
    default = Account.objects.get_or_create(slug="default", defaults={"name": "Default"})[0]
    bravo = Account.objects.create(name="Bravo Roofing", slug="bravo", twilio_account_sid=SUB_SID, twilio_auth_token=SUB_TOKEN)
    charlie = Account.objects.create(name="Charlie Dental", slug="charlie", twilio_account_sid=OTHER_SID, twilio_auth_token=OTHER_TOKEN)
    TrackingNumberFactory(number="+14155550201", account=default, campaign=CampaignFactory(account=default))
    TrackingNumberFactory(number="+14155550202", account=bravo, campaign=CampaignFactory(account=bravo))
    TrackingNumberFactory(number="+14155550203", account=charlie, campaign=CampaignFactory(account=charlie))
    return {"default": default, "bravo": bravo, "charlie": charlie}


def _call(sid: str, to: str, account_sid: str) -> dict[str, str]:
    return {"CallSid": sid, "AccountSid": account_sid, "From": "+13035550111", "To": to, "CallStatus": "ringing"}


def test_a_call_to_a_subaccount_number_signed_with_its_token_is_routed(accounts, twilio):
    params = _call("CAsub1", "+14155550202", SUB_SID)
    response = twilio.post("/voice/incoming", params, signature=sign("http://testserver/voice/incoming", params, SUB_TOKEN))
    assert response.status_code == 200
    assert Call.objects.get(call_sid="CAsub1").account_id == accounts["bravo"].pk


def test_the_install_token_still_signs_every_number(accounts, twilio):
    # A number of an account with a subaccount may still sit in the install's Twilio account (bought before).
    response = twilio.post("/voice/incoming", _call("CAsub2", "+14155550202", "AC" + "1" * 32))
    assert response.status_code == 200


def test_a_wrong_token_for_the_named_subaccount_is_refused(accounts, twilio):
    params = _call("CAsub3", "+14155550202", SUB_SID)
    response = twilio.post("/voice/incoming", params, signature=sign("http://testserver/voice/incoming", params, "f" * 32))
    assert response.status_code == 403
    assert not Call.objects.filter(call_sid="CAsub3").exists()


def test_one_accounts_subaccount_cannot_sign_a_call_to_another_accounts_number(accounts, twilio):
    """Charlie's client knows its own subaccount's token: it cannot forge calls to Bravo's (or the install's) numbers."""
    for to in ("+14155550202", "+14155550201"):
        params = _call(f"CAforge{to[-1]}", to, OTHER_SID)
        response = twilio.post("/voice/incoming", params, signature=sign("http://testserver/voice/incoming", params, OTHER_TOKEN))
        assert response.status_code == 403
    assert not Call.objects.filter(call_sid__startswith="CAforge").exists()


def test_a_callback_signed_by_a_subaccount_is_refused_for_another_accounts_call(accounts, twilio):
    params = _call("CAsub5", "+14155550202", SUB_SID)
    twilio.post("/voice/incoming", params, signature=sign("http://testserver/voice/incoming", params, SUB_TOKEN))
    call = Call.objects.get(call_sid="CAsub5")
    url = f"http://testserver/voice/dial-status?call={call.pk}&seq=1"
    forged = {**params, "AccountSid": OTHER_SID, "DialCallStatus": "completed"}
    assert twilio.post(url, forged, signature=sign(url, forged, OTHER_TOKEN)).status_code == 403
    mine = {**params, "DialCallStatus": "no-answer"}
    assert twilio.post(url, mine, signature=sign(url, mine, SUB_TOKEN)).status_code == 200


def test_a_text_to_a_subaccount_number_signed_with_its_token_is_kept(accounts, twilio):
    params = {"MessageSid": "SM" + "1" * 32, "AccountSid": SUB_SID, "From": "+13035550111", "To": "+14155550202", "Body": "hi"}
    response = twilio.post("/sms/incoming", params, signature=sign("http://testserver/sms/incoming", params, SUB_TOKEN))
    assert response.status_code == 200
    assert TextMessage.objects.get(message_sid=params["MessageSid"]).account_id == accounts["bravo"].pk
    forged = {**params, "MessageSid": "SM" + "2" * 32, "AccountSid": OTHER_SID}
    assert twilio.post("/sms/incoming", forged, signature=sign("http://testserver/sms/incoming", forged, OTHER_TOKEN)).status_code == 403
    assert not TextMessage.objects.filter(message_sid=forged["MessageSid"]).exists()


def test_the_install_signed_path_reads_no_subaccount(accounts, twilio):
    """The map of subaccounts is read only when the install's token fails."""
    signatures.subaccounts_forget()
    twilio.post("/voice/incoming", _call("CAsub6", "+14155550201", "AC" + "1" * 32))
    assert signatures.SUBACCOUNTS._loaded_at is None


def test_a_new_token_is_used_after_the_account_is_saved(accounts, twilio):
    from routing.services.accounts import account_save

    params = _call("CAsub7", "+14155550202", SUB_SID)
    twilio.post("/voice/incoming", params, signature=sign("http://testserver/voice/incoming", params, SUB_TOKEN))  # map loaded
    bravo = accounts["bravo"]
    bravo.twilio_auth_token = "9" * 32
    account_save(account=bravo, changed={"twilio_auth_token"})
    params = _call("CAsub8", "+14155550202", SUB_SID)
    assert twilio.post("/voice/incoming", params, signature=sign("http://testserver/voice/incoming", params, "9" * 32)).status_code == 200


def _dialled(content: bytes) -> list[str]:
    return [n.text for n in etree.fromstring(content).iter("Number")]


def test_a_failing_call_dials_the_accounts_failsafe_when_number_and_campaign_have_none(accounts, twilio, settings, monkeypatch):
    settings.CALLTRACK_FAILSAFE_NUMBER = "+13035550999"
    Account.objects.filter(pk=accounts["bravo"].pk).update(failsafe_number="+13035550777")

    def broken(*args, **kwargs):
        raise RuntimeError("routing broke")

    monkeypatch.setattr("routing.services.incoming_answer", broken)
    params = _call("CAfs1", "+14155550202", SUB_SID)
    response = twilio.post("/voice/incoming", params, signature=sign("http://testserver/voice/incoming", params, SUB_TOKEN))
    assert _dialled(response.content) == ["+13035550777"]
    # The install's account has none: the install's setting.
    response = twilio.post("/voice/incoming", _call("CAfs2", "+14155550201", "AC" + "1" * 32))
    assert _dialled(response.content) == ["+13035550999"]


def test_the_campaigns_failsafe_comes_before_the_accounts(accounts):
    from routing.services import failsafe_number

    Account.objects.filter(pk=accounts["bravo"].pk).update(failsafe_number="+13035550777")
    assert failsafe_number(call=Call(account_id=accounts["bravo"].pk)) == "+13035550777"
    campaign = CampaignFactory(account=accounts["bravo"], failsafe_number="+13035550666")
    assert failsafe_number(call=Call(campaign=campaign, account_id=accounts["bravo"].pk)) == "+13035550666"
    assert failsafe_number(to="+14155550202") == "+13035550777"



@pytest.fixture
def map_then_database_down(accounts, monkeypatch):
    """This process read the subaccounts while the database answered; then every connection fails."""
    assert signatures.SUBACCOUNTS.get(SUB_SID, after_failure=False) is not None

    def unreachable(self):
        raise OperationalError("connection to server at 127.0.0.1, port 5432 failed: Connection refused")

    monkeypatch.setattr(BaseDatabaseWrapper, "ensure_connection", unreachable)


def test_the_fallback_url_of_a_subaccount_number_answers_with_the_database_down(map_then_database_down, twilio):
    params = {**_call("CAfb1", "+14155550202", SUB_SID), "ErrorCode": "11200"}
    url = "http://testserver/voice/fallback?failsafe=%2B13035550177"
    response = twilio.post(url, params, signature=sign(url, params, SUB_TOKEN))
    assert response.status_code == 200 and _dialled(response.content) == ["+13035550177"]
    assert twilio.post(url, params, signature=sign(url, params, "f" * 32)).status_code == 403


def _bravo_call_with_legs(accounts):
    from tests.tracking.factories import CallAttemptFactory, CallFactory, HandlerFactory
    from tracking.models import AttemptKind

    tn = TrackingNumber.objects.get(number="+14155550202")
    call = CallFactory(call_sid="CAbravo1", tracking_number=tn, campaign=tn.campaign, account=accounts["bravo"], status="in-progress")
    waiting = CallFactory(call_sid="CAbravo2", tracking_number=tn, campaign=tn.campaign, account=accounts["bravo"], status="in-progress")
    handler = HandlerFactory(account=accounts["bravo"])
    leg = CallAttemptFactory(call=call, handler=handler, sequence=1)
    queue_leg = CallAttemptFactory(call=call, handler=handler, sequence=2, kind=AttemptKind.QUEUE)
    return call, waiting, leg, queue_leg


@pytest.mark.parametrize("path", ["status", "attempt-status", "whisper", "queue-bridge"])
def test_a_callback_found_by_callsid_or_leg_is_refused_when_another_subaccount_signed_it(accounts, twilio, path):
    """The callbacks that name no ``?call=``: the call status (CallSid), a leg's status and whisper (its id), a
    queue's bridge (the leg's id and the dequeued caller's CallSid). Charlie's subaccount signs them about Bravo's call:
    403, nothing written; Bravo's own subaccount is answered."""
    call, waiting, leg, queue_leg = _bravo_call_with_legs(accounts)
    url, params = {
        "status": ("http://testserver/voice/status", {"CallSid": call.call_sid, "CallStatus": "completed", "CallDuration": "30"}),
        "attempt-status": (f"http://testserver/voice/attempt-status?attempt={leg.pk}",
                           {"CallSid": "CAleg1", "CallStatus": "completed", "CallDuration": "30"}),
        "whisper": (f"http://testserver/voice/whisper?attempt={leg.pk}", {"CallSid": "CAleg1"}),
        "queue-bridge": (f"http://testserver/voice/queue-bridge?attempt={queue_leg.pk}", {"CallSid": waiting.call_sid, "QueueTime": "5"}),
    }[path]
    before = _state(call, waiting, leg, queue_leg)
    forged = {**params, "AccountSid": OTHER_SID}
    response = twilio.post(url, forged, signature=sign(url, forged, OTHER_TOKEN))
    assert response.status_code == 403, response.content
    assert _state(call, waiting, leg, queue_leg) == before
    own = {**params, "AccountSid": SUB_SID}
    response = twilio.post(url, own, signature=sign(url, own, SUB_TOKEN))
    assert response.status_code == 200, response.content
    assert _state(call, waiting, leg, queue_leg) != before


def _state(*rows):
    out = []
    for row in rows:
        row.refresh_from_db()
        out.append((type(row).__name__, row.pk, getattr(row, "status", None), getattr(row, "call_id", None), getattr(row, "answered_at", None)))
    return out


def test_a_texts_status_signed_by_another_subaccount_changes_nothing(accounts, twilio):
    tn = TrackingNumber.objects.get(number="+14155550202")
    text = TextMessage.objects.create(message_sid="SM" + "3" * 32, direction="outbound", status="queued", tracking_number=tn,
                                      from_number=tn.number, to_number="+13035550111", body="hello", account=accounts["bravo"])
    url = "http://testserver/sms/status"
    forged = {"MessageSid": text.message_sid, "MessageStatus": "delivered", "AccountSid": OTHER_SID}
    assert twilio.post(url, forged, signature=sign(url, forged, OTHER_TOKEN)).status_code == 200  # not its text: nothing to say
    text.refresh_from_db()
    assert text.status == "queued"
    own = {**forged, "AccountSid": SUB_SID}
    assert twilio.post(url, own, signature=sign(url, own, SUB_TOKEN)).status_code == 200
    text.refresh_from_db()
    assert text.status == "delivered"
