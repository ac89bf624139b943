"""The API's authentication: DRF's token and session, each placing the request in an account (issue 30).

- A token bound to an account (``calltrack.AccountToken``, "Authorization: Token <key>" like the install's own
  tokens) acts in that account only: an account parameter naming another is refused (403), and its user must still
  belong to the account.
- A user's own token (``rest_framework.authtoken``) or its console session acts in the account named by the
  ``X-Calltrack-Account`` header or the ``account`` query parameter (slug or id), one it belongs to; else its first.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from calltrack import accounts
from calltrack.models import ACCOUNT_TOKEN_PREFIX, AccountToken


def _wanted(request: Any) -> str | None:
    value = request.META.get(accounts.HEADER) or request.query_params.get(accounts.PARAMETER)
    return value if value not in (None, "") else None


def _place(request: Any, user: Any, *, bound_to: int | None = None) -> None:
    wanted = _wanted(request)
    if bound_to is not None:
        mine = accounts.places(user)
        if bound_to not in mine:
            raise exceptions.AuthenticationFailed(_("This token's user no longer belongs to its account."))
        if wanted is not None and accounts.choose(user, wanted) != accounts.Place(bound_to, mine[bound_to]):
            raise exceptions.PermissionDenied(_("This token acts in its own account only."))
        accounts.place_user(user, accounts.Place(bound_to, mine[bound_to]))
        return
    place = accounts.choose(user, wanted)
    if place is None:
        raise exceptions.PermissionDenied(_("You do not belong to that account.") if wanted is not None else _("You belong to no account."))
    accounts.place_user(user, place)


class TokenAuthentication(authentication.TokenAuthentication):
    """``Authorization: Token <key>``: an account token (bound to its account), else the user's own token."""

    def authenticate_credentials(self, key: str) -> tuple[Any, Any]:
        if not key.startswith(ACCOUNT_TOKEN_PREFIX):
            return super().authenticate_credentials(key)
        bound = AccountToken.objects.select_related("user").filter(key=key).first() if len(key) <= 40 else None
        if bound is not None:
            if not bound.user.is_active:
                raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
            bound.user._calltrack_bound_account = bound.account_id
            return bound.user, bound
        raise exceptions.AuthenticationFailed(_("Invalid token."))

    def authenticate(self, request: Any) -> tuple[Any, Any] | None:
        found = super().authenticate(request)
        if found is not None:
            user = found[0]
            _place(request, user, bound_to=getattr(user, "_calltrack_bound_account", None))
        return found


class SessionAuthentication(authentication.SessionAuthentication):
    def authenticate(self, request: Any) -> tuple[Any, Any] | None:
        found = super().authenticate(request)
        if found is not None:
            _place(request, found[0])
        return found


class TokenScheme(OpenApiAuthenticationExtension):
    target_class = "calltrack.api.authentication.TokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "apiKey", "in": "header", "name": "Authorization",
            "description": "'Token <key>': a user's own token, or a token bound to one account (it acts there only). "
            "The account a request acts in: the 'X-Calltrack-Account' header or the 'account' query parameter (its "
            "slug or id), one the user belongs to; else its first.",
        }


class SessionScheme(OpenApiAuthenticationExtension):
    target_class = "calltrack.api.authentication.SessionAuthentication"
    name = "cookieAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {"type": "apiKey", "in": "cookie", "name": settings.SESSION_COOKIE_NAME}
