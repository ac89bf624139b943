"""API views for receiving numbers, tracking numbers, pools (with bulk membership and live stats) and sessions."""

from __future__ import annotations

from django.db.models import Count, F, Q, QuerySet, Subquery
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from calltrack import phone
from calltrack.api.serializers import BulkNumbersSerializer
from calltrack.api.views import ScopedModelViewSet, ScopedReadOnlyModelViewSet, ServiceWritesViewSetMixin
from calltrack.models import Account
from calltrack.numbers.api import filters, serializers
from calltrack.numbers.models import NumberPool, NumberSession, NumberStatus, ReceivingNumber, TrackingNumber
from calltrack.numbers.services import pool_membership, records
from calltrack.scoping import visible_pools, visible_sessions, visible_tracking_numbers


@extend_schema_view(
    list=extend_schema(summary="List receiving numbers"),
    retrieve=extend_schema(summary="Get a receiving number"),
    create=extend_schema(summary="Create a receiving number"),
    update=extend_schema(summary="Replace a receiving number"),
    partial_update=extend_schema(summary="Change some fields of a receiving number"),
    destroy=extend_schema(summary=_("Delete a receiving number (refused while a handler forwards to it)")),
)
class ReceivingNumberViewSet(ServiceWritesViewSetMixin, ScopedModelViewSet):
    """The real lines calls are forwarded to, with extension digits, whisper and no-answer routing. Staff only."""

    write_services = (records.receiving_number_create, records.receiving_number_update, records.receiving_number_delete)
    service_arg = "receiving_number"
    queryset = ReceivingNumber.objects.order_by("label", "id")
    serializer_class = serializers.ReceivingNumberSerializer
    filterset_class = filters.ReceivingNumberFilter
    ordering_fields = ["label", "number", "created_at", "id"]


@extend_schema_view(
    list=extend_schema(summary="List tracking numbers"),
    retrieve=extend_schema(summary="Get a tracking number"),
    create=extend_schema(summary="Add a tracking number through the carrier (connect, buy or record)"),
    update=extend_schema(summary="Replace a tracking number's settings"),
    partial_update=extend_schema(summary="Change some settings of a tracking number"),
    destroy=extend_schema(summary="Forget a released tracking number (a held number must be released first)"),
)
class TrackingNumberViewSet(ScopedModelViewSet):
    """Numbers callers dial. Source collaborators read their own static and pool numbers."""

    serializer_class = serializers.TrackingNumberSerializer
    filterset_class = filters.TrackingNumberFilter
    ordering_fields = ["number", "label", "created_at", "last_assigned_at", "id"]
    collaborator_kinds = ("source",)

    def get_queryset(self) -> QuerySet:
        return visible_tracking_numbers(TrackingNumber.objects.order_by("number"), self.scope)

    def perform_create(self, serializer):
        # Through the configured carrier, as the admin's "Add": the number records the carrier that holds it.
        fields = dict(serializer.validated_data)
        how = fields.pop("provisioning", records.Provisioning.CONNECT)
        serializer.instance = records.tracking_number_provision(
            tracking_number=TrackingNumber(**fields), how=how, actor=self.request.user, where="through the API",
        )

    def perform_update(self, serializer):
        fields = {k: v for k, v in serializer.validated_data.items() if k != "provisioning"}
        serializer.instance = records.tracking_number_update(
            tracking_number=serializer.instance, fields=fields, actor=self.request.user, reason="Changed through the API"
        )

    def perform_destroy(self, instance):
        records.tracking_number_delete(tracking_number=instance)


_MEMBERSHIP_PERMS = ["numbers.change_numberpool", "numbers.change_trackingnumber"]


@extend_schema_view(
    list=extend_schema(summary="List pools"),
    retrieve=extend_schema(summary="Get a pool"),
    create=extend_schema(summary="Create a pool"),
    update=extend_schema(summary="Replace a pool's settings"),
    partial_update=extend_schema(summary="Change some settings of a pool"),
    destroy=extend_schema(summary="Delete an empty pool"),
)
class NumberPoolViewSet(ServiceWritesViewSetMixin, ScopedModelViewSet):
    """Number pools for dynamic number insertion. Source collaborators read their own pools, numbers and stats."""

    write_services = (records.pool_create, records.pool_update, records.pool_delete)
    service_arg = "pool"
    serializer_class = serializers.NumberPoolSerializer
    filterset_class = filters.NumberPoolFilter
    ordering_fields = ["name", "created_at", "id"]
    collaborator_kinds = ("source",)
    action_permissions = {
        "numbers": ["numbers.view_numberpool", "numbers.view_trackingnumber"],
        "stats": ["numbers.view_numberpool"],
        "add_numbers": _MEMBERSHIP_PERMS,
        "remove_numbers": _MEMBERSHIP_PERMS,
    }

    def get_queryset(self) -> QuerySet:
        # The tag name's parts in the list's own statement: the account's slug, and the install's first account.
        qs = NumberPool.objects.annotate(
            size=Count("numbers", filter=Q(numbers__status=NumberStatus.ACTIVE)), account_slug=F("account__slug"),
            install_first_account_id=Subquery(Account.objects.order_by("pk").values("pk")[:1]),
        ).order_by("name", "id")
        qs = qs.prefetch_related("parameters")
        return visible_pools(qs, self.scope)

    def written(self, pool: NumberPool) -> NumberPool:
        return self.get_queryset().get(pk=pool.pk)  # with its size annotation

    @extend_schema(
        summary="List a pool's numbers",
        responses=serializers.TrackingNumberSerializer(many=True),
        filters=False,
    )
    @action(detail=True, methods=["get"], filterset_class=None, ordering_fields=["number", "last_assigned_at", "id"])
    def numbers(self, request: Request, pk: str | None = None) -> Response:
        pool = self.get_object()
        qs = visible_tracking_numbers(TrackingNumber.objects.filter(pool=pool), self.scope).order_by("number")
        page = self.paginate_queryset(qs)
        data = serializers.TrackingNumberSerializer(page, many=True, context=self.get_serializer_context()).data
        return self.get_paginated_response(data)

    def _change(self, request: Request, service) -> Response:
        pool = self.get_object()
        body = BulkNumbersSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        wanted = body.validated_data["numbers"]
        changed = service(pool=pool, numbers=wanted, actor=request.user, actor_label="api")
        now = TrackingNumber.objects.filter(number__in=[phone.to_e164(n) for n in wanted], account_id=pool.account_id).order_by("number")
        out = serializers.PoolNumbersChangeSerializer(
            {"pool": pool.pk, "changed": changed, "numbers": now}, context=self.get_serializer_context()
        )
        return Response(out.data, status=status.HTTP_200_OK)

    @extend_schema(
        summary="Add many numbers to a pool (all or nothing)",
        description="Each number must be active and serve no other pool (a static number becomes a pool number); "
        "numbers already in this pool are left as they are. If any number is refused, none is added and the 400 "
        "lists every refusal.",
        request=BulkNumbersSerializer,
        responses={200: serializers.PoolNumbersChangeSerializer},
        filters=False,
    )
    @action(detail=True, methods=["post"], url_path="numbers/add", filterset_class=None, pagination_class=None)
    def add_numbers(self, request: Request, pk: str | None = None) -> Response:
        return self._change(request, pool_membership.pool_numbers_add)

    @extend_schema(
        summary="Remove many numbers from a pool (all or nothing; they go to quarantine)",
        description="Every number must belong to this pool. Removed numbers are quarantined for "
        "CALLTRACK_QUARANTINE_DAYS (no visitor is shown them; calls still reach the campaign), then released.",
        request=BulkNumbersSerializer,
        responses={200: serializers.PoolNumbersChangeSerializer},
        filters=False,
    )
    @action(detail=True, methods=["post"], url_path="numbers/remove", filterset_class=None, pagination_class=None)
    def remove_numbers(self, request: Request, pk: str | None = None) -> Response:
        return self._change(request, pool_membership.pool_numbers_remove)

    @extend_schema(summary="A pool's live stats: size, numbers in use, overflows", responses=serializers.PoolStatsSerializer, filters=False)
    @action(detail=True, methods=["get"], filterset_class=None, pagination_class=None)
    def stats(self, request: Request, pk: str | None = None) -> Response:
        pool = self.get_object()
        live = NumberSession.objects.filter(pool=pool).live(timezone.now())
        counts = live.aggregate(
            live_sessions=Count("id"),
            in_use=Count("tracking_number", distinct=True, filter=Q(tracking_number__pool=pool, tracking_number__status=NumberStatus.ACTIVE)),
        )
        data = {
            "size": pool.size,
            "in_use": counts["in_use"],
            "available": max(pool.size - counts["in_use"], 0),
            "live_sessions": counts["live_sessions"],
            "overflows": pool.overflow_count,
        }
        return Response(serializers.PoolStatsSerializer(data).data)


@extend_schema_view(
    list=extend_schema(summary="List visitor sessions (newest first)"),
    retrieve=extend_schema(summary="Get a visitor session"),
)
class NumberSessionViewSet(ScopedReadOnlyModelViewSet):
    """Which pool number was shown to which web visitor, with their marketing data. Read-only."""

    serializer_class = serializers.NumberSessionSerializer
    filterset_class = filters.NumberSessionFilter
    ordering_fields = ["started_at", "last_seen_at", "expires_at", "id"]
    collaborator_kinds = ("source",)

    def get_queryset(self) -> QuerySet:
        return visible_sessions(NumberSession.objects.select_related("tracking_number").order_by("-started_at", "-id"), self.scope)
