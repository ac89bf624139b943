"""The voice webhooks' load and write: every statement the call path runs outside the ORM, in one place.

``routing.services`` decides; this module loads what a decision needs (a call with its campaign, tracking number and
source in one statement; the tracking number with the block list's answer; a step's legs) and writes what was decided
(the turn's flush, a leg's end, the call's answer and end). Merging statements is a local choice here: the call's
answer with the dial result's legs in one WITH, the call's UPDATE with the turn's steps, the call's end with its
legs'. Where PostgreSQL runs one statement and other databases two, both forms sit side by side in the same function
(and tests/routing/test_store_parity.py runs the portable form on PostgreSQL too).

The counters and cap locks are ``routing.store.counters``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from django.conf import settings
from django.db import connection

from calltrack import fastdb
from calltrack.numbers.models import BlockedCaller, NumberPool, TrackingNumber
from calltrack.numbers.models.lines import ROUTABLE_STATUSES
from routing import decision as dec
from routing.store.counters import CountersRead, counter_reads_pg
from tracking.models import AttemptKind, AttemptStatus, Call, CallAttempt, CallStatus, Campaign, Handler, Source

# The final call statuses as an SQL list, for the statements' "status NOT IN (...)".
FINAL_STATUSES_SQL = ", ".join(f"'{s}'" for s in sorted(CallStatus.final()))
MAX_CALL_SECONDS = 4 * 3600  # Twilio's default <Dial timeLimit>: an answered leg cannot outlive this.


# --- Loads -----------------------------------------------------------------------------------------------------

_TRACKING_NUMBER = fastdb.JoinedLoader(
    TrackingNumber, {"campaign": Campaign, "source": Source, "pool": NumberPool},
    where=f"trackingnumber.number = %s AND trackingnumber.status IN ({', '.join(repr(str(s)) for s in ROUTABLE_STATUSES)})",
    extra=(
        # Blocked everywhere in the number's account (no campaign), or in its campaign.
        f"EXISTS (SELECT 1 FROM {BlockedCaller._meta.db_table} b WHERE b.number = %s "
        "AND ((b.campaign_id IS NULL AND b.account_id = trackingnumber.account_id) "
        "OR b.campaign_id = COALESCE(trackingnumber.campaign_id, pool.campaign_id)))"
    ),
)


# The same, with ids drawn from the sequences in the same statement (PostgreSQL): the new call's, so that it is
# inserted once, with what was decided, at the end of its first turn (``turn_flush``), instead of inserted first and
# updated at the end; and one leg's, for the call's first dial when it rings one line.
_TRACKING_NUMBER_RESERVING = fastdb.JoinedLoader(
    TrackingNumber, _TRACKING_NUMBER.joins, where=_TRACKING_NUMBER.where,
    extra=(f"{_TRACKING_NUMBER.extra}, nextval(pg_get_serial_sequence('{Call._meta.db_table}', '{Call._meta.pk.column}')), "
           f"nextval(pg_get_serial_sequence('{CallAttempt._meta.db_table}', '{CallAttempt._meta.pk.column}'))"),
)


class NumberLoad(NamedTuple):
    """``tracking_number_load``'s answer."""

    tracking_number: TrackingNumber | None
    blocked: bool
    call_id: int | None = None  # drawn ahead for the new call (None: not drawn)
    leg_id: int | None = None  # drawn ahead for its first leg


def tracking_number_load(number: str, *, caller: str, reserve_ids: bool = False) -> NumberLoad:
    """The routable tracking number ``number`` with its campaign, source and pool, whether ``caller`` (a real
    number, else '') is on the block list everywhere or in the number's campaign, and with ``reserve_ids`` where ids
    come from sequences (PostgreSQL) the ids of the call about to be recorded and of its first leg: one statement."""
    if reserve_ids and ids_reserved():
        found = _TRACKING_NUMBER_RESERVING.fetch([caller, number])
        if found is None:
            return NumberLoad(None, False)
        tn, (blocked, call_id, leg_id) = found
        return NumberLoad(tn, bool(blocked), call_id, leg_id)
    found = _TRACKING_NUMBER.fetch([caller, number])
    if found is None:
        return NumberLoad(None, False)
    tn, (blocked,) = found
    return NumberLoad(tn, bool(blocked))


def ids_reserved() -> bool:
    """Whether the call path draws a new row's id from its table's sequence ahead of its INSERT (PostgreSQL), so the
    row is written once, at the end of the turn; elsewhere it is inserted when it is made (SQLite gives the id)."""
    return connection.vendor == "postgresql"


_CALL_BY_ID = fastdb.JoinedLoader(
    Call, {"campaign": Campaign, "tracking_number": TrackingNumber, "source": Source}, where="call.id = %s")


def call_load(call_id: int) -> Call | None:
    """The call named in one of our callback URLs, with its campaign, tracking number and source (one statement)."""
    found = _CALL_BY_ID.fetch([call_id])
    return found[0] if found is not None else None


# Locked (its row only): a final status ends the call and decides its conversion on this instance. Without the
# stored TwiML answers: the status callback answers nothing a retry would need, and they are the row's widest column.
_CALL_BY_SID = fastdb.JoinedLoader(Call, {"campaign": Campaign}, where="call.call_sid = %s", lock=True, defer=("answers",))


def call_load_locked(call_sid: str) -> Call | None:
    """The call ``call_sid`` with its campaign, under its row lock where the database locks rows (``rows_lock``)."""
    found = _CALL_BY_SID.fetch([call_sid])
    return found[0] if found is not None else None


def rows_lock() -> bool:
    """Whether a row read ``FOR UPDATE`` is locked (PostgreSQL); SQLite has no row locks (it writes one transaction at
    a time): a decision that must see the latest row reads it again there."""
    return bool(connection.features.has_select_for_update)


_ATTEMPT = fastdb.JoinedLoader(CallAttempt, {"call": Call, "handler": Handler}, where="callattempt.id = %s")


def attempt_load(attempt_id: int) -> CallAttempt | None:
    """A leg with its call and handler (one statement)."""
    found = _ATTEMPT.fetch([attempt_id])
    return found[0] if found is not None else None


_STEP_ATTEMPTS = fastdb.JoinedLoader(CallAttempt, {"handler": Handler}, where="callattempt.call_id = %s AND callattempt.sequence = %s",
                                     order_by="callattempt.id")


def step_attempts_load(call_id: int, seq: int) -> list[CallAttempt]:
    """The legs of dial ``seq`` of a call, with their handlers (one statement)."""
    return [a for a, _ in _STEP_ATTEMPTS.fetch_all([call_id, seq])]


# The handler that last answered this caller in this campaign: one constant statement on the (caller, started_at)
# index (the ORM compiled the same query on every sticky call, which cost more than running it).
_STICKY_SQL = (
    f"SELECT handler_id FROM {Call._meta.db_table} WHERE caller_number = %s AND campaign_id = %s AND answered_at IS NOT NULL "
    "AND handler_id IS NOT NULL AND id <> %s ORDER BY started_at DESC, id DESC LIMIT 1"
)


def sticky_handler_load(call: Call) -> int | None:
    with fastdb.fixed_cursor() as cursor:
        cursor.execute(_STICKY_SQL, [call.caller_number, call.campaign_id, call.pk])
        row = cursor.fetchone()
    return row[0] if row else None


def round_robin_next(campaign_id: int) -> int:
    """Advance the campaign's round-robin cursor and return its previous value (one UPDATE ... RETURNING; the row
    lock the UPDATE takes makes concurrent calls get consecutive positions)."""
    with fastdb.fixed_cursor() as cursor:
        cursor.execute(
            f"UPDATE {Campaign._meta.db_table} SET rr_position = rr_position + 1 WHERE id = %s RETURNING rr_position",
            [campaign_id],
        )
        row = cursor.fetchone()
    return (row[0] - 1) if row else 0


# --- Writes ----------------------------------------------------------------------------------------------------


def voice_transaction_begin() -> None:
    """Inside a voice webhook's transaction: opt out of waiting for the disk on commit, when configured
    (CALLTRACK_VOICE_ASYNC_COMMIT, PostgreSQL)."""
    if settings.CALLTRACK_VOICE_ASYNC_COMMIT and connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")


def call_insert(call: Call, *, counters_for: Sequence[dec.HandlerOption], at: datetime, reserved_id: int | None = None) -> CountersRead | None:
    """The new call. With ``reserved_id`` (its id drawn ahead, ``tracking_number_load``: PostgreSQL) it is not written
    here: the turn inserts it whole at its end (``turn_flush(..., call_new=True)``), and the counters of
    ``counters_for`` are read now and returned for the plan. Elsewhere it is inserted now (its id comes from the
    INSERT) and no counters are read ahead."""
    if reserved_id is not None:
        call.pk = reserved_id
        return CountersRead(at=at, rows=counter_reads_pg(options=counters_for, at=at)) if counters_for else None
    fastdb.insert(call)
    return None


def call_write(call: Call) -> None:
    """INSERT a new call whose id was drawn ahead (``tracking_number_load``), before the end of its turn."""
    turn_flush(call, [], [], {}, call_new=True)


def turn_flush(call: Call | None, fields: list[str], steps: list[Any], add: dict[str, int], *, call_new: bool = False,
               attempts: Sequence[CallAttempt] = ()) -> None:
    """The turn's writes: the call's ``fields`` (from the instance) with ``add``'s amounts added in SQL, or with
    ``call_new`` the whole call (its id drawn ahead) with the amounts added to it; the legs whose ids were drawn ahead
    (``attempts``); the timeline steps. One statement on PostgreSQL (data-modifying WITHs), one per part elsewhere."""
    parts: list[tuple[str, list[Any]]] = []
    if call is not None and call_new:
        for name, amount in add.items():
            setattr(call, name, getattr(call, name) + amount)
        parts.append(fastdb.insert_rows_statement([call], with_pk=True))
    elif call is not None and (fields or add):
        parts.append(fastdb.update_statement(call, fields, add=add))
    if attempts:
        parts.append(fastdb.insert_rows_statement(attempts, with_pk=True))
    if steps:
        parts.append(fastdb.insert_rows_statement(steps))
    fastdb.run_together(parts)
    if call is not None and call_new:
        fastdb.inserted(call, call.pk)
    for attempt in attempts:
        fastdb.inserted(attempt, attempt.pk)


def attempts_insert(attempts: list[CallAttempt]) -> None:
    """INSERT a step's legs (one statement), their ids set."""
    fastdb.insert_many(attempts, returning=True)


def leg_end(attempt_id: int, *, status: str, duration: int, answered: bool, at: datetime) -> None:
    """A leg's own status callback ended it: its end is recorded once (the first of this and the dial result); its slot
    is released in any case; a leg never answered is uncounted."""
    with fastdb.fixed_cursor() as cursor:
        cursor.execute(
            f"UPDATE {CallAttempt._meta.db_table} SET "
            "status = CASE WHEN ended_at IS NULL THEN %s ELSE status END, "
            "duration = CASE WHEN ended_at IS NULL THEN %s ELSE duration END, "
            "counted = CASE WHEN ended_at IS NULL AND NOT %s THEN %s ELSE counted END, "
            "ended_at = COALESCE(ended_at, %s), holds_slot = %s "
            "WHERE id = %s AND (ended_at IS NULL OR holds_slot)",
            [status, duration, answered, False, at, False, attempt_id],
        )


def step_legs_unanswered(call_id: int, seq: int, *, status: str, at: datetime) -> None:
    """Dial ``seq`` was not answered: its legs end with ``status``, uncounted, their slots released."""
    with fastdb.fixed_cursor() as cursor:
        cursor.execute(
            f"UPDATE {CallAttempt._meta.db_table} SET status = %s, ended_at = %s, holds_slot = %s, counted = %s "
            "WHERE call_id = %s AND sequence = %s",
            [status, at, False, False, call_id, seq],
        )


def leg_mark_answered(attempt_id: int, at: datetime) -> None:
    """A ringing leg answered: its slot now lasts as long as a call can."""
    with fastdb.fixed_cursor() as cursor:
        cursor.execute(
            f"UPDATE {CallAttempt._meta.db_table} SET status = %s, slot_expires_at = %s WHERE id = %s AND status = %s",
            [AttemptStatus.ANSWERED, at + timedelta(seconds=MAX_CALL_SECONDS + settings.CALLTRACK_SLOT_MARGIN_SECONDS),
             attempt_id, AttemptStatus.DIALING],
        )


@dataclass(frozen=True)
class StepAnswered:
    """Dial ``seq`` of a call was answered by leg ``winner_id``: the winner completed with its ``duration`` (counted when
    ``counted``), the other legs (ring-all) cancelled and uncounted, every slot of the step released."""

    call_id: int
    seq: int
    winner_id: int
    duration: int
    counted: bool
    at: datetime

    def statement(self) -> tuple[str, list[Any]]:
        return (
            f"UPDATE {CallAttempt._meta.db_table} SET status = CASE WHEN id = %s THEN %s ELSE %s END, "
            "duration = CASE WHEN id = %s THEN %s ELSE duration END, ended_at = %s, holds_slot = %s, counted = (id = %s AND %s) "
            "WHERE call_id = %s AND sequence = %s",
            [self.winner_id, AttemptStatus.COMPLETED, AttemptStatus.CANCELED, self.winner_id, self.duration, self.at, False,
             self.winner_id, self.counted, self.call_id, self.seq],
        )


# The call's first answer: in progress with that handler (a fallback number that is nobody's line, or a handler's line
# the fallback chain does not credit, keeps the call's handler: COALESCE).
_CALL_ANSWERED = (
    f"UPDATE {Call._meta.db_table} SET answered_at = %s, handler_id = COALESCE(%s, handler_id), status = %s "
    f"WHERE id = %s AND answered_at IS NULL AND status NOT IN ({FINAL_STATUSES_SQL})"
)


def call_mark_answered(call_id: int, *, handler_id: int | None, at: datetime, step: StepAnswered | None = None,
                       merged: bool | None = None) -> bool:
    """The call's first answer (a conditional UPDATE decides which answer is first); with ``step``, the answered dial's
    legs are completed in the same statement on PostgreSQL (a data-modifying WITH), before it elsewhere (``merged``:
    the one form or the other, whatever the database: the parity test runs both on PostgreSQL). Returns whether this
    answer was the call's first."""
    params = [at, handler_id, CallStatus.IN_PROGRESS, call_id]
    if merged is None:
        merged = connection.vendor == "postgresql"
    with fastdb.fixed_cursor() as cursor:
        if step is not None and merged:
            legs_sql, legs_params = step.statement()
            cursor.execute(f"WITH legs AS ({legs_sql}), won AS ({_CALL_ANSWERED} RETURNING 1) SELECT COUNT(*) FROM won",
                           [*legs_params, *params])
            return cursor.fetchone()[0] > 0
        if step is not None:
            cursor.execute(*step.statement())
        cursor.execute(_CALL_ANSWERED, params)
        return cursor.rowcount > 0


# The call ended: legs still ringing were cancelled by the caller's hang-up (and are not counted), legs still
# open (answered) ended with the call, and every slot the call still holds is released.
_ATTEMPTS_END = (
    f"UPDATE {CallAttempt._meta.db_table} SET "
    "status = CASE WHEN ended_at IS NULL AND status = %s THEN %s WHEN ended_at IS NULL THEN %s ELSE status END, "
    "counted = CASE WHEN ended_at IS NULL AND status = %s THEN %s ELSE counted END, "
    "ended_at = COALESCE(ended_at, %s), holds_slot = %s "
    "WHERE call_id = %s AND (ended_at IS NULL OR holds_slot) "
    # A queue dial still ringing is the handler's own outbound call, not the caller's leg: it may yet take the next
    # caller waiting (its own status callback ends it).
    f"AND NOT (kind = '{AttemptKind.QUEUE}' AND status = '{AttemptStatus.DIALING}')"
)


def call_end(call_id: int, *, status: str, at: datetime, duration: int, seq: int | None, merged: bool | None = None) -> bool:
    """Move the call to its final ``status`` unless it is final already or the callback is older than the last one
    applied (``seq``); when it moved, end its legs too (``_ATTEMPTS_END``). One constant statement on PostgreSQL (the
    call's UPDATE as a data-modifying WITH, the legs' UPDATE reading its result); two elsewhere (``merged``: either
    form whatever the database, for the parity test). Returns whether the call moved."""
    if merged is None:
        merged = connection.vendor == "postgresql"
    sql = f"UPDATE {Call._meta.db_table} SET status = %s, ended_at = %s, duration = %s"
    if seq is None:
        sql, params = sql + f" WHERE id = %s AND status NOT IN ({FINAL_STATUSES_SQL})", [status, at, duration, call_id]
    else:
        sql = sql + f", last_sequence = %s WHERE id = %s AND status NOT IN ({FINAL_STATUSES_SQL}) AND last_sequence < %s"
        params = [status, at, duration, seq, call_id, seq]
    legs = [AttemptStatus.DIALING, AttemptStatus.CANCELED, AttemptStatus.COMPLETED, AttemptStatus.DIALING, False, at, False, call_id]
    with fastdb.fixed_cursor() as cursor:
        if merged:
            cursor.execute(
                f"WITH ended AS ({sql} RETURNING id), attempts AS ({_ATTEMPTS_END} AND call_id IN (SELECT id FROM ended)) "
                "SELECT COUNT(*) FROM ended",
                [*params, *legs],
            )
            return cursor.fetchone()[0] > 0
        cursor.execute(sql, params)
        ended = cursor.rowcount > 0
        if ended:
            cursor.execute(_ATTEMPTS_END, legs)
        return ended
