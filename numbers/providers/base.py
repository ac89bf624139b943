"""The carrier interface lives in :mod:`calltrack.carriers` (shared, so every layer may name it); re-exported
here for the carriers of this app."""

from __future__ import annotations

from calltrack.carriers import (
    AvailableNumber,
    CallerLookupResult,
    Carrier,
    CarrierError,
    ClosingChunks,
    PortStatusResult,
    PurchasedNumber,
    RecordingAudio,
)

__all__ = ["AvailableNumber", "CallerLookupResult", "Carrier", "CarrierError", "ClosingChunks", "PortStatusResult", "PurchasedNumber", "RecordingAudio"]
