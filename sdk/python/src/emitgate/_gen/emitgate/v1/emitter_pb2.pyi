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
