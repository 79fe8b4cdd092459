"""The waiting calls (acks, fetch_sockets, all_rooms, server_count) against real servers.

The clients ack as the harness tells them (``ack={"reply": ...}``), the
servers' handlers reply to server-side emits as ``listen(reply=...)`` says.
"""

from __future__ import annotations

import base64
import datetime
import time
from typing import Any

import msgpack
import pytest
from google.protobuf import struct_pb2

import emitgate
from emitgate._feedback import decode_argument
from emitgate._gen.emitgate.v1 import emitter_pb2 as pb
from tests.stack import Stack


def b64(data: bytes) -> dict[str, str]:
    return {"$binary": base64.b64encode(data).decode()}


def by_type(values: tuple[Any, ...]) -> list[Any]:
    """Sort acks that arrive in any order by their repr (mixed types)."""
    return sorted(values, key=repr)


# -- sync -----------------------------------------------------------------------


def test_emit_with_ack_gathers_values_binary_and_nested_binary(
    harness: Stack, client: emitgate.Client
) -> None:
    harness.client(server=0, rooms=["r"], ack={"reply": {"ok": True, "n": 7, "x": 1.5}})
    harness.client(server=1, rooms=["r"], ack={"reply": b64(b"\x01\x02\x03")})
    harness.client(server=1, rooms=["r"], ack={"reply": {"file": b64(b"\x09"), "name": "x"}})
    outside = harness.client(server=0, rooms=["other"], ack={"reply": "wrong"})

    result = client.timeout(5).to("r").emit_with_ack("question", "q1")

    assert result.complete
    assert (result.sockets, result.servers, result.servers_expected) == (3, 2, 2)
    assert by_type(result.acks) == by_type(
        ({"ok": True, "n": 7, "x": 1.5}, b"\x01\x02\x03", {"file": b"\x09", "name": "x"})
    )
    [values] = [a for a in result.acks if isinstance(a, dict) and "ok" in a]
    assert type(values["n"]) is int  # 7 stays 7
    assert outside.received() == []


def test_a_client_that_never_acks_makes_it_incomplete(
    harness: Stack, client: emitgate.Client
) -> None:
    acking = harness.client(server=0, ack={"reply": 1})
    harness.client(server=1, ack="never")

    started = time.monotonic()
    result = client.timeout(0.6).emit_with_ack("poll")  # no room: every socket of "/"
    elapsed = time.monotonic() - started

    assert not result.complete
    assert result.acks == (1,)
    assert (result.sockets, result.servers, result.servers_expected) == (2, 2, 2)
    assert 0.5 <= elapsed < 5, elapsed
    assert acking.events(until="poll")[-1] == {"event": "poll", "args": []}


def test_a_namespace_without_sockets_is_complete_at_once(
    harness: Stack, client: emitgate.Client
) -> None:
    started = time.monotonic()
    result = client.timeout(5).emit_with_ack("nobody")
    assert result == emitgate.AckResult(
        sockets=0, acks=(), servers=2, servers_expected=2, complete=True
    )
    assert time.monotonic() - started < 2, "answered by the servers, not by the timeout"


def test_fetch_sockets_of_a_room_a_namespace_and_with_except(
    harness: Stack, client: emitgate.Client
) -> None:
    a = harness.client(
        server=0,
        rooms=["r", "vip"],
        data={"user": "u1", "n": 3, "tags": ["a", None]},
        auth={"token": "secret-token"},
        headers={"cookie": "session=secret", "authorization": "Bearer secret", "x-app": "demo"},
    )
    b = harness.client(server=1, rooms=["r"])
    c = harness.client(server=1, rooms=["elsewhere"])

    result = client.in_("r").fetch_sockets()

    assert result.complete
    assert not result.truncated
    assert (result.servers, result.servers_expected) == (2, 2)
    assert sorted(s.id for s in result.sockets) == sorted([a.sid, b.sid])
    [sa] = [s for s in result.sockets if s.id == a.sid]
    assert sa.rooms == {a.sid, "r", "vip"}
    assert sa.data == {"user": "u1", "n": 3, "tags": ["a", None]}
    assert type(sa.data["n"]) is int
    assert sa.handshake.headers["x-app"] == "demo"
    assert "cookie" not in sa.handshake.headers
    assert "authorization" not in sa.handshake.headers
    assert sa.handshake.issued > 0
    assert sa.handshake.address
    assert sa.handshake.url.startswith("/socket.io/")
    assert "secret" not in repr(result), "a secret came back"
    [sb] = [s for s in result.sockets if s.id == b.sid]
    assert sb.data == {}  # socket.data's initial value

    everyone = client.fetch_sockets()
    assert sorted(s.id for s in everyone.sockets) == sorted([a.sid, b.sid, c.sid])
    skipped = client.of("/").except_("vip").fetch_sockets()
    assert sorted(s.id for s in skipped.sockets) == sorted([b.sid, c.sid])


def test_all_rooms_and_server_count(harness: Stack, client: emitgate.Client) -> None:
    a = harness.client(server=0, rooms=["x"])
    b = harness.client(server=1, rooms=["y", "x"])

    rooms = client.timeout(3).all_rooms()

    assert rooms.complete
    assert not rooms.truncated
    assert rooms.rooms == tuple(sorted([a.sid, b.sid, "x", "y"]))
    assert (rooms.servers, rooms.servers_expected) == (2, 2)
    assert client.server_count() == 2
    assert client.of("/").server_count() == 2


def test_server_side_emit_with_ack_reaches_handlers_that_reply(
    harness: Stack, client: emitgate.Client
) -> None:
    harness.listen("/", "ping", reply={"pong": 1}, servers=[0, 1])
    result = client.timeout(3).server_side_emit_with_ack("ping", "hi")
    assert result.complete
    assert result.servers_expected == 2
    assert [r.reply for r in result.replies] == [{"pong": 1}, {"pong": 1}]
    assert [e["args"] for e in harness.server_events("/", "ping", count=2)] == [["hi"], ["hi"]]

    # Only server 0's handler calls back: the call ends at its timeout.
    harness.listen("/", "half", reply="only-0", servers=[0])
    result = client.of("/").timeout(0.6).server_side_emit_with_ack("half")
    assert not result.complete
    assert result.servers_expected == 2
    assert [r.reply for r in result.replies] == ["only-0"]


def test_waiting_calls_check_their_input_before_any_network_call(
    client: emitgate.Client,
) -> None:
    with pytest.raises(ValueError, match="positive"):
        client.timeout(0)
    with pytest.raises(TypeError):
        client.timeout("5")  # type: ignore[arg-type]
    with pytest.raises(emitgate.InvalidArgument) as info:
        client.to("r").server_side_emit_with_ack("e")
    assert [v.field for v in info.value.violations] == ["rooms"]
    with pytest.raises(TypeError):
        client.to("r").emit_with_ack(7)  # type: ignore[arg-type]


def test_timeout_is_kept_along_the_chain(client: emitgate.Client) -> None:
    op = client.timeout(1.5).to("a").in_("b").except_("c").volatile
    assert op._sel.ack_timeout_ms == 1500
    assert op.rooms == ("a", "b")
    assert client.to("a")._sel.ack_timeout_ms == 0  # the gateway's default


def test_a_dialect_without_the_operation_is_unimplemented(client: emitgate.Client) -> None:
    with pytest.raises(emitgate.Unimplemented) as info:
        client.of("/", target="python").fetch_sockets()
    assert "python-socketio" in info.value.message
    with pytest.raises(emitgate.Unimplemented):
        client.of("/", target="python").to(["a", "b"]).emit_with_ack("e")


def test_acks_decode_to_native_values() -> None:
    exact = msgpack.packb({"big": 2**63 - 1, "neg": -(2**63), "u": 2**64 - 1, "b": [b"\x00"]})
    assert decode_argument(pb.Argument(msgpack=exact)) == {
        "big": 2**63 - 1,
        "neg": -(2**63),
        "u": 2**64 - 1,
        "b": [b"\x00"],
    }
    when = datetime.datetime(2023, 11, 14, 22, 13, 20, tzinfo=datetime.timezone.utc)
    stamp = msgpack.packb(msgpack.Timestamp.from_datetime(when))
    assert decode_argument(pb.Argument(msgpack=stamp)) == when
    assert decode_argument(pb.Argument(binary=b"\x01")) == b"\x01"
    assert decode_argument(pb.Argument(json='{"a":[1,2.5]}')) == {"a": [1, 2.5]}
    value = pb.Argument()
    value.value.null_value = struct_pb2.NULL_VALUE
    assert decode_argument(value) is None
    value.value.number_value = 2.0**60  # beyond 2**53: a float, as JSON gave it
    assert decode_argument(value) == 2.0**60
    assert type(decode_argument(value)) is float


# -- async ----------------------------------------------------------------------


@pytest.mark.asyncio
async def test_async_emit_with_ack(harness: Stack, aclient: emitgate.AsyncClient) -> None:
    harness.client(server=0, rooms=["r"], ack={"reply": "a"})
    harness.client(server=1, rooms=["r"], ack={"reply": b64(b"\xfe")})

    result = await aclient.timeout(5).to("r").emit_with_ack("question", {"q": 1})

    assert result.complete
    assert (result.sockets, result.servers, result.servers_expected) == (2, 2, 2)
    assert by_type(result.acks) == by_type(("a", b"\xfe"))


@pytest.mark.asyncio
async def test_async_fetch_sockets_all_rooms_and_server_count(
    harness: Stack, aclient: emitgate.AsyncClient
) -> None:
    a = harness.client(server=0, rooms=["r"], data={"id": 9})
    b = harness.client(server=1, rooms=["s"])

    fetched = await aclient.in_("r").fetch_sockets()
    assert [(s.id, s.data) for s in fetched.sockets] == [(a.sid, {"id": 9})]
    assert fetched.complete
    everyone = await aclient.timeout(3).fetch_sockets()
    assert sorted(s.id for s in everyone.sockets) == sorted([a.sid, b.sid])

    rooms = await aclient.all_rooms()
    assert rooms.rooms == tuple(sorted([a.sid, b.sid, "r", "s"]))
    assert await aclient.server_count() == 2


@pytest.mark.asyncio
async def test_async_server_side_emit_with_ack(
    harness: Stack, aclient: emitgate.AsyncClient
) -> None:
    harness.listen("/", "aping", reply={"pong": [1, "x", None]}, servers=[0, 1])
    result = await aclient.timeout(3).server_side_emit_with_ack("aping", 1)
    assert result.complete
    assert [r.reply for r in result.replies] == [{"pong": [1, "x", None]}] * 2

    harness.listen("/", "silent")
    result = await aclient.of("/").timeout(0.5).server_side_emit_with_ack("silent")
    assert result == emitgate.ServerAckResult(replies=(), servers_expected=2, complete=False)
