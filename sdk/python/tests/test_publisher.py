"""End-to-end tests of client.publisher(): batching, handles, buffer, retries."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, as_completed, wait
from typing import Any

import pytest

import emitgate
from tests.conftest import BATCH_LIMIT, BURST, METERED_KEY, barrier, names
from tests.stack import Stack, gateway_binary

# The Socket.IO servers of every stack: an event's `receivers` counts them.
SERVERS = 2

# A linger no test waits for: only a full batch, flush() or close() sends.
NEVER = 60.0


def test_events_reach_clients_in_order(harness: Stack, client: emitgate.Client) -> None:
    u1 = harness.client(server=0, rooms=["u:1"])
    u2 = harness.client(server=1, rooms=["u:2"])
    admin = harness.client(namespace="/admin", rooms=["staff"])

    with client.publisher(max_in_flight=1, max_items=3) as pub:
        handles = [pub.to("u:1").emit("n", i) for i in range(10)]
        both = pub.to(["u:1", "u:2"]).emit("both", {"bin": b"\x01"})
        everyone = pub.except_("u:2").broadcast("all")
        staff = pub.of("admin").to("staff").volatile.emit("staff", "ü")

    assert [h.result().receivers for h in handles] == [SERVERS] * 10
    assert both.result().receivers == SERVERS
    assert everyone.result().receivers == SERVERS
    assert staff.result() == emitgate.Result(receivers=SERVERS)
    events = u1.events(until="all")
    assert names(events) == ["n"] * 10 + ["both", "all"]
    assert [e["args"] for e in events[:10]] == [[i] for i in range(10)]
    assert events[10]["args"] == [{"bin": {"$binary": "AQ=="}}]
    assert names(barrier(harness, "/", u2)[0]) == ["both"]
    assert admin.events(until="staff") == [{"event": "staff", "args": ["ü"]}]


def test_events_over_max_items_in_one_flush(harness: Stack, client: emitgate.Client) -> None:
    count = 2500
    sio = harness.client(rooms=["r"])
    pub = client.publisher(max_in_flight=1, linger=NEVER)
    handles = [pub.to("r").emit("n", i) for i in range(count)]
    assert not any(h.done() for h in handles[2000:])  # the third batch is not full
    pub.flush()
    assert all(h.done() for h in handles)
    assert {h.result().receivers for h in handles} == {SERVERS}
    pub.close()
    events = sio.events(count=count, timeout_ms=20_000)
    assert [e["args"][0] for e in events] == list(range(count))
    assert barrier(harness, "/", sio) == [events]


def test_batches_are_cut_at_max_bytes(harness: Stack, client: emitgate.Client) -> None:
    sio = harness.client(rooms=["r"])
    with client.publisher(max_bytes=300, max_in_flight=1, linger=NEVER) as pub:
        handles = [pub.to("r").emit("n", "x" * 100, i) for i in range(7)]
        # Each event is 126 encoded bytes: two fit in a batch, a third starts the next one.
        assert pub._open is not None
        assert len(pub._open.entries) == 1
        big = pub.to("r").emit("big", "y" * 1000)  # over max_bytes: sent alone
    assert [h.result().receivers for h in [*handles, big]] == [SERVERS] * 8
    events = sio.events(until="big")
    assert [e["args"][-1] for e in events[:-1]] == list(range(7))


def test_gateway_limit_below_max_items_is_learned(limited: Stack) -> None:
    count = 4 * BATCH_LIMIT + 3
    sio = limited.client(rooms=["r"])
    with emitgate.Client(limited.grpc, insecure=True) as c:
        pub = c.publisher(max_in_flight=1, linger=NEVER)
        handles = [pub.to("r").emit("n", i) for i in range(count)]
        pub.close()
        assert pub._max_items <= BATCH_LIMIT
    assert [h.result().receivers for h in handles] == [SERVERS] * count
    assert [e["args"][0] for e in sio.events(count=count)] == list(range(count))


def test_an_item_error_reaches_only_its_handle(harness: Stack, client: emitgate.Client) -> None:
    sio = harness.client(rooms=["r"])
    with client.publisher() as pub:
        first = pub.to("r").emit("ok-1")
        reserved = pub.to("r").emit("connect")  # refused by the gateway
        empty_room = pub.to("").emit("ok-2")  # refused by the gateway
        no_room = pub.emit("no-room")  # refused by the SDK, never sent
        bad_arg = pub.to("r").emit("bad", {1.5: "float key"})  # not encodable
        down = pub.of("/", target="down").broadcast("x")  # its Redis is down
        last = pub.to("r").emit("ok-3")
        assert no_room.done()
        assert bad_arg.done()

    assert first.result().receivers == SERVERS
    assert last.result().receivers == SERVERS
    with pytest.raises(emitgate.InvalidArgument) as info:
        reserved.result()
    assert [v.field for v in info.value.violations] == ["event"]
    with pytest.raises(emitgate.InvalidArgument) as info:
        empty_room.result()
    assert [v.field for v in info.value.violations] == ["rooms[0]"]
    with pytest.raises(emitgate.InvalidArgument) as info:
        no_room.result()
    assert [v.field for v in info.value.violations] == ["rooms"]
    with pytest.raises(TypeError, match="argument 0"):
        bad_arg.result()
    with pytest.raises(emitgate.Unavailable):
        down.result()
    assert names(barrier(harness, "/", sio)[0]) == ["ok-1", "ok-3"]


def test_linger_sends_a_single_event_without_flush(harness: Stack, client: emitgate.Client) -> None:
    sio = harness.client(rooms=["r"])
    pub = client.publisher(linger=0.005)
    try:
        handle = pub.to("r").emit("alone", 1)
        assert handle.result(timeout=10).receivers == SERVERS
        assert sio.events(until="alone") == [{"event": "alone", "args": [1]}]
    finally:
        pub.close()


def test_close_delivers_everything_buffered(harness: Stack, client: emitgate.Client) -> None:
    sio = harness.client(rooms=["r"])
    pub = client.publisher(linger=NEVER)
    handles = [pub.to("r").emit("n", i) for i in range(25)]
    assert not any(h.done() for h in handles)
    assert not handles[0].cancel()  # a published event is not withdrawn
    pub.close()
    assert pub.closed
    assert all(h.done() for h in handles)
    assert [e["args"][0] for e in sio.events(count=25)] == list(range(25))
    with pytest.raises(RuntimeError, match="closed"):
        pub.to("r").emit("late")
    pub.close()  # a second close is harmless
    assert names(barrier(harness, "/", sio)[0]) == ["n"] * 25


def test_full_buffer_fails_fast_when_configured(harness: Stack, client: emitgate.Client) -> None:
    sio = harness.client(rooms=["r"])
    with client.publisher(buffer=2, on_full="error", linger=NEVER) as pub:
        accepted = [pub.to("r").emit("n", i) for i in range(2)]
        with pytest.raises(emitgate.ResourceExhausted, match="buffer is full"):
            pub.to("r").emit("n", 2)
        pub.flush()
        assert [h.result().receivers for h in accepted] == [SERVERS, SERVERS]
        after = pub.to("r").emit("n", 3)
    assert after.result().receivers == SERVERS
    assert [e["args"][0] for e in barrier(harness, "/", sio)[0]] == [0, 1, 3]


def test_full_buffer_blocks_by_default(harness: Stack, client: emitgate.Client) -> None:
    sio = harness.client(rooms=["r"])
    pub = client.publisher(buffer=2, linger=NEVER)
    try:
        first = [pub.to("r").emit("n", i) for i in range(2)]
        returned = threading.Event()
        third: list[Future[emitgate.Result]] = []

        def publish_third() -> None:
            third.append(pub.to("r").emit("n", 2))
            returned.set()

        thread = threading.Thread(target=publish_third)
        thread.start()
        # Nothing is answered while the linger runs, so the third publish waits.
        assert not returned.wait(0.3)
        pub.flush()  # answers the first two: room for the third
        assert returned.wait(10)
        thread.join()
        assert [h.result().receivers for h in first] == [SERVERS, SERVERS]
    finally:
        pub.close()
    assert third[0].result().receivers == SERVERS
    assert [e["args"][0] for e in sio.events(count=3)] == [0, 1, 2]


def test_handles_are_futures(harness: Stack, client: emitgate.Client) -> None:
    harness.client(rooms=["r"])
    pub = client.publisher(linger=NEVER)
    handles = [pub.to("r").emit("n", i) for i in range(5)]
    seen: list[Any] = []
    handles[0].add_done_callback(lambda h: seen.append(("callback", h.result().receivers)))

    def completed() -> None:
        seen.append(("as_completed", len(list(as_completed(handles, 30)))))

    waiters = [
        threading.Thread(target=lambda: seen.append(("result", handles[4].result(30).receivers))),
        threading.Thread(target=lambda: seen.append(("wait", len(wait(handles, 30).done)))),
        threading.Thread(target=completed),
    ]
    for waiter in waiters:
        waiter.start()
    pub.close()
    for waiter in waiters:
        waiter.join()
    assert sorted(seen) == [
        ("as_completed", 5),
        ("callback", SERVERS),
        ("result", SERVERS),
        ("wait", 5),
    ]
    late: list[Future[emitgate.Result]] = []
    handles[1].add_done_callback(late.append)  # already done: called at once
    assert late == [handles[1]]


def test_handles_set_what_a_future_sets() -> None:
    # A handle fills in Future's attributes itself (sharing its batch's condition).
    from emitgate._publisher import _Handle

    plain: Future[None] = Future()
    handle = _Handle(threading.Condition())
    assert set(vars(handle)) == set(vars(plain))
    assert {k: v for k, v in vars(handle).items() if k != "_condition"} == {
        k: v for k, v in vars(plain).items() if k != "_condition"
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class _Gateway:
    """A gateway process of our own on a fixed port, to stop and start again."""

    def __init__(self, redis_url: str) -> None:
        self.port = _free_port()
        self.address = f"127.0.0.1:{self.port}"
        self._redis_url = redis_url
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._process = subprocess.Popen(
            [
                str(gateway_binary()),
                "--listen",
                self.address,
                "--redis-url",
                self._redis_url,
                "--admin-listen",
                "127.0.0.1:0",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "NO_COLOR": "1"},
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if self._process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the gateway did not start") from None
                time.sleep(0.01)  # polling a port: there is no event to wait for

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=10)
            self._process = None


@pytest.fixture
def own_gateway(harness: Stack) -> Iterator[_Gateway]:
    gateway = _Gateway(harness.redis_url)
    try:
        yield gateway
    finally:
        gateway.stop()


# Reconnect soon after the gateway is back, so the retries see it.
FAST_RECONNECT = [
    ("grpc.initial_reconnect_backoff_ms", 50),
    ("grpc.min_reconnect_backoff_ms", 50),
    ("grpc.max_reconnect_backoff_ms", 100),
]


def test_gateway_down_retries_only_keyed_items(harness: Stack, own_gateway: _Gateway) -> None:
    sio = harness.client(rooms=["r"])
    own_gateway.start()
    with emitgate.Client(own_gateway.address, insecure=True, options=FAST_RECONNECT) as c:
        keyed = c.publisher(linger=0)
        plain = c.publisher(linger=0)
        assert keyed.to("r").emit("before").result(timeout=10).receivers == SERVERS
        own_gateway.stop()

        kept = [keyed.to("r").emit("kept", i, idempotency_key=f"k-{i}") for i in range(3)]
        lost = plain.to("r").emit("lost")
        with pytest.raises(emitgate.Unavailable):
            lost.result(timeout=10)
        assert not any(h.done() for h in kept)  # still retrying
        own_gateway.start()
        assert [h.result(timeout=10).duplicate for h in kept] == [False] * 3
        keyed.close()
        plain.close()

    events = barrier(harness, "/", sio)[0]
    assert [(e["event"], e["args"]) for e in events] == [
        ("before", []),
        ("kept", [0]),
        ("kept", [1]),
        ("kept", [2]),
    ]


def test_gateway_down_without_keys_reports_unavailable() -> None:
    with emitgate.Client(f"127.0.0.1:{_free_port()}", insecure=True) as c:
        with c.publisher(linger=NEVER) as pub:  # one batch, sent by close
            handles = [pub.to("r").emit("e", i) for i in range(3)]
            mixed = [
                pub.to("r").emit("e", idempotency_key="k"),
                pub.to("r").emit("e"),
            ]
        for handle in handles + mixed:
            with pytest.raises(emitgate.Unavailable):
                handle.result()


def test_rate_limited_batches_are_retried_only_with_keys(keyed: Stack) -> None:
    sio = keyed.client(rooms=["m"])
    run = uuid.uuid4().hex
    with emitgate.Client(keyed.grpc, insecure=True, api_key=METERED_KEY) as c:
        with c.publisher(linger=NEVER, max_in_flight=1) as pub:
            # The whole budget; keyed, so it waits for the budget to be full if need be.
            drain = [
                pub.to("m").emit("drain", i, idempotency_key=f"{run}-drain-{i}")
                for i in range(BURST)
            ]
            pub.flush()
            plain = [pub.to("m").emit("plain", i) for i in range(2)]
            pub.flush()
            # RESOURCE_EXHAUSTED with a retry delay: waited for only when keyed.
            kept = [
                pub.to("m").emit("kept", i, idempotency_key=f"{run}-kept-{i}") for i in range(2)
            ]
        assert [h.result().receivers for h in drain] == [SERVERS] * BURST
        for handle in plain:
            with pytest.raises(emitgate.ResourceExhausted) as info:
                handle.result()
            assert info.value.retry_delay is not None
        assert [h.result().duplicate for h in kept] == [False, False]
    events = barrier(keyed, "/", sio)[0]
    assert names(events) == ["drain"] * BURST + ["kept"] * 2


def test_options_are_checked(client: emitgate.Client) -> None:
    for bad in ({"max_items": 0}, {"buffer": -1}, {"linger": -0.1}, {"on_full": "drop"}):
        with pytest.raises(ValueError):  # noqa: PT011
            client.publisher(**bad)


# -- asyncio ------------------------------------------------------------------


@pytest.mark.asyncio
async def test_async_publisher(harness: Stack, aclient: emitgate.AsyncClient) -> None:
    sio = harness.client(rooms=["r"])
    async with aclient.publisher(max_in_flight=1, max_items=4) as pub:
        handles = [await pub.to("r").emit("n", i) for i in range(10)]
        reserved = await pub.to("r").emit("disconnect")
        no_room = await pub.emit("no-room")
        everyone = await pub.broadcast("all")
    results = await asyncio.gather(*handles)
    assert [r.receivers for r in results] == [SERVERS] * 10
    assert (await everyone).receivers == SERVERS
    with pytest.raises(emitgate.InvalidArgument) as info:
        await reserved
    assert [v.field for v in info.value.violations] == ["event"]
    with pytest.raises(emitgate.InvalidArgument):
        await no_room
    events = sio.events(until="all")
    assert [e["args"] for e in events] == [[i] for i in range(10)] + [[]]
    with pytest.raises(RuntimeError, match="closed"):
        await pub.to("r").emit("late")


@pytest.mark.asyncio
async def test_async_linger_and_full_buffer(harness: Stack, aclient: emitgate.AsyncClient) -> None:
    sio = harness.client(rooms=["r"])
    pub = aclient.publisher(linger=0.005)
    assert (await (await pub.to("r").emit("alone"))).receivers == SERVERS
    await pub.close()

    pub = aclient.publisher(buffer=1, on_full="error", linger=NEVER)
    first = await pub.to("r").emit("n", 1)
    with pytest.raises(emitgate.ResourceExhausted):
        await pub.to("r").emit("n", 2)
    await pub.close()
    assert (await first).receivers == SERVERS

    pub = aclient.publisher(buffer=1, linger=NEVER)
    await pub.to("r").emit("n", 3)
    blocked = asyncio.ensure_future(pub.to("r").emit("n", 4))
    await asyncio.sleep(0)  # let it reach the full buffer
    assert not blocked.done()
    await pub.flush()
    fourth = await blocked
    await pub.close()
    assert (await fourth).receivers == SERVERS
    assert [e["args"] for e in barrier(harness, "/", sio)[0]] == [[], [1], [3], [4]]
