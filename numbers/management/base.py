"""What the numbers commands share: the account they work in (``--account``), argument lookups in it, and turning
refusals into one-line errors."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TypeVar

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Model

from calltrack.accounts import acting_in, default_account_id
from calltrack.models import Account
from calltrack.numbers.models import NumberPool
from calltrack.numbers.providers import CarrierError
from calltrack.numbers.services.errors import NumberError
from tracking.models import Campaign, Source

T = TypeVar("T")


def account_add_argument(parser: CommandParser) -> None:
    parser.add_argument("--account", metavar="SLUG",
                        help="The account (its slug) whose numbers, campaigns, sources and pools the command works with "
                             "(default: the first account).")


def find_account(slug: str | None) -> Account:
    """The account ``--account`` names (by slug), or the first account when not given."""
    if slug is None:
        return Account.objects.get(pk=default_account_id())
    value = slug.strip()
    found = Account.objects.filter(slug=value).first() if value and "\x00" not in value and len(value) <= 64 else None
    if found is None:
        known = ", ".join(Account.objects.order_by("slug").values_list("slug", flat=True)[:20])
        raise CommandError(f"--account: no account with the slug '{value[:64]}' (accounts: {known}).")
    return found


def _find(model: type[Model], text: str, key: str, what: str, flag: str, account_id: int | None = None) -> Any:
    value = (text or "").strip()
    objects = model.objects.filter(account_id=account_id) if account_id is not None else model.objects.all()
    match = objects.filter(**{f"{key}__iexact": value}).first()
    if match is None and value.isdigit():
        match = objects.filter(pk=int(value)).first()
    if match is None:
        named = list(objects.filter(name__iexact=value)[:2])
        if len(named) > 1:
            raise CommandError(f"{flag}: several {what}s are named '{value}'; give its ID ({key}).")
        match = named[0] if named else None
    if match is None:
        raise CommandError(f"{flag}: no {what} '{value}' (give its {key}, id or name).")
    return match


def find_pool(text: str, account_id: int | None = None) -> NumberPool:
    return _find(NumberPool, text, "key", "pool", "--pool", account_id)


def find_campaign(text: str, account_id: int | None = None) -> Campaign:
    return _find(Campaign, text, "campaign_id", "campaign", "--campaign", account_id)


def find_source(text: str, account_id: int | None = None) -> Source:
    return _find(Source, text, "source_id", "source", "--source", account_id)


class NumbersCommand(BaseCommand):
    """A thin command: parse, call one service, print. Refusals exit 1 with a one-line reason on stderr."""

    actor_label = ""
    account: Account | None = None  # --account, once account_choose() ran

    def account_choose(self, slug: str | None) -> Account:
        """The account this run works in (``--account``, else the first): rows the services create get it."""
        self.account = find_account(slug)
        return self.account

    def service(self, func: Callable[..., T], **kwargs: Any) -> T:
        try:
            with acting_in(self.account.pk if self.account is not None else None):
                return func(**kwargs)
        except NumberError as exc:
            for problem in exc.problems[1:] if len(exc.problems) > 1 else []:
                self.stderr.write(f"  {problem}")
            raise CommandError(str(exc) if len(exc.problems) <= 1 else f"{exc} (first: {exc.problems[0]})")
        except CarrierError as exc:
            raise CommandError(f"The carrier refused: {exc}")

    def progress_printer(self, label: str) -> Callable[[str, int, int], None]:
        """A progress bar on a terminal, plain lines (every 10%) otherwise."""
        tty = getattr(self.stdout, "isatty", lambda: False)() or getattr(self.stdout._out, "isatty", lambda: False)()
        state = {"last": -1}

        def show(stage: str, done: int, total: int) -> None:
            if total <= 0:
                return
            percent = int(done * 100 / total)
            if tty:
                bar = "#" * (percent // 4)
                sys.stdout.write(f"\r{label} {stage:8} [{bar:<25}] {percent:3d}% {done}/{total}")
                if done >= total:
                    sys.stdout.write("\n")
                sys.stdout.flush()
            elif percent // 10 != state["last"] or done >= total:
                key = percent // 10 if done < total else 10 + (stage == "writing")
                if key != state["last"]:
                    state["last"] = key
                    self.stdout.write(f"{label}: {stage} {done}/{total} ({percent}%)")

        return show
