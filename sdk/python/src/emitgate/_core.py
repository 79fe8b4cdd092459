"""The parts shared by the sync and asyncio clients: selections, requests, batching."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any, Generic, NamedTuple, Protocol, TypeVar, Union

import grpc

from emitgate._args import arg_bytes, encode_args, varint
from emitgate._errors import EmitgateError, FieldViolation, InvalidArgument, status_code
from emitgate._gen.emitgate.v1 import emitter_pb2 as pb
from emitgate._results import BatchItemResult, BatchResult, Result

__version__ = "0.1.0"

Rooms = Union[str, Iterable[str]]
"""One room name, or an iterable of room names (a socket id is a room too)."""

DEFAULT_TIMEOUT = 10.0
DEFAULT_MAX_BATCH_ITEMS = 1000
"""Items per BatchEmit request: the gateway's default ``max_batch_items``."""


def normalize_namespace(namespace: str) -> str:
    """Return the namespace with a leading ``/``, as the JavaScript ``of()`` does."""
    if not isinstance(namespace, str):
        raise TypeError(f"namespace must be a str, not {type(namespace).__name__}")
    if not namespace:
        return "/"
    return namespace if namespace.startswith("/") else "/" + namespace


def room_list(rooms: Rooms, what: str) -> tuple[str, ...]:
    """Return ``rooms`` as a tuple of names, checking their type."""
    if isinstance(rooms, str):
        return (rooms,)
    if isinstance(rooms, (bytes, bytearray)):
        raise TypeError(f"{what} must be str or an iterable of str, not bytes")
    try:
        names = tuple(rooms)
    except TypeError:
        raise TypeError(
            f"{what} must be str or an iterable of str, not {type(rooms).__name__}"
        ) from None
    for name in names:
        if not isinstance(name, str):
            raise TypeError(f"{what} must contain only str, not {type(name).__name__}")
    return names


def _merge(current: tuple[str, ...], extra: tuple[str, ...]) -> tuple[str, ...]:
    """Append ``extra`` to ``current`` without duplicates, keeping order (a JS Set)."""
    if not current and len(extra) == 1:
        return extra
    return tuple(dict.fromkeys(current + extra))


class Selection(NamedTuple):
    """Which sockets an operation reaches and how: the state of a fluent chain.

    A tuple, so that the new selection of every chain call is cheap to make.
    """

    target: str
    namespace: str = "/"
    rooms: tuple[str, ...] = ()
    except_rooms: tuple[str, ...] = ()
    volatile: bool = False
    compress: bool | None = None
    # How long calls that wait for answers (emit_with_ack, fetch_sockets...)
    # wait, in milliseconds; 0 lets the gateway pick its default (timeout()).
    ack_timeout_ms: int = 0

    def flags(self) -> pb.EmitFlags:
        """Return the delivery flags of this selection."""
        flags = pb.EmitFlags(volatile=self.volatile)
        if self.compress is not None:
            flags.compress = self.compress
        return flags


_F = TypeVar("_F", bound="Fluent[Any]")
_OwnerT = TypeVar("_OwnerT")


class Fluent(Generic[_OwnerT]):
    """Immutable chain methods shared by every operator (like the JS BroadcastOperator)."""

    __slots__ = ("_owner", "_sel")

    def __init__(self, owner: _OwnerT, selection: Selection) -> None:
        """Bind a selection to the client or batch that will carry its calls."""
        self._owner = owner
        self._sel = selection

    def _derive(self: _F, selection: Selection) -> _F:
        return type(self)(self._owner, selection)

    def to(self: _F, rooms: Rooms) -> _F:
        """Target the sockets in ``rooms`` too (a room name or an iterable of them).

        Returns a new operator; this one is unchanged.
        """
        t, ns, current, skip, volatile, compress, wait = self._sel
        merged = _merge(current, room_list(rooms, "rooms"))
        return type(self)(self._owner, Selection(t, ns, merged, skip, volatile, compress, wait))

    def in_(self: _F, rooms: Rooms) -> _F:
        """Alias of :meth:`to` (``in`` is a Python keyword)."""
        return self.to(rooms)

    def except_(self: _F, rooms: Rooms) -> _F:
        """Skip the sockets in ``rooms`` (``except`` is a Python keyword).

        Returns a new operator; this one is unchanged.
        """
        sel = self._sel
        merged = _merge(sel.except_rooms, room_list(rooms, "except rooms"))
        return self._derive(sel._replace(except_rooms=merged))

    @property
    def volatile(self: _F) -> _F:
        """Allow the event to be dropped for clients that are not ready to receive it."""
        return self._derive(self._sel._replace(volatile=True))

    def compress(self: _F, compress: bool) -> _F:
        """Ask the servers to compress (or not) the packet on client connections."""
        if not isinstance(compress, bool):
            raise TypeError(f"compress must be a bool, not {type(compress).__name__}")
        return self._derive(self._sel._replace(compress=compress))

    @property
    def namespace(self) -> str:
        """The namespace this operator publishes to."""
        return self._sel.namespace

    @property
    def rooms(self) -> tuple[str, ...]:
        """The rooms selected so far."""
        return self._sel.rooms

    @property
    def except_rooms(self) -> tuple[str, ...]:
        """The rooms excluded so far."""
        return self._sel.except_rooms

    def __repr__(self) -> str:
        """Describe the selection."""
        s = self._sel
        return (
            f"{type(self).__name__}(target={s.target!r}, namespace={s.namespace!r}, "
            f"rooms={list(s.rooms)!r}, except_rooms={list(s.except_rooms)!r}, "
            f"volatile={s.volatile!r}, compress={s.compress!r})"
        )


def _check_event(event: str) -> None:
    if not isinstance(event, str):
        raise TypeError(f"event must be a str, not {type(event).__name__}")


def _key(idempotency_key: str | None) -> str:
    """Return the idempotency key for a request (``""``: none)."""
    if idempotency_key is None:
        return ""
    if not isinstance(idempotency_key, str):
        raise TypeError(f"idempotency_key must be a str, not {type(idempotency_key).__name__}")
    return idempotency_key


def _check_emit(sel: Selection, event: str) -> None:
    _check_event(event)
    if not sel.rooms:
        raise InvalidArgument(
            "emit needs at least one room: use to()/in_(), or broadcast() to reach "
            "every socket of the namespace",
            violations=[FieldViolation("rooms", "at least one room is required")],
        )


def _check_broadcast(sel: Selection, event: str) -> None:
    _check_event(event)
    if sel.rooms:
        raise InvalidArgument(
            "broadcast reaches every socket of the namespace and takes no room: "
            "use emit() to reach the selected rooms",
            violations=[FieldViolation("rooms", "broadcast takes no room")],
        )


def emit_request(
    sel: Selection, event: str, args: Sequence[object], idempotency_key: str | None = None
) -> pb.EmitRequest:
    """Build an EmitRequest; an emit without a room is refused like the server would."""
    _check_emit(sel, event)
    return pb.EmitRequest(
        target=sel.target,
        namespace=sel.namespace,
        rooms=sel.rooms,
        except_rooms=sel.except_rooms,
        event=event,
        args=encode_args(args),
        flags=sel.flags(),
        idempotency_key=_key(idempotency_key),
    )


def broadcast_request(
    sel: Selection, event: str, args: Sequence[object], idempotency_key: str | None = None
) -> pb.BroadcastRequest:
    """Build a BroadcastRequest; rooms chosen with to() are refused (use emit)."""
    _check_broadcast(sel, event)
    return pb.BroadcastRequest(
        target=sel.target,
        namespace=sel.namespace,
        except_rooms=sel.except_rooms,
        event=event,
        args=encode_args(args),
        flags=sel.flags(),
        idempotency_key=_key(idempotency_key),
    )


# Encoding by hand, for the publisher's hot path: the same bytes as the
# messages' SerializeToString() (fields in number order, proto3 defaults left
# out, `flags` always present as emit_request sets it), without building them.
# The parts that repeat from event to event (a selection's target, namespace
# and rooms, an event name) are encoded once and kept in small LRU caches.

# Selections and event names whose encoding is kept: a pipeline cycles through
# a working set of rooms; unique rooms (one per user) just miss the cache.
_HEAD_CACHE = 4096
_TEXT_CACHE = 1024

_LENGTHS = [bytes((n,)) for n in range(0x80)]


def _field(tag: bytes, data: bytes) -> bytes:
    """Return a length-delimited field (``tag`` is the field's key byte)."""
    n = len(data)
    return tag + (_LENGTHS[n] if n < 0x80 else varint(n)) + data


@lru_cache(maxsize=_TEXT_CACHE)
def _text(tag: bytes, text: str) -> bytes:
    return _field(tag, text.encode())


@lru_cache(maxsize=_HEAD_CACHE)
def _emit_head(sel: Selection) -> bytes:
    """Encode EmitRequest fields 1 to 4 (target, namespace, rooms, except_rooms)."""
    parts = [_text(b"\x0a", sel.target)] if sel.target else []
    if sel.namespace:
        parts.append(_text(b"\x12", sel.namespace))
    parts.extend([_field(b"\x1a", room.encode()) for room in sel.rooms])
    parts.extend([_field(b"\x22", room.encode()) for room in sel.except_rooms])
    return b"".join(parts)


@lru_cache(maxsize=_HEAD_CACHE)
def _broadcast_head(sel: Selection) -> bytes:
    """Encode BroadcastRequest fields 1 to 3 (target, namespace, except_rooms)."""
    parts = [_text(b"\x0a", sel.target)] if sel.target else []
    if sel.namespace:
        parts.append(_text(b"\x12", sel.namespace))
    parts.extend([_field(b"\x1a", room.encode()) for room in sel.except_rooms])
    return b"".join(parts)


def _flags_bytes(volatile: bool, compress: bool | None) -> bytes:
    data = b"\x08\x01" if volatile else b""
    if compress is not None:
        data += b"\x10\x01" if compress else b"\x10\x00"
    return data


# Every (volatile, compress) pair, encoded: EmitRequest.flags is field 7,
# BroadcastRequest.flags field 6.
_EMIT_FLAGS = {
    (v, c): _field(b"\x3a", _flags_bytes(v, c)) for v in (False, True) for c in (None, False, True)
}
_BROADCAST_FLAGS = {
    (v, c): _field(b"\x32", _flags_bytes(v, c)) for v in (False, True) for c in (None, False, True)
}


def emit_bytes(
    sel: Selection, event: str, args: Sequence[object], idempotency_key: str | None = None
) -> bytes:
    """Return ``emit_request(...).SerializeToString()``, checked the same way, faster."""
    _check_emit(sel, event)
    parts = [_emit_head(sel)]
    if event:
        parts.append(_text(b"\x2a", event))
    for i, arg in enumerate(args):
        parts.append(_field(b"\x32", arg_bytes(i, arg)))
    parts.append(_EMIT_FLAGS[sel.volatile, sel.compress])
    if idempotency_key is not None:
        key = _key(idempotency_key)
        if key:
            parts.append(_field(b"\x42", key.encode()))
    return b"".join(parts)


def broadcast_bytes(
    sel: Selection, event: str, args: Sequence[object], idempotency_key: str | None = None
) -> bytes:
    """Return ``broadcast_request(...).SerializeToString()``, checked the same way, faster."""
    _check_broadcast(sel, event)
    parts = [_broadcast_head(sel)]
    if event:
        parts.append(_text(b"\x22", event))
    for i, arg in enumerate(args):
        parts.append(_field(b"\x2a", arg_bytes(i, arg)))
    parts.append(_BROADCAST_FLAGS[sel.volatile, sel.compress])
    if idempotency_key is not None:
        key = _key(idempotency_key)
        if key:
            parts.append(_field(b"\x3a", key.encode()))
    return b"".join(parts)


def sockets_join_request(
    sel: Selection, rooms: Rooms, idempotency_key: str | None = None
) -> pb.SocketsJoinRequest:
    """Build a SocketsJoinRequest for the selected sockets."""
    return pb.SocketsJoinRequest(
        target=sel.target,
        namespace=sel.namespace,
        rooms=sel.rooms,
        except_rooms=sel.except_rooms,
        join_rooms=room_list(rooms, "rooms"),
        idempotency_key=_key(idempotency_key),
    )


def sockets_leave_request(
    sel: Selection, rooms: Rooms, idempotency_key: str | None = None
) -> pb.SocketsLeaveRequest:
    """Build a SocketsLeaveRequest for the selected sockets."""
    return pb.SocketsLeaveRequest(
        target=sel.target,
        namespace=sel.namespace,
        rooms=sel.rooms,
        except_rooms=sel.except_rooms,
        leave_rooms=room_list(rooms, "rooms"),
        idempotency_key=_key(idempotency_key),
    )


def disconnect_sockets_request(
    sel: Selection, close: bool, idempotency_key: str | None = None
) -> pb.DisconnectSocketsRequest:
    """Build a DisconnectSocketsRequest for the selected sockets."""
    if not isinstance(close, bool):
        raise TypeError(f"close must be a bool, not {type(close).__name__}")
    return pb.DisconnectSocketsRequest(
        target=sel.target,
        namespace=sel.namespace,
        rooms=sel.rooms,
        except_rooms=sel.except_rooms,
        close=close,
        idempotency_key=_key(idempotency_key),
    )


def server_side_emit_request(
    sel: Selection, event: str, args: Sequence[object], idempotency_key: str | None = None
) -> pb.ServerSideEmitRequest:
    """Build a ServerSideEmitRequest; it reaches servers, so rooms make no sense."""
    _check_event(event)
    if sel.rooms or sel.except_rooms:
        raise InvalidArgument(
            "server_side_emit reaches the Socket.IO servers of the namespace, not "
            "sockets: it takes no room",
            violations=[
                FieldViolation(name, "server_side_emit takes no room")
                for name, given in (("rooms", sel.rooms), ("except_rooms", sel.except_rooms))
                if given
            ],
        )
    return pb.ServerSideEmitRequest(
        target=sel.target,
        namespace=sel.namespace,
        event=event,
        args=encode_args(args),
        idempotency_key=_key(idempotency_key),
    )


class _Response(Protocol):
    @property
    def receivers(self) -> int: ...
    @property
    def duplicate(self) -> bool: ...
    @property
    def stream_id(self) -> str: ...


def result_of(response: _Response) -> Result:
    """Return the :class:`Result` of a published call."""
    return Result(
        receivers=response.receivers,
        duplicate=response.duplicate,
        stream_id=response.stream_id,
    )


def call_metadata(api_key: str | None) -> tuple[tuple[str, str], ...]:
    """Return the metadata sent with every call (the API key as a bearer token)."""
    if api_key is None:
        return ()
    if not isinstance(api_key, str) or not api_key:
        raise ValueError("api_key must be a non-empty str")
    return (("authorization", f"Bearer {api_key}"),)


def channel_credentials(
    *,
    insecure: bool,
    root_certificates: bytes | None,
    private_key: bytes | None,
    certificate_chain: bytes | None,
) -> grpc.ChannelCredentials | None:
    """Return TLS credentials, or ``None`` for a plaintext channel."""
    if (private_key is None) != (certificate_chain is None):
        raise ValueError("private_key and certificate_chain must be given together")
    if insecure:
        if root_certificates is not None or private_key is not None:
            raise ValueError("insecure=True cannot be combined with TLS certificates")
        return None
    return grpc.ssl_channel_credentials(
        root_certificates=root_certificates,
        private_key=private_key,
        certificate_chain=certificate_chain,
    )


def channel_options(options: Sequence[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """Return the channel options, with the SDK's user agent unless one is given."""
    merged = list(options)
    if not any(name == "grpc.primary_user_agent" for name, _ in merged):
        merged.append(("grpc.primary_user_agent", f"emitgate-python/{__version__}"))
    return merged


def check_timeout(timeout: float | None) -> float | None:
    """Validate a per-call timeout in seconds (``None``: no deadline)."""
    if timeout is not None and (isinstance(timeout, bool) or not timeout > 0):
        raise ValueError(f"timeout must be a positive number of seconds or None, not {timeout!r}")
    return timeout


def check_max_batch_items(value: int) -> int:
    """Validate the batch chunk size."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"max_batch_items must be a positive int, not {value!r}")
    return value


_ITEM_PATH = re.compile(r"^items\[(\d+)\]")


def _shift_field(field: str, offset: int) -> str:
    """Turn ``items[3].emit.event`` of a chunk into the batch-level path."""
    if offset == 0:
        return field
    return _ITEM_PATH.sub(lambda m: f"items[{int(m[1]) + offset}]", field, count=1)


def _smaller_limit(error: EmitgateError, sent: int) -> int | None:
    """Return a smaller chunk size if ``error`` says the chunk had too many items.

    The gateway rejects a BatchEmit with more items than its limit as a whole
    (INVALID_ARGUMENT on the field ``items``) before publishing anything, so the
    chunk can be resent smaller. The limit is the ``max_batch_items`` the
    gateway sends as data (:attr:`EmitgateError.limits`); a refusal of the
    ``items`` field without it halves the chunk.
    """
    if not isinstance(error, InvalidArgument) or sent <= 1:
        return None
    limit = error.limits.get("max_batch_items")
    if limit is not None:
        return limit if 0 < limit < sent else None
    if not error.violations or any(v.field != "items" for v in error.violations):
        return None
    return max(1, sent // 2)


class BatchPlan:
    """Splits a batch into BatchEmit requests and gathers their results.

    Non-atomic batches are sent in chunks of at most ``limit`` items; when the
    gateway answers that a chunk has too many items, the chunk is resent smaller
    and :attr:`limit` remembers the smaller size. Atomic batches always go in one
    request, so that the gateway can keep them all-or-nothing.
    """

    def __init__(self, items: Sequence[pb.BatchItem], *, atomic: bool, limit: int) -> None:
        """Plan the sending of ``items``."""
        self.items = items
        self.atomic = atomic
        self.limit = limit
        self.offset = 0
        self.requests = 0
        self._size = 0
        self._results: list[BatchItemResult] = []
        self._published = 0
        self._failed = 0
        self._receivers = 0

    def next_request(self) -> pb.BatchEmitRequest | None:
        """Return the next request to send, or ``None`` when everything was sent."""
        if self.offset >= len(self.items):
            return None
        if self.atomic:
            self._size = len(self.items)
        else:
            self._size = min(self.limit, len(self.items) - self.offset)
        chunk = self.items[self.offset : self.offset + self._size]
        return pb.BatchEmitRequest(items=chunk, atomic=self.atomic)

    def on_response(self, response: pb.BatchEmitResponse) -> None:
        """Record the answer to the request last returned by :meth:`next_request`."""
        self.requests += 1
        for i, item in enumerate(response.results):
            self._results.append(
                BatchItemResult(
                    index=self.offset + i,
                    code=status_code(item.code),
                    message=item.message,
                    violations=tuple(
                        FieldViolation(_shift_field(v.field, self.offset), v.description)
                        for v in item.violations
                    ),
                    receivers=item.receivers,
                    duplicate=item.duplicate,
                    stream_id=item.stream_id,
                )
            )
        self._published += response.published
        self._failed += response.failed
        self._receivers += response.receivers
        self.offset += self._size

    def on_error(self, error: EmitgateError) -> bool:
        """Decide whether a failed request is resent smaller (True) or raised (False)."""
        if self.atomic:
            return False
        smaller = _smaller_limit(error, self._size)
        if smaller is None:
            return False
        self.limit = smaller
        return True

    def result(self) -> BatchResult:
        """Return the results gathered so far."""
        return BatchResult(
            results=tuple(self._results),
            published=self._published,
            failed=self._failed,
            receivers=self._receivers,
            requests=self.requests,
        )


class BatchItems:
    """The items queued in a batch, shared by its operators."""

    __slots__ = ("items", "sealed")

    def __init__(self) -> None:
        """Start an empty batch."""
        self.items: list[pb.BatchItem] = []
        self.sealed = False

    def add(self, item: pb.BatchItem) -> int:
        """Queue ``item`` and return its index."""
        if self.sealed:
            raise RuntimeError("this batch was already sent; start a new one with client.batch()")
        self.items.append(item)
        return len(self.items) - 1


_OpT = TypeVar("_OpT", bound="Fluent[Any]")


class EntryPoint(Generic[_OpT]):
    """The chain starters of a client or batch: ``of`` and its shortcuts on ``/``."""

    __slots__ = ()

    def of(self, namespace: str = "/", *, target: str | None = None) -> _OpT:
        """Return an operator on ``namespace`` (a missing leading ``/`` is added).

        ``target`` names the configured Socket.IO cluster to publish to; by
        default the client's target is used.
        """
        raise NotImplementedError

    def to(self, rooms: Rooms) -> _OpT:
        """Shortcut for ``of("/").to(rooms)``."""
        return self.of().to(rooms)

    def in_(self, rooms: Rooms) -> _OpT:
        """Shortcut for ``of("/").in_(rooms)``."""
        return self.of().in_(rooms)

    def except_(self, rooms: Rooms) -> _OpT:
        """Shortcut for ``of("/").except_(rooms)``."""
        return self.of().except_(rooms)

    @property
    def volatile(self) -> _OpT:
        """Shortcut for ``of("/").volatile``."""
        return self.of().volatile

    def compress(self, compress: bool) -> _OpT:
        """Shortcut for ``of("/").compress(compress)``."""
        return self.of().compress(compress)
