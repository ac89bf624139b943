"""The operator's words: Source/Handler (standard) or Publisher/Buyer (performance marketing).

Labels go through gettext, as Django's own do. The party words carry the message context "party"
(``pgettext_lazy("party", "source")``), so a "source" that is not a party (a UTM source) is another message and
keeps its word. A sentence that names a party (a help text, a fieldset title) is its own message.

``CALLTRACK_NOMENCLATURE=performance`` adds a vocabulary, an English message catalog
(``calltrack/vocabularies/performance/en/LC_MESSAGES/django.po`` and its compiled ``.mo``), to ``LOCALE_PATHS``
(settings.py): the language stays English, and only the messages of that catalog read Publisher/Buyer. Nothing
else changes: operator and caller data are shown as stored (they never go through gettext), identifiers stay
(URLs, field names such as ``source_id``, API fields, webhook tokens such as ``[source_name]``), and migrations are
the same in every mode (``makemigrations`` runs with translations deactivated, so it sees the message ids).

After changing a label: ``python scripts/vocabulary_catalog.py`` extracts the messages again, drafts the missing
performance wordings and compiles the catalog (review the ``.po`` diff before committing it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.utils import translation
from django.utils.translation import pgettext_lazy, trans_real

VOCABULARIES_DIR = Path(__file__).resolve().parent / "vocabularies"
NOMENCLATURES = ("standard", "performance")

# The party words, for labels built in code (the sidebar, simulate_call's report, column titles).
SOURCE = pgettext_lazy("party", "source")
SOURCES = pgettext_lazy("party", "sources")
HANDLER = pgettext_lazy("party", "handler")
HANDLERS = pgettext_lazy("party", "handlers")
SOURCE_TITLE = pgettext_lazy("party", "Source")
SOURCES_TITLE = pgettext_lazy("party", "Sources")
HANDLER_TITLE = pgettext_lazy("party", "Handler")
HANDLERS_TITLE = pgettext_lazy("party", "Handlers")


def locale_paths(nomenclature: str) -> list[Path]:
    """``LOCALE_PATHS`` for ``nomenclature``: its vocabulary's catalog, none for the standard words (or an
    unknown name, which the system check reports)."""
    if nomenclature == "standard" or nomenclature not in NOMENCLATURES:
        return []
    return [VOCABULARIES_DIR / nomenclature]


# --- An account's words (issue 30): ``Account.nomenclature`` overrides CALLTRACK_NOMENCLATURE for its requests ------

_CATALOGS: dict[tuple[str, str], Any] = {}
_UNSET = object()


class _VocabularyTranslation(trans_real.DjangoTranslation):
    """Django's catalog for a language, with ``nomenclature``'s vocabulary in place of the install's LOCALE_PATHS
    (which hold nothing but the install's vocabulary, settings.py)."""

    def __init__(self, language: str, nomenclature: str) -> None:
        self._vocabulary_paths = locale_paths(nomenclature)
        super().__init__(language)

    def _add_local_translations(self) -> None:
        for localedir in reversed(self._vocabulary_paths):
            self.merge(self._new_gnu_trans(str(localedir)))


def catalog(nomenclature: str, language: str | None = None) -> Any:
    """The translation catalog of ``language`` (default: the active one) in ``nomenclature``'s words (built once)."""
    language = language or translation.get_language() or settings.LANGUAGE_CODE
    key = (language, nomenclature)
    if key not in _CATALOGS:
        _CATALOGS[key] = _VocabularyTranslation(language, nomenclature)
    return _CATALOGS[key]


def activate(nomenclature: str) -> None:
    """Use ``nomenclature``'s words on this thread until :func:`restore` ('' or an unknown name: the install's).
    Django has no public way to activate a catalog that is not a language's: this sets the active translation as
    ``translation.activate`` does (``trans_real._active``), and AccountMiddleware restores it when the request ends."""
    if nomenclature not in NOMENCLATURES or nomenclature == settings.CALLTRACK_NOMENCLATURE:
        if isinstance(getattr(trans_real._active, "value", None), _VocabularyTranslation):
            translation.deactivate()  # a request placed again (the API after the admin's middleware) in another account
        return
    trans_real._active.value = catalog(nomenclature)


def saved() -> Any:
    """The thread's active translation, for :func:`restore`."""
    return getattr(trans_real._active, "value", _UNSET)


def restore(value: Any) -> None:
    if value is _UNSET:
        translation.deactivate()
    else:
        trans_real._active.value = value
