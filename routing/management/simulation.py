"""What simulate_call and simulate_text share: the Twilio account a simulated webhook comes from (``--account``)."""

from __future__ import annotations

from django.core.management.base import CommandError, CommandParser

from calltrack.numbers.management.base import find_account
from calltrack.numbers.models import TrackingNumber

#: The AccountSid of a simulated webhook from the install's Twilio account (signed with TWILIO_AUTH_TOKEN).
INSTALL_ACCOUNT_SID = "AC" + "0" * 32


def account_add_argument(parser: CommandParser) -> None:
    parser.add_argument(
        "--account", metavar="SLUG",
        help="The account (its slug) whose tracking number --to is: refused if it is not; the webhooks come from its "
             "Twilio subaccount (its AccountSid, signed with its auth token) when it has one. Default: the number's account.")


def webhook_signer(slug: str | None, to: str) -> tuple[str, str]:
    """(AccountSid, auth token) the simulated webhooks carry and are signed with; token '' for the install's."""
    if slug is None:
        return INSTALL_ACCOUNT_SID, ""
    account = find_account(slug)
    holder = TrackingNumber.objects.filter(number=to).values_list("account_id", flat=True).first()
    if holder != account.pk:
        raise CommandError(f"--to: {to} is not a tracking number of account '{account.slug}'.")
    if account.carrier_credentials is None:
        return INSTALL_ACCOUNT_SID, ""
    return account.twilio_account_sid, account.twilio_auth_token
