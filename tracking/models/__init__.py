from tracking.models.ad_platforms import (
    Adjustment,
    ConversionDestination,
    ConversionUpload,
    DestinationKind,
    UploadStatus,
    UploadTrigger,
    UploadValue,
)
from tracking.models.alerts import (
    DROP_KINDS,
    Alert,
    AlertDelivery,
    AlertKind,
    AlertLevel,
    AlertRecipient,
    FraudMonitor,
    MonitorKind,
)
from tracking.models.audit import AuditOrigin, MoneyChange
from tracking.models.calls import (
    AttemptKind,
    AttemptStatus,
    Attestation,
    Call,
    CallAttempt,
    CallEvent,
    CallStatus,
    ConversionStatus,
    DeliveryStatus,
    QueuedCall,
    RecordingStatus,
    WebhookAttempt,
    WebhookDelivery,
)
from tracking.models.campaigns import (
    Campaign,
    CampaignHandler,
    ConversionKind,
    ConversionRule,
    ConversionSide,
    DedupeScope,
    FallbackCredit,
    GreetingKind,
    IVRAction,
    IVRMenu,
    IVROption,
    RoutingStrategy,
    Webhook,
    WebhookEvent,
    WebhookMethod,
)
from tracking.models.caps import CapCounter, CapDelta
from tracking.models.identity import CallerLookup
from tracking.models.lookup import RoutingTable, RoutingTableRow, WhenUnavailable
from tracking.models.parties import CapTrigger, Collaborator, Contact, DuplicateOn, Handler, Source
from tracking.models.reports import CallDayRollup, CallRollupDirty, CallRollupZone, rollup_key_hash
from tracking.models.tagging import HoursMatch, TaggingHours
from tracking.models.texts import (
    EmailForwardStatus,
    TextConversion,
    TextDirection,
    TextEmailForward,
    TextMessage,
    TextOptOut,
    TextPurpose,
    TextRoute,
    TextStatus,
)

__all__ = [
    "DROP_KINDS", "Alert", "AlertDelivery", "AlertKind", "AlertLevel", "AlertRecipient", "FraudMonitor", "MonitorKind",
    "AttemptKind", "AttemptStatus", "Attestation", "Call", "CallAttempt", "CallEvent", "CallStatus", "ConversionStatus",
    "DeliveryStatus", "QueuedCall", "RecordingStatus", "WebhookAttempt", "WebhookDelivery", "Campaign", "CampaignHandler", "ConversionKind", "ConversionRule",
    "ConversionSide", "DedupeScope", "FallbackCredit", "GreetingKind", "IVRAction", "IVRMenu", "IVROption", "RoutingStrategy", "Webhook",
    "WebhookEvent", "WebhookMethod", "CapCounter", "CapDelta", "CapTrigger", "Collaborator", "Contact", "DuplicateOn", "Handler", "Source",
    "HoursMatch", "TaggingHours", "RoutingTable", "RoutingTableRow", "WhenUnavailable",
    "CallDayRollup", "CallRollupDirty", "CallerLookup", "CallRollupZone", "rollup_key_hash", "AuditOrigin", "MoneyChange",
    "Adjustment", "ConversionDestination", "ConversionUpload", "DestinationKind", "UploadStatus", "UploadTrigger", "UploadValue",
    "EmailForwardStatus", "TextConversion", "TextDirection", "TextEmailForward", "TextMessage", "TextOptOut", "TextPurpose", "TextRoute",
    "TextStatus",
]
