from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Argument(_message.Message):
    __slots__ = ("value", "binary", "json", "msgpack")
    VALUE_FIELD_NUMBER: _ClassVar[int]
    BINARY_FIELD_NUMBER: _ClassVar[int]
    JSON_FIELD_NUMBER: _ClassVar[int]
    MSGPACK_FIELD_NUMBER: _ClassVar[int]
    value: _struct_pb2.Value
    binary: bytes
    json: str
    msgpack: bytes
    def __init__(self, value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., binary: _Optional[bytes] = ..., json: _Optional[str] = ..., msgpack: _Optional[bytes] = ...) -> None: ...

class EmitFlags(_message.Message):
    __slots__ = ("volatile", "compress")
    VOLATILE_FIELD_NUMBER: _ClassVar[int]
    COMPRESS_FIELD_NUMBER: _ClassVar[int]
    volatile: bool
    compress: bool
    def __init__(self, volatile: bool = ..., compress: bool = ...) -> None: ...

class EmitRequest(_message.Message):
    __slots__ = ("target", "namespace", "rooms", "except_rooms", "event", "args", "flags", "idempotency_key")
    TARGET_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    ROOMS_FIELD_NUMBER: _ClassVar[int]
    EXCEPT_ROOMS_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    ARGS_FIELD_NUMBER: _ClassVar[int]
    FLAGS_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    target: str
    namespace: str
    rooms: _containers.RepeatedScalarFieldContainer[str]
    except_rooms: _containers.RepeatedScalarFieldContainer[str]
    event: str
    args: _containers.RepeatedCompositeFieldContainer[Argument]
    flags: EmitFlags
    idempotency_key: str
    def __init__(self, target: _Optional[str] = ..., namespace: _Optional[str] = ..., rooms: _Optional[_Iterable[str]] = ..., except_rooms: _Optional[_Iterable[str]] = ..., event: _Optional[str] = ..., args: _Optional[_Iterable[_Union[Argument, _Mapping]]] = ..., flags: _Optional[_Union[EmitFlags, _Mapping]] = ..., idempotency_key: _Optional[str] = ...) -> None: ...

class EmitResponse(_message.Message):
    __slots__ = ("receivers", "duplicate", "stream_id")
    RECEIVERS_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    receivers: int
    duplicate: bool
    stream_id: str
    def __init__(self, receivers: _Optional[int] = ..., duplicate: bool = ..., stream_id: _Optional[str] = ...) -> None: ...

class BroadcastRequest(_message.Message):
    __slots__ = ("target", "namespace", "except_rooms", "event", "args", "flags", "idempotency_key")
    TARGET_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    EXCEPT_ROOMS_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    ARGS_FIELD_NUMBER: _ClassVar[int]
    FLAGS_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    target: str
    namespace: str
    except_rooms: _containers.RepeatedScalarFieldContainer[str]
    event: str
    args: _containers.RepeatedCompositeFieldContainer[Argument]
    flags: EmitFlags
    idempotency_key: str
    def __init__(self, target: _Optional[str] = ..., namespace: _Optional[str] = ..., except_rooms: _Optional[_Iterable[str]] = ..., event: _Optional[str] = ..., args: _Optional[_Iterable[_Union[Argument, _Mapping]]] = ..., flags: _Optional[_Union[EmitFlags, _Mapping]] = ..., idempotency_key: _Optional[str] = ...) -> None: ...

class BroadcastResponse(_message.Message):
    __slots__ = ("receivers", "duplicate", "stream_id")
    RECEIVERS_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    receivers: int
    duplicate: bool
    stream_id: str
    def __init__(self, receivers: _Optional[int] = ..., duplicate: bool = ..., stream_id: _Optional[str] = ...) -> None: ...

class BatchItem(_message.Message):
    __slots__ = ("emit", "broadcast")
    EMIT_FIELD_NUMBER: _ClassVar[int]
    BROADCAST_FIELD_NUMBER: _ClassVar[int]
    emit: EmitRequest
    broadcast: BroadcastRequest
    def __init__(self, emit: _Optional[_Union[EmitRequest, _Mapping]] = ..., broadcast: _Optional[_Union[BroadcastRequest, _Mapping]] = ...) -> None: ...

class BatchEmitRequest(_message.Message):
    __slots__ = ("items", "atomic")
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    ATOMIC_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[BatchItem]
    atomic: bool
    def __init__(self, items: _Optional[_Iterable[_Union[BatchItem, _Mapping]]] = ..., atomic: bool = ...) -> None: ...

class FieldViolation(_message.Message):
    __slots__ = ("field", "description")
    FIELD_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    field: str
    description: str
    def __init__(self, field: _Optional[str] = ..., description: _Optional[str] = ...) -> None: ...

class ItemResult(_message.Message):
    __slots__ = ("code", "message", "violations", "receivers", "duplicate", "stream_id")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    VIOLATIONS_FIELD_NUMBER: _ClassVar[int]
    RECEIVERS_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    code: int
    message: str
    violations: _containers.RepeatedCompositeFieldContainer[FieldViolation]
    receivers: int
    duplicate: bool
    stream_id: str
    def __init__(self, code: _Optional[int] = ..., message: _Optional[str] = ..., violations: _Optional[_Iterable[_Union[FieldViolation, _Mapping]]] = ..., receivers: _Optional[int] = ..., duplicate: bool = ..., stream_id: _Optional[str] = ...) -> None: ...

class BatchEmitResponse(_message.Message):
    __slots__ = ("results", "published", "failed", "receivers")
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    PUBLISHED_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    RECEIVERS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[ItemResult]
    published: int
    failed: int
    receivers: int
    def __init__(self, results: _Optional[_Iterable[_Union[ItemResult, _Mapping]]] = ..., published: _Optional[int] = ..., failed: _Optional[int] = ..., receivers: _Optional[int] = ...) -> None: ...

class SocketsJoinRequest(_message.Message):
    __slots__ = ("target", "namespace", "rooms", "except_rooms", "join_rooms", "idempotency_key")
    TARGET_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    ROOMS_FIELD_NUMBER: _ClassVar[int]
    EXCEPT_ROOMS_FIELD_NUMBER: _ClassVar[int]
    JOIN_ROOMS_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    target: str
    namespace: str
    rooms: _containers.RepeatedScalarFieldContainer[str]
    except_rooms: _containers.RepeatedScalarFieldContainer[str]
    join_rooms: _containers.RepeatedScalarFieldContainer[str]
    idempotency_key: str
    def __init__(self, target: _Optional[str] = ..., namespace: _Optional[str] = ..., rooms: _Optional[_Iterable[str]] = ..., except_rooms: _Optional[_Iterable[str]] = ..., join_rooms: _Optional[_Iterable[str]] = ..., idempotency_key: _Optional[str] = ...) -> None: ...

class SocketsJoinResponse(_message.Message):
    __slots__ = ("receivers", "duplicate", "stream_id")
    RECEIVERS_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    receivers: int
    duplicate: bool
    stream_id: str
    def __init__(self, receivers: _Optional[int] = ..., duplicate: bool = ..., stream_id: _Optional[str] = ...) -> None: ...

class SocketsLeaveRequest(_message.Message):
    __slots__ = ("target", "namespace", "rooms", "except_rooms", "leave_rooms", "idempotency_key")
    TARGET_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    ROOMS_FIELD_NUMBER: _ClassVar[int]
    EXCEPT_ROOMS_FIELD_NUMBER: _ClassVar[int]
    LEAVE_ROOMS_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    target: str
    namespace: str
    rooms: _containers.RepeatedScalarFieldContainer[str]
    except_rooms: _containers.RepeatedScalarFieldContainer[str]
    leave_rooms: _containers.RepeatedScalarFieldContainer[str]
    idempotency_key: str
    def __init__(self, target: _Optional[str] = ..., namespace: _Optional[str] = ..., rooms: _Optional[_Iterable[str]] = ..., except_rooms: _Optional[_Iterable[str]] = ..., leave_rooms: _Optional[_Iterable[str]] = ..., idempotency_key: _Optional[str] = ...) -> None: ...

class SocketsLeaveResponse(_message.Message):
    __slots__ = ("receivers", "duplicate", "stream_id")
    RECEIVERS_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    receivers: int
    duplicate: bool
    stream_id: str
    def __init__(self, receivers: _Optional[int] = ..., duplicate: bool = ..., stream_id: _Optional[str] = ...) -> None: ...

class DisconnectSocketsRequest(_message.Message):
    __slots__ = ("target", "namespace", "rooms", "except_rooms", "close", "idempotency_key")
    TARGET_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    ROOMS_FIELD_NUMBER: _ClassVar[int]
    EXCEPT_ROOMS_FIELD_NUMBER: _ClassVar[int]
    CLOSE_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    target: str
    namespace: str
    rooms: _containers.RepeatedScalarFieldContainer[str]
    except_rooms: _containers.RepeatedScalarFieldContainer[str]
    close: bool
    idempotency_key: str
    def __init__(self, target: _Optional[str] = ..., namespace: _Optional[str] = ..., rooms: _Optional[_Iterable[str]] = ..., except_rooms: _Optional[_Iterable[str]] = ..., close: bool = ..., idempotency_key: _Optional[str] = ...) -> None: ...

class DisconnectSocketsResponse(_message.Message):
    __slots__ = ("receivers", "duplicate", "stream_id")
    RECEIVERS_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    receivers: int
    duplicate: bool
    stream_id: str
    def __init__(self, receivers: _Optional[int] = ..., duplicate: bool = ..., stream_id: _Optional[str] = ...) -> None: ...

class ServerSideEmitRequest(_message.Message):
    __slots__ = ("target", "namespace", "event", "args", "idempotency_key")
    TARGET_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    ARGS_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    target: str
    namespace: str
    event: str
    args: _containers.RepeatedCompositeFieldContainer[Argument]
    idempotency_key: str
    def __init__(self, target: _Optional[str] = ..., namespace: _Optional[str] = ..., event: _Optional[str] = ..., args: _Optional[_Iterable[_Union[Argument, _Mapping]]] = ..., idempotency_key: _Optional[str] = ...) -> None: ...

class ServerSideEmitResponse(_message.Message):
    __slots__ = ("receivers", "duplicate", "stream_id")
    RECEIVERS_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    receivers: int
    duplicate: bool
    stream_id: str
    def __init__(self, receivers: _Optional[int] = ..., duplicate: bool = ..., stream_id: _Optional[str] = ...) -> None: ...

class EmitWithAckRequest(_message.Message):
    __slots__ = ("emit", "broadcast", "timeout_ms")
    EMIT_FIELD_NUMBER: _ClassVar[int]
    BROADCAST_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    emit: EmitRequest
    broadcast: BroadcastRequest
    timeout_ms: int
    def __init__(self, emit: _Optional[_Union[EmitRequest, _Mapping]] = ..., broadcast: _Optional[_Union[BroadcastRequest, _Mapping]] = ..., timeout_ms: _Optional[int] = ...) -> None: ...

class EmitWithAckResponse(_message.Message):
    __slots__ = ("sockets", "acks", "servers", "servers_expected", "complete")
    SOCKETS_FIELD_NUMBER: _ClassVar[int]
    ACKS_FIELD_NUMBER: _ClassVar[int]
    SERVERS_FIELD_NUMBER: _ClassVar[int]
    SERVERS_EXPECTED_FIELD_NUMBER: _ClassVar[int]
    COMPLETE_FIELD_NUMBER: _ClassVar[int]
    sockets: int
    acks: _containers.RepeatedCompositeFieldContainer[Argument]
    servers: int
    servers_expected: int
    complete: bool
    def __init__(self, sockets: _Optional[int] = ..., acks: _Optional[_Iterable[_Union[Argument, _Mapping]]] = ..., servers: _Optional[int] = ..., servers_expected: _Optional[int] = ..., complete: bool = ...) -> None: ...

class Handshake(_message.Message):
    __slots__ = ("headers", "time", "address", "xdomain", "secure", "issued", "url", "query")
    class HeadersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class QueryEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    HEADERS_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    XDOMAIN_FIELD_NUMBER: _ClassVar[int]
    SECURE_FIELD_NUMBER: _ClassVar[int]
    ISSUED_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    QUERY_FIELD_NUMBER: _ClassVar[int]
    headers: _containers.ScalarMap[str, str]
    time: str
    address: str
    xdomain: bool
    secure: bool
    issued: int
    url: str
    query: _containers.ScalarMap[str, str]
    def __init__(self, headers: _Optional[_Mapping[str, str]] = ..., time: _Optional[str] = ..., address: _Optional[str] = ..., xdomain: bool = ..., secure: bool = ..., issued: _Optional[int] = ..., url: _Optional[str] = ..., query: _Optional[_Mapping[str, str]] = ...) -> None: ...

class RemoteSocket(_message.Message):
    __slots__ = ("id", "rooms", "data", "handshake", "data_msgpack")
    ID_FIELD_NUMBER: _ClassVar[int]
    ROOMS_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    HANDSHAKE_FIELD_NUMBER: _ClassVar[int]
    DATA_MSGPACK_FIELD_NUMBER: _ClassVar[int]
    id: str
    rooms: _containers.RepeatedScalarFieldContainer[str]
    data: _struct_pb2.Value
    handshake: Handshake
    data_msgpack: bytes
    def __init__(self, id: _Optional[str] = ..., rooms: _Optional[_Iterable[str]] = ..., data: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., handshake: _Optional[_Union[Handshake, _Mapping]] = ..., data_msgpack: _Optional[bytes] = ...) -> None: ...

class FetchSocketsRequest(_message.Message):
    __slots__ = ("target", "namespace", "rooms", "except_rooms", "timeout_ms")
    TARGET_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    ROOMS_FIELD_NUMBER: _ClassVar[int]
    EXCEPT_ROOMS_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    target: str
    namespace: str
    rooms: _containers.RepeatedScalarFieldContainer[str]
    except_rooms: _containers.RepeatedScalarFieldContainer[str]
    timeout_ms: int
    def __init__(self, target: _Optional[str] = ..., namespace: _Optional[str] = ..., rooms: _Optional[_Iterable[str]] = ..., except_rooms: _Optional[_Iterable[str]] = ..., timeout_ms: _Optional[int] = ...) -> None: ...

class FetchSocketsResponse(_message.Message):
    __slots__ = ("sockets", "servers", "servers_expected", "complete", "truncated")
    SOCKETS_FIELD_NUMBER: _ClassVar[int]
    SERVERS_FIELD_NUMBER: _ClassVar[int]
    SERVERS_EXPECTED_FIELD_NUMBER: _ClassVar[int]
    COMPLETE_FIELD_NUMBER: _ClassVar[int]
    TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    sockets: _containers.RepeatedCompositeFieldContainer[RemoteSocket]
    servers: int
    servers_expected: int
    complete: bool
    truncated: bool
    def __init__(self, sockets: _Optional[_Iterable[_Union[RemoteSocket, _Mapping]]] = ..., servers: _Optional[int] = ..., servers_expected: _Optional[int] = ..., complete: bool = ..., truncated: bool = ...) -> None: ...

class AllRoomsRequest(_message.Message):
    __slots__ = ("target", "namespace", "timeout_ms")
    TARGET_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    target: str
    namespace: str
    timeout_ms: int
    def __init__(self, target: _Optional[str] = ..., namespace: _Optional[str] = ..., timeout_ms: _Optional[int] = ...) -> None: ...

class AllRoomsResponse(_message.Message):
    __slots__ = ("rooms", "servers", "servers_expected", "complete", "truncated")
    ROOMS_FIELD_NUMBER: _ClassVar[int]
    SERVERS_FIELD_NUMBER: _ClassVar[int]
    SERVERS_EXPECTED_FIELD_NUMBER: _ClassVar[int]
    COMPLETE_FIELD_NUMBER: _ClassVar[int]
    TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    rooms: _containers.RepeatedScalarFieldContainer[str]
    servers: int
    servers_expected: int
    complete: bool
    truncated: bool
    def __init__(self, rooms: _Optional[_Iterable[str]] = ..., servers: _Optional[int] = ..., servers_expected: _Optional[int] = ..., complete: bool = ..., truncated: bool = ...) -> None: ...

class ServerCountRequest(_message.Message):
    __slots__ = ("target", "namespace")
    TARGET_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    target: str
    namespace: str
    def __init__(self, target: _Optional[str] = ..., namespace: _Optional[str] = ...) -> None: ...

class ServerCountResponse(_message.Message):
    __slots__ = ("servers",)
    SERVERS_FIELD_NUMBER: _ClassVar[int]
    servers: int
    def __init__(self, servers: _Optional[int] = ...) -> None: ...

class ServerSideEmitWithAckRequest(_message.Message):
    __slots__ = ("target", "namespace", "event", "args", "timeout_ms")
    TARGET_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    ARGS_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    target: str
    namespace: str
    event: str
    args: _containers.RepeatedCompositeFieldContainer[Argument]
    timeout_ms: int
    def __init__(self, target: _Optional[str] = ..., namespace: _Optional[str] = ..., event: _Optional[str] = ..., args: _Optional[_Iterable[_Union[Argument, _Mapping]]] = ..., timeout_ms: _Optional[int] = ...) -> None: ...

class ServerReply(_message.Message):
    __slots__ = ("reply", "server")
    REPLY_FIELD_NUMBER: _ClassVar[int]
    SERVER_FIELD_NUMBER: _ClassVar[int]
    reply: Argument
    server: str
    def __init__(self, reply: _Optional[_Union[Argument, _Mapping]] = ..., server: _Optional[str] = ...) -> None: ...

class ServerSideEmitWithAckResponse(_message.Message):
    __slots__ = ("replies", "servers_expected", "complete")
    REPLIES_FIELD_NUMBER: _ClassVar[int]
    SERVERS_EXPECTED_FIELD_NUMBER: _ClassVar[int]
    COMPLETE_FIELD_NUMBER: _ClassVar[int]
    replies: _containers.RepeatedCompositeFieldContainer[ServerReply]
    servers_expected: int
    complete: bool
    def __init__(self, replies: _Optional[_Iterable[_Union[ServerReply, _Mapping]]] = ..., servers_expected: _Optional[int] = ..., complete: bool = ...) -> None: ...
