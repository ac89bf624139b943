"""The voice call path is load -> decide -> write (issue 25): what may happen where, read from the source with ``ast``
and the import graph of ``tests/calltrack/test_layers.py``.

- the call path is every module of ours ``routing.views`` imports, directly or not;
- on it, SQL text is run (``cursor.execute``, ``fastdb.fixed_cursor``, ``fastdb.JoinedLoader``) only by the load-and-write
  modules ``routing.store.*`` and by ``calltrack.fastdb``;
- nothing reads ``Call.decision`` except through the typed state (``tracking.call_state``, ``Call.state``);
- nothing writes ``obj.__dict__[...]`` on a model instance, and no ``ContextVar`` in ``routing/`` or ``tracking/`` defers
  writes: a webhook's writes are gathered by its unit of work, ``routing.services.turn.Turn``.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.calltrack.test_layers import ROOT, _imports, _modules

STORE = ("routing.store.", "calltrack.fastdb")
SQL_NAMES = {"fixed_cursor", "JoinedLoader"}
# Who may touch ``decision`` by name: the typed state, the model that holds it, and the writers of whole rows that
# build a call (the demo data and the benchmark's synthetic history; the API's field reads ``state.to_json``).
DECISION_OWNERS = {"tracking.call_state", "tracking.models.calls"}


def _sources() -> dict[str, tuple[Path, str]]:
    return {module: (path, path.read_text()) for module, path in _modules().items()}


def call_path() -> set[str]:
    """Every module of ours that ``routing.views`` imports, directly or not."""
    sources = _sources()
    seen: set[str] = set()
    todo = ["routing.views"]
    while todo:
        module = todo.pop()
        if module in seen or module not in sources:
            continue
        seen.add(module)
        for _, target in _imports(module, *sources[module]):
            todo += [name for name in (target, target.rpartition(".")[0]) if name in sources and name not in seen]
    return seen


def _sql_uses(source: str) -> list[int]:
    """Lines running SQL text: ``<x>.execute(...)`` on a cursor, ``fixed_cursor``, ``JoinedLoader``."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and node.attr in SQL_NAMES or isinstance(node, ast.Name) and node.id in SQL_NAMES:
            lines.append(node.lineno)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("execute", "executemany"):
            target = node.func.value
            name = target.id if isinstance(target, ast.Name) else target.attr if isinstance(target, ast.Attribute) else ""
            if "cursor" in name:
                lines.append(node.lineno)
    return lines


def test_the_call_path_is_found_through_the_imports():
    path = call_path()
    assert {"routing.views", "routing.services.calls", "routing.services.turn", "routing.store.voice", "tracking.call_state",
            "tracking.services.call_events", "calltrack.fastdb"} <= path
    assert "tracking.admin" not in path and "calltrack.reports" not in path


def test_on_the_call_path_only_the_store_runs_sql_text():
    sources = _sources()
    found = [
        f"{sources[m][0].relative_to(ROOT)}:{line}" for m in sorted(call_path()) if not m.startswith(STORE)
        for line in _sql_uses(sources[m][1])
    ]
    assert found == []


def test_the_sql_check_sees_cursors_and_loaders():
    probe = (
        "from calltrack import fastdb\nwith fastdb.fixed_cursor() as cursor:\n    cursor.execute('x')\n"
        "L = fastdb.JoinedLoader(A, {})\nwith connection.cursor() as cursor:\n    cursor.execute('y')\n"
    )
    assert sorted(set(_sql_uses(probe))) == [2, 3, 4, 6]


def _decision_reads(source: str) -> list[int]:
    """Lines that name ``.decision`` on something (``call.decision``, ``self.decision``) or the "decision" key of a
    values() query."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and node.attr == "decision":
            lines.append(node.lineno)
        elif isinstance(node, ast.Constant) and node.value == "decision":
            lines.append(node.lineno)
    return lines


def test_nothing_reads_the_routing_state_column_except_through_the_typed_state():
    sources = _sources()
    allowed_lines = {
        # The report of capped handlers reads the column's JSON in bulk and parses each with CallState.from_json.
        "tracking.report_figures",
        # Field lists naming the column (who may see it, the API's field, the CSV's columns): names, not reads.
        "calltrack.scoping", "tracking.api.serializers", "tracking.admin",
    }
    found = []
    for module, (path, source) in sorted(sources.items()):
        if module in DECISION_OWNERS or module in allowed_lines or ".migrations." in module or module.startswith("calltrack.demo"):
            continue
        found += [f"{path.relative_to(ROOT)}:{line}" for line in _decision_reads(source)]
    assert found == []
    figures = sources["tracking.report_figures"][1]
    assert "CallState.from_json(decision)" in figures


def test_no_model_instance_is_used_as_a_side_channel():
    sources = _sources()
    found = []
    for _module, (path, source) in sorted(sources.items()):
        for node in ast.walk(ast.parse(source)):
            if (isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute) and node.value.attr == "__dict__"
                    and isinstance(node.ctx, ast.Store | ast.Del)):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "pop"
                    and isinstance(node.func.value, ast.Attribute) and node.func.value.attr == "__dict__"):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert found == []


def test_no_context_variable_defers_writes_in_routing_or_tracking():
    found = [
        f"{path.relative_to(ROOT)}" for module, (path, source) in sorted(_sources().items())
        if module.split(".")[0] in ("routing", "tracking") and "ContextVar" in source
    ]
    assert found == []
