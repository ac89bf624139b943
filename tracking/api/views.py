"""API views for sources, handlers, campaigns (staff only) and calls (read-only, scoped for collaborators)."""

from __future__ import annotations

from django.db.models import Prefetch, QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_view

from calltrack.api.pagination import StartedAtCursorPagination
from calltrack.api.views import ScopedModelViewSet, ScopedReadOnlyModelViewSet, ServiceWritesViewSetMixin
from calltrack.scoping import visible_attempts, visible_calls
from tracking.api import filters, serializers
from tracking.models import Call, CallAttempt, Campaign, CampaignHandler, Handler, Source
from tracking.services import campaigns as campaign_services
from tracking.services import parties


@extend_schema_view(
    list=extend_schema(summary="List sources"),
    retrieve=extend_schema(summary="Get a source"),
    create=extend_schema(summary="Create a source"),
    update=extend_schema(summary="Replace a source"),
    partial_update=extend_schema(summary="Change some fields of a source"),
    destroy=extend_schema(summary="Delete a source (its calls and numbers stay, without credit)"),
)
class SourceViewSet(ServiceWritesViewSetMixin, ScopedModelViewSet):
    """Who generates calls. Staff only (by model permissions)."""

    write_services = (parties.source_create, parties.source_update, parties.source_delete)
    service_arg = "source"
    queryset = Source.objects.order_by("name", "id")
    serializer_class = serializers.SourceSerializer
    filterset_class = filters.SourceFilter
    ordering_fields = ["name", "created_at", "id"]


@extend_schema_view(
    list=extend_schema(summary="List handlers"),
    retrieve=extend_schema(summary="Get a handler"),
    create=extend_schema(summary="Create a handler"),
    update=extend_schema(summary="Replace a handler"),
    partial_update=extend_schema(summary="Change some fields of a handler"),
    destroy=extend_schema(summary="Delete a handler"),
)
class HandlerViewSet(ServiceWritesViewSetMixin, ScopedModelViewSet):
    """Who receives calls, with caps, business hours and tag criteria. Staff only."""

    write_services = (parties.handler_create, parties.handler_update, parties.handler_delete)
    service_arg = "handler"
    queryset = Handler.objects.order_by("priority", "name", "id")
    serializer_class = serializers.HandlerSerializer
    filterset_class = filters.HandlerFilter
    ordering_fields = ["name", "priority", "weight", "created_at", "id"]


@extend_schema_view(
    list=extend_schema(summary="List campaigns"),
    retrieve=extend_schema(summary="Get a campaign with its handlers"),
    create=extend_schema(summary="Create a campaign (with its handler list)"),
    update=extend_schema(summary="Replace a campaign"),
    partial_update=extend_schema(summary="Change some fields of a campaign (sending handlers replaces the list)"),
    destroy=extend_schema(summary="Delete a campaign (refused while pools use it)"),
)
class CampaignViewSet(ScopedModelViewSet):
    """The call experience: handlers with per-campaign priority and weight, strategy, greeting, IVR. Staff only."""

    queryset = Campaign.objects.order_by("name", "id").prefetch_related(
        Prefetch("campaign_handlers", queryset=CampaignHandler.objects.select_related("handler"))
    )
    serializer_class = serializers.CampaignSerializer
    filterset_class = filters.CampaignFilter
    ordering_fields = ["name", "created_at", "id"]

    @staticmethod
    def _split(validated: dict) -> tuple[dict, list | None]:
        fields = dict(validated)
        handlers = fields.pop("campaign_handlers", None)
        return fields, handlers

    def perform_create(self, serializer):
        fields, handlers = self._split(serializer.validated_data)
        campaign = campaign_services.campaign_create(fields=fields, handlers=handlers)
        serializer.instance = self.get_queryset().get(pk=campaign.pk)

    def perform_update(self, serializer):
        fields, handlers = self._split(serializer.validated_data)
        campaign = campaign_services.campaign_update(campaign=serializer.instance, fields=fields, handlers=handlers)
        serializer.instance = self.get_queryset().get(pk=campaign.pk)

    def perform_destroy(self, instance):
        campaign_services.campaign_delete(campaign=instance)


@extend_schema_view(
    list=extend_schema(summary="List calls (newest first, cursor-paginated)"),
    retrieve=extend_schema(summary="Get a call with its legs, attribution and marketing data"),
)
class CallViewSet(ScopedReadOnlyModelViewSet):
    """Calls, read-only. Source collaborators see their source's calls; handler collaborators the calls routed to them."""

    serializer_class = serializers.CallSerializer
    filterset_class = filters.CallFilter
    pagination_class = StartedAtCursorPagination
    ordering_fields = ["started_at", "duration", "talk_time"]
    collaborator_kinds = ("source", "handler")

    def get_queryset(self) -> QuerySet:
        scope = self.scope
        attempts = visible_attempts(CallAttempt.objects.order_by("sequence", "id"), scope)
        qs = Call.objects.select_related("source").prefetch_related(Prefetch("attempts", queryset=attempts))
        return visible_calls(qs, scope)
