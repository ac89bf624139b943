"""PostgreSQL plans of what a piece of code runs, for tests that a hot statement's plan stays an index read whatever the
statistics said when a connection prepared it (issue 26)."""

from __future__ import annotations

import re

import pytest
from django.db import connection, transaction


def sql(statement: str, params: list | None = None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)


def plans_of(run) -> list[str]:
    """The plans (EXPLAIN ANALYZE with buffers) of every statement ``run`` executes, nested statements included."""
    try:
        with transaction.atomic():
            sql("LOAD 'auto_explain'")
    except Exception as exc:  # noqa: BLE001 - a server without the module or the privilege
        pytest.skip(f"auto_explain unavailable: {exc}")
    settings = {"auto_explain.log_min_duration": "0", "auto_explain.log_nested_statements": "on", "auto_explain.log_analyze": "on",
                "auto_explain.log_buffers": "on", "auto_explain.log_timing": "off", "client_min_messages": "log"}
    plans: list[str] = []

    def keep(diagnostic) -> None:
        if "plan:" in (diagnostic.message_primary or ""):
            plans.append(diagnostic.message_primary)

    raw = connection.connection
    raw.add_notice_handler(keep)
    try:
        for name, value in settings.items():
            sql(f"SET {name} = {value}")
        run()
    finally:
        for name in settings:
            sql(f"RESET {name}")
        raw.remove_notice_handler(keep)
    return plans


def shared_buffers(plan: str) -> int:
    """The buffers a plan's top node touched (hit + read)."""
    found = re.search(r"Buffers: shared ((?:\w+=\d+ ?)+)", plan)
    return sum(int(n) for n in re.findall(r"=(\d+)", found.group(1))) if found else 0
