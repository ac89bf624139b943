"""The number commands in an agency's install (issue 30): ``--account SLUG`` says whose campaigns, sources, pools and
numbers a command works with (default: the first account); a slug that names no account is a one-line error."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from calltrack.models import Account
from calltrack.numbers.models import NumberStatus, TrackingNumber
from routing import signatures
from tests.numbers.factories import TrackingNumberFactory
from tests.tracking.factories import CampaignFactory
from tracking.models import Call

pytestmark = pytest.mark.django_db


@pytest.fixture
def two():
    """Two accounts, each with a campaign "main" (campaign ids are unique per account only) and a number."""
    default = Account.objects.get_or_create(slug="default", defaults={"name": "Default"})[0]
    bravo = Account.objects.create(name="Bravo Roofing", slug="bravo")
    main_a = CampaignFactory(name="Main A", campaign_id="main", account=default)
    main_b = CampaignFactory(name="Main B", campaign_id="main", account=bravo)
    tn_a = TrackingNumberFactory(number="+14155550401", campaign=main_a, account=default)
    tn_b = TrackingNumberFactory(number="+14155550402", campaign=main_b, account=bravo)
    return {"default": default, "bravo": bravo, "main_a": main_a, "main_b": main_b, "tn_a": tn_a, "tn_b": tn_b}


@pytest.mark.parametrize("command, args", [
    ("numbers_buy", ["--count", "1", "--area-code", "415", "--campaign", "main"]),
    ("numbers_export", []),
    ("numbers_release", ["+14155550402"]),
    ("numbers_configure", []),
    ("port_out", ["+14155550402", "--to-carrier", "Other"]),
    ("demo_load", ["--no-user"]),
])
def test_a_slug_that_names_no_account_is_a_clear_error(two, command, args):
    with pytest.raises(CommandError, match=r"--account: no account with the slug 'nope' \(accounts: bravo, default\)"):
        call_command(command, *args, "--account", "nope", stdout=StringIO(), stderr=StringIO())


def test_numbers_are_bought_for_the_campaign_of_the_named_account(two):
    call_command("numbers_buy", "--count", "2", "--area-code", "415", "--campaign", "main", "--account", "bravo", stdout=StringIO())
    bought = TrackingNumber.objects.exclude(pk__in=[two["tn_a"].pk, two["tn_b"].pk])
    assert {(tn.campaign_id, tn.account_id) for tn in bought} == {(two["main_b"].pk, two["bravo"].pk)}
    call_command("numbers_buy", "--count", "1", "--area-code", "415", "--campaign", "main", stdout=StringIO())  # the first account
    assert TrackingNumber.objects.filter(campaign=two["main_a"]).count() == 2


def test_the_export_lists_the_named_accounts_numbers_only(two):
    out = StringIO()
    call_command("numbers_export", "--account", "bravo", stdout=out, stderr=StringIO())
    assert "+14155550402" in out.getvalue() and "+14155550401" not in out.getvalue()
    out = StringIO()
    call_command("numbers_export", stdout=out, stderr=StringIO())
    assert "+14155550401" in out.getvalue() and "+14155550402" not in out.getvalue()


def test_an_import_finds_campaigns_in_the_named_account_and_refuses_another_accounts_number(two, tmp_path):
    csv = tmp_path / "numbers.csv"
    csv.write_text("number,campaign\n+14155550411,main\n")
    call_command("numbers_import", str(csv), "--account", "bravo", stdout=StringIO(), stderr=StringIO())
    new = TrackingNumber.objects.get(number="+14155550411")
    assert (new.account_id, new.campaign_id) == (two["bravo"].pk, two["main_b"].pk)
    csv.write_text("number,campaign,label\n+14155550401,main,Taken over\n")
    with pytest.raises(CommandError, match="another account"):
        call_command("numbers_import", str(csv), "--account", "bravo", "--update", stdout=StringIO(), stderr=StringIO())
    assert TrackingNumber.objects.get(number="+14155550401").label != "Taken over"


def test_release_and_port_out_refuse_another_accounts_numbers(two):
    with pytest.raises(CommandError, match="not one of our tracking numbers"):
        call_command("numbers_release", "+14155550401", "--account", "bravo", stdout=StringIO())
    with pytest.raises(CommandError, match="not one of our tracking numbers"):
        call_command("port_out", "+14155550401", "--to-carrier", "Other", "--account", "bravo", stdout=StringIO())
    call_command("numbers_release", "+14155550402", "--account", "bravo", stdout=StringIO())
    assert TrackingNumber.objects.get(number="+14155550402").status == NumberStatus.QUARANTINED
    assert TrackingNumber.objects.get(number="+14155550401").status == NumberStatus.ACTIVE


def test_configure_works_on_the_named_accounts_numbers(two):
    call_command("numbers_buy", "--count", "1", "--area-code", "415", "--campaign", "main", "--account", "bravo", stdout=StringIO())
    bought = TrackingNumber.objects.get(account=two["bravo"], carrier_id__gt="")
    out = StringIO()
    call_command("numbers_configure", bought.number, "--account", "bravo", stdout=out)
    assert "1 of 1 numbers configured" in out.getvalue()
    with pytest.raises(CommandError, match=r"Not our tracking numbers: \+14155550401 \(account 'bravo'\)"):
        call_command("numbers_configure", "+14155550401", "--account", "bravo", stdout=StringIO())


def test_simulate_call_checks_the_number_is_the_accounts_and_signs_as_its_subaccount(two, settings):
    settings.CALLTRACK_VALIDATE_TWILIO_SIGNATURE = True
    settings.TWILIO_AUTH_TOKEN = "install-token"
    with pytest.raises(CommandError, match="not a tracking number of account 'bravo'"):
        call_command("simulate_call", "--to", "+14155550401", "--from", "+13035550100", "--account", "bravo", stdout=StringIO())
    Account.objects.filter(pk=two["bravo"].pk).update(twilio_account_sid="AC" + "b" * 32, twilio_auth_token="c" * 32)
    signatures.subaccounts_forget()
    try:
        call_command("simulate_call", "--to", "+14155550402", "--from", "+13035550100", "--account", "bravo", stdout=StringIO())
    finally:
        signatures.subaccounts_forget()
    call = Call.objects.get(called_number="+14155550402")
    assert call.account_id == two["bravo"].pk


def test_simulate_text_refuses_a_number_of_another_account(two):
    with pytest.raises(CommandError, match="not a tracking number of account 'bravo'"):
        call_command("simulate_text", "--to", "+14155550401", "--from", "+13035550100", "--account", "bravo", stdout=StringIO())


def test_the_demo_loads_into_the_named_account_once_per_install(db):
    # The first account exists before B (a transactional test's flush may have emptied the table: B would be the first).
    Account.objects.get_or_create(slug="default", defaults={"name": "Default"})
    bravo = Account.objects.create(name="Bravo Roofing", slug="bravo")
    call_command("demo_load", "--calls", "2", "--no-user", "--account", "bravo", stdout=StringIO())
    assert TrackingNumber.objects.filter(account=bravo).count() == TrackingNumber.objects.count() > 0
    with pytest.raises(CommandError, match="loaded in account 'bravo' already"):
        call_command("demo_load", "--calls", "2", "--no-user", stdout=StringIO())
