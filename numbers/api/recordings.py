"""``GET /api/v1/calls/{id}/recording/``: a call's recording, streamed through calltrack.

In the numbers layer because playing needs the carrier (``calltrack.numbers.services.recordings``); the call
itself, and who may see it, are tracking's and ``calltrack/scoping.py``'s.
"""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.generics import GenericAPIView
from rest_framework.negotiation import BaseContentNegotiation

from calltrack.api.views import ScopedViewSetMixin
from calltrack.numbers.services import recordings
from calltrack.scoping import can_play_recordings, visible_recordings
from tracking.models import Call


class _AnyAccept(BaseContentNegotiation):
    """Audio players send ``Accept: audio/*`` or ``*/*``: answer with the audio (errors as JSON) whatever they ask."""

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class CallRecordingView(ScopedViewSetMixin, GenericAPIView):
    """A call's recording. Staff need ``tracking.view_call`` and "Can listen to call recordings"
    (``tracking.listen_recording``); collaborators hear the calls they see. Another collaborator's call, or one
    without a playable recording, is a 404."""

    queryset = Call.objects.all()
    collaborator_kinds = ("source", "handler")
    content_negotiation_class = _AnyAccept
    pagination_class = None
    filter_backends: list = []

    def get_queryset(self) -> QuerySet:
        return visible_recordings(Call.objects.all(), self.scope)

    @extend_schema(
        summary="Play the call's recording",
        description="The recording's audio, streamed through calltrack (the carrier's credentials never leave the server): "
        "audio/mpeg for Twilio, audio/wav for the local carrier. Staff need the 'Can listen to call recordings' "
        "permission; collaborators hear the calls they see. 404 when the call has no playable recording.",
        responses={(200, "audio/mpeg"): OpenApiTypes.BINARY, (200, "audio/wav"): OpenApiTypes.BINARY,
                   404: OpenApiResponse(description="No such call, or no playable recording.")},
    )
    def get(self, request, pk: int) -> StreamingHttpResponse:
        if not can_play_recordings(request.user):
            raise PermissionDenied("You may not listen to call recordings (permission 'Can listen to call recordings').")
        call = self.get_object()
        try:
            audio = recordings.call_recording_audio(call=call)
        except recordings.RecordingUnavailable as exc:
            raise NotFound(f"No playable recording: {exc}") from None
        response = StreamingHttpResponse(audio.chunks, content_type=audio.content_type)
        if audio.size is not None:
            response["Content-Length"] = str(audio.size)
        extension = "mp3" if audio.content_type == "audio/mpeg" else "wav"
        response["Content-Disposition"] = f'inline; filename="call-{call.pk}-recording.{extension}"'
        response["Cache-Control"] = "private, no-store"
        response["X-Content-Type-Options"] = "nosniff"
        return response
