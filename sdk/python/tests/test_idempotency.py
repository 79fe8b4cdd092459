"""Idempotency keys against the real gateway: a repeat publishes nothing.

The gateway remembers each key (per API key and target) for its window, five
minutes by default, longer than this test session: every key below is used by
one test only.
"""

from __future__ import annotations

import grpc
import pytest

import emitgate
from tests.conftest import barrier
from tests.stack import Stack


def test_the_same_key_twice_delivers_once(harness: Stack, client: emitgate.Client) -> None:
    sio = harness.client(rooms=["u:1"])
    first = client.to("u:1").emit("paid", 1001, idempotency_key="sync-invoice-1001")
    again = client.to("u:1").emit("paid", 1001, idempotency_key="sync-invoice-1001")
    assert first == emitgate.Result(receivers=2, duplicate=False)
    # the repeat answers with the first call's result
    assert again == emitgate.Result(receivers=2, duplicate=True)
    # another key is another operation
    other = client.to("u:1").emit("paid", 1002, idempotency_key="sync-invoice-1002")
    assert not other.duplicate
    got = barrier(harness, "/", sio)[0]
    assert [e["args"] for e in got] == [[1001], [1002]]


def test_every_call_takes_an_idempotency_key(harness: Stack, client: emitgate.Client) -> None:
    sio = harness.client(rooms=["r"])
    harness.listen("/", "sse-once")
    for _ in range(2):
        client.broadcast("bcast-once", idempotency_key="sync-broadcast")
        client.to("r").sockets_join("joined-once", idempotency_key="sync-join")
        client.server_side_emit("sse-once", "first", idempotency_key="sync-sse")
    dup = client.broadcast("bcast-once", idempotency_key="sync-broadcast")
    assert dup.duplicate
    assert dup.receivers == 2
    assert client.to("r").sockets_join("x", idempotency_key="sync-join").duplicate
    # a repeat is answered from the first call even if its content differs
    assert client.server_side_emit("sse-once", "second", idempotency_key="sync-sse").duplicate
    assert [e["event"] for e in barrier(harness, "/", sio)[0]] == ["bcast-once"]
    assert sio.rooms() == {sio.sid, "r", "joined-once"}
    # Both servers got the first server-side emit once, then the barrier call.
    client.server_side_emit("sse-once", "after")
    events = harness.server_events("/", "sse-once", count=4)
    assert sorted((e["server"], e["args"][0]) for e in events) == [
        (0, "after"),
        (0, "first"),
        (1, "after"),
        (1, "first"),
    ]


def test_per_item_duplicates_in_a_batch(harness: Stack, client: emitgate.Client) -> None:
    sio = harness.client(rooms=["u:2"])
    client.to("u:2").emit("item", "single", idempotency_key="sync-item-a")
    with client.batch() as b:
        b.to("u:2").emit("item", "a", idempotency_key="sync-item-a")  # seen above
        b.to("u:2").emit("item", "b", idempotency_key="sync-item-b")
        b.to("u:2").emit("item", "no key")
        b.broadcast("item", "c", idempotency_key="sync-item-c")
    first = b.result
    assert [r.duplicate for r in first.results] == [True, False, False, False]
    assert all(r.ok for r in first.results)
    assert first.results[0].receivers == 2  # the first call's result
    assert (first.published, first.failed) == (3, 0)

    with client.batch() as b:  # the same batch again: only the item without a key
        b.to("u:2").emit("item", "a", idempotency_key="sync-item-a")
        b.to("u:2").emit("item", "b", idempotency_key="sync-item-b")
        b.to("u:2").emit("item", "no key")
        b.broadcast("item", "c", idempotency_key="sync-item-c")
    again = b.result
    assert [r.duplicate for r in again.results] == [True, True, False, True]
    assert again.published == 1
    got = barrier(harness, "/", sio)[0]
    assert [e["args"] for e in got] == [["single"], ["b"], ["no key"], ["c"], ["no key"]]


def test_the_same_key_twice_in_one_batch(harness: Stack, client: emitgate.Client) -> None:
    # The second item repeats the first one's key: it is answered as the
    # first item's duplicate and only the first is delivered.
    sio = harness.client(rooms=["u:3"])
    with client.batch() as b:
        b.to("u:3").emit("twice", 1, idempotency_key="sync-twice")
        b.to("u:3").emit("twice", 2, idempotency_key="sync-twice")
    result = b.result
    assert [r.code for r in result.results] == [grpc.StatusCode.OK, grpc.StatusCode.OK]
    assert [r.duplicate for r in result.results] == [False, True]
    assert result.results[1].receivers == result.results[0].receivers
    assert [e["args"] for e in barrier(harness, "/", sio)[0]] == [[1]]


@pytest.mark.asyncio
async def test_async_idempotency(harness: Stack, aclient: emitgate.AsyncClient) -> None:
    sio = harness.client(rooms=["u:4"])
    first = await aclient.to("u:4").emit("paid", 7, idempotency_key="async-invoice-7")
    again = await aclient.to("u:4").emit("paid", 7, idempotency_key="async-invoice-7")
    assert (first.duplicate, again.duplicate) == (False, True)
    assert again.receivers == first.receivers == 2
    async with aclient.batch() as b:
        b.to("u:4").emit("paid", 7, idempotency_key="async-invoice-7")
        b.to("u:4").emit("paid", 8, idempotency_key="async-invoice-8")
    assert [r.duplicate for r in b.result.results] == [True, False]
    assert [e["args"] for e in barrier(harness, "/", sio)[0]] == [[7], [8]]
