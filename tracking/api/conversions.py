"""API: convert a call (a CRM or a script confirms the sale), and conversion totals for reports."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from calltrack.api.fields import ScopedFieldsMixin
from calltrack.api.permissions import StaffPermissionsOrCollaborator
from calltrack.api.serializers import ModelSerializer
from calltrack.scoping import HIDDEN_CALL_FIELDS, hidden_call_fields, may, scope_for, visible_calls
from tracking.models import Call
from tracking.selectors import TOTALS_BY, conversion_totals
from tracking.services.conversions import ConversionRefused, call_convert


class CallConversionSerializer(ScopedFieldsMixin, ModelSerializer):
    margin = serializers.DecimalField(max_digits=11, decimal_places=2, read_only=True, help_text="Revenue minus payout.")

    class Meta:
        model = Call
        fields = [
            "id", "call_sid", "conversion_status", "converted", "converted_at", "revenue_converted", "payout_converted",
            "revenue", "payout", "margin", "conversion_reason", "payout_reason",
        ]
        read_only_fields = fields

    hidden_from = {kind: tuple(sorted(names)) for kind, names in HIDDEN_CALL_FIELDS.items()}


class RestateSerializer(serializers.Serializer):
    revenue = serializers.DecimalField(max_digits=10, decimal_places=2, min_value=0, required=False,
                                       help_text="The new revenue (only a call converted on the revenue side changes).")
    payout = serializers.DecimalField(max_digits=10, decimal_places=2, min_value=0, required=False,
                                      help_text="The new payout (only a call converted on the payout side changes).")

    def validate(self, attrs):
        if attrs.get("revenue") is None and attrs.get("payout") is None:
            raise serializers.ValidationError("give revenue, payout, or both")
        return attrs


class RefusalSerializer(serializers.Serializer):
    converted = serializers.BooleanField(help_text="Always false here: nothing changed.")
    detail = serializers.CharField(help_text="Why the call was not converted.")


class TotalsRowSerializer(ScopedFieldsMixin, serializers.Serializer):
    id = serializers.IntegerField(allow_null=True, help_text="The party's id; null for calls without one.")
    name = serializers.CharField(help_text="The party's name.")
    calls = serializers.IntegerField(help_text="Calls in the period.")
    converted = serializers.IntegerField(help_text="Of which converted.")
    revenue = serializers.DecimalField(max_digits=14, decimal_places=2, help_text="Revenue of the converted calls.")
    payout = serializers.DecimalField(max_digits=14, decimal_places=2, help_text="Payout of the converted calls.")
    margin = serializers.DecimalField(max_digits=14, decimal_places=2, help_text="Revenue minus payout.")

    # The money a collaborator may not see of a call it may not see in a total either (null for it).
    hidden_from = {kind: tuple(sorted(names)) for kind, names in HIDDEN_CALL_FIELDS.items()}


class TotalsQuerySerializer(serializers.Serializer):
    by = serializers.ChoiceField(choices=TOTALS_BY)
    start = serializers.DateTimeField(required=False)
    end = serializers.DateTimeField(required=False)


def calls_visible_to(user):
    """A source or handler collaborator sees only its own calls (even when marked staff to use the admin);
    other staff every call of the account they act in; anyone else none. The scoping is calltrack.scoping's, as in the rest of the API."""
    scope = scope_for(user)
    if scope.is_collaborator or user.is_staff:
        return visible_calls(Call.objects.all(), scope)  # the account's calls (a collaborator's own)
    return Call.objects.none()


class CallConversionView(APIView):
    """POST /api/v1/calls/{id}/conversion: the call's postback rules convert it, once.

    Staff, or the handler collaborator the call went to. 200: converted; 409: already converted (nothing
    changes); 422: refused, with the reason (after the postback time limit, repeat caller, no postback rule).
    """

    # Staff with the change_call permission, or a handler collaborator (for the calls routed to it; a source
    # collaborator finds no call here, a 404 like any call it cannot see).
    permission_classes = [StaffPermissionsOrCollaborator]
    staff_permissions = {"POST": ["tracking.change_call"], "DELETE": ["tracking.change_call"], "PATCH": ["tracking.change_call"]}
    collaborator_kinds = ("source", "handler")

    def _call(self, request: Request, pk: int) -> Call:
        scope = scope_for(request.user)
        if scope.source_id is not None:
            queryset = Call.objects.none()  # a source does not confirm (or revoke) sales for handlers
        elif scope.handler_id is not None:
            queryset = visible_calls(Call.objects.all(), scope)
        else:
            queryset = visible_calls(Call.objects.all(), scope) if request.user.is_staff else Call.objects.none()
        return get_object_or_404(queryset, pk=pk)

    @extend_schema(
        summary="Revoke a call's conversion (the sale fell through): not converted, no revenue, no payout; the ad platforms "
                "that got it are sent a retraction",
        request=None,
        parameters=[OpenApiParameter("reason", str, description="Why, in words (kept on the call).")],
        responses={200: CallConversionSerializer, 422: RefusalSerializer, 404: OpenApiResponse(description="No such call")},
    )
    def delete(self, request: Request, pk: int) -> Response:
        from tracking.services.conversion_changes import call_conversion_revoke

        call = self._call(request, pk)
        reason = str(request.query_params.get("reason", ""))[:200].replace("\x00", "")
        try:
            call = call_conversion_revoke(call=call, source="api", reason=reason)
        except ConversionRefused as exc:
            return Response({"converted": False, "detail": str(exc)}, status=exc.status_code)
        return Response(CallConversionSerializer(call, context={"scope": scope_for(request.user)}).data, status=status.HTTP_200_OK)

    @extend_schema(
        summary="Restate a converted call's value (revenue and/or payout); the ad platforms that got it are sent a "
                "restatement (Google Ads, Microsoft Advertising; GA4 and Meta take none)",
        request=RestateSerializer,
        responses={200: CallConversionSerializer, 400: OpenApiResponse(description="Bad values"), 403: OpenApiResponse(description="Staff only"),
                   422: RefusalSerializer, 404: OpenApiResponse(description="No such call")},
    )
    def patch(self, request: Request, pk: int) -> Response:
        from tracking.services.conversion_changes import call_conversion_restate

        if not may(request.user, "call.restate"):
            raise PermissionDenied("restating a conversion's value is for staff with the change call permission")
        call = self._call(request, pk)
        values = RestateSerializer(data=request.data)
        values.is_valid(raise_exception=True)
        try:
            call = call_conversion_restate(call=call, source="api", revenue=values.validated_data.get("revenue"),
                                           payout=values.validated_data.get("payout"))
        except ConversionRefused as exc:
            return Response({"converted": False, "detail": str(exc)}, status=exc.status_code)
        return Response(CallConversionSerializer(call, context={"scope": scope_for(request.user)}).data, status=status.HTTP_200_OK)

    @extend_schema(
        summary="Convert a call (its postback rules decide revenue and payout), once",
        request=None,
        responses={200: CallConversionSerializer, 409: RefusalSerializer, 422: RefusalSerializer, 404: OpenApiResponse(description="No such call")},
    )
    def post(self, request: Request, pk: int) -> Response:
        scope = scope_for(request.user)
        call = self._call(request, pk)
        try:
            result = call_convert(call=call, source="api")
        except ConversionRefused as exc:
            return Response({"converted": False, "detail": str(exc)}, status=exc.status_code)
        return Response(CallConversionSerializer(result.call, context={"scope": scope}).data, status=status.HTTP_200_OK)


class ConversionTotalsView(APIView):
    """GET /api/v1/conversions/totals?by=source|handler|campaign[&start=&end=]: calls, conversions, revenue,
    payout and margin per party, over the calls the user may see."""

    # Staff with the view_call permission, or any collaborator (over its own calls).
    permission_classes = [StaffPermissionsOrCollaborator]
    staff_permissions = {"GET": ["tracking.view_call"]}
    collaborator_kinds = ("source", "handler")

    @extend_schema(
        summary=_("Conversion totals per source, handler or campaign"),
        parameters=[
            OpenApiParameter("by", str, enum=list(TOTALS_BY), required=True, description="Group the totals by this party."),
            OpenApiParameter("start", str, description="ISO 8601; calls started at or after"),
            OpenApiParameter("end", str, description="ISO 8601; calls started before"),
        ],
        responses={200: TotalsRowSerializer(many=True)},
    )
    def get(self, request: Request) -> Response:
        query = TotalsQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        calls = calls_visible_to(request.user)
        scope = scope_for(request.user)
        if not request.user.is_staff and not scope.is_collaborator:
            raise PermissionDenied("Only staff and collaborators see totals.")
        by = query.validated_data["by"]
        if by in hidden_call_fields(scope):
            raise PermissionDenied(f"A {scope.kind} collaborator does not see its calls' {by}s: group by {scope.kind}.")
        rows = conversion_totals(by=by, calls=calls, start=query.validated_data.get("start"), end=query.validated_data.get("end"))
        return Response(TotalsRowSerializer(rows, many=True, context={"scope": scope}).data)

