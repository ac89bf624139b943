"""A fake gRPC channel for the Google Ads client library: the library's service clients are real, only their channel
(the transport's ``create_channel``) is replaced. It records each call (method path, the request bytes the library
serialised, the metadata its interceptors added) and answers with the next canned response or error, serialised and
parsed back by the library's own (de)serialisers. No network."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import grpc
import pytest

from tracking.services.google_ads import VERSION


@dataclass
class Sent:
    method: str
    body: bytes
    metadata: dict[str, str]
    deserializer: Any = None

    def request(self, message_type: Any) -> Any:
        return message_type.deserialize(self.body)


class FakeCall(grpc.Call):
    def __init__(self, code: grpc.StatusCode = grpc.StatusCode.OK, details: str = "", trailing: tuple = ()) -> None:
        self._code, self._details, self._trailing = code, details, trailing

    def initial_metadata(self) -> tuple:
        return ()

    def trailing_metadata(self) -> tuple:
        return self._trailing

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    def is_active(self) -> bool:
        return False

    def time_remaining(self) -> None:
        return None

    def cancel(self) -> bool:
        return False

    def add_callback(self, callback: Any) -> bool:
        return False


class FakeRpcError(grpc.RpcError, FakeCall, grpc.Future):
    """What grpc raises for a failed call: an RpcError that is also the Call (code, details, trailing metadata) and
    its finished Future (the interceptors ask it for ``exception()``), as grpc's own ``_InactiveRpcError``."""

    def __init__(self, code: grpc.StatusCode, details: str = "", trailing: tuple = ()) -> None:
        Exception.__init__(self, details)
        FakeCall.__init__(self, code, details, trailing)

    def exception(self, timeout=None) -> FakeRpcError:
        return self

    def result(self, timeout=None):
        raise self

    def traceback(self, timeout=None) -> None:
        return None

    def done(self) -> bool:
        return True

    def running(self) -> bool:
        return False

    def cancelled(self) -> bool:
        return False

    def add_done_callback(self, fn) -> None:
        fn(self)


class _Callable(grpc.UnaryUnaryMultiCallable):
    def __init__(self, channel: FakeChannel, method: str, serializer: Any, deserializer: Any) -> None:
        self.channel, self.method, self.serializer, self.deserializer = channel, method, serializer, deserializer

    def with_call(self, request, timeout=None, metadata=None, credentials=None, wait_for_ready=None, compression=None):
        with self.channel.lock:
            self.channel.sent.append(Sent(self.method, self.serializer(request), dict(metadata or ())))
            answer = self.channel.answers.pop(0)
        time.sleep(self.channel.delay)  # a slow Google: the caller holds whatever it holds meanwhile
        if isinstance(answer, Exception):
            raise answer
        return self.deserializer(type(answer).serialize(answer)), FakeCall()

    def __call__(self, request, timeout=None, metadata=None, credentials=None, wait_for_ready=None, compression=None):
        return self.with_call(request, timeout=timeout, metadata=metadata)[0]

    def future(self, *args, **kwargs):
        raise NotImplementedError


class FakeChannel(grpc.Channel):
    def __init__(self) -> None:
        self.answers: list[Any] = []
        self.sent: list[Sent] = []
        self.credentials: list[Any] = []
        self.delay = 0.0
        self.closed = 0
        self.lock = threading.Lock()

    def answer(self, *answers: Any) -> None:
        self.answers.extend(answers)

    def unary_unary(self, method, request_serializer=None, response_deserializer=None, _registered_method=False):
        return _Callable(self, method, request_serializer, response_deserializer)

    def unary_stream(self, *args, **kwargs):
        raise NotImplementedError

    def stream_unary(self, *args, **kwargs):
        raise NotImplementedError

    def stream_stream(self, *args, **kwargs):
        raise NotImplementedError

    def subscribe(self, callback, try_to_connect=False) -> None:
        pass

    def unsubscribe(self, callback) -> None:
        pass

    def close(self) -> None:
        self.closed += 1


TRANSPORTS = {
    "conversion_upload_service": "ConversionUploadServiceGrpcTransport",
    "conversion_adjustment_upload_service": "ConversionAdjustmentUploadServiceGrpcTransport",
    "google_ads_service": "GoogleAdsServiceGrpcTransport",
}


def install(monkeypatch: pytest.MonkeyPatch) -> FakeChannel:
    """Every Google Ads service client the library makes gets ``FakeChannel`` (the same one) as its channel."""
    from importlib import import_module

    channel = FakeChannel()

    def create_channel(cls, host=None, credentials=None, **kwargs):
        channel.credentials.append(credentials)
        return channel

    for module, name in TRANSPORTS.items():
        transport = getattr(import_module(f"google.ads.googleads.{VERSION}.services.services.{module}.transports.grpc"), name)
        monkeypatch.setattr(transport, "create_channel", classmethod(create_channel))
    return channel


def types(module: str) -> Any:
    from importlib import import_module

    return import_module(f"google.ads.googleads.{VERSION}.services.types.{module}")


def failure(code_field: str, code_name: str, message: str) -> Any:
    """A GoogleAdsFailure with one error (``code_field``: e.g. conversion_upload_error, ``code_name`` its enum value)."""
    from importlib import import_module

    errors = import_module(f"google.ads.googleads.{VERSION}.errors.types.errors")
    enum_holder = import_module(f"google.ads.googleads.{VERSION}.errors.types.{code_field}")
    camel = "".join(p.title() for p in code_field.split("_"))
    enum = getattr(getattr(enum_holder, camel + "Enum"), camel)
    return errors.GoogleAdsFailure(errors=[errors.GoogleAdsError(
        error_code=errors.ErrorCode(**{code_field: getattr(enum, code_name)}), message=message)])


def partial_failure(code_field: str, code_name: str, message: str) -> Any:
    """A response's partial_failure_error as Google sends it: a google.rpc.Status holding a GoogleAdsFailure."""
    from google.protobuf import any_pb2
    from google.rpc import status_pb2

    found = failure(code_field, code_name, message)
    detail = any_pb2.Any(type_url=f"type.googleapis.com/google.ads.googleads.{VERSION}.errors.GoogleAdsFailure",
                         value=type(found).serialize(found))
    return status_pb2.Status(code=3, message=message, details=[detail])


def google_ads_error(code: grpc.StatusCode, code_field: str, code_name: str, message: str) -> FakeRpcError:
    """A failed call as Google answers it: the GoogleAdsFailure in the trailing metadata (the library's exception
    interceptor turns it into a GoogleAdsException) and a request id."""
    found = failure(code_field, code_name, message)
    return FakeRpcError(code, message, trailing=(
        (f"google.ads.googleads.{VERSION}.errors.googleadsfailure-bin", type(found).serialize(found)), ("request-id", "req-42")))
