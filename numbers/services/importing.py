"""Bulk import and export of numbers as CSV.

Tracking numbers (default) or receiving numbers. Every line is validated before
anything is written; each problem names its line, column and reason. Writes are
bulk (``bulk_create``/``bulk_update`` in batches, one transaction), so 100,000
lines take seconds, not a save per row. :func:`numbers_export` writes the file
``numbers_import --update`` reads back.
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import IO, Any

import phonenumbers
from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import connection, models, transaction
from django.db.models import QuerySet
from django.utils import timezone
from phonenumbers import PhoneNumberFormat

from calltrack import phone
from calltrack.accounts import current_account_id, default_account_id
from calltrack.csv_export import csv_safe_row, csv_unsafe
from calltrack.csv_import import LineDictReader
from calltrack.fields import validate_send_digits
from calltrack.numbers.models import NumberKind, NumberPool, NumberStatus, ReceivingNumber, TrackingNumber
from calltrack.numbers.providers import CARRIERS
from calltrack.numbers.services.errors import NumberError
from calltrack.numbers.services.events import number_event_build
from tracking.models import Campaign, Source

BATCH = 2000
UTM_COLUMNS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
TRACKING_COLUMNS = (
    "number", "label", "kind", "campaign", "source", "pool", "failsafe_number", "marketing_data", *UTM_COLUMNS, "carrier", "carrier_id",
)
# Written by numbers_export for people to read; numbers_import accepts and ignores them.
EXPORT_ONLY_COLUMNS = ("status", "number_type", "area_code", "quarantined_until")
RECEIVING_COLUMNS = ("number", "label", "extension_digits", "digits_delay", "whisper_message", "ring_timeout")

KINDS = tuple(NumberKind.values)
Progress = Callable[[str, int, int], None]  # (stage, done, total)


@dataclass(frozen=True)
class ImportProblem:
    line: int
    column: str
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}, column '{self.column}': {self.reason}" if self.column else f"line {self.line}: {self.reason}"


class NumberImportError(NumberError):
    def __init__(self, problems: list[ImportProblem]) -> None:
        self.import_problems = problems
        head = f"{len(problems)} bad line{'s' if len(problems) != 1 else ''}; nothing was imported"
        if len(problems) == 1:
            head += f": {problems[0]}"
        super().__init__(head, problems=[str(p) for p in problems])


@dataclass
class ImportResult:
    lines: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    problems: list[ImportProblem] = field(default_factory=list)
    dry_run: bool = False


@dataclass
class _Row:
    line: int
    number: str
    number_type: str
    area_code: str
    country: str
    values: dict[str, Any]


_NANP_REGION: dict[str, str | None] = {}
_NANP_TYPE: dict[str, str] = {}


def _number_type(parsed: phonenumbers.PhoneNumber) -> str:
    kind = phonenumbers.number_type(parsed)
    if kind in (phonenumbers.PhoneNumberType.TOLL_FREE, phonenumbers.PhoneNumberType.SHARED_COST, phonenumbers.PhoneNumberType.PREMIUM_RATE):
        return "toll_free"
    if kind == phonenumbers.PhoneNumberType.MOBILE:
        return "mobile"
    return "local"


def _parse_number(text: str, region: str) -> tuple[str, str, str, str]:
    """E.164, type, area code and country from one parse; the same answers as calltrack.phone, faster in bulk.

    In the North American plan the region follows from the area code and the
    type from the area code and exchange, so those (the costly part of
    ``phonenumbers``) are computed once per prefix; elsewhere, per number.
    """
    text = (text or "").strip()
    if not text:
        raise phone.InvalidPhoneNumber(text, "it is empty")
    try:
        parsed = phonenumbers.parse(text, region.upper())
    except phonenumbers.NumberParseException:
        return _parse_number_slow(text, region)
    national = phonenumbers.national_significant_number(parsed)
    if parsed.country_code != 1 or len(national) != 10:
        return _parse_number_slow(text, region)
    npa = national[:3]
    if npa not in _NANP_REGION:
        _NANP_REGION[npa] = phonenumbers.region_code_for_number(parsed)
    country = _NANP_REGION[npa]
    if not country or not phonenumbers.is_valid_number_for_region(parsed, country):
        return _parse_number_slow(text, region)
    prefix = national[:6]
    if prefix not in _NANP_TYPE:
        _NANP_TYPE[prefix] = _number_type(parsed)
    return "+1" + national, _NANP_TYPE[prefix], npa, country


def _parse_number_slow(text: str, region: str) -> tuple[str, str, str, str]:
    parsed = phone.parse(text, region=region)  # raises InvalidPhoneNumber with the reason
    e164 = phonenumbers.format_number(parsed, PhoneNumberFormat.E164)
    national = phonenumbers.national_significant_number(parsed)
    if parsed.country_code == 1:
        area = national[:3]
    else:
        length = phonenumbers.length_of_geographical_area_code(parsed)
        area = national[:length] if length else ""
    return e164, _number_type(parsed), area, phonenumbers.region_code_for_number(parsed) or ""


def _existing_ids(numbers: list[str]) -> list[int]:
    """Ids of the tracking numbers among ``numbers`` (E.164 already), without re-parsing each one as a lookup value."""
    if not numbers:
        return []
    table = TrackingNumber._meta.db_table
    ids: list[int] = []
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f'SELECT id FROM "{table}" WHERE number = ANY(%s)', [numbers])
            return [row[0] for row in cursor.fetchall()]
        for start in range(0, len(numbers), 500):
            chunk = numbers[start:start + 500]
            cursor.execute(f'SELECT id FROM "{table}" WHERE number IN ({", ".join(["%s"] * len(chunk))})', chunk)
            ids += [row[0] for row in cursor.fetchall()]
    return ids


def _bulk_insert(objs: list[Any], *, returning_ids: bool = False, key: str = "") -> None:
    """Insert many rows: COPY on PostgreSQL (values are already clean, so the fields' per-value checks are skipped),
    ``bulk_create`` elsewhere. With ``returning_ids`` the objects get their primary keys (looked up by ``key``)."""
    if not objs:
        return
    model = type(objs[0])
    if connection.vendor != "postgresql":
        model.objects.bulk_create(objs, batch_size=BATCH)
        return
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    columns = ", ".join(f'"{f.column}"' for f in fields)
    json_columns = {f.attname for f in fields if isinstance(f, models.JSONField)}
    with connection.cursor() as cursor:
        raw = cursor.cursor  # the psycopg cursor under Django's wrapper
        with raw.copy(f'COPY "{model._meta.db_table}" ({columns}) FROM STDIN') as copy:
            for obj in objs:
                copy.write_row([
                    json.dumps(getattr(obj, f.attname)) if f.attname in json_columns else getattr(obj, f.attname)
                    for f in fields
                ])
        if returning_ids:
            values = [getattr(obj, key) for obj in objs]
            cursor.execute(f'SELECT "{key}", id FROM "{model._meta.db_table}" WHERE "{key}" = ANY(%s)', [values])
            ids = dict(cursor.fetchall())
            for obj in objs:
                obj.pk = ids[getattr(obj, key)]
                obj._state.adding = False


class _Lookup:
    """Campaigns, sources and pools by their export key (slug) or, when unambiguous, their name or id."""

    def __init__(self, objects: Iterable[Any], key: str, what: str) -> None:
        self.what = what
        self.by_key: dict[str, Any] = {}
        self.by_name: dict[str, list[Any]] = defaultdict(list)
        for obj in objects:
            self.by_key[str(getattr(obj, key)).lower()] = obj
            self.by_key.setdefault(str(obj.pk), obj)
            self.by_name[obj.name.strip().lower()].append(obj)

    def get(self, text: str) -> Any:
        value = text.strip().lower()
        if value in self.by_key:
            return self.by_key[value]
        named = self.by_name.get(value, [])
        if len(named) == 1:
            return named[0]
        if len(named) > 1:
            raise ValueError(f"{len(named)} {self.what}s are named '{text.strip()}'; use its ID instead")
        raise ValueError(f"no {self.what} '{text.strip()}'")


def _read(file: IO[str], allowed: tuple[str, ...]) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """The header's columns and each record with the file line it starts on (blank lines and multi-line cells counted)."""
    reader = LineDictReader(file)
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    problems = []
    if not header:
        raise NumberImportError([ImportProblem(1, "", "the file is empty; the first line must name the columns")])
    if "number" not in header:
        problems.append(ImportProblem(1, "number", f"the header has no 'number' column (columns: {', '.join(allowed)})"))
    for name in header:
        if name not in allowed and name not in EXPORT_ONLY_COLUMNS:
            problems.append(ImportProblem(1, name, f"unknown column (expected some of: {', '.join(allowed)})"))
    dupes = {h for h in header if header.count(h) > 1}
    for name in sorted(dupes):
        problems.append(ImportProblem(1, name, "the column appears twice"))
    if problems:
        raise NumberImportError(problems)
    reader.fieldnames = header
    rows = []
    for line, record in reader.numbered():
        if None in record:  # more cells than columns
            record["__extra__"] = "x"
        # Undo the export's formula neutralising ("'=x" was written for "=x"), so an export re-imports unchanged.
        record = {k: csv_unsafe(v) if isinstance(v, str) else v for k, v in record.items()}
        rows.append((line, record))
    return header, rows


def numbers_import(
    *, file: IO[str], update: bool = False, skip_invalid: bool = False, dry_run: bool = False, receiving: bool = False,
    actor: AbstractBaseUser | None = None, actor_label: str = "numbers_import", progress: Progress | None = None,
    region: str | None = None, account_id: int | None = None,
) -> ImportResult:
    """Import tracking (or, with ``receiving``, receiving) numbers from CSV into ``account_id`` (default: the account
    acted in, else the first): campaigns, sources and pools are looked up in it, new numbers belong to it, and a
    number of another account is refused.

    Validates every line first. Any bad line raises NumberImportError listing
    every problem and writes nothing, unless ``skip_invalid`` (bad lines are
    reported in the result and skipped). Existing numbers are a problem unless
    ``update``. Enforces source static number caps over the whole file under a
    lock on the sources, and the pool rules (a number in one pool; leaving a
    pool means quarantine). One transaction; ``dry_run`` validates only.
    Idempotent with ``update``: importing the same file twice changes nothing.

    The steps: read the header (``_read``), parse and check each line on its own (``_rows_parse``), load the
    numbers already ours (``_existing_numbers``), plan creates and updates (``_changes_plan``), check the
    static number caps over the whole file (``_static_caps_check``), then write in bulk (``_changes_write``).
    """
    region = region or phone.default_region()
    account_id = account_id or current_account_id() or default_account_id()
    if receiving:
        return _import_receiving(file=file, update=update, skip_invalid=skip_invalid, dry_run=dry_run, progress=progress, region=region,
                                 account_id=account_id)
    header, records = _read(file, TRACKING_COLUMNS)
    result = ImportResult(lines=len(records), dry_run=dry_run)
    problems: list[ImportProblem] = []
    rows = _rows_parse(header=header, records=records, region=region, problems=problems, progress=progress, account_id=account_id)
    existing = _existing_numbers(rows)

    with transaction.atomic():
        creates, updates, result.unchanged = _changes_plan(rows=rows, existing=existing, update=update, problems=problems,
                                                           account_id=account_id)
        _static_caps_check(creates=creates, updates=updates, existing=existing, problems=problems)
        if problems and not skip_invalid:
            raise NumberImportError(sorted(problems, key=lambda p: p.line))
        bad_lines = {p.line for p in problems}
        result.problems = sorted(problems, key=lambda p: p.line)
        result.skipped = len({p.line for p in problems if p.line > 1})
        creates = [(r, tn) for r, tn in creates if r.line not in bad_lines]
        updates = [u for u in updates if u[0].line not in bad_lines]
        result.created, result.updated = len(creates), len(updates)
        if dry_run:
            transaction.set_rollback(True)
            return result
        _changes_write(creates=creates, updates=updates, actor=actor, actor_label=actor_label, progress=progress)
    return result


_Create = tuple[_Row, TrackingNumber]
_Update = tuple[_Row, TrackingNumber, dict[str, list[Any]], str]  # (row, planned number, {field: [old, new]}, old status)
_DIFF_FIELDS = ("kind", "label", "campaign", "source", "pool", "failsafe_number", "marketing_data", "carrier", "carrier_id")
_FK_FIELDS = ("campaign", "source", "pool")


def _rows_parse(
    *, header: list[str], records: list[tuple[int, dict[str, str]]], region: str, problems: list[ImportProblem],
    progress: Progress | None, account_id: int,
) -> list[_Row]:
    """Each line checked on its own (number, lookups, kind, label, fail-safe, marketing data): the good ones as
    rows; each problem appended to ``problems``. Reads campaigns, sources and pools once (three queries)."""
    lookups = (
        ("campaign", _Lookup(Campaign.objects.filter(account_id=account_id), "campaign_id", "campaign")),
        ("source", _Lookup(Source.objects.filter(account_id=account_id), "source_id", "source")),
        ("pool", _Lookup(NumberPool.objects.filter(account_id=account_id).select_related("campaign"), "key", "pool")),
    )
    total = len(records)
    rows: list[_Row] = []
    seen: dict[str, int] = {}
    for index, (line, record) in enumerate(records):
        if progress and index % BATCH == 0:
            progress("checking", index, total)
        bad = len(problems)
        if "__extra__" in record:
            problems.append(ImportProblem(line, "", f"more cells than the {len(header)} columns of the header"))
            continue
        cell = _number_cell(record, line, seen, problems, lambda text: _parse_number(text, region))
        if cell is None:
            continue
        e164, number_type, area, country = cell
        values = _row_values(record=record, line=line, header=header, lookups=lookups, region=region, problems=problems)
        if len(problems) == bad:
            rows.append(_Row(line, e164, number_type, area, country, values))
    if progress:
        progress("checking", total, total)
    return rows


def _row_values(
    *, record: dict[str, str], line: int, header: list[str], lookups: tuple[tuple[str, _Lookup], ...], region: str,
    problems: list[ImportProblem],
) -> dict[str, Any]:
    """The model values of one line's columns other than the number (only the columns the file has)."""
    values: dict[str, Any] = {}
    for column, lookup in lookups:
        if column in header:
            text = (record.get(column) or "").strip()
            try:
                values[column] = lookup.get(text) if text else None
            except ValueError as exc:
                problems.append(ImportProblem(line, column, str(exc)))
    if "kind" in header:
        kind = (record.get("kind") or "").strip().lower()
        if kind and kind not in KINDS:
            problems.append(ImportProblem(line, "kind", f"'{kind}' is not one of: {', '.join(KINDS)}"))
        elif kind:
            values["kind"] = kind
    if "label" in header:
        values["label"] = (record.get("label") or "").strip()[:200]
    if "failsafe_number" in header:
        text = (record.get("failsafe_number") or "").strip()
        try:
            values["failsafe_number"] = phone.to_e164(text, region=region) if text else ""
        except phone.InvalidPhoneNumber as exc:
            problems.append(ImportProblem(line, "failsafe_number", str(exc)))
    if any(c in header for c in ("marketing_data", *UTM_COLUMNS)):
        values["marketing_data"] = _marketing_data(record=record, line=line, problems=problems)
    if "carrier" in header:  # the carrier that holds the number; blank: CALLTRACK_CARRIER
        carrier = (record.get("carrier") or "").strip().lower()
        if carrier and carrier not in CARRIERS:
            problems.append(ImportProblem(line, "carrier", f"'{carrier}' is not one of: {', '.join(CARRIERS)}"))
        elif carrier:
            values["carrier"] = carrier
    if "carrier_id" in header:
        carrier_id = (record.get("carrier_id") or "").strip()
        if len(carrier_id) > 64 or not carrier_id.isprintable():
            problems.append(ImportProblem(line, "carrier_id", "the carrier's id is at most 64 printable characters"))
        elif carrier_id:
            values["carrier_id"] = carrier_id
    return values


def _marketing_data(*, record: dict[str, str], line: int, problems: list[ImportProblem]) -> dict[str, Any]:
    """The ``marketing_data`` JSON object of a line, with its ``utm_*`` columns on top."""
    data: dict[str, Any] = {}
    text = (record.get("marketing_data") or "").strip()
    if text:
        try:
            loaded = json.loads(text)
        except json.JSONDecodeError as exc:
            problems.append(ImportProblem(line, "marketing_data", f"not valid JSON ({exc.msg})"))
            loaded = {}
        if not isinstance(loaded, dict):
            problems.append(ImportProblem(line, "marketing_data", 'must be a JSON object like {"utm_source": "radio"}'))
            loaded = {}
        data.update(loaded)
    for column in UTM_COLUMNS:
        if (record.get(column) or "").strip():
            data[column] = record[column].strip()
    return data


def _existing_numbers(rows: list[_Row]) -> dict[str, TrackingNumber]:
    """The file's numbers that are already ours, by E.164 (with their pool, campaign and source)."""
    existing: dict[str, TrackingNumber] = {}
    ids = _existing_ids([r.number for r in rows])
    for start in range(0, len(ids), 5000):
        for tn in TrackingNumber.objects.filter(pk__in=ids[start:start + 5000]).select_related("pool", "campaign", "source"):
            existing[tn.number] = tn
    return existing


def _changes_plan(
    *, rows: list[_Row], existing: dict[str, TrackingNumber], update: bool, problems: list[ImportProblem], account_id: int,
) -> tuple[list[_Create], list[_Update], int]:
    """New numbers to create, existing ones to change (with what changes), and how many stay as they are.
    An existing number is a problem unless ``update``; so is a planned change the pool rules refuse."""
    creates: list[_Create] = []
    updates: list[_Update] = []
    unchanged = 0
    for row in rows:
        current = existing.get(row.number)
        if current is not None and current.account_id != account_id:
            problems.append(ImportProblem(row.line, "number", f"{row.number} is a number of another account"))
            continue
        if current is not None and not update:
            problems.append(ImportProblem(row.line, "number", f"{row.number} is already one of our numbers (use --update to change it)"))
            continue
        problem_count = len(problems)
        planned = _plan(row, current, problems, account_id=account_id)
        if len(problems) != problem_count:
            continue
        if current is None:
            creates.append((row, planned))
            continue
        diff = {k: [getattr(current, k + "_id" if k in _FK_FIELDS else k), getattr(planned, k + "_id" if k in _FK_FIELDS else k)]
                for k in _DIFF_FIELDS}
        diff = {k: v for k, v in diff.items() if v[0] != v[1]}
        if diff:
            updates.append((row, planned, diff, current.status))
        else:
            unchanged += 1
    return creates, updates, unchanged


def _static_caps_check(
    *, creates: list[_Create], updates: list[_Update], existing: dict[str, TrackingNumber], problems: list[ImportProblem],
) -> None:
    """Source static number caps, for the whole file at once (under a lock on the sources concerned)."""
    adding: dict[int, list[int]] = defaultdict(list)
    for row, tn in creates:
        if tn.kind == NumberKind.STATIC and tn.source_id and tn.status != NumberStatus.RELEASED:
            adding[tn.source_id].append(row.line)
    for row, tn, _diff, _ in updates:
        was = existing[row.number]
        already = was.kind == NumberKind.STATIC and was.source_id == tn.source_id and was.status != NumberStatus.RELEASED
        if tn.kind == NumberKind.STATIC and tn.source_id and not already and tn.status != NumberStatus.RELEASED:
            adding[tn.source_id].append(row.line)
    if adding:
        _check_caps(adding, problems)


def _changes_write(
    *, creates: list[_Create], updates: list[_Update], actor: AbstractBaseUser | None, actor_label: str, progress: Progress | None,
) -> None:
    """Insert the new numbers and update the changed ones in batches, with one history event each."""
    now = timezone.now()
    new_numbers = [tn for _, tn in creates]
    for start in range(0, len(new_numbers), BATCH * 5):
        _bulk_insert(new_numbers[start:start + BATCH * 5], returning_ids=True, key="number")
        if progress:
            progress("writing", start + len(new_numbers[start:start + BATCH * 5]), len(new_numbers) + len(updates))
    events = [
        number_event_build(number=tn, from_status="", to_status=tn.status, actor=actor, actor_label=actor_label, at=now,
                           reason="Imported", changes={"campaign": tn.campaign_id, "source": tn.source_id, "pool": tn.pool_id})
        for tn in new_numbers
    ]
    changed = [tn for _, tn, _, _ in updates]
    for tn in changed:
        tn.updated_at = now
    for start in range(0, len(changed), BATCH):
        TrackingNumber.objects.bulk_update(
            changed[start:start + BATCH],
            ["kind", "label", "campaign", "source", "pool", "failsafe_number", "marketing_data", "carrier", "carrier_id", "updated_at"],
        )
        if progress:
            progress("writing", len(new_numbers) + start + len(changed[start:start + BATCH]), len(new_numbers) + len(updates))
    events += [
        number_event_build(number=tn, from_status=status, to_status=tn.status, actor=actor, actor_label=actor_label, at=now,
                           reason="Updated by import", changes=diff)
        for _, tn, diff, status in updates
    ]
    _bulk_insert(events)


def _configured_carrier() -> str:
    return (settings.CALLTRACK_CARRIER or "local").lower()


def _plan(row: _Row, current: TrackingNumber | None, problems: list[ImportProblem], *, account_id: int) -> TrackingNumber:
    """The number as the row wants it (a new unsaved one, or ``current`` changed in memory)."""
    v = row.values
    if current is None:
        tn = TrackingNumber(
            number=row.number, number_type=row.number_type, area_code=row.area_code, country=row.country,
            status=NumberStatus.ACTIVE, carrier=_configured_carrier(), created_at=timezone.now(), account_id=account_id,
        )
        tn.updated_at = tn.created_at
    else:
        tn = TrackingNumber(**{f.attname: getattr(current, f.attname) for f in TrackingNumber._meta.concrete_fields})
    pool = v["pool"] if "pool" in v else (current.pool if current and current.pool_id else None)
    kind = v.get("kind") or (NumberKind.POOL if pool else (current.kind if current else NumberKind.STATIC))
    campaign = v["campaign"] if "campaign" in v else (current.campaign if current and current.campaign_id else None)
    if kind == NumberKind.STATIC and pool:
        problems.append(ImportProblem(row.line, "pool", "a static number cannot be in a pool (set kind to 'pool' or clear the pool)"))
        return tn
    if kind == NumberKind.POOL:
        if not pool:
            problems.append(ImportProblem(row.line, "pool", "a pool number needs its pool"))
            return tn
        if campaign and campaign.pk != pool.campaign_id:
            problems.append(ImportProblem(row.line, "campaign", f"pool '{pool.key}' routes to campaign '{pool.campaign.campaign_id}', not '{campaign.campaign_id}'"))
            return tn
        campaign = pool.campaign
        if v.get("marketing_data"):
            problems.append(ImportProblem(row.line, "marketing_data", "pool numbers take marketing data from each visitor; leave it blank"))
    if not campaign:
        problems.append(ImportProblem(row.line, "campaign", "every number needs a campaign (or a pool) to route its calls"))
        return tn
    if current is not None:
        if current.pool_id and (pool.pk if pool else None) != current.pool_id:
            problems.append(ImportProblem(row.line, "pool", f"{row.number} is in pool '{current.pool.key if current.pool else current.pool_id}'; a number leaving a pool is quarantined first (release it)"))
            return tn
        if current.status in (NumberStatus.PORTING_OUT, NumberStatus.QUARANTINED) and (pool.pk if pool else None) != current.pool_id:
            problems.append(ImportProblem(row.line, "pool", f"{row.number} is {current.get_status_display().lower()}; it cannot join a pool"))
            return tn
    tn.kind, tn.pool, tn.campaign = kind, pool, campaign
    # A pool number may name a source (credited when the visitor's data names none); caps count static numbers only.
    tn.source = v["source"] if "source" in v else (current.source if current and current.source_id else None)
    if "label" in v:
        tn.label = v["label"]
    if "failsafe_number" in v:
        tn.failsafe_number = v["failsafe_number"]
    # A number is held by the carrier its line names (an --update corrects a number recorded under the wrong one).
    tn.carrier = v.get("carrier", tn.carrier)
    tn.carrier_id = v.get("carrier_id", tn.carrier_id)
    if kind == NumberKind.POOL:
        tn.marketing_data = {}
    elif "marketing_data" in v:
        tn.marketing_data = v["marketing_data"]
    return tn


def _check_caps(adding: dict[int, list[int]], problems: list[ImportProblem]) -> None:
    from django.db.models import Count

    capped = {s.pk: s for s in Source.objects.select_for_update().filter(pk__in=adding, static_number_cap__isnull=False)}
    if not capped:
        return
    held = dict(
        TrackingNumber.objects.filter(source_id__in=capped, kind=NumberKind.STATIC).exclude(status=NumberStatus.RELEASED)
        .values_list("source_id").annotate(n=Count("id")).values_list("source_id", "n")
    )
    for source_id, source in capped.items():
        lines = sorted(adding[source_id])
        room = max((source.static_number_cap or 0) - held.get(source_id, 0), 0)  # only capped sources
        for line in lines[room:]:
            problems.append(ImportProblem(
                line, "source",
                f"source '{source.source_id}' may hold {source.static_number_cap} static numbers (its static number cap); "
                f"it holds {held.get(source_id, 0)} and the file adds {len(lines)}",
            ))


def _import_receiving(
    *, file: IO[str], update: bool, skip_invalid: bool, dry_run: bool, progress: Progress | None, region: str, account_id: int,
) -> ImportResult:
    header, records = _read(file, RECEIVING_COLUMNS)
    result = ImportResult(lines=len(records), dry_run=dry_run)
    problems: list[ImportProblem] = []
    parsed: list[tuple[int, str, dict[str, Any]]] = []
    seen: dict[str, int] = {}
    for line, record in records:
        bad = len(problems)
        cell = _number_cell(record, line, seen, problems, lambda text: (phone.to_e164(text, region=region),))
        if cell is None:
            continue
        (e164,) = cell
        values: dict[str, Any] = {}
        if "label" in header:
            values["label"] = (record.get("label") or "").strip()[:200]
            if not values["label"]:
                problems.append(ImportProblem(line, "label", "a receiving number needs a label"))
        if "extension_digits" in header:
            digits = (record.get("extension_digits") or "").strip()
            try:
                validate_send_digits(digits)
                values["extension_digits"] = digits
            except Exception as exc:  # ValidationError
                problems.append(ImportProblem(line, "extension_digits", "; ".join(getattr(exc, "messages", [str(exc)]))))
        for column, low, high in (("digits_delay", 0, 30), ("ring_timeout", 5, 600)):
            text = (record.get(column) or "").strip()
            if column in header and text:
                if not text.isdigit() or not low <= int(text) <= high:
                    problems.append(ImportProblem(line, column, f"'{text}' is not a whole number from {low} to {high}"))
                else:
                    values[column] = int(text)
        if "whisper_message" in header:
            values["whisper_message"] = (record.get("whisper_message") or "").strip()[:500]
        if len(problems) == bad:
            parsed.append((line, e164, values))
    existing = {r.number: r for r in ReceivingNumber.objects.filter(account_id=account_id, number__in=[n for _, n, _ in parsed])}
    creates, updates = [], []
    for line, e164, values in parsed:
        current = existing.get(e164)
        if current and not update:
            problems.append(ImportProblem(line, "number", f"{e164} is already a receiving number (use --update to change it)"))
        elif current:
            if any(getattr(current, k) != v for k, v in values.items()):
                for k, v in values.items():
                    setattr(current, k, v)
                updates.append(current)
            else:
                result.unchanged += 1
        else:
            if not values.get("label"):
                problems.append(ImportProblem(line, "label", "a new receiving number needs a label"))
                continue
            creates.append(ReceivingNumber(number=e164, country=phone.country(e164), account_id=account_id, **values))
    if problems and not skip_invalid:
        raise NumberImportError(sorted(problems, key=lambda p: p.line))
    result.problems = sorted(problems, key=lambda p: p.line)
    result.skipped = len({p.line for p in problems})
    result.created, result.updated = len(creates), len(updates)
    if not dry_run:
        with transaction.atomic():
            ReceivingNumber.objects.bulk_create(creates, batch_size=BATCH)
            if updates:
                # Routing caches each campaign's handlers with their receiving numbers by config_version: a trigger
                # bumps it for the campaigns dialling each number updated.
                ReceivingNumber.objects.bulk_update(updates, [c for c in RECEIVING_COLUMNS if c in header and c != "number"], batch_size=BATCH)
    return result


EXPORT_COLUMNS = ("number", "label", "kind", "status", "campaign", "source", "pool", "failsafe_number", "marketing_data",
                  "number_type", "area_code", "carrier", "carrier_id", "quarantined_until")


def numbers_export(*, out: IO[str], numbers: QuerySet[TrackingNumber] | None = None, include_released: bool = False) -> int:
    """Write tracking numbers with their assignments as CSV (the file ``numbers_import --update`` reads). Returns the count."""
    qs = numbers if numbers is not None else TrackingNumber.objects.all()
    if not include_released:
        qs = qs.exclude(status=NumberStatus.RELEASED)
    rows = qs.order_by("number").values_list(
        "number", "label", "kind", "status", "campaign__campaign_id", "source__source_id", "pool__key", "failsafe_number",
        "marketing_data", "number_type", "area_code", "carrier", "carrier_id", "quarantined_until",
    )
    writer = csv.writer(out)
    writer.writerow(EXPORT_COLUMNS)
    count = 0
    for values in rows.iterator(chunk_size=5000):
        row = list(values)
        row[8] = json.dumps(row[8], sort_keys=True) if row[8] else ""
        row[13] = row[13].isoformat() if row[13] else ""
        writer.writerow(csv_safe_row(row))  # a label like "=HYPERLINK(...)" must not run in the operator's spreadsheet
        count += 1
    return count


def _number_cell(
    record: dict[str, str], line: int, seen: dict[str, int], problems: list[ImportProblem], parse: Callable[[str], tuple[str, ...]],
) -> tuple[str, ...] | None:
    """Parse a line's ``number`` cell with ``parse`` (returning a tuple whose first item is the E.164).

    Returns None, with the problem recorded, when the number is bad or already appeared in the file.
    """
    try:
        parsed = parse(record.get("number") or "")
    except phone.InvalidPhoneNumber as exc:
        problems.append(ImportProblem(line, "number", str(exc)))
        return None
    e164 = parsed[0]
    if e164 in seen:
        problems.append(ImportProblem(line, "number", f"{e164} is also on line {seen[e164]} (a number may appear once)"))
        return None
    seen[e164] = line
    return parsed
