"""Errors: each class raised from a real answer of the gateway (or of gRPC itself).

UNAUTHENTICATED, PERMISSION_DENIED and the rate limit's RESOURCE_EXHAUSTED are
in test_auth.py (a gateway with API keys), TLS failures in test_tls.py. Only
the codes no gateway answers on purpose (CANCELLED, INTERNAL, ...) are checked
by the mapping table alone.
"""

from __future__ import annotations

import datetime
import threading
import time

import grpc
import pytest

import emitgate
from emitgate._errors import error_from_status
from tests.conftest import barrier, names
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
    # The main stack's gateway runs with --max-message-bytes 262144: the
    # gRPC convention for a message over the receiver's limit is
    # RESOURCE_EXHAUSTED, with no retry delay (the same request never fits).
    with pytest.raises(emitgate.ResourceExhausted) as info:
        client.to("r").emit("huge", "x" * 300_000)
    assert info.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "max_message_bytes = 262144" in str(info.value)
    assert info.value.retry_delay is None


def test_many_violations_are_invalid_argument_not_a_trailer_overflow(
    harness: Stack, client: emitgate.Client
) -> None:
    # grpcio turns trailers over 16 KiB into RESOURCE_EXHAUSTED; one
    # violation per room would be ~40 kB of details. The gateway lists 20
    # and counts the rest.
    sio = harness.client(rooms=["ok"])
    rooms = [f"{i:04}" + "x" * 260 for i in range(700)]
    with pytest.raises(emitgate.InvalidArgument) as info:
        client.to(rooms).emit("e")
    error = info.value
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert fields(error)[:20] == [f"rooms[{i}]" for i in range(20)]
    assert len(error.violations) == 21
    assert error.violations[20].field == ""
    assert error.violations[20].description == "680 more violations not listed"

    with pytest.raises(emitgate.InvalidArgument) as info, client.batch(atomic=True) as b:  # noqa: PT012
        for _ in range(1000):
            b.to("ok").emit("connect")
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert fields(info.value)[:2] == ["items[0].emit.event", "items[1].emit.event"]
    assert info.value.violations[-1].description == "980 more violations not listed"
    assert barrier(harness, "/", sio) == [[]]


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


def test_deadline_exceeded_answered_by_the_gateway(shedding: Stack) -> None:
    # The gateway stops waiting for Redis shortly before the client's deadline
    # (a tenth of it earlier) and answers DEADLINE_EXCEEDED itself.
    c = emitgate.Client(shedding.grpc, insecure=True, timeout=0.8)
    started = time.monotonic()
    with c, pytest.raises(emitgate.DeadlineExceeded) as info:
        c.of("/", target="blackhole").to("r").emit("late")
    assert time.monotonic() - started < 0.8
    assert info.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
    assert "deadline passed" in info.value.message  # the gateway's words, not gRPC's


def test_unimplemented_for_an_operation_the_dialect_lacks(client: emitgate.Client) -> None:
    # python-socketio's message queue has no server-to-server events.
    with pytest.raises(emitgate.Unimplemented) as info:
        client.of("/", target="python").server_side_emit("e", 1)
    assert info.value.code == grpc.StatusCode.UNIMPLEMENTED
    assert "python-socketio" in info.value.message


def test_calls_over_the_in_flight_limit_are_shed_with_a_retry_delay(shedding: Stack) -> None:
    # The gateway serves one call at a time. One call waits for the
    # `blackhole` target's Redis (1 s); a call made meanwhile is shed.
    sio = shedding.client(rooms=["r"])
    probes = 0
    held: list[emitgate.EmitgateError] = []

    def hold(c: emitgate.Client) -> threading.Thread:
        def run() -> None:
            try:
                c.of("/", target="blackhole").to("r").emit("held")
            except emitgate.EmitgateError as error:
                held.append(error)

        thread = threading.Thread(target=run)
        thread.start()
        return thread

    with emitgate.Client(shedding.grpc, insecure=True, timeout=10) as c:
        holder = hold(c)
        deadline = time.monotonic() + 10
        while True:
            assert time.monotonic() < deadline, "the held call never took the only slot"
            if not holder.is_alive():
                # a probe below took the slot first and the held call was shed: again
                assert isinstance(held.pop(), emitgate.ResourceExhausted)
                holder = hold(c)
                continue
            try:
                c.to("r").emit("probe")
            except emitgate.ResourceExhausted as error:
                shed = error
                break
            probes += 1
        holder.join()
        assert shed.code == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "in flight" in shed.message
        assert shed.retry_delay == pytest.approx(0.1)
        [outcome] = held
        assert isinstance(outcome, emitgate.Unavailable)  # the Redis timeout
        c.to("r").emit("after")  # the slot is free again
    # the shed call published nothing
    assert names(barrier(shedding, "/", sio)[0]) == ["probe"] * probes + ["after"]


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


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        (grpc.StatusCode.CANCELLED, emitgate.Cancelled),
        (grpc.StatusCode.INTERNAL, emitgate.Internal),
        (grpc.StatusCode.UNKNOWN, emitgate.Internal),
        (grpc.StatusCode.DATA_LOSS, emitgate.Internal),
        (grpc.StatusCode.ABORTED, emitgate.EmitgateError),
        (grpc.StatusCode.FAILED_PRECONDITION, emitgate.EmitgateError),
    ],
)
def test_codes_without_a_live_answer_map_to_their_class(
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


def test_server_cancelled_after_the_deadline_is_deadline_exceeded() -> None:
    # Gateways before the hardening release let tonic answer CANCELLED
    # "Timeout expired" when the grpc-timeout passed on their side first; once
    # the client's deadline is over that is a deadline.
    error = error_from_status(
        grpc.StatusCode.CANCELLED, "Timeout expired", [], deadline_expired=True
    )
    assert type(error) is emitgate.DeadlineExceeded
    assert error.code == grpc.StatusCode.DEADLINE_EXCEEDED
    error = error_from_status(grpc.StatusCode.CANCELLED, "cancelled", [])
    assert type(error) is emitgate.Cancelled
