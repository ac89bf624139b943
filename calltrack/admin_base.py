"""Admin building blocks shared by the apps."""

from __future__ import annotations

from django.contrib import admin


class ReadOnlyLogInline(admin.TabularInline):
    """A log shown on its parent's page (history, timeline, tries): every listed field read-only, no adding or deleting."""

    extra = 0
    max_num = 0
    can_delete = False

    def get_readonly_fields(self, request, obj=None):
        return self.fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False
