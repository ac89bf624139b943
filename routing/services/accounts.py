"""An account's own settings (issue 30): its carrier (a Twilio subaccount), its fail-safe number and its
nomenclature. Each falls back to the install's setting when blank. Saved here, in the top layer, because a change
reaches the numbers (their voice fallback URLs at the carrier) and the webhooks' signature check:

- ``twilio_account_sid``/``twilio_auth_token``: the account's numbers are bought, configured, released and ported
  in that subaccount, its texts, queue dials and recordings go through it (``get_carrier(account_id=...)``), and
  its webhooks are checked with its token (``routing.signatures``). Blank: TWILIO_ACCOUNT_SID/TWILIO_AUTH_TOKEN.
- ``failsafe_number``: dialled when routing fails and neither the tracking number nor the campaign has a fail-safe
  (``routing.services.failsafe_number``), and written into the voice fallback URL of the account's numbers.
  Blank: CALLTRACK_FAILSAFE_NUMBER.
- ``nomenclature``: the console's words in the admin and the API while acting in the account
  (``calltrack.nomenclature.activate``). Blank: CALLTRACK_NOMENCLATURE.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction

from calltrack.models import Account

CARRIER_FIELDS = ("twilio_account_sid", "twilio_auth_token")


def carrier_numbers_held(account: Account) -> int:
    """How many numbers the account holds at Twilio (not released): they live in the Twilio account they were bought
    or ported in, so its subaccount may change only once they have been moved there (Twilio's console)."""
    from calltrack.numbers.models import NumberStatus, TrackingNumber

    if account.pk is None:
        return 0
    return TrackingNumber.objects.filter(account_id=account.pk, carrier="twilio").exclude(status=NumberStatus.RELEASED).count()


def account_save(*, account: Account, changed: Iterable[str] = ()) -> Account:
    """Validate and save ``account`` (created, or its ``changed`` fields). A new subaccount is used by this process's
    signature checks at once (others within seconds, ``routing.signatures``); a new fail-safe reaches the voice
    fallback URLs of the account's numbers at the carrier (a task, on commit). Idempotent."""
    from calltrack.numbers.services.lifecycle import numbers_fallback_refresh_queue
    from routing.signatures import subaccounts_forget

    changed = set(changed)
    adding = account._state.adding
    account.full_clean()
    with transaction.atomic():
        if not adding and changed:
            account.save(update_fields=sorted(changed))
        else:
            account.save()
        if not adding and "failsafe_number" in changed:
            numbers_fallback_refresh_queue(account_id=account.pk)
    if changed & set(CARRIER_FIELDS):
        subaccounts_forget()
    return account
