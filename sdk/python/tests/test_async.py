"""End-to-end tests of emitgate.AsyncClient against the same real stack."""

from __future__ import annotations

import asyncio

import grpc
import pytest

import emitgate
from tests.conftest import BATCH_LIMIT, barrier, names
from tests.stack import Stack

pytestmark = pytest.mark.asyncio


async def test_emit(harness: Stack, aclient: emitgate.AsyncClient) -> None:
    a0 = harness.client(server=0, rooms=["room1"])
    a1 = harness.client(server=1, rooms=["room1", "muted"])
    other = harness.client(server=1, rooms=["room2"])

    result = await aclient.to("room1").emit(
        "hello", "wörld ✓", {"bin": b"\x00\xff", "big": 2**60}, b"raw"
    )
    await aclient.of("/").to(["room1", "room2"]).except_("muted").compress(False).emit("second")

    assert result == emitgate.Result(receivers=2)
    [event] = a0.events(until="hello")[:1]
    assert event["args"][0] == "wörld ✓"
    assert event["args"][1]["bin"] == {"$binary": "AP8="}
    assert float(event["args"][1]["big"]) == float(2**60)
    assert event["args"][2] == {"$binary": "cmF3"}
    got = barrier(harness, "/", a0, a1, other)
    assert [names(events) for events in got] == [["hello", "second"], ["hello"], ["second"]]


async def test_emit_without_room_raises(aclient: emitgate.AsyncClient) -> None:
    with pytest.raises(emitgate.InvalidArgument) as info:
        await aclient.of("/").emit("nowhere")
    assert [v.field for v in info.value.violations] == ["rooms"]
    with pytest.raises(emitgate.InvalidArgument):
        await aclient.emit("nowhere")


async def test_volatile(harness: Stack, aclient: emitgate.AsyncClient) -> None:
    # A volatile packet may be dropped while the connection is busy: send it idle.
    sio = harness.client(rooms=["r"])
    await aclient.to("r").volatile.emit("v", 1)
    assert sio.events(until="v") == [{"event": "v", "args": [1]}]


async def test_broadcast(harness: Stack, aclient: emitgate.AsyncClient) -> None:
    s0 = harness.client(server=0)
    skipped = harness.client(server=1, rooms=["muted"])
    admin = harness.client(namespace="/admin", server=1)

    assert await aclient.broadcast("all", 1) == emitgate.Result(receivers=2)
    await aclient.except_("muted").broadcast("some")
    await aclient.of("admin").broadcast("admins")

    got = barrier(harness, "/", s0, skipped)
    assert [names(events) for events in got] == [["all", "some"], ["all"]]
    assert names(admin.events(until="admins")) == ["admins"]


async def test_concurrent_calls(harness: Stack, aclient: emitgate.AsyncClient) -> None:
    sio = harness.client(rooms=["r"])
    results = await asyncio.gather(*(aclient.to("r").emit("n", i) for i in range(20)))
    assert all(r.receivers == 2 for r in results)
    events = sio.events(count=20)
    assert sorted(e["args"][0] for e in events) == list(range(20))


async def test_sockets_join_and_leave(harness: Stack, aclient: emitgate.AsyncClient) -> None:
    a = harness.client(server=0, rooms=["a"])
    b = harness.client(server=1, rooms=["b"])

    assert await aclient.to("a").sockets_join("j") == emitgate.Result(receivers=2)
    await aclient.sockets_join(["all"])
    barrier(harness, "/", a, b)
    assert a.rooms() == {a.sid, "a", "j", "all"}
    assert b.rooms() == {b.sid, "b", "all"}

    await aclient.in_("j").sockets_leave(["all"])
    await aclient.sockets_leave("j")
    barrier(harness, "/", a, b)
    assert a.rooms() == {a.sid, "a"}
    assert b.rooms() == {b.sid, "b", "all"}


async def test_disconnect_sockets(harness: Stack, aclient: emitgate.AsyncClient) -> None:
    leaving = harness.client(server=1, rooms=["bye"])
    staying = harness.client(server=0)

    assert await aclient.to("bye").disconnect_sockets(close=True) == emitgate.Result(receivers=2)
    assert leaving.wait_disconnect() is not None
    assert barrier(harness, "/", staying) == [[]]

    admins = [harness.client(namespace="/admin", server=i) for i in (0, 1)]
    await aclient.of("/admin").disconnect_sockets()
    for sio in admins:
        assert sio.wait_disconnect() == "io server disconnect"
    assert staying.info()["connected"] is True


async def test_server_side_emit(harness: Stack, aclient: emitgate.AsyncClient) -> None:
    harness.listen("/", "sync-cache")
    assert await aclient.server_side_emit("sync-cache", {"key": "k"}, 2) == emitgate.Result(
        receivers=2
    )
    events = harness.server_events("/", "sync-cache", count=2)
    assert sorted(e["server"] for e in events) == [0, 1]
    assert all(e["args"] == [{"key": "k"}, 2] for e in events)
    with pytest.raises(emitgate.InvalidArgument) as info:
        await aclient.server_side_emit("sync-cache", b"bytes")
    assert [v.field for v in info.value.violations] == ["args[0]"]


async def test_batch(harness: Stack, aclient: emitgate.AsyncClient) -> None:
    sio = harness.client(rooms=["u:1"])

    async with aclient.batch() as b:
        b.to("u:1").emit("one", 1)
        b.to("u:1").emit("newListener")  # reserved
        b.broadcast("two", 2)

    result = b.result
    assert (result.published, result.failed) == (2, 1)
    [failure] = result.failures
    assert failure.index == 1
    assert failure.code == grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in failure.violations] == ["items[1].emit.event"]
    assert names(barrier(harness, "/", sio)[0]) == ["one", "two"]


async def test_atomic_batch(harness: Stack, aclient: emitgate.AsyncClient) -> None:
    sio = harness.client(rooms=["r"])
    with pytest.raises(emitgate.InvalidArgument):  # noqa: PT012 - sent when the block exits
        async with aclient.batch(atomic=True) as b:
            b.to("r").emit("fine")
            b.to("").emit("bad-room")
    assert barrier(harness, "/", sio) == [[]]


async def test_batch_chunking(limited: Stack) -> None:
    count = 2 * BATCH_LIMIT + 3
    sio = limited.client(rooms=["r"])
    async with emitgate.AsyncClient(limited.grpc, insecure=True) as c, c.batch() as b:
        for i in range(count):
            b.to("r").emit("n", i)
    assert b.result.published == count
    assert [r.index for r in b.result.results] == list(range(count))
    events = sio.events(count=count)
    assert [e["args"][0] for e in events] == list(range(count))


async def test_errors(harness: Stack, aclient: emitgate.AsyncClient) -> None:
    with pytest.raises(emitgate.InvalidArgument) as info:
        await aclient.to("r").emit("connect")
    assert [v.field for v in info.value.violations] == ["event"]
    with pytest.raises(emitgate.NotFound):
        await aclient.of("/", target="nope").broadcast("e")
    with pytest.raises(emitgate.Unavailable):
        await aclient.of("/", target="down").broadcast("e")
    async with emitgate.AsyncClient(harness.grpc, insecure=True, timeout=0.1) as fast:
        with pytest.raises(emitgate.DeadlineExceeded):
            await fast.of("/", target="blackhole").broadcast("e")
    async with emitgate.AsyncClient("127.0.0.1:1", insecure=True, timeout=5) as nowhere:
        with pytest.raises(emitgate.Unavailable):
            await nowhere.broadcast("e")


async def test_closed_client_refuses_calls(harness: Stack) -> None:
    c = emitgate.AsyncClient(harness.grpc, insecure=True, api_key="key")
    assert (await c.broadcast("before-close")).receivers == 2
    await c.close()
    with pytest.raises(RuntimeError, match="closed"):
        await c.broadcast("after-close")
