"""Voice routing: each voice webhook as one unit of work (load, decide, write).

A webhook's view (``routing.views``) makes a ``Turn`` (``routing.services.turn``): the call, its typed routing
state (``tracking.call_state.CallState``) and the writes gathered for the end of the transaction. The functions of
this package decide, from the turn and the request: they change the state, answer TwiML (``routing.twiml``) and say
what to write; the pure choices are ``routing.decision``'s. ``routing.store`` runs the statements: it loads what a
decision needs (one query per kind of data, never one per handler; a campaign's configuration is cached per process
by ``Campaign.config_version``) and flushes the turn. Every answer given for a call is kept in ``Call.answers``
under a key naming the request, so a webhook Twilio retries gets the very same TwiML and changes nothing.

Modules by topic: ``turn`` (the unit of work), ``common`` (parameters, links), ``config`` (campaign configuration
cache), ``slots`` (caps under locks, a leg's answer), ``plan`` (dial plan, fallback chain), ``calls`` (a call's
start, IVR, whisper, voicemail, fail-safe), ``queue`` (the campaign's queue), ``status`` (dial results and status
callbacks). The public names are importable from ``routing.services``.
"""

from routing.services.calls import (
    call_by_id,
    call_start,
    challenge_answer,
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
from routing.services.plan import route
from routing.services.queue import QUEUE_RESULTS, queue_bridge_record, queue_offer, queue_result_answer, queue_wait_answer
from routing.services.slots import attempt_slots_release_stale, handler_loads
from routing.services.status import attempt_status_record, call_status_record, dial_result_answer
from routing.services.turn import StepsRetry, Turn

__all__ = [
    "MAX_CALL_SECONDS", "QUEUE_RESULTS", "TWILIO_CALL_STATUS", "TWILIO_DIAL_STATUS", "CampaignConfig", "IncomingCall", "Links", "ParamError", "StepsRetry",
    "attempt_slots_release_stale", "attempt_status_record", "call_by_id", "call_start", "challenge_answer", "call_status_record", "campaign_config",
    "campaign_config_cache_clear", "campaign_options", "dial_result_answer", "failsafe_answer", "failsafe_number",
    "gather_answer", "handler_loads", "handler_option", "incoming_answer", "queue_bridge_record", "queue_offer", "queue_result_answer", "queue_wait_answer", "route", "tracking_number_for", "Turn",
    "voicemail_record", "whisper_answer",
]
