"""One voice webhook as one unit of work: load, decide, write.

A ``Turn`` is what a voice webhook knows and has decided while it runs, passed explicitly to every function on the
call path (no context variables, nothing hung on model instances):

- **load**: the call, its typed routing state (``tracking.call_state.CallState``), the counters read ahead as a new
  call is recorded (``counters``), whether the caller is on the block list (``caller_blocked``);
- **decide**: the functions of ``routing.services`` change the state and the call's fields and say what to write:
  timeline steps (``step``), lifecycle events (``notify``: a step, and the webhooks after the commit), the fields of
  the call to save (``save``), amounts to add in SQL (``add``), the TwiML answer kept for a retried request
  (``answer``);
- **write**: ``routing.store.voice.turn_flush`` writes all of it at the end of the transaction, in one statement on
  PostgreSQL (the call's UPDATE and the steps' INSERT), so merging statements is the store's local choice. Where
  ids are drawn ahead from the tables' sequences (PostgreSQL), a new call (``call_new``) and the legs of a step
  taken under locks (``legs``) are written there too: the call once, as decided, instead of inserted then updated.

The retry policy is two fields the view's runner sets (``routing.views``): ``insert_first`` (insert the call without
looking it up, at once or with the flush: a retried CallSid fails on the unique index and the request runs again
with the look-up) and
``step_savepoints`` (lock a dial step's capped handlers without a savepoint: a step found full raises
``StepsRetry`` and the request runs again with a savepoint per step).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from routing.services.common import Links
from routing.services.config import campaign_sends_conversions, campaign_webhook_events
from routing.signatures import owner_check
from routing.store import voice as store
from tracking.call_state import CallState
from tracking.models import Call, CallAttempt, CallEvent
from tracking.services.ad_uploads import conversion_uploads_after_commit
from tracking.services.call_events import call_event_new, call_webhooks_after_commit


class StepsRetry(Exception):
    """A dial step's handlers were all capped under their locks, in a turn that took the locks without a savepoint
    (``Turn.step_savepoints`` off): the request's whole transaction must be rolled back (releasing the locks) and
    run again with savepoints, so no call holds a full handler's lock while waiting for another's."""


@dataclass
class Turn:
    """The unit of work of one voice webhook for one call (see the module's docstring)."""

    links: Links
    call: Call | None = None
    # Retry policy (set by the view's runner for each try).
    insert_first: bool = False
    step_savepoints: bool = True
    # Loaded ahead: the campaign's counters read as the new call is recorded; the caller on the block list (None: not asked);
    # the new call's id and its first leg's, drawn from the sequences with the tracking number (None: not drawn, the
    # call is inserted first).
    counters: Any = None
    caller_blocked: bool | None = None
    call_id_drawn: int | None = None
    leg_id_drawn: int | None = None
    # The calltrack account whose Twilio subaccount signed the request (None: the install's token): every call the
    # turn acts on must be that account's (``routing.signatures.owner_check``).
    signed_account_id: int | None = None
    # Writes, flushed at the end of the transaction.
    steps: list[CallEvent] = field(default_factory=list)
    fields: dict[str, None] = field(default_factory=dict)
    add: dict[str, int] = field(default_factory=dict)
    # The call is new and not written yet (its id drawn ahead): the flush inserts it whole.
    call_new: bool = False
    # Legs whose ids were drawn ahead (under their handlers' locks, or with the tracking number), inserted by the flush.
    legs: list[CallAttempt] = field(default_factory=list)
    _state: CallState | None = field(default=None, init=False, repr=False)

    def bind(self, call: Call, state: CallState | None = None) -> Turn:
        """The turn is about ``call`` (loaded, or just created with its routing state ``state``: not read back)."""
        self.owned(call.account_id)
        self.call, self._state = call, state
        return self

    def owned(self, account_id: int | None) -> None:
        """Refuse (``OtherAccount``, the turn rolled back) a row of another account than the signing subaccount's: a
        call found by id, CallSid or leg, or the number called."""
        owner_check(self.signed_account_id, account_id)

    @property
    def state(self) -> CallState:
        """The call's routing state, read once per turn when first wanted (a status callback of a call that never
        queued reads none of it)."""
        if self._state is None:
            self._state = self.call.state if self.call is not None else CallState()
        return self._state

    @property
    def the_call(self) -> Call:
        assert self.call is not None, "the turn has no call yet"
        return self.call

    # --- decisions' writes ------------------------------------------------------------------------------------

    def step(self, kind: str, message: str, data: dict[str, Any] | None = None, *, call: Call | None = None) -> None:
        """A step of the timeline of the turn's call (or of ``call``, another call this turn acts on)."""
        self.steps.append(call_event_new(call=call or self.call or self.the_call, kind=kind, message=message, data=data))

    def notify(self, event: str, message: str = "", data: dict[str, Any] | None = None, *, call: Call | None = None) -> None:
        """A lifecycle event (``call.started``, ``call.routed`` ...): its step, and the campaign's webhooks listening
        to it queued once the transaction commits."""
        target = call or self.call or self.the_call
        self.step(event, message or event.replace(".", " "), data, call=target)
        # The events the campaign's webhooks listen to come with its cached configuration: one nobody listens to costs
        # no after-commit work.
        call_webhooks_after_commit(call=target, event=event, webhook_events=campaign_webhook_events(target))
        # The ad platforms' uploads: nothing at all for a campaign without destinations (cached per config version).
        conversion_uploads_after_commit(call=target, event=event, sends=campaign_sends_conversions(target))

    def save(self, *names: str, add: dict[str, int] | None = None) -> None:
        """Save these fields of the call with the turn's writes (from the instance as it is then); ``add``'s amounts
        are added to their columns in SQL (an increment another transaction made in between is kept)."""
        self.fields.update(dict.fromkeys(names))
        for name, amount in (add or {}).items():
            self.add[name] = self.add.get(name, 0) + amount

    def answer(self, key: str, twiml: str, *names: str) -> str:
        """Keep ``twiml`` as the call's answer to request ``key`` (a retried webhook gets it back), with the routing
        state and ``names``; returns it."""
        call = self.call or self.the_call
        call.answers = {**(call.answers or {}), key: twiml}
        call.state_keep(self.state)
        self.save("answers", *Call.STATE_FIELDS, *names)
        return twiml

    def stored_answer(self, key: str) -> str | None:
        """The answer given to request ``key`` before (a retried webhook), if any."""
        return ((self.call or self.the_call).answers or {}).get(key)

    def call_written(self) -> Call:
        """The turn's call, in the database now: a new call whose id was drawn ahead is inserted at once (the turn's
        other writes still wait for the flush, which then updates it). For code that finds the call by its CallSid."""
        call = self.the_call
        if self.call_new:
            store.call_write(call)
            self.call_new = False
        return call

    def legs_add(self, legs: list[CallAttempt], ids: list[int | None]) -> bool:
        """A dial's legs, written by the flush (in this transaction, before the commit releases their handlers'
        locks) when each has an id drawn ahead: ``ids`` (drawn under the locks), else for a single leg the one drawn
        with the tracking number (used once). Returns False, adding nothing, when they need ids from their INSERT."""
        if None in ids:
            if len(legs) != 1 or self.leg_id_drawn is None:
                return False
            ids, self.leg_id_drawn = [self.leg_id_drawn], None
        for leg, pk in zip(legs, ids, strict=True):
            leg.pk = pk
        self.legs.extend(legs)
        return True

    def flush(self) -> None:
        """Write what the turn gathered (``routing.store.voice.turn_flush``): at the end of its transaction."""
        store.turn_flush(self.call, list(self.fields), self.steps, self.add, call_new=self.call_new, attempts=self.legs)
        self.steps, self.fields, self.add, self.call_new, self.legs = [], {}, {}, False, []
