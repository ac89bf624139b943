"""Hot-path helpers that skip the ORM's per-call SQL compilation (voice webhooks).

The statement for a model is built once per process from its ``_meta``; values go through the same
``pre_save``/``get_db_prep_save`` the ORM uses, so what is stored is what ``Model.save()`` would store.
No signals are sent (calltrack has no side effects in signals).
"""

from __future__ import annotations

from typing import Any

from django.db import connection
from django.db.models import Model

_INSERTS: dict[tuple[str, type], tuple[str, list[Any]]] = {}


def insert(obj: Model) -> Model:
    """INSERT ``obj`` (a new instance whose primary key is an auto field) and set its primary key, like
    ``obj.save(force_insert=True)``. Falls back to ``save`` where the database cannot return the new id."""
    if not connection.features.can_return_columns_from_insert:
        obj.save(force_insert=True)
        return obj
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
        entry = _INSERTS[key] = (sql, fields)
    sql, fields = entry
    params = [f.get_db_prep_save(f.pre_save(obj, True), connection) for f in fields]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        obj.pk = cursor.fetchone()[0]
    obj._state.adding = False
    obj._state.db = connection.alias
    return obj


_UPDATES: dict[tuple[str, type, tuple[str, ...]], tuple[str, list[Any]]] = {}


def update(obj: Model, fields: tuple[str, ...] | list[str]) -> int:
    """UPDATE ``fields`` of the saved instance ``obj``, like ``obj.save(update_fields=fields)`` (names or
    attnames of concrete fields). Returns the number of rows changed."""
    model = type(obj)
    key = (connection.vendor, model, tuple(fields))
    entry = _UPDATES.get(key)
    if entry is None:
        qn = connection.ops.quote_name
        meta = model._meta
        chosen = [meta.get_field(name) for name in dict.fromkeys(fields)]
        sql = (
            f"UPDATE {qn(meta.db_table)} SET {', '.join(f'{qn(f.column)} = %s' for f in chosen)} "
            f"WHERE {qn(meta.pk.column)} = %s"
        )
        entry = _UPDATES[key] = (sql, chosen)
    sql, chosen = entry
    params = [f.get_db_prep_save(f.pre_save(obj, False), connection) for f in chosen]
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, obj.pk])
        return cursor.rowcount
