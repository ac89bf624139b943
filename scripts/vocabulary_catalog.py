"""Rebuild the performance vocabulary's message catalog (Publisher/Buyer for Source/Handler).

Usage: ``.venv/bin/python scripts/vocabulary_catalog.py`` after adding or changing a label that names a party.

1. ``makemessages`` (GNU gettext's xgettext) extracts every message marked for translation into
   ``calltrack/vocabularies/performance/en/LC_MESSAGES/django.po``, keeping the wordings already there.
2. Only the messages that name a party stay in the catalog: the party words themselves (context "party") and the
   sentences without a context that say source(s) or handler(s). A message with another context (a UTM source)
   is left out, so it keeps its words.
3. A new message gets a drafted wording (each party word replaced, its case kept), printed so it can be reviewed;
   an existing wording is never redrafted, so a hand-made correction stays.
4. The catalog is compiled to ``django.mo`` with polib (the same bytes its test compiles).

The default language stays English: this is an English catalog, loaded only when settings.LOCALE_PATHS lists it
(``CALLTRACK_NOMENCLATURE=performance``).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import polib

ROOT = Path(__file__).resolve().parent.parent
CATALOG = ROOT / "calltrack" / "vocabularies" / "performance" / "en" / "LC_MESSAGES" / "django.po"
WORDS = {"source": "publisher", "sources": "publishers", "handler": "buyer", "handlers": "buyers"}
# A whole word: "source" and "Handlers", not "source_id", "utm_source" or "resources" ("_" is a word character).
PARTY_WORD = re.compile(r"\b(source|handler)(s?)\b", re.IGNORECASE)
METADATA = {
    "Project-Id-Version": "calltrack",
    "Language": "en",
    "MIME-Version": "1.0",
    "Content-Type": "text/plain; charset=UTF-8",
    "Content-Transfer-Encoding": "8bit",
    "Plural-Forms": "nplurals=2; plural=(n != 1);",
}


def draft(text: str) -> str:
    """``text`` with each party word in the performance vocabulary, keeping its case ("Handlers" -> "Buyers")."""

    def replace(match: re.Match[str]) -> str:
        found = match.group(0)
        new = WORDS[(match.group(1) + match.group(2)).lower()]
        if found.isupper() and len(found) > 1:
            return new.upper()
        return new[0].upper() + new[1:] if found[0].isupper() else new

    return PARTY_WORD.sub(replace, text)


def names_a_party(entry: polib.POEntry) -> bool:
    return entry.msgctxt in (None, "party") and bool(PARTY_WORD.search(entry.msgid))


def extract() -> None:
    env = {**os.environ, "CALLTRACK_NOMENCLATURE": "performance", "DEBUG": "true"}
    ignored = ["tests", "bench", "scripts", "docs", "static", "staticfiles", "node_modules"]
    command = [sys.executable, "manage.py", "makemessages", "--locale", "en", "--no-location", "--no-obsolete"]
    for name in ignored:
        command += ["--ignore", name]
    subprocess.run(command, cwd=ROOT, env=env, check=True)


def schema_docstrings() -> set[str]:
    """The API documentation's texts that name a party, as the standard words write them. gettext cannot mark a
    docstring, so the operations' and serializers' docstrings (looked up by calltrack.api.schema.AutoSchema) are
    taken from the generated schema."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "calltrack.settings")
    os.environ.setdefault("DEBUG", "true")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.utils import translation
    from drf_spectacular.generators import SchemaGenerator

    with translation.override(None):
        schema = SchemaGenerator().get_schema(request=None, public=True)
    # Operations (a view's or action's docstring), components (a serializer's docstring) and the API's own description;
    # a property's description is its field's help text, a marked message already.
    texts = {schema["info"].get("description", "")}
    texts |= {op.get("description", "") for path in schema["paths"].values() for op in path.values() if isinstance(op, dict)}
    texts |= {component.get("description", "") for component in schema["components"]["schemas"].values()}
    return {text for text in texts if PARTY_WORD.search(text) and not text.startswith("*")}


def wordings() -> dict[tuple[str | None, str], str]:
    """The catalog's current wordings (read before extracting: a docstring's entry is not extracted, only re-added)."""
    if not CATALOG.exists():
        return {}
    return {(entry.msgctxt, entry.msgid): entry.msgstr for entry in polib.pofile(str(CATALOG)) if entry.msgstr}


def rebuild(extra: set[str] = frozenset(), previous: dict[tuple[str | None, str], str] | None = None) -> list[polib.POEntry]:  # type: ignore[assignment]
    """Keep the party messages, draft the new ones' wordings, compile; the drafted entries are returned."""
    previous = previous or {}
    po = polib.pofile(str(CATALOG), wrapwidth=0)
    known = {(entry.msgctxt, entry.msgid) for entry in po}
    for text in sorted(extra):
        if (None, text) not in known:
            po.append(polib.POEntry(msgid=text, msgstr="", comment="A docstring in the API documentation."))
    kept = polib.POFile(wrapwidth=0)
    kept.metadata = dict(METADATA)
    drafted = []
    for entry in sorted(po, key=lambda e: (e.msgctxt or "", e.msgid)):
        if entry.obsolete or not names_a_party(entry):
            continue
        entry.occurrences = []
        entry.flags = [flag for flag in entry.flags if flag != "fuzzy"]
        entry.previous_msgid = entry.previous_msgctxt = None
        if not entry.msgstr and (entry.msgctxt, entry.msgid) in previous:
            entry.msgstr = previous[(entry.msgctxt, entry.msgid)]
        if not entry.msgstr:
            entry.msgstr = draft(entry.msgid)
            drafted.append(entry)
        kept.append(entry)
    kept.header = "The performance vocabulary: Publisher/Buyer for Source/Handler (calltrack/nomenclature.py).\n" \
                  "Rebuilt by scripts/vocabulary_catalog.py; hand corrections of a wording are kept."
    kept.save(str(CATALOG))
    kept.save_as_mofile(str(CATALOG.with_suffix(".mo")))
    return drafted


if __name__ == "__main__":
    CATALOG.parent.mkdir(parents=True, exist_ok=True)
    previous = wordings()
    extract()
    for entry in rebuild(schema_docstrings(), previous):
        print(f"drafted: {entry.msgid!r} -> {entry.msgstr!r}")
    print(f"{CATALOG.relative_to(ROOT)} and its .mo written; review the wordings above before committing.")
