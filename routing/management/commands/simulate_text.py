"""Play Twilio's part in an inbound text through the real messaging URL (signed), like simulate_call: print the TwiML
answer, report the answers' and forwards' delivery to /sms/status as Twilio would, and print the stored text."""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.test import Client, override_settings
from lxml import etree
from twilio.request_validator import RequestValidator

from calltrack import phone
from calltrack.numbers.models import LocalCarrierMessage
from calltrack.numbers.services import texts as outbound
from calltrack.numbers.services.texts import PENDING_PREFIX
from routing.management.simulation import account_add_argument, webhook_signer
from routing.services.texts import TEST_TEXT_PARAM, text_test_marker
from tracking.models import TextMessage, TextPurpose
from tracking.models.texts import MAX_BODY, MAX_MEDIA

DELIVERY = ("sent", "delivered")


class Command(BaseCommand):
    help = (
        "Simulate an inbound text without Twilio: posts a signed request to /sms/incoming (the number's SMS URL), prints "
        "the TwiML answer, then reports each answer's and forward's delivery (sent, delivered) to /sms/status, and prints "
        "the text as stored: its credit (campaign, source, visitor, UTM), tags and conversion."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--to", required=True, help="The tracking number texted.")
        account_add_argument(parser)
        parser.add_argument("--from", dest="sender", required=True, help="The sender's number.")
        parser.add_argument("--body", default="Hi, I saw your ad.", help="The text (STOP, START and HELP are the carriers' keywords).")
        parser.add_argument("--media", action="append", default=[], help="An https media URL (MMS); repeat for several (at most 10).")
        parser.add_argument("--from-city", default="", help="The sender's city, as Twilio's FromCity.")
        parser.add_argument("--from-state", default="", help="The sender's state, as Twilio's FromState, e.g. CO.")
        parser.add_argument("--from-zip", default="", help="The sender's ZIP code, as Twilio's FromZip.")
        parser.add_argument(
            "--test", action="store_true",
            help="Mark the text as a test text: left out of the dashboard's and the reports' text figures, never converts, "
            "sends no webhook; its answers and forwards go out as for any text.",
        )
        parser.add_argument("--undelivered", action="store_true", help="Report the answers as undelivered (error 30003) instead.")

    def handle(self, *args, **options) -> None:
        try:
            to = phone.to_e164(options["to"])
        except phone.InvalidPhoneNumber as exc:
            raise CommandError(f"--to: {exc}") from None
        sender = phone.to_e164_or_none(options["sender"]) or options["sender"]
        self.account_sid, self.account_token = webhook_signer(options["account"], to)
        body = options["body"]
        if len(body) > MAX_BODY or "\x00" in body:
            raise CommandError(f"--body must be at most {MAX_BODY} characters, without NUL")
        media = options["media"]
        if len(media) > MAX_MEDIA or any(not m.startswith("https://") or len(m) > 1000 for m in media):
            raise CommandError(f"--media takes at most {MAX_MEDIA} https URLs")
        place = {name: value for name, value in (
            ("FromCity", options["from_city"]), ("FromState", options["from_state"]), ("FromZip", options["from_zip"])) if value}
        for name, value in place.items():
            if len(value) > 100 or "\x00" in value:
                raise CommandError(f"{name} must be at most 100 characters, without NUL")
        base = (settings.CALLTRACK_PUBLIC_BASE_URL or "http://localhost").rstrip("/")
        token = settings.TWILIO_AUTH_TOKEN or secrets.token_hex(16)  # sign with a throwaway token when none is set
        host = urlsplit(base).hostname or "localhost"
        with override_settings(TWILIO_AUTH_TOKEN=token, ALLOWED_HOSTS=[*settings.ALLOWED_HOSTS, host]):
            self.base, self.token, self.client = base, token, Client()
            final = ("undelivered",) if options["undelivered"] else DELIVERY
            self._run(to=to, sender=sender, body=body, media=media, place=place, final=final, test=options["test"])

    def _post(self, url: str, params: dict[str, str]) -> etree._Element:
        if url.startswith("/"):
            url = self.base + url
        parts = urlsplit(url)
        if self.account_token:  # Twilio names the (sub)account in every webhook
            params = {"AccountSid": self.account_sid, **params}
        signature = RequestValidator(self.account_token or self.token).compute_signature(url, params)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        self.stdout.write(self.style.HTTP_INFO(f"\n-> POST {path}  {params}"))
        response = self.client.post(path, params, HTTP_HOST=parts.netloc, HTTP_X_TWILIO_SIGNATURE=signature, secure=parts.scheme == "https")
        if response.status_code != 200:
            raise CommandError(f"{path} answered HTTP {response.status_code}: {response.content[:200]!r}")
        doc = etree.fromstring(response.content)
        self.stdout.write(etree.tostring(doc, pretty_print=True).decode().rstrip())
        return doc

    def _run(self, *, to: str, sender: str, body: str, media: list[str], place: dict[str, str], final: tuple[str, ...], test: bool) -> None:
        sid = "SM" + secrets.token_hex(16)
        if test:
            place = {**place, TEST_TEXT_PARAM: text_test_marker(message_sid=sid)}
        already = set(LocalCarrierMessage.objects.values_list("pk", flat=True))
        params = {"MessageSid": sid, "SmsSid": sid, "AccountSid": self.account_sid, "From": sender, "To": to, "Body": body,
                  "NumMedia": str(len(media)), **{f"MediaUrl{i}": url for i, url in enumerate(media)}, **place}
        doc = self._post("/sms/incoming", params)
        self._forwards_send(sid)
        for message in doc.findall("Message"):
            self.stdout.write(f"   the sender gets: {message.text}")
            callback = message.get("statusCallback")
            if callback:
                reply_sid = "SM" + secrets.token_hex(16)
                for status in final:
                    self._post(callback, {"MessageSid": reply_sid, "MessageStatus": status, "From": to, "To": sender,
                                          **({"ErrorCode": "30003"} if status == "undelivered" else {})})
        for sent in LocalCarrierMessage.objects.exclude(pk__in=already).order_by("pk"):
            self.stdout.write(f"   the carrier sent {sent.to_number}: {sent.body}")
            for status in final:
                self._post(sent.status_callback, {"MessageSid": sent.sid, "MessageStatus": status, "From": sent.from_number, "To": sent.to_number})
        self._summary(sid)

    def _forwards_send(self, sid: str) -> None:
        """Play the task queue's part for the text's forwards to handlers (queued on commit for a django-q2 worker):
        send them now. A worker that runs the queued task later finds them sent and sends nothing again. The email
        forward stays with the task queue (``manage.py qcluster``)."""
        pending = TextMessage.objects.filter(purpose=TextPurpose.FORWARD, message_sid__startswith=f"{PENDING_PREFIX}{sid}:")
        for forward_id in pending.values_list("pk", flat=True):
            outbound.text_forward_send(forward_id=forward_id)

    def _summary(self, sid: str) -> None:
        text = TextMessage.objects.select_related("campaign", "source", "session").filter(message_sid=sid).first()
        if text is None:
            raise CommandError("The text was not stored (see the log).")
        self.stdout.write(self.style.SUCCESS(f"\nText #{text.pk} {text.message_sid}"))
        self.stdout.write(f"  campaign: {text.campaign or '-'}   source: {text.source or '-'}   visitor: {text.visitor_id or '-'}")
        if text.marketing_data:
            self.stdout.write(f"  marketing data: {text.marketing_data}")
        self.stdout.write(f"  from: {text.from_number} ({', '.join(p for p in (text.caller_city, text.caller_state) if p) or 'place unknown'})")
        self.stdout.write(f"  tags: {text.tags}")
        if text.is_test:
            self.stdout.write("  test text: not in the text figures, no conversion, no webhook sent")
        if text.converted:
            self.stdout.write(f"  converted: {text.conversion_reason} (revenue {text.revenue}, payout {text.payout})")
        for answer in TextMessage.objects.filter(contact_number=text.contact_number, direction="outbound", created_at__gte=text.created_at).order_by("pk"):
            self.stdout.write(f"  answer ({answer.get_purpose_display().lower()}) to {answer.to_number}: {answer.get_status_display().lower()}")
        for email in text.email_forwards.order_by("pk"):
            self.stdout.write(f"  emailed to {email.address}: {email.get_status_display().lower()}"
                              f"{' (the task queue sends it: manage.py qcluster)' if email.status == 'queued' else ''}")
