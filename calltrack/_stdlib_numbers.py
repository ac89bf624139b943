"""Let the project's ``numbers`` app and the standard library's ``numbers`` coexist.

Deliberately free of Django imports: it runs while Python is still importing
``decimal``.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import sysconfig
from types import ModuleType

_ALIAS = "_calltrack_stdlib_numbers"


def _load_stdlib() -> ModuleType:
    loaded = sys.modules.get(_ALIAS)
    if loaded is not None:
        return loaded
    current = sys.modules.get("numbers")
    if current is not None and not hasattr(current, "__path__"):
        # The standard module came first: reuse it, so the ABCs that
        # ``decimal`` already registered with stay the same objects.
        sys.modules[_ALIAS] = current
        return current
    path = os.path.join(sysconfig.get_paths()["stdlib"], "numbers.py")
    spec = importlib.util.spec_from_file_location(_ALIAS, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[_ALIAS] = module
    spec.loader.exec_module(module)
    return module


stdlib_numbers = _load_stdlib()


def install_app_package() -> None:
    """Make ``import numbers`` resolve to the app package (called before Django loads apps)."""
    current = sys.modules.get("numbers")
    if current is None or hasattr(current, "__path__"):
        return
    del sys.modules["numbers"]
    project_dir = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if project_dir not in sys.path:
        sys.path.insert(0, project_dir)
    module = importlib.import_module("numbers")
    if not hasattr(module, "__path__"):  # pragma: no cover - misconfigured sys.path
        raise ImportError("the calltrack 'numbers' app is shadowed by the standard library module")
