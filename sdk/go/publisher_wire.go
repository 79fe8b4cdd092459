package emitgate

import (
	"context"
	"fmt"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	emitgatev1 "github.com/emitgate/emitgate/sdk/go/gen/emitgate/v1"
)

// The Publisher keeps each event as its encoded BatchEmitRequest.items
// entry, appended to its batch's request bytes as it is published: a batch
// is then sent as it is (no request message, no per-item allocation, no
// marshalling of a thousand items at send time), its size is known
// exactly, and chunks of it are byte ranges.

// Field numbers of the messages the Publisher encodes itself.
const (
	fieldBatchItems    = 1 // BatchEmitRequest.items
	fieldItemEmit      = 1 // BatchItem.emit
	fieldEmitTarget    = 1 // EmitRequest.target
	fieldEmitNamespace = 2 // EmitRequest.namespace
	fieldEmitRooms     = 3 // EmitRequest.rooms
	fieldEmitExcept    = 4 // EmitRequest.except_rooms
	fieldEmitEvent     = 5 // EmitRequest.event
	fieldEmitArgs      = 6 // EmitRequest.args
	fieldEmitFlags     = 7 // EmitRequest.flags
	fieldEmitKey       = 8 // EmitRequest.idempotency_key
	fieldArgJSON       = 3 // Argument.json
	fieldFlagsVolatile = 1 // EmitFlags.volatile
	fieldFlagsCompress = 2 // EmitFlags.compress
)

// appendString appends a string field, left out when empty (proto3).
func appendString(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

// stringSize is the encoded size of a string field (tag below 16).
func stringSize(s string) int {
	if s == "" {
		return 0
	}
	return 1 + protowire.SizeBytes(len(s))
}

// flagsBody is the encoded EmitFlags of op; empty when op.flags() is nil.
func flagsBody(op Operator) (body [4]byte, n int, present bool) {
	if !op.volatile && op.compress == nil {
		return body, 0, false
	}
	if op.volatile {
		body[n], body[n+1] = byte(fieldFlagsVolatile<<3), 1
		n += 2
	}
	if op.compress != nil {
		body[n] = byte(fieldFlagsCompress << 3)
		if *op.compress {
			body[n+1] = 1
		}
		n += 2
	}
	return body, n, true
}

// appendJSONEmitEntry appends the items entry of an emit of op whose one
// argument is the JSON text: the bytes proto.Marshal gives for the
// BatchItem emitRequest builds, behind their items tag and length.
func appendJSONEmitEntry(b []byte, op Operator, event string, text []byte) []byte {
	flags, flagsLen, hasFlags := flagsBody(op)
	arg := 1 + protowire.SizeBytes(len(text)) // Argument{json}
	n := stringSize(op.c.target) + stringSize(op.namespace) + stringSize(event) +
		1 + protowire.SizeBytes(arg) + stringSize(op.idemKey)
	for _, r := range op.rooms {
		n += 1 + protowire.SizeBytes(len(r))
	}
	for _, r := range op.except {
		n += 1 + protowire.SizeBytes(len(r))
	}
	if hasFlags {
		n += 1 + protowire.SizeBytes(flagsLen)
	}
	item := 1 + protowire.SizeBytes(n) // BatchItem{emit}
	b = protowire.AppendTag(b, fieldBatchItems, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(item))
	b = protowire.AppendTag(b, fieldItemEmit, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(n))
	b = appendString(b, fieldEmitTarget, op.c.target)
	b = appendString(b, fieldEmitNamespace, op.namespace)
	for _, r := range op.rooms {
		b = protowire.AppendTag(b, fieldEmitRooms, protowire.BytesType)
		b = protowire.AppendString(b, r)
	}
	for _, r := range op.except {
		b = protowire.AppendTag(b, fieldEmitExcept, protowire.BytesType)
		b = protowire.AppendString(b, r)
	}
	b = appendString(b, fieldEmitEvent, event)
	b = protowire.AppendTag(b, fieldEmitArgs, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(arg))
	b = protowire.AppendTag(b, fieldArgJSON, protowire.BytesType)
	b = protowire.AppendBytes(b, text)
	if hasFlags {
		b = protowire.AppendTag(b, fieldEmitFlags, protowire.BytesType)
		b = protowire.AppendBytes(b, flags[:flagsLen])
	}
	return appendString(b, fieldEmitKey, op.idemKey)
}

// appendItemEntry appends the items entry of any item, marshalled by
// protobuf (the uncommon events).
func appendItemEntry(b []byte, item *emitgatev1.BatchItem) ([]byte, error) {
	body, err := proto.Marshal(item)
	if err != nil {
		return b, err
	}
	b = protowire.AppendTag(b, fieldBatchItems, protowire.BytesType)
	return protowire.AppendBytes(b, body), nil
}

// entryBufs recycles the scratch buffers events are encoded into before
// their batch takes a copy.
var entryBufs = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// sendRaw sends the encoded non-atomic BatchEmitRequest body of n items,
// as Batch.sendChunk sends a request message. The request message holds
// body as its unknown fields, which protobuf writes out as they are: the
// same bytes on the wire as the items they encode, without marshalling
// them. (Interceptors see that message; proto.Marshal and a new
// proto.Unmarshal give its items.)
func (c *Client) sendRaw(ctx context.Context, body []byte, n int) (*emitgatev1.BatchEmitResponse, error) {
	ctx, cancel := c.callContext(ctx)
	defer cancel()
	req := new(emitgatev1.BatchEmitRequest)
	req.ProtoReflect().SetUnknown(protoreflect.RawFields(body))
	resp, err := c.rpc.BatchEmit(ctx, req)
	if err != nil {
		return nil, fromCall(ctx, err)
	}
	if got := len(resp.GetResults()); got != n {
		return nil, &Error{Code: codes.Internal, Message: fmt.Sprintf("the gateway answered %d results for %d items", got, n)}
	}
	return resp, nil
}
