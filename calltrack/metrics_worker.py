"""The task cluster's own ``/metrics`` (webhook deliveries are counted in ``manage.py qcluster``'s worker processes,
which no web node can see): a small HTTP server in a thread of the qcluster's main process, on
``METRICS_WORKER_PORT``, answering only ``Authorization: Bearer <METRICS_TOKEN>``.

The cluster's workers are processes of their own: they add up their figures through PROMETHEUS_MULTIPROC_DIR (a
directory of the worker's own, not gunicorn's: each empties its directory when it starts), which is required here.
"""

from __future__ import annotations

import hmac
import logging
import os
import shutil
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.multiprocess import MultiProcessCollector

log = logging.getLogger("calltrack.metrics")


def metrics_dir_empty(path: str) -> None:
    """Empty the multiprocess directory (made if missing): a previous run's files would be counted again."""
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    for entry in folder.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def metrics_wsgi_app(*, path: str, token: str) -> Callable[..., Iterable[bytes]]:
    """A WSGI app answering every process's figures from ``path`` to the bearer of ``token``, 401 to anyone else."""
    expected = f"Bearer {token}".encode()

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        given = environ.get("HTTP_AUTHORIZATION", "").strip().encode("latin-1", "replace")
        if not hmac.compare_digest(given, expected):
            start_response("401 Unauthorized", [("Content-Type", "text/plain"), ("WWW-Authenticate", "Bearer")])
            return [b"bad metrics token\n"]
        registry = CollectorRegistry(auto_describe=False)
        MultiProcessCollector(registry, path=path)
        start_response("200 OK", [("Content-Type", CONTENT_TYPE_PLAIN_0_0_4)])
        return [generate_latest(registry)]

    return app


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass


def worker_metrics_serve(*, port: int, addr: str, token: str) -> WSGIServer | None:
    """Serve the task cluster's figures on ``addr:port`` in a daemon thread; None (and a warning) when it cannot: no
    METRICS_TOKEN, or no PROMETHEUS_MULTIPROC_DIR (the workers' figures would be out of reach). Empties the
    directory first: called once, by the cluster's main process before it starts its workers."""
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
    if not token or not path:
        log.warning("METRICS_WORKER_PORT is set but %s is empty: the task cluster serves no metrics",
                    "METRICS_TOKEN" if not token else "PROMETHEUS_MULTIPROC_DIR")
        return None
    metrics_dir_empty(path)
    server = make_server(addr, port, metrics_wsgi_app(path=path, token=token), handler_class=_Quiet)
    threading.Thread(target=server.serve_forever, name="calltrack-metrics", daemon=True).start()
    log.info("task cluster metrics on http://%s:%s/metrics", addr, server.server_port)
    return server
