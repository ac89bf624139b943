"""The texts count (issue 29): the dashboard's text figures and the reports API equal the texts sent through the signed
webhook, by source and by campaign, scoped like the texts."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.test import Client
from lxml import html
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.numbers.factories import TrackingNumberFactory
from tests.routing.test_texts_incoming import text
from tests.tracking.factories import CampaignFactory, SourceFactory, UserFactory
from tracking.models import Collaborator, TextRoute

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(twilio):
    google, bing = SourceFactory(name="Google"), SourceFactory(name="Bing")
    roofing, solar = CampaignFactory(name="Roofing"), CampaignFactory(name="Solar")
    TextRoute.objects.create(campaign=roofing, auto_reply="Thanks!", convert_on="first_text", revenue=Decimal("10"), payout=Decimal("3"))
    g = TrackingNumberFactory(campaign=roofing, source=google)
    b = TrackingNumberFactory(campaign=solar, source=bing)
    senders = [f"+1415555{n:04d}" for n in range(1, 6)]
    for n, sender in enumerate(senders[:3]):  # three new contacts text Google's number: three conversions, three replies
        text(twilio, g.number, sid=f"SM{n:032d}", sender=sender)
    text(twilio, g.number, sid=f"SM{10:032d}", sender=senders[0], body="again")  # a fourth text, not a new contact
    for n, sender in enumerate(senders[3:]):  # two to Bing's, whose campaign answers nothing
        text(twilio, b.number, sid=f"SM{20 + n:032d}", sender=sender)
    return type("World", (), {"google": google, "bing": bing, "roofing": roofing, "solar": solar})


def figure(page, key: str) -> str:
    return html.fromstring(page.content).xpath(f'//*[@data-testid="figure-{key}"]')[0].text.strip()


def test_the_dashboards_text_figures_equal_the_texts_sent(world):
    client = Client()
    client.force_login(UserFactory(username="op", is_staff=True, is_superuser=True))
    page = client.get("/admin/", {"range": "today"})
    assert page.status_code == 200
    assert figure(page, "texts-received") == "6"
    assert figure(page, "texts-sent") == "4"  # the four auto-replies of Roofing
    assert figure(page, "texts-contacts") == "5"
    assert figure(page, "texts-converted") == "3"
    assert figure(page, "texts-revenue") == "$30.00" and figure(page, "texts-payout") == "$9.00"
    doc = html.fromstring(page.content)
    by_source = [[c.text_content().strip() for c in row.xpath("td")] for row in doc.xpath('//*[@data-testid="texts-by-source"]/tbody/tr')]
    assert [r[:3] for r in by_source] == [["Google", "4", "3"], ["Bing", "2", "0"]]
    by_campaign = [[c.text_content().strip() for c in row.xpath("td")] for row in doc.xpath('//*[@data-testid="texts-by-campaign"]/tbody/tr')]
    assert [r[:2] for r in by_campaign] == [["Roofing", "4"], ["Solar", "2"]]
    # Each figure opens the texts log on the same texts.
    log = client.get(doc.xpath('//*[@data-figure="texts-received"]')[0].get("href"))
    assert log.status_code == 200 and len(log.context["cl"].result_list) == 6


def test_the_reports_api_gives_the_same_figures_and_a_source_collaborator_only_its_own(world):
    staff = UserFactory(username="api-op", is_staff=True, is_superuser=True)
    collaborator = UserFactory(username="bing-api", is_staff=True)
    Collaborator.objects.create(user=collaborator, source=world.bing)

    def get(user):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
        return client.get("/api/v1/reports/texts", {"range": "today"})

    everything = get(staff).json()
    assert everything["totals"] == {"received": 6, "sent": 4, "waiting": 0, "failed": 0, "contacts": 5, "converted": 3, "revenue": "30.00",
                                    "payout": "9.00"}
    assert sum(row["received"] for row in everything["series"]) == 6 and sum(row["sent"] for row in everything["series"]) == 4
    assert [(r["label"], r["received"]) for r in everything["by_campaign"]] == [("Roofing", 4), ("Solar", 2)]
    own = get(collaborator).json()
    assert own["totals"] == {"received": 2, "sent": 0, "waiting": 0, "failed": 0, "contacts": 2, "converted": 0, "revenue": None,
                             "payout": "0.00"}
    assert [(r["label"], r["received"]) for r in own["by_source"]] == [("Bing", 2)] and own["by_campaign"] == []


def test_the_reports_api_refuses_a_bad_period_with_a_400(world):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=UserFactory(is_staff=True, is_superuser=True)).key}")
    for params in ({"range": "custom", "start": "2026-02-31", "end": "2026-03-01"}, {"range": "nope\x00"}):
        assert client.get("/api/v1/reports/texts", params).status_code == 400


def test_a_forward_counts_as_sent_only_once_the_carrier_took_it_and_a_failed_one_never(twilio, django_capture_on_commit_callbacks):
    """Three texts forwarded to a handler: one forward still queued for its worker, one the carrier took, one given up
    (an opted-out line). "Sent" counts the one the carrier took (and no auto-reply: the route has none); the others are
    "waiting" and "failed", and each figure's link opens the texts log on its texts."""
    from calltrack.numbers.services import texts as outbound
    from tests.routing.test_texts_forward_task import FailingCarrier
    from tests.tracking.factories import HandlerFactory
    from tracking.models import TextMessage, TextPurpose, TextStatus

    campaign = CampaignFactory(name="Roofing")
    TextRoute.objects.create(campaign=campaign, forward_handler=HandlerFactory(name="Dispatch"))
    number = TrackingNumberFactory(campaign=campaign, source=SourceFactory(name="Google"))
    for n in range(3):
        text(twilio, number.number, sid=f"SM{n:032d}", sender=f"+1415555{n:04d}")
    waiting, taken, given_up = TextMessage.objects.filter(purpose=TextPurpose.FORWARD).order_by("pk")
    assert outbound.text_forward_send(forward_id=taken.pk).status == TextStatus.SENT
    failed = outbound.text_forward_send(forward_id=given_up.pk, attempt=outbound.FORWARD_MAX_ATTEMPTS,
                                        carrier=FailingCarrier(failures=1))
    assert failed.status == TextStatus.FAILED and waiting.status == TextStatus.QUEUED

    staff = UserFactory(username="op", is_staff=True, is_superuser=True)
    api = APIClient()
    api.force_authenticate(staff)
    totals = api.get("/api/v1/reports/texts", {"range": "today"}).json()["totals"]
    assert (totals["received"], totals["sent"], totals["waiting"], totals["failed"]) == (3, 1, 1, 1)
    client = Client()
    client.force_login(staff)
    page = client.get("/admin/", {"range": "today"})
    assert (figure(page, "texts-sent"), figure(page, "texts-waiting"), figure(page, "texts-failed")) == ("1", "1", "1")
    doc = html.fromstring(page.content)
    for key, forward in (("texts-sent", taken), ("texts-waiting", waiting), ("texts-failed", given_up)):
        log = client.get(doc.xpath(f'//*[@data-figure="{key}"]')[0].get("href"))
        assert log.status_code == 200 and [t.pk for t in log.context["cl"].result_list] == [forward.pk], key
