"""The money audit trail in the admin: a read-only section on the call, handler, source and webhook pages, and a
read-only list of every change (nobody may add, edit or delete one, and it has no actions)."""

from __future__ import annotations

from django.contrib import admin
from django.template.loader import render_to_string
from django.utils.safestring import SafeString

from calltrack.admin_base import ModelAdmin
from tracking.models import MoneyChange
from tracking.money_history import HistoryEntry, handler_terms_history, object_history


def money_history_html(entries: list[HistoryEntry], *, show_row: bool = False) -> SafeString:
    return render_to_string("admin/tracking/money_history.html", {"entries": entries, "show_row": show_row})


class MoneyHistoryAdminMixin:
    """Adds the ``money_history`` read-only field: the changes of this row's money and terms (a handler: also its
    places in campaigns and its own conversion rules). Staff pages only (collaborators do not edit terms)."""

    money_history_table = ""

    @admin.display(description="money and terms history")
    def money_history(self, obj) -> SafeString | str:
        if obj is None or not obj.pk:
            return "Changes are recorded here once the row is saved."
        if self.money_history_table == "handler":
            return money_history_html(handler_terms_history(obj.pk), show_row=True)
        return money_history_html(object_history(self.money_history_table, obj.pk))


@admin.register(MoneyChange)
class MoneyChangeAdmin(ModelAdmin):
    """Every recorded change, newest first. Read-only: written by database triggers alone."""

    list_display = ["at", "table", "object_id", "op", "origin", "actor"]
    list_filter = ["table", "origin", "op"]
    search_fields = ["actor"]
    show_full_result_count = False
    actions = None
    readonly_fields = [f.name for f in MoneyChange._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def has_view_permission(self, request, obj=None) -> bool:
        # Staff with the call log's view permission; collaborators see history on their calls' pages only.
        from calltrack.scoping import scope_for

        # An install table (every account's changes): superusers only, as every install table (admin_base.ModelAdmin).
        return (self._shown(request) and not scope_for(request.user).is_collaborator
                and request.user.has_perm("tracking.view_moneychange"))
