"""Voice routing's database work: start a call, take handler slots under row locks, record attempts.

The decisions themselves are pure functions in ``routing.decision``; this package loads their inputs
(one query per kind of data, never one per handler; a campaign's configuration is cached per process by
``Campaign.config_version``), writes their outcome and renders the TwiML with ``routing.twiml``. Every
answer given for a call is stored in ``Call.decision["answers"]`` under a key naming the request, so a
webhook Twilio retries gets the very same TwiML and changes nothing.

Modules by topic: ``common`` (parameters, links, stored answers), ``config`` (campaign configuration cache),
``slots`` (counters, caps under locks), ``plan`` (dial plan, fallback chain), ``calls`` (a call's start, IVR,
whisper, voicemail, fail-safe), ``status`` (dial results and status callbacks). The public names are
importable from ``routing.services``.
"""

from routing.services.calls import (
    call_by_id,
    call_start,
    failsafe_answer,
    failsafe_number,
    gather_answer,
    incoming_answer,
    tracking_number_for,
    voicemail_record,
    whisper_answer,
)
from routing.services.common import (
    MAX_CALL_SECONDS,
    TWILIO_CALL_STATUS,
    TWILIO_DIAL_STATUS,
    IncomingCall,
    Links,
    ParamError,
)
from routing.services.config import (
    CampaignConfig,
    campaign_config,
    campaign_config_cache_clear,
    campaign_options,
    handler_option,
)
from routing.services.plan import StepsRetry, route, step_savepoints
from routing.services.queue import QUEUE_RESULTS, queue_bridge_record, queue_offer, queue_result_answer, queue_wait_answer
from routing.services.slots import attempt_slots_release_stale, handler_loads
from routing.services.status import attempt_status_record, call_status_record, dial_result_answer

__all__ = [
    "MAX_CALL_SECONDS", "QUEUE_RESULTS", "TWILIO_CALL_STATUS", "TWILIO_DIAL_STATUS", "CampaignConfig", "IncomingCall", "Links", "ParamError", "StepsRetry",
    "attempt_slots_release_stale", "attempt_status_record", "call_by_id", "call_start", "call_status_record", "campaign_config",
    "campaign_config_cache_clear", "campaign_options", "dial_result_answer", "failsafe_answer", "failsafe_number",
    "gather_answer", "handler_loads", "handler_option", "incoming_answer", "queue_bridge_record", "queue_offer", "queue_result_answer", "queue_wait_answer", "route", "step_savepoints", "tracking_number_for",
    "voicemail_record", "whisper_answer",
]
