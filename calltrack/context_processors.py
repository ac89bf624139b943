from __future__ import annotations

from django.http import HttpRequest

from calltrack.nomenclature import words


def nomenclature(request: HttpRequest) -> dict[str, dict[str, str]]:
    return {"words": words()}
