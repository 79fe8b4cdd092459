"""Exceptions raised by emitgate clients, one class per gRPC status family."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import ClassVar, Union

import grpc
import grpc.aio
from google.protobuf.message import DecodeError

from emitgate._gen.emitgate_vendor.google.rpc import error_details_pb2, status_pb2

__all__ = [
    "Cancelled",
    "DeadlineExceeded",
    "EmitgateError",
    "FieldViolation",
    "Internal",
    "InvalidArgument",
    "NotFound",
    "PermissionDenied",
    "ResourceExhausted",
    "Unauthenticated",
    "Unavailable",
    "Unimplemented",
]

_STATUS_DETAILS_KEY = "grpc-status-details-bin"
_BAD_REQUEST = "google.rpc.BadRequest"
_RETRY_INFO = "google.rpc.RetryInfo"
_ERROR_INFO = "google.rpc.ErrorInfo"

LIMIT_EXCEEDED = "LIMIT_EXCEEDED"
"""``google.rpc.ErrorInfo.reason`` of a request over one of the gateway's limits."""

ERROR_DOMAIN = "emitgate"
"""``google.rpc.ErrorInfo.domain`` of the gateway's errors."""


@dataclass(frozen=True)
class FieldViolation:
    """One invalid field of a request, as reported by ``google.rpc.BadRequest``.

    Attributes:
        field: The path of the field from the request root, such as ``event``,
            ``rooms[2]``, ``args[0].json`` or ``items[3].emit.event``.
        description: Why the value is invalid.

    """

    field: str
    description: str

    def __str__(self) -> str:
        """Return ``field: description``."""
        return f"{self.field}: {self.description}"


class EmitgateError(Exception):
    """The root of every error a call to the gateway can raise.

    Attributes:
        code: The gRPC status code of the failure.
        message: The human-readable message (the gRPC status details).
        limits: The gateway limits the request went over, by name, with the
            value in force (``{"max_batch_items": 1000}``), read from the
            metadata of the ``google.rpc.ErrorInfo`` detail (reason
            ``LIMIT_EXCEEDED``, domain ``emitgate``), never from message text;
            empty when the gateway named none.

    """

    default_code: ClassVar[grpc.StatusCode] = grpc.StatusCode.UNKNOWN

    def __init__(
        self,
        message: str,
        *,
        code: grpc.StatusCode | None = None,
        limits: Mapping[str, int] | None = None,
    ) -> None:
        """Create an error with a message and, optionally, a specific status code."""
        super().__init__(message)
        self.message: str = message
        self.code: grpc.StatusCode = code if code is not None else self.default_code
        self.limits: dict[str, int] = dict(limits or {})

    def __str__(self) -> str:
        """Return ``CODE_NAME: message``."""
        return f"{self.code.name}: {self.message}"


class InvalidArgument(EmitgateError, ValueError):
    """The request was invalid (``INVALID_ARGUMENT``); nothing was published.

    Also raised before any network call when the client can tell the server
    would refuse the request, such as an ``emit`` without a room, and for
    ``OUT_OF_RANGE`` (a request larger than the gateway accepts).

    Attributes:
        violations: Every invalid field, decoded from the ``google.rpc.BadRequest``
            the gateway sends (empty if it sent none).

    """

    default_code = grpc.StatusCode.INVALID_ARGUMENT

    def __init__(
        self,
        message: str,
        *,
        violations: Iterable[FieldViolation] = (),
        code: grpc.StatusCode | None = None,
        limits: Mapping[str, int] | None = None,
    ) -> None:
        """Create the error with its field violations."""
        super().__init__(message, code=code, limits=limits)
        self.violations: tuple[FieldViolation, ...] = tuple(violations)

    def __str__(self) -> str:
        """Return the message followed by the field violations."""
        text = super().__str__()
        missing = [str(v) for v in self.violations if str(v) not in self.message]
        if missing:
            text += " [" + "; ".join(missing) + "]"
        return text


class Unauthenticated(EmitgateError):
    """The API key is missing or unknown (``UNAUTHENTICATED``)."""

    default_code = grpc.StatusCode.UNAUTHENTICATED


class PermissionDenied(EmitgateError):
    """The API key may not do this call (``PERMISSION_DENIED``)."""

    default_code = grpc.StatusCode.PERMISSION_DENIED


class NotFound(EmitgateError):
    """The named target is not configured on the gateway (``NOT_FOUND``)."""

    default_code = grpc.StatusCode.NOT_FOUND


class Unavailable(EmitgateError):
    """The gateway or the target's Redis could not be reached (``UNAVAILABLE``).

    Also raised when the TLS handshake fails (an untrusted gateway certificate,
    a missing or unknown client certificate, plaintext against TLS). Nothing is
    known to have been published; retrying later is reasonable.
    """

    default_code = grpc.StatusCode.UNAVAILABLE


class DeadlineExceeded(EmitgateError):
    """The call did not finish within its timeout (``DEADLINE_EXCEEDED``).

    The event may or may not have been published.
    """

    default_code = grpc.StatusCode.DEADLINE_EXCEEDED


class ResourceExhausted(EmitgateError):
    """A limit was hit (``RESOURCE_EXHAUSTED``); nothing was published.

    The gateway answers it when the API key is over its rate (a batch counts
    its items) or when it has too many calls in flight; gRPC itself when a
    message is over a channel's size limit.

    Attributes:
        retry_delay: Seconds to wait before retrying, from the
            ``google.rpc.RetryInfo`` the server sent, or ``None`` if it sent none.

    """

    default_code = grpc.StatusCode.RESOURCE_EXHAUSTED

    def __init__(
        self,
        message: str,
        *,
        retry_delay: float | None = None,
        code: grpc.StatusCode | None = None,
        limits: Mapping[str, int] | None = None,
    ) -> None:
        """Create the error with the server's retry delay, if any."""
        super().__init__(message, code=code, limits=limits)
        self.retry_delay: float | None = retry_delay


class Cancelled(EmitgateError):
    """The call was cancelled (``CANCELLED``)."""

    default_code = grpc.StatusCode.CANCELLED


class Unimplemented(EmitgateError):
    """The gateway does not implement this call (``UNIMPLEMENTED``)."""

    default_code = grpc.StatusCode.UNIMPLEMENTED


class Internal(EmitgateError):
    """The gateway failed unexpectedly (``INTERNAL``, ``UNKNOWN`` or ``DATA_LOSS``)."""

    default_code = grpc.StatusCode.INTERNAL


_SIMPLE: dict[grpc.StatusCode, type[EmitgateError]] = {
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
    grpc.StatusCode.CANCELLED: Cancelled,
    grpc.StatusCode.UNIMPLEMENTED: Unimplemented,
    grpc.StatusCode.INTERNAL: Internal,
    grpc.StatusCode.UNKNOWN: Internal,
    grpc.StatusCode.DATA_LOSS: Internal,
}

_CODES_BY_NUMBER: dict[int, grpc.StatusCode] = {c.value[0]: c for c in grpc.StatusCode}

Metadata = Iterable[tuple[str, Union[str, bytes]]]


def status_code(number: int) -> grpc.StatusCode:
    """Return the ``grpc.StatusCode`` of a numeric ``google.rpc.Code``."""
    return _CODES_BY_NUMBER.get(number, grpc.StatusCode.UNKNOWN)


def _type_name(type_url: str) -> str:
    return type_url.rsplit("/", 1)[-1]


def error_from_status(
    code: grpc.StatusCode,
    message: str,
    trailing_metadata: Metadata | None,
    *,
    deadline_expired: bool = False,
) -> EmitgateError:
    """Build the exception for a failed call from its status and trailers.

    The ``grpc-status-details-bin`` trailer, when present, is decoded as a
    ``google.rpc.Status``; its ``BadRequest`` and ``RetryInfo`` details fill
    :attr:`InvalidArgument.violations` and :attr:`ResourceExhausted.retry_delay`.

    ``deadline_expired`` tells that the call's deadline had passed when it
    failed: a ``CANCELLED`` answer is then a deadline enforced by the server
    (tonic answers ``CANCELLED: Timeout expired``) and becomes
    :class:`DeadlineExceeded`, as the client's own timer would have reported.
    """
    if code == grpc.StatusCode.CANCELLED and deadline_expired:
        return DeadlineExceeded(message, code=grpc.StatusCode.DEADLINE_EXCEEDED)
    violations: list[FieldViolation] = []
    retry_delay: float | None = None
    limits: dict[str, int] = {}
    for key, value in trailing_metadata or ():
        if key != _STATUS_DETAILS_KEY or not isinstance(value, bytes):
            continue
        try:
            status = status_pb2.Status.FromString(value)
        except DecodeError:  # a malformed trailer must not hide the real error
            continue
        if status.message and not message:
            message = status.message
        for detail in status.details:
            name = _type_name(detail.type_url)
            try:
                if name == _BAD_REQUEST:
                    bad = error_details_pb2.BadRequest.FromString(detail.value)
                    violations.extend(
                        FieldViolation(v.field, v.description) for v in bad.field_violations
                    )
                elif name == _ERROR_INFO:
                    error_info = error_details_pb2.ErrorInfo.FromString(detail.value)
                    if error_info.reason == LIMIT_EXCEEDED and error_info.domain == ERROR_DOMAIN:
                        limits.update(_limit_values(error_info.metadata.items()))
                elif name == _RETRY_INFO:
                    info = error_details_pb2.RetryInfo.FromString(detail.value)
                    if info.HasField("retry_delay"):
                        delay = info.retry_delay
                        retry_delay = delay.seconds + delay.nanos / 1e9
            except DecodeError:  # skip a detail that does not decode
                continue
    if code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.OUT_OF_RANGE):
        return InvalidArgument(message, violations=violations, code=code, limits=limits)
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
        return ResourceExhausted(message, retry_delay=retry_delay, limits=limits)
    cls = _SIMPLE.get(code)
    if cls is not None:
        return cls(message, code=code, limits=limits)
    return EmitgateError(message, code=code, limits=limits)


def _limit_values(pairs: Iterable[tuple[str, str]]) -> dict[str, int]:
    """Return the ``name -> value`` pairs whose value is a decimal integer."""
    return {name: int(value) for name, value in pairs if name and value.isdigit()}


def error_from_rpc_error(error: grpc.RpcError, *, deadline_expired: bool = False) -> EmitgateError:
    """Translate an exception raised by a grpc (sync or asyncio) call."""
    if isinstance(error, (grpc.Call, grpc.aio.AioRpcError)):
        return error_from_status(
            error.code(),
            error.details() or "",
            error.trailing_metadata(),
            deadline_expired=deadline_expired,
        )
    return EmitgateError(str(error))
