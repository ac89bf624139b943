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

from django.utils.translation import pgettext_lazy

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
