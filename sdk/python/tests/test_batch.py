"""End-to-end tests of client.batch(): BatchEmit calls, per-item results, chunking."""

from __future__ import annotations

import grpc
import pytest

import emitgate
from tests.conftest import BATCH_LIMIT, barrier, names
from tests.stack import Stack


def test_batch_sends_everything_in_order(harness: Stack, client: emitgate.Client) -> None:
    u1 = harness.client(server=0, rooms=["u:1"])
    u2 = harness.client(server=1, rooms=["u:2"])
    admin = harness.client(namespace="/admin", server=1, rooms=["staff"])

    with client.batch() as b:
        assert b.to("u:1").emit("first", 1) == 0
        assert b.to(["u:1", "u:2"]).emit("second", {"bin": b"\x01"}) == 1
        assert b.except_("u:2").broadcast("third") == 2
        assert b.of("admin").to("staff").volatile.emit("fourth", "ü") == 3
        assert len(b) == 4

    result = b.result
    assert result.ok
    assert (result.published, result.failed, result.requests) == (4, 0, 1)
    assert [r.index for r in result.results] == [0, 1, 2, 3]
    assert all(r.code == grpc.StatusCode.OK and r.receivers == 2 for r in result.results)
    assert result.receivers == 8
    assert names(u1.events(until="third")) == ["first", "second", "third"]
    assert u1.received()[1]["args"] == [{"bin": {"$binary": "AQ=="}}]
    assert names(u2.events(until="second")) == ["second"]
    assert admin.events(until="fourth") == [{"event": "fourth", "args": ["ü"]}]
    assert barrier(harness, "/", u2) == [
        [{"event": "second", "args": [{"bin": {"$binary": "AQ=="}}]}]
    ]


def test_non_atomic_batch_reports_invalid_items(harness: Stack, client: emitgate.Client) -> None:
    sio = harness.client(rooms=["r"])

    with client.batch() as b:
        b.to("r").emit("ok-1")
        b.to("r").emit("connect")  # reserved: refused by the gateway
        b.to("").emit("ok-2")  # empty room name
        b.to("r").emit("ok-3")

    result = b.result
    assert (result.published, result.failed) == (2, 2)
    assert not result.ok
    assert [f.index for f in result.failures] == [1, 2]
    one, two = result.failures
    assert one.code == grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in one.violations] == ["items[1].emit.event"]
    assert one.message
    assert [v.field for v in two.violations] == ["items[2].emit.rooms[0]"]
    assert names(barrier(harness, "/", sio)[0]) == ["ok-1", "ok-3"]


def test_atomic_batch_with_an_invalid_item_publishes_nothing(
    harness: Stack, client: emitgate.Client
) -> None:
    sio = harness.client(rooms=["r"])

    # The batch is sent, and refused, when its block exits.
    with pytest.raises(emitgate.InvalidArgument) as info, client.batch(atomic=True) as b:  # noqa: PT012
        b.to("r").emit("fine")
        b.to("r").emit("disconnect")

    assert [v.field for v in info.value.violations] == ["items[1].emit.event"]
    assert b.sent
    assert barrier(harness, "/", sio) == [[]]


def test_atomic_batch_publishes_all(harness: Stack, client: emitgate.Client) -> None:
    sio = harness.client(rooms=["r"])
    with client.batch(atomic=True) as b:
        b.to("r").emit("a")
        b.broadcast("b")
    assert b.result.published == 2
    assert names(sio.events(until="b")) == ["a", "b"]


def test_exception_in_the_block_discards_the_batch(harness: Stack, client: emitgate.Client) -> None:
    sio = harness.client(rooms=["r"])

    with pytest.raises(RuntimeError, match="boom"), client.batch() as b:  # noqa: PT012
        b.to("r").emit("never")
        raise RuntimeError("boom")

    assert not b.sent
    with pytest.raises(RuntimeError, match="not been sent"):
        _ = b.result
    assert barrier(harness, "/", sio) == [[]]


def test_bad_arguments_raise_when_queued(client: emitgate.Client) -> None:
    b = client.batch()
    with pytest.raises(TypeError, match="argument 0"):
        b.to("r").emit("e", {1.5: "float key"})
    with pytest.raises(emitgate.InvalidArgument):
        b.emit("no-room")
    with pytest.raises(emitgate.InvalidArgument):
        b.to("r").broadcast("rooms-are-for-emit")
    assert len(b) == 0


def test_a_batch_is_sent_once(client: emitgate.Client) -> None:
    b = client.batch()
    assert b.send().results == ()  # an empty batch makes no call
    with pytest.raises(RuntimeError, match="already sent"):
        b.broadcast("late")
    with pytest.raises(RuntimeError, match="already sent"):
        b.send()


def test_batch_over_the_item_limit_is_chunked(limited: Stack) -> None:
    room_items = 3 * BATCH_LIMIT + 2
    sio = limited.client(rooms=["r"])
    other = limited.client(server=1)

    with emitgate.Client(limited.grpc, insecure=True) as c:
        with c.batch() as b:
            for i in range(room_items):
                b.to("r").emit("n", i)
            b.to("r").emit("connect")  # invalid, in the last chunk
            b.broadcast("done")
        result = b.result
        # The client learned the gateway's limit and keeps it.
        assert c._max_batch_items <= BATCH_LIMIT

    total = room_items + 2
    assert len(result.results) == total
    assert [r.index for r in result.results] == list(range(total))
    assert result.published == total - 1
    assert result.failed == 1
    [failure] = result.failures
    assert failure.index == room_items
    assert [v.field for v in failure.violations] == [f"items[{room_items}].emit.event"]
    assert result.requests >= -(-total // BATCH_LIMIT)

    events = sio.events(until="done")
    assert [e["args"][0] for e in events if e["event"] == "n"] == list(range(room_items))
    assert names(other.events(until="done")) == ["done"]


def test_chunk_size_known_up_front(limited: Stack) -> None:
    sio = limited.client(rooms=["r"])
    c = emitgate.Client(limited.grpc, insecure=True, max_batch_items=BATCH_LIMIT)
    with c, c.batch() as b:
        for i in range(2 * BATCH_LIMIT + 1):
            b.to("r").emit("n", i)
    assert b.result.requests == 3
    assert b.result.published == 2 * BATCH_LIMIT + 1
    events = sio.events(count=2 * BATCH_LIMIT + 1)
    assert [e["args"][0] for e in events] == list(range(2 * BATCH_LIMIT + 1))


def test_atomic_batch_over_the_limit_is_refused_whole(limited: Stack) -> None:
    sio = limited.client(rooms=["r"])
    with emitgate.Client(limited.grpc, insecure=True) as c:
        b = c.batch(atomic=True)
        for i in range(BATCH_LIMIT + 1):
            b.to("r").emit("n", i)
        with pytest.raises(emitgate.InvalidArgument) as info:
            b.send()
    assert [v.field for v in info.value.violations] == ["items"]
    assert barrier(limited, "/", sio) == [[]]


def test_batch_failing_as_a_whole_raises(harness: Stack, client: emitgate.Client) -> None:
    with pytest.raises(emitgate.Unavailable), client.batch() as b:
        b.of("/", target="down").broadcast("x")
    assert b.result.results == ()
