"""Twilio-facing voice webhooks. /voice/incoming, /voice/status and /voice/fallback are set at Twilio: never rename them."""

from django.urls import path

from routing import views

app_name = "routing"

urlpatterns = [
    path("voice/incoming", views.incoming, name="incoming"),
    path("voice/status", views.status, name="status"),
    path("voice/gather", views.gather, name="gather"),
    path("voice/challenge", views.challenge, name="challenge"),
    path("voice/dial-status", views.dial_status, name="dial-status"),
    path("voice/attempt-status", views.attempt_status, name="attempt-status"),
    path("voice/whisper", views.whisper, name="whisper"),
    path("voice/voicemail", views.voicemail, name="voicemail"),
    path("voice/recording-status", views.recording_status, name="recording-status"),
    path("voice/queue-wait", views.queue_wait, name="queue-wait"),
    path("voice/queue-result", views.queue_result, name="queue-result"),
    path("voice/queue-bridge", views.queue_bridge, name="queue-bridge"),
    path("voice/fallback", views.fallback, name="fallback"),
    # Texts (issue 29): each tracking number's SMS URL and the status callback of the texts we send.
    path("sms/incoming", views.sms_incoming, name="sms-incoming"),
    path("sms/status", views.sms_status, name="sms-status"),
]
