"""The asyncio client (``grpc.aio`` channels)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from types import TracebackType
from typing import Any, TypeVar

import grpc
import grpc.aio

from emitgate._aio_publisher import AsyncPublisher
from emitgate._batch import BatchBase
from emitgate._core import (
    DEFAULT_MAX_BATCH_ITEMS,
    DEFAULT_TIMEOUT,
    BatchPlan,
    EntryPoint,
    Fluent,
    Rooms,
    Selection,
    broadcast_request,
    call_metadata,
    channel_credentials,
    channel_options,
    check_max_batch_items,
    check_timeout,
    disconnect_sockets_request,
    emit_request,
    normalize_namespace,
    result_of,
    server_side_emit_request,
    sockets_join_request,
    sockets_leave_request,
)
from emitgate._errors import EmitgateError, error_from_rpc_error
from emitgate._feedback import AsyncFeedbackClient, AsyncFeedbackOperator
from emitgate._gen.emitgate.v1 import emitter_pb2 as pb
from emitgate._gen.emitgate.v1 import emitter_pb2_grpc
from emitgate._publish import (
    BATCH_EMIT,
    DEFAULT_BUFFER,
    DEFAULT_LINGER,
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_IN_FLIGHT,
    DEFAULT_MAX_ITEMS,
    OnFull,
    PublisherOptions,
)
from emitgate._results import BatchResult, Result

__all__ = ["AsyncBatch", "AsyncClient", "AsyncOperator"]

_Req = TypeVar("_Req")
_Resp = TypeVar("_Resp")


class AsyncOperator(AsyncFeedbackOperator, Fluent["AsyncClient"]):
    """The asyncio twin of :class:`~emitgate.Operator`: the same chain, awaitable calls."""

    __slots__ = ()

    async def emit(self, event: str, *args: object, idempotency_key: str | None = None) -> Result:
        """Send ``event`` with ``args`` to the sockets in the selected rooms.

        Raises :class:`~emitgate.InvalidArgument` before any network call when
        no room was selected (use :meth:`broadcast` to reach every socket).
        """
        request = emit_request(self._sel, event, args, idempotency_key)
        return await self._owner._result(self._owner._stub().Emit, request)

    async def broadcast(
        self, event: str, *args: object, idempotency_key: str | None = None
    ) -> Result:
        """Send ``event`` with ``args`` to every socket of the namespace (minus ``except_``)."""
        request = broadcast_request(self._sel, event, args, idempotency_key)
        return await self._owner._result(self._owner._stub().Broadcast, request)

    async def sockets_join(self, rooms: Rooms, *, idempotency_key: str | None = None) -> Result:
        """Make the selected sockets (all of the namespace if no room) join ``rooms``."""
        request = sockets_join_request(self._sel, rooms, idempotency_key)
        return await self._owner._result(self._owner._stub().SocketsJoin, request)

    async def sockets_leave(self, rooms: Rooms, *, idempotency_key: str | None = None) -> Result:
        """Make the selected sockets (all of the namespace if no room) leave ``rooms``."""
        request = sockets_leave_request(self._sel, rooms, idempotency_key)
        return await self._owner._result(self._owner._stub().SocketsLeave, request)

    async def disconnect_sockets(
        self, close: bool = False, *, idempotency_key: str | None = None
    ) -> Result:
        """Disconnect the selected sockets; ``close=True`` also closes their connection."""
        request = disconnect_sockets_request(self._sel, close, idempotency_key)
        return await self._owner._result(self._owner._stub().DisconnectSockets, request)

    async def server_side_emit(
        self, event: str, *args: object, idempotency_key: str | None = None
    ) -> Result:
        """Send ``event`` to the Socket.IO servers' ``io.of(namespace).on(event)`` handlers.

        Takes no room. With the ``socketio`` dialect the servers receive JSON,
        so the gateway refuses binary arguments (:class:`~emitgate.InvalidArgument`).
        """
        request = server_side_emit_request(self._sel, event, args, idempotency_key)
        return await self._owner._result(self._owner._stub().ServerSideEmit, request)


class AsyncBatch(BatchBase):
    """The asyncio twin of :class:`~emitgate.Batch` (``async with client.batch() as b:``).

    Queueing (``b.to(...).emit(...)``) is synchronous; the batch is sent when
    the ``async with`` block exits without an exception.
    """

    __slots__ = ("_client",)

    def __init__(self, client: AsyncClient, *, atomic: bool = False) -> None:
        """Start an empty batch on ``client``; prefer :meth:`AsyncClient.batch`."""
        super().__init__(client._target, atomic)
        self._client = client

    async def send(self) -> BatchResult:
        """Send the queued items and return their results (also kept in :attr:`result`).

        Item failures of a non-atomic batch are reported in the result, not
        raised. A failure of a whole call raises; items of earlier chunks stay
        published.
        """
        plan = BatchPlan(self._seal(), atomic=self._atomic, limit=self._client._max_batch_items)
        try:
            while (request := plan.next_request()) is not None:
                try:
                    response = await self._client._call(self._client._stub().BatchEmit, request)
                except EmitgateError as error:
                    if plan.on_error(error):
                        self._client._max_batch_items = plan.limit
                        continue
                    raise
                plan.on_response(response)
        finally:
            self._result = plan.result()
        return self._result

    async def __aenter__(self) -> AsyncBatch:
        """Return the batch."""
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Send the batch, unless the block raised."""
        if exc_type is None:
            await self.send()


class AsyncClient(AsyncFeedbackClient, EntryPoint[AsyncOperator]):
    """An asyncio emitgate client over one ``grpc.aio`` channel.

    It takes the same arguments as :class:`~emitgate.Client`; the channel is
    opened on the first call, inside the running event loop. Example::

        async with emitgate.AsyncClient("localhost:50051", insecure=True) as client:
            await client.to("room1").emit("hello", {"name": "world"})
    """

    def __init__(
        self,
        address: str,
        *,
        api_key: str | None = None,
        insecure: bool = False,
        root_certificates: bytes | None = None,
        private_key: bytes | None = None,
        certificate_chain: bytes | None = None,
        target: str = "",
        timeout: float | None = DEFAULT_TIMEOUT,
        max_batch_items: int = DEFAULT_MAX_BATCH_ITEMS,
        options: Sequence[tuple[str, Any]] = (),
    ) -> None:
        """Check the arguments; the channel itself is created on first use."""
        if not isinstance(target, str):
            raise TypeError(f"target must be a str, not {type(target).__name__}")
        self._address = address
        self._metadata = call_metadata(api_key)
        self._timeout = check_timeout(timeout)
        self._max_batch_items = check_max_batch_items(max_batch_items)
        self._target = target
        self._credentials = channel_credentials(
            insecure=insecure,
            root_certificates=root_certificates,
            private_key=private_key,
            certificate_chain=certificate_chain,
        )
        self._options = channel_options(options)
        self._channel: grpc.aio.Channel | None = None
        self._stub_instance: emitter_pb2_grpc.EmitterServiceAsyncStub | None = None
        self._raw_batch: grpc.aio.UnaryUnaryMultiCallable[bytes, pb.BatchEmitResponse] | None = None
        self._closed = False

    def of(self, namespace: str = "/", *, target: str | None = None) -> AsyncOperator:
        """Return an operator on ``namespace`` (``"admin"`` becomes ``"/admin"``).

        ``target`` overrides the client's default target for this chain.
        """
        chosen = self._target if target is None else target
        if not isinstance(chosen, str):
            raise TypeError(f"target must be a str, not {type(chosen).__name__}")
        return AsyncOperator(self, Selection(chosen, normalize_namespace(namespace)))

    async def emit(self, event: str, *args: object, idempotency_key: str | None = None) -> Result:
        """Raise :class:`~emitgate.InvalidArgument`: an emit needs a room (see :meth:`to`).

        Use ``client.to(room).emit(...)``, or :meth:`broadcast` for every socket.
        """
        return await self.of().emit(event, *args, idempotency_key=idempotency_key)

    async def broadcast(
        self, event: str, *args: object, idempotency_key: str | None = None
    ) -> Result:
        """Send ``event`` to every socket of ``/``."""
        return await self.of().broadcast(event, *args, idempotency_key=idempotency_key)

    async def sockets_join(self, rooms: Rooms, *, idempotency_key: str | None = None) -> Result:
        """Make every socket of ``/`` join ``rooms``."""
        return await self.of().sockets_join(rooms, idempotency_key=idempotency_key)

    async def sockets_leave(self, rooms: Rooms, *, idempotency_key: str | None = None) -> Result:
        """Make every socket of ``/`` leave ``rooms``."""
        return await self.of().sockets_leave(rooms, idempotency_key=idempotency_key)

    async def disconnect_sockets(
        self, close: bool = False, *, idempotency_key: str | None = None
    ) -> Result:
        """Disconnect every socket of ``/``."""
        return await self.of().disconnect_sockets(close, idempotency_key=idempotency_key)

    async def server_side_emit(
        self, event: str, *args: object, idempotency_key: str | None = None
    ) -> Result:
        """Send ``event`` to the Socket.IO servers' handlers on ``/``."""
        return await self.of().server_side_emit(event, *args, idempotency_key=idempotency_key)

    def batch(self, *, atomic: bool = False) -> AsyncBatch:
        """Start a batch; use it as ``async with client.batch() as b: b.to(...).emit(...)``.

        See :meth:`Client.batch` for ``atomic``.
        """
        return AsyncBatch(self, atomic=atomic)

    def publisher(
        self,
        *,
        max_items: int = DEFAULT_MAX_ITEMS,
        max_bytes: int = DEFAULT_MAX_BYTES,
        linger: float = DEFAULT_LINGER,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        buffer: int = DEFAULT_BUFFER,
        on_full: OnFull = "block",
    ) -> AsyncPublisher:
        """Return an :class:`~emitgate.AsyncPublisher` bound to the running event loop.

        The options and guarantees are those of :meth:`Client.publisher`;
        ``await pub.to(room).emit(...)`` returns an ``asyncio.Future`` of the
        event's :class:`Result` (it waits only while the buffer is full and
        ``on_full="block"``). Call it inside a coroutine.
        """
        options = PublisherOptions(
            max_items=max_items,
            max_bytes=max_bytes,
            linger=linger,
            max_in_flight=max_in_flight,
            buffer=buffer,
            on_full=on_full,
        )
        return AsyncPublisher(self, options)

    async def close(self) -> None:
        """Close the channel; calls in flight are cancelled."""
        self._closed = True
        if self._channel is not None:
            channel, self._channel, self._stub_instance = self._channel, None, None
            self._raw_batch = None
            await channel.close()

    async def __aenter__(self) -> AsyncClient:
        """Return the client."""
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Close the client."""
        await self.close()

    def _stub(self) -> emitter_pb2_grpc.EmitterServiceAsyncStub:
        if self._stub_instance is None:
            if self._closed:
                raise RuntimeError("the client is closed")
            if self._credentials is None:
                channel = grpc.aio.insecure_channel(self._address, options=self._options)
            else:
                channel = grpc.aio.secure_channel(
                    self._address, self._credentials, options=self._options
                )
            self._channel = channel
            self._stub_instance = emitter_pb2_grpc.EmitterServiceStub(channel)
        return self._stub_instance

    def _raw_batch_emit(self) -> grpc.aio.UnaryUnaryMultiCallable[bytes, pb.BatchEmitResponse]:
        """BatchEmit taking an already encoded request (what the publisher builds)."""
        self._stub()
        if self._raw_batch is None:
            assert self._channel is not None
            self._raw_batch = self._channel.unary_unary(
                BATCH_EMIT,
                request_serializer=None,
                response_deserializer=pb.BatchEmitResponse.FromString,
            )
        return self._raw_batch

    async def _call(
        self, method: grpc.aio.UnaryUnaryMultiCallable[_Req, _Resp], request: _Req
    ) -> _Resp:
        start = time.monotonic()
        try:
            return await method(request, timeout=self._timeout, metadata=self._metadata)
        except grpc.aio.AioRpcError as error:
            expired = self._timeout is not None and time.monotonic() - start >= self._timeout
            raise error_from_rpc_error(error, deadline_expired=expired) from error

    async def _result(
        self, method: grpc.aio.UnaryUnaryMultiCallable[_Req, Any], request: _Req
    ) -> Result:
        return result_of(await self._call(method, request))
