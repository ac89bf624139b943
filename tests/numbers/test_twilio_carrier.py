"""The Twilio carrier against a fake HTTP client: the exact requests the SDK sends, and Twilio's errors as sentences."""

from __future__ import annotations

import json

import pytest
from twilio.http import HttpClient
from twilio.http.response import Response

from calltrack.numbers.providers import CarrierError
from calltrack.numbers.providers.twilio import TwilioCarrier

SID = "AC" + "a" * 32
API = f"https://api.twilio.com/2010-04-01/Accounts/{SID}"


class FakeTwilio(HttpClient):
    """Records every request and answers with queued (status, body) pairs, like Twilio's API would."""

    def __init__(self, *answers: tuple[int, object]) -> None:
        super().__init__(logger=None, is_async=False)
        self.answers = list(answers)
        self.requests: list[dict] = []

    def request(self, method, uri, params=None, data=None, headers=None, auth=None, timeout=None, allow_redirects=False):
        self.requests.append({"method": method, "uri": uri, "params": dict(params or {}), "data": data, "auth": auth, "headers": headers or {}})
        status, body = self.answers.pop(0)
        return Response(status, body if isinstance(body, str) else json.dumps(body), headers={})


def carrier(*answers) -> tuple[TwilioCarrier, FakeTwilio]:
    fake = FakeTwilio(*answers)
    return TwilioCarrier(account_sid=SID, auth_token="secret", http_client=fake), fake


def page(key: str, items: list[dict]) -> dict:
    return {key: items, "uri": "/x.json", "page": 0, "page_size": 50, "first_page_uri": "/x.json", "next_page_uri": None,
            "previous_page_uri": None, "start": 0, "end": len(items)}


def test_search_local_numbers_sends_area_code_and_voice_filter():
    twilio, fake = carrier((200, page("available_phone_numbers", [
        {"phone_number": "+14155550123", "friendly_name": "(415) 555-0123", "region": "CA", "locality": "San Francisco",
         "iso_country": "US", "capabilities": {"voice": True}},
    ])))
    found = twilio.search(area_code="415", limit=3)
    assert [(n.number, n.area_code, n.locality) for n in found] == [("+14155550123", "415", "San Francisco")]
    request = fake.requests[0]
    assert request["method"] == "GET"
    assert request["uri"] == f"{API}/AvailablePhoneNumbers/US/Local.json"
    assert request["params"] == {"AreaCode": 415, "VoiceEnabled": "true", "PageSize": 3}
    assert request["auth"] == (SID, "secret")


def test_search_toll_free_and_near_a_number():
    twilio, fake = carrier((200, page("available_phone_numbers", [])), (200, page("available_phone_numbers", [])))
    twilio.search(number_type="toll_free", contains="FLOWERS", limit=5)
    twilio.search(near_number="+13035550100", limit=2)
    assert fake.requests[0]["uri"] == f"{API}/AvailablePhoneNumbers/US/TollFree.json"
    assert fake.requests[0]["params"]["Contains"] == "FLOWERS"
    assert fake.requests[1]["params"]["NearNumber"] == "+13035550100"


def test_buy_sets_the_voice_url_and_status_callback():
    twilio, fake = carrier((201, {"sid": "PN" + "1" * 32, "phone_number": "+14155550123", "account_sid": SID}))
    bought = twilio.buy(number="+14155550123", voice_url="https://c.example.com/voice/incoming",
                        status_url="https://c.example.com/voice/status")
    assert bought.carrier_id == "PN" + "1" * 32
    request = fake.requests[0]
    assert (request["method"], request["uri"]) == ("POST", f"{API}/IncomingPhoneNumbers.json")
    assert request["data"] == {
        "PhoneNumber": "+14155550123", "VoiceUrl": "https://c.example.com/voice/incoming", "VoiceMethod": "POST",
        "StatusCallback": "https://c.example.com/voice/status", "StatusCallbackMethod": "POST",
    }


def test_configure_updates_the_number_by_its_sid():
    twilio, fake = carrier((200, {"sid": "PN1", "phone_number": "+14155550123"}))
    twilio.configure(number="+14155550123", carrier_id="PN1", voice_url="https://v", status_url="https://s")
    assert fake.requests[0]["method"] == "POST"
    assert fake.requests[0]["uri"] == f"{API}/IncomingPhoneNumbers/PN1.json"
    assert fake.requests[0]["data"]["VoiceUrl"] == "https://v"


def test_release_deletes_and_treats_an_already_gone_number_as_released():
    twilio, fake = carrier((204, ""), (404, {"code": 20404, "message": "The requested resource was not found", "status": 404}))
    twilio.release(number="+14155550123", carrier_id="PN1")
    twilio.release(number="+14155550123", carrier_id="PN1")
    assert [(r["method"], r["uri"]) for r in fake.requests] == [("DELETE", f"{API}/IncomingPhoneNumbers/PN1.json")] * 2


def test_release_without_a_sid_looks_the_number_up_first():
    twilio, fake = carrier((200, page("incoming_phone_numbers", [{"sid": "PN9", "phone_number": "+14155550123"}])), (204, ""))
    twilio.release(number="+14155550123", carrier_id="")
    assert fake.requests[0]["params"] == {"PhoneNumber": "+14155550123", "PageSize": 1}
    assert fake.requests[1]["uri"] == f"{API}/IncomingPhoneNumbers/PN9.json"


@pytest.mark.parametrize(
    ("status", "body", "code", "message"),
    [
        (400, {"code": 21422, "message": "PhoneNumber is not available", "status": 400}, "unavailable",
         "The number is no longer available to buy at Twilio"),
        (401, {"code": 20003, "message": "Authenticate", "status": 401}, "auth", "Twilio refused the credentials"),
        (429, {"code": 20429, "message": "Too Many Requests", "status": 429}, "rate_limited", "rate limiting us; try again"),
        (500, "<html>oops</html>", "failed", "Twilio answered 500"),
    ],
)
def test_twilio_errors_become_clear_carrier_errors(status, body, code, message):
    twilio, _ = carrier((status, body))
    with pytest.raises(CarrierError, match=message) as exc:
        twilio.buy(number="+14155550123", voice_url="https://v", status_url="https://s")
    assert exc.value.code == code


def test_port_in_posts_the_loa_as_json_and_maps_statuses():
    twilio, fake = carrier(
        (201, {"port_in_request_sid": "KW" + "2" * 32, "port_in_request_status": "In Review"}),
        (200, {"port_in_request_sid": "KW1", "port_in_request_status": "In Progress", "phone_numbers": [{"phone_number": "+14155550142"}]}),
        (200, {"port_in_request_sid": "KW1", "port_in_request_status": "Completed", "phone_numbers": []}),
        (200, {"port_in_request_sid": "KW1", "port_in_request_status": "Canceled", "order_cancellation_reason": "LOA mismatch"}),
    )
    request_id = twilio.port_in_start(numbers=["+14155550142"], loa_name="Jane Doe", loa_address="1 Main St\nSpringfield, IL 62701")
    assert request_id == "KW" + "2" * 32
    sent = fake.requests[0]
    assert (sent["method"], sent["uri"]) == ("POST", "https://numbers.twilio.com/v1/Porting/PortIn")
    assert sent["headers"]["Content-Type"] == "application/json"
    assert sent["data"]["phone_numbers"] == [{"phone_number": "+14155550142"}]
    info = sent["data"]["losing_carrier_information"]
    assert info["customer_name"] == "Jane Doe"
    assert info["address"] == {"street": "1 Main St", "street_2": "", "city": "Springfield", "state": "IL", "zip": "62701", "country": "US"}
    assert twilio.port_in_status(request_id="KW1").status == "submitted"
    assert fake.requests[1]["uri"] == "https://numbers.twilio.com/v1/Porting/PortIn/KW1"
    assert twilio.port_in_status(request_id="KW1").status == "completed"
    rejected = twilio.port_in_status(request_id="KW1")
    assert (rejected.status, rejected.reason) == ("rejected", "LOA mismatch")


def test_port_out_completes_when_the_number_has_left_the_account():
    twilio, _ = carrier(
        (200, page("incoming_phone_numbers", [{"sid": "PN9", "phone_number": "+14155550123"}])),
        (200, page("incoming_phone_numbers", [])),
    )
    assert twilio.port_out_status(number="+14155550123", carrier_id="PN9").status == "submitted"
    assert twilio.port_out_status(number="+14155550123", carrier_id="PN9").status == "completed"


def test_missing_credentials_are_refused():
    with pytest.raises(CarrierError, match="TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN"):
        TwilioCarrier(account_sid="", auth_token="")
