"""Twilio's voice webhooks. Thin: check the signature, read the form, call ``routing.services``, answer TwiML.

Every path answers TwiML with ``Content-Type: text/xml``. A bad or missing signature is refused with 403
before anything is read or written. Any failure while routing (an exception, a missing parameter, an
unknown number, a database error) is logged with the CallSid and answered with the fail-safe dial.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden, QueryDict
from django.views.decorators.csrf import csrf_exempt

from calltrack import metrics, phone
from calltrack.carriers import RECORDING_SID
from calltrack.logs import log_context_pop, log_context_push
from calltrack.numbers.services import texts as outbound_texts
from routing import services, signatures, twiml
from routing.services import texts as text_services
from routing.services.common import duration_seconds, test_call_options_read
from routing.services.turn import Turn
from routing.store.voice import voice_transaction_begin
from tracking.services import recordings as recording_services

log = logging.getLogger("calltrack.routing")


def public_base_url(request: HttpRequest) -> str:
    """The scheme and host Twilio called: CALLTRACK_PUBLIC_BASE_URL, else the request's own.

    Forwarded headers count only as the settings say, as in Django's own ``get_host()``: X-Forwarded-Proto with
    SECURE_PROXY_SSL, X-Forwarded-Host with USE_X_FORWARDED_HOST, and the host must be in ALLOWED_HOSTS (else 400).
    Behind several proxies that each append to X-Forwarded-Host (``a, b``), CALLTRACK_PROXY_HOPS=N keeps the N-th entry
    from the right, the one our outermost proxy wrote (calltrack.middleware.ProxyHopsMiddleware); without it such a
    list is refused like any unknown host.
    """
    if settings.CALLTRACK_PUBLIC_BASE_URL:
        return settings.CALLTRACK_PUBLIC_BASE_URL.rstrip("/")
    return f"{request.scheme}://{request.get_host()}"


def called_url(request: HttpRequest) -> str:
    """The exact URL Twilio signed: our public base, the path, and the query string byte for byte as sent."""
    query = request.META.get("QUERY_STRING", "")
    return public_base_url(request) + request.path + (f"?{query}" if query else "")


def signature_valid(request: HttpRequest) -> bool:
    """Twilio's signature, by the install's auth token or by the subaccount's of the account the number belongs to
    (``routing.signatures``)."""
    return signatures.signature_valid(request, called_url(request))


def _xml(body: str) -> HttpResponse:
    return HttpResponse(body, content_type=twiml.CONTENT_TYPE)


# The timeline steps that say what a webhook decided, as the outcomes counted by calltrack_decisions_total.
DECISION_STEPS = {
    "call.routed": "routed", "routing.queued": "queued", "ivr.menu": "menu", "call.spam_challenge": "challenge",
    "call.rejected": "rejected", "call.voicemail": "voicemail", "call.unanswered": "unanswered",
    "call.number_quarantined": "failsafe", "call.campaign_disabled": "failsafe", "call.source_paused": "failsafe",
}
# The steps of a decision to dial the fail-safe, as the causes counted by calltrack_failsafe_answers_total.
FAILSAFE_STEPS = {"call.number_quarantined": "quarantined", "call.campaign_disabled": "campaign_disabled", "call.source_paused": "source_paused"}


def _run(view: Callable[..., str], request: HttpRequest, params: QueryDict, links: services.Links, *, insert_first: bool) -> HttpResponse:
    """The view as one unit of work (a ``Turn``) in one transaction: it decides, then the turn's writes are flushed at
    the end (``routing.store.voice.turn_flush``: the call's fields and the timeline steps, one statement on
    PostgreSQL). Tried the cheap way first and again, with a fresh turn, only when needed:

    - ``insert_first`` (``/voice/incoming``): the call is inserted without looking it up first; a retried CallSid fails
      on the unique index (IntegrityError) and the view runs again with the look-up;
    - dial steps lock capped handlers without a savepoint (``Turn.step_savepoints`` off): a step found full under its
      locks (``StepsRetry``) rolls the transaction back and the view runs again with a savepoint per step.
    """
    savepoints = False
    while True:
        turn = Turn(links=links, insert_first=insert_first, step_savepoints=savepoints, signed_account_id=signatures.signed_account_id(request))
        try:
            with transaction.atomic():
                voice_transaction_begin()
                body = view(request, params, turn)
                kinds = {step.kind for step in turn.steps}
                turn.flush()
            # Counted once committed: a try rolled back and run again counts once.
            for outcome in {DECISION_STEPS[kind] for kind in kinds if kind in DECISION_STEPS}:
                metrics.decided(outcome)
            for kind in kinds & FAILSAFE_STEPS.keys():
                metrics.failsafe_answered(FAILSAFE_STEPS[kind])
            return _xml(body)
        except IntegrityError:
            if not insert_first:
                raise
            insert_first = False
        except services.StepsRetry:
            if savepoints:
                raise
            savepoints = True


def twilio_webhook(*, on_error: str, insert_first: bool = False) -> Callable:
    """Signature check, TwiML answer and the never-a-500 rule for one webhook.

    ``on_error``: 'failsafe' (the call's flow depends on the answer: dial the fail-safe) or 'empty' (a
    notification: answer an empty ``<Response/>``). ``insert_first``: the view's turn first inserts the call without
    looking it up, and runs a second time, without, when its first transaction ends in an IntegrityError (a retried
    CallSid).
    """

    def wrap(view: Callable[[HttpRequest, QueryDict, Turn], str]) -> Callable:
        latency = metrics.WEBHOOK_SECONDS.labels(endpoint=view.__name__)  # the view's name, never the raw path

        @csrf_exempt
        @wraps(view)
        def handle(request: HttpRequest) -> HttpResponse:
            started = time.perf_counter()
            # Every record logged while answering carries the CallSid (LOG_FORMAT=json writes it as a field).
            context = log_context_push(call_sid=request.POST.get("CallSid") or request.GET.get("CallSid"), request_id=_request_id(request))
            try:
                return answer(request)
            finally:
                log_context_pop(context)
                latency.observe(time.perf_counter() - started)

        def answer(request: HttpRequest) -> HttpResponse:
            if request.method not in ("POST", "GET"):
                return HttpResponse(status=405, headers={"Allow": "POST, GET"})
            if not signature_valid(request):
                # %r: an unsigned request's values are anyone's, and a raw newline would forge a log line.
                log.warning("refused %s: bad or missing X-Twilio-Signature (CallSid %r)", request.path, request.POST.get("CallSid", "?"))
                return HttpResponseForbidden("bad or missing X-Twilio-Signature", content_type="text/plain")
            params = _storable(request.POST if request.method == "POST" else request.GET)
            sid = params.get("CallSid", "")
            try:
                # One transaction per request: one commit, and a failure leaves nothing half-written behind.
                links = services.Links(public_base_url(request))
                return _run(view, request, params, links, insert_first=insert_first)
            except signatures.OtherAccount as exc:  # rolled back: nothing of the forged request is kept
                log.warning("refused %s: %s (CallSid %r)", request.path, exc, sid[:64])
                return HttpResponseForbidden("signed by another account's Twilio subaccount", content_type="text/plain")
            except Exception as exc:  # noqa: BLE001 - Twilio must never get a 500: the caller would hear an error
                log.exception("CallSid %r: %s failed (%r); answering with the %s", sid or "?", request.path, exc, on_error)
                if on_error == "empty":
                    return _xml(twiml.empty())
                metrics.decided("failsafe")
                metrics.failsafe_answered("error")
                return _xml(services.failsafe_answer(
                    call_sid=sid, to=params.get("To", ""), caller=params.get("From", ""), reason=f"routing failed: {exc}"[:200],
                    test=test_call_options_read(params)))

        return handle

    return wrap


def _request_id(request: HttpRequest) -> str:
    """The proxy's request id (X-Request-ID) if it sends one, else Twilio's idempotency token for this delivery."""
    return request.META.get("HTTP_X_REQUEST_ID") or request.META.get("HTTP_I_TWILIO_IDEMPOTENCY_TOKEN", "")


def _storable(params: QueryDict) -> QueryDict:
    """The parameters without NUL bytes, which PostgreSQL cannot store (a caller's number or city with one would
    cost the call its record). Cleaned after the signature check, which covers the values as Twilio sent them."""
    if not any("\x00" in value for values in params.lists() for value in values[1]):
        return params
    clean = QueryDict(mutable=True)
    for name, values in params.lists():
        clean.setlist(name.replace("\x00", ""), [value.replace("\x00", "") for value in values])
    return clean


def _int(params: QueryDict, name: str) -> int:
    raw = (params.get(name) or "").strip()
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 18):
        raise services.ParamError(f"{name} must be a whole number, got {raw!r}")
    return int(raw)


def _bind(turn: Turn, request: HttpRequest, params: QueryDict) -> Turn:
    """Bind the turn to the call named in our own callback URL (``?call=``); its CallSid must match Twilio's."""
    call = services.call_by_id(_int(request.GET, "call"))
    turn.owned(call.account_id)
    sid = params.get("CallSid", "")
    if sid and sid != call.call_sid:
        raise services.ParamError(f"CallSid {sid} does not belong to call {call.pk}")
    return turn.bind(call)


@twilio_webhook(on_error="failsafe", insert_first=True)
def incoming(request: HttpRequest, params: QueryDict, turn: Turn) -> str:
    """``POST /voice/incoming`` ("A call comes in"): record the call and answer with the first step."""
    call_in = services.IncomingCall.from_params(params)
    tracking_number, turn.caller_blocked = services.tracking_number_for(call_in.called, caller=call_in.caller, turn=turn)
    turn.owned(tracking_number.account_id if tracking_number is not None else None)
    created = services.call_start(turn, incoming=call_in, tracking_number=tracking_number)
    return services.incoming_answer(turn, tracking_number=tracking_number, created=created)


@twilio_webhook(on_error="failsafe")
def gather(request: HttpRequest, params: QueryDict, turn: Turn) -> str:
    """The IVR menu's ``<Gather action>`` (and its no-input ``<Redirect>``)."""
    menu = _int(request.GET, "menu") if "menu" in request.GET else None
    heard = _int(request.GET, "heard") if "heard" in request.GET else 1
    return services.gather_answer(
        _bind(turn, request, params), digits=params.get("Digits", ""), round_no=_int(request.GET, "round"), menu_id=menu, heard=heard,
    )


@twilio_webhook(on_error="failsafe")
def challenge(request: HttpRequest, params: QueryDict, turn: Turn) -> str:
    """The spam challenge's ``<Gather action>`` and its no-key ``<Redirect>``: 1 connects, anything else hangs up."""
    return services.challenge_answer(_bind(turn, request, params), digits=(params.get("Digits") or "").strip())


@twilio_webhook(on_error="failsafe")
def dial_status(request: HttpRequest, params: QueryDict, turn: Turn) -> str:
    """The ``<Dial action>``: record the result of a step and answer with the next one."""
    return services.dial_result_answer(
        _bind(turn, request, params), seq=_int(request.GET, "seq"), dial_status=(params.get("DialCallStatus") or "").strip(),
        duration=duration_seconds(params.get("DialCallDuration")),
    )


@twilio_webhook(on_error="empty")
def attempt_status(request: HttpRequest, params: QueryDict, turn: Turn) -> str:
    """A dialled leg's ``<Number statusCallback>`` (answered, completed ...)."""
    services.attempt_status_record(
        turn, attempt_id=_int(request.GET, "attempt"), status=(params.get("CallStatus") or "").strip(),
        duration=duration_seconds(params.get("CallDuration")),
    )
    return twiml.empty()


def _seconds(params: QueryDict, name: str) -> int:
    """A count Twilio sends (QueuePosition, QueueTime): digits, else 0; capped to a day."""
    raw = (params.get(name) or "").strip()
    return min(int(raw), 86400) if raw.isascii() and raw.isdigit() and len(raw) <= 9 else 0


@twilio_webhook(on_error="failsafe")
def queue_wait(request: HttpRequest, params: QueryDict, turn: Turn) -> str:
    """The ``<Enqueue waitUrl>``: what a waiting caller hears (their position, hold music), or ``<Leave/>``."""
    return services.queue_wait_answer(
        _bind(turn, request, params), position=_seconds(params, "QueuePosition"), queue_time=_seconds(params, "QueueTime"),
    )


@twilio_webhook(on_error="failsafe")
def queue_result(request: HttpRequest, params: QueryDict, turn: Turn) -> str:
    """The ``<Enqueue action>``: the caller left the queue (QueueResult); on down the fallback chain when not bridged.
    Also the wait URL's redirect after the maximum wait (``?waited=N``, read as QueueResult ``leave``)."""
    if "waited" in request.GET:
        result, queue_time = "leave", _seconds(request.GET, "waited")
    else:
        result, queue_time = (params.get("QueueResult") or "").strip(), _seconds(params, "QueueTime")
    if result not in services.QUEUE_RESULTS:
        raise services.ParamError(f"QueueResult {result[:40]!r} is not a Twilio queue result")
    return services.queue_result_answer(_bind(turn, request, params), result=result, queue_time=queue_time)


@twilio_webhook(on_error="empty")
def queue_bridge(request: HttpRequest, params: QueryDict, turn: Turn) -> str:
    """A queue dial's ``<Queue url>``: Twilio dequeued the caller ``CallSid`` to the line of ``?attempt=``; record who
    was bridged to whom. Its answer is played to that caller before they are connected: empty (never the fail-safe,
    which would dial someone else while a handler is on the line)."""
    sid = (params.get("CallSid") or "").strip()
    if not sid or len(sid) > 64:
        raise services.ParamError("CallSid must name the dequeued call")
    services.queue_bridge_record(turn, attempt_id=_int(request.GET, "attempt"), caller_sid=sid, queue_time=_seconds(params, "QueueTime"))
    return twiml.empty()


@twilio_webhook(on_error="empty")
def whisper(request: HttpRequest, params: QueryDict, turn: Turn) -> str:
    """The ``<Number url>``: said to the handler before the caller is connected."""
    return services.whisper_answer(turn, attempt_id=_int(request.GET, "attempt"))


@twilio_webhook(on_error="failsafe")
def voicemail(request: HttpRequest, params: QueryDict, turn: Turn) -> str:
    """The voicemail's ``<Record action>``."""
    return services.voicemail_record(_bind(turn, request, params), recording_url=params.get("RecordingUrl", ""))


@twilio_webhook(on_error="empty")
def status(request: HttpRequest, params: QueryDict, turn: Turn) -> str:
    """``POST /voice/status``: the number's status callback (call progress and its final status)."""
    services.call_status_record(turn, params=params)
    return twiml.empty()


MAX_RECORDING_SECONDS = 24 * 3600


@twilio_webhook(on_error="empty")
def recording_status(request: HttpRequest, params: QueryDict, turn: Turn) -> str:
    """The ``<Dial recordingStatusCallback>``: keep the call's recording (idempotent, order-proof)."""
    call = _bind(turn, request, params).the_call
    sid = (params.get("RecordingSid") or "").strip()
    if not RECORDING_SID.match(sid):
        raise services.ParamError(f"RecordingSid {sid[:70]!r} is not a recording SID")
    raw_status = (params.get("RecordingStatus") or "").strip()
    status = recording_services.TWILIO_RECORDING_STATUS.get(raw_status)
    if status is None:
        raise services.ParamError(f"RecordingStatus {raw_status[:40]!r} is not a Twilio recording status")
    url = (params.get("RecordingUrl") or "").strip()
    if url and (len(url) > 1000 or not url.startswith("https://") or "\x00" in url):
        raise services.ParamError("RecordingUrl is not an https URL of at most 1000 characters")
    raw = (params.get("RecordingDuration") or "0").strip()
    duration = min(int(raw), MAX_RECORDING_SECONDS) if raw.isdigit() and len(raw) < 10 else 0
    recording_services.call_recording_record(call=call, recording_sid=sid, recording_url=url, status=status, duration=duration)
    return twiml.empty()


@csrf_exempt
def fallback(request: HttpRequest) -> HttpResponse:
    """``/voice/fallback``, each Twilio number's *voice fallback URL*: Twilio requests it when ``/voice/incoming``
    fails (an error, a timeout, a broken answer), e.g. with the database down. It answers with a dial of the
    fail-safe number written into the URL when the number was provisioned (``?failsafe=+1...``), else
    CALLTRACK_FAILSAFE_NUMBER, without touching the database, the cache or any file: only the signature check
    (X-Twilio-Signature covers the query string, so nobody but Twilio with our URL can choose the number)."""
    if request.method not in ("POST", "GET"):
        return HttpResponse(status=405, headers={"Allow": "POST, GET"})
    if not signature_valid(request):
        log.warning("refused %s: bad or missing X-Twilio-Signature", request.path)
        return HttpResponseForbidden("bad or missing X-Twilio-Signature", content_type="text/plain")
    params = request.POST if request.method == "POST" else request.GET
    metrics.failsafe_answered("fallback_url")  # in memory only: this answer must not depend on anything
    signed = (request.GET.get("failsafe") or "").strip()
    number = (phone.to_e164_or_none(signed) if signed and len(signed) <= 32 else None) or settings.CALLTRACK_FAILSAFE_NUMBER or ""
    log.error("CallSid %s: Twilio used the fallback URL (ErrorCode %s on %s); dialling the fail-safe %s",
              params.get("CallSid", "?")[:64], params.get("ErrorCode", "?")[:10], params.get("ErrorUrl", "?")[:200], number or "(none)")
    return _xml(twiml.failsafe(number, caller_id=phone.to_e164_or_none((params.get("From") or "")[:32]) or ""))


# --- Texts (issue 29) ----------------------------------------------------------------------------------------------


def twilio_messaging_webhook(view: Callable[[HttpRequest, QueryDict, services.Links], str]) -> Callable:
    """The voice webhooks' rules for a messaging webhook: the same signature check (403 before anything is read),
    NUL bytes dropped after it, one transaction, and never a 500: any failure is logged and answered with the empty
    messaging ``<Response/>`` (Twilio sends nothing; the contact's text is not lost at the carrier)."""

    @csrf_exempt
    @wraps(view)
    def handle(request: HttpRequest) -> HttpResponse:
        if request.method not in ("POST", "GET"):
            return HttpResponse(status=405, headers={"Allow": "POST, GET"})
        if not signature_valid(request):
            log.warning("refused %s: bad or missing X-Twilio-Signature (MessageSid %r)", request.path, request.POST.get("MessageSid", "?"))
            return HttpResponseForbidden("bad or missing X-Twilio-Signature", content_type="text/plain")
        params = _storable(request.POST if request.method == "POST" else request.GET)
        try:
            with transaction.atomic():
                return _xml(view(request, params, services.Links(public_base_url(request))))
        except signatures.OtherAccount as exc:  # rolled back: nothing of the forged request is kept
            log.warning("refused %s: %s (MessageSid %r)", request.path, exc, params.get("MessageSid", "?")[:64])
            return HttpResponseForbidden("signed by another account's Twilio subaccount", content_type="text/plain")
        except Exception as exc:  # noqa: BLE001 - Twilio must never get a 500
            log.exception("MessageSid %r: %s failed (%r); answering the empty Response", params.get("MessageSid", "?")[:64], request.path, exc)
            return _xml(twiml.messages())

    return handle


@twilio_messaging_webhook
def sms_incoming(request: HttpRequest, params: QueryDict, links: services.Links) -> str:
    """``POST /sms/incoming``, each tracking number's SMS URL ("A message comes in"): keep the text, credited like a
    call, and answer as its campaign's text routing says."""
    incoming = text_services.IncomingText.from_params(params)
    text, _, created = text_services.text_receive(incoming=incoming)
    signatures.owner_check(signatures.signed_account_id(request), text.account_id)
    return text_services.text_answer(text=text, created=created, links=links)


@twilio_messaging_webhook
def sms_status(request: HttpRequest, params: QueryDict, links: services.Links) -> str:
    """``POST /sms/status``: the status callback of a text we sent (queued, sent, delivered, undelivered, failed);
    ``?text=`` names a text answered in TwiML, whose MessageSid this first callback tells us."""
    sid = (params.get("MessageSid") or params.get("SmsSid") or "").strip()
    raw = (params.get("MessageStatus") or params.get("SmsStatus") or "").strip()
    status = outbound_texts.TWILIO_MESSAGE_STATUS.get(raw)
    if status is None:
        raise services.ParamError(f"MessageStatus {raw[:40]!r} is not a Twilio message status")
    if not text_services.SID.match(sid):
        raise services.ParamError("MessageSid is not a message SID")
    text_id = _int(request.GET, "text") if "text" in request.GET else None
    outbound_texts.text_status_record(message_sid=sid, status=status, error_code=(params.get("ErrorCode") or "").strip()[:10],
                                      text_id=text_id, account_id=signatures.signed_account_id(request))
    return twiml.messages()
