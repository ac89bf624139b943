"""Per-account settings (issue 30): a Twilio subaccount (its token never shown back), a fail-safe number and the
console's nomenclature, each blank for the install's setting; set in the account's admin page."""

from __future__ import annotations

import re

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from calltrack import nomenclature
from calltrack.models import Account, AccountRole, Membership
from routing.services.accounts import account_save
from tests.calltrack.test_accounts import grant_all
from tests.numbers.factories import TrackingNumberFactory
from tests.tracking.factories import CampaignFactory, UserFactory

pytestmark = pytest.mark.django_db

SUB_SID, SUB_TOKEN = "AC" + "b" * 32, "0123456789abcdef0123456789abcdef"


def _change_url(account: Account) -> str:
    return reverse("admin:calltrack_account_change", args=[account.pk])


def _form(account: Account, **changes) -> dict[str, str]:
    data = {"name": account.name, "slug": account.slug, "time_zone": account.time_zone, "currency": account.currency,
            "nomenclature": account.nomenclature, "failsafe_number": account.failsafe_number,
            "twilio_account_sid": account.twilio_account_sid, "twilio_auth_token": ""}
    data.update(changes)
    return data


def test_a_subaccount_needs_a_sid_and_a_token_of_twilios_shapes(settings):
    settings.TWILIO_ACCOUNT_SID = "AC" + "1" * 32
    with pytest.raises(ValidationError, match="32 hex digits"):
        Account(name="X", slug="x", twilio_account_sid="ACnope", twilio_auth_token=SUB_TOKEN).full_clean()
    with pytest.raises(ValidationError, match="both"):
        Account(name="X", slug="x", twilio_account_sid=SUB_SID).full_clean()
    with pytest.raises(ValidationError, match="install's own"):
        Account(name="X", slug="x", twilio_account_sid="AC" + "1" * 32, twilio_auth_token=SUB_TOKEN).full_clean()
    Account(name="X", slug="x", twilio_account_sid=SUB_SID, twilio_auth_token=SUB_TOKEN, failsafe_number="+13035550100").full_clean()


def test_one_subaccount_belongs_to_one_account():
    Account.objects.create(name="B", slug="b", twilio_account_sid=SUB_SID, twilio_auth_token=SUB_TOKEN)
    with pytest.raises(ValidationError, match="belongs to another account"):
        Account(name="C", slug="c", twilio_account_sid=SUB_SID, twilio_auth_token=SUB_TOKEN).full_clean()


def test_the_admin_sets_a_token_and_never_shows_it_back(admin_client):
    account = Account.objects.get_or_create(slug="default", defaults={"name": "Default"})[0]
    response = admin_client.post(_change_url(account), _form(account, twilio_account_sid=SUB_SID, twilio_auth_token=SUB_TOKEN,
                                                             failsafe_number="(303) 555-0100", nomenclature="performance"))
    assert response.status_code == 302, response.content[:2000]
    account.refresh_from_db()
    assert (account.twilio_account_sid, account.twilio_auth_token) == (SUB_SID, SUB_TOKEN)
    assert (account.failsafe_number, account.nomenclature) == ("+13035550100", "performance")
    page = admin_client.get(_change_url(account)).content.decode()
    assert SUB_TOKEN not in page and "cdef" in page  # its last four characters only
    listing = admin_client.get(reverse("admin:calltrack_account_changelist")).content.decode()
    assert SUB_TOKEN not in listing
    # A blank token keeps the current one; "use the install's" forgets both.
    admin_client.post(_change_url(account), _form(account, name="Renamed"))
    account.refresh_from_db()
    assert (account.name, account.twilio_auth_token) == ("Renamed", SUB_TOKEN)
    admin_client.post(_change_url(account), _form(account, twilio_clear="on"))
    account.refresh_from_db()
    assert (account.twilio_account_sid, account.twilio_auth_token) == ("", "")


def test_the_subaccount_changes_only_once_the_accounts_twilio_numbers_are_moved(admin_client):
    account = Account.objects.get_or_create(slug="default", defaults={"name": "Default"})[0]
    TrackingNumberFactory(number="+14155550301", carrier="twilio", account=account, campaign=CampaignFactory(account=account))
    form = _form(account, twilio_account_sid=SUB_SID, twilio_auth_token=SUB_TOKEN)
    refused = admin_client.post(_change_url(account), form)
    assert refused.status_code == 200 and "holds 1 Twilio numbers" in refused.content.decode()
    assert Account.objects.get(pk=account.pk).twilio_account_sid == ""
    assert admin_client.post(_change_url(account), {**form, "numbers_moved": "on"}).status_code == 302
    assert Account.objects.get(pk=account.pk).twilio_account_sid == SUB_SID


def test_an_owner_sees_whether_there_is_a_subaccount_but_cannot_set_it(client):
    account = Account.objects.create(name="Bravo", slug="bravo", twilio_account_sid=SUB_SID, twilio_auth_token=SUB_TOKEN)
    owner = UserFactory(username="owner-bravo", is_staff=True)
    grant_all(owner)
    Membership.objects.create(user=owner, account=account, role=AccountRole.OWNER)
    client.force_login(owner)
    page = client.get(_change_url(account)).content.decode()
    assert SUB_TOKEN not in page and 'name="twilio_account_sid"' not in page and SUB_SID in page
    response = client.post(_change_url(account), _form(account, failsafe_number="+13035550111", twilio_account_sid="", twilio_clear="on"))
    assert response.status_code == 302
    account.refresh_from_db()
    assert account.failsafe_number == "+13035550111" and account.twilio_auth_token == SUB_TOKEN


def test_a_new_failsafe_queues_the_fallback_urls_of_the_accounts_numbers(settings, django_capture_on_commit_callbacks, monkeypatch):
    settings.CALLTRACK_CARRIER, settings.CALLTRACK_FALLBACK_URL = "twilio", True
    queued = []
    monkeypatch.setattr("django_q.tasks.async_task", lambda *args, **kwargs: queued.append(args))
    account = Account.objects.get_or_create(slug="default", defaults={"name": "Default"})[0]
    account.failsafe_number = "+13035550122"
    with django_capture_on_commit_callbacks(execute=True):
        account_save(account=account, changed={"failsafe_number"})
    assert queued == [("calltrack.numbers.tasks.numbers_fallback_refresh_task", [], None, account.pk)]


def _owner_of_both(performance: Account, standard: Account):
    user = UserFactory(username="agency", is_staff=True)
    grant_all(user)
    for account in (performance, standard):
        Membership.objects.create(user=user, account=account, role=AccountRole.OWNER)
    return user


def test_the_console_speaks_the_nomenclature_of_the_account_acted_in(client):
    standard = Account.objects.get_or_create(slug="default", defaults={"name": "Default"})[0]
    bravo = Account.objects.create(name="Bravo Leads", slug="bravo", nomenclature="performance")
    user = _owner_of_both(bravo, standard)
    client.force_login(user)
    session = client.session
    session["calltrack_account"] = bravo.pk
    session.save()
    page = client.get(reverse("admin:tracking_source_changelist")).content.decode()
    assert re.search(r"\bPublishers?\b", page) and not re.search(r"\bSources\b", page)
    session["calltrack_account"] = standard.pk
    session.save()
    page = client.get(reverse("admin:tracking_source_changelist")).content.decode()
    assert re.search(r"\bSources\b", page) and not re.search(r"\bPublishers\b", page)
    # The request's words end with it: this thread speaks the install's again.
    assert str(nomenclature.SOURCES_TITLE) == "Sources"


def test_the_api_speaks_the_nomenclature_of_the_account_it_acts_in():
    standard = Account.objects.get_or_create(slug="default", defaults={"name": "Default"})[0]
    bravo = Account.objects.create(name="Bravo Leads", slug="bravo", nomenclature="performance")
    user = _owner_of_both(bravo, standard)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    labels = {}
    for account in (bravo, standard):
        options = api.options("/api/v1/tracking-numbers/", HTTP_X_CALLTRACK_ACCOUNT=account.slug)
        assert options.status_code == 200
        labels[account.slug] = options.json()["actions"]["POST"]["source"]["label"]
    assert labels == {"bravo": "Publisher", "default": "Source"}
    assert str(nomenclature.SOURCES_TITLE) == "Sources"


def test_a_blank_nomenclature_follows_the_install(settings, client):
    settings.CALLTRACK_NOMENCLATURE = "performance"
    settings.LOCALE_PATHS = nomenclature.locale_paths("performance")
    standard = Account.objects.get_or_create(slug="default", defaults={"name": "Default"})[0]
    bravo = Account.objects.create(name="Bravo", slug="bravo", nomenclature="standard")
    user = _owner_of_both(bravo, standard)
    client.force_login(user)
    session = client.session
    session["calltrack_account"] = standard.pk
    session.save()
    assert re.search(r"\bPublishers\b", client.get(reverse("admin:tracking_source_changelist")).content.decode())
    session["calltrack_account"] = bravo.pk
    session.save()
    page = client.get(reverse("admin:tracking_source_changelist")).content.decode()
    assert re.search(r"\bSources\b", page) and not re.search(r"\bPublishers\b", page)
