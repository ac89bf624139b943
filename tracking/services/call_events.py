"""A call's timeline, and the one place that announces its lifecycle events.

``call_event_record`` writes a step of the timeline the admin shows.
``call_lifecycle_notify`` is called by routing at each lifecycle point
(``call.started``, ``call.routed``, ``call.answered``, ``call.completed``,
``call.converted``); it records the step and is where conversions (at
``call.completed``, in a savepoint) and outgoing webhooks (after the
surrounding transaction commits) hook in.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from django.db import transaction

from calltrack import fastdb
from tracking.models import Call, CallEvent

if TYPE_CHECKING:
    from tracking.services.conversions import Rule

logger = logging.getLogger(__name__)


_BATCH: ContextVar[list[CallEvent] | None] = ContextVar("call_events_batch", default=None)
# Inside call_events_batched: the call whose fields are saved with the steps' INSERT, and those fields.
_SAVE: ContextVar[dict[str, Any] | None] = ContextVar("call_events_save", default=None)


@contextmanager
def call_events_batched() -> Iterator[None]:
    """Inside the block, ``call_event_record`` collects the steps and they are written in one INSERT when the
    block ends without an error (nothing is written when it raises), together with the call's fields given to
    ``call_fields_save_with_steps`` (one statement on PostgreSQL). Use it inside the request's transaction, so
    the steps commit or roll back with the rest: the voice webhooks record two or three steps a request."""
    token, save_token = _BATCH.set([]), _SAVE.set({})
    try:
        yield
        events, save = _BATCH.get() or [], _SAVE.get() or {}
        if save:
            fastdb.update_and_insert_many(save["call"], list(save["fields"]), events, add=save.get("add"))
        else:
            fastdb.insert_many(events)
    finally:
        _BATCH.reset(token)
        _SAVE.reset(save_token)


def call_fields_save_with_steps(call: Call, fields: Collection[str], *, add: dict[str, int] | None = None) -> None:
    """Save ``fields`` of ``call``: at once, or (inside ``call_events_batched``) with the steps' INSERT at the end
    of the block, from the instance as it is then (``add``'s amounts added to their columns in SQL): one round trip fewer for the voice webhooks, which store
    their answer on the call last. Nothing may read those columns back from the database in between (the
    webhooks do not: the instance is what they read). Another call's fields, or this call's in a block whose
    save is taken by another instance, are saved at once."""
    save = _SAVE.get()
    if save is None or (save and (save["call"] is not call)):
        fastdb.update(call, list(fields), add=add)
        return
    save["call"] = call
    save.setdefault("fields", {}).update(dict.fromkeys(fields))
    for name, amount in (add or {}).items():  # ``add``: amounts added to those columns in SQL (increments kept)
        totals = save.setdefault("add", {})
        totals[name] = totals.get(name, 0) + amount


def call_event_record(*, call: Call, kind: str, message: str, data: dict[str, Any] | None = None) -> CallEvent:
    """Append a step to the call's timeline (at once, or at the end of ``call_events_batched``). Not
    idempotent: call once per step."""
    event = fastdb.new(CallEvent, call=call, kind=kind, message=message[:500], data=data or {})
    batch = _BATCH.get()
    if batch is None:
        return fastdb.insert(event)
    batch.append(event)
    return event


def call_lifecycle_notify(
    *, call: Call, event: str, message: str = "", data: dict[str, Any] | None = None, webhook_events: Collection[str] | None = None,
    call_locked: bool = False, conversion_rules: Sequence[Rule] | None = None,
) -> None:
    """Record a lifecycle event of ``call`` (one of WebhookEvent's values). On ``call.completed`` the conversion
    rules are applied at once, in a savepoint of the surrounding transaction (which may emit ``call.converted``).
    The deliveries of the campaign's webhooks listening to ``event`` are queued once that transaction commits (for a
    test call only when its operator ticked "send webhooks": ``Call.test_sends_webhooks``).

    Never sends HTTP itself: deliveries run in django-q2 workers, so a slow or dead receiver cannot delay
    the voice request. A failure of the conversion rules or of the queueing is logged, never raised into the
    voice webhook: the rules' savepoint is rolled back and the call's own writes still commit. Not idempotent:
    call once per event.

    ``webhook_events``: the events the campaign's enabled webhooks listen to, when the caller knows them (voice
    routing caches them with the campaign's configuration): an event no webhook listens to then needs no
    after-commit work at all.

    ``call_locked``: ``call`` was read under its row lock in this transaction and is what its row holds (the
    status callback's), so the conversion rules need not read it again. ``conversion_rules``: its campaign's
    conversion rules, when the caller has them (voice routing caches them with the campaign's configuration).
    """
    call_event_record(call=call, kind=event, message=message or event.replace(".", " "), data=data)
    if event == "call.completed":
        _conversions_apply(call, locked=call_locked, rules=conversion_rules)
    if call.campaign_id is None or (webhook_events is not None and event not in webhook_events) or not call.test_sends_webhooks:
        return  # a test call's webhooks go out only when its operator asked
    call_id, campaign_id = call.pk, call.campaign_id
    transaction.on_commit(lambda: _after_commit(call_id=call_id, campaign_id=campaign_id, event=event), robust=True)


def _conversions_apply(call: Call, *, locked: bool = False, rules: Sequence[Rule] | None = None) -> None:
    """The conversion rules on a call that just ended, in a savepoint: first, so the ``call.completed``
    webhooks carry the outcome, revenue and payout; a failure is logged and leaves the call unevaluated.

    Without the savepoint where deciding reads nothing (the call locked, its rules at hand, no de-dupe window:
    ``conversion_needs_no_statement``) inside ``call_events_batched``: then nothing in the database can fail
    half way, and the outcome is saved with the block's last statement (``call_fields_save_with_steps``). The
    voice status callback saves three round trips so (SAVEPOINT, the outcome's UPDATE, RELEASE)."""
    from tracking.services.conversions import (
        OUTCOME_FIELDS,
        call_conversion_evaluate,
        call_conversion_settle_in_memory,
        conversion_needs_no_statement,
    )

    batch = _BATCH.get()
    recorded = len(batch) if batch is not None else 0
    in_memory = locked and rules is not None and _SAVE.get() is not None and conversion_needs_no_statement(call, rules)
    before = {name: getattr(call, name) for name in OUTCOME_FIELDS} if in_memory else {}
    try:
        if in_memory:
            assert rules is not None
            if call_conversion_settle_in_memory(call=call, rules=rules):
                call_fields_save_with_steps(call, OUTCOME_FIELDS)
            return
        evaluated = call_conversion_evaluate(call=call, locked=locked, rules=rules)
    except Exception:
        logger.exception("conversion rules failed for call %s", call.pk)
        if batch is not None:
            del batch[recorded:]  # steps of the rolled-back savepoint (or of the decision not saved)
        for name, value in before.items():
            setattr(call, name, value)
        return
    for name in OUTCOME_FIELDS:
        setattr(call, name, getattr(evaluated, name))


def _after_commit(*, call_id: int, event: str, campaign_id: int) -> None:
    from tracking.services.webhooks import webhook_deliveries_queue

    # The campaign's webhooks are looked up first (webhook_deliveries_queue loads the call when one listens).
    webhook_deliveries_queue(call=Call(pk=call_id, campaign_id=campaign_id), event=event)
