"""Results returned by emitgate calls."""

from __future__ import annotations

from dataclasses import dataclass

import grpc

from emitgate._errors import FieldViolation

__all__ = ["BatchItemResult", "BatchResult", "Result"]


@dataclass(frozen=True)
class Result:
    """The outcome of one published call.

    Attributes:
        receivers: How many Socket.IO server subscriptions received the packet
            (for emit/broadcast) or how many Socket.IO servers received the
            request (for the socket operations and server_side_emit). ``0``
            means no server is listening on that namespace (and is always 0
            for targets whose dialect writes to a Redis stream).
        duplicate: True when the call's ``idempotency_key`` was already used
            within the gateway's window: nothing was published and the other
            fields repeat the first call's result.
        stream_id: The id of the Redis stream entry added, for targets whose
            dialect writes to a stream; ``""`` otherwise.

    """

    receivers: int
    duplicate: bool = False
    stream_id: str = ""


@dataclass(frozen=True)
class BatchItemResult:
    """The outcome of one item of a batch.

    Attributes:
        index: The position of the item in the batch, from 0.
        code: ``grpc.StatusCode.OK`` when the item was published.
        message: Why the item failed; empty when it was published.
        violations: The invalid fields of the item, with paths from the root of
            the whole batch (``items[3].emit.event``), even when it was sent in
            several chunks.
        receivers: How many Socket.IO server subscriptions received the item.
        duplicate: True when the item's ``idempotency_key`` was already used:
            nothing was published for it.
        stream_id: The id of the Redis stream entry added, for stream dialects.

    """

    index: int
    code: grpc.StatusCode
    message: str
    violations: tuple[FieldViolation, ...]
    receivers: int
    duplicate: bool = False
    stream_id: str = ""

    @property
    def ok(self) -> bool:
        """Whether the item was published."""
        return self.code == grpc.StatusCode.OK


@dataclass(frozen=True)
class BatchResult:
    """The outcome of a batch, over all the chunks it was sent in.

    Attributes:
        results: One result per item that was sent, in batch order.
        published: How many items were published.
        failed: How many items failed.
        receivers: The sum of ``receivers`` over all items.
        requests: How many BatchEmit calls carried the batch.

    """

    results: tuple[BatchItemResult, ...]
    published: int
    failed: int
    receivers: int
    requests: int

    @property
    def failures(self) -> tuple[BatchItemResult, ...]:
        """The items that were not published, with their index, code and violations."""
        return tuple(r for r in self.results if not r.ok)

    @property
    def ok(self) -> bool:
        """Whether every item was published."""
        return self.failed == 0
