"""What the sync and asyncio publishers share: options, item encoding, results, retries.

A publisher queues emits and broadcasts one at a time and sends them in the
background as non-atomic BatchEmit calls. Each queued item is kept as its
encoded ``BatchEmitRequest.items`` entry (tag, length, ``BatchItem`` bytes):
a batch is then the concatenation of its entries, its size is known exactly
without asking protobuf again, and it can be split and resent without
re-encoding anything.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import grpc

from emitgate._args import _plain, plain_json, varint
from emitgate._core import (
    _EMIT_FLAGS,
    Selection,
    _emit_head,
    _smaller_limit,
    _text,
    broadcast_bytes,
    emit_bytes,
)
from emitgate._errors import (
    EmitgateError,
    FieldViolation,
    Internal,
    InvalidArgument,
    ResourceExhausted,
    Unavailable,
    error_from_status,
    status_code,
)
from emitgate._gen.emitgate.v1 import emitter_pb2 as pb
from emitgate._results import Result

__all__ = [
    "BATCH_EMIT",
    "DEFAULT_BUFFER",
    "DEFAULT_LINGER",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_IN_FLIGHT",
    "DEFAULT_MAX_ITEMS",
    "OnFull",
    "PublisherOptions",
]

DEFAULT_MAX_ITEMS = 1000
"""Items per BatchEmit: the gateway's default ``max_batch_items``."""

DEFAULT_MAX_BYTES = 4 * 1024 * 1024
"""Encoded bytes per BatchEmit: well under the gateway's default 16 MiB message limit."""

DEFAULT_LINGER = 0.005
"""Seconds a non-full batch waits for more items after its first one."""

DEFAULT_MAX_IN_FLIGHT = 4
"""Concurrent BatchEmit calls: enough to keep a gateway busy while the next batch fills."""

DEFAULT_BUFFER = 100_000
"""Events published and not yet answered before publishing blocks (or fails)."""

RETRY_INITIAL = 0.1
"""First backoff, in seconds, before a whole-call retry."""

RETRY_MULTIPLIER = 2.0
"""Each backoff is this many times the previous one..."""

RETRY_MAX = 2.0
"""...up to this many seconds."""

RETRY_ATTEMPTS = 5
"""Calls made for one batch at most, the first one included."""

BATCH_EMIT = "/emitgate.v1.EmitterService/BatchEmit"
"""The method path; the publisher sends pre-encoded request bytes to it."""

OnFull = Literal["block", "error"]

# Field numbers and wire types of the messages the publisher encodes by hand.
_ITEMS_TAG = b"\x0a"  # BatchEmitRequest.items = 1, length-delimited
_EMIT_TAG = b"\x0a"  # BatchItem.emit = 1, length-delimited
_BROADCAST_TAG = b"\x12"  # BatchItem.broadcast = 2, length-delimited


@dataclass(frozen=True)
class PublisherOptions:
    """The checked options of a publisher (see :meth:`emitgate.Client.publisher`)."""

    max_items: int = DEFAULT_MAX_ITEMS
    max_bytes: int = DEFAULT_MAX_BYTES
    linger: float = DEFAULT_LINGER
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT
    buffer: int = DEFAULT_BUFFER
    on_full: OnFull = "block"

    def __post_init__(self) -> None:
        """Refuse options that cannot work."""
        for name in ("max_items", "max_bytes", "max_in_flight", "buffer"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, not {value!r}")
        linger = self.linger
        if isinstance(linger, bool) or not isinstance(linger, (int, float)) or not linger >= 0:
            raise ValueError(f"linger must be a number of seconds >= 0, not {linger!r}")
        if self.on_full not in ("block", "error"):
            raise ValueError(f'on_full must be "block" or "error", not {self.on_full!r}')


def _entry(tag: bytes, message: bytes) -> bytes:
    """Return one ``BatchEmitRequest.items`` entry holding ``message`` under ``tag``."""
    item = tag + varint(len(message)) + message
    return _ITEMS_TAG + varint(len(item)) + item


def emit_entry(
    sel: Selection, event: str, args: Sequence[object], idempotency_key: str | None
) -> bytes:
    """Encode an emit as a batch entry, validating it as a single Emit would be."""
    return _entry(_EMIT_TAG, emit_bytes(sel, event, args, idempotency_key))


def emit_prefix(sel: Selection, event: str) -> bytes:
    """Return the fields of an emit of ``sel`` that come before its arguments.

    The caller has checked what :func:`emit_entry` checks: ``sel`` has rooms
    and ``event`` is a ``str``.
    """
    head = _emit_head(sel)
    return head + _text(b"\x2a", event) if event else head


def emit_flags(sel: Selection) -> bytes:
    """Return the encoded ``flags`` field of an emit of ``sel``."""
    return _EMIT_FLAGS[sel.volatile, sel.compress]


# Varints of the lengths most events' parts have, made once.
_VARINTS = [varint(n) for n in range(0x800)]


def _varint(n: int) -> bytes:
    return _VARINTS[n] if n < 0x800 else varint(n)


def plain_emit_entry(prefix: bytes, flags: bytes, args: Sequence[object]) -> bytes | None:
    """Return the batch entry of an emit whose arguments are all plain JSON, else ``None``.

    The bytes of :func:`emit_entry` (``prefix`` and ``flags`` from
    :func:`emit_prefix` and :func:`emit_flags`, no idempotency key), made in
    one pass: each argument is checked and encoded once, and the message is
    joined once. ``None`` sends the caller to :func:`emit_entry`, which
    encodes (or refuses) any other argument.
    """
    if len(args) == 1:  # the common event, without a list of parts
        arg = args[0]
        if not _plain(arg, 0):
            return None
        text = plain_json(arg).encode()
        n = len(text)
        vn = _varint(n)
        # EmitRequest.args (field 6) holding Argument.json (field 3).
        m = 1 + len(vn) + n
        vm = _varint(m)
        size = len(prefix) + 1 + len(vm) + m + len(flags)
        vs = _varint(size)
        return b"".join(
            (
                _ITEMS_TAG,
                _varint(1 + len(vs) + size),
                _EMIT_TAG,
                vs,
                prefix,
                b"\x32",
                vm,
                b"\x1a",
                vn,
                text,
                flags,
            )
        )
    parts = [prefix]
    for arg in args:
        if not _plain(arg, 0):
            return None
        text = plain_json(arg).encode()
        n = len(text)
        vn = _varint(n)
        parts += (b"\x32", _varint(1 + len(vn) + n), b"\x1a", vn, text)
    parts.append(flags)
    message = b"".join(parts)
    n = len(message)
    head = _varint(n)
    return _ITEMS_TAG + _varint(1 + len(head) + n) + _EMIT_TAG + head + message


def broadcast_entry(
    sel: Selection, event: str, args: Sequence[object], idempotency_key: str | None
) -> bytes:
    """Encode a broadcast as a batch entry, validating it as a single Broadcast would be."""
    return _entry(_BROADCAST_TAG, broadcast_bytes(sel, event, args, idempotency_key))


def request_bytes(entries: Sequence[bytes]) -> bytes:
    """Return the encoded non-atomic BatchEmitRequest of ``entries``."""
    return b"".join(entries)


_ITEM_PREFIX = re.compile(r"^items\[\d+\]\.(?:emit|broadcast)\.?")


def _item_field(field: str) -> str:
    """Turn ``items[3].emit.rooms[0]`` into ``rooms[0]``, the path of a single call."""
    return _ITEM_PREFIX.sub("", field, count=1)


def item_error(result: pb.ItemResult) -> EmitgateError:
    """Return the typed exception of a failed item, paths as for a single call."""
    code = status_code(result.code)
    if code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.OUT_OF_RANGE):
        violations = [
            FieldViolation(_item_field(v.field), v.description) for v in result.violations
        ]
        return InvalidArgument(result.message, violations=violations, code=code)
    return error_from_status(code, result.message, None)


# Results are immutable: the common ones (no stream id) are shared by every
# item that has them instead of being made per item. Bounded, as receivers
# counts are few but not fixed.
_SHARED_RESULTS: dict[tuple[int, bool], Result] = {}
_SHARED_RESULTS_MAX = 1024


def item_result(result: pb.ItemResult) -> Result | EmitgateError:
    """Return what a published item's handle gets: its result or its error."""
    if result.code != 0:
        return item_error(result)
    if result.stream_id:
        return Result(result.receivers, result.duplicate, result.stream_id)
    key = (result.receivers, result.duplicate)
    shared = _SHARED_RESULTS.get(key)
    if shared is None:
        shared = Result(result.receivers, result.duplicate)
        if len(_SHARED_RESULTS) < _SHARED_RESULTS_MAX:
            _SHARED_RESULTS[key] = shared
    return shared


def item_outcomes(response: pb.BatchEmitResponse, count: int) -> list[Result | BaseException]:
    """Return the outcome of each of the ``count`` items a BatchEmit answered."""
    shared = _SHARED_RESULTS
    outcomes: list[Result | BaseException] = []
    append = outcomes.append
    # item_result() inlined for the common answer (published, no stream id):
    # this loop runs once per event.
    for r in response.results:
        if r.code == 0 and not r.stream_id:
            outcome = shared.get((r.receivers, r.duplicate))
            append(item_result(r) if outcome is None else outcome)
        else:
            append(item_result(r))
    if len(outcomes) < count:
        outcomes += [missing_result()] * (count - len(outcomes))
    return outcomes[:count]


def missing_result() -> EmitgateError:
    """Return the error of an item the gateway's answer has no result for."""
    return Internal("the gateway answered without a result for this item")


def smaller_limit(error: EmitgateError, sent: int) -> int | None:
    """Return a smaller batch size if the gateway refused ``sent`` items as too many."""
    return _smaller_limit(error, sent)


def retry_delay(
    error: EmitgateError, attempt: int, backoff: float, all_keyed: bool
) -> float | None:
    """Return how long to wait before calling again, or ``None`` to give up.

    A whole-call failure is retried only when every item of the batch carries
    an idempotency key, so a retry can never publish an event twice: after
    UNAVAILABLE with exponential backoff, after RESOURCE_EXHAUSTED with the
    delay the gateway asked for (RetryInfo). ``attempt`` counts the calls
    made so far.
    """
    if not all_keyed or attempt >= RETRY_ATTEMPTS:
        return None
    if isinstance(error, Unavailable):
        return backoff
    if isinstance(error, ResourceExhausted) and error.retry_delay is not None:
        return error.retry_delay
    return None


def next_backoff(backoff: float) -> float:
    """Return the backoff after ``backoff``."""
    return min(backoff * RETRY_MULTIPLIER, RETRY_MAX)


def buffer_full(buffer: int) -> ResourceExhausted:
    """Return the error of a publish refused as the buffer is full (``on_full="error"``)."""
    return ResourceExhausted(
        f"the publisher's buffer is full ({buffer} events not yet answered); "
        "retry later, flush(), or raise buffer"
    )
