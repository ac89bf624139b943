"""Reports off the primary: reads inside :func:`replica_reads` go to the ``replica`` alias (``DATABASE_REPLICA_URL``).

Nothing is routed globally. The dashboard's figures, the reports API and the call log's CSV export enter
:func:`replica_reads` (or :func:`on_replica`) around their reads; everything else, the voice webhooks and every
write included, stays on ``default``. Without ``DATABASE_REPLICA_URL`` there is no ``replica`` alias and the
context changes nothing.

A replica lags its primary by a moment: only reads that may be a moment old belong in the context (figures,
exports), never a read followed by a write that depends on it (caps, pool numbers, alerts).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

from django.conf import settings

REPLICA = "replica"
PRIMARY = "default"

_replica_reads: ContextVar[bool] = ContextVar("calltrack_replica_reads", default=False)

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


def replica_configured() -> bool:
    return REPLICA in settings.DATABASES


@contextmanager
def replica_reads() -> Iterator[None]:
    """Inside: the ORM's reads go to the replica (when one is configured); writes still go to the primary."""
    token = _replica_reads.set(True)
    try:
        yield
    finally:
        _replica_reads.reset(token)


def on_replica(view: F) -> F:
    """A view (function, or an APIView's handler method) whose reads all go to the replica."""

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        with replica_reads():
            return view(*args, **kwargs)

    return wrapped  # type: ignore[return-value]


def replica_iter(items: Iterable[T]) -> Iterator[T]:
    """``items`` with each step taken inside :func:`replica_reads`: a streamed response's content reads its rows
    after the view has returned, so the context is entered around each chunk (never held between them)."""
    iterator = iter(items)
    while True:
        with replica_reads():
            try:
                item = next(iterator)
            except StopIteration:
                return
        yield item


class ReplicaRouter:
    """settings.DATABASE_ROUTERS: reads in :func:`replica_reads` to the replica, all else to the primary."""

    def db_for_read(self, model: Any, **hints: Any) -> str:
        if _replica_reads.get() and replica_configured():
            return REPLICA
        return PRIMARY

    def db_for_write(self, model: Any, **hints: Any) -> str:
        # Explicit: without it Django would write an instance back to the database it was read from (the replica).
        return PRIMARY

    def allow_relation(self, obj1: Any, obj2: Any, **hints: Any) -> bool:
        return True  # one database, two copies

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool:
        return db == PRIMARY  # the replica gets the schema by replication
