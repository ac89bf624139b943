"""Accounts: which account a request acts in, and the install's first account.

An agency runs many clients in one install (issue 30): every party, number, call and text belongs to one account
(``calltrack.models.Account``), and the gate (``calltrack/scoping.py``) keeps each request inside the account it
acts in. Which one:

- the admin and the dashboard: the account chosen in the header's switcher (kept in the session), one the user
  belongs to; else its first;
- the API: a token bound to an account (``calltrack.AccountToken``) acts there and nowhere else; a plain token or a
  session acts in the account named by the ``X-Calltrack-Account`` header or the ``account`` query parameter (its
  slug or id), one the user belongs to, else its first;
- a user who belongs to no account (a single-account install needs no memberships) and a superuser without a
  membership work in the first account; a superuser may switch to any;
- a collaborator (a source's or handler's login): its source's or handler's account, always.

The voice and DNI paths need none of this: the account is on the tracking number or pool row they load anyway.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from django.core import signing
from django.core.exceptions import ObjectDoesNotExist
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseForbidden,
    HttpResponseRedirect,
)
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme

from calltrack.account_fields import _CURRENT, default_account_id, first_account_id
from calltrack.models import Account, AccountRole, Membership

SESSION_KEY = "calltrack_account"
HEADER = "HTTP_X_CALLTRACK_ACCOUNT"
PARAMETER = "account"


@dataclass(frozen=True)
class Place:
    """Where a user works: the account and its role there."""

    account_id: int
    role: str


@dataclass(frozen=True)
class AccountShown:
    """What a request's console needs of an account it may act in, read with the user's places (no statement more):
    its nomenclature ('' for the install's), time zone ('' for TIME_ZONE), name and currency ('' for CURRENCY)."""

    words: str
    zone: str
    name: str
    currency: str


def places(user: Any) -> dict[int, str]:
    """The accounts ``user`` may act in, with its role in each (ordered by account). A superuser: every account
    (owner where it has no membership); a staff user with no membership: the first account, as an admin (its Django
    permissions decide the rest)."""
    if user is None or not getattr(user, "is_authenticated", False):
        return {}
    cached = getattr(user, "_calltrack_places", None)
    if cached is not None:
        return cached
    try:
        link = user.collaborator  # a source's or handler's login: that party's account, no role
    except ObjectDoesNotExist:
        link = None
    if link is not None:
        user._calltrack_places = {link.account_id: ""}
        user._calltrack_accounts = {}  # a collaborator's console keeps the install's words
        return user._calltrack_places
    found, user._calltrack_accounts = _places_read(user.pk, every=bool(user.is_superuser))
    user._calltrack_places = found
    return found


def shown(user: Any, account_id: int | None) -> AccountShown | None:
    """The account's words, zone and name as :func:`places` read them for ``user`` (None: not read there, e.g. a
    collaborator's account)."""
    places(user)
    return getattr(user, "_calltrack_accounts", {}).get(account_id)


def _places_read(user_id: int, *, every: bool) -> tuple[dict[int, str], dict[int, AccountShown]]:
    """One statement: the user's memberships (account -> role), and the first account with whether it is the only
    one; for a superuser, every account with its role where it is a member (owner elsewhere). A user with no
    membership works in the first account as an admin (its Django permissions decide the rest) while it is the only
    account; once there are several, nowhere (each client's staff is named by its memberships). With each account,
    what the console shows of it (:class:`AccountShown`), read in the same statement."""
    from django.db import connection

    account, membership = Account._meta.db_table, Membership._meta.db_table
    with connection.cursor() as cursor:
        if every:
            cursor.execute(
                f"SELECT a.id, m.role, a.nomenclature, a.time_zone, a.name, a.currency FROM {account} a "
                f"LEFT JOIN {membership} m ON m.account_id = a.id AND m.user_id = %s ORDER BY a.id", [user_id])
            rows = cursor.fetchall()
            if not rows:  # no account at all (emptied by hand, or a test's flush): the first is made again
                return {default_account_id(): AccountRole.OWNER}, {}
            return {pk: role or AccountRole.OWNER for pk, role, *_ in rows}, {pk: AccountShown(*rest) for pk, _, *rest in rows}
        cursor.execute(
            f"SELECT m.account_id, m.role, a.nomenclature, a.time_zone, a.name, a.currency, 0 FROM {membership} m "
            f"JOIN {account} a ON a.id = m.account_id WHERE m.user_id = %s "
            f"UNION ALL SELECT a.id, NULL, a.nomenclature, a.time_zone, a.name, a.currency, (SELECT COUNT(*) FROM {account}) "
            f"FROM {account} a WHERE a.id = (SELECT MIN(id) FROM {account})", [user_id])
        rows = cursor.fetchall()
    accounts = {pk: AccountShown(words or "", zone or "", name, currency or "") for pk, _, words, zone, name, currency, _ in rows}
    found = {pk: role for pk, role in sorted((r[0], r[1]) for r in rows if r[1] is not None)}
    if found:
        return found, accounts
    first, count = next(((pk, n) for pk, role, *_, n in rows if role is None), (None, 0))
    if first is None:
        return {default_account_id(): AccountRole.ADMIN}, accounts
    return ({first: AccountRole.ADMIN} if count == 1 else {}), accounts


def accounts_grow(sender: Any, instance: Account, created: bool, **kwargs: Any) -> None:
    """The install's second account is made: the staff who worked in the first without a membership (the rule of a
    one-account install) keep that, as members (admins) of the first; superusers need none."""
    if not created or Account.objects.count() != 2:
        return
    from django.contrib.auth import get_user_model

    first = first_account_id()
    staff = (get_user_model().objects.filter(is_staff=True, is_active=True, is_superuser=False, memberships__isnull=True)
             .exclude(collaborator__isnull=False))
    Membership.objects.bulk_create([Membership(user=u, account_id=first, role=AccountRole.ADMIN) for u in staff])


def choose(user: Any, wanted: Any) -> Place | None:
    """The place ``user`` acts in when it asks for ``wanted`` (an account id or slug, or None for its first). None
    when it asked for an account it does not belong to (or that does not exist)."""
    mine = places(user)
    if not mine:
        return None
    if wanted in (None, ""):
        pk = next(iter(mine))
        return Place(pk, mine[pk])
    pk = _account_pk(wanted)
    if pk is None or pk not in mine:
        return None
    return Place(pk, mine[pk])


def _account_pk(wanted: Any) -> int | None:
    text = str(wanted).strip()
    if text.isdigit() and len(text) < 19:
        return int(text)
    if not text or len(text) > 64 or "\x00" in text:
        return None
    return Account.objects.filter(slug=text).values_list("pk", flat=True).first()


def act_in(user: Any, place: Place) -> None:
    """Make ``user`` (this request's user object) act in ``place``: :func:`calltrack.scoping.scope_for` reads it."""
    user._calltrack_place = place
    user._calltrack_scope = None  # scope_for computes it again


def account_choices(user: Any) -> list[tuple[int, str]]:
    """(id, name) of the accounts the user may switch to (the header's switcher): read with its places."""
    mine = places(user)
    known = {pk: shown(user, pk) for pk in mine}
    if any(info is None for info in known.values()):
        names = dict(Account.objects.filter(pk__in=list(mine)).values_list("pk", "name"))
        return [(pk, names.get(pk, str(pk))) for pk in mine]
    return [(pk, info.name) for pk, info in known.items() if info is not None]




# --- The request's account: the model default of every account column while a request runs -------------------



def current_account_id() -> int | None:
    """The account the running request acts in (None outside a request: a task, a command)."""
    return _CURRENT.get()


@contextmanager
def acting_in(account_id: int | None) -> Iterator[None]:
    """Rows created inside (without an account of their own) go to ``account_id``: a request's, or a command's
    ``--account``."""
    token = _CURRENT.set(account_id)
    try:
        yield
    finally:
        _CURRENT.reset(token)


def place_user(user: Any, place: Place) -> None:
    """``user`` acts in ``place`` for the rest of this request (its scope, the account new rows get, and the
    account's nomenclature: the console's words)."""
    from calltrack import nomenclature

    act_in(user, place)
    _CURRENT.set(place.account_id)
    info = shown(user, place.account_id)
    nomenclature.activate(info.words if info is not None else "")


class AccountMiddleware:
    """After the session and the user are known: the admin's (and the dashboard's) account, the one the header's
    switcher chose (in the session) if the user still belongs to it, else its first. The API's requests are placed
    by its authentication classes (``calltrack.api.authentication``), which know the token."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        from calltrack import nomenclature

        token = _CURRENT.set(None)
        zoned = False
        words = nomenclature.saved()
        try:
            user = getattr(request, "user", None)
            if user is not None and user.is_authenticated:
                place = choose(user, request.session.get(SESSION_KEY)) or choose(user, None)
                if place is not None:
                    place_user(user, place)
                    info = shown(user, place.account_id)
                    zoned = zone_activate(place.account_id, info.zone if info is not None else None)
            return self.get_response(request)
        finally:
            if zoned:
                timezone.deactivate()
            _CURRENT.reset(token)
            nomenclature.restore(words)  # the next request on this thread starts with the install's words


def zone_activate(account_id: int, name: str | None = None) -> bool:
    """The console's dates in the account's time zone (``Account.time_zone``; ``name`` when the caller already read
    it) for the rest of the request: the call log's times and date filters, the exports' dates. True when the account
    has one (blank: TIME_ZONE stays)."""
    if name is None:
        name = Account.objects.filter(pk=account_id).values_list("time_zone", flat=True).first()
    if not name:
        return False
    try:
        timezone.activate(ZoneInfo(name))
    except (ValueError, KeyError):  # a zone the system's database no longer has: the install's
        return False
    return True


def switch_link(user: Any, account_id: int, next_url: str) -> str:
    """The header's link to act in ``account_id``: signed for this user (another site cannot switch it)."""
    from django.urls import reverse

    query = urlencode({"to": signing.dumps([user.pk, account_id], salt=_SWITCH_SALT), "next": next_url})
    return f"{reverse('account-switch')}?{query}"


_SWITCH_SALT = "calltrack.accounts.switch"


def switch_view(request: HttpRequest) -> HttpResponse:
    """Act in another account (the header's switcher): a signed link for this user, to an account it belongs to."""
    from django.contrib.admin.views.decorators import staff_member_required

    @staff_member_required
    def view(request: HttpRequest) -> HttpResponse:
        try:
            user_pk, account_id = signing.loads(request.GET.get("to", ""), salt=_SWITCH_SALT, max_age=86400)
        except (signing.BadSignature, ValueError, TypeError):
            return HttpResponseBadRequest("This account link is not valid any more: open the menu again.")
        if user_pk != request.user.pk or choose(request.user, account_id) is None:
            return HttpResponseForbidden("You do not belong to that account.")
        request.session[SESSION_KEY] = account_id
        next_url = request.GET.get("next", "")
        if not url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
            next_url = ""
        # The same page may not exist in the other account (an object's page): its list, else the admin's home.
        return HttpResponseRedirect(_list_of(next_url) or "/admin/")

    return view(request)


def _list_of(url: str) -> str:
    """The admin list an admin URL belongs to (``/admin/tracking/call/12/change/`` -> ``/admin/tracking/call/``)."""
    parts = [p for p in url.split("?")[0].split("/") if p]
    if len(parts) >= 3 and parts[0] == "admin":
        return "/" + "/".join(parts[:3]) + "/"
    return "/admin/" if url.startswith("/admin/") else ""


def header_dropdown(request: HttpRequest) -> list[dict[str, Any]]:
    """The admin header's account switcher (UNFOLD's SITE_DROPDOWN): nothing when the user has one account."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return []
    choices = account_choices(user)
    if len(choices) < 2:
        return []
    from calltrack.scoping import scope_for

    current = scope_for(user).account_id
    return [
        {"title": name, "icon": "check" if pk == current else "domain", "link": switch_link(user, pk, request.get_full_path())}
        for pk, name in choices
    ]


def header_subheader(request: HttpRequest) -> str:
    """Under the console's name: the account it acts in, when the user has several."""
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated and len(places(user)) > 1:
        from calltrack.scoping import scope_for

        account_id = scope_for(user).account_id
        info = shown(user, account_id)
        name = info.name if info is not None else Account.objects.filter(pk=account_id).values_list("name", flat=True).first()
        if name:
            return str(name)
    return "Operator console"
