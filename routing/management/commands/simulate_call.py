"""Play Twilio's part in a call through the real voice URLs (signed), and print every TwiML step."""

from __future__ import annotations

import re
import secrets
from datetime import datetime
from urllib.parse import urlsplit

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.test import Client, override_settings
from django.utils import timezone
from lxml import etree
from twilio.request_validator import RequestValidator

from calltrack import phone
from calltrack.nomenclature import HANDLER, SOURCE
from calltrack.numbers.providers.local import LocalCarrier
from routing.management.simulation import account_add_argument, webhook_signer
from routing.services.common import STIR_VERSTATS, TEST_CALL_PARAM, TestCallOptions, call_test_marker
from tracking.models import Call, CallAttempt

MAX_STEPS = 40


def _clock(raw: str) -> datetime | None:
    """``--clock``: an ISO date and time, in TIME_ZONE unless it says its offset; '' is None (now)."""
    if not raw.strip():
        return None
    try:
        moment = datetime.fromisoformat(raw.strip())
    except ValueError:
        raise CommandError(f"--clock must be a date and time like 2026-12-07 22:30, not {raw[:40]!r}") from None
    return timezone.make_aware(moment) if timezone.is_naive(moment) else moment


class Command(BaseCommand):
    help = (
        "Simulate an inbound call without Twilio: posts signed requests to /voice/incoming, follows <Gather>, "
        "<Redirect>, <Dial action>, <Enqueue> (wait URL, queue dial, action) and <Record>, prints each TwiML answer and the call's final record. A recorded "
        "<Dial> that is answered leaves a playable recording (a WAV of the local carrier) on the call."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--to", required=True, help="The tracking number dialled.")
        account_add_argument(parser)
        parser.add_argument("--from", dest="caller", required=True, help="The caller's number.")
        parser.add_argument("--digits", default="", help="Keys pressed at successive menus, e.g. 1 or 21.")
        parser.add_argument(
            "--answer", default="first",
            help="Which dial is answered: first, none, or N (the N-th <Dial>, counting from 1).",
        )
        parser.add_argument("--from-city", default="", help="The caller's city, as Twilio's FromCity (geo routing, tags).")
        parser.add_argument("--from-state", default="", help="The caller's state, as Twilio's FromState, e.g. CO.")
        parser.add_argument("--from-zip", default="", help="The caller's ZIP code, as Twilio's FromZip.")
        parser.add_argument("--caller-name", default="", help="The caller's name, as Twilio's CallerName (caller name lookup), e.g. 'SMITH JOHN'.")
        parser.add_argument(
            "--stir-verstat", default="", choices=["", *STIR_VERSTATS], metavar="VERSTAT",
            help="The STIR/SHAKEN verification of the caller's number, as Twilio's StirVerstat on /voice/incoming: "
            + ", ".join(STIR_VERSTATS) + ".",
        )
        parser.add_argument(
            "--test", action="store_true",
            help="Mark the call as a test call: left out of the reports, the caps' counts and conversions; no webhook is sent "
            "unless --send-webhooks.",
        )
        parser.add_argument("--send-webhooks", action="store_true", help="With --test: send the campaign's webhooks all the same.")
        parser.add_argument(
            "--clock", default="",
            help="With --test: the moment routing reads business and tagging hours at, e.g. '2026-12-07 22:30' (in TIME_ZONE "
            "unless it has an offset). Default: now.",
        )
        parser.add_argument("--duration", type=int, default=42, help="Seconds the answered leg talks (default 42).")
        parser.add_argument(
            "--free-after", type=int, default=0,
            help="When the caller waits in a call queue: seconds after which the busy handler's call ends and their line "
            "takes the caller (the local carrier's queue dial). Default 0: nobody frees up, the caller waits until the "
            "campaign's maximum wait and goes on down the fallback chain.",
        )

    def handle(self, *args, **options) -> None:
        answer = options["answer"]
        if answer not in ("first", "none") and not (answer.isdigit() and int(answer) >= 1):
            raise CommandError(f"--answer must be first, none or a positive number, not {answer!r}")
        self.answer_at = 1 if answer == "first" else (0 if answer == "none" else int(answer))
        if options["free_after"] < 0:
            raise CommandError(f"--free-after must be 0 or more seconds, not {options['free_after']}")
        self.free_after = options["free_after"]
        if not re.fullmatch(r"[0-9*#]*", options["digits"]):
            raise CommandError(f"--digits may hold only 0-9, * and #, not {options['digits']!r}")
        try:
            to = phone.to_e164(options["to"])
        except phone.InvalidPhoneNumber as exc:
            raise CommandError(f"--to: {exc}") from None
        caller = phone.to_e164_or_none(options["caller"]) or options["caller"]
        self.account_sid, self.account_token = webhook_signer(options["account"], to)
        if (options["send_webhooks"] or options["clock"]) and not options["test"]:
            raise CommandError("--send-webhooks and --clock are options of a test call: add --test")
        self.test = TestCallOptions(send_webhooks=options["send_webhooks"], clock=_clock(options["clock"])) if options["test"] else None
        self.place = {name: value for name, value in (
            ("FromCity", options["from_city"]), ("FromState", options["from_state"]), ("FromZip", options["from_zip"])) if value}
        # Twilio sends the caller's name (caller name lookup) with every request of the call, the STIR/SHAKEN verdict
        # with the incoming call's.
        if options["caller_name"]:
            self.place["CallerName"] = options["caller_name"]
        self.incoming = {"StirVerstat": options["stir_verstat"]} if options["stir_verstat"] else {}
        for name, value in self.place.items():
            if len(value) > 100 or "\x00" in value:
                raise CommandError(f"{name} must be at most 100 characters, without NUL")
        base = (settings.CALLTRACK_PUBLIC_BASE_URL or "http://localhost").rstrip("/")
        token = settings.TWILIO_AUTH_TOKEN or secrets.token_hex(16)  # sign with a throwaway token when none is set
        host = urlsplit(base).hostname or "localhost"
        hosts = list(settings.ALLOWED_HOSTS) + [host]
        with override_settings(TWILIO_AUTH_TOKEN=token, ALLOWED_HOSTS=hosts):
            self._run(base, token, to, caller, list(options["digits"]), options["duration"])

    # --- playing Twilio ---------------------------------------------------------------------------------------

    def _post(self, url: str, params: dict[str, str]) -> etree._Element:
        if url.startswith("/"):
            url = self.base + url
        parts = urlsplit(url)
        if self.account_token:  # Twilio names the (sub)account in every webhook
            params = {"AccountSid": self.account_sid, **params}
        signature = RequestValidator(self.account_token or self.token).compute_signature(url, params)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        secure = parts.scheme == "https"
        self.stdout.write(self.style.HTTP_INFO(f"\n-> POST {path}  {params}"))
        response = self.client.post(path, params, HTTP_HOST=parts.netloc, HTTP_X_TWILIO_SIGNATURE=signature, secure=secure)
        if response.status_code != 200:
            raise CommandError(f"{path} answered HTTP {response.status_code}: {response.content[:200]!r}")
        doc = etree.fromstring(response.content)
        self.stdout.write(etree.tostring(doc, pretty_print=True).decode().rstrip())
        return doc

    def _run(self, base: str, token: str, to: str, caller: str, digits: list[str], duration: int) -> None:
        self.base, self.token, self.client = base, token, Client()
        self.recordings: list[tuple[str, dict[str, str]]] = []
        sid = "CA" + secrets.token_hex(16)
        # Twilio sends the caller's place (FromCity, FromState, FromZip) and name with every request of the call.
        common = {"CallSid": sid, "AccountSid": self.account_sid, "From": caller, "To": to, **self.place}
        marker = {TEST_CALL_PARAM: call_test_marker(call_sid=sid, options=self.test)} if self.test is not None else {}
        doc = self._post("/voice/incoming", {**common, "CallStatus": "ringing", "Direction": "inbound", **self.incoming, **marker})
        dials = 0
        talked = 0
        for _ in range(MAX_STEPS):
            nxt = None
            for verb in doc:
                if verb.tag in ("Say", "Play"):
                    self.stdout.write(f"   caller hears: {verb.text}")
                elif verb.tag == "Gather":
                    if digits:
                        nxt = self._post(verb.get("action"), {**common, "CallStatus": "in-progress", "Digits": digits.pop(0)})
                        break
                    self.stdout.write("   (no key pressed)")
                elif verb.tag == "Redirect":
                    nxt = self._post(verb.text, {**common, "CallStatus": "in-progress"})
                    break
                elif verb.tag == "Dial":
                    dials += 1
                    answered = dials == self.answer_at
                    nxt, spoke = self._dial(verb, common, answered, duration)
                    talked += spoke
                    break
                elif verb.tag == "Enqueue":
                    nxt, spoke = self._enqueue(verb, common, duration)
                    talked += spoke
                    break
                elif verb.tag == "Record":
                    # A voicemail: a recording of the local carrier (a WAV under MEDIA_ROOT), as Twilio would make one.
                    voicemail = LocalCarrier().recording_create(seconds=9)
                    nxt = self._post(verb.get("action"), {**common, "CallStatus": "in-progress", "RecordingUrl": voicemail.url,
                                                          "RecordingSid": voicemail.sid, "RecordingDuration": str(voicemail.duration)})
                    break
                elif verb.tag in ("Hangup", "Reject"):
                    break
            if nxt is None:
                break
            doc = nxt
        final = "completed"
        self._post("/voice/status", {**common, "CallStatus": final, "CallDuration": str(talked + 5), "SequenceNumber": "9"})
        # Like Twilio, the recording is announced once the call is over (in progress, then ready).
        for callback, params in self.recordings:
            self._post(callback, {**params, "RecordingStatus": "in-progress", "RecordingDuration": "-1"})
            self._post(callback, params)
        self._report(sid)

    def _dial(self, dial: etree._Element, common: dict[str, str], answered: bool, duration: int) -> tuple[etree._Element | None, int]:
        numbers = dial.findall("Number")
        self.stdout.write(f"   ringing {', '.join(n.text for n in numbers)} ({'answered' if answered else 'no answer'})")
        for i, number in enumerate(numbers):
            leg = {"CallSid": f"CA{secrets.token_hex(16)}", "ParentCallSid": common["CallSid"], "To": number.text, "From": common["From"]}
            callback = number.get("statusCallback")
            if answered and i == 0:
                if callback:
                    self._post(callback, {**leg, "CallStatus": "in-progress"})
                if number.get("url"):
                    self._post(number.get("url"), {**leg, "CallStatus": "in-progress"})
                if callback:
                    self._post(callback, {**leg, "CallStatus": "completed", "CallDuration": str(duration)})
            elif callback:
                self._post(callback, {**leg, "CallStatus": "no-answer" if not answered else "canceled"})
        if answered and dial.get("record", "do-not-record") != "do-not-record" and dial.get("recordingStatusCallback"):
            self._record(dial.get("recordingStatusCallback"), common, duration)
        if not dial.get("action"):
            return None, duration if answered else 0
        status = {"DialCallStatus": "completed", "DialCallDuration": str(duration)} if answered else {"DialCallStatus": "no-answer", "DialCallDuration": "0"}
        return self._post(dial.get("action"), {**common, "CallStatus": "in-progress", **status}), duration if answered else 0

    def _enqueue(self, verb: etree._Element, common: dict[str, str], duration: int) -> tuple[etree._Element | None, int]:
        """What Twilio does for a caller in a queue: request the wait URL each time its TwiML ends (every 30 s of
        waiting here), follow a <Redirect> out of the queue; with --free-after, a busy handler's call ends and the
        local carrier's queue dial to their line bridges the caller (then the <Enqueue action> with QueueResult)."""
        self.stdout.write(f"   caller waits in queue {verb.text}")
        in_queue = {**common, "CallStatus": "in-progress", "QueueSid": "QU" + "0" * 32, "QueuePosition": "1", "CurrentQueueSize": "1"}
        waited = 0
        for _ in range(MAX_STEPS):
            doc = self._post(verb.get("waitUrl"), {**in_queue, "QueueTime": str(waited), "AvgQueueTime": str(waited)})
            for v in doc:
                if v.tag in ("Say", "Play"):
                    self.stdout.write(f"   caller hears: {v.text}")
                elif v.tag == "Redirect":
                    return self._post(v.text, {**common, "CallStatus": "in-progress"}), 0
                elif v.tag == "Hangup":
                    return None, 0
            if self.free_after and waited >= self.free_after and self._free_a_handler(common, duration):
                result = {"QueueResult": "bridged", "QueueTime": str(waited), "QueueSid": in_queue["QueueSid"]}
                return self._post(verb.get("action"), {**common, "CallStatus": "in-progress", **result}), duration
            waited += 30
        return None, 0

    def _free_a_handler(self, common: dict[str, str], duration: int) -> bool:
        """End the oldest handler leg of another call of the campaign (its status callback), then play the queue
        dial the local carrier was asked to place: the handler answers, talks ``duration`` seconds, hangs up."""
        from calltrack.numbers.providers import local

        call = Call.objects.get(call_sid=common["CallSid"])
        leg = (CallAttempt.objects.filter(holds_slot=True, handler__isnull=False, call__campaign_id=call.campaign_id)
               .exclude(call=call).order_by("started_at", "id").first())
        if leg is None:
            self.stdout.write("   (no handler of the campaign is on a call: nobody frees up)")
            return False
        before = len(local.QUEUE_DIALS)
        self.stdout.write(f"   {leg.handler}'s call ends")
        self._post(f"/voice/attempt-status?attempt={leg.pk}", {"CallSid": f"CA{secrets.token_hex(16)}", "CallStatus": "completed", "CallDuration": "60"})
        if len(local.QUEUE_DIALS) == before:
            self.stdout.write("   (the local carrier placed no queue dial)")
            return False
        dial = local.QUEUE_DIALS[before]
        self.stdout.write(f"   local carrier dials {dial.to} to take the caller: {dial.twiml}")
        self._post(dial.status_url, {"CallSid": dial.sid, "To": dial.to, "From": dial.caller_id, "CallStatus": "in-progress"})
        # Twilio dequeues the first caller waiting (here the one simulated) and requests the <Queue url> for them.
        queue = etree.fromstring(dial.twiml.encode()).find("Dial/Queue")
        if queue is not None and queue.get("url"):
            self._post(queue.get("url"), {**common, "CallStatus": "in-progress", "QueueSid": "QU" + "0" * 32, "DequeingCallSid": dial.sid,
                                          "QueueTime": str(self.free_after)})
        self._post(dial.status_url, {"CallSid": dial.sid, "To": dial.to, "From": dial.caller_id, "CallStatus": "completed", "CallDuration": str(duration)})
        return True

    def _record(self, callback: str, common: dict[str, str], duration: int) -> None:
        """What Twilio does for a recorded, answered <Dial>: a recording (here a WAV of the local carrier), then
        the recording status callback with Twilio's parameters."""
        recording = LocalCarrier().recording_create(seconds=duration)
        self.stdout.write(f"   recorded {recording.duration}s as {recording.sid}")
        self.recordings.append((callback, {
            "AccountSid": common["AccountSid"], "CallSid": common["CallSid"], "RecordingSid": recording.sid,
            "RecordingUrl": recording.url, "RecordingStatus": "completed", "RecordingDuration": str(recording.duration),
            "RecordingChannels": "2", "RecordingSource": "DialVerb", "RecordingStartTime": "Mon, 30 Nov 2026 12:00:00 +0000",
            "RecordingTrack": "both", "ErrorCode": "0",
        }))

    def _report(self, sid: str) -> None:
        call = Call.objects.select_related("campaign", "source", "handler").get(call_sid=sid)
        # The labels through gettext (the performance vocabulary says buyer/publisher); names and messages as stored.
        w = self.stdout.write

        w(self.style.SUCCESS(f"\nCall {call.call_sid}"))
        if call.is_test:
            w("  test call: not in the reports, the caps' counts or conversions"
              + ("; webhooks sent" if call.test_sends_webhooks else "; no webhook sent")
              + (f"; clock {call.test_clock:%Y-%m-%d %H:%M %Z}" if call.test_clock else ""))
        w(f"  status: {call.get_status_display()}  campaign: {call.campaign or '-'}  {SOURCE}: {call.source or '-'}")
        w(f"  caller: {call.caller_number} ({', '.join(p for p in (call.caller_city, call.caller_state) if p) or 'unknown place'})")
        w(f"  {HANDLER}: {call.handler or '-'}  talk time: {call.talk_time}s  duration: {call.duration}s"
          f"{'  fallback: ' + call.fallback_step if call.fallback_step else ''}{'  FAIL-SAFE' if call.used_failsafe else ''}")
        if call.reject_reason:
            w(f"  rejected: {call.reject_reason}")
        if call.has_recording:
            w(f"  recording: {call.recording_sid} ({call.recording_duration}s), played at /api/v1/calls/{call.pk}/recording")
        for skip in call.state.skipped:
            w(f"  skipped {skip.name}: {skip.reason} ({skip.detail})")
        for a in call.attempts.select_related("handler"):
            w(f"  attempt {a.sequence}: {a.get_kind_display()} {a.handler or ''} {a.number_dialed} -> {a.get_status_display()} {a.duration}s")
        for e in call.events.all():
            w(f"  {e.at:%H:%M:%S} {e.kind}: {e.message}")
