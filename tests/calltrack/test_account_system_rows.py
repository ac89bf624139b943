"""Rows made by system code (tasks, services outside a request) belong to the account of the row they are about, never
to the install's first account by mere default (issue 30); checks run by tasks look at each account by itself."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

from calltrack.account_fields import default_account_id
from calltrack.alerts_check import report_conditions_sync
from calltrack.models import Account, AccountRole, Membership
from calltrack.numbers.models import PortRequest, PortStatus, TrackingNumber
from calltrack.numbers.providers.local import LocalCarrier
from calltrack.numbers.services.lifecycle import BuyTarget, numbers_buy
from calltrack.numbers.services.porting import port_in_create, port_out_start
from tests.numbers.factories import NumberPoolFactory, PortRequestFactory
from tests.tracking.factories import CallFactory, CampaignFactory, SourceFactory, UserFactory
from tracking.models import Alert, AlertRecipient, Collaborator, FraudMonitor
from tracking.services.alerts import AlertSpec, alert_raise, recipient_takes, spam_surge_check
from tracking.services.monitors import monitor_check

pytestmark = pytest.mark.django_db


@pytest.fixture
def two():
    a = Account.objects.get(pk=default_account_id())
    b = Account.objects.create(name="Bravo", slug="bravo")
    return a, b


def test_an_alert_about_bs_source_is_bs(two):
    a, b = two
    source = SourceFactory(name="Google", account=b)
    alert = alert_raise(spec=AlertSpec(kind="fraud_monitor", key="k1", message="m", source_id=source.pk))
    assert alert.account_id == b.pk
    # The same key in A is another episode, not "already open".
    mine = alert_raise(spec=AlertSpec(kind="fraud_monitor", key="k1", message="m", account_id=a.pk))
    assert mine is not None and mine.account_id == a.pk


def test_an_accountwide_monitor_watches_its_own_accounts_sources_only(two):
    a, b = two
    now = timezone.now()
    theirs = SourceFactory(name="B only source", account=b)
    for i in range(3):
        CallFactory(source=theirs, campaign=CampaignFactory(account=b), account=b, status="completed",
                    started_at=now - timedelta(minutes=5 + i), answered_at=now - timedelta(minutes=5 + i), talk_time=2)
    monitor = FraudMonitor.objects.create(name="Short", kind="short_calls", min_calls=1, threshold_points=1, account=a)
    notes = monitor_check(monitor=monitor, at=now)
    assert not any("B only source" in note for note in notes)
    assert not Alert.objects.exists()
    theirs.refresh_from_db()
    assert theirs.paused_at is None


def test_a_spam_surge_is_raised_in_the_account_it_happens_in(two, settings):
    a, b = two
    settings.CALLTRACK_SPAM_SURGE_MIN = 2
    now = timezone.now()
    campaign = CampaignFactory(account=b)
    for i in range(3):
        CallFactory(campaign=campaign, account=b, tags={"spam": "yes"}, started_at=now - timedelta(minutes=10 + i))
    alert = spam_surge_check(at=now)
    assert alert is not None and alert.account_id == b.pk
    assert list(Alert.objects.values_list("account_id", flat=True)) == [b.pk]


def test_the_dashboards_conditions_become_alerts_of_their_own_account(two):
    a, b = two
    PortRequestFactory(account=b, campaign=CampaignFactory(account=b), status=PortStatus.PENDING)
    report_conditions_sync()
    kinds = set(Alert.objects.filter(kind="port_pending").values_list("account_id", flat=True))
    assert kinds == {b.pk}


def test_a_recipient_takes_its_own_accounts_alerts_only(two):
    a, b = two
    alert_b = alert_raise(spec=AlertSpec(kind="spam_surge", key="s", message="m", account_id=b.pk))
    staff_a = AlertRecipient.objects.create(name="Ops A", email="ops@a.example.com", account=a)
    staff_b = AlertRecipient.objects.create(name="Ops B", email="ops@b.example.com", account=b)
    assert not recipient_takes(staff_a, alert_b)
    assert recipient_takes(staff_b, alert_b)


def test_numbers_bought_outside_a_request_join_their_pools_account(two):
    a, b = two
    pool = NumberPoolFactory(account=b, campaign=CampaignFactory(account=b))
    (number,) = numbers_buy(count=1, target=BuyTarget(pool=pool), area_code="415")
    assert number.account_id == b.pk


def test_port_requests_and_their_numbers_belong_to_the_campaigns_account(two):
    a, b = two
    campaign = CampaignFactory(account=b)
    number = LocalCarrier().search(area_code="415", limit=1)[0].number
    request = port_in_create(numbers=[number], loa_name="Jane", loa_address="1 Main St", campaign=campaign)
    assert request.account_id == b.pk
    assert TrackingNumber.objects.get(number=number).account_id == b.pk
    (theirs,) = numbers_buy(count=1, target=BuyTarget(campaign=campaign), area_code="415")
    out = port_out_start(numbers=[theirs.number], to_carrier="Other")
    assert PortRequest.objects.get(pk=out.pk).account_id == b.pk


def test_the_collaborator_admin_takes_a_login_by_name_and_never_anothers_member(two, client):
    a, b = two
    owner = UserFactory(username="owner-a", is_staff=True)
    owner.user_permissions.add(*Permission.objects.filter(content_type__app_label="tracking"))
    Membership.objects.create(user=owner, account=a, role=AccountRole.OWNER)
    b_member = UserFactory(username="member-of-b", is_staff=True)
    Membership.objects.create(user=b_member, account=b, role=AccountRole.ADMIN)
    UserFactory(username="publisher", is_staff=True)
    source = SourceFactory(name="Google", account=a)
    client.force_login(owner)
    page = client.get("/admin/tracking/collaborator/add/").content.decode()
    assert 'name="username"' in page and "member-of-b" not in page and 'name="user"' not in page
    refused = client.post("/admin/tracking/collaborator/add/", {"username": "member-of-b", "source": source.pk})
    assert refused.status_code == 200 and "already works elsewhere" in refused.content.decode()
    assert not Collaborator.objects.filter(user=b_member).exists()
    done = client.post("/admin/tracking/collaborator/add/", {"username": "publisher", "source": source.pk})
    assert done.status_code == 302, done.content.decode()[:3000]
    assert Collaborator.objects.get(user__username="publisher").account_id == a.pk


def test_a_pool_takes_no_number_of_another_account(two):
    from django.core.exceptions import ValidationError

    from calltrack.numbers.services.pool_membership import pool_numbers_add

    a, b = two
    mine = NumberPoolFactory(account=a, campaign=CampaignFactory(account=a))
    (theirs,) = numbers_buy(count=1, target=BuyTarget(campaign=CampaignFactory(account=b)), area_code="415")
    with pytest.raises(ValidationError, match="no such tracking number"):
        pool_numbers_add(pool=mine, numbers=[theirs.number])
    theirs.refresh_from_db()
    assert (theirs.pool_id, theirs.account_id) == (None, b.pk)
