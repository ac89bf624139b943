"""What a process sees as ``numbers``: run inside a fresh interpreter, a gunicorn worker and a qcluster task."""

from __future__ import annotations

import json
import pickle
import sysconfig
from typing import Any


def numbers_report() -> str:
    """JSON: where ``numbers`` comes from, the stdlib's folder, ``numbers.Integral`` pickled (hex) and whether it
    unpickles to itself here; and which module the calltrack numbers app was imported as (Django set up or not)."""
    from django.apps import apps

    import numbers

    dumped = pickle.dumps(numbers.Integral)
    app = apps.get_app_config("numbers").name if apps.ready else None
    return json.dumps({
        "file": numbers.__file__, "stdlib": sysconfig.get_paths()["stdlib"], "pickle": dumped.hex(),
        "roundtrip": pickle.loads(dumped) is numbers.Integral, "app": app,
    })


def application(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """A WSGI app for gunicorn: loads calltrack's own WSGI application (every app imported), then reports."""
    from django.urls import get_resolver

    import calltrack.wsgi  # noqa: F401  (django.setup() and the whole URLconf's imports, as a real worker)

    assert get_resolver().url_patterns  # import every view module, as the first request would
    start_response("200 OK", [("Content-Type", "application/json")])
    return [numbers_report().encode()]
