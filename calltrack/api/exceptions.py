"""The API's one exception handler: domain errors become 400s that name the field and the reason."""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import NON_FIELD_ERRORS
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import InterfaceError, OperationalError
from django.db.models import ProtectedError, RestrictedError
from rest_framework import status
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import exception_handler as drf_exception_handler

from calltrack.errors import ServiceError
from calltrack.phone import InvalidPhoneNumber

log = logging.getLogger("calltrack.api")


def validation_error_data(exc: DjangoValidationError) -> dict[str, list[str]]:
    """``{"field": ["reason", ...]}``; errors not tied to a field go under ``non_field_errors``."""
    if hasattr(exc, "error_dict"):
        data = {}
        for field, messages in exc.message_dict.items():
            key = api_settings.NON_FIELD_ERRORS_KEY if field == NON_FIELD_ERRORS else field
            data.setdefault(key, []).extend(messages)
        return data
    return {api_settings.NON_FIELD_ERRORS_KEY: list(exc.messages)}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler, plus: Django ValidationError (model ``clean()``, services) -> 400 by field;
    InvalidPhoneNumber and a ServiceError (e.g. the number lifecycle's NumberError) -> 400; deleting a row others still use (PROTECT) -> 409 naming them."""
    if isinstance(exc, DjangoValidationError):
        return Response(validation_error_data(exc), status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, ServiceError):
        return Response({api_settings.NON_FIELD_ERRORS_KEY: exc.problems or [str(exc)]}, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, InvalidPhoneNumber):
        return Response({api_settings.NON_FIELD_ERRORS_KEY: [str(exc)]}, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, (ProtectedError, RestrictedError)):
        users = sorted({f"{obj._meta.verbose_name} '{obj}'" for obj in list(exc.protected_objects if isinstance(exc, ProtectedError) else exc.restricted_objects)[:5]})
        return Response(
            {"detail": f"Cannot delete: still used by {', '.join(users)}. Remove those references first."},
            status=status.HTTP_409_CONFLICT,
        )
    if isinstance(exc, (OperationalError, InterfaceError)):
        # The database is down or refused the connection: say so (and that a retry may work), not a 500 page.
        log.error("API %s: database unavailable: %r", context["request"].path if context.get("request") else "?", exc)
        response = Response({"detail": "The database is temporarily unavailable; try again shortly."}, status=status.HTTP_503_SERVICE_UNAVAILABLE)
        response["Retry-After"] = "30"
        return response
    return drf_exception_handler(exc, context)
