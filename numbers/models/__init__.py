from calltrack.numbers.models.lines import (
    BlockedCaller,
    NoAnswerAction,
    NumberEvent,
    NumberKind,
    NumberStatus,
    NumberType,
    ReceivingNumber,
    TrackingNumber,
)
from calltrack.numbers.models.pools import (
    NumberPool,
    NumberSession,
    OverflowPolicy,
    ParameterKind,
    PoolNumberType,
    PoolParameter,
    PoolResize,
    PoolSample,
)
from calltrack.numbers.models.porting import LocalCarrierMessage, LocalCarrierNumber, PortDirection, PortRequest, PortStatus

__all__ = [
    "BlockedCaller", "NoAnswerAction", "NumberEvent", "NumberKind", "NumberStatus", "NumberType", "ReceivingNumber",
    "TrackingNumber", "NumberPool", "NumberSession", "OverflowPolicy", "ParameterKind", "PoolNumberType", "PoolParameter", "PoolResize", "PoolSample",
    "LocalCarrierMessage", "LocalCarrierNumber", "PortDirection", "PortRequest", "PortStatus",
]
