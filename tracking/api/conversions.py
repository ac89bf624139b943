"""API: convert a call (a CRM or a script confirms the sale), and conversion totals for reports."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from tracking.models import Call
from tracking.selectors import TOTALS_BY, conversion_totals
from tracking.services.conversions import ConversionRefused, call_convert


class CallConversionSerializer(serializers.ModelSerializer):
    margin = serializers.DecimalField(max_digits=11, decimal_places=2, read_only=True)

    class Meta:
        model = Call
        fields = [
            "id", "call_sid", "conversion_status", "converted", "converted_at", "revenue_converted", "payout_converted",
            "revenue", "payout", "margin", "conversion_reason", "payout_reason",
        ]
        read_only_fields = fields


class RefusalSerializer(serializers.Serializer):
    converted = serializers.BooleanField()
    detail = serializers.CharField()


class TotalsRowSerializer(serializers.Serializer):
    id = serializers.IntegerField(allow_null=True)
    name = serializers.CharField()
    calls = serializers.IntegerField()
    converted = serializers.IntegerField()
    revenue = serializers.DecimalField(max_digits=14, decimal_places=2)
    payout = serializers.DecimalField(max_digits=14, decimal_places=2)
    margin = serializers.DecimalField(max_digits=14, decimal_places=2)


class TotalsQuerySerializer(serializers.Serializer):
    by = serializers.ChoiceField(choices=TOTALS_BY)
    start = serializers.DateTimeField(required=False)
    end = serializers.DateTimeField(required=False)


def calls_visible_to(user):
    """Staff see every call; a source or handler collaborator only its own; anyone else none."""
    if user.is_staff:
        return Call.objects.all()
    collaborator = getattr(user, "collaborator", None)
    if collaborator is None:
        return Call.objects.none()
    if collaborator.handler_id:
        return Call.objects.filter(handler_id=collaborator.handler_id)
    return Call.objects.filter(source_id=collaborator.source_id)


class CallConversionView(APIView):
    """POST /api/v1/calls/{id}/conversion: the call's postback rules convert it, once.

    Staff, or the handler collaborator the call went to. 200: converted; 409: already converted (nothing
    changes); 422: refused, with the reason (after the postback time limit, repeat caller, no postback rule).
    """

    permission_classes = [IsAuthenticated]

    @extend_schema(
        request=None,
        responses={200: CallConversionSerializer, 409: RefusalSerializer, 422: RefusalSerializer, 404: OpenApiResponse(description="No such call")},
    )
    def post(self, request: Request, pk: int) -> Response:
        user = request.user
        collaborator = getattr(user, "collaborator", None)
        queryset = Call.objects.all() if user.is_staff else Call.objects.filter(handler_id=getattr(collaborator, "handler_id", None) or -1)
        call = get_object_or_404(queryset, pk=pk)
        try:
            result = call_convert(call=call, source="api")
        except ConversionRefused as exc:
            return Response({"converted": False, "detail": str(exc)}, status=exc.status_code)
        return Response(CallConversionSerializer(result.call).data, status=status.HTTP_200_OK)


class ConversionTotalsView(APIView):
    """GET /api/v1/conversions/totals?by=source|handler|campaign[&start=&end=]: calls, conversions, revenue,
    payout and margin per party, over the calls the user may see."""

    permission_classes = [IsAuthenticated]

    @extend_schema(
        parameters=[
            OpenApiParameter("by", str, enum=list(TOTALS_BY), required=True),
            OpenApiParameter("start", str, description="ISO 8601; calls started at or after"),
            OpenApiParameter("end", str, description="ISO 8601; calls started before"),
        ],
        responses={200: TotalsRowSerializer(many=True)},
    )
    def get(self, request: Request) -> Response:
        query = TotalsQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        calls = calls_visible_to(request.user)
        if not request.user.is_staff and getattr(request.user, "collaborator", None) is None:
            raise PermissionDenied("Only staff and collaborators see totals.")
        rows = conversion_totals(by=query.validated_data["by"], calls=calls, start=query.validated_data.get("start"), end=query.validated_data.get("end"))
        return Response(TotalsRowSerializer(rows, many=True).data)

