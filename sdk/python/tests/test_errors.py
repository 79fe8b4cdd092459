"""Errors: each class raised from a real answer where the gateway can give one today.

The gateway does not check API keys or rate limits yet, so UNAUTHENTICATED,
PERMISSION_DENIED and RESOURCE_EXHAUSTED with google.rpc.RetryInfo are covered
by decoding the exact trailer bytes the gateway will send (built with the
generated google.rpc messages) instead of a live answer.
"""

from __future__ import annotations

import datetime
import time

import grpc
import pytest
from google.protobuf import any_pb2, duration_pb2

import emitgate
from emitgate._errors import error_from_status
from emitgate._gen.emitgate_vendor.google.rpc import error_details_pb2, status_pb2
from tests.conftest import barrier
from tests.stack import Stack


def fields(error: emitgate.InvalidArgument) -> list[str]:
    return [v.field for v in error.violations]


def test_invalid_argument_carries_every_field_violation(
    harness: Stack, client: emitgate.Client
) -> None:
    sio = harness.client(rooms=["ok"])

    with pytest.raises(emitgate.InvalidArgument) as info:
        client.to(["ok", "", "fine", ""]).except_("").emit("connect", 1)

    error = info.value
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert isinstance(error, emitgate.EmitgateError)
    assert isinstance(error, ValueError)
    # duplicates are dropped client-side, as the JS emitter does (a Set)
    assert sorted(fields(error)) == ["event", "except_rooms[0]", "rooms[1]"]
    assert all(v.description for v in error.violations)
    assert "INVALID_ARGUMENT" in str(error)
    assert barrier(harness, "/", sio) == [[]]  # nothing was published


@pytest.mark.parametrize(
    "event", ["connect", "connect_error", "disconnect", "disconnecting", "newListener"]
)
def test_reserved_event_names_are_refused(client: emitgate.Client, event: str) -> None:
    with pytest.raises(emitgate.InvalidArgument) as info:
        client.to("r").emit(event)
    assert fields(info.value) == ["event"]


def test_invalid_argument_on_socket_operations(client: emitgate.Client) -> None:
    with pytest.raises(emitgate.InvalidArgument) as info:
        client.sockets_join([])
    assert fields(info.value) == ["join_rooms"]
    with pytest.raises(emitgate.InvalidArgument) as info:
        client.to("r").sockets_leave([""])
    assert fields(info.value) == ["leave_rooms[0]"]
    with pytest.raises(emitgate.InvalidArgument) as info:
        client.server_side_emit("connection")
    assert fields(info.value) == ["event"]


def test_too_many_arguments(client: emitgate.Client) -> None:
    with pytest.raises(emitgate.InvalidArgument) as info:
        client.to("r").emit("many", *range(65))
    assert fields(info.value) == ["args"]


def test_request_larger_than_the_gateway_accepts(client: emitgate.Client) -> None:
    # The main stack's gateway runs with --max-message-bytes 262144.
    with pytest.raises(emitgate.InvalidArgument) as info:
        client.to("r").emit("huge", "x" * 300_000)
    assert info.value.code == grpc.StatusCode.OUT_OF_RANGE


def test_not_found_for_an_unknown_target(harness: Stack, client: emitgate.Client) -> None:
    with pytest.raises(emitgate.NotFound) as info:
        client.of("/", target="nope").to("r").emit("e")
    assert info.value.code == grpc.StatusCode.NOT_FOUND
    assert "nope" in info.value.message
    c = emitgate.Client(harness.grpc, insecure=True, target="nope")
    with c, pytest.raises(emitgate.NotFound):
        c.broadcast("e")


def test_unavailable_when_the_target_redis_is_down(client: emitgate.Client) -> None:
    with pytest.raises(emitgate.Unavailable) as info:
        client.of("/", target="down").broadcast("e")
    assert info.value.code == grpc.StatusCode.UNAVAILABLE
    with pytest.raises(emitgate.Unavailable):
        client.of("/", target="down").disconnect_sockets()


def test_unavailable_when_the_gateway_is_unreachable() -> None:
    c = emitgate.Client("127.0.0.1:1", insecure=True, timeout=5)
    with c, pytest.raises(emitgate.Unavailable):
        c.to("r").emit("e")


def test_unavailable_after_the_gateway_redis_timeout(client: emitgate.Client) -> None:
    # The main stack's gateway runs with --redis-timeout-ms 500.
    started = time.monotonic()
    with pytest.raises(emitgate.Unavailable):
        client.of("/", target="blackhole").to("r").emit("e")
    assert 0.4 < time.monotonic() - started < 5


def test_deadline_exceeded(harness: Stack) -> None:
    # Redis of the `blackhole` target never answers: the call outlives its deadline.
    c = emitgate.Client(harness.grpc, insecure=True, timeout=0.1)
    with c, pytest.raises(emitgate.DeadlineExceeded) as info:
        c.of("/", target="blackhole").to("r").emit("late")
    assert info.value.code == grpc.StatusCode.DEADLINE_EXCEEDED


def test_resource_exhausted_from_the_grpc_runtime(harness: Stack) -> None:
    # A message over the channel's send limit is refused by gRPC itself.
    options = [("grpc.max_send_message_length", 1024)]
    c = emitgate.Client(harness.grpc, insecure=True, options=options)
    with c, pytest.raises(emitgate.ResourceExhausted) as info:
        c.to("r").emit("big", "x" * 4096)
    assert info.value.retry_delay is None


def test_tls_client_against_a_plaintext_gateway_is_unavailable(harness: Stack) -> None:
    with emitgate.Client(harness.grpc, timeout=5) as c, pytest.raises(emitgate.Unavailable):
        c.broadcast("e")


def test_argument_errors_name_the_argument_before_any_call() -> None:
    with emitgate.Client("127.0.0.1:1", insecure=True) as c:
        op = c.to("r")
        with pytest.raises(TypeError, match="argument 1"):
            op.emit("e", 1, {1, 2})
        with pytest.raises(ValueError, match="argument 0"):
            op.emit("e", float("nan"))
        with pytest.raises(ValueError, match=r"argument 2 at \['x'\]"):
            op.emit("e", 1, 2, {"x": float("inf")})
        with pytest.raises(ValueError, match="argument 0"):
            op.emit("e", 2**64)
        with pytest.raises(TypeError, match="naive datetime"):
            op.emit("e", datetime.datetime(2024, 1, 1))
        with pytest.raises(TypeError, match="argument 0"):
            op.emit("e", object())


def _trailer(code: int, message: str, *details: object) -> list[tuple[str, bytes]]:
    status = status_pb2.Status(code=code, message=message)
    for detail in details:
        packed = any_pb2.Any()
        name = type(detail).DESCRIPTOR.name  # type: ignore[attr-defined]
        packed.type_url = f"type.googleapis.com/google.rpc.{name}"
        packed.value = detail.SerializeToString()  # type: ignore[attr-defined]
        status.details.append(packed)
    return [("grpc-status-details-bin", status.SerializeToString())]


def test_decoding_bad_request_details() -> None:
    bad = error_details_pb2.BadRequest(
        field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field="event", description="empty"),
            error_details_pb2.BadRequest.FieldViolation(field="rooms[2]", description="empty"),
        ]
    )
    error = error_from_status(grpc.StatusCode.INVALID_ARGUMENT, "bad", _trailer(3, "bad", bad))
    assert isinstance(error, emitgate.InvalidArgument)
    assert error.violations == (
        emitgate.FieldViolation("event", "empty"),
        emitgate.FieldViolation("rooms[2]", "empty"),
    )


def test_decoding_retry_info_for_resource_exhausted() -> None:
    retry = error_details_pb2.RetryInfo(
        retry_delay=duration_pb2.Duration(seconds=1, nanos=500_000_000)
    )
    trailer = _trailer(8, "slow down", retry)
    error = error_from_status(grpc.StatusCode.RESOURCE_EXHAUSTED, "slow down", trailer)
    assert isinstance(error, emitgate.ResourceExhausted)
    assert error.retry_delay == 1.5
    assert error.code == grpc.StatusCode.RESOURCE_EXHAUSTED


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        (grpc.StatusCode.UNAUTHENTICATED, emitgate.Unauthenticated),
        (grpc.StatusCode.PERMISSION_DENIED, emitgate.PermissionDenied),
        (grpc.StatusCode.NOT_FOUND, emitgate.NotFound),
        (grpc.StatusCode.UNAVAILABLE, emitgate.Unavailable),
        (grpc.StatusCode.DEADLINE_EXCEEDED, emitgate.DeadlineExceeded),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, emitgate.ResourceExhausted),
        (grpc.StatusCode.CANCELLED, emitgate.Cancelled),
        (grpc.StatusCode.UNIMPLEMENTED, emitgate.Unimplemented),
        (grpc.StatusCode.INTERNAL, emitgate.Internal),
        (grpc.StatusCode.UNKNOWN, emitgate.Internal),
        (grpc.StatusCode.INVALID_ARGUMENT, emitgate.InvalidArgument),
        (grpc.StatusCode.OUT_OF_RANGE, emitgate.InvalidArgument),
        (grpc.StatusCode.ABORTED, emitgate.EmitgateError),
    ],
)
def test_every_code_maps_to_its_class(
    code: grpc.StatusCode, cls: type[emitgate.EmitgateError]
) -> None:
    error = error_from_status(code, "m", [])
    assert type(error) is cls
    assert error.code == code
    assert error.message == "m"


def test_malformed_status_details_do_not_hide_the_error() -> None:
    trailer = [("grpc-status-details-bin", b"\xff\xff not a status")]
    error = error_from_status(grpc.StatusCode.INVALID_ARGUMENT, "bad", trailer)
    assert isinstance(error, emitgate.InvalidArgument)
    assert error.violations == ()


def test_server_enforced_deadline_is_deadline_exceeded() -> None:
    # tonic answers CANCELLED "Timeout expired" when the grpc-timeout passes on
    # its side first; once the client's deadline is over that is a deadline.
    error = error_from_status(
        grpc.StatusCode.CANCELLED, "Timeout expired", [], deadline_expired=True
    )
    assert type(error) is emitgate.DeadlineExceeded
    assert error.code == grpc.StatusCode.DEADLINE_EXCEEDED
    error = error_from_status(grpc.StatusCode.CANCELLED, "cancelled", [])
    assert type(error) is emitgate.Cancelled
