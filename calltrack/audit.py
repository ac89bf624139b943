"""Who changed the money, and from where: the context that the money audit trail's triggers record.

The trail itself (``tracking.MoneyChange``) is written by database triggers (``tracking/sql/money_history.*.sql``)
on the calls' value columns and on the terms of handlers, sources, campaign handlers, conversion rules and
webhooks. Why triggers, and why our own rather than a library (issue 22):

- django-simple-history records from ``post_save`` signals: a ``QuerySet.update()`` and the voice path's
  hand-written SQL (``calltrack.fastdb``) bypass it, and it costs an INSERT statement per saved row.
- django-pghistory installs PostgreSQL triggers (through django-pgtrigger) and would catch every write, but it
  supports PostgreSQL only, while the suite and trial installs run on SQLite; and its context tracking prepends
  ``SELECT set_config(...)`` to each statement, which the hot path's server-bound statements cannot take
  (psycopg's extended protocol runs one statement per ``execute``).
- Our triggers (PostgreSQL and SQLite alike) record every UPDATE of the audited columns whoever writes it, in the
  writer's own statement: the voice path gains no statement (tests/routing/test_voice_queries.py is unchanged);
  the status callback's conversion gets one more row written inside the UPDATE it already makes.

The context (origin, user, actor) travels without a statement of its own:

- PostgreSQL: inside ``audit_context``, an execute wrapper sends ``SELECT set_config('calltrack.audit', ...,
  true)`` in the same pipeline as each write to an audited table (one round trip; psycopg's pipeline mode, libpq
  14+; with an older libpq, one more round trip). The setting is transaction-local, so it never leaks to a later
  transaction on a pooled connection. Reads and other tables are not touched.
- SQLite: the triggers call ``calltrack_audit()``, an SQL function this module registers on each connection,
  which reads the current context in process.

Outside any context (the voice webhooks, a shell), the origin is blank ("database"), except that the UPDATE
that first sets a call's ``conversion_evaluated_at`` is the conversion rules' ("rule"). The admin and the API
get their context from ``AuditContextMiddleware``, postbacks from their view, tasks from ``audit_context``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.signals import connection_created
from django.http import HttpRequest, HttpResponse

#: The tables whose writes carry the context on PostgreSQL (the triggers' tables).
AUDITED_TABLES = (
    "tracking_call", "tracking_handler", "tracking_source", "tracking_campaignhandler", "tracking_conversionrule",
    "tracking_webhook",
)
_WRITES = ("INSERT", "UPDATE", "DELETE", "WITH")
_SET_SQL = "SELECT set_config('calltrack.audit', %s, true)"


class AuditContext:
    """Where changes come from: ``origin`` (an ``AuditOrigin`` value), and who: a user, or a request whose user
    is read when the first audited write happens (after DRF or the admin authenticated it), or ``actor`` words."""

    def __init__(self, *, origin: str, user: Any = None, actor: str = "", request: HttpRequest | None = None) -> None:
        self.origin, self.user, self.actor, self.request = origin, user, actor, request

    def payload(self) -> str:
        user = self.user
        if user is None and self.request is not None:
            user = getattr(self.request, "user", None)
        authenticated = user is not None and getattr(user, "is_authenticated", False)
        actor = self.actor or (user.get_username() if authenticated else "")
        return json.dumps({"origin": self.origin, "user_id": user.pk if authenticated else None, "actor": actor[:200]})


_CURRENT: ContextVar[AuditContext | None] = ContextVar("calltrack_audit", default=None)


def current() -> AuditContext | None:
    return _CURRENT.get()


@contextmanager
def audit_context(*, origin: str, user: Any = None, actor: str = "", request: HttpRequest | None = None) -> Iterator[AuditContext]:
    """Changes to the money made inside are recorded as coming from ``origin``, by ``user`` (or ``request.user``,
    or ``actor``). Nested contexts: the innermost wins."""
    context = AuditContext(origin=origin, user=user, actor=actor, request=request)
    outer = _CURRENT.get()
    token = _CURRENT.set(context)
    try:
        db = connections[DEFAULT_DB_ALIAS]
        if outer is None and db.vendor == "postgresql":
            with db.execute_wrapper(_deliver):
                yield context
        else:
            yield context
    finally:
        _CURRENT.reset(token)


def _writes_audited(sql: Any) -> bool:
    return isinstance(sql, str) and sql.lstrip()[:6].upper().startswith(_WRITES) and any(t in sql for t in AUDITED_TABLES)


def _deliver(execute: Callable, sql: Any, params: Any, many: bool, context: dict[str, Any]) -> Any:
    """PostgreSQL: the context goes with each write to an audited table, in the same round trip (pipeline)."""
    current_context = _CURRENT.get()
    if current_context is None or not _writes_audited(sql):
        return execute(sql, params, many, context)
    import psycopg

    db = context["connection"]
    raw_cursor = context["cursor"].cursor
    with db.wrap_database_errors:
        if not psycopg.Pipeline.is_supported():
            raw_cursor.execute(_SET_SQL, [current_context.payload()])
            return execute(sql, params, many, context)
        with db.connection.pipeline():
            raw_cursor.execute(_SET_SQL, [current_context.payload()])
            result = execute(sql, params, many, context)
        return result


# --- SQLite: the triggers read the context through SQL functions of the connection ------------------------------


def _sqlite_audit() -> str | None:
    context = _CURRENT.get()
    return context.payload() if context is not None else None


def _sqlite_fingerprint(value: Any) -> str | None:
    return None if value is None else hashlib.md5(str(value).encode(), usedforsecurity=False).hexdigest()[:8]


def _sqlite_functions_register(sender: Any, connection: Any, **kwargs: Any) -> None:
    if connection.vendor == "sqlite":
        connection.connection.create_function("calltrack_audit", 0, _sqlite_audit)
        connection.connection.create_function("calltrack_fingerprint", 1, _sqlite_fingerprint, deterministic=True)


connection_created.connect(_sqlite_functions_register, dispatch_uid="calltrack-audit-sqlite-functions")


# --- Requests -------------------------------------------------------------------------------------------------

#: Path prefixes and the origin of the changes their requests make (the voice and DNI paths never get here:
#: ``HotPathsMiddleware`` answers them first; postbacks set their own context in their view).
REQUEST_ORIGINS = (("/admin/", "admin"), ("/api/", "api"))


class AuditContextMiddleware:
    """The admin's and the API's requests: changes to the money are recorded with the logged-in user."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        path = request.path_info
        origin = next((origin for prefix, origin in REQUEST_ORIGINS if path.startswith(prefix)), None)
        if origin is None:
            return self.get_response(request)
        with audit_context(origin=origin, request=request):
            return self.get_response(request)
