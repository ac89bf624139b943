"""Writes to sources and handlers: the admin, the API and the commands all come through here."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db import transaction

from calltrack import geodata
from calltrack.model_writes import instance_apply_and_save
from tracking.models import Handler, Source


def source_create(*, fields: Mapping[str, Any]) -> Source:
    """Create a source after full validation (``source_id`` is derived from the name when blank)."""
    return instance_apply_and_save(instance=Source(), fields=fields)


def source_update(*, source: Source, fields: Mapping[str, Any]) -> Source:
    """Change the given fields after full validation (the static number cap is checked against numbers held)."""
    return instance_apply_and_save(instance=source, fields=fields)


def source_delete(*, source: Source) -> None:
    """Delete a source; its calls and numbers keep existing without credit (SET_NULL)."""
    source.delete()


def handler_create(*, fields: Mapping[str, Any]) -> Handler:
    """Create a handler; business hours and tag criteria are validated and normalized by ``Handler.clean()``."""
    return instance_apply_and_save(instance=Handler(), fields=fields)


@transaction.atomic
def handler_update(*, handler: Handler, fields: Mapping[str, Any]) -> Handler:
    """Change a handler after full validation; campaigns routing to it reload their cached configuration (a trigger
    bumps their ``config_version``).

    Coordinates that came from the zip code follow a new zip code (a blank zip clears them); coordinates typed
    by hand (not the old zip's), or typed in this same edit, stay as typed.
    """
    fields = {**fields, **_coordinates_following_zip(handler, fields)}
    return instance_apply_and_save(instance=handler, fields=fields)


@transaction.atomic
def handler_delete(*, handler: Handler) -> None:
    """Delete a handler and its places in campaigns; past calls keep existing without it (SET_NULL)."""
    handler.delete()


def _same_point(a: tuple[float | None, float | None], b: tuple[float, float] | None) -> bool:
    return b is not None and None not in a and all(abs(x - y) < 1e-9 for x, y in zip(a, b, strict=True))  # type: ignore[operator]


def _coordinates_following_zip(handler: Handler, fields: Mapping[str, Any]) -> dict[str, Any]:
    """The latitude and longitude of the new zip code when this edit changes the zip and the stored coordinates
    were the old zip's (or blank), and the edit types no coordinates of its own; else nothing.

    The stored row is read again: an admin form has already set its values on ``handler``.
    """
    if "location_zip" not in fields or handler.pk is None:
        return {}
    stored = Handler.objects.filter(pk=handler.pk).values_list("location_zip", "latitude", "longitude").first()
    if stored is None:
        return {}
    old_zip, latitude, longitude = stored
    new_zip = fields["location_zip"] or ""
    if new_zip.strip() == old_zip.strip():
        return {}
    typed = any(name in fields and fields[name] != value for name, value in (("latitude", latitude), ("longitude", longitude)))
    derived = (latitude is None and longitude is None) or _same_point((latitude, longitude), geodata.zip_point(old_zip))
    if typed or not derived:
        return {}
    point = geodata.zip_point(new_zip)  # unknown: blank, and clean() says the zip is unknown
    return {"latitude": point[0] if point else None, "longitude": point[1] if point else None}
