"""A campaign's voice menus as a tree (for the admin and the API): the main menu, its keys, the sub-menus they open."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tracking.models import Campaign, IVRAction, IVRMenu, IVROption


@dataclass
class Key:
    digit: str
    label: str
    does: str  # what the key does, in words
    response: str = ""
    submenu: Node | None = None
    back_to: str = ""  # the menu it opens is already above it (a loop back): named, not expanded


@dataclass
class Node:
    id: int | None  # None: the campaign's main menu
    name: str
    prompt: str
    keys: list[Key] = field(default_factory=list)


@dataclass
class Tree:
    root: Node
    unreachable: list[Node]  # sub-menus no key opens (never heard)


def _does(o: IVROption) -> str:
    tag = f"tag {o.tag_key}={o.tag_value or o.digit}" if o.tag_key else ""
    what = {
        IVRAction.TAG: "route",
        IVRAction.HANDLER: f"straight to handler {o.handler}" if o.handler_id else "handler (none chosen)",
        IVRAction.MENU: f"opens '{o.submenu}'" if o.submenu_id else "sub-menu (none chosen)",
        IVRAction.NUMBER: f"dials {o.number}",
        IVRAction.VOICEMAIL: "takes a voicemail",
    }.get(o.action, o.action)
    return f"{tag}, {what}" if tag else what


def campaign_menu_tree(campaign: Campaign, *, prefetched: bool = False) -> Tree:
    """The tree from the campaign's main menu (two queries, none with ``prefetched``: ``ivr_menus`` and
    ``ivr_options`` with their handler and submenu prefetched). A key leading back to a menu above it is shown
    as 'back to ...' so loops end."""
    if prefetched:
        menu_rows, option_rows = list(campaign.ivr_menus.all()), sorted(campaign.ivr_options.all(), key=lambda o: o.digit)
    else:
        menu_rows = list(IVRMenu.objects.filter(campaign_id=campaign.pk))
        option_rows = list(IVROption.objects.filter(campaign_id=campaign.pk).select_related("handler", "submenu").order_by("digit"))
    menus = {m.pk: m for m in menu_rows}
    options: dict[int | None, list[IVROption]] = {}
    for o in option_rows:
        options.setdefault(o.menu_id, []).append(o)
    reached: set[int] = set()

    def build(menu_id: int | None, path: tuple[int | None, ...]) -> Node:
        if menu_id is None:
            node = Node(None, "Main menu", campaign.ivr_prompt)
        else:
            reached.add(menu_id)
            node = Node(menu_id, menus[menu_id].name, menus[menu_id].prompt)
        for o in options.get(menu_id, []):
            key = Key(o.digit, o.label, _does(o), o.response)
            if o.action == IVRAction.MENU and o.submenu_id in menus:
                if o.submenu_id in path:
                    key.back_to = menus[o.submenu_id].name
                else:
                    key.submenu = build(o.submenu_id, (*path, o.submenu_id))
            node.keys.append(key)
        return node

    root = build(None, (None,))
    unreachable = [build(pk, (pk,)) for pk in menus if pk not in reached]
    return Tree(root, unreachable)


def tree_json(node: Node) -> dict[str, Any]:
    return {
        "menu": node.id, "name": node.name, "prompt": node.prompt,
        "keys": [
            {"digit": k.digit, "label": k.label, "does": k.does, "response": k.response, "back_to": k.back_to,
             "submenu": tree_json(k.submenu) if k.submenu else None}
            for k in node.keys
        ],
    }
