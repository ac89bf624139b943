"""A call's routing state, typed: what voice routing decided and where the call is in it.

Kept as JSON in ``Call.decision`` (``CallState.to_json``, versioned) and read back with ``CallState.from_json``;
nothing else reads that column. Routing's unit of work (``routing.services.turn``) loads it once per webhook,
changes it while deciding, and writes it with the webhook's other writes. The call page's route in words
(``tracking.timeline``), the API's ``decision`` field and the capped-handlers report read it through this class.

The stored TwiML answers of replayed webhooks are not part of the state: they live in ``Call.answers``, a column
the report rollups do not watch.

Pure data: no database, no Django. ``from_json`` never raises: a key it does not know is dropped, a value of the
wrong type reads as the default, so a call stored by an older release still loads (``VERSION`` says which
layout wrote it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, NamedTuple

VERSION = 2

CAPPED = "capped"


def _int(value: Any, default: int = 0) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _opt_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


class SkipRecord(NamedTuple):
    """A handler left out of the call's route, and why (``reason``: a code of ``routing.decision``; ``detail``: words).
    A capped handler keeps when it frees up (``frees_at``, epoch seconds; None: not before its caps change), which
    the queue reads. A named tuple: a call records one per handler left out, on every webhook that decides."""

    handler_id: int | None
    name: str
    reason: str
    detail: str
    frees_at: int | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"handler_id": self.handler_id, "name": self.name, "reason": self.reason, "detail": self.detail}
        if self.reason == CAPPED:
            out["frees_at"] = self.frees_at
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SkipRecord:
        # A capped skip stored before ``frees_at`` was kept frees at once (as it was read then): epoch 0.
        frees = data.get("frees_at", 0) if data.get("reason") == CAPPED else None
        return cls(_opt_int(data.get("handler_id")), _str(data.get("name")), _str(data.get("reason")), _str(data.get("detail")),
                   _opt_int(frees))


@dataclass(frozen=True)
class TailEntry:
    """A step after the handlers' plan (``routing.decision.TailStep``): a number dialled (kind ``no_answer_forward`` or
    ``fallback``, a step of the fallback chain), or a line's no-answer routing that is no dial: ``queue`` (the caller
    waits in the campaign's queue) or ``menu`` (the caller hears sub-menu ``menu_id``); the steps after it follow when
    the caller leaves the queue, or the menu without a choice."""

    kind: str
    label: str
    number: str
    receiving_number_id: int | None = None
    send_digits: str = ""
    step: str = ""
    menu_id: int | None = None

    def to_json(self) -> dict[str, Any]:
        out = {"kind": self.kind, "label": self.label, "number": self.number, "receiving_number_id": self.receiving_number_id,
               "send_digits": self.send_digits, "step": self.step}
        if self.menu_id is not None:
            out["menu_id"] = self.menu_id
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TailEntry:
        return cls(_str(data.get("kind")), _str(data.get("label")), _str(data.get("number")), _opt_int(data.get("receiving_number_id")),
                   _str(data.get("send_digits")), _str(data.get("step")), _opt_int(data.get("menu_id")))


@dataclass(frozen=True)
class NoAnswerStop:
    """Where a line's no-answer routing took the caller other than a dial: ``queue`` (the campaign's queue) or ``menu``
    (the sub-menu ``name``), after ``after`` legs had been dialled. The call's route in words reads them."""

    kind: str
    after: int
    name: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "after": self.after, **({"name": self.name} if self.name else {})}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> NoAnswerStop:
        return cls(_str(data.get("kind")), _int(data.get("after")), _str(data.get("name")))


@dataclass(frozen=True)
class Ending:
    """How the call ends when nothing is left to dial: ``voicemail`` or ``hangup`` after ``message``."""

    kind: str
    message: str


@dataclass(frozen=True)
class MenuPosition:
    """Where the caller is in the menus: the round of the menu playing, and how many menus they heard in all."""

    rounds: int = 1
    menus: int = 1


@dataclass(frozen=True)
class QueueStay:
    """The call's stay in its campaign's queue: queued at ``at`` (epoch seconds); when it left, Twilio's ``result``
    and the ``seconds`` waited."""

    at: int
    result: str = ""
    seconds: int = 0


@dataclass(frozen=True)
class TestOptions:
    """A test call's options, as its operator chose them: the webhooks sent or not, the clock routing reads."""

    __test__ = False  # not a pytest test class

    webhooks: bool = False
    clock: datetime | None = None


@dataclass(frozen=True)
class SpamMark:
    """The call's spam score (``routing.spam``): the points, the reasons in words and as codes, whether it reached
    the campaign's threshold, and what was done about it (``action``: a ``tracking.spam_rules.SpamAction`` value,
    '' below the threshold; ``challenge`` once passed reads ``passed``). ``unpaid``: nobody is paid for the call
    (the conversion rules leave both sides unconverted)."""

    score: int
    reasons: tuple[str, ...] = ()
    codes: tuple[str, ...] = ()
    is_spam: bool = False
    action: str = ""
    unpaid: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"score": self.score, "reasons": list(self.reasons), "codes": list(self.codes), "is_spam": self.is_spam,
                "action": self.action, "unpaid": self.unpaid}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SpamMark:
        reasons, codes = data.get("reasons"), data.get("codes")
        return cls(
            _int(data.get("score")),
            tuple(r for r in reasons if isinstance(r, str)) if type(reasons) is list else (),
            tuple(c for c in codes if isinstance(c, str)) if type(codes) is list else (),
            bool(data.get("is_spam")), _str(data.get("action")), bool(data.get("unpaid")),
        )


@dataclass
class CallState:
    """What routing decided for one call, and how far it got.

    - the plan: ``strategy``, ``steps`` (handler ids, one step rung at once), ``options`` (each planned handler's dial
      fields, ``routing.decision.HandlerOption.dial_json``), ``sticky_handler``, ``one_handler_per_call`` (an attempt
      rule), and ``plan_index`` (the next step; kept in its own column, ``Call.plan_index``);
    - ``skipped``: every handler left out, with the reason, in the order it was decided;
    - ``dials``: legs dialled so far (the next ``<Dial>``'s sequence is ``dials + 1``);
    - after the plan: ``tail`` (no-answer forwards, the fallback chain), ``tail_index``, ``ending``;
    - ``menu``: the caller's position in the menus (None: no menu played); ``queue``: the stay in the queue;
    - ``test``: a test call's options;
    - ``no_answer``: the queue and menus lines' no-answer routing took the caller to (the route in words reads them).
    - ``spam``: the call's spam score, its reasons and what was done (None: the campaign scores no call).
    """

    strategy: str = ""
    steps: list[list[int]] = field(default_factory=list)
    options: dict[int, dict[str, Any]] = field(default_factory=dict)
    skipped: list[SkipRecord] = field(default_factory=list)
    sticky_handler: int | None = None
    one_handler_per_call: bool = False
    plan_index: int = 0
    dials: int = 0
    tail: list[TailEntry] | None = None
    tail_index: int = 0
    ending: Ending | None = None
    menu: MenuPosition | None = None
    queue: QueueStay | None = None
    test: TestOptions | None = None
    no_answer: list[NoAnswerStop] = field(default_factory=list)
    spam: SpamMark | None = None

    # --- reading ------------------------------------------------------------------------------------------

    def option_name(self, handler_id: int) -> str:
        option = self.options.get(handler_id)
        name = option.get("name") if option is not None else None
        return name if type(name) is str and name else str(handler_id)

    def plan_rest(self) -> list[int]:
        """The handlers of the plan's steps not reached yet (from ``plan_index`` on)."""
        return [h for step in self.steps[self.plan_index:] for h in step]

    def capped_handler_ids(self) -> list[int]:
        return [s.handler_id for s in self.skipped if s.reason == CAPPED and s.handler_id is not None]

    # --- changing -----------------------------------------------------------------------------------------

    def skip(self, records: Iterable[SkipRecord]) -> None:
        self.skipped.extend(records)

    def next_dial(self) -> int:
        """The sequence of the next leg dialled (and count it)."""
        self.dials += 1
        return self.dials

    def tail_restart(self) -> None:
        """The call is routed afresh (a key of a menu the tail played): what follows its new plan is decided again."""
        self.tail, self.tail_index, self.ending = None, 0, None

    def menu_round(self, rounds: int) -> None:
        self.menu = replace(self.menu or MenuPosition(), rounds=rounds)

    def menu_opened(self) -> None:
        """A (sub-)menu starts playing: its first round, one more menu heard."""
        heard = self.menu.menus + 1 if self.menu is not None else 1
        self.menu = MenuPosition(rounds=1, menus=heard)

    # --- JSON ---------------------------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """The state as kept in ``Call.decision`` (only what is set; ``plan_index`` lives in its own column)."""
        out: dict[str, Any] = {"v": VERSION}
        if self.strategy or self.steps or self.options or self.sticky_handler is not None or self.one_handler_per_call:
            out.update({
                "strategy": self.strategy, "steps": self.steps, "options": {str(k): v for k, v in self.options.items()},
                "sticky_handler": self.sticky_handler, "one_handler_per_call": self.one_handler_per_call,
            })
        if self.skipped:
            out["skipped"] = [s.to_json() for s in self.skipped]
        if self.dials:
            out["dials"] = self.dials
        if self.tail is not None:
            out["tail"] = [t.to_json() for t in self.tail]
            out["tail_index"] = self.tail_index
        if self.ending is not None:
            out["terminal"] = {"kind": self.ending.kind, "message": self.ending.message}
        if self.menu is not None:
            out["ivr"] = {"rounds": self.menu.rounds, "menus": self.menu.menus}
        if self.queue is not None:
            out["queue"] = {"at": self.queue.at, **({"result": self.queue.result, "seconds": self.queue.seconds} if self.queue.result else {})}
        if self.test is not None:
            out["test"] = {"webhooks": self.test.webhooks, "clock": self.test.clock.isoformat() if self.test.clock else None}
        if self.no_answer:
            out["no_answer"] = [n.to_json() for n in self.no_answer]
        if self.spam is not None:
            out["spam"] = self.spam.to_json()
        return out

    @staticmethod
    def spam_from_json(data: Any) -> SpamMark | None:
        """Only the spam mark (``from_json(data).spam`` without reading the plan): the conversion rules ask it."""
        spam = data.get("spam") if isinstance(data, dict) else None
        return SpamMark.from_json(spam) if isinstance(spam, dict) else None

    @staticmethod
    def queue_from_json(data: Any) -> QueueStay | None:
        """Only the stay in the queue (``from_json(data).queue`` without reading the plan)."""
        queue = data.get("queue") if isinstance(data, dict) else None
        return QueueStay(_int(queue.get("at")), _str(queue.get("result")), _int(queue.get("seconds"))) if isinstance(queue, dict) else None

    @classmethod
    def from_json(cls, data: Any, *, plan_index: int = 0) -> CallState:
        """The state kept in ``Call.decision`` (any layout this project wrote; garbage reads as empty). Read on every
        voice webhook: the plan's options and skips (which grow with the campaign) are read in one pass each. The
        column holds decoded JSON, so objects are ``dict`` (a cheaper test than ``Mapping``'s)."""
        if not isinstance(data, dict):
            return cls(plan_index=plan_index)
        get = data.get
        options, steps, skipped, tail = get("options"), get("steps"), get("skipped"), get("tail")
        terminal, ivr, queue, test, no_answer, spam = get("terminal"), get("ivr"), get("queue"), get("test"), get("no_answer"), get("spam")
        return cls(
            strategy=_str(get("strategy")),
            steps=[[h for h in step if type(h) is int] for step in steps if type(step) is list] if type(steps) is list else [],
            options=_options(options) if isinstance(options, dict) else {},
            skipped=_skips(skipped) if type(skipped) is list else [],
            sticky_handler=_opt_int(get("sticky_handler")),
            one_handler_per_call=bool(get("one_handler_per_call")),
            plan_index=plan_index,
            dials=_int(get("dials")),
            tail=[TailEntry.from_json(t) for t in tail if isinstance(t, dict)] if type(tail) is list else None,
            tail_index=_int(get("tail_index")) if type(tail) is list else 0,  # an index into no tail is none
            ending=Ending(_str(terminal.get("kind")), _str(terminal.get("message"))) if isinstance(terminal, dict) else None,
            menu=MenuPosition(_int(ivr.get("rounds"), 1), _int(ivr.get("menus"), 1)) if isinstance(ivr, dict) else None,
            queue=QueueStay(_int(queue.get("at")), _str(queue.get("result")), _int(queue.get("seconds")))
            if isinstance(queue, dict) else None,
            test=TestOptions(bool(test.get("webhooks")), _clock(test.get("clock"))) if isinstance(test, dict) else None,
            no_answer=[NoAnswerStop.from_json(n) for n in no_answer if isinstance(n, dict)] if isinstance(no_answer, list) else [],
            spam=SpamMark.from_json(spam) if isinstance(spam, dict) else None,
        )


def _options(raw: dict[Any, Any]) -> dict[int, dict[str, Any]]:
    """The planned handlers' dial fields by handler id (JSON keys are strings). Read on every webhook that dials:
    the layout ``to_json`` writes is taken in one pass; anything else keeps only digit keys with object values."""
    try:
        out = {int(k): v for k, v in raw.items()}
    except (TypeError, ValueError):
        out = None
    if out is not None and {type(v) for v in raw.values()} <= {dict}:
        return out
    return {int(k): v for k, v in raw.items() if type(k) is str and k.isdigit() and k.isascii() and isinstance(v, dict)}


def _skips(raw: list[Any]) -> list[SkipRecord]:
    out = []
    for s in raw:
        if type(s) is not dict:
            continue
        reason = s.get("reason")
        handler_id, name, detail = s.get("handler_id"), s.get("name"), s.get("detail")
        if type(handler_id) is int and type(name) is str and type(reason) is str and type(detail) is str and reason != CAPPED:
            out.append(SkipRecord(handler_id, name, reason, detail))
        else:
            out.append(SkipRecord.from_json(s))
    return out


def _clock(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        clock = datetime.fromisoformat(value)
    except ValueError:
        return None
    return clock if clock.tzinfo is not None else None
