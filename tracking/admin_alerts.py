"""The admin of alerts, fraud monitors and alert recipients (the settings page listing where alerts are sent)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect
from django.urls import path
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext_lazy as _

from calltrack.admin_base import ModelAdmin, ServiceWritesAdminMixin
from calltrack.admin_scoping import CollaboratorScopedAdminMixin
from calltrack.scoping import may, scope_for, visible_alerts
from tracking.models import Alert, AlertRecipient, FraudMonitor
from tracking.services import alerts as alert_services
from tracking.services import monitors as monitor_services


class AlertCollaboratorScope(CollaboratorScopedAdminMixin):
    """Collaborators read the alerts about their own source or handler (calltrack.scoping.visible_alerts)."""

    collaborator_kinds = ("source", "handler")
    collaborator_queryset = staticmethod(visible_alerts)
    collaborator_hidden = {"source": ("handler", "monitor", "notify_log", "acknowledged_by", "silent"),
                           "handler": ("source", "monitor", "notify_log", "acknowledged_by", "silent")}
    collaborator_list_filter = {"source": ("kind", "level"), "handler": ("kind", "level")}


class OpenFilter(admin.SimpleListFilter):
    title = _("episode")
    parameter_name = "open"

    def lookups(self, request, model_admin):
        return [("1", _("Open")), ("0", _("Cleared"))]

    def queryset(self, request, queryset):
        if self.value() == "1":
            return queryset.filter(cleared_at__isnull=True)
        if self.value() == "0":
            return queryset.filter(cleared_at__isnull=False)
        return queryset


@admin.register(Alert)
class AlertAdmin(AlertCollaboratorScope, ModelAdmin):
    list_display = ["opened_at", "kind", "level", "message", "source", "handler", "cleared_at", "acknowledged_at"]
    list_filter = ["kind", "level", OpenFilter, "silent"]
    search_fields = ["message", "key"]
    list_select_related = ["source", "handler"]
    date_hierarchy = "opened_at"
    actions = ["acknowledge"]
    fieldsets = [
        (None, {"fields": ["kind", "level", "message", "url", "source", "handler", "monitor"]}),
        (_("Episode"), {"fields": ["key", "opened_at", "last_seen_at", "cleared_at", "acknowledged_at", "acknowledged_by"]}),
        (_("Sent"), {"fields": ["silent", "notified_at", "notify_log"]}),
    ]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in Alert._meta.fields]

    def has_add_permission(self, request, *args) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # raised and cleared by their checks; acknowledged by the action

    def has_acknowledge_permission(self, request) -> bool:
        return may(request.user, "alert.acknowledge", admin=True)

    @admin.action(description=_("Acknowledge the selected alerts (off the dashboard)"), permissions=["acknowledge"])
    def acknowledge(self, request, queryset) -> None:
        done = sum(alert_services.alert_acknowledge(alert=alert, user=request.user) for alert in queryset)
        self.message_user(request, _("{n} alerts acknowledged.").format(n=done), messages.SUCCESS)

    def get_urls(self):
        ack = self.admin_site.admin_view(self.acknowledge_view)
        return [path("<int:pk>/acknowledge/", ack, name="tracking_alert_acknowledge"), *super().get_urls()]

    def acknowledge_view(self, request, pk: int):
        """The dashboard's ack button: POST only, with the action's permission, on an alert the user may see."""
        if request.method != "POST" or not may(request.user, "alert.acknowledge", admin=True):
            raise PermissionDenied
        alert = get_object_or_404(visible_alerts(Alert.objects.all(), scope_for(request.user)), pk=pk)
        alert_services.alert_acknowledge(alert=alert, user=request.user)
        back = request.POST.get("next") or ""
        if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
            back = "admin:index"
        return redirect(back)


@admin.register(FraudMonitor)
class FraudMonitorAdmin(ServiceWritesAdminMixin, ModelAdmin):
    write_services = (monitor_services.monitor_create, monitor_services.monitor_update, monitor_services.monitor_delete)
    service_arg = "monitor"
    list_display = ["name", "kind", "watched", "window_minutes", "threshold_points", "min_calls", "alert", "pause_source",
                    "enabled", "last_checked_at", "last_result"]
    list_filter = ["kind", "enabled", "alert", "pause_source"]
    search_fields = ["name"]
    list_select_related = ["source", "handler"]
    autocomplete_fields = ["source", "handler"]
    readonly_fields = ["last_checked_at", "last_result", "created_at"]
    fieldsets = [
        (None, {"fields": ["name", "kind", "enabled", "source", "handler"]}),
        (_("Measure"), {"fields": ["window_minutes", "baseline_hours", "min_calls", "threshold_points", "short_seconds"]}),
        (_("When it triggers"), {"fields": ["alert", "pause_source"]}),
        (_("Last evaluation"), {"fields": ["last_checked_at", "last_result", "created_at"]}),
    ]

    @admin.display(description=_("watches"))
    def watched(self, obj: FraudMonitor) -> str:
        return str(obj.source or obj.handler or _("every source"))


@admin.register(AlertRecipient)
class AlertRecipientAdmin(ServiceWritesAdminMixin, ModelAdmin):
    """Where alerts are sent: the list is the alerts' settings page."""

    list_display = ["name", "email", "webhook_url", "delivery", "kinds", "collaborator", "enabled"]
    list_filter = ["delivery", "enabled"]
    search_fields = ["name", "email", "webhook_url"]
    list_select_related = ["collaborator"]
    readonly_fields = ["last_digest_at", "created_at"]
    autocomplete_fields = ["collaborator"]
    write_services = (alert_services.recipient_create, alert_services.recipient_update, alert_services.recipient_delete)
    service_arg = "recipient"
