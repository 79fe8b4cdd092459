"""End-to-end tests of emitgate.Client: what real Socket.IO clients receive."""

from __future__ import annotations

import base64
import datetime

import pytest

import emitgate
from tests.conftest import barrier, names
from tests.stack import Stack

BIG = 2**63 - 1


def b64(data: bytes) -> dict[str, str]:
    return {"$binary": base64.b64encode(data).decode()}


def test_emit_to_a_room_reaches_its_sockets_on_every_server(
    harness: Stack, client: emitgate.Client
) -> None:
    a0 = harness.client(server=0, rooms=["room1"])
    a1 = harness.client(server=1, rooms=["room1"])
    other = harness.client(server=1, rooms=["room2"])

    result = client.to("room1").emit("hello", "world", 1)

    assert result == emitgate.Result(receivers=2)  # both servers subscribe
    for sio in (a0, a1):
        assert sio.events(until="hello")[-1] == {"event": "hello", "args": ["world", 1]}
    [before] = barrier(harness, "/", other)
    assert before == []


def test_arguments_arrive_as_sent(harness: Stack, client: emitgate.Client) -> None:
    sio = harness.client(rooms=["r"])
    when = datetime.datetime(2023, 11, 14, 22, 13, 20, 123456, tzinfo=datetime.timezone.utc)

    client.to("r").emit(
        "values",
        "héllo wörld ✓ 🚀 日本語",
        {"nested": {"bytes": b"\x00\x01\xfe\xff", "list": [b"a", 1, None]}, "ok": True},
        b"\x00raw\xff",
        bytearray(b"ba"),
        memoryview(b"mv"),
        BIG,
        {"big": -(2**62) - 1},
        2**53 - 1,
        1.5,
        None,
        [1, "two", [3.25, False]],
        ("tuple", 2),
        {1: "int key"},
        when,
    )

    [event] = sio.events(until="values")
    args = event["args"]
    assert args[0] == "héllo wörld ✓ 🚀 日本語"
    assert args[1] == {
        "nested": {"bytes": b64(b"\x00\x01\xfe\xff"), "list": [b64(b"a"), 1, None]},
        "ok": True,
    }
    assert args[2] == b64(b"\x00raw\xff")
    assert args[3] == b64(b"ba")
    assert args[4] == b64(b"mv")
    # Integers beyond 2**53 travel exactly to the servers as MessagePack; JavaScript
    # numbers then hold the nearest double.
    assert isinstance(args[5], int)
    assert float(args[5]) == float(BIG)
    assert float(args[6]["big"]) == float(-(2**62) - 1)
    assert args[7] == 2**53 - 1
    assert args[8] == 1.5
    assert args[9] is None
    assert args[10] == [1, "two", [3.25, False]]
    assert args[11] == ["tuple", 2]
    assert args[12] == {"1": "int key"}
    assert args[13] == "2023-11-14T22:13:20.123Z"


def test_unicode_rooms_namespace_and_event(harness: Stack, client: emitgate.Client) -> None:
    sio = harness.client(namespace="/ünï", rooms=["salle-été"])

    client.of("/ünï").to("salle-été").emit("événement", "ok")

    assert sio.events(until="événement")[-1]["args"] == ["ok"]


def test_rooms_accumulate_and_except_skips(harness: Stack, client: emitgate.Client) -> None:
    a = harness.client(server=0, rooms=["a"])
    b = harness.client(server=1, rooms=["b"])
    c = harness.client(server=0, rooms=["c"])
    both = harness.client(server=1, rooms=["a", "b"])
    muted = harness.client(server=0, rooms=["a", "muted"])
    none = harness.client(server=1, rooms=["d"])

    op = client.to("a").to(["b", "c"]).except_("muted")
    op.emit("multi", 1)

    for sio in (a, b, c, both):
        sio.events(until="multi")
    got = barrier(harness, "/", a, b, c, both, muted, none)
    assert [names(events) for events in got] == [["multi"]] * 4 + [[], []]


def test_in_is_an_alias_of_to(harness: Stack, client: emitgate.Client) -> None:
    sio = harness.client(rooms=["x"])
    client.in_("x").emit("via-in")
    assert names(sio.events(until="via-in")) == ["via-in"]


def test_socket_id_is_a_room(harness: Stack, client: emitgate.Client) -> None:
    target = harness.client(server=1)
    other = harness.client(server=1)
    client.to(target.sid).emit("direct", {"to": "you"})
    assert target.events(until="direct")[-1]["args"] == [{"to": "you"}]
    assert barrier(harness, "/", other) == [[]]


def test_operators_are_immutable(harness: Stack, client: emitgate.Client) -> None:
    one = harness.client(rooms=["one"])
    two = harness.client(rooms=["two"])
    base = client.of("/").to("one")
    derived = base.to("two").except_("nobody").volatile.compress(False)

    assert base.rooms == ("one",)
    assert base.except_rooms == ()
    assert derived.rooms == ("one", "two")
    assert derived.except_rooms == ("nobody",)

    base.emit("only-one")
    got = barrier(harness, "/", one, two)
    assert [names(events) for events in got] == [["only-one"], []]


def test_namespaces_are_separate_and_get_a_leading_slash(
    harness: Stack, client: emitgate.Client
) -> None:
    admin = harness.client(namespace="/admin", rooms=["r"])
    root = harness.client(namespace="/", rooms=["r"])

    assert client.of("admin").namespace == "/admin"
    client.of("admin").to("r").emit("admin-only")

    assert names(admin.events(until="admin-only")) == ["admin-only"]
    assert barrier(harness, "/", root) == [[]]


def test_broadcast_reaches_every_socket_except_excluded(
    harness: Stack, client: emitgate.Client
) -> None:
    s0 = harness.client(server=0)
    s1 = harness.client(server=1, rooms=["x"])
    skipped = harness.client(server=1, rooms=["muted"])
    elsewhere = harness.client(namespace="/other")

    assert client.broadcast("all", 1) == emitgate.Result(receivers=2)
    client.except_("muted").broadcast("not-muted", 2)

    got = barrier(harness, "/", s0, s1, skipped)
    assert [names(events) for events in got] == [
        ["all", "not-muted"],
        ["all", "not-muted"],
        ["all"],
    ]
    assert s0.received()[0]["args"] == [1]
    assert barrier(harness, "/other", elsewhere) == [[]]


def test_volatile_and_compress_flags_are_delivered(harness: Stack, client: emitgate.Client) -> None:
    # A volatile packet may be dropped while the connection is busy writing, so
    # each event is awaited before the next one is sent.
    sio = harness.client(rooms=["r"])
    client.to("r").volatile.emit("v", 1)
    sio.events(until="v")
    client.to("r").compress(False).emit("c", 2)
    sio.events(until="c")
    client.volatile.compress(True).broadcast("vc", 3)
    events = sio.events(until="vc")
    assert [(e["event"], e["args"]) for e in events] == [("v", [1]), ("c", [2]), ("vc", [3])]


def test_emit_without_room_raises_before_any_call(harness: Stack) -> None:
    # The channel points at a closed port: the error must come from the client.
    with emitgate.Client("127.0.0.1:1", insecure=True, timeout=2) as c:
        with pytest.raises(emitgate.InvalidArgument) as info:
            c.of("/").emit("nowhere")
        assert [v.field for v in info.value.violations] == ["rooms"]
        with pytest.raises(emitgate.InvalidArgument):
            c.emit("nowhere")
        with pytest.raises(emitgate.InvalidArgument):
            c.to("r").broadcast("rooms-are-for-emit")
        with pytest.raises(emitgate.InvalidArgument):
            c.to("r").server_side_emit("servers-have-no-rooms")


def test_sockets_join_and_leave(harness: Stack, client: emitgate.Client) -> None:
    a = harness.client(server=0, rooms=["a"])
    b = harness.client(server=1, rooms=["a", "vip"])
    c = harness.client(server=1, rooms=["c"])

    result = client.to("a").except_("vip").sockets_join(["j1", "j2"])
    assert result == emitgate.Result(receivers=2)
    barrier(harness, "/", a, b, c)  # the join request went before the barrier
    assert a.rooms() == {a.sid, "a", "j1", "j2"}
    assert b.rooms() == {b.sid, "a", "vip"}
    assert c.rooms() == {c.sid, "c"}

    client.to("j1").emit("joined")
    assert names(a.events(until="joined"))[-1] == "joined"

    assert client.sockets_join("everyone") == emitgate.Result(receivers=2)
    client.in_("j1").sockets_leave("j1")
    barrier(harness, "/", a, b, c)
    assert a.rooms() == {a.sid, "a", "j2", "everyone"}
    assert b.rooms() == {b.sid, "a", "vip", "everyone"}
    assert c.rooms() == {c.sid, "c", "everyone"}

    client.sockets_leave(["everyone", "j2"])
    barrier(harness, "/", a)
    assert a.rooms() == {a.sid, "a"}


def test_disconnect_sockets(harness: Stack, client: emitgate.Client) -> None:
    leaving = harness.client(server=0, rooms=["bye"])
    closing = harness.client(server=1, rooms=["close"])
    staying = harness.client(server=1, rooms=["stay"])

    assert client.to("bye").disconnect_sockets() == emitgate.Result(receivers=2)
    assert leaving.wait_disconnect() == "io server disconnect"

    client.in_("close").disconnect_sockets(close=True)
    assert closing.wait_disconnect() is not None

    assert barrier(harness, "/", staying) == [[]]
    assert staying.info()["connected"] is True


def test_disconnect_every_socket_of_a_namespace(harness: Stack, client: emitgate.Client) -> None:
    admins = [harness.client(namespace="/admin", server=i) for i in (0, 1)]
    root = harness.client(namespace="/")

    client.of("/admin").disconnect_sockets()

    for sio in admins:
        assert sio.wait_disconnect() == "io server disconnect"
    assert barrier(harness, "/", root) == [[]]
    assert root.info()["connected"] is True


def test_server_side_emit(harness: Stack, client: emitgate.Client) -> None:
    harness.listen("/", "hello")
    harness.listen("/admin", "ping")

    assert client.server_side_emit("hello", "world", {"n": 1}) == emitgate.Result(receivers=2)
    client.of("admin").server_side_emit("ping", [1, 2])

    hello = harness.server_events("/", "hello", count=2)
    assert sorted(e["server"] for e in hello) == [0, 1]
    assert all(e["args"] == ["world", {"n": 1}] for e in hello)
    ping = harness.server_events("/admin", "ping", count=2)
    assert all(e["args"] == [[1, 2]] for e in ping)


def test_server_side_emit_arguments(harness: Stack, client: emitgate.Client) -> None:
    harness.listen("/", "numbers")
    client.server_side_emit("numbers", 2**60, -1.5, "ü")
    events = harness.server_events("/", "numbers", count=2)
    assert all(float(e["args"][0]) == float(2**60) for e in events)
    assert all(e["args"][1:] == [-1.5, "ü"] for e in events)

    # The socketio dialect's server requests are JSON: binary is refused.
    with pytest.raises(emitgate.InvalidArgument) as info:
        client.server_side_emit("numbers", "ok", {"b": b"x"})
    assert [v.field for v in info.value.violations] == ["args[1]"]
    with pytest.raises(emitgate.InvalidArgument):
        client.server_side_emit("numbers", b"raw")


def test_target_override(harness: Stack) -> None:
    sio = harness.client(rooms=["r"])
    with emitgate.Client(harness.grpc, insecure=True, target="down", timeout=10) as c:
        c.of("/", target="default").to("r").emit("via-default")
        with pytest.raises(emitgate.Unavailable):
            c.to("r").emit("via-down")
    assert names(barrier(harness, "/", sio)[0]) == ["via-default"]
