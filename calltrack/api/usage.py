"""GET /api/v1/usage/: the account's usage for rebilling in a calendar month (``calltrack.usage``, the admin's usage
page's figures). Every member of the account, billing users included (``usage.view``); no collaborator. A superuser
asks for every account with ``all=true``."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from calltrack import usage
from calltrack.api.permissions import GateActionPermission
from calltrack.db_router import on_replica
from calltrack.scoping import scope_for


class UsageQuerySerializer(serializers.Serializer):
    month = serializers.CharField(required=False, allow_blank=True, max_length=16, help_text="YYYY-MM; default: the current month.")
    all = serializers.BooleanField(required=False, default=False, help_text="Every account (superusers only).")

    def validate_month(self, value: str) -> usage.Month | None:
        if not value:
            return None
        try:
            return usage.Month.parse(value)
        except usage.UsageError as exc:
            raise ValidationError(str(exc)) from exc


class AccountUsageSerializer(serializers.Serializer):
    account = serializers.IntegerField(source="account_id", help_text="The account's id.")
    account_slug = serializers.CharField(help_text="The account's slug.")
    account_name = serializers.CharField(help_text="The account's name.")
    time_zone = serializers.CharField(help_text="The zone the account's month is read in.")
    start = serializers.DateTimeField(help_text="The month's first instant in the account's zone.")
    end = serializers.DateTimeField(help_text="The next month's first instant (excluded).")
    numbers = serializers.IntegerField(help_text="Tracking numbers held for at least part of a day in the month.")
    number_days = serializers.IntegerField(
        help_text="Days each tracking number was held (bought or ported in, until released; part of a day counts the day), summed; "
                  "the current month up to now.")
    calls = serializers.IntegerField(help_text="Inbound calls that started in the month (test calls left out).")
    minutes = serializers.IntegerField(help_text="Billable inbound minutes: each call's duration rounded up to the minute, summed.")
    texts_in = serializers.IntegerField(help_text="Texts received.")
    texts_out = serializers.IntegerField(help_text="Texts sent (replies, auto-replies, keyword answers, forwards), not those the carrier refused.")
    recordings = serializers.IntegerField(help_text="Call recordings made in the month (ready, or deleted since by retention).")
    recordings_stored = serializers.IntegerField(help_text="Call recordings kept at the month's end (so far, for the current month).")
    ad_uploads = serializers.IntegerField(help_text="Conversions sent to ad platforms in the month.")


class UsageSerializer(serializers.Serializer):
    month = serializers.CharField(help_text="The month, YYYY-MM.")
    accounts = AccountUsageSerializer(many=True, help_text="One entry per account: the requester's, or every account (all=true).")


class UsageView(APIView):
    """The month's usage of the account acted in (a superuser with ``all=true``: of every account)."""

    permission_classes = [GateActionPermission]
    gate_action = "usage.view"
    usage_view = True  # a billing user's one endpoint (calltrack.api.permissions)

    @extend_schema(
        summary="Usage for rebilling: numbers held, inbound calls and minutes, texts, recordings, ad-platform uploads in a month",
        parameters=[
            OpenApiParameter("month", str, description="The calendar month, YYYY-MM (the account's time zone); default: the current month."),
            OpenApiParameter("all", bool, description="Every account, each in its own time zone (superusers only)."),
        ],
        responses={200: UsageSerializer},
    )
    @on_replica
    def get(self, request: Request) -> Response:
        query = UsageQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        scope = scope_for(request.user)
        every = query.validated_data["all"]
        if every and not request.user.is_superuser:
            raise ValidationError({"all": ["Only a superuser may read every account's usage."]})
        month = query.validated_data.get("month")
        if month is None:
            month = usage.current_month(usage.zone_of(scope.account_id))
        ids = None if every else [scope.account_id] if scope.account_id is not None else []
        rows = usage.accounts_usage(month, account_ids=ids)
        return Response(UsageSerializer({"month": str(month), "accounts": rows}).data)
