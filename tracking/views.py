"""Plain Django views of tracking: the signed postback URL handlers' CRMs call."""

from __future__ import annotations

import re

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from calltrack.audit import audit_context
from calltrack.phone import InvalidPhoneNumber, to_e164
from tracking.models import Call, TextMessage
from tracking.services.conversions import ConversionRefused, call_convert, postback_token_valid
from tracking.services.texts import text_convert

TOKEN_HEADER = "X-Calltrack-Postback-Token"
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


@csrf_exempt
@require_http_methods(["GET", "POST"])
def postback(request: HttpRequest, handler_id: int, token: str = "") -> JsonResponse:
    """``/postback/<handler_id>/<token>/?call_id=...`` (or ``call_sid=``, or ``caller_number=`` for the latest
    call of that caller to this handler): the handler's CRM confirms a sale; the call converts once.

    The token is the handler's HMAC (see ``postback_token``), so the URL alone authorises that handler, and
    only for its own calls. GET is accepted because many CRMs can only fire a URL. Answers JSON: 200
    converted, 409 already converted (nothing changes), 422 refused with the reason, 404 no such call of
    this handler, 403 bad token, 400 no call named.

    The token may come in the ``X-Calltrack-Postback-Token`` header instead (``/postback/<handler id>/``), so it
    stays out of access logs.
    """
    token = token or request.headers.get(TOKEN_HEADER, "")
    if not postback_token_valid(handler_id=handler_id, token=token):
        return JsonResponse({"converted": False, "detail": "invalid postback token"}, status=403)
    params = request.POST if request.method == "POST" else request.GET
    if "message_sid" in params:
        return _text_postback(handler_id, params.get("message_sid", "").strip())
    calls = Call.objects.filter(handler_id=handler_id)
    call_id, call_sid, caller = params.get("call_id", "").strip(), params.get("call_sid", "").strip(), params.get("caller_number", "").strip()
    if any(_UNSTORABLE.search(value) for value in (call_id, call_sid, caller)):
        return JsonResponse({"converted": False, "detail": "call_id, call_sid and caller_number may not hold NUL bytes"}, status=400)
    if len(call_sid) > 64 or len(caller) > 40:
        return JsonResponse({"converted": False, "detail": "call_sid or caller_number is too long"}, status=400)
    if call_id:
        if not (call_id.isascii() and call_id.isdigit() and len(call_id) <= 18):
            return JsonResponse({"converted": False, "detail": "call_id must be a number"}, status=400)
        call = calls.filter(pk=int(call_id)).first()
    elif call_sid:
        call = calls.filter(call_sid=call_sid).first()
    elif caller:
        try:
            caller = to_e164(caller)
        except InvalidPhoneNumber as exc:
            return JsonResponse({"converted": False, "detail": f"caller_number: {exc}"}, status=400)
        call = calls.filter(caller_number=caller).order_by("-started_at").first()
    else:
        return JsonResponse({"converted": False, "detail": "name the call: call_id, call_sid or caller_number"}, status=400)
    if call is None:
        return JsonResponse({"converted": False, "detail": "no such call for this handler"}, status=404)
    action = params.get("action", "convert").strip() or "convert"
    if action not in ("convert", "revoke"):
        return JsonResponse({"converted": False, "detail": "action is convert (the default) or revoke"}, status=400)
    if action == "revoke":
        return _postback_revoke(call=call, handler_id=handler_id, reason=params.get("reason", ""))
    try:
        with audit_context(origin="postback", actor=f"handler #{handler_id}'s postback"):
            result = call_convert(call=call, source="postback")
    except ConversionRefused as exc:
        return JsonResponse({"converted": False, "call_id": call.pk, "detail": str(exc)}, status=exc.status_code)
    c = result.call
    return JsonResponse(
        {"converted": True, "call_id": c.pk, "sides": list(result.converted_sides), "revenue": f"{c.revenue:.2f}", "payout": f"{c.payout:.2f}"}
    )


def _postback_revoke(*, call: Call, handler_id: int, reason: str) -> JsonResponse:
    """``action=revoke``: the handler's CRM says the sale fell through. The conversion is revoked once (a repeated
    postback answers 422, nothing changes) and the ad platforms that got it are sent a retraction."""
    from tracking.services.conversion_changes import call_conversion_revoke

    reason = _UNSTORABLE.sub("", str(reason))[:200]
    try:
        with audit_context(origin="postback", actor=f"handler #{handler_id}'s postback"):
            revoked = call_conversion_revoke(call=call, source="postback", reason=reason)
    except ConversionRefused as exc:
        return JsonResponse({"converted": False, "call_id": call.pk, "detail": str(exc)}, status=exc.status_code)
    return JsonResponse({"converted": False, "revoked": True, "call_id": revoked.pk})


def _text_postback(handler_id: int, message_sid: str) -> JsonResponse:
    """``?message_sid=SM...``: the handler's CRM confirms a sale on a text forwarded to it (issue 29); once."""
    if not message_sid or len(message_sid) > 64 or _UNSTORABLE.search(message_sid):
        return JsonResponse({"converted": False, "detail": "message_sid must be a MessageSid"}, status=400)
    text = TextMessage.objects.filter(handler_id=handler_id, message_sid=message_sid, direction="inbound").first()
    if text is None:
        return JsonResponse({"converted": False, "detail": "no such text for this handler"}, status=404)
    try:
        with audit_context(origin="postback", actor=f"handler #{handler_id}'s postback"):
            text = text_convert(text=text, source="the handler's postback")
    except ConversionRefused as exc:
        return JsonResponse({"converted": False, "text_id": text.pk, "detail": str(exc)}, status=exc.status_code)
    return JsonResponse({"converted": True, "text_id": text.pk, "revenue": f"{text.revenue:.2f}", "payout": f"{text.payout:.2f}"})
