"""Unit tests of argument encoding and of the client-side checks (no network)."""

from __future__ import annotations

import datetime
import enum
import json
from typing import Any

import msgpack
import pytest

import emitgate
from emitgate._args import arg_bytes, encode_arg, encode_args, plain_json
from emitgate._core import (
    Selection,
    broadcast_bytes,
    broadcast_request,
    disconnect_sockets_request,
    emit_bytes,
    emit_request,
    normalize_namespace,
    server_side_emit_request,
    sockets_join_request,
    sockets_leave_request,
)


def decoded(value: object) -> tuple[str, Any]:
    arg = encode_arg(0, value)
    kind = arg.WhichOneof("kind")
    if kind == "json":
        return kind, json.loads(arg.json)
    if kind == "msgpack":
        return kind, msgpack.unpackb(arg.msgpack, raw=False, strict_map_key=False)
    if kind == "binary":
        return kind, arg.binary
    raise AssertionError(kind)


class Color(enum.IntEnum):
    RED = 1


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        (True, True),
        (0, 0),
        (-(2**53) + 1, -(2**53) + 1),
        (2**53 - 1, 2**53 - 1),
        (0.1, 0.1),
        ("ünïcødé ✓ 🚀", "ünïcødé ✓ 🚀"),
        ([1, [2, {"a": None}]], [1, [2, {"a": None}]]),
        ((1, "t"), [1, "t"]),
        ({"k": (1,)}, {"k": [1]}),
        ({7: "x"}, {"7": "x"}),
        (Color.RED, 1),
    ],
)
def test_plain_values_travel_as_json(value: object, expected: object) -> None:
    assert decoded(value) == ("json", expected)


def test_json_text_keeps_unicode_and_is_compact() -> None:
    assert encode_arg(0, {"é": [1, 2]}).json == '{"é":[1,2]}'


@pytest.mark.parametrize("value", [b"\x00\xff", bytearray(b"ab"), memoryview(b"mv")])
def test_bytes_are_binary(value: bytes) -> None:
    assert decoded(value) == ("binary", bytes(value))


@pytest.mark.parametrize(
    "value",
    [
        {"file": b"\x00\x01", "name": "a"},
        [1, [bytearray(b"x")]],
        2**53,
        -(2**53),
        2**64 - 1,
        -(2**63),
        {"ids": [2**60, 1]},
    ],
)
def test_bytes_inside_or_big_ints_travel_as_exact_msgpack(value: object) -> None:
    def normal(v: object) -> object:
        if isinstance(v, (bytearray, memoryview)):
            return bytes(v)
        if isinstance(v, list):
            return [normal(x) for x in v]
        if isinstance(v, dict):
            return {k: normal(x) for k, x in v.items()}
        return v

    assert decoded(value) == ("msgpack", normal(value))


def test_aware_datetimes_become_javascript_iso_strings() -> None:
    paris = datetime.timezone(datetime.timedelta(hours=2))
    when = datetime.datetime(2024, 6, 1, 12, 30, 5, 999999, tzinfo=paris)
    assert decoded(when) == ("json", "2024-06-01T10:30:05.999Z")
    early = datetime.datetime(5, 1, 2, tzinfo=datetime.timezone.utc)
    assert decoded([early]) == ("json", ["0005-01-02T00:00:00.000Z"])


@pytest.mark.parametrize(
    ("args", "error", "pattern"),
    [
        ([1, {1, 2}], TypeError, r"argument 1: cannot send a value of type set"),
        ([float("nan")], ValueError, r"argument 0: nan is not a finite number"),
        ([[1, float("-inf")]], ValueError, r"argument 0 at \[1\]"),
        ([{"a": {"b": float("inf")}}], ValueError, r"argument 0 at \['a'\]\['b'\]"),
        ([0, 0, 2**64], ValueError, r"argument 2: integer .* does not fit in 64 bits"),
        ([-(2**63) - 1], ValueError, r"argument 0"),
        ([datetime.datetime(2024, 1, 1)], TypeError, r"argument 0: naive datetime"),
        ([datetime.date(2024, 1, 1)], TypeError, r"type date"),
        ([{(1, 2): "tuple key"}], TypeError, r"argument 0: mapping key"),
        ([{True: "bool key"}], TypeError, r"argument 0: mapping key"),
        ([{1: "a", "1": "b"}], ValueError, r"duplicate key '1'"),
        ([object()], TypeError, r"type object"),
    ],
)
def test_unencodable_values_name_the_argument(
    args: list[object], error: type[Exception], pattern: str
) -> None:
    with pytest.raises(error, match=pattern):
        encode_args(args)


def test_self_references_are_refused() -> None:
    loop: list[object] = [1]
    loop.append(loop)
    with pytest.raises(ValueError, match="argument 0 at \\[1\\]: contains a reference to itself"):
        encode_args([loop])
    shared = [1]
    assert decoded([shared, shared]) == ("json", [[1], [1]])  # shared, not cyclic


def test_idempotency_keys_go_into_every_request() -> None:
    sel = Selection("t", "/n", rooms=("r",))
    keys = [
        emit_request(sel, "e", (), "k1").idempotency_key,
        broadcast_request(Selection("t", "/n"), "e", (), "k2").idempotency_key,
        sockets_join_request(sel, "j", "k3").idempotency_key,
        sockets_leave_request(sel, "j", "k4").idempotency_key,
        disconnect_sockets_request(sel, True, "k5").idempotency_key,
        server_side_emit_request(Selection("t", "/n"), "e", (), "k6").idempotency_key,
    ]
    assert keys == ["k1", "k2", "k3", "k4", "k5", "k6"]
    assert emit_request(sel, "e", ()).idempotency_key == ""
    with pytest.raises(TypeError, match="idempotency_key"):
        emit_request(sel, "e", (), 5)  # type: ignore[arg-type]


def test_batch_items_carry_their_idempotency_keys() -> None:
    with emitgate.Client("127.0.0.1:1", insecure=True) as c:
        b = c.batch()
        b.to("r").emit("e", idempotency_key="a")
        b.broadcast("e", idempotency_key="b")
        b.to("r").emit("e")
        keys = [getattr(item, item.WhichOneof("op")).idempotency_key for item in b._items.items]
    assert keys == ["a", "b", ""]


def test_namespaces_get_a_leading_slash() -> None:
    assert normalize_namespace("") == "/"
    assert normalize_namespace("/") == "/"
    assert normalize_namespace("admin") == "/admin"
    assert normalize_namespace("/admin") == "/admin"


def test_fluent_chain_checks_types_and_dedupes() -> None:
    c = emitgate.Client("127.0.0.1:1", insecure=True)
    try:
        op = c.to("a").to(["b", "a"]).in_(("c",)).except_(["x", "x"])
        assert op.rooms == ("a", "b", "c")
        assert op.except_rooms == ("x",)
        with pytest.raises(TypeError):
            c.to(5)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            c.to([b"bytes"])  # type: ignore[list-item]
        with pytest.raises(TypeError):
            c.to(b"bytes")  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            c.compress("yes")  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            c.to("r").disconnect_sockets(close="yes")  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            c.to("r").emit(b"event")  # type: ignore[arg-type]
        assert "rooms=['a', 'b', 'c']" in repr(op)
    finally:
        c.close()


def test_constructor_checks() -> None:
    with pytest.raises(ValueError, match="insecure"):
        emitgate.Client("h:1", insecure=True, root_certificates=b"pem")
    with pytest.raises(ValueError, match="together"):
        emitgate.Client("h:1", private_key=b"key")
    with pytest.raises(ValueError, match="timeout"):
        emitgate.Client("h:1", insecure=True, timeout=0)
    with pytest.raises(ValueError, match="max_batch_items"):
        emitgate.AsyncClient("h:1", insecure=True, max_batch_items=0)
    with pytest.raises(ValueError, match="api_key"):
        emitgate.AsyncClient("h:1", insecure=True, api_key="")
    with pytest.raises(TypeError, match="target"):
        emitgate.Client("h:1", insecure=True, target=None)  # type: ignore[arg-type]


# Values the fast paths (plain JSON, hand-encoded requests) must encode exactly
# as the checking path and protobuf do, and values they must leave to it.
ENCODED_ALIKE: list[object] = [
    {"id": 1042, "kind": "comment", "unread": 3, "ok": True, "none": None, "ratio": 0.5},
    [1, "two", [3.25, {"four": [None]}], ()],
    "",
    "ü €",
    0,
    -(2**53) + 1,
    2**53,
    2**64 - 1,
    1.0e300,
    {"n": 2**60},
    {"bin": b"\x00"},
    b"",
    bytearray(b"\x01\x02"),
    {1: "int key"},
    Color.RED,
    datetime.datetime(2023, 11, 14, 22, 13, 20, tzinfo=datetime.timezone.utc),
    "x" * 300,
]


@pytest.mark.parametrize("value", ENCODED_ALIKE)
def test_fast_argument_encoding_matches_protobuf(value: object) -> None:
    assert arg_bytes(0, value) == encode_arg(0, value).SerializeToString()


def test_plain_json_matches_json_dumps() -> None:
    value = {"a": [1, 2.5, None, True], "é": {"b": "c"}}
    assert plain_json(value) == json.dumps(value, ensure_ascii=False, separators=(",", ":"))


@pytest.mark.parametrize(
    "sel",
    [
        Selection("", "/", ("r",)),
        Selection("eu", "/admin", ("a", "b", ""), ("muted",), True, False),
        Selection("", "", ("r",), (), False, True),
    ],
)
def test_hand_encoded_requests_match_protobuf(sel: Selection) -> None:
    for args, key in (((), None), (("x", {"n": 1}), "key-1"), ((b"\x01", 2**60), "")):
        assert emit_bytes(sel, "ev", args, key) == (
            emit_request(sel, "ev", args, key).SerializeToString()
        )
        broadcast_sel = sel._replace(rooms=())
        assert broadcast_bytes(broadcast_sel, "ev", args, key) == (
            broadcast_request(broadcast_sel, "ev", args, key).SerializeToString()
        )
    assert emit_bytes(sel, "", ()) == emit_request(sel, "", ()).SerializeToString()


def test_hand_encoded_requests_are_checked_alike() -> None:
    loop: list[object] = []
    loop.append(loop)
    for build in (emit_bytes, emit_request):
        with pytest.raises(emitgate.InvalidArgument):
            build(Selection("", "/"), "e", ())
        with pytest.raises(TypeError, match="argument 1"):
            build(Selection("", "/", ("r",)), "e", (1, {1.5: "float key"}))
        with pytest.raises(ValueError, match="finite"):
            build(Selection("", "/", ("r",)), "e", ([float("nan")],))
        with pytest.raises(ValueError, match="itself"):
            build(Selection("", "/", ("r",)), "e", (loop,))
    with pytest.raises(emitgate.InvalidArgument):
        broadcast_bytes(Selection("", "/", ("r",)), "e", ())
