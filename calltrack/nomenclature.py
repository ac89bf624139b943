"""The operator's words: Source/Handler (standard) or Publisher/Buyer (performance marketing).

With ``CALLTRACK_NOMENCLATURE=performance`` every place an operator reads says Publisher/Buyer: the models'
names, field labels, help texts and choice labels (:func:`apply_to_models`, at start-up), the admin's own
words (inline titles, fieldsets, columns, the dashboard: :class:`AdminWordsMiddleware`, on the rendered
page's text only, never on URLs, field names or form values), the API documentation's descriptions
(:func:`schema_words`, a drf-spectacular post-processing hook) and ``simulate_call``'s report (:func:`say`).
Identifiers stay: URLs, field names (``source_id``), JSON keys and tokens (``[source_name]``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse

_WORDS = {
    "standard": {"source": "source", "sources": "sources", "handler": "handler", "handlers": "handlers"},
    "performance": {"source": "publisher", "sources": "publishers", "handler": "buyer", "handlers": "buyers"},
}
# A whole word: "source" and "Handlers" but not "source_id", "utm_source" or "resource" (``_`` is a word character).
_WORD = re.compile(r"\b(source|handler)(s?)\b", re.IGNORECASE)


def mode() -> str:
    value = settings.CALLTRACK_NOMENCLATURE
    return value if value in _WORDS else "standard"


def words() -> dict[str, str]:
    return _WORDS[mode()]


def word(key: str, *, title: bool = False) -> str:
    value = words()[key]
    return value.title() if title else value


def say(text: str) -> str:
    """``text`` in the chosen words, keeping each word's case ("Handlers" -> "Buyers", "SOURCE" -> "PUBLISHER")."""
    if mode() == "standard" or not text:
        return text
    chosen = words()

    def replace(match: re.Match[str]) -> str:
        found = match.group(0)
        new = chosen[(match.group(1) + match.group(2)).lower()]
        if found.isupper() and len(found) > 1:
            return new.upper()
        return new[0].upper() + new[1:] if found[0].isupper() else new

    return _WORD.sub(replace, text)


# Originals of everything apply_to_models rewrites, so switching back (tests) restores them exactly.
_ORIGINALS: dict[tuple[Any, str], Any] = {}


def _set(obj: Any, attr: str, value: Any) -> None:
    _ORIGINALS.setdefault((obj, attr), getattr(obj, attr))
    setattr(obj, attr, value)


def _rewrite(obj: Any, attr: str, convert: Callable[[Any], Any]) -> None:
    original = _ORIGINALS.get((obj, attr), getattr(obj, attr))
    _set(obj, attr, convert(original))


def apply_to_models() -> None:
    """Rename Source/Handler in every calltrack model's names, field labels, help texts and choice labels.

    Runs at start-up (``tracking`` app ready) and again when a test switches the setting. Only the runtime
    ``_meta`` and field attributes change, not the declared classes.
    """
    from django.apps import apps

    def text(value: Any) -> Any:
        return say(str(value)) if value else value

    for model in apps.get_models():
        if model._meta.app_label not in ("tracking", "numbers", "routing", "calltrack"):
            continue
        _rewrite(model._meta, "verbose_name", text)
        _rewrite(model._meta, "verbose_name_plural", text)
        for field in model._meta.get_fields():
            if not hasattr(field, "help_text"):
                continue
            _rewrite(field, "verbose_name", text)
            _rewrite(field, "help_text", text)
            choices = getattr(field, "choices", None)
            if choices and all(isinstance(c, (list, tuple)) and len(c) == 2 and isinstance(c[1], str) for c in choices):
                _rewrite(field, "choices", lambda original: [(v, text(label)) for v, label in original])


def schema_words(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """drf-spectacular post-processing hook: the API documentation's descriptions, summaries and titles in the
    chosen words (paths, operation ids, schema and field names stay)."""
    if mode() == "standard":
        return result

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: (say(v) if k in ("description", "summary", "title") and isinstance(v, str) else walk(v)) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return walk(result)


_TAG = re.compile(r"(<[^>]*>)")
_RAW = ("script", "style", "textarea")


def html_say(html: str) -> str:
    """The chosen words in an HTML page's text: tags and their attributes (URLs, names, values) and the
    content of script, style and textarea elements are left as they are."""
    parts = _TAG.split(html)
    raw: str | None = None
    for i, part in enumerate(parts):
        if i % 2:  # a tag
            name = part[1:].lstrip("/").split(None, 1)[0].rstrip(">").lower() if len(part) > 2 else ""
            if raw is None and not part.startswith("</") and name in _RAW:
                raw = name
            elif raw is not None and part.startswith("</") and name == raw:
                raw = None
        elif raw is None and part:
            parts[i] = say(part)
    return "".join(parts)


class AdminWordsMiddleware:
    """Admin pages in the chosen words (performance nomenclature only): what the page says, not what it links
    to or submits. One place, so an admin string added later cannot be missed."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            mode() != "standard"
            and request.path.startswith("/admin/")
            and not response.streaming
            and response.get("Content-Type", "").startswith("text/html")
        ):
            if hasattr(response, "render") and not response.is_rendered:
                response.render()
            charset = response.charset or "utf-8"
            response.content = html_say(response.content.decode(charset)).encode(charset)
            if response.has_header("Content-Length"):
                response["Content-Length"] = str(len(response.content))
        return response
