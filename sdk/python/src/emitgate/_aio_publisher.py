"""The asyncio Publisher: events published one at a time, sent in batches by tasks."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Sequence
from types import TracebackType
from typing import TYPE_CHECKING

import grpc
import grpc.aio

from emitgate._core import EntryPoint, Fluent, Selection, normalize_namespace
from emitgate._errors import EmitgateError, error_from_rpc_error
from emitgate._publish import (
    RETRY_INITIAL,
    PublisherOptions,
    broadcast_entry,
    buffer_full,
    emit_entry,
    item_outcomes,
    next_backoff,
    request_bytes,
    retry_delay,
    smaller_limit,
)
from emitgate._results import Result

if TYPE_CHECKING:
    from emitgate._aio import AsyncClient

__all__ = ["AsyncPublisher", "AsyncPublisherOperator"]


class _Batch:
    """Items sealed (or being filled) for one BatchEmit call."""

    __slots__ = ("all_keyed", "done", "entries", "handles", "size", "timer")

    def __init__(self, done: asyncio.Future[None]) -> None:
        self.entries: list[bytes] = []
        self.handles: list[asyncio.Future[Result]] = []
        self.size = 0
        self.all_keyed = True
        self.done = done
        self.timer: asyncio.TimerHandle | None = None


class AsyncPublisherOperator(Fluent["AsyncPublisher"]):
    """The asyncio twin of :class:`~emitgate.PublisherOperator`.

    ``await op.emit(...)`` waits only while the publisher's buffer is full
    (``on_full="block"``) and returns the event's handle, an ``asyncio.Future``
    to await for its :class:`~emitgate.Result`.
    """

    __slots__ = ()

    async def emit(
        self, event: str, *args: object, idempotency_key: str | None = None
    ) -> asyncio.Future[Result]:
        """Queue ``event`` for the selected rooms; return its result handle.

        An event the gateway would refuse (no room, an argument that cannot be
        encoded) gets a failed handle at once and is not sent.
        """
        try:
            entry = emit_entry(self._sel, event, args, idempotency_key)
        except (EmitgateError, TypeError, ValueError) as error:
            return self._owner._failed(error)
        return await self._owner._queue(entry, idempotency_key is not None)

    async def broadcast(
        self, event: str, *args: object, idempotency_key: str | None = None
    ) -> asyncio.Future[Result]:
        """Queue ``event`` for every socket of the namespace (minus ``except_``)."""
        try:
            entry = broadcast_entry(self._sel, event, args, idempotency_key)
        except (EmitgateError, TypeError, ValueError) as error:
            return self._owner._failed(error)
        return await self._owner._queue(entry, idempotency_key is not None)


class AsyncPublisher(EntryPoint[AsyncPublisherOperator]):
    """The asyncio twin of :class:`~emitgate.Publisher`, on the running event loop.

    Create it with :meth:`emitgate.AsyncClient.publisher`::

        async with client.publisher() as pub:
            handle = await pub.to("user:42").emit("notification", {"unread": 3})
        await handle  # Result(...) or raises the event's error
    """

    def __init__(self, client: AsyncClient, options: PublisherOptions) -> None:
        """Bind the publisher to ``client`` and the running loop; prefer ``client.publisher``."""
        self._client = client
        self._options = options
        self._max_items = min(options.max_items, client._max_batch_items)
        # pub.to(...) starts here for every event: made once.
        self._root = AsyncPublisherOperator(self, Selection(client._target, "/"))
        self._loop = asyncio.get_running_loop()
        self._open: _Batch | None = None
        self._ready: deque[_Batch] = deque()
        self._pending: set[_Batch] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._in_flight = 0
        self._outstanding = 0
        self._space = asyncio.Event()
        self._space.set()
        self._closed = False

    # -- publishing ---------------------------------------------------------

    def of(self, namespace: str = "/", *, target: str | None = None) -> AsyncPublisherOperator:
        """Return an operator on ``namespace`` that publishes through this publisher."""
        if target is None and namespace == "/":
            return self._root
        chosen = self._client._target if target is None else target
        if not isinstance(chosen, str):
            raise TypeError(f"target must be a str, not {type(chosen).__name__}")
        return AsyncPublisherOperator(self, Selection(chosen, normalize_namespace(namespace)))

    async def emit(
        self, event: str, *args: object, idempotency_key: str | None = None
    ) -> asyncio.Future[Result]:
        """Return a failed handle: an emit needs a room (see :meth:`to`)."""
        return await self.of().emit(event, *args, idempotency_key=idempotency_key)

    async def broadcast(
        self, event: str, *args: object, idempotency_key: str | None = None
    ) -> asyncio.Future[Result]:
        """Queue a broadcast to every socket of ``/``."""
        return await self.of().broadcast(event, *args, idempotency_key=idempotency_key)

    def _failed(self, error: BaseException) -> asyncio.Future[Result]:
        handle: asyncio.Future[Result] = self._loop.create_future()
        handle.set_exception(error)
        return handle

    async def _queue(self, entry: bytes, keyed: bool) -> asyncio.Future[Result]:
        options = self._options
        if self._closed:
            raise RuntimeError("the publisher is closed")
        while self._outstanding >= options.buffer:
            if options.on_full == "error":
                raise buffer_full(options.buffer)
            self._space.clear()
            await self._space.wait()
            if self._closed:
                raise RuntimeError("the publisher is closed")
        self._outstanding += 1
        handle: asyncio.Future[Result] = self._loop.create_future()
        size = len(entry)
        batch = self._open
        if batch is not None and batch.size + size > options.max_bytes:
            self._seal(batch)
            batch = None
        if batch is None:
            batch = self._open = _Batch(self._loop.create_future())
            self._pending.add(batch)
            batch.timer = self._loop.call_later(options.linger, self._linger_over, batch)
        batch.entries.append(entry)
        batch.handles.append(handle)
        batch.size += size
        if not keyed:
            batch.all_keyed = False
        if len(batch.entries) >= self._max_items:
            self._seal(batch)
        return handle

    def _linger_over(self, batch: _Batch) -> None:
        if batch is self._open:
            self._seal(batch)

    def _seal(self, batch: _Batch) -> None:
        if batch.timer is not None:
            batch.timer.cancel()
            batch.timer = None
        if batch is self._open:
            self._open = None
        self._ready.append(batch)
        self._start_sends()

    def _start_sends(self) -> None:
        while self._ready and self._in_flight < self._options.max_in_flight:
            batch = self._ready.popleft()
            self._in_flight += 1
            task = self._loop.create_task(self._run(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run(self, batch: _Batch) -> None:
        try:
            await self._send(batch.entries, batch.handles, batch.all_keyed)
        finally:
            self._in_flight -= 1
            self._outstanding -= len(batch.handles)
            self._pending.discard(batch)
            if not batch.done.done():
                batch.done.set_result(None)
            if self._outstanding < self._options.buffer:
                self._space.set()
            self._start_sends()

    # -- flush and close ------------------------------------------------------

    async def flush(self) -> None:
        """Send everything queued and wait until every event published so far is answered.

        The events' own errors are in their handles, not raised here.
        """
        waiting = [batch.done for batch in self._pending]
        if self._open is not None:
            self._seal(self._open)
        if waiting:
            await asyncio.gather(*waiting)

    async def close(self) -> None:
        """Flush and refuse further events (``RuntimeError``); closing twice is harmless."""
        self._closed = True
        self._space.set()
        await self.flush()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    async def __aenter__(self) -> AsyncPublisher:
        """Return the publisher."""
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Close the publisher: everything published in the block is delivered."""
        await self.close()

    # -- sending ----------------------------------------------------------------

    async def _send(
        self,
        entries: Sequence[bytes],
        handles: Sequence[asyncio.Future[Result]],
        all_keyed: bool,
    ) -> None:
        """Send one batch and resolve its handles; retries and splits as the rules say."""
        client = self._client
        body = request_bytes(entries)
        attempt = 0
        backoff = RETRY_INITIAL
        while True:
            attempt += 1
            start = time.monotonic()
            try:
                call = client._raw_batch_emit()
                response = await call(body, timeout=client._timeout, metadata=client._metadata)
                break
            except grpc.aio.AioRpcError as rpc_error:
                expired = (
                    client._timeout is not None and time.monotonic() - start >= client._timeout
                )
                error = error_from_rpc_error(rpc_error, deadline_expired=expired)
            except asyncio.CancelledError:
                raise
            except Exception as other:  # a closed client, for instance
                _resolve_all(handles, other)
                return
            smaller = smaller_limit(error, len(entries))
            if smaller is not None:
                self._max_items = min(self._max_items, smaller)
                for i in range(0, len(entries), smaller):
                    part = slice(i, i + smaller)
                    await self._send(entries[part], handles[part], all_keyed)
                return
            delay = retry_delay(error, attempt, backoff, all_keyed)
            if delay is None:
                _resolve_all(handles, error)
                return
            await asyncio.sleep(delay)
            backoff = next_backoff(backoff)
        for handle, outcome in zip(handles, item_outcomes(response, len(handles))):
            if handle.done():  # cancelled by its owner
                continue
            if isinstance(outcome, Result):
                handle.set_result(outcome)
            else:
                handle.set_exception(outcome)


def _resolve_all(handles: Sequence[asyncio.Future[Result]], error: BaseException) -> None:
    for handle in handles:
        if not handle.done():
            handle.set_exception(error)
