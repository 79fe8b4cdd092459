"""Batches: many emits and broadcasts sent as BatchEmit calls."""

from __future__ import annotations

from emitgate._core import (
    BatchItems,
    EntryPoint,
    Fluent,
    Selection,
    broadcast_request,
    emit_request,
    normalize_namespace,
)
from emitgate._gen.emitgate.v1 import emitter_pb2 as pb
from emitgate._results import BatchResult

__all__ = ["BatchOperator"]


class BatchOperator(Fluent[BatchItems]):
    """An immutable selection that queues emits and broadcasts into a batch."""

    __slots__ = ()

    def emit(self, event: str, *args: object, idempotency_key: str | None = None) -> int:
        """Queue an emit to the selected rooms; return its index in the batch.

        Raises :class:`~emitgate.InvalidArgument` at once when no room was
        selected, and ``TypeError`` / ``ValueError`` for an argument that cannot
        be encoded.
        """
        request = emit_request(self._sel, event, args, idempotency_key)
        return self._owner.add(pb.BatchItem(emit=request))

    def broadcast(self, event: str, *args: object, idempotency_key: str | None = None) -> int:
        """Queue a broadcast to the whole namespace; return its index in the batch."""
        request = broadcast_request(self._sel, event, args, idempotency_key)
        return self._owner.add(pb.BatchItem(broadcast=request))


class BatchBase(EntryPoint[BatchOperator]):
    """What sync and asyncio batches share: queueing and the result."""

    __slots__ = ("_atomic", "_items", "_result", "_target")

    def __init__(self, target: str, atomic: bool) -> None:
        """Start an empty batch publishing to ``target`` by default."""
        if not isinstance(atomic, bool):
            raise TypeError(f"atomic must be a bool, not {type(atomic).__name__}")
        self._target = target
        self._atomic = atomic
        self._items = BatchItems()
        self._result: BatchResult | None = None

    def of(self, namespace: str = "/", *, target: str | None = None) -> BatchOperator:
        """Return an operator that queues into this batch, on ``namespace``."""
        chosen = self._target if target is None else target
        return BatchOperator(self._items, Selection(chosen, normalize_namespace(namespace)))

    def emit(self, event: str, *args: object, idempotency_key: str | None = None) -> int:
        """Raise :class:`~emitgate.InvalidArgument`: an emit needs a room (see :meth:`to`)."""
        return self.of().emit(event, *args, idempotency_key=idempotency_key)

    def broadcast(self, event: str, *args: object, idempotency_key: str | None = None) -> int:
        """Queue a broadcast to every socket of ``/``; return its index."""
        return self.of().broadcast(event, *args, idempotency_key=idempotency_key)

    @property
    def atomic(self) -> bool:
        """Whether one invalid item rejects the whole batch."""
        return self._atomic

    @property
    def sent(self) -> bool:
        """Whether the batch was sent (or sending was attempted)."""
        return self._items.sealed

    @property
    def result(self) -> BatchResult:
        """The per-item results, once the batch was sent.

        If sending failed part way (for instance :class:`~emitgate.Unavailable`
        on the second chunk), it holds the results of the chunks that were
        published before the failure.
        """
        if self._result is None:
            raise RuntimeError("the batch has not been sent yet")
        return self._result

    def __len__(self) -> int:
        """Return how many items are queued."""
        return len(self._items.items)

    def _seal(self) -> list[pb.BatchItem]:
        if self._items.sealed:
            raise RuntimeError("this batch was already sent; start a new one with client.batch()")
        self._items.sealed = True
        return self._items.items
