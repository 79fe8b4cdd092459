"""The synchronous Publisher: events published one at a time, sent in batches by threads."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future
from concurrent.futures._base import FINISHED, PENDING
from types import TracebackType
from typing import TYPE_CHECKING, Any

import grpc

from emitgate._core import EntryPoint, Fluent, Rooms, Selection, normalize_namespace
from emitgate._errors import EmitgateError, error_from_rpc_error
from emitgate._gen.emitgate.v1 import emitter_pb2 as pb
from emitgate._publish import (
    BATCH_EMIT,
    RETRY_INITIAL,
    PublisherOptions,
    broadcast_entry,
    buffer_full,
    emit_entry,
    emit_flags,
    emit_prefix,
    item_outcomes,
    next_backoff,
    plain_emit_entry,
    request_bytes,
    retry_delay,
    smaller_limit,
)
from emitgate._results import Result

if TYPE_CHECKING:
    from emitgate._client import Client

__all__ = ["Publisher", "PublisherOperator"]


class _Handle(Future[Result]):
    """The result handle of one published event; a publish cannot be withdrawn.

    The handles of one batch share one condition (a ``Future`` makes its own,
    which costs more than the rest of a publish): they are all resolved while
    it is held and it is notified only once every one of them is done, so a
    waiter never wakes up to a handle of its batch still pending. The
    attributes are those ``Future.__init__`` sets (a test checks that they
    still are).
    """

    def __init__(self, condition: threading.Condition) -> None:
        self._condition = condition
        self._state = "PENDING"
        self._result = None
        self._exception = None
        self._waiters: list[Any] = []
        self._done_callbacks: list[Any] = []

    def cancel(self) -> bool:
        """Return False: the event is queued or sent already and is not withdrawn."""
        return False


# Handles are made per event: object.__new__ and one dict update cost less
# than calling _Handle() (the same attributes, see _Handle).
_new_handle = object.__new__


class _Batch:
    """Items sealed (or being filled) for one BatchEmit call."""

    __slots__ = ("all_keyed", "condition", "deadline", "entries", "handles", "size")

    def __init__(self, deadline: float) -> None:
        self.entries: list[bytes] = []
        self.handles: list[_Handle] = []
        self.size = 0
        self.all_keyed = True
        self.deadline = deadline
        self.condition = threading.Condition()


# Operators a publisher operator keeps for the room lists passed to its to()
# (a pipeline cycles through a working set of selections; unique rooms, one
# per user, fill it once and then just miss), and event names whose encoded
# head it keeps.
_CHILDREN_MAX = 4096
_PREFIXES_MAX = 64


class PublisherOperator(Fluent["Publisher"]):
    """An immutable selection whose emits and broadcasts go through a :class:`Publisher`.

    An operator remembers what its calls compute: ``to(rooms)`` with the
    same rooms again returns the operator made the first time (operators
    are immutable, so it is the same selection), and its emits reuse the
    encoded selection and event name.
    """

    __slots__ = ("_children", "_flags", "_prefixes")

    def __init__(self, owner: Publisher, selection: Selection) -> None:
        """Bind a selection to the publisher that will send its events."""
        super().__init__(owner, selection)
        self._children: dict[object, PublisherOperator] | None = None
        # Emits only: an operator without rooms refuses them (emit_entry says why).
        self._prefixes: dict[str, bytes] | None = {} if selection.rooms else None
        self._flags = emit_flags(selection)

    def to(self, rooms: Rooms) -> PublisherOperator:
        """Target the sockets in ``rooms`` too (see :meth:`Fluent.to`).

        The same rooms again (a ``str``, or a list or tuple of ``str``)
        return the same operator.
        """
        t = type(rooms)
        if t is str:
            key: object = rooms
        elif t is list or t is tuple:
            names = tuple(rooms)
            key = names
            for name in names:
                if type(name) is not str:
                    return super().to(rooms)  # checks (and refuses) the names
        else:
            return super().to(rooms)
        children = self._children
        if children is None:
            children = self._children = {}
        child = children.get(key)
        if child is None:
            child = super().to(rooms)
            if len(children) < _CHILDREN_MAX:
                children[key] = child
        return child

    def emit(self, event: str, *args: object, idempotency_key: str | None = None) -> Future[Result]:
        """Queue ``event`` for the selected rooms; return its result handle at once.

        The handle's ``result()`` is the event's :class:`~emitgate.Result`, or
        raises the event's error. An event the gateway would refuse (no room,
        an argument that cannot be encoded) gets a failed handle at once and is
        not sent.
        """
        try:
            entry = None
            prefixes = self._prefixes
            if prefixes is not None and idempotency_key is None and type(event) is str:
                prefix = prefixes.get(event)
                if prefix is None:
                    prefix = emit_prefix(self._sel, event)
                    if len(prefixes) < _PREFIXES_MAX:
                        prefixes[event] = prefix
                entry = plain_emit_entry(prefix, self._flags, args)
            if entry is None:
                entry = emit_entry(self._sel, event, args, idempotency_key)
        except (EmitgateError, TypeError, ValueError) as error:
            return _failed(error)
        return self._owner._queue(entry, idempotency_key is not None)

    def broadcast(
        self, event: str, *args: object, idempotency_key: str | None = None
    ) -> Future[Result]:
        """Queue ``event`` for every socket of the namespace (minus ``except_``)."""
        try:
            entry = broadcast_entry(self._sel, event, args, idempotency_key)
        except (EmitgateError, TypeError, ValueError) as error:
            return _failed(error)
        return self._owner._queue(entry, idempotency_key is not None)


def _failed(error: BaseException) -> Future[Result]:
    handle: Future[Result] = Future()
    handle.set_running_or_notify_cancel()  # like every handle: not cancellable
    handle.set_exception(error)
    return handle


class Publisher(EntryPoint[PublisherOperator]):
    """Publishes events one at a time; threads send them in batches in the background.

    Create it with :meth:`emitgate.Client.publisher` and use it as a context
    manager, or call :meth:`close` (which delivers everything queued)::

        with client.publisher() as pub:
            handle = pub.to("user:42").emit("notification", {"unread": 3})
        handle.result()  # Result(receivers=..., ...) or raises the event's error

    See :meth:`emitgate.Client.publisher` for the options and guarantees.
    """

    def __init__(self, client: Client, options: PublisherOptions) -> None:
        """Start the publisher's sender threads; prefer :meth:`Client.publisher`."""
        self._client = client
        self._options = options
        self._max_items = min(options.max_items, client._max_batch_items)
        # pub.to(...) starts here for every event: made once.
        self._root = PublisherOperator(self, Selection(client._target, "/"))
        self._call: grpc.UnaryUnaryMultiCallable[bytes, pb.BatchEmitResponse]
        self._call = client._channel.unary_unary(
            BATCH_EMIT,
            request_serializer=None,
            response_deserializer=pb.BatchEmitResponse.FromString,
        )
        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)  # a batch to send, or linger started
        self._space = threading.Condition(self._lock)  # the buffer has room again
        self._idle = threading.Condition(self._lock)  # a batch was answered
        self._open: _Batch | None = None
        self._ready: deque[_Batch] = deque()
        self._pending: set[_Batch] = set()  # open, ready or in flight
        self._outstanding = 0
        self._flushing = 0
        self._closed = False
        self._stopping = False
        self._threads = [
            threading.Thread(target=self._run, name=f"emitgate-publisher-{i}", daemon=True)
            for i in range(options.max_in_flight)
        ]
        for thread in self._threads:
            thread.start()

    # -- publishing ---------------------------------------------------------

    def of(self, namespace: str = "/", *, target: str | None = None) -> PublisherOperator:
        """Return an operator on ``namespace`` that publishes through this publisher."""
        if target is None and namespace == "/":
            return self._root
        chosen = self._client._target if target is None else target
        if not isinstance(chosen, str):
            raise TypeError(f"target must be a str, not {type(chosen).__name__}")
        return PublisherOperator(self, Selection(chosen, normalize_namespace(namespace)))

    def to(self, rooms: Rooms) -> PublisherOperator:
        """Shortcut for ``of("/").to(rooms)``: the start of most publishes, kept short."""
        return self._root.to(rooms)

    def emit(self, event: str, *args: object, idempotency_key: str | None = None) -> Future[Result]:
        """Return a failed handle: an emit needs a room (see :meth:`to`)."""
        return self.of().emit(event, *args, idempotency_key=idempotency_key)

    def broadcast(
        self, event: str, *args: object, idempotency_key: str | None = None
    ) -> Future[Result]:
        """Queue a broadcast to every socket of ``/``."""
        return self.of().broadcast(event, *args, idempotency_key=idempotency_key)

    def _queue(self, entry: bytes, keyed: bool) -> Future[Result]:
        size = len(entry)
        options = self._options
        with self._lock:
            if self._closed:
                raise RuntimeError("the publisher is closed")
            while self._outstanding >= options.buffer:
                if options.on_full == "error":
                    raise buffer_full(options.buffer)
                self._space.wait()
                if self._closed:
                    raise RuntimeError("the publisher is closed")
            self._outstanding += 1
            batch = self._open
            if batch is not None and batch.size + size > options.max_bytes:
                self._seal(batch)
                batch = None
            if batch is None:
                batch = self._open = _Batch(time.monotonic() + options.linger)
                self._pending.add(batch)
                self._work.notify()  # a sender starts the linger clock
            handle = _new_handle(_Handle)
            handle.__dict__.update(
                _condition=batch.condition,
                _state=PENDING,
                _result=None,
                _exception=None,
                _waiters=[],
                _done_callbacks=[],
            )
            batch.entries.append(entry)
            batch.handles.append(handle)
            batch.size += size
            if not keyed:
                batch.all_keyed = False
            if len(batch.entries) >= self._max_items:
                self._seal(batch)
        return handle

    def _seal(self, batch: _Batch) -> None:
        """Move the open ``batch`` to the send queue (lock held)."""
        self._open = None
        self._ready.append(batch)
        self._work.notify()

    # -- flush and close ------------------------------------------------------

    def flush(self, timeout: float | None = None) -> None:
        """Send everything queued and wait until every event published so far is answered.

        Raises ``TimeoutError`` if ``timeout`` seconds pass first. The events'
        own errors are in their handles, not raised here.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            waiting = set(self._pending)
            if self._open is not None:
                self._seal(self._open)
            while waiting:
                waiting &= self._pending
                if not waiting:
                    break
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise TimeoutError("flush: events still unanswered")
                self._idle.wait(remaining)

    def close(self, timeout: float | None = None) -> None:
        """Flush, then stop the sender threads; publishing afterwards raises ``RuntimeError``.

        Closing twice is harmless. The client stays open.
        """
        with self._lock:
            self._closed = True
            self._space.notify_all()
        self.flush(timeout)
        with self._lock:
            self._stopping = True
            self._work.notify_all()
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    def __enter__(self) -> Publisher:
        """Return the publisher."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Close the publisher: everything published in the block is delivered."""
        self.close()

    # -- sender threads -------------------------------------------------------

    def _next_batch(self) -> _Batch | None:
        """Wait for a batch to send; ``None`` when the publisher stops."""
        with self._lock:
            while True:
                if self._ready:
                    return self._ready.popleft()
                batch = self._open
                if batch is not None:
                    wait = batch.deadline - time.monotonic()
                    if wait <= 0:
                        self._open = None
                        return batch
                    self._work.wait(wait)
                    continue
                if self._stopping:
                    return None
                self._work.wait()

    def _run(self) -> None:
        while (batch := self._next_batch()) is not None:
            try:
                outcomes = self._send(batch.entries, batch.all_keyed)
            except BaseException as error:
                outcomes = [error] * len(batch.handles)
            try:
                _resolve(batch, outcomes)
            finally:
                with self._lock:
                    self._outstanding -= len(batch.handles)
                    self._pending.discard(batch)
                    self._space.notify_all()
                    self._idle.notify_all()

    def _send(self, entries: Sequence[bytes], all_keyed: bool) -> list[Result | BaseException]:
        """Send one batch; return its items' outcomes, retrying and splitting as the rules say."""
        client = self._client
        body = request_bytes(entries)
        attempt = 0
        backoff = RETRY_INITIAL
        while True:
            attempt += 1
            start = time.monotonic()
            try:
                response = self._call(body, timeout=client._timeout, metadata=client._metadata)
                break
            except grpc.RpcError as rpc_error:
                expired = (
                    client._timeout is not None and time.monotonic() - start >= client._timeout
                )
                error = error_from_rpc_error(rpc_error, deadline_expired=expired)
            except Exception as other:  # a closed channel, for instance
                return [other] * len(entries)
            smaller = smaller_limit(error, len(entries))
            if smaller is not None:
                # The gateway takes fewer items per call: remember it, resend in parts.
                self._max_items = min(self._max_items, smaller)
                outcomes: list[Result | BaseException] = []
                for i in range(0, len(entries), smaller):
                    outcomes += self._send(entries[i : i + smaller], all_keyed)
                return outcomes
            delay = retry_delay(error, attempt, backoff, all_keyed)
            if delay is None:
                return [error] * len(entries)
            time.sleep(delay)
            backoff = next_backoff(backoff)
        return item_outcomes(response, len(entries))


def _resolve(batch: _Batch, outcomes: Sequence[Result | BaseException]) -> None:
    """Resolve every handle of ``batch``, waking its waiters once all are done.

    A handle nobody waits on through ``concurrent.futures.wait`` and without
    done callbacks is resolved by setting what ``set_result`` /
    ``set_exception`` set (its condition, the batch's, is held and notified
    once below); the others go through those methods.
    """
    condition = batch.condition
    with condition:
        for handle, outcome in zip(batch.handles, outcomes):
            if handle._waiters or handle._done_callbacks:
                if isinstance(outcome, Result):
                    handle.set_result(outcome)
                else:
                    handle.set_exception(outcome)
            elif isinstance(outcome, Result):
                handle._result = outcome
                handle._state = FINISHED
            else:
                handle._exception = outcome
                handle._state = FINISHED
        condition.notify_all()
