"""The admin login lockout (django-axes): per username and client, and per username whatever the address."""

from __future__ import annotations

from typing import Any

from axes.attempts import get_cool_off_threshold
from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_client_username, get_failure_limit
from axes.models import AccessAttempt
from django.conf import settings
from django.db.models import Q, Sum
from django.http import HttpRequest


class LoginLockoutHandler(AxesDatabaseHandler):
    """django-axes' database handler with two limits (AXES_HANDLER):

    - AXES_FAILURE_LIMIT failures of one username from one client (AXES_LOCKOUT_PARAMETERS: username and address,
      an IPv6 client being its /64, ``calltrack.middleware.axes_client_ip``) lock that pair out; a stranger elsewhere
      is not locked out by them;
    - CALLTRACK_LOGIN_USERNAME_FAILURE_LIMIT failures of one username from all addresses together lock the username
      out everywhere, so a script rotating addresses gets that many guesses per cool-off, not AXES_FAILURE_LIMIT
      per address. Higher than the first, since anyone can spend it (and so lock the real user out for the cool-off).

    Both count the failures of the last AXES_COOLOFF_TIME, in one query. A successful login resets the pair only
    (AXES_RESET_ON_SUCCESS with the pair as lockout parameters): the username's failures from elsewhere still count.
    """

    def get_failures(self, request: HttpRequest, credentials: dict[str, Any] | None = None) -> int:
        username = get_client_username(request, credentials)
        attempts = AccessAttempt.objects.filter(username=username)
        if settings.AXES_COOLOFF_TIME is not None:
            attempts = attempts.filter(attempt_time__gte=get_cool_off_threshold(request))
        totals = attempts.aggregate(
            pair=Sum("failures_since_start", filter=Q(ip_address=request.axes_ip_address)),
            username=Sum("failures_since_start"),
        )
        pair, everywhere = totals["pair"] or 0, totals["username"] or 0
        username_limit = settings.CALLTRACK_LOGIN_USERNAME_FAILURE_LIMIT
        if username_limit and everywhere >= username_limit:
            return max(pair, get_failure_limit(request, credentials))
        return pair
