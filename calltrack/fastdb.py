"""Hot-path helpers that skip the ORM's per-call SQL compilation (voice webhooks, DNI tag endpoints).

The statement for a model is built once per process from its ``_meta``; values go through the same
``pre_save``/``get_db_prep_save`` the ORM uses, so what is stored is what ``Model.save()`` would store.
No signals are sent (calltrack has no side effects in signals). On PostgreSQL the statements run through
``fixed_cursor``: prepared once per connection, not planned again on every request.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any, TypeVar
from uuid import UUID

import psycopg
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connection, connections, models, router
from django.db.backends.utils import CursorDebugWrapper
from django.db.models import Model
from django.db.models.base import ModelState
from django.db.models.signals import post_init, pre_init
from psycopg.types.json import Jsonb


def fixed_cursor():
    """A cursor for the hot path's fixed statements (constant SQL text, values only as parameters).

    On PostgreSQL with CALLTRACK_PREPARED_STATEMENTS (the default) it binds parameters on the server, so
    psycopg prepares each statement once per connection (settings: ``prepare_threshold``) and PostgreSQL
    stops planning it on every request: planning the DNI tag's returning-visitor statement cost several
    times more than running it (pgbench: 0.77 ms simple, 0.10 ms prepared). Django's own cursors bind on
    the client and never prepare. Wrapped like Django's cursors: the same health check, error translation,
    execute wrappers and query log (so ``django_assert_num_queries`` counts these too). One statement per
    ``execute`` (the extended protocol allows no more), and every parameter must have a type PostgreSQL
    can tell (no bare ``%s IS NULL``).
    """
    db = connections[DEFAULT_DB_ALIAS]  # once: each ``connection.x`` is a look-up in a context-local store
    if db.vendor != "postgresql" or not settings.CALLTRACK_PREPARED_STATEMENTS:
        return db.cursor()
    db.close_if_health_check_failed()
    db.ensure_connection()
    db.validate_thread_sharing()
    raw = psycopg.Cursor(db.connection)
    return _LoggedCursor(raw, db) if db.queries_logged else db.make_cursor(raw)


def fetchone_first(sql: str, params: Any) -> tuple[Any, ...] | None:
    """Run the request's first statement (fixed, and safe to run twice) and answer its first row, with no health check
    before it: it is the check.

    With CONN_HEALTH_CHECKS, Django sends ``SELECT 1`` before the first statement of each request on a persistent
    connection: a round trip of its own on the DNI tag's one-statement requests. Here the statement itself finds a
    connection the server dropped (a restart, an idle timeout) and then runs again, once, on a new connection. The
    caller's statement must be harmless to repeat (a read, or extending a session): a connection dropped while the
    statement ran may have run it. Elsewhere (no health checks, a transaction open, not PostgreSQL): as any statement.
    """
    db = connections[DEFAULT_DB_ALIAS]
    own_check = (db.vendor == "postgresql" and db.connection is not None and db.health_check_enabled
                 and not db.health_check_done and not db.in_atomic_block)
    if own_check:
        db.health_check_done = True
    try:
        with fixed_cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchone()
    except DatabaseError:
        if not own_check or db.is_usable():  # the check Django would have made, now that something failed
            raise
    db.close()  # the server had dropped it: again, on a new connection
    with fixed_cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


class _LoggedCursor(CursorDebugWrapper):
    """Django's debug cursor for a server-bound cursor: Django reads the logged SQL back from a client-bound
    cursor and would log None here, so the statement is composed with its values before it runs."""

    def debug_sql(self, sql=None, params=None, use_last_executed_query=False, many=False):
        if use_last_executed_query and not many and sql is not None:
            try:
                sql = self.db.ops.compose_sql(sql, params)
            except Exception:  # noqa: BLE001 - only the log's text: keep the statement with its placeholders
                pass
        return super().debug_sql(sql, params, use_last_executed_query=False, many=many)

# Fields whose ``pre_save`` and ``get_db_prep_save`` hand a value of this exact type (or None) to the database as
# it is: for them the ORM's per-field calls (two or three per column, forty columns on a call) are skipped. Exact
# classes only: a subclass may normalise in ``to_python`` (PhoneNumberField stores E.164), and other values (an int
# in a CharField, a lazy string) take the ORM's own path.
_AS_IS: dict[type, type] = {
    models.CharField: str, models.TextField: str, models.BooleanField: bool, models.IntegerField: int,
    models.BigIntegerField: int, models.SmallIntegerField: int, models.PositiveIntegerField: int,
    models.PositiveSmallIntegerField: int, models.PositiveBigIntegerField: int,
}
Preps = list[tuple[str, "type | None", Any]]


def _preps(fields: list[Any]) -> Preps:
    """Per field: its attribute, the type it is stored as it is (or None), the field."""
    return [(f.attname, _as_is_type(f), f) for f in fields]


def _as_is_type(field: Any) -> type | None:
    if type(field) is models.ForeignKey and type(field.target_field) in (models.AutoField, models.BigAutoField):
        return int
    return _AS_IS.get(type(field))


def _save_values(obj: Model, preps: Preps, *, add: bool) -> list[Any]:
    """The values ``Model.save`` would send for the fields of ``preps``: ``get_db_prep_save(pre_save(...))``, or the
    attribute itself where that is what those calls would return (see ``_AS_IS``)."""
    values, own = [], obj.__dict__
    for attname, as_is, field in preps:
        if as_is is not None:
            value = own.get(attname, _MISSING)
            if value is None or type(value) is as_is:
                values.append(value)
                continue
        values.append(field.get_db_prep_save(field.pre_save(obj, add), connection))
    return values


def pg_array(values: Iterable[Any]) -> str:
    """``values`` as a PostgreSQL array literal, bound as one text parameter and cast in the statement
    (``%s::bigint[]``, ``%s::timestamptz[]``): every element double-quoted with ``\\`` and ``"`` escaped, None as
    NULL, datetimes in ISO 8601. psycopg's own list adaptation escapes each element with a regular expression
    and looks its dumper up per element: for the voice path's six ten-element arrays that was half of the
    statement's CPU (bench: 265 us against 130 us per execution)."""
    return "{" + ",".join(map(_pg_array_element, values)) + "}"


def _pg_array_element(v: Any) -> str:
    if v is None:
        return "NULL"
    if type(v) is int:  # digits and a sign: nothing to quote
        return str(v)
    text = v.isoformat() if isinstance(v, datetime) else str(v)
    if "\\" in text or '"' in text:
        text = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


_NEW: dict[type, tuple[list[tuple[str, str, Any, str | None]], frozenset[str]]] = {}


def new(model: type[M], **values: Any) -> M:
    """``model(**values)``, a new unsaved instance, without ``Model.__init__``'s per-field work: each field from
    ``values`` by name (a related instance, cached as the ORM caches it) or by attname (an id), else its default.
    The ORM's own constructor where that could differ: a name that is not a concrete field's, or a model with
    ``pre_init``/``post_init`` receivers. The voice webhooks build a call, its attempts and its timeline steps per
    request (a call has 46 fields)."""
    spec = _NEW.get(model)
    if spec is None:
        spec = _NEW[model] = _new_spec(model)
    fields, names = spec
    if not names.issuperset(values) or pre_init.has_listeners(model) or post_init.has_listeners(model):
        return model(**values)
    obj = model.__new__(model)
    state = obj._state = ModelState()
    own = obj.__dict__
    for name, attname, field, target in fields:
        if target is not None and name in values:
            related = values[name]
            if attname in values:
                return model(**values)  # both the instance and its id: the ORM's order decides
            if related is not None:
                if not isinstance(related, field.remote_field.model._meta.concrete_model):
                    return model(**values)  # the ORM's error
                if state.db is None:
                    state.db = router.db_for_write(model, instance=related)
                if related._state.db is None:
                    related._state.db = router.db_for_write(type(related), instance=obj)
                if not router.allow_relation(related, obj):
                    return model(**values)  # the ORM's error
                own[attname] = getattr(related, target)
            else:
                own[attname] = None
            state.fields_cache[name] = related
        elif attname in values:
            own[attname] = values[attname]
        else:
            own[attname] = field.get_default()
    return obj


def _new_spec(model: type) -> tuple[list[tuple[str, str, Any, str | None]], frozenset[str]]:
    """Per concrete field: name, attname, the field, and for a foreign key the related field's attname; and every
    name ``new`` accepts. A relation over several columns is left to the ORM (no names accepted)."""
    fields: list[tuple[str, str, Any, str | None]] = []
    for f in model._meta.concrete_fields:
        if getattr(f, "generated", False):
            continue
        if f.is_relation:
            if len(f.related_fields) != 1 or not f.many_to_one:
                return [], frozenset()
            fields.append((f.name, f.attname, f, f.related_fields[0][1].attname))
        else:
            fields.append((f.name, f.attname, f, None))
    return fields, frozenset(name for name, attname, _, target in fields for name in ((name, attname) if target else (attname,)))


_MISSING = object()
_INSERTS: dict[tuple[str, type], tuple[str, list[Any]]] = {}
M = TypeVar("M", bound=Model)


def insert(obj: M) -> M:
    """INSERT ``obj`` (a new instance whose primary key is an auto field) and set its primary key, like
    ``obj.save(force_insert=True)``. Falls back to ``save`` where the database cannot return the new id."""
    if not connection.features.can_return_columns_from_insert:
        obj.save(force_insert=True)
        return obj
    sql, params = insert_statement(obj)
    with fixed_cursor() as cursor:
        cursor.execute(sql, params)
        return inserted(obj, cursor.fetchone()[0])


def insert_statement(obj: Model) -> tuple[str, list[Any]]:
    """The ``INSERT ... RETURNING`` id of ``obj`` and its values (built once per model), for a statement that does
    more in the same round trip (a data-modifying WITH); then ``inserted(obj, new_id)``."""
    model = type(obj)
    key = (connection.vendor, model)
    entry = _INSERTS.get(key)
    if entry is None:
        qn = connection.ops.quote_name
        meta = model._meta
        fields = [f for f in meta.concrete_fields if not f.primary_key]
        sql = (
            f"INSERT INTO {qn(meta.db_table)} ({', '.join(qn(f.column) for f in fields)}) "
            f"VALUES ({', '.join(['%s'] * len(fields))}) RETURNING {qn(meta.pk.column)}"
        )
        entry = _INSERTS[key] = (sql, _preps(fields))
    sql, preps = entry
    return sql, _save_values(obj, preps, add=True)


def inserted(obj: M, pk: Any) -> M:
    """``obj`` saved with the primary key ``pk``, as ``save`` leaves it."""
    obj.pk = pk
    obj._state.adding = False
    obj._state.db = connection.alias
    return obj


_INSERT_MANY: dict[tuple[str, type, int, bool, bool], tuple[str, list[Any]]] = {}


def insert_many(objs: Sequence[Model], *, returning: bool = False) -> None:
    """INSERT new instances of one model in one statement, like ``bulk_create`` without its per-call SQL
    compilation. The statement is cached per number of rows. With ``returning``, their primary keys are read back
    and set (``RETURNING``, in the order of the rows, as ``bulk_create`` reads them); where the database cannot
    return them, ``bulk_create`` does it."""
    if not objs:
        return
    if returning and not connection.features.can_return_rows_from_bulk_insert:
        type(objs[0])._default_manager.bulk_create(objs)
        return
    sql, params = insert_rows_statement(objs, returning=returning)
    with fixed_cursor() as cursor:
        cursor.execute(sql, params)
        if returning:
            for obj, (pk,) in zip(objs, cursor.fetchall(), strict=True):
                inserted(obj, pk)


def insert_many_statement(objs: Sequence[Model], *, returning: bool = False, with_pk: bool = False) -> tuple[str, list[Any]]:
    """``insert_many``'s statement and values (built once per model and number of rows); ``with_pk``: the rows'
    primary keys are set already (drawn ahead) and inserted with the rest."""
    model = type(objs[0])
    key = (connection.vendor, model, len(objs), returning, with_pk)
    entry = _INSERT_MANY.get(key)
    if entry is None:
        qn = connection.ops.quote_name
        meta = model._meta
        fields = [f for f in meta.concrete_fields if with_pk or not f.primary_key]
        row = f"({', '.join(['%s'] * len(fields))})"
        sql = f"INSERT INTO {qn(meta.db_table)} ({', '.join(qn(f.column) for f in fields)}) VALUES {', '.join([row] * len(objs))}"
        if returning:
            sql += f" RETURNING {qn(meta.pk.column)}"
        entry = _INSERT_MANY[key] = (sql, _preps(fields))
    sql, preps = entry
    return sql, [value for obj in objs for value in _save_values(obj, preps, add=True)]


_UPDATES: dict[tuple[str, type, tuple[str, ...], tuple[str, ...]], tuple[str, list[Any]]] = {}


def update(obj: Model, fields: tuple[str, ...] | list[str], *, add: Mapping[str, Any] | None = None) -> int:
    """UPDATE ``fields`` of the saved instance ``obj``, like ``obj.save(update_fields=fields)`` (names or
    attnames of concrete fields), and add ``add``'s amounts to those columns in SQL (``talk_time = talk_time + %s``:
    an increment another transaction made in between is kept). Returns the number of rows changed."""
    sql, params = update_statement(obj, fields, add=add)
    with fixed_cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


_INSERT_JSON: dict[tuple[type, bool, bool], tuple[str, list[tuple[str, str, tuple[type, ...], Any]]]] = {}


def insert_rows_statement(objs: Sequence[Model], *, with_pk: bool = False, returning: bool = False) -> tuple[str, list[Any]]:
    """``insert_many_statement(objs, with_pk=with_pk, returning=returning)``; on PostgreSQL the rows go in as one JSON
    parameter (``jsonb_populate_recordset``, in their order: RETURNING gives their ids in it): the statement's text is
    the same whatever the number of rows (prepared once), and a statement joining several writes (``run_together``)
    stays within the 50 parameters psycopg parses once per process, not on every execution (about 150 us for 80
    parameters)."""
    if connection.vendor != "postgresql":
        return insert_many_statement(objs, with_pk=with_pk, returning=returning)
    model = type(objs[0])
    entry = _INSERT_JSON.get((model, with_pk, returning))
    if entry is None:
        qn = connection.ops.quote_name
        meta = model._meta
        fields = [f for f in meta.concrete_fields if with_pk or not f.primary_key]
        cols = ", ".join(qn(f.column) for f in fields)
        sql = f"INSERT INTO {qn(meta.db_table)} ({cols}) SELECT {cols} FROM jsonb_populate_recordset(NULL::{qn(meta.db_table)}, %s::jsonb)"
        if returning:
            sql += f" RETURNING {qn(meta.pk.column)}"
        entry = _INSERT_JSON[(model, with_pk, returning)] = (sql, [(f.column, f.attname, _json_ready_type(f), f) for f in fields])
    sql, spec = entry
    rows = [_json_row(obj, spec) for obj in objs]
    return sql, [json.dumps(rows, default=_json_value, allow_nan=False, separators=(",", ":"))]


def _json_ready_type(field: Any) -> tuple[type, ...]:
    """The exact types of a value of ``field`` that goes into a JSON row as it is (``_json_value`` writing a datetime
    in ISO 8601; a naive one takes the ORM's path, which warns), else none (the ORM's ``get_db_prep_save`` first):
    ``_AS_IS``'s plain values, a JSON column's dict or list, a datetime of a column that does not set itself."""
    if (as_is := _as_is_type(field)) is not None:
        return (as_is,)
    if type(field) is models.JSONField and field.encoder is None:
        return (dict, list)
    if type(field) is models.DateTimeField and not (field.auto_now or field.auto_now_add):
        return (datetime,)
    return ()


def _json_row(obj: Model, spec: list[tuple[str, str, tuple[type, ...], Any]]) -> dict[str, Any]:
    row, own = {}, obj.__dict__
    for column, attname, ready, field in spec:
        value = own.get(attname, _MISSING)
        if ready and (value is None or (type(value) in ready and (type(value) is not datetime or value.tzinfo is not None))):
            row[column] = value
        else:
            row[column] = field.get_db_prep_save(field.pre_save(obj, True), connection)
    return row


def _json_value(value: Any) -> Any:
    """A value ``_json_row`` gives, as JSON that PostgreSQL reads back into its column's type: a JSON column's value
    as it is, a date or time in ISO 8601, a decimal as its exact text."""
    if isinstance(value, Jsonb):
        return value.obj
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, Decimal | UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} has no JSON form for a column")


def run_together(statements: Sequence[tuple[str, list[Any]]]) -> None:
    """Run writes (statements and their values, none reading another's rows) in one round trip: on PostgreSQL one
    statement, each but the last a data-modifying WITH (each runs exactly once, whether or not the last reads it);
    elsewhere one after the other."""
    if not statements:
        return
    if len(statements) == 1 or connection.vendor != "postgresql":
        with fixed_cursor() as cursor:
            for sql, params in statements:
                cursor.execute(sql, params)
        return
    with fixed_cursor() as cursor:
        cursor.execute(*together_statement(statements))


def together_statement(statements: Sequence[tuple[str, list[Any]]]) -> tuple[str, list[Any]]:
    """``run_together``'s one statement on PostgreSQL: each write but the last a data-modifying WITH."""
    *first, (last_sql, _) = statements
    withs = ", ".join(f"w{i} AS ({sql})" for i, (sql, _) in enumerate(first))
    return (f"WITH {withs} {last_sql}" if first else last_sql), [value for _, params in statements for value in params]


def update_statement(obj: Model, fields: tuple[str, ...] | list[str], *, add: Mapping[str, Any] | None = None) -> tuple[str, list[Any]]:
    """``update``'s statement and values (built once per model, fields and added columns)."""
    model = type(obj)
    added = tuple(add or ())
    key = (connection.vendor, model, tuple(fields), added)
    entry = _UPDATES.get(key)
    if entry is None:
        qn = connection.ops.quote_name
        meta = model._meta
        chosen = [meta.get_field(name) for name in dict.fromkeys(fields) if name not in added]
        sets = [f"{qn(f.column)} = %s" for f in chosen]
        sets += [f"{qn(meta.get_field(name).column)} = {qn(meta.get_field(name).column)} + %s" for name in added]
        sql = f"UPDATE {qn(meta.db_table)} SET {', '.join(sets)} WHERE {qn(meta.pk.column)} = %s"
        entry = _UPDATES[key] = (sql, _preps(chosen))
    sql, preps = entry
    return sql, [*_save_values(obj, preps, add=False), *(add or {}).values(), obj.pk]


class JoinedLoader:
    """One hand-written SELECT of a model row with some of its foreign keys joined (LEFT JOIN), turned into
    model instances (related caches filled) with the same converters the ORM applies.

    Each table is named by what it is: the model's own row by its model name (``callattempt``), each join by
    its foreign key (``call``, ``handler``), so ``where`` reads ``callattempt.id = %s`` and an ``extra`` column
    can say ``COALESCE(trackingnumber.campaign_id, pool.campaign_id)``. ``where``, ``order_by`` and ``extra``
    (more columns, returned as a tuple) are SQL with %s placeholders; ``lock`` locks the model's row
    (``SELECT ... FOR UPDATE OF``) where the database can. The statement is built once per process: the ORM
    spent more time compiling the hot path's queries than the database spent running them."""

    def __init__(self, model: type, joins: Mapping[str, type], where: str, *, order_by: str = "", extra: str = "",
                 lock: bool = False, defer: tuple[str, ...] = ()) -> None:
        self.model, self.joins, self.lock = model, dict(joins), lock
        # The model's own fields left out of the SELECT: deferred on the instance (read on first access, as the ORM's
        # ``defer()`` does), for a wide column a webhook never reads.
        self.defer = frozenset(defer)
        self.alias = model._meta.model_name
        if self.alias in self.joins:
            raise ValueError(f"a join may not be named {self.alias!r}, the model's own name")
        self.parts: list[tuple[str | None, type, int, list[tuple[Any, list[Any]]], tuple[str, ...] | None, bool]] = []
        self.where, self.order_by, self.extra = where, order_by, extra
        self._sql: str | None = None

    def sql(self) -> str:
        if self._sql is None:
            unknown = self.defer - {f.attname for f in self.model._meta.concrete_fields if not f.primary_key}
            if unknown:
                raise ValueError(f"{self.model.__name__} has no field {', '.join(sorted(unknown))} to defer")
            qn = connection.ops.quote_name
            main = qn(self.alias)
            cols, tables = [], [f"{qn(self.model._meta.db_table)} {main}"]
            for name, model in [(None, self.model), *self.joins.items()]:
                alias = self.alias if name is None else name
                fields = [f for f in model._meta.concrete_fields if name is not None or f.attname not in self.defer]
                converted = []
                for f in fields:
                    col = f.get_col(alias)
                    converted.append((col, connection.ops.get_db_converters(col) + col.get_db_converters(connection)))
                # Built like Model.from_db would build it, without Model.__init__'s per-field work, for models nothing
                # listens to at init (calltrack has no such receivers; a third-party one keeps from_db).
                plain = not (pre_init.has_listeners(model) or post_init.has_listeners(model))
                names = tuple(f.attname for f in fields)
                # Model.from_db takes the names only when some are missing (deferred).
                attnames = names if plain else (names if len(fields) < len(model._meta.concrete_fields) else None)
                self.parts.append((name, model, next(j for j, f in enumerate(fields) if f.primary_key), converted, attnames, plain))
                cols += [f"{qn(alias)}.{qn(f.column)}" for f in fields]
                if name is not None:
                    fk = self.model._meta.get_field(name)
                    tables.append(
                        f"LEFT JOIN {qn(model._meta.db_table)} {qn(alias)} ON {qn(alias)}.{qn(model._meta.pk.column)} = {main}.{qn(fk.column)}")
            order = f" ORDER BY {self.order_by}" if self.order_by else ""
            lock = f" FOR UPDATE OF {main}" if self.lock and connection.features.has_select_for_update else ""
            self._sql = f"SELECT {', '.join(cols)}{', ' + self.extra if self.extra else ''} FROM {' '.join(tables)} WHERE {self.where}{order}{lock}"
        return self._sql

    def fetch(self, params: list[Any]) -> tuple[Any, tuple[Any, ...]] | None:
        """The main instance (with its joined instances cached) and the extra columns, or None."""
        with fixed_cursor() as cursor:
            cursor.execute(self.sql(), params)
            row = cursor.fetchone()
        return None if row is None else self._build(row)

    def fetch_all(self, params: list[Any]) -> list[tuple[Any, tuple[Any, ...]]]:
        """Every matching row, as ``fetch`` builds one, in ``order_by``'s order."""
        with fixed_cursor() as cursor:
            cursor.execute(self.sql(), params)
            rows = cursor.fetchall()
        return [self._build(row) for row in rows]

    def _build(self, row: tuple[Any, ...]) -> tuple[Any, tuple[Any, ...]]:
        pos, instances, alias = 0, {}, connection.alias
        for name, model, pk_index, columns, attnames, plain in self.parts:
            values = list(row[pos:pos + len(columns)])
            pos += len(columns)
            for i, (col, converters) in enumerate(columns):
                if converters and values[i] is not None:
                    for convert in converters:
                        values[i] = convert(values[i], col, connection)
            if values[pk_index] is None:
                instances[name] = None
            elif plain:
                instances[name] = _loaded(model, attnames, values, alias)
            else:
                instances[name] = model.from_db(alias, attnames, values)
        main = instances.pop(None)
        for name, instance in instances.items():
            main._state.fields_cache[name] = instance
        return main, row[pos:]


def _loaded(model: type, attnames: tuple[str, ...], values: list[Any], alias: str) -> Any:
    """An instance of ``model`` as ``Model.from_db`` returns it (every concrete field set, ``_state`` saved in
    ``alias``), its attributes set at once instead of one ``setattr`` per field in ``Model.__init__``."""
    obj = model.__new__(model)
    obj.__dict__.update(zip(attnames, values))
    state = obj._state = ModelState()
    state.adding, state.db = False, alias
    return obj
