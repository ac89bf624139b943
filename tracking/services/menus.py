"""Writes to a campaign's IVR sub-menus. A database trigger stamps the campaign's routing configuration anew on
every change (tracking/sql/config_version.*.sql), so routing reloads it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db import transaction

from calltrack.model_writes import instance_apply_and_save
from tracking.models import IVRMenu


@transaction.atomic
def ivr_menu_create(*, fields: Mapping[str, Any]) -> IVRMenu:
    """Create a sub-menu after full validation. It is heard once a key of another menu opens it."""
    menu = IVRMenu()
    for name, value in fields.items():
        setattr(menu, name, value)
    menu.full_clean()
    menu.save()
    return menu


@transaction.atomic
def ivr_menu_update(*, ivr_menu: IVRMenu, fields: Mapping[str, Any]) -> IVRMenu:
    """Change the given fields after full validation, saving only those."""
    instance_apply_and_save(instance=ivr_menu, fields=fields)
    return ivr_menu


@transaction.atomic
def ivr_menu_delete(*, ivr_menu: IVRMenu) -> None:
    """Delete a sub-menu with its keys, and the keys of other menus that opened it."""
    ivr_menu.delete()
