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
            means no server is listening on that namespace.

    """

    receivers: int


@dataclass(frozen=True)
class BatchItemResult:
    """The outcome of one item of a batch.

    Attributes:
        index: The position of the item in the batch, from 0.
        code: ``grpc.StatusCode.OK`` when the item was published.
        message: Why the item failed; empty when it was published.
        violations: The invalid fields of the item, with paths from the request
            root of the chunk that carried it (``items[3].emit.event``).
        receivers: How many Socket.IO server subscriptions received the item.

    """

    index: int
    code: grpc.StatusCode
    message: str
    violations: tuple[FieldViolation, ...]
    receivers: int

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
