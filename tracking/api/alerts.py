"""API of alerts (read, acknowledge), fraud monitors and alert recipients; a source's pause and resume."""

from __future__ import annotations

import django_filters
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from calltrack.api.serializers import ModelSerializer
from calltrack.api.views import ScopedModelViewSet, ScopedReadOnlyModelViewSet, ServiceWritesViewSetMixin
from calltrack.scoping import ACTION_PERMISSIONS, visible_alerts
from tracking.models import Alert, AlertDelivery, AlertKind, AlertLevel, AlertRecipient, FraudMonitor, MonitorKind
from tracking.services import alerts as alert_services
from tracking.services import monitors as monitor_services


class AlertSerializer(ModelSerializer):
    is_open = serializers.SerializerMethodField(help_text=_("Whether the condition still lasts."))

    class Meta:
        model = Alert
        fields = ["id", "kind", "level", "message", "url", "source", "handler", "monitor", "opened_at", "last_seen_at",
                  "cleared_at", "is_open", "acknowledged_at", "notified_at", "silent"]
        read_only_fields = fields

    def get_is_open(self, obj: Alert) -> bool:
        return obj.cleared_at is None

    def to_representation(self, instance):
        data = super().to_representation(instance)
        scope = self.context.get("scope")
        if scope is not None and scope.is_collaborator:  # the other side's party and the monitor's settings
            for name in ("monitor", "silent", "handler" if scope.kind == "source" else "source"):
                data.pop(name, None)
        return data


class AlertFilter(django_filters.FilterSet):
    kind = django_filters.ChoiceFilter(choices=AlertKind.choices, help_text=_("Alerts of this kind."))
    level = django_filters.ChoiceFilter(choices=AlertLevel.choices, help_text=_("Alerts of this level."))
    is_open = django_filters.BooleanFilter(field_name="cleared_at", lookup_expr="isnull", help_text=_("Open episodes only (true) or cleared ones (false)."))
    acknowledged = django_filters.BooleanFilter(field_name="acknowledged_at", lookup_expr="isnull", exclude=True,
                                                help_text=_("Acknowledged ones only (true) or those still shown (false)."))

    class Meta:
        model = Alert
        fields = ["kind", "level"]


@extend_schema_view(
    list=extend_schema(summary=_("List alerts (newest first)")),
    retrieve=extend_schema(summary=_("Get an alert")),
    acknowledge=extend_schema(summary=_("Acknowledge an alert (off the dashboard)"), request=None, responses=AlertSerializer),
)
class AlertViewSet(ScopedReadOnlyModelViewSet):
    """Alerts, one per episode of a condition. Staff: all; a collaborator: those about its own side (its own calls' party)."""

    collaborator_kinds = ("source", "handler")
    serializer_class = AlertSerializer
    filterset_class = AlertFilter
    ordering_fields = ["opened_at", "id"]
    action_permissions = {"acknowledge": list(ACTION_PERMISSIONS["alert.acknowledge"])}

    def get_queryset(self) -> QuerySet:
        alerts = Alert.objects.order_by("-opened_at", "-id")
        if self.scope.is_collaborator:  # a silent episode is the operator's record only
            alerts = alerts.filter(silent=False)
        return visible_alerts(alerts, self.scope)

    @action(detail=True, methods=["post"], filterset_class=None)
    def acknowledge(self, request: Request, pk: str | None = None) -> Response:
        alert = self.get_object()
        alert_services.alert_acknowledge(alert=alert, user=request.user)
        return Response(AlertSerializer(alert, context=self.get_serializer_context()).data)


class FraudMonitorSerializer(ModelSerializer):
    class Meta:
        model = FraudMonitor
        fields = ["id", "name", "kind", "source", "handler", "enabled", "window_minutes", "baseline_hours", "min_calls",
                  "threshold_points", "short_seconds", "alert", "pause_source", "last_checked_at", "last_result", "created_at"]
        read_only_fields = ["last_checked_at", "last_result", "created_at"]


class FraudMonitorFilter(django_filters.FilterSet):
    kind = django_filters.ChoiceFilter(choices=MonitorKind.choices, help_text=_("Monitors of this kind."))
    source = django_filters.NumberFilter(help_text=_("Monitors of this source (id)."))
    handler = django_filters.NumberFilter(help_text=_("Monitors of this handler (id)."))
    enabled = django_filters.BooleanFilter(help_text=_("Enabled ones only (true) or disabled ones (false)."))

    class Meta:
        model = FraudMonitor
        fields = ["kind", "source", "handler", "enabled"]


@extend_schema_view(
    list=extend_schema(summary=_("List fraud monitors")),
    retrieve=extend_schema(summary=_("Get a fraud monitor")),
    create=extend_schema(summary=_("Create a fraud monitor")),
    update=extend_schema(summary=_("Replace a fraud monitor")),
    partial_update=extend_schema(summary=_("Change some fields of a fraud monitor")),
    destroy=extend_schema(summary=_("Delete a fraud monitor (its alerts stay)")),
)
class FraudMonitorViewSet(ServiceWritesViewSetMixin, ScopedModelViewSet):
    """Pay-per-call traffic watched against its own baseline. Staff only."""

    write_services = (monitor_services.monitor_create, monitor_services.monitor_update, monitor_services.monitor_delete)
    service_arg = "monitor"
    queryset = FraudMonitor.objects.order_by("name", "id")
    serializer_class = FraudMonitorSerializer
    filterset_class = FraudMonitorFilter
    ordering_fields = ["name", "id"]


class AlertRecipientSerializer(ModelSerializer):
    kinds = serializers.ListField(
        child=serializers.ChoiceField(choices=AlertKind.choices), required=False,
        help_text=AlertRecipient._meta.get_field("kinds").help_text,
    )

    class Meta:
        model = AlertRecipient
        fields = ["id", "name", "enabled", "email", "webhook_url", "webhook_secret", "delivery", "kinds", "collaborator",
                  "last_digest_at", "created_at"]
        read_only_fields = ["last_digest_at", "created_at"]
        extra_kwargs = {"webhook_secret": {"required": False}}


class AlertRecipientFilter(django_filters.FilterSet):
    delivery = django_filters.ChoiceFilter(choices=AlertDelivery.choices, help_text=_("Recipients of each alert, or of the digest."))
    enabled = django_filters.BooleanFilter(help_text=_("Enabled ones only (true) or disabled ones (false)."))

    class Meta:
        model = AlertRecipient
        fields = ["delivery", "enabled"]


@extend_schema_view(
    list=extend_schema(summary=_("List where alerts are sent")),
    retrieve=extend_schema(summary=_("Get an alert recipient")),
    create=extend_schema(summary=_("Add an alert recipient (email and/or signed webhook)")),
    update=extend_schema(summary=_("Replace an alert recipient")),
    partial_update=extend_schema(summary=_("Change some fields of an alert recipient")),
    destroy=extend_schema(summary=_("Remove an alert recipient")),
)
class AlertRecipientViewSet(ServiceWritesViewSetMixin, ScopedModelViewSet):
    """Where alerts are sent. Staff only."""

    write_services = (alert_services.recipient_create, alert_services.recipient_update, alert_services.recipient_delete)
    service_arg = "recipient"
    queryset = AlertRecipient.objects.order_by("name", "id")
    serializer_class = AlertRecipientSerializer
    filterset_class = AlertRecipientFilter
    ordering_fields = ["name", "id"]


class SourcePauseMixin:
    """``POST sources/{id}/pause/`` and ``POST sources/{id}/resume/`` on the sources' viewset: the write permission
    of ``calltrack.scoping.ACTION_PERMISSIONS`` (source.pause, source.resume), as the admin's actions."""

    action_permissions = {
        "pause": list(ACTION_PERMISSIONS["source.pause"]),
        "resume": list(ACTION_PERMISSIONS["source.resume"]),
    }

    @extend_schema(summary=_("Pause a source: its calls go to the campaign's fail-safe until resumed"), request=None)
    @action(detail=True, methods=["post"], filterset_class=None)
    def pause(self, request: Request, pk: str | None = None) -> Response:
        source = self.get_object()  # type: ignore[attr-defined]
        monitor_services.source_pause(source=source, reason=f"paused by {request.user.get_username()} (API)")
        source.refresh_from_db()
        return Response(self.get_serializer(source).data)  # type: ignore[attr-defined]

    @extend_schema(summary=_("Resume a paused source: its calls are routed again"), request=None)
    @action(detail=True, methods=["post"], filterset_class=None)
    def resume(self, request: Request, pk: str | None = None) -> Response:
        source = self.get_object()  # type: ignore[attr-defined]
        monitor_services.source_resume(source=source)
        source.refresh_from_db()
        return Response(self.get_serializer(source).data)  # type: ignore[attr-defined]
