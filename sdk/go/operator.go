package emitgate

import (
	"context"
	"fmt"
	"time"

	emitgatev1 "github.com/emitgate/emitgate/sdk/go/gen/emitgate/v1"
)

// Result reports a published call.
type Result struct {
	// Receivers is how many Socket.IO server subscriptions received the
	// packet (for Emit and Broadcast) or how many servers received the
	// request (for the other calls). 0 means no server listens on the
	// namespace; it is not an error.
	Receivers uint64

	// Duplicate is true when the operator's IdempotencyKey was already used
	// within the gateway's idempotency window: nothing was published, and
	// Receivers and StreamID repeat the first call's result.
	Duplicate bool

	// StreamID is the id of the Redis stream entry the call added, for a
	// target whose dialect writes to a stream (Receivers is 0 then); empty
	// otherwise.
	StreamID string
}

// Operator selects a namespace, rooms and flags, like the JavaScript
// emitter's BroadcastOperator. It is an immutable value: every method
// returns a new Operator and leaves the receiver unchanged, so operators
// can be kept and reused concurrently:
//
//	admins := client.Of("/admin")
//	admins.To("room1").Emit(ctx, "hello")  // admins still selects all of /admin
//	admins.Broadcast(ctx, "tick", 1)
//
// The zero Operator is not usable; get one from a Client.
type Operator struct {
	c         *Client
	namespace string
	rooms     []string
	except    []string
	volatile  bool
	compress  *bool
	idemKey   string
	wait      time.Duration // answer timeout of the waiting calls (feedback.go)
}

// Of selects a namespace; the rooms, exceptions and flags are kept. A
// missing leading "/" is added by the gateway; "" is "/".
func (o Operator) Of(namespace string) Operator {
	o.namespace = namespace
	return o
}

// To adds rooms to the selection: the sockets in at least one of the rooms
// are reached. A socket id is a room too.
func (o Operator) To(rooms ...string) Operator {
	o.rooms = appendCopy(o.rooms, rooms)
	return o
}

// In is the same as To.
func (o Operator) In(rooms ...string) Operator { return o.To(rooms...) }

// Except adds rooms whose sockets are skipped.
func (o Operator) Except(rooms ...string) Operator {
	o.except = appendCopy(o.except, rooms)
	return o
}

// Volatile lets the servers drop the event for clients that are not ready
// to receive it. It applies to Emit and Broadcast.
func (o Operator) Volatile() Operator {
	o.volatile = true
	return o
}

// Compress asks the servers to compress (true) or not compress (false) the
// event on the client connections; without it the server default applies.
// It applies to Emit and Broadcast.
func (o Operator) Compress(compress bool) Operator {
	o.compress = &compress
	return o
}

// IdempotencyKey makes the calls of the returned operator publish at most
// once per key: the gateway remembers the key for its idempotency window
// (five minutes by default), and a repeat within the window publishes
// nothing and returns the first call's result with Result.Duplicate set.
// Name the operation with the key (an invoice id, a message id) and send
// the same key again when you retry after a timeout or an Unavailable
// error: the event then reaches the clients once. Keys are scoped per API
// key and target; "" removes the key.
//
// Every call made with the returned operator carries the key, so derive a
// keyed operator per operation rather than keeping one around. In a Batch,
// each item carries the key of the operator it was added with, and
// duplicates are reported per item (ItemResult.Duplicate).
func (o Operator) IdempotencyKey(key string) Operator {
	o.idemKey = key
	return o
}

// appendCopy appends to a copy of s, so that operators never share their
// backing arrays.
func appendCopy(s, more []string) []string {
	out := make([]string, 0, len(s)+len(more))
	return append(append(out, s...), more...)
}

func (o Operator) flags() *emitgatev1.EmitFlags {
	if !o.volatile && o.compress == nil {
		return nil
	}
	return &emitgatev1.EmitFlags{Volatile: o.volatile, Compress: o.compress}
}

// emitRequest builds an EmitRequest; field prefixes error paths.
func (o Operator) emitRequest(field, event string, args []any) (*emitgatev1.EmitRequest, error) {
	if len(o.rooms) == 0 {
		return nil, localError(nil, "Emit needs at least one room; use Broadcast to reach a whole namespace",
			violation(field+"rooms", "at least one room is required"))
	}
	pargs, err := encodeArgs(field+"args", args, true)
	if err != nil {
		return nil, err
	}
	return &emitgatev1.EmitRequest{
		Target:         o.c.target,
		Namespace:      o.namespace,
		Rooms:          o.rooms,
		ExceptRooms:    o.except,
		Event:          event,
		Args:           pargs,
		Flags:          o.flags(),
		IdempotencyKey: o.idemKey,
	}, nil
}

// broadcastRequest builds a BroadcastRequest; field prefixes error paths.
func (o Operator) broadcastRequest(field, event string, args []any) (*emitgatev1.BroadcastRequest, error) {
	if len(o.rooms) != 0 {
		return nil, localError(nil, "Broadcast reaches a whole namespace; use Emit to reach rooms",
			violation(field+"rooms", "Broadcast takes no rooms (got %q)", o.rooms))
	}
	pargs, err := encodeArgs(field+"args", args, true)
	if err != nil {
		return nil, err
	}
	return &emitgatev1.BroadcastRequest{
		Target:         o.c.target,
		Namespace:      o.namespace,
		ExceptRooms:    o.except,
		Event:          event,
		Args:           pargs,
		Flags:          o.flags(),
		IdempotencyKey: o.idemKey,
	}, nil
}

// Emit sends an event to the sockets in the selected rooms (at least one
// room is required: an Emit without a room fails before anything is sent;
// use Broadcast to reach a whole namespace).
//
// Each argument becomes one argument of the event, as the client sees it:
// []byte is a binary argument (a Buffer or ArrayBuffer); a value holding
// []byte anywhere inside, or an integer outside ±2^53, is sent as
// MessagePack so bytes stay binary; json.RawMessage is sent as JSON text
// and RawMsgpack as MessagePack; any other value is encoded like
// encoding/json does. An argument that cannot be encoded is an
// InvalidArgument error naming it ("args[2]").
func (o Operator) Emit(ctx context.Context, event string, args ...any) (Result, error) {
	req, err := o.emitRequest("", event, args)
	if err != nil {
		return Result{}, err
	}
	ctx, cancel := o.c.callContext(ctx)
	defer cancel()
	resp, err := o.c.rpc.Emit(ctx, req)
	if err != nil {
		return Result{}, fromCall(ctx, err)
	}
	return result(resp), nil
}

// Broadcast sends an event to every socket of the namespace, minus the
// sockets in the Except rooms. An operator with rooms (To) is refused:
// use Emit for rooms. Arguments are encoded as for Emit.
func (o Operator) Broadcast(ctx context.Context, event string, args ...any) (Result, error) {
	req, err := o.broadcastRequest("", event, args)
	if err != nil {
		return Result{}, err
	}
	ctx, cancel := o.c.callContext(ctx)
	defer cancel()
	resp, err := o.c.rpc.Broadcast(ctx, req)
	if err != nil {
		return Result{}, fromCall(ctx, err)
	}
	return result(resp), nil
}

// SocketsJoin makes the selected sockets join rooms: the sockets in the To
// rooms (every socket of the namespace without To), minus the Except
// rooms.
func (o Operator) SocketsJoin(ctx context.Context, rooms ...string) (Result, error) {
	ctx, cancel := o.c.callContext(ctx)
	defer cancel()
	resp, err := o.c.rpc.SocketsJoin(ctx, &emitgatev1.SocketsJoinRequest{
		Target:         o.c.target,
		Namespace:      o.namespace,
		Rooms:          o.rooms,
		ExceptRooms:    o.except,
		JoinRooms:      rooms,
		IdempotencyKey: o.idemKey,
	})
	if err != nil {
		return Result{}, fromCall(ctx, err)
	}
	return result(resp), nil
}

// SocketsLeave makes the selected sockets leave rooms: the sockets in the
// To rooms (every socket of the namespace without To), minus the Except
// rooms.
func (o Operator) SocketsLeave(ctx context.Context, rooms ...string) (Result, error) {
	ctx, cancel := o.c.callContext(ctx)
	defer cancel()
	resp, err := o.c.rpc.SocketsLeave(ctx, &emitgatev1.SocketsLeaveRequest{
		Target:         o.c.target,
		Namespace:      o.namespace,
		Rooms:          o.rooms,
		ExceptRooms:    o.except,
		LeaveRooms:     rooms,
		IdempotencyKey: o.idemKey,
	})
	if err != nil {
		return Result{}, fromCall(ctx, err)
	}
	return result(resp), nil
}

// DisconnectSockets disconnects the selected sockets: the sockets in the To
// rooms (every socket of the namespace without To), minus the Except
// rooms. With close, the underlying connection is closed too (ending the
// socket's other namespaces); otherwise the socket only leaves the
// namespace.
func (o Operator) DisconnectSockets(ctx context.Context, close bool) (Result, error) {
	ctx, cancel := o.c.callContext(ctx)
	defer cancel()
	resp, err := o.c.rpc.DisconnectSockets(ctx, &emitgatev1.DisconnectSocketsRequest{
		Target:         o.c.target,
		Namespace:      o.namespace,
		Rooms:          o.rooms,
		ExceptRooms:    o.except,
		Close:          close,
		IdempotencyKey: o.idemKey,
	})
	if err != nil {
		return Result{}, fromCall(ctx, err)
	}
	return result(resp), nil
}

// ServerSideEmit sends an event to the Socket.IO servers themselves: it
// reaches their io.of(namespace).on(event, …) handlers, not the clients.
// Servers receive the arguments as JSON, so binary data is refused before
// anything is sent; integers outside ±2^53 are sent as JSON numbers. An
// operator with rooms or exceptions is refused too.
func (o Operator) ServerSideEmit(ctx context.Context, event string, args ...any) (Result, error) {
	if len(o.rooms) != 0 || len(o.except) != 0 {
		f := "rooms"
		if len(o.rooms) == 0 {
			f = "except_rooms"
		}
		return Result{}, localError(nil, "ServerSideEmit reaches servers, not rooms",
			violation(f, "ServerSideEmit takes no rooms (got To %q, Except %q)", o.rooms, o.except))
	}
	pargs, err := encodeArgs("args", args, false)
	if err != nil {
		return Result{}, err
	}
	ctx, cancel := o.c.callContext(ctx)
	defer cancel()
	resp, err := o.c.rpc.ServerSideEmit(ctx, &emitgatev1.ServerSideEmitRequest{
		Target:         o.c.target,
		Namespace:      o.namespace,
		Event:          event,
		Args:           pargs,
		IdempotencyKey: o.idemKey,
	})
	if err != nil {
		return Result{}, fromCall(ctx, err)
	}
	return result(resp), nil
}

// response is what every unary response of the API reports.
type response interface {
	GetReceivers() uint64
	GetDuplicate() bool
	GetStreamId() string
}

func result(r response) Result {
	return Result{Receivers: r.GetReceivers(), Duplicate: r.GetDuplicate(), StreamID: r.GetStreamId()}
}

// String describes the selection, e.g. `Of("/admin").To("a").Except("b")`.
func (o Operator) String() string {
	s := fmt.Sprintf("Of(%q)", normalizeNamespace(o.namespace))
	if len(o.rooms) > 0 {
		s += fmt.Sprintf(".To(%q)", o.rooms)
	}
	if len(o.except) > 0 {
		s += fmt.Sprintf(".Except(%q)", o.except)
	}
	if o.volatile {
		s += ".Volatile()"
	}
	if o.compress != nil {
		s += fmt.Sprintf(".Compress(%t)", *o.compress)
	}
	if o.idemKey != "" {
		s += fmt.Sprintf(".IdempotencyKey(%q)", o.idemKey)
	}
	return s
}

func normalizeNamespace(ns string) string {
	if ns == "" || ns[0] != '/' {
		return "/" + ns
	}
	return ns
}
