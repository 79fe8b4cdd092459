"""The synchronous client (``grpc`` channels)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from types import TracebackType
from typing import Any, TypeVar

import grpc

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
from emitgate._feedback import FeedbackClient, FeedbackOperator
from emitgate._gen.emitgate.v1 import emitter_pb2_grpc
from emitgate._publish import (
    DEFAULT_BUFFER,
    DEFAULT_LINGER,
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_IN_FLIGHT,
    DEFAULT_MAX_ITEMS,
    OnFull,
    PublisherOptions,
)
from emitgate._publisher import Publisher
from emitgate._results import BatchResult, Result

__all__ = ["Batch", "Client", "Operator"]

_Req = TypeVar("_Req")
_Resp = TypeVar("_Resp")


class Operator(FeedbackOperator, Fluent["Client"]):
    """An immutable selection of sockets of one namespace, like the JS BroadcastOperator.

    Chain :meth:`to`, :meth:`in_`, :meth:`except_`, :attr:`volatile` and
    :meth:`compress`; each returns a new operator. Finish with one of the calls.
    Every call takes an optional keyword-only ``idempotency_key``: the gateway
    publishes at most once per key within its window, and a repeat returns the
    first result with ``duplicate=True``; set one when retrying after a timeout.
    """

    __slots__ = ()

    def emit(self, event: str, *args: object, idempotency_key: str | None = None) -> Result:
        """Send ``event`` with ``args`` to the sockets in the selected rooms.

        Raises :class:`~emitgate.InvalidArgument` before any network call when
        no room was selected (use :meth:`broadcast` to reach every socket).
        """
        request = emit_request(self._sel, event, args, idempotency_key)
        return self._owner._result(self._owner._stub.Emit, request)

    def broadcast(self, event: str, *args: object, idempotency_key: str | None = None) -> Result:
        """Send ``event`` with ``args`` to every socket of the namespace (minus ``except_``)."""
        request = broadcast_request(self._sel, event, args, idempotency_key)
        return self._owner._result(self._owner._stub.Broadcast, request)

    def sockets_join(self, rooms: Rooms, *, idempotency_key: str | None = None) -> Result:
        """Make the selected sockets (all of the namespace if no room) join ``rooms``."""
        request = sockets_join_request(self._sel, rooms, idempotency_key)
        return self._owner._result(self._owner._stub.SocketsJoin, request)

    def sockets_leave(self, rooms: Rooms, *, idempotency_key: str | None = None) -> Result:
        """Make the selected sockets (all of the namespace if no room) leave ``rooms``."""
        request = sockets_leave_request(self._sel, rooms, idempotency_key)
        return self._owner._result(self._owner._stub.SocketsLeave, request)

    def disconnect_sockets(
        self, close: bool = False, *, idempotency_key: str | None = None
    ) -> Result:
        """Disconnect the selected sockets; ``close=True`` also closes their connection."""
        request = disconnect_sockets_request(self._sel, close, idempotency_key)
        return self._owner._result(self._owner._stub.DisconnectSockets, request)

    def server_side_emit(
        self, event: str, *args: object, idempotency_key: str | None = None
    ) -> Result:
        """Send ``event`` to the Socket.IO servers' ``io.of(namespace).on(event)`` handlers.

        Takes no room. With the ``socketio`` dialect the servers receive JSON,
        so the gateway refuses binary arguments (:class:`~emitgate.InvalidArgument`).
        """
        request = server_side_emit_request(self._sel, event, args, idempotency_key)
        return self._owner._result(self._owner._stub.ServerSideEmit, request)


class Batch(BatchBase):
    """Emits and broadcasts queued to be sent as BatchEmit calls.

    Use it as a context manager (``with client.batch() as b:``): the batch is
    sent when the block exits without an exception, and discarded otherwise.
    Non-atomic batches are split in chunks at the gateway's item limit.
    """

    __slots__ = ("_client",)

    def __init__(self, client: Client, *, atomic: bool = False) -> None:
        """Start an empty batch on ``client``; prefer :meth:`Client.batch`."""
        super().__init__(client._target, atomic)
        self._client = client

    def send(self) -> BatchResult:
        """Send the queued items and return their results (also kept in :attr:`result`).

        Item failures of a non-atomic batch are reported in the result, not
        raised. A failure of a whole call (an atomic batch with an invalid item,
        an unreachable gateway) raises; items of earlier chunks stay published.
        """
        plan = BatchPlan(self._seal(), atomic=self._atomic, limit=self._client._max_batch_items)
        try:
            while (request := plan.next_request()) is not None:
                try:
                    response = self._client._call(self._client._stub.BatchEmit, request)
                except EmitgateError as error:
                    if plan.on_error(error):
                        self._client._max_batch_items = plan.limit
                        continue
                    raise
                plan.on_response(response)
        finally:
            self._result = plan.result()
        return self._result

    def __enter__(self) -> Batch:
        """Return the batch."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Send the batch, unless the block raised."""
        if exc_type is None:
            self.send()


class Client(FeedbackClient, EntryPoint[Operator]):
    """A synchronous emitgate client over one gRPC channel.

    Example::

        with emitgate.Client("localhost:50051", insecure=True) as client:
            client.to("room1").emit("hello", {"name": "world"})

    Args:
        address: ``host:port`` of the gateway.
        api_key: Sent with every call as ``authorization: Bearer <api_key>``.
        insecure: Use a plaintext channel. Without it the channel uses TLS.
        root_certificates: PEM root CA(s) to verify the gateway with; the system
            roots when omitted.
        private_key: PEM private key of a client certificate (mutual TLS).
        certificate_chain: PEM client certificate chain (mutual TLS).
        target: The configured Socket.IO cluster to publish to when an operator
            names none; ``""`` selects the gateway's default target.
        timeout: Deadline of each call, in seconds (``None``: no deadline).
        max_batch_items: The largest BatchEmit chunk (the gateway's default
            limit); lowered automatically if the gateway refuses a chunk as too big.
        options: Extra gRPC channel options.

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
        """Create the client and its channel (connections are made lazily)."""
        if not isinstance(target, str):
            raise TypeError(f"target must be a str, not {type(target).__name__}")
        self._metadata = call_metadata(api_key)
        self._timeout = check_timeout(timeout)
        self._max_batch_items = check_max_batch_items(max_batch_items)
        self._target = target
        credentials = channel_credentials(
            insecure=insecure,
            root_certificates=root_certificates,
            private_key=private_key,
            certificate_chain=certificate_chain,
        )
        opts = channel_options(options)
        if credentials is None:
            self._channel = grpc.insecure_channel(address, options=opts)
        else:
            self._channel = grpc.secure_channel(address, credentials, options=opts)
        self._stub = emitter_pb2_grpc.EmitterServiceStub(self._channel)

    def of(self, namespace: str = "/", *, target: str | None = None) -> Operator:
        """Return an operator on ``namespace`` (``"admin"`` becomes ``"/admin"``).

        ``target`` overrides the client's default target for this chain.
        """
        chosen = self._target if target is None else target
        if not isinstance(chosen, str):
            raise TypeError(f"target must be a str, not {type(chosen).__name__}")
        return Operator(self, Selection(chosen, normalize_namespace(namespace)))

    def emit(self, event: str, *args: object, idempotency_key: str | None = None) -> Result:
        """Raise :class:`~emitgate.InvalidArgument`: an emit needs a room (see :meth:`to`).

        Use ``client.to(room).emit(...)``, or :meth:`broadcast` for every socket.
        """
        return self.of().emit(event, *args, idempotency_key=idempotency_key)

    def broadcast(self, event: str, *args: object, idempotency_key: str | None = None) -> Result:
        """Send ``event`` to every socket of ``/``."""
        return self.of().broadcast(event, *args, idempotency_key=idempotency_key)

    def sockets_join(self, rooms: Rooms, *, idempotency_key: str | None = None) -> Result:
        """Make every socket of ``/`` join ``rooms``."""
        return self.of().sockets_join(rooms, idempotency_key=idempotency_key)

    def sockets_leave(self, rooms: Rooms, *, idempotency_key: str | None = None) -> Result:
        """Make every socket of ``/`` leave ``rooms``."""
        return self.of().sockets_leave(rooms, idempotency_key=idempotency_key)

    def disconnect_sockets(
        self, close: bool = False, *, idempotency_key: str | None = None
    ) -> Result:
        """Disconnect every socket of ``/``."""
        return self.of().disconnect_sockets(close, idempotency_key=idempotency_key)

    def server_side_emit(
        self, event: str, *args: object, idempotency_key: str | None = None
    ) -> Result:
        """Send ``event`` to the Socket.IO servers' handlers on ``/``."""
        return self.of().server_side_emit(event, *args, idempotency_key=idempotency_key)

    def batch(self, *, atomic: bool = False) -> Batch:
        """Start a batch; use it as ``with client.batch() as b: b.to(...).emit(...)``.

        With ``atomic=True`` the batch goes in one call and one invalid item
        rejects all of it (:class:`~emitgate.InvalidArgument`); an atomic batch
        is never split, so it must fit in the gateway's item limit.
        """
        return Batch(self, atomic=atomic)

    def publisher(
        self,
        *,
        max_items: int = DEFAULT_MAX_ITEMS,
        max_bytes: int = DEFAULT_MAX_BYTES,
        linger: float = DEFAULT_LINGER,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        buffer: int = DEFAULT_BUFFER,
        on_full: OnFull = "block",
    ) -> Publisher:
        """Return a :class:`~emitgate.Publisher`: events one at a time, sent in batches.

        ``pub.to(room).emit(...)`` and ``pub.broadcast(...)`` return a
        ``concurrent.futures.Future`` of the event's :class:`Result` at once;
        background threads send the events as non-atomic BatchEmit calls.

        Args:
            max_items: Items per BatchEmit at most (lowered to the gateway's
                limit if it refuses a batch as too many items).
            max_bytes: Encoded bytes of items per BatchEmit at most.
            linger: Seconds a non-full batch waits for more events after its first.
            max_in_flight: Concurrent BatchEmit calls. Events are sent in publish
                order within a batch; across batches only with ``max_in_flight=1``.
            buffer: Events published and not yet answered at most. Beyond it a
                publish blocks (``on_full="block"``) or raises
                :class:`~emitgate.ResourceExhausted` (``on_full="error"``).
            on_full: ``"block"`` or ``"error"``, see ``buffer``.

        A whole BatchEmit failing with UNAVAILABLE (or RESOURCE_EXHAUSTED with
        a retry delay) is retried with backoff only when every event of the
        batch has an ``idempotency_key``; otherwise every handle gets the error.

        """
        options = PublisherOptions(
            max_items=max_items,
            max_bytes=max_bytes,
            linger=linger,
            max_in_flight=max_in_flight,
            buffer=buffer,
            on_full=on_full,
        )
        return Publisher(self, options)

    def close(self) -> None:
        """Close the channel; calls in flight are cancelled."""
        self._channel.close()

    def __enter__(self) -> Client:
        """Return the client."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Close the client."""
        self.close()

    def _call(self, method: grpc.UnaryUnaryMultiCallable[_Req, _Resp], request: _Req) -> _Resp:
        start = time.monotonic()
        try:
            return method(request, timeout=self._timeout, metadata=self._metadata)
        except grpc.RpcError as error:
            expired = self._timeout is not None and time.monotonic() - start >= self._timeout
            raise error_from_rpc_error(error, deadline_expired=expired) from error

    def _result(self, method: grpc.UnaryUnaryMultiCallable[_Req, Any], request: _Req) -> Result:
        return result_of(self._call(method, request))
