"""Log records that say which call they are about: a context (CallSid, request id, task id) bound while a voice
webhook or a background task runs, added to every record by a filter, and written as one JSON object a line when
``LOG_FORMAT=json`` (python-json-logger), for a log pipeline to index.

The context is a ``ContextVar`` of log fields only: it changes no behaviour and defers no write. It is bound by the
code that knows the call (``routing.views.twilio_webhook``, ``tracking.services.webhooks.webhook_delivery_attempt``)
and by the django-q2 worker for each task (``task_context_begin``/``task_context_end``, connected in
``calltrack.apps``), and always unbound when that work ends, so nothing leaks into the next request or task.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar, Token
from typing import Any

#: The fields added to each record while they are bound: call_sid, request_id, task_id, task_name.
_CONTEXT: ContextVar[Mapping[str, str]] = ContextVar("calltrack_log_context", default={})  # noqa: B039 - never mutated
#: Longest value kept: a request's values are anyone's.
MAX_VALUE = 100


def log_context() -> Mapping[str, str]:
    """The fields bound now (empty outside a webhook or task)."""
    return _CONTEXT.get()


def _clean(fields: Mapping[str, Any]) -> dict[str, str]:
    return {name: str(value)[:MAX_VALUE] for name, value in fields.items() if value not in (None, "")}


def log_context_push(**fields: Any) -> Token:
    """Add ``fields`` (empty values are left out) to the bound context; undo with :func:`log_context_pop`."""
    return _CONTEXT.set({**_CONTEXT.get(), **_clean(fields)})


def log_context_pop(token: Token) -> None:
    _CONTEXT.reset(token)


@contextmanager
def log_context_bound(**fields: Any) -> Iterator[None]:
    """Every record logged inside carries ``fields`` too."""
    token = log_context_push(**fields)
    try:
        yield
    finally:
        _CONTEXT.reset(token)


class ContextFilter(logging.Filter):
    """Puts the bound fields on each record (``record.call_sid`` ...), for the JSON formatter to write. Never drops a
    record; a field the record already has (passed with ``extra=``) is kept."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in _CONTEXT.get().items():
            if not hasattr(record, name):
                setattr(record, name, value)
        return True


# --- django-q2: a task's records carry its id and name (and the call's CallSid where the task binds it) -----------

_task_tokens: list[Token] = []


def task_context_begin(sender: Any = None, task: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
    """django-q2's ``pre_execute`` signal, in the worker process before each task."""
    task = task or {}
    _task_tokens.append(log_context_push(task_id=task.get("id", ""), task_name=task.get("name", "")))


def task_context_end(sender: Any = None, task: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
    """django-q2's ``post_execute_in_worker`` signal, after each task (whatever its result)."""
    if _task_tokens:
        try:
            _CONTEXT.reset(_task_tokens.pop())
        except ValueError:  # bound in another context (a thread of its own): nothing of it is left here
            pass


def logging_config(*, log_format: str, level: str) -> dict[str, Any]:
    """Django's LOGGING: to stderr, plain text by default, one JSON object a line with ``log_format="json"``."""
    if log_format not in ("plain", "json"):
        raise ValueError(f"LOG_FORMAT must be plain or json, got {log_format!r}")
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": "calltrack.logs.ContextFilter"}},
        "formatters": {
            "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
            # asctime, level, logger and message, then the bound context (call_sid ...) and any extra= fields.
            "json": {
                "()": "pythonjsonlogger.json.JsonFormatter",
                "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
                "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
            },
        },
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": log_format, "filters": ["context"]}},
        "root": {"handlers": ["console"], "level": level},
        "loggers": {"django.db.backends": {"level": "WARNING"}},
    }
