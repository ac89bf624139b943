"""A real HTTP receiver for webhook tests: a server on 127.0.0.1 (random port) that answers from a script."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from unittest import mock

from django.utils.module_loading import import_string


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """``script``: one (status, delay_seconds) or (status, delay_seconds, body) per request, the last one repeating."""

    script: list[tuple]
    requests: list[Received] = field(default_factory=list)
    port: int = 0

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@contextmanager
def receiver(*script: tuple) -> Iterator[Receiver]:
    state = Receiver(list(script) or [(200, 0)])
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            with lock:
                state.requests.append(Received(self.command, self.path, dict(self.headers.items()), body))
                index = min(len(state.requests), len(state.script)) - 1
                status, delay, *rest = state.script[index]
            if delay:
                time.sleep(delay)
            payload = rest[0] if rest else f"answer {len(state.requests)}: {status}".encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json" if rest else "text/plain")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout)

        do_GET = do_POST = _answer

        def log_message(self, format, *args) -> None:  # noqa: A002
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.block_on_close = False
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def dead_port() -> int:
    """A 127.0.0.1 port nobody listens on (connections are refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_queued_tasks() -> list:
    """Run what django-q2's ORM broker holds, in this process, as a worker would (then remove it)."""
    from django_q.models import OrmQ

    results = []
    for package in OrmQ.objects.order_by("id"):
        task = package.task
        results.append(import_string(task["func"])(*task["args"], **task.get("kwargs", {})))
        package.delete()
    return results


def run_due_schedules() -> None:
    """Make every webhook retry schedule due and let django-q2's scheduler turn them into queued tasks."""
    from datetime import timedelta

    from django.utils import timezone
    from django_q.brokers import get_broker
    from django_q.models import Schedule
    from django_q.scheduler import scheduler

    from tracking.models import WebhookDelivery

    Schedule.objects.filter(func="tracking.tasks.webhook_deliver").update(next_run=timezone.now() - timedelta(seconds=1))
    # A try is claimed only when its delivery is due (tracking.services.webhooks): the retry's time has come too.
    WebhookDelivery.objects.filter(next_attempt_at__isnull=False, status="retrying").update(next_attempt_at=timezone.now() - timedelta(seconds=1))
    # The scheduler closes "old" connections first, which would drop the test's transaction on PostgreSQL.
    with mock.patch("django_q.scheduler.close_old_django_connections"):
        scheduler(broker=get_broker())
