"""emitgate: emit Socket.IO events from Python through an emitgate gateway.

The API is the one of the JavaScript ``@socket.io/redis-emitter``, immutable
and fluent::

    import emitgate

    with emitgate.Client("localhost:50051", insecure=True) as client:
        client.of("/admin").to("room1").except_("muted").emit("news", {"id": 7})
        client.broadcast("tick", 1)

:class:`Client` uses blocking ``grpc`` calls (and :meth:`Client.publisher`
batches events in background threads for pipelines); :class:`AsyncClient` has the same
methods as coroutines over ``grpc.aio``. Every failure is an
:class:`EmitgateError` subclass named after its gRPC status.
"""

from emitgate._aio import AsyncBatch, AsyncClient, AsyncOperator
from emitgate._aio_publisher import AsyncPublisher, AsyncPublisherOperator
from emitgate._args import MAX_SAFE_INTEGER
from emitgate._batch import BatchOperator
from emitgate._client import Batch, Client, Operator
from emitgate._core import __version__
from emitgate._errors import (
    Cancelled,
    DeadlineExceeded,
    EmitgateError,
    FieldViolation,
    Internal,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
    Unimplemented,
)
from emitgate._feedback import (
    AckResult,
    AllRoomsResult,
    FetchSocketsResult,
    Handshake,
    RemoteSocket,
    ServerAckResult,
    ServerReply,
)
from emitgate._publisher import Publisher, PublisherOperator
from emitgate._results import BatchItemResult, BatchResult, Result

__all__ = [
    "MAX_SAFE_INTEGER",
    "AckResult",
    "AllRoomsResult",
    "AsyncBatch",
    "AsyncClient",
    "AsyncOperator",
    "AsyncPublisher",
    "AsyncPublisherOperator",
    "Batch",
    "BatchItemResult",
    "BatchOperator",
    "BatchResult",
    "Cancelled",
    "Client",
    "DeadlineExceeded",
    "EmitgateError",
    "FetchSocketsResult",
    "FieldViolation",
    "Handshake",
    "Internal",
    "InvalidArgument",
    "NotFound",
    "Operator",
    "PermissionDenied",
    "Publisher",
    "PublisherOperator",
    "RemoteSocket",
    "ResourceExhausted",
    "Result",
    "ServerAckResult",
    "ServerReply",
    "Unauthenticated",
    "Unavailable",
    "Unimplemented",
    "__version__",
]
