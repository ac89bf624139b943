"""API views for sources, handlers, campaigns (staff only) and calls (read-only, scoped for collaborators)."""

from __future__ import annotations

from django.db.models import Count, Prefetch, QuerySet
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.viewsets import GenericViewSet

from calltrack.api.pagination import StartedAtCursorPagination
from calltrack.api.views import ScopedModelViewSet, ScopedReadOnlyModelViewSet, ServiceWritesViewSetMixin
from calltrack.scoping import hidden_call_fields, visible_attempts, visible_calls, visible_money_changes
from tracking.api import filters, serializers
from tracking.api.alerts import SourcePauseMixin
from tracking.models import (
    Call,
    CallAttempt,
    Campaign,
    CampaignHandler,
    ConversionDestination,
    ConversionRule,
    ConversionUpload,
    Handler,
    IVROption,
    MoneyChange,
    RoutingTable,
    RoutingTableRow,
    Source,
    TaggingHours,
)
from tracking.money_history import HISTORY_LIMIT, history_entries
from tracking.services import ad_uploads, parties, tagging
from tracking.services import campaigns as campaign_services
from tracking.services import lookup as lookup_services


class MoneyHistoryViewSetMixin(GenericViewSet):
    """``GET .../{id}/history/``: the newest changes of the row's money and terms (tracking.MoneyChange)."""

    history_table = ""

    def history_changes(self, obj):
        if self.history_table == "handler":
            return MoneyChange.objects.of_handler_terms(obj.pk)
        return MoneyChange.objects.of(self.history_table, obj.pk)

    @action(detail=True, methods=["get"], filterset_class=None, pagination_class=None)
    def history(self, request: Request, pk: str | None = None) -> Response:
        obj = self.get_object()
        scope = self.scope  # type: ignore[attr-defined]
        changes = visible_money_changes(self.history_changes(obj), Call.objects.all(), scope)
        entries = history_entries(changes, hidden=hidden_call_fields(scope))
        return Response(serializers.MoneyChangeSerializer(entries, many=True).data)


def _history_schema(what):
    return extend_schema(
        # Lazy, like ``what``: the summary is worded when the schema is built, in the vocabulary then in force.
        summary=format_lazy("{}: who changed it, when, from where, before and after", what),
        description=f"The newest {HISTORY_LIMIT} recorded changes, newest first. Recorded by the database for every "
        "write (the admin, the API, postbacks, the conversion rules, tasks, direct SQL).",
        responses=serializers.MoneyChangeSerializer(many=True), filters=False,
    )


@extend_schema_view(
    list=extend_schema(summary=_("List sources")),
    retrieve=extend_schema(summary=_("Get a source")),
    create=extend_schema(summary=_("Create a source")),
    update=extend_schema(summary=_("Replace a source")),
    partial_update=extend_schema(summary=_("Change some fields of a source")),
    destroy=extend_schema(summary=_("Delete a source (its calls and numbers stay, without credit)")),
    history=_history_schema(_("A source's terms history (its static number cap)")),
)
class SourceViewSet(SourcePauseMixin, MoneyHistoryViewSetMixin, ServiceWritesViewSetMixin, ScopedModelViewSet):
    """Who generates calls. Staff only (by model permissions)."""

    history_table = "source"

    write_services = (parties.source_create, parties.source_update, parties.source_delete)
    service_arg = "source"
    queryset = Source.objects.order_by("name", "id")
    serializer_class = serializers.SourceSerializer
    filterset_class = filters.SourceFilter
    ordering_fields = ["name", "created_at", "id"]


@extend_schema_view(
    list=extend_schema(summary=_("List handlers")),
    retrieve=extend_schema(summary=_("Get a handler")),
    create=extend_schema(summary=_("Create a handler")),
    update=extend_schema(summary=_("Replace a handler")),
    partial_update=extend_schema(summary=_("Change some fields of a handler")),
    destroy=extend_schema(summary=_("Delete a handler")),
    history=_history_schema(_("A handler's terms history (its routing terms and caps, its places in campaigns, its own conversion rules)")),
)
class HandlerViewSet(MoneyHistoryViewSetMixin, ServiceWritesViewSetMixin, ScopedModelViewSet):
    """Who receives calls, with caps, business hours and tag criteria. Staff only."""

    history_table = "handler"

    write_services = (parties.handler_create, parties.handler_update, parties.handler_delete)
    service_arg = "handler"
    queryset = Handler.objects.order_by("priority", "name", "id")
    serializer_class = serializers.HandlerSerializer
    filterset_class = filters.HandlerFilter
    ordering_fields = ["name", "priority", "weight", "created_at", "id"]


@extend_schema_view(
    list=extend_schema(summary="List campaigns"),
    retrieve=extend_schema(summary=_("Get a campaign with its handlers")),
    create=extend_schema(summary=_("Create a campaign (with its handler list)")),
    update=extend_schema(summary="Replace a campaign"),
    partial_update=extend_schema(summary=_("Change some fields of a campaign (sending handlers replaces the list)")),
    destroy=extend_schema(summary="Delete a campaign (refused while pools use it)"),
)
class CampaignViewSet(ScopedModelViewSet):
    """The call experience: handlers with per-campaign priority and weight, strategy, greeting, IVR. Staff only."""

    queryset = Campaign.objects.order_by("name", "id").prefetch_related(
        Prefetch("campaign_handlers", queryset=CampaignHandler.objects.select_related("handler")),
        "ivr_menus", Prefetch("ivr_options", queryset=IVROption.objects.select_related("handler", "submenu")),
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
    history=_history_schema("A call's money history (its conversion, revenue and payout; a collaborator sees its own side)"),
)
class CallViewSet(MoneyHistoryViewSetMixin, ScopedReadOnlyModelViewSet):
    """Calls, read-only. Source collaborators see their source's calls; handler collaborators the calls routed to them."""

    history_table = "call"

    serializer_class = serializers.CallSerializer
    filterset_class = filters.CallFilter
    pagination_class = StartedAtCursorPagination
    ordering_fields = ["started_at", "duration", "talk_time"]
    collaborator_kinds = ("source", "handler")

    def get_queryset(self) -> QuerySet:
        scope = self.scope
        attempts = visible_attempts(CallAttempt.objects.order_by("sequence", "id"), scope)
        qs = Call.objects.select_related("source").prefetch_related(Prefetch("attempts", queryset=attempts))
        if not scope.is_collaborator:  # the uploads to the ad platforms are staff's only (STAFF_ONLY_CALL_FIELDS)
            uploads = ConversionUpload.objects.select_related("destination").order_by("destination_id")
            qs = qs.prefetch_related(Prefetch("conversion_uploads", queryset=uploads))
        return visible_calls(qs, scope)


@extend_schema_view(
    list=extend_schema(summary="List conversion destinations"),
    retrieve=extend_schema(summary="Get a conversion destination (its credentials are never shown)"),
    create=extend_schema(summary="Create a conversion destination"),
    update=extend_schema(summary="Replace a conversion destination"),
    partial_update=extend_schema(summary="Change some fields of a conversion destination"),
    destroy=extend_schema(summary="Delete a conversion destination (and its uploads' records)"),
)
class ConversionDestinationViewSet(ServiceWritesViewSetMixin, ScopedModelViewSet):
    """Where a campaign's converting calls are sent back: Google Ads, GA4, Meta, Microsoft Advertising, or local (records
    what would be sent). Staff only; credentials are write-only."""

    write_services = (
        lambda *, fields: ad_uploads.conversion_destination_save(
            destination=ConversionDestination(), fields={k: v for k, v in fields.items() if k != "credentials"},
            credentials=fields.get("credentials")),
        lambda *, destination, fields: ad_uploads.conversion_destination_save(
            destination=destination, fields={k: v for k, v in fields.items() if k != "credentials"},
            credentials=fields.get("credentials")),
        ad_uploads.conversion_destination_delete,
    )
    service_arg = "destination"
    queryset = ConversionDestination.objects.order_by("campaign_id", "name", "id")
    serializer_class = serializers.ConversionDestinationSerializer
    filterset_class = filters.ConversionDestinationFilter
    ordering_fields = ["name", "id"]


@extend_schema_view(
    list=extend_schema(summary="List tagging hours"),
    retrieve=extend_schema(summary="Get a tagging-hours schedule"),
    create=extend_schema(summary="Create a tagging-hours schedule"),
    update=extend_schema(summary="Replace a tagging-hours schedule"),
    partial_update=extend_schema(summary="Change some fields of a tagging-hours schedule"),
    destroy=extend_schema(summary="Delete a tagging-hours schedule (calls keep their tags)"),
)
class TaggingHoursViewSet(ServiceWritesViewSetMixin, ScopedModelViewSet):
    """Weekly schedules that tag calls by arrival time (account-wide, or for one campaign). Staff only."""

    write_services = (tagging.tagging_hours_create, tagging.tagging_hours_update, tagging.tagging_hours_delete)
    service_arg = "tagging_hours"
    queryset = TaggingHours.objects.order_by("campaign_id", "name", "id")
    serializer_class = serializers.TaggingHoursSerializer
    filterset_class = filters.TaggingHoursFilter
    ordering_fields = ["name", "id"]


@extend_schema_view(
    list=extend_schema(summary="List lookup tables"),
    retrieve=extend_schema(summary="Get a lookup table"),
    create=extend_schema(summary="Create a lookup table"),
    update=extend_schema(summary="Replace a lookup table"),
    partial_update=extend_schema(summary="Change some fields of a lookup table"),
    destroy=extend_schema(summary="Delete a lookup table with its rows"),
)
class RoutingTableViewSet(ServiceWritesViewSetMixin, ScopedModelViewSet):
    """Lookup tables: a value of the call (zip, state, a tag, the detected destination) to a handler or a number.
    Staff only."""

    write_services = (lookup_services.routing_table_create, lookup_services.routing_table_update, lookup_services.routing_table_delete)
    service_arg = "routing_table"
    serializer_class = serializers.RoutingTableSerializer
    filterset_class = filters.RoutingTableFilter
    ordering_fields = ["name", "position", "id"]
    action_permissions = {
        "rows": ["tracking.view_routingtable"],
        "rows_write": ["tracking.change_routingtable", "tracking.add_routingtablerow", "tracking.change_routingtablerow"],
    }

    def get_queryset(self) -> QuerySet:
        return RoutingTable.objects.annotate(row_count=Count("rows")).order_by("campaign_id", "position", "id")

    def written(self, table: RoutingTable) -> RoutingTable:
        return self.get_queryset().get(pk=table.pk)

    @extend_schema(summary="List a lookup table's rows", responses=serializers.RoutingTableRowSerializer(many=True), filters=False)
    @action(detail=True, methods=["get"], filterset_class=None, ordering_fields=["value", "id"])
    def rows(self, request: Request, pk: str | None = None) -> Response:
        table = self.get_object()
        page = self.paginate_queryset(RoutingTableRow.objects.filter(table=table).order_by("value", "id"))
        return self.get_paginated_response(serializers.RoutingTableRowSerializer(page, many=True).data)

    @extend_schema(
        summary="Write many rows of a lookup table (all or nothing)",
        request=serializers.RoutingTableRowsWriteSerializer,
        responses={200: OpenApiResponse(description="{'written': n, 'deleted': n}")},
        filters=False,
    )
    @action(detail=True, methods=["post"], url_path="rows/import", filterset_class=None, pagination_class=None)
    def rows_write(self, request: Request, pk: str | None = None) -> Response:
        table = self.get_object()
        body = serializers.RoutingTableRowsWriteSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            result = lookup_services.routing_table_rows_import(
                table=table, lines=enumerate(body.validated_data["rows"], start=1), replace=body.validated_data["replace"],
            )
        except lookup_services.RowsError as exc:
            raise ValidationError({"rows": [f"row {n}, {column}: {why}" for n, column, why in exc.problems[:50]]}) from None
        return Response({"written": result.written, "deleted": result.deleted})


def _conversion_rule_create(*, fields):
    return campaign_services.campaign_part_save(part=ConversionRule(), fields=fields)


def _conversion_rule_update(*, conversion_rule: ConversionRule, fields):
    return campaign_services.campaign_part_save(part=conversion_rule, fields=fields)


def _conversion_rule_delete(*, conversion_rule: ConversionRule) -> None:
    campaign_services.campaign_part_delete(part=conversion_rule)


@extend_schema_view(
    list=extend_schema(summary="List conversion rules"),
    retrieve=extend_schema(summary="Get a conversion rule"),
    create=extend_schema(summary="Create a conversion rule"),
    update=extend_schema(summary="Replace a conversion rule"),
    partial_update=extend_schema(summary="Change some fields of a conversion rule"),
    destroy=extend_schema(summary="Delete a conversion rule (calls already valued keep their outcome)"),
    history=_history_schema("A conversion rule's history (its revenue, payout and de-dupe terms)"),
)
class ConversionRuleViewSet(MoneyHistoryViewSetMixin, ServiceWritesViewSetMixin, ScopedModelViewSet):
    """What a campaign's calls are worth: the rules deciding conversion, revenue and payout (timer, attempt, postback,
    de-dupe window and how many times a repeat caller may be paid in it). Staff only; every change is in the money
    audit trail (``.../history/``)."""

    write_services = (_conversion_rule_create, _conversion_rule_update, _conversion_rule_delete)
    service_arg = "conversion_rule"
    history_table = "conversionrule"
    queryset = ConversionRule.objects.order_by("campaign_id", "handler_id", "kind", "id")
    serializer_class = serializers.ConversionRuleSerializer
    filterset_class = filters.ConversionRuleFilter
    ordering_fields = ["id", "min_duration"]
