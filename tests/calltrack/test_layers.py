"""The app graph is strictly layered: ``calltrack`` (shared pieces) <- ``tracking`` <- ``numbers`` <- ``routing``,
with the project wiring (URLs, API router, schedules, demo data) and the admin console (each app's ``admin.py``
and ``admin_*.py``: an entry point like the URLs, showing every layer's data) on top.

A module may import its own layer and the layers below it, never one above; only the wiring may import
everything, and nothing but the wiring imports the wiring. Imports are read with ``ast`` (inside functions
too), so a lazy import cannot hide an upward edge.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LAYERS = ["calltrack", "tracking", "numbers", "routing"]  # lowest first
WIRING = {
    "calltrack.urls", "calltrack.api_urls", "calltrack.schedules", "calltrack.demo", "calltrack.demo_conversions",
    "calltrack.settings", "calltrack.wsgi", "calltrack.asgi",
    "calltrack.management.commands.demo_load", "calltrack.management.commands.calltrack_schedules",
    # The operator's console reads every app (calls, pools, numbers, webhooks): the reporting selector, the
    # dashboard and the API's reports sit on top like the URLs. What they count is tracking.report_figures.
    "calltrack.reports", "calltrack.dashboard", "calltrack.api.reports",
    # The dashboard's spam panel: a reporting selector over the calls like calltrack.reports.
    "calltrack.spam_figures",
    # The dashboard's and the reports API's text figures (issue 29): a reporting selector over the texts.
    "calltrack.text_figures",
    # The scheduled alerts check keeps the dashboard's flags (calltrack.reports) as alerts, with tracking's services.
    "calltrack.alerts_check",
    # /metrics reads the figures of every app at scrape time (calls in progress, call queues, the task queue).
    "calltrack.metrics_view",
    # Usage for rebilling (issue 30): a reporting selector over the numbers, calls, texts and uploads, and its API.
    "calltrack.usage", "calltrack.api.usage",
}


def _modules() -> dict[str, Path]:
    """Module name -> file, for every module of the four apps (the numbers app as ``calltrack.numbers``)."""
    found: dict[str, Path] = {}
    for folder, prefix in (("calltrack", "calltrack"), ("tracking", "tracking"), ("numbers", "calltrack.numbers"), ("routing", "routing")):
        base = ROOT / folder
        for path in base.rglob("*.py"):
            rel = path.relative_to(base)
            if folder == "calltrack" and rel.parts[0] == "numbers":
                continue  # the link to numbers/, scanned as its own app
            parts = [*prefix.split("."), *rel.with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


# The admin base classes and scoping every admin builds on are shared pieces, not the console itself.
SHARED_ADMIN = {"calltrack.admin_base", "calltrack.admin_scoping"}


def _is_console(module: str) -> bool:
    """An admin module of an app: ``tracking.admin``, ``tracking.admin_call_log``, ``calltrack.numbers.admin_actions``."""
    last = module.rsplit(".", 1)[-1]
    ours = module.split(".", 1)[0] in ("calltrack", "tracking", "routing")
    return ours and module not in SHARED_ADMIN and (last == "admin" or last.startswith("admin_"))


def _layer(module: str) -> str | None:
    """The layer a module belongs to ("wiring" on top), None for third-party and stdlib modules."""
    if module in WIRING or any(module.startswith(w + ".") for w in WIRING) or _is_console(module):
        return "wiring"
    head = module.split(".")
    if head[0] == "calltrack":
        return "numbers" if len(head) > 1 and head[1] == "numbers" else "calltrack"
    return head[0] if head[0] in ("tracking", "routing") else None


def _imports(module: str, path: Path, source: str) -> list[tuple[int, str]]:
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source, str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            out.append((node.lineno, base))
            # ``from calltrack import demo`` imports the module calltrack.demo
            out += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
    return out


def _upward_edges(extra: dict[str, tuple[Path, str]] | None = None) -> list[str]:
    """Every upward import, as "file:line: layer imports module (layer)". ``extra``: more modules
    (name -> (path, source)) checked as if they were in the tree."""
    rank = {name: n for n, name in enumerate([*LAYERS, "wiring"])}
    known = {module: (path, path.read_text()) for module, path in _modules().items()} | (extra or {})
    problems = []
    for module, (path, source) in sorted(known.items()):
        mine = _layer(module)
        for line, target in _imports(module, path, source):
            theirs = _layer(target)
            if theirs is None or mine == "wiring":
                continue
            if target not in known and "." in target and target.rpartition(".")[0] in known:
                target = target.rpartition(".")[0]  # a name imported from a module, not a submodule
                theirs = _layer(target)
            problem = f"{path.relative_to(ROOT)}:{line}: {mine} imports {target} ({theirs})"
            if rank[theirs] > rank[mine] and problem not in problems:
                problems.append(problem)
    return problems


def test_no_module_imports_a_layer_above_its_own():
    assert _upward_edges() == []


def test_the_graph_check_sees_lazy_and_relative_imports():
    lazy = "def f():\n    from routing.services import config\n"
    relative = "from ..tags import rule_check\nfrom . import models\n"
    problems = _upward_edges({
        "tracking.services.probe": (ROOT / "tracking/services/probe.py", lazy),
        "calltrack.api.probe": (ROOT / "calltrack/api/probe.py", "from calltrack.numbers import tasks\n"),
        "routing.services.probe": (ROOT / "routing/services/probe.py", relative),
    })
    assert "tracking/services/probe.py:2: tracking imports routing.services (routing)" in problems
    assert "calltrack/api/probe.py:1: calltrack imports calltrack.numbers.tasks (numbers)" in problems
    assert not [p for p in problems if "routing/services/probe.py" in p]  # routing may import what is below it


def test_the_admin_console_may_show_every_layer_but_no_layer_imports_it():
    problems = _upward_edges({
        "tracking.admin_probe": (ROOT / "tracking/admin_probe.py", "from routing.services.slots import handler_loads\n"),
        "tracking.services.probe2": (ROOT / "tracking/services/probe2.py", "from tracking.admin_call_log import x\n"),
    })
    assert not [p for p in problems if "admin_probe" in p]
    assert "tracking/services/probe2.py:1: tracking imports tracking.admin_call_log (wiring)" in problems


def test_the_numbers_app_is_scanned_under_its_import_name():
    modules = _modules()
    assert "calltrack.numbers.services.importing" in modules
    assert "calltrack.hours" in modules and "routing.decision" in modules
