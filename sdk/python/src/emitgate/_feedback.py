"""Calls that wait for answers: acks, fetch_sockets, all_rooms, server_count.

The gateway sends these requests like one more node of the Socket.IO cluster
and gathers what the servers answer within a timeout. A timeout is not an
error: every result says how many servers answered (``servers``), how many
were expected (``servers_expected``) and whether everything arrived
(``complete``); read ``complete=False`` as "some sockets or servers may not
have received or acknowledged the event".

The mixins here add these calls to the operators and clients of
``_client.py`` and ``_aio.py``.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import grpc
import grpc.aio
import msgpack
from google.protobuf import struct_pb2

from emitgate._args import MAX_SAFE_INTEGER, encode_args
from emitgate._core import Selection, broadcast_request, emit_request, server_side_emit_request
from emitgate._errors import error_from_rpc_error
from emitgate._gen.emitgate.v1 import emitter_pb2 as pb

if TYPE_CHECKING:
    from emitgate._aio import AsyncOperator
    from emitgate._client import Operator

__all__ = [
    "AckResult",
    "AllRoomsResult",
    "FetchSocketsResult",
    "Handshake",
    "RemoteSocket",
    "ServerAckResult",
    "ServerReply",
    "decode_argument",
]

# Extra time the gRPC deadline of a waiting call gets beyond its answer
# timeout, so that the gateway's "timed out, here is what arrived" response
# comes back before the deadline cancels the call.
_DEADLINE_MARGIN = 2.0
# The gateway's answer timeout when a call sets none (EmitWithAckRequest.timeout_ms = 0).
_DEFAULT_WAIT_MS = 5000
_MAX_WAIT_MS = 2**32 - 1


# -- results -----------------------------------------------------------------


@dataclass(frozen=True)
class AckResult:
    """What came back for :meth:`~emitgate.Operator.emit_with_ack`.

    Attributes:
        sockets: How many clients received the event (the sum of the counts
            the answering servers reported).
        acks: Each client's ack reply (the first argument it passed to its
            callback), decoded, in arrival order: ``None`` for an ack without
            argument, ``bytes`` for binary, exact ``int`` for 64-bit integers.
        servers: How many servers reported their client count.
        servers_expected: How many servers were expected to answer.
        complete: Every expected server answered and every counted client
            acked before the timeout.

    """

    sockets: int
    acks: tuple[Any, ...]
    servers: int
    servers_expected: int
    complete: bool


@dataclass(frozen=True)
class Handshake:
    """The connection details a server kept for a socket.

    Never holds ``auth`` nor the ``cookie`` / ``authorization`` headers.
    """

    headers: Mapping[str, str] = field(default_factory=dict)
    time: str = ""
    address: str = ""
    xdomain: bool = False
    secure: bool = False
    issued: int = 0
    """When the connection was made, in milliseconds since the Unix epoch."""
    url: str = ""
    query: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RemoteSocket:
    """One socket a server reported (what JavaScript's ``fetchSockets()`` gives).

    Attributes:
        id: The socket id.
        rooms: The rooms the socket is in, its own id included.
        data: The socket's ``socket.data``, decoded (binary as ``bytes``,
            64-bit integers exact).
        handshake: The connection details, without secrets.

    """

    id: str
    rooms: frozenset[str]
    data: Any
    handshake: Handshake


@dataclass(frozen=True)
class FetchSocketsResult:
    """What came back for :meth:`~emitgate.Operator.fetch_sockets`.

    Attributes:
        sockets: The sockets, in the order the servers' answers arrived.
        servers: How many servers answered.
        servers_expected: How many servers were expected to answer.
        complete: Every expected server answered before the timeout.
        truncated: The servers returned more sockets than the gateway's
            maximum; ``sockets`` holds the first ones only (narrow the rooms).

    """

    sockets: tuple[RemoteSocket, ...]
    servers: int
    servers_expected: int
    complete: bool
    truncated: bool


@dataclass(frozen=True)
class AllRoomsResult:
    """What came back for :meth:`~emitgate.Operator.all_rooms`.

    Attributes:
        rooms: Every answering server's rooms, sorted, without duplicates
            (every socket's own id is a room too).
        servers: How many servers answered.
        servers_expected: How many servers were expected to answer.
        complete: Every expected server answered before the timeout.
        truncated: There were more rooms than the gateway's maximum.

    """

    rooms: tuple[str, ...]
    servers: int
    servers_expected: int
    complete: bool
    truncated: bool


@dataclass(frozen=True)
class ServerReply:
    """One server's answer to :meth:`~emitgate.Operator.server_side_emit_with_ack`.

    Attributes:
        reply: The first argument the server's handler passed to the callback, decoded.
        server: The answering server's adapter uid where the dialect tells it, else ``""``.

    """

    reply: Any
    server: str = ""


@dataclass(frozen=True)
class ServerAckResult:
    """What came back for :meth:`~emitgate.Operator.server_side_emit_with_ack`.

    Attributes:
        replies: Each answering server's reply, in arrival order.
        servers_expected: How many servers were expected to answer.
        complete: Every expected server replied before the timeout.

    """

    replies: tuple[ServerReply, ...]
    servers_expected: int
    complete: bool


# -- decoding ------------------------------------------------------------------


def _number(n: float) -> int | float:
    """Return an integral JSON number as ``int`` (``7`` stays ``7``), like the encoder."""
    if n.is_integer() and -MAX_SAFE_INTEGER <= n <= MAX_SAFE_INTEGER:
        return int(n)
    return n


def decode_value(value: struct_pb2.Value) -> Any:
    """Return a ``google.protobuf.Value`` as plain Python (dict, list, str, int, float...)."""
    kind = value.WhichOneof("kind")
    if kind == "number_value":
        return _number(value.number_value)
    if kind == "string_value":
        return value.string_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "struct_value":
        return {k: decode_value(v) for k, v in value.struct_value.fields.items()}
    if kind == "list_value":
        return [decode_value(v) for v in value.list_value.values]
    return None


def _decode_msgpack(data: bytes) -> Any:
    # timestamp=3: the MessagePack timestamp becomes an aware UTC datetime.
    return msgpack.unpackb(data, raw=False, strict_map_key=False, timestamp=3)


def decode_argument(argument: pb.Argument) -> Any:
    """Return an ack or server reply as a native value.

    ``value``: plain Python; ``binary``: ``bytes``; ``msgpack``: decoded
    exactly (``bytes`` inside, 64-bit ``int``, ``datetime`` for timestamps);
    ``json``: parsed with the same number rules.
    """
    kind = argument.WhichOneof("kind")
    if kind == "value":
        return decode_value(argument.value)
    if kind == "binary":
        return bytes(argument.binary)
    if kind == "msgpack":
        return _decode_msgpack(argument.msgpack)
    if kind == "json":
        return json.loads(argument.json)
    return None


def _handshake(h: pb.Handshake) -> Handshake:
    return Handshake(
        headers=dict(h.headers),
        time=h.time,
        address=h.address,
        xdomain=h.xdomain,
        secure=h.secure,
        issued=h.issued,
        url=h.url,
        query=dict(h.query),
    )


def _remote_socket(s: pb.RemoteSocket) -> RemoteSocket:
    if s.data_msgpack:
        data = _decode_msgpack(s.data_msgpack)
    else:
        data = decode_value(s.data) if s.HasField("data") else None
    return RemoteSocket(
        id=s.id, rooms=frozenset(s.rooms), data=data, handshake=_handshake(s.handshake)
    )


def ack_result(r: pb.EmitWithAckResponse) -> AckResult:
    """Return the :class:`AckResult` of an EmitWithAck response."""
    return AckResult(
        sockets=r.sockets,
        acks=tuple(decode_argument(a) for a in r.acks),
        servers=r.servers,
        servers_expected=r.servers_expected,
        complete=r.complete,
    )


def fetch_sockets_result(r: pb.FetchSocketsResponse) -> FetchSocketsResult:
    """Return the :class:`FetchSocketsResult` of a FetchSockets response."""
    return FetchSocketsResult(
        sockets=tuple(_remote_socket(s) for s in r.sockets),
        servers=r.servers,
        servers_expected=r.servers_expected,
        complete=r.complete,
        truncated=r.truncated,
    )


def all_rooms_result(r: pb.AllRoomsResponse) -> AllRoomsResult:
    """Return the :class:`AllRoomsResult` of an AllRooms response."""
    return AllRoomsResult(
        rooms=tuple(r.rooms),
        servers=r.servers,
        servers_expected=r.servers_expected,
        complete=r.complete,
        truncated=r.truncated,
    )


def server_ack_result(r: pb.ServerSideEmitWithAckResponse) -> ServerAckResult:
    """Return the :class:`ServerAckResult` of a ServerSideEmitWithAck response."""
    return ServerAckResult(
        replies=tuple(ServerReply(decode_argument(x.reply), x.server) for x in r.replies),
        servers_expected=r.servers_expected,
        complete=r.complete,
    )


# -- requests ------------------------------------------------------------------


def wait_ms(seconds: float) -> int:
    """Return an answer timeout in seconds as whole milliseconds (at least 1)."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        raise TypeError(f"timeout must be a number of seconds, not {type(seconds).__name__}")
    if not (seconds > 0 and math.isfinite(seconds)):
        raise ValueError(f"timeout must be a positive number of seconds, not {seconds!r}")
    return min(_MAX_WAIT_MS, max(1, round(seconds * 1000)))


def emit_with_ack_request(
    sel: Selection, event: str, args: Sequence[object]
) -> pb.EmitWithAckRequest:
    """Build an EmitWithAckRequest: to the selected rooms, or the whole namespace."""
    if sel.rooms:
        return pb.EmitWithAckRequest(
            emit=emit_request(sel, event, args), timeout_ms=sel.ack_timeout_ms
        )
    return pb.EmitWithAckRequest(
        broadcast=broadcast_request(sel, event, args), timeout_ms=sel.ack_timeout_ms
    )


def fetch_sockets_request(sel: Selection) -> pb.FetchSocketsRequest:
    """Build a FetchSocketsRequest (no room: every socket of the namespace)."""
    return pb.FetchSocketsRequest(
        target=sel.target,
        namespace=sel.namespace,
        rooms=sel.rooms,
        except_rooms=sel.except_rooms,
        timeout_ms=sel.ack_timeout_ms,
    )


def all_rooms_request(sel: Selection) -> pb.AllRoomsRequest:
    """Build an AllRoomsRequest for the selection's namespace."""
    return pb.AllRoomsRequest(
        target=sel.target, namespace=sel.namespace, timeout_ms=sel.ack_timeout_ms
    )


def server_count_request(sel: Selection) -> pb.ServerCountRequest:
    """Build a ServerCountRequest for the selection's namespace."""
    return pb.ServerCountRequest(target=sel.target, namespace=sel.namespace)


def server_side_emit_with_ack_request(
    sel: Selection, event: str, args: Sequence[object]
) -> pb.ServerSideEmitWithAckRequest:
    """Build a ServerSideEmitWithAckRequest; like server_side_emit it takes no room."""
    plain = server_side_emit_request(sel, event, ())  # the same checks
    return pb.ServerSideEmitWithAckRequest(
        target=plain.target,
        namespace=plain.namespace,
        event=plain.event,
        args=encode_args(args),
        timeout_ms=sel.ack_timeout_ms,
    )


def call_deadline(client_timeout: float | None, sel: Selection) -> float | None:
    """Return the gRPC deadline of a waiting call: long enough for its answer timeout."""
    if client_timeout is None:
        return None
    wait = (sel.ack_timeout_ms or _DEFAULT_WAIT_MS) / 1000
    return max(client_timeout, wait + _DEADLINE_MARGIN)


# -- mixins ----------------------------------------------------------------------

_Req = TypeVar("_Req")
_Resp = TypeVar("_Resp")
_Op = TypeVar("_Op", bound="_Selected")


class _Owner(Protocol):
    _metadata: tuple[tuple[str, str], ...]
    _timeout: float | None


class _Selected(Protocol):
    _owner: Any
    _sel: Selection

    def _derive(self: _Op, selection: Selection) -> _Op: ...


def _call(
    owner: _Owner,
    sel: Selection,
    method: grpc.UnaryUnaryMultiCallable[_Req, _Resp],
    request: _Req,
) -> _Resp:
    deadline = call_deadline(owner._timeout, sel)
    start = time.monotonic()
    try:
        return method(request, timeout=deadline, metadata=owner._metadata)
    except grpc.RpcError as error:
        expired = deadline is not None and time.monotonic() - start >= deadline
        raise error_from_rpc_error(error, deadline_expired=expired) from error


async def _acall(
    owner: _Owner,
    sel: Selection,
    method: grpc.aio.UnaryUnaryMultiCallable[_Req, _Resp],
    request: _Req,
) -> _Resp:
    deadline = call_deadline(owner._timeout, sel)
    start = time.monotonic()
    try:
        return await method(request, timeout=deadline, metadata=owner._metadata)
    except grpc.aio.AioRpcError as error:
        expired = deadline is not None and time.monotonic() - start >= deadline
        raise error_from_rpc_error(error, deadline_expired=expired) from error


class FeedbackOperator:
    """The waiting calls of :class:`~emitgate.Operator` (and ``timeout``)."""

    __slots__ = ()

    def timeout(self: _Op, seconds: float) -> _Op:
        """Wait at most ``seconds`` for the answers of the waiting calls (JS ``timeout()``).

        Without it the gateway waits its default (5 s). Returns a new operator.
        """
        return self._derive(self._sel._replace(ack_timeout_ms=wait_ms(seconds)))

    def emit_with_ack(self: _Selected, event: str, *args: object) -> AckResult:
        """Send ``event`` with an ack callback and gather the clients' replies.

        Reaches the selected rooms, or every socket of the namespace when no
        room was selected. A timeout is not an error: the result carries what
        arrived, with ``complete=False``.
        """
        request = emit_with_ack_request(self._sel, event, args)
        stub = self._owner._stub
        return ack_result(_call(self._owner, self._sel, stub.EmitWithAck, request))

    def fetch_sockets(self: _Selected) -> FetchSocketsResult:
        """Return the selected sockets (every socket of the namespace without a room)."""
        request = fetch_sockets_request(self._sel)
        stub = self._owner._stub
        return fetch_sockets_result(_call(self._owner, self._sel, stub.FetchSockets, request))

    def all_rooms(self: _Selected) -> AllRoomsResult:
        """Return the rooms of the namespace over every server."""
        request = all_rooms_request(self._sel)
        stub = self._owner._stub
        return all_rooms_result(_call(self._owner, self._sel, stub.AllRooms, request))

    def server_count(self: _Selected) -> int:
        """Return how many Socket.IO servers listen on the namespace (read from Redis)."""
        request = server_count_request(self._sel)
        stub = self._owner._stub
        servers: int = _call(self._owner, self._sel, stub.ServerCount, request).servers
        return servers

    def server_side_emit_with_ack(self: _Selected, event: str, *args: object) -> ServerAckResult:
        """Send ``event`` to the servers' handlers with a callback; gather their replies.

        A server whose handler never calls back is missing from the replies
        and makes the result ``complete=False`` at the timeout.
        """
        request = server_side_emit_with_ack_request(self._sel, event, args)
        stub = self._owner._stub
        return server_ack_result(_call(self._owner, self._sel, stub.ServerSideEmitWithAck, request))


class AsyncFeedbackOperator:
    """The waiting calls of :class:`~emitgate.AsyncOperator`, as coroutines."""

    __slots__ = ()

    def timeout(self: _Op, seconds: float) -> _Op:
        """Wait at most ``seconds`` for the answers of the waiting calls (JS ``timeout()``)."""
        return self._derive(self._sel._replace(ack_timeout_ms=wait_ms(seconds)))

    async def emit_with_ack(self: _Selected, event: str, *args: object) -> AckResult:
        """Send ``event`` with an ack callback and gather the clients' replies."""
        request = emit_with_ack_request(self._sel, event, args)
        stub = self._owner._stub()
        return ack_result(await _acall(self._owner, self._sel, stub.EmitWithAck, request))

    async def fetch_sockets(self: _Selected) -> FetchSocketsResult:
        """Return the selected sockets (every socket of the namespace without a room)."""
        request = fetch_sockets_request(self._sel)
        stub = self._owner._stub()
        response = await _acall(self._owner, self._sel, stub.FetchSockets, request)
        return fetch_sockets_result(response)

    async def all_rooms(self: _Selected) -> AllRoomsResult:
        """Return the rooms of the namespace over every server."""
        request = all_rooms_request(self._sel)
        stub = self._owner._stub()
        return all_rooms_result(await _acall(self._owner, self._sel, stub.AllRooms, request))

    async def server_count(self: _Selected) -> int:
        """Return how many Socket.IO servers listen on the namespace (read from Redis)."""
        request = server_count_request(self._sel)
        stub = self._owner._stub()
        response = await _acall(self._owner, self._sel, stub.ServerCount, request)
        servers: int = response.servers
        return servers

    async def server_side_emit_with_ack(
        self: _Selected, event: str, *args: object
    ) -> ServerAckResult:
        """Send ``event`` to the servers' handlers with a callback; gather their replies."""
        request = server_side_emit_with_ack_request(self._sel, event, args)
        stub = self._owner._stub()
        response = await _acall(self._owner, self._sel, stub.ServerSideEmitWithAck, request)
        return server_ack_result(response)


class _SyncEntry(Protocol):
    def of(self, namespace: str = "/", *, target: str | None = None) -> Operator: ...


class _AsyncEntry(Protocol):
    def of(self, namespace: str = "/", *, target: str | None = None) -> AsyncOperator: ...


class FeedbackClient:
    """The waiting calls of :class:`~emitgate.Client` on ``/``: shortcuts for ``of("/")``."""

    __slots__ = ()

    def timeout(self: _SyncEntry, seconds: float) -> Operator:
        """Shortcut for ``of("/").timeout(seconds)``."""
        return self.of().timeout(seconds)

    def emit_with_ack(self: _SyncEntry, event: str, *args: object) -> AckResult:
        """Send ``event`` with an ack callback to every socket of ``/``."""
        return self.of().emit_with_ack(event, *args)

    def fetch_sockets(self: _SyncEntry) -> FetchSocketsResult:
        """Return every socket of ``/``."""
        return self.of().fetch_sockets()

    def all_rooms(self: _SyncEntry) -> AllRoomsResult:
        """Return the rooms of ``/``."""
        return self.of().all_rooms()

    def server_count(self: _SyncEntry) -> int:
        """Return how many Socket.IO servers listen on ``/``."""
        return self.of().server_count()

    def server_side_emit_with_ack(self: _SyncEntry, event: str, *args: object) -> ServerAckResult:
        """Send ``event`` to the servers' handlers on ``/`` with a callback."""
        return self.of().server_side_emit_with_ack(event, *args)


class AsyncFeedbackClient:
    """The waiting calls of :class:`~emitgate.AsyncClient` on ``/``."""

    __slots__ = ()

    def timeout(self: _AsyncEntry, seconds: float) -> AsyncOperator:
        """Shortcut for ``of("/").timeout(seconds)``."""
        return self.of().timeout(seconds)

    async def emit_with_ack(self: _AsyncEntry, event: str, *args: object) -> AckResult:
        """Send ``event`` with an ack callback to every socket of ``/``."""
        return await self.of().emit_with_ack(event, *args)

    async def fetch_sockets(self: _AsyncEntry) -> FetchSocketsResult:
        """Return every socket of ``/``."""
        return await self.of().fetch_sockets()

    async def all_rooms(self: _AsyncEntry) -> AllRoomsResult:
        """Return the rooms of ``/``."""
        return await self.of().all_rooms()

    async def server_count(self: _AsyncEntry) -> int:
        """Return how many Socket.IO servers listen on ``/``."""
        return await self.of().server_count()

    async def server_side_emit_with_ack(
        self: _AsyncEntry, event: str, *args: object
    ) -> ServerAckResult:
        """Send ``event`` to the servers' handlers on ``/`` with a callback."""
        return await self.of().server_side_emit_with_ack(event, *args)
