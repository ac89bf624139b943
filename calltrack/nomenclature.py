"""The operator's words: Source/Handler (standard) or Publisher/Buyer (performance marketing)."""

from __future__ import annotations

from django.conf import settings

_WORDS = {
    "standard": {"source": "source", "sources": "sources", "handler": "handler", "handlers": "handlers"},
    "performance": {"source": "publisher", "sources": "publishers", "handler": "buyer", "handlers": "buyers"},
}


def mode() -> str:
    value = settings.CALLTRACK_NOMENCLATURE
    return value if value in _WORDS else "standard"


def words() -> dict[str, str]:
    return _WORDS[mode()]


def word(key: str, *, title: bool = False) -> str:
    value = words()[key]
    return value.title() if title else value


def apply_to_models() -> None:
    """Rename Source/Handler in the admin to the chosen words.

    Only ``_meta.verbose_name`` is touched, not the class's declared Meta, so
    migrations do not change with the setting.
    """
    from django.apps import apps

    chosen = words()
    for model_name, key in (("Source", "source"), ("Handler", "handler")):
        model = apps.get_model("tracking", model_name)
        model._meta.verbose_name = chosen[key]
        model._meta.verbose_name_plural = chosen[key + "s"]
    for model in apps.get_models():
        for field in model._meta.get_fields():
            if getattr(field, "related_model", None) is None or not getattr(field, "concrete", False):
                continue
            target = field.related_model._meta.object_name
            if target in ("Source", "Handler") and field.name in ("source", "handler"):
                field.verbose_name = chosen[field.name]
