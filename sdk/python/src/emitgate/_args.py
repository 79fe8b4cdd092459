"""Encoding of event arguments (plain Python values) into ``emitgate.v1.Argument``.

Rules, applied to each argument:

* ``bytes`` / ``bytearray`` / ``memoryview`` become a ``binary`` argument
  (clients get a Buffer / ArrayBuffer).
* A value holding bytes anywhere inside, or an ``int`` outside ±(2**53 - 1),
  is sent as one pre-encoded ``msgpack`` value so nothing is lost on the way.
* Anything else travels as JSON text (the ``json`` oneof).
* ``None``, ``bool``, ``int``, ``float``, ``str``, lists, tuples and mappings
  with ``str`` (or ``int``, sent as its decimal string) keys are accepted. A
  timezone-aware ``datetime`` is sent as the ISO 8601 UTC string with
  millisecond precision that JavaScript's ``Date#toJSON`` gives
  (``2023-11-14T22:13:20.000Z``), which is what clients receive for a Date.
* Anything else (a set, a naive datetime, an object) raises ``TypeError``; a
  value of an accepted type the gateway would refuse (NaN, an integer msgpack
  cannot hold, nesting deeper than the gateway's 128 levels, a cycle) raises
  :class:`~emitgate.InvalidArgument` (a ``ValueError``) with a violation on
  ``args[i]``. Both name the argument index and come before any network call.

``server_side_emit`` arguments are encoded the same way; whether binary
values can reach the servers depends on the target's dialect, so the gateway
decides (the ``socketio`` dialect refuses them with INVALID_ARGUMENT).
"""

from __future__ import annotations

import datetime
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import msgpack

from emitgate._errors import FieldViolation, InvalidArgument
from emitgate._gen.emitgate.v1 import emitter_pb2 as pb

__all__ = ["MAX_SAFE_INTEGER", "arg_bytes", "encode_args", "varint"]

MAX_SAFE_INTEGER = 2**53 - 1
"""The largest integer a JavaScript number holds exactly (``Number.MAX_SAFE_INTEGER``)."""

_INT64_MIN = -(2**63)
_UINT64_MAX = 2**64 - 1
_MAX_DEPTH = 128
"""Most levels of lists and mappings in one argument: the gateway's limit (``max_depth``)."""
_BYTES_TYPES = (bytes, bytearray, memoryview)


# One encoder for every argument: json.dumps with these options would build a
# new one per call. No cycle check: _plain() has ruled cycles out.
_JSON = json.JSONEncoder(
    ensure_ascii=False, allow_nan=False, separators=(",", ":"), check_circular=False
)


def _no_default(value: object) -> object:
    raise TypeError(f"cannot send a value of type {type(value).__name__}")


# The C encoder behind _JSON.encode(), made once instead of per call (what
# JSONEncoder.iterencode does). None where the json module has no C
# accelerator; then _JSON.encode() is used.
_MAKE_ENCODER: Any = getattr(json.encoder, "c_make_encoder", None)
_ESCAPE: Any = getattr(json.encoder, "c_encode_basestring", None)
_C_ENCODER: Any = (
    None
    if _MAKE_ENCODER is None or _ESCAPE is None
    else _MAKE_ENCODER(None, _no_default, _ESCAPE, None, ":", ",", False, False, False)
)


def plain_json(value: object) -> str:
    """Return the compact JSON text of a value :func:`_plain` accepted."""
    if _C_ENCODER is None:
        return _JSON.encode(value)
    text: str = "".join(_C_ENCODER(value, 0))
    return text


def _plain(value: Any, depth: int) -> bool:
    """Tell whether ``value`` is plain JSON that needs no conversion.

    True only for exact ``dict`` (``str`` keys), ``list``, ``tuple``, ``str``,
    ``bool``, ``None``, safe ``int`` and finite ``float`` values, whose JSON
    text is then exactly what the full conversion would give. Anything else
    (a big int, bytes, a datetime, a subclass, a cycle, ...) takes the full,
    checking path. This is the hot path of every event.
    """
    t = type(value)
    if t is str or t is bool or value is None:
        return True
    if t is int:
        return bool(-MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER)
    if t is float:
        return bool(value - value == 0.0)  # false for inf and nan
    if depth >= _MAX_DEPTH:
        return False
    if t is dict:
        for key, item in value.items():
            if type(key) is not str:
                return False
            ti = type(item)
            if ti is str or ti is bool or item is None:
                continue
            if ti is int:
                if -MAX_SAFE_INTEGER <= item <= MAX_SAFE_INTEGER:
                    continue
                return False
            if not _plain(item, depth + 1):
                return False
        return True
    if t is list or t is tuple:
        return all(_plain(item, depth + 1) for item in value)
    return False


class _State:
    __slots__ = ("needs_msgpack",)

    def __init__(self) -> None:
        self.needs_msgpack = False


def _where(index: int, path: str) -> str:
    return f"argument {index}" + (f" at {path}" if path else "")


def _iso_utc(value: datetime.datetime, index: int, path: str) -> str:
    offset = value.utcoffset()
    if offset is None:
        raise TypeError(
            f"{_where(index, path)}: naive datetime {value!r} has no timezone; "
            "pass an aware datetime (e.g. tzinfo=datetime.timezone.utc) or a string"
        )
    utc = (value - offset).replace(tzinfo=None)
    return (
        f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}T"
        f"{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d}.{utc.microsecond // 1000:03d}Z"
    )


def _convert(
    value: object, index: int, path: str, depth: int, state: _State, stack: set[int]
) -> object:
    """Return ``value`` normalized for JSON / msgpack encoding, or raise."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        if -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            return value
        if not _INT64_MIN <= value <= _UINT64_MAX:
            raise ValueError(
                f"{_where(index, path)}: integer {value} does not fit in 64 bits "
                "(MessagePack holds -2**63 .. 2**64 - 1); send it as a string"
            )
        state.needs_msgpack = True
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{_where(index, path)}: {value!r} is not a finite number")
        return value
    if isinstance(value, _BYTES_TYPES):
        state.needs_msgpack = True
        return bytes(value)
    if isinstance(value, datetime.datetime):
        return _iso_utc(value, index, path)
    if isinstance(value, (list, tuple, Mapping)):
        if depth >= _MAX_DEPTH:
            raise ValueError(f"{_where(index, path)}: nested deeper than {_MAX_DEPTH} levels")
        marker = id(value)
        if marker in stack:
            raise ValueError(f"{_where(index, path)}: contains a reference to itself")
        stack.add(marker)
        try:
            if isinstance(value, Mapping):
                out: dict[str, object] = {}
                for key, item in value.items():
                    if isinstance(key, str):
                        name = key
                    elif isinstance(key, int) and not isinstance(key, bool):
                        name = str(key)
                    else:
                        raise TypeError(
                            f"{_where(index, path)}: mapping key {key!r} is a "
                            f"{type(key).__name__}; keys must be str (or int)"
                        )
                    if name in out:
                        raise ValueError(f"{_where(index, path)}: duplicate key {name!r}")
                    out[name] = _convert(item, index, f"{path}[{name!r}]", depth + 1, state, stack)
                return out
            return [
                _convert(item, index, f"{path}[{i}]", depth + 1, state, stack)
                for i, item in enumerate(value)
            ]
        finally:
            stack.discard(marker)
    raise TypeError(
        f"{_where(index, path)}: cannot send a value of type {type(value).__name__} "
        "(use None, bool, int, float, str, bytes, list, tuple, dict or an aware datetime)"
    )


def encode_arg(index: int, value: object) -> pb.Argument:
    """Encode one event argument; ``index`` names it in error messages."""
    if isinstance(value, _BYTES_TYPES):
        return pb.Argument(binary=bytes(value))
    if _plain(value, 0):
        return pb.Argument(json=plain_json(value))
    state = _State()
    try:
        normalized = _convert(value, index, "", 0, state, set())
    except ValueError as error:
        # A value the gateway would refuse: the same error as its answer.
        field = f"args[{index}]"
        raise InvalidArgument(str(error), violations=[FieldViolation(field, str(error))]) from None
    if state.needs_msgpack:
        packed: bytes = msgpack.packb(normalized, use_bin_type=True)
        return pb.Argument(msgpack=packed)
    text = json.dumps(normalized, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return pb.Argument(json=text)


_ONE_BYTE = [bytes((n,)) for n in range(0x80)]


def varint(n: int) -> bytes:
    """Encode a non-negative int as a protobuf varint."""
    if n < 0x80:
        return _ONE_BYTE[n]
    if n < 0x4000:  # most encoded events: 128 bytes to 16 KiB
        return bytes(((n & 0x7F) | 0x80, n >> 7))
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def arg_bytes(index: int, value: object) -> bytes:
    """Return the encoded ``Argument`` message of one event argument.

    The same bytes as ``encode_arg(index, value).SerializeToString()``, built
    without a protobuf message: ``binary`` is field 2, ``json`` 3, ``msgpack`` 4.
    """
    if isinstance(value, _BYTES_TYPES):
        data = bytes(value)
        return b"\x12" + varint(len(data)) + data
    if _plain(value, 0):
        text = plain_json(value).encode()
        return b"\x1a" + varint(len(text)) + text
    argument = encode_arg(index, value)
    return argument.SerializeToString()


def encode_args(args: Sequence[object]) -> list[pb.Argument]:
    """Encode event arguments in order, raising ``TypeError`` / ``ValueError`` early."""
    return [encode_arg(i, value) for i, value in enumerate(args)]
