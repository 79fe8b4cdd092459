package emitgate

// The calls that wait for the Socket.IO servers' answers: EmitWithAck,
// FetchSockets, AllRooms, ServerCount and ServerSideEmitWithAck. The
// gateway sends their requests like one more node of the cluster and
// gathers the answers within a timeout. A timeout is not an error: every
// result says how many servers answered, how many were expected and
// whether everything arrived (Complete).

import (
	"bytes"
	"context"
	"errors"
	"math"
	"time"

	"github.com/vmihailenco/msgpack/v5"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/structpb"

	emitgatev1 "github.com/emitgate/emitgate/sdk/go/gen/emitgate/v1"
)

// defaultWait is the gateway's answer timeout when a call sets none
// (timeout_ms = 0).
const defaultWait = 5 * time.Second

// deadlineMargin is the time a waiting call's deadline gets beyond its
// answer timeout, so that the gateway's "timed out, here is what arrived"
// response comes back before the deadline cancels the call.
const deadlineMargin = 2 * time.Second

// maxExactFloat is the largest integer a JSON number (float64) holds
// exactly: integral numbers up to it are decoded as int64.
const maxExactFloat = 1<<53 - 1

// AckResult is what came back for EmitWithAck.
type AckResult struct {
	// Sockets is how many clients received the event: the sum of the
	// counts the answering servers reported.
	Sockets int
	// Acks holds each client's ack reply (the first argument it passed to
	// its callback), in arrival order, decoded as described at
	// Operator.EmitWithAck.
	Acks []any
	// Servers is how many servers reported their client count.
	Servers int
	// ServersExpected is how many servers were expected to answer.
	ServersExpected int
	// Complete is true when every expected server answered and every
	// counted client acked before the timeout. Treat false as "some
	// clients may not have received or acknowledged the event".
	Complete bool
}

// Handshake is the connection details a server kept for a socket. It
// never holds auth, nor the cookie and authorization headers.
type Handshake struct {
	Headers map[string]string // by lower-case name; repeated headers joined with ", "
	Time    string            // the server's date string of the connection
	Address string            // the client's remote address
	XDomain bool
	Secure  bool
	Issued  int64 // when the connection was made, in ms since the Unix epoch
	URL     string
	Query   map[string]string
}

// RemoteSocket is one socket a server reported, like the JavaScript
// RemoteSocket of fetchSockets().
type RemoteSocket struct {
	ID        string
	Rooms     []string // its own id included
	Data      any      // socket.data, decoded like acks
	Handshake Handshake
}

// FetchSocketsResult is what came back for FetchSockets.
type FetchSocketsResult struct {
	Sockets         []RemoteSocket // in the order the servers' answers arrived
	Servers         int            // servers that answered
	ServersExpected int
	Complete        bool // every expected server answered before the timeout
	// Truncated is true when the servers returned more sockets than the
	// gateway's maximum: Sockets holds the first ones; narrow the rooms.
	Truncated bool
}

// AllRoomsResult is what came back for AllRooms.
type AllRoomsResult struct {
	Rooms           []string // sorted, without duplicates; socket ids are rooms too
	Servers         int
	ServersExpected int
	Complete        bool
	Truncated       bool // more rooms than the gateway's maximum
}

// ServerReply is one server's answer to ServerSideEmitWithAck.
type ServerReply struct {
	Reply  any    // the first argument the handler passed to the callback, decoded
	Server string // the server's adapter uid where the dialect tells it, else ""
}

// ServerAckResult is what came back for ServerSideEmitWithAck.
type ServerAckResult struct {
	Replies         []ServerReply // in arrival order
	ServersExpected int
	Complete        bool // every expected server replied before the timeout
}

// Timeout sets how long the waiting calls (EmitWithAck, FetchSockets,
// AllRooms, ServerSideEmitWithAck) wait for the servers' answers, like the
// JavaScript timeout(). Without it the gateway waits its default (5 s);
// the gateway refuses a timeout above its maximum (InvalidArgument). It is
// rounded up to whole milliseconds; zero or less fails the waiting calls
// before anything is sent.
func (o Operator) Timeout(d time.Duration) Operator {
	o.wait = d
	if d <= 0 {
		o.wait = -1
	}
	return o
}

// waitMs returns the request's timeout_ms, or a local error.
func (o Operator) waitMs() (uint32, error) {
	if o.wait < 0 {
		return 0, localError(nil, "Timeout must be positive", violation("timeout_ms", "the timeout must be positive"))
	}
	ms := (o.wait + time.Millisecond - 1) / time.Millisecond
	return uint32(min(ms, math.MaxUint32)), nil
}

// waitContext is callContext with a deadline long enough for the wait:
// the client's timeout, stretched to the answer timeout plus a margin.
func (o Operator) waitContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if o.c.timeout <= 0 {
		return o.c.callContext(ctx)
	}
	wait := o.wait
	if wait <= 0 {
		wait = defaultWait
	}
	limit := max(o.c.timeout, wait+deadlineMargin)
	cancel := func() {}
	if d, ok := ctx.Deadline(); !ok || time.Until(d) > limit {
		ctx, cancel = context.WithTimeout(ctx, limit)
	}
	if o.c.apiKey != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+o.c.apiKey)
	}
	return ctx, cancel
}

// EmitWithAck sends an event with an ack callback to the sockets in the
// selected rooms (every socket of the namespace without To), like
// io.timeout(t).to(rooms).emitWithAck(event, …), and gathers the clients'
// replies. Arguments are encoded as for Emit.
//
// The replies are decoded to Go values: JSON values as nil, bool, string,
// int64 (integral numbers within ±(2^53-1)), float64, []any and
// map[string]any; binary as []byte; exact MessagePack replies (nested
// binary, 64-bit integers, timestamps) with []byte, int64 (uint64 above
// MaxInt64) and time.Time inside.
//
// A timeout is not an error: the result carries what arrived, with
// Complete false.
func (o Operator) EmitWithAck(ctx context.Context, event string, args ...any) (AckResult, error) {
	wait, err := o.waitMs()
	if err != nil {
		return AckResult{}, err
	}
	req := &emitgatev1.EmitWithAckRequest{TimeoutMs: wait}
	if len(o.rooms) > 0 {
		emit, err := o.emitRequest("emit.", event, args)
		if err != nil {
			return AckResult{}, err
		}
		req.Op = &emitgatev1.EmitWithAckRequest_Emit{Emit: emit}
	} else {
		bc, err := o.broadcastRequest("broadcast.", event, args)
		if err != nil {
			return AckResult{}, err
		}
		req.Op = &emitgatev1.EmitWithAckRequest_Broadcast{Broadcast: bc}
	}
	ctx, cancel := o.waitContext(ctx)
	defer cancel()
	resp, err := o.c.rpc.EmitWithAck(ctx, req)
	if err != nil {
		return AckResult{}, fromCall(ctx, err)
	}
	acks := make([]any, len(resp.GetAcks()))
	for i, a := range resp.GetAcks() {
		if acks[i], err = decodeReply(a); err != nil {
			return AckResult{}, err
		}
	}
	return AckResult{
		Sockets:         int(resp.GetSockets()),
		Acks:            acks,
		Servers:         int(resp.GetServers()),
		ServersExpected: int(resp.GetServersExpected()),
		Complete:        resp.GetComplete(),
	}, nil
}

// FetchSockets returns the selected sockets: those in the To rooms (every
// socket of the namespace without To), minus the Except rooms, like
// fetchSockets(). Their Data is decoded like EmitWithAck's replies.
func (o Operator) FetchSockets(ctx context.Context) (FetchSocketsResult, error) {
	wait, err := o.waitMs()
	if err != nil {
		return FetchSocketsResult{}, err
	}
	ctx, cancel := o.waitContext(ctx)
	defer cancel()
	resp, err := o.c.rpc.FetchSockets(ctx, &emitgatev1.FetchSocketsRequest{
		Target:      o.c.target,
		Namespace:   o.namespace,
		Rooms:       o.rooms,
		ExceptRooms: o.except,
		TimeoutMs:   wait,
	})
	if err != nil {
		return FetchSocketsResult{}, fromCall(ctx, err)
	}
	out := FetchSocketsResult{
		Sockets:         make([]RemoteSocket, 0, len(resp.GetSockets())),
		Servers:         int(resp.GetServers()),
		ServersExpected: int(resp.GetServersExpected()),
		Complete:        resp.GetComplete(),
		Truncated:       resp.GetTruncated(),
	}
	for _, s := range resp.GetSockets() {
		var data any
		if raw := s.GetDataMsgpack(); len(raw) > 0 {
			if data, err = decodeReplyMsgpack(raw); err != nil {
				return FetchSocketsResult{}, err
			}
		} else if s.GetData() != nil {
			data = decodeReplyValue(s.GetData())
		}
		h := s.GetHandshake()
		out.Sockets = append(out.Sockets, RemoteSocket{
			ID:    s.GetId(),
			Rooms: s.GetRooms(),
			Data:  data,
			Handshake: Handshake{
				Headers: h.GetHeaders(),
				Time:    h.GetTime(),
				Address: h.GetAddress(),
				XDomain: h.GetXdomain(),
				Secure:  h.GetSecure(),
				Issued:  h.GetIssued(),
				URL:     h.GetUrl(),
				Query:   h.GetQuery(),
			},
		})
	}
	return out, nil
}

// AllRooms returns the rooms of the namespace over every server (To and
// Except do not apply).
func (o Operator) AllRooms(ctx context.Context) (AllRoomsResult, error) {
	wait, err := o.waitMs()
	if err != nil {
		return AllRoomsResult{}, err
	}
	ctx, cancel := o.waitContext(ctx)
	defer cancel()
	resp, err := o.c.rpc.AllRooms(ctx, &emitgatev1.AllRoomsRequest{
		Target:    o.c.target,
		Namespace: o.namespace,
		TimeoutMs: wait,
	})
	if err != nil {
		return AllRoomsResult{}, fromCall(ctx, err)
	}
	return AllRoomsResult{
		Rooms:           resp.GetRooms(),
		Servers:         int(resp.GetServers()),
		ServersExpected: int(resp.GetServersExpected()),
		Complete:        resp.GetComplete(),
		Truncated:       resp.GetTruncated(),
	}, nil
}

// ServerCount returns how many Socket.IO servers listen on the namespace,
// read from Redis without a round-trip to the servers.
func (o Operator) ServerCount(ctx context.Context) (int, error) {
	ctx, cancel := o.c.callContext(ctx)
	defer cancel()
	resp, err := o.c.rpc.ServerCount(ctx, &emitgatev1.ServerCountRequest{
		Target:    o.c.target,
		Namespace: o.namespace,
	})
	if err != nil {
		return 0, fromCall(ctx, err)
	}
	return int(resp.GetServers()), nil
}

// ServerSideEmitWithAck sends an event to the servers' io.of(namespace)
// .on(event, …) handlers with a callback, like serverSideEmitWithAck(),
// and gathers their replies (decoded like EmitWithAck's). A server whose
// handler never calls back is missing from the replies and makes the
// result incomplete at the timeout. Arguments and rooms are refused as
// for ServerSideEmit.
func (o Operator) ServerSideEmitWithAck(ctx context.Context, event string, args ...any) (ServerAckResult, error) {
	if len(o.rooms) != 0 || len(o.except) != 0 {
		f := "rooms"
		if len(o.rooms) == 0 {
			f = "except_rooms"
		}
		return ServerAckResult{}, localError(nil, "ServerSideEmitWithAck reaches servers, not rooms",
			violation(f, "ServerSideEmitWithAck takes no rooms (got To %q, Except %q)", o.rooms, o.except))
	}
	wait, err := o.waitMs()
	if err != nil {
		return ServerAckResult{}, err
	}
	pargs, err := encodeArgs("args", args, false)
	if err != nil {
		return ServerAckResult{}, err
	}
	ctx, cancel := o.waitContext(ctx)
	defer cancel()
	resp, err := o.c.rpc.ServerSideEmitWithAck(ctx, &emitgatev1.ServerSideEmitWithAckRequest{
		Target:    o.c.target,
		Namespace: o.namespace,
		Event:     event,
		Args:      pargs,
		TimeoutMs: wait,
	})
	if err != nil {
		return ServerAckResult{}, fromCall(ctx, err)
	}
	out := ServerAckResult{
		Replies:         make([]ServerReply, 0, len(resp.GetReplies())),
		ServersExpected: int(resp.GetServersExpected()),
		Complete:        resp.GetComplete(),
	}
	for _, r := range resp.GetReplies() {
		reply, err := decodeReply(r.GetReply())
		if err != nil {
			return ServerAckResult{}, err
		}
		out.Replies = append(out.Replies, ServerReply{Reply: reply, Server: r.GetServer()})
	}
	return out, nil
}

// Timeout is Of("/").Timeout(d).
func (c *Client) Timeout(d time.Duration) Operator { return c.root().Timeout(d) }

// EmitWithAck sends an event with an ack callback to every socket of "/".
func (c *Client) EmitWithAck(ctx context.Context, event string, args ...any) (AckResult, error) {
	return c.root().EmitWithAck(ctx, event, args...)
}

// FetchSockets returns every socket of "/".
func (c *Client) FetchSockets(ctx context.Context) (FetchSocketsResult, error) {
	return c.root().FetchSockets(ctx)
}

// AllRooms returns the rooms of "/".
func (c *Client) AllRooms(ctx context.Context) (AllRoomsResult, error) {
	return c.root().AllRooms(ctx)
}

// ServerCount returns how many Socket.IO servers listen on "/".
func (c *Client) ServerCount(ctx context.Context) (int, error) { return c.root().ServerCount(ctx) }

// ServerSideEmitWithAck sends an event to the servers' handlers on "/"
// with a callback.
func (c *Client) ServerSideEmitWithAck(ctx context.Context, event string, args ...any) (ServerAckResult, error) {
	return c.root().ServerSideEmitWithAck(ctx, event, args...)
}

// errUndecodable is the cause of a reply the client cannot decode.
var errUndecodable = errors.New("undecodable reply")

// decodeReply returns an ack or server reply as a Go value.
func decodeReply(a *emitgatev1.Argument) (any, error) {
	switch k := a.GetKind().(type) {
	case *emitgatev1.Argument_Value:
		return decodeReplyValue(k.Value), nil
	case *emitgatev1.Argument_Binary:
		return k.Binary, nil
	case *emitgatev1.Argument_Msgpack:
		return decodeReplyMsgpack(k.Msgpack)
	case *emitgatev1.Argument_Json:
		v, err := decodeReplyJSON(k.Json)
		if err != nil {
			return nil, &Error{Code: codes.Internal, Message: "the gateway sent a reply that is not JSON", cause: errors.Join(errUndecodable, err)}
		}
		return v, nil
	}
	return nil, nil
}

// decodeReplyJSON parses JSON text with the number rules of decodeReplyValue.
func decodeReplyJSON(text string) (any, error) {
	var v structpb.Value
	if err := v.UnmarshalJSON([]byte(text)); err != nil {
		return nil, err
	}
	return decodeReplyValue(&v), nil
}

// decodeReplyValue returns a google.protobuf.Value as plain Go values.
func decodeReplyValue(v *structpb.Value) any {
	switch k := v.GetKind().(type) {
	case *structpb.Value_NumberValue:
		n := k.NumberValue
		if n == math.Trunc(n) && math.Abs(n) <= maxExactFloat {
			return int64(n)
		}
		return n
	case *structpb.Value_StringValue:
		return k.StringValue
	case *structpb.Value_BoolValue:
		return k.BoolValue
	case *structpb.Value_StructValue:
		out := make(map[string]any, len(k.StructValue.GetFields()))
		for name, f := range k.StructValue.GetFields() {
			out[name] = decodeReplyValue(f)
		}
		return out
	case *structpb.Value_ListValue:
		out := make([]any, len(k.ListValue.GetValues()))
		for i, item := range k.ListValue.GetValues() {
			out[i] = decodeReplyValue(item)
		}
		return out
	}
	return nil
}

// decodeReplyMsgpack decodes one exact MessagePack value: integers as int64
// (uint64 above MaxInt64), binary as []byte, timestamps as time.Time, maps
// with string keys as map[string]any.
func decodeReplyMsgpack(raw []byte) (any, error) {
	dec := msgpack.NewDecoder(bytes.NewReader(raw))
	v, err := dec.DecodeInterfaceLoose()
	if err != nil {
		return nil, &Error{Code: codes.Internal, Message: "the gateway sent a reply that is not MessagePack", cause: errors.Join(errUndecodable, err)}
	}
	return normalizeInts(v), nil
}

// normalizeInts gives every integer one Go type whatever its MessagePack
// encoding (the decoder keeps the width of nested ones): int64, or uint64
// above MaxInt64; float32 becomes float64.
func normalizeInts(v any) any {
	switch x := v.(type) {
	case int8:
		return int64(x)
	case int16:
		return int64(x)
	case int32:
		return int64(x)
	case uint8:
		return int64(x)
	case uint16:
		return int64(x)
	case uint32:
		return int64(x)
	case float32:
		return float64(x)
	case uint64:
		if x <= math.MaxInt64 {
			return int64(x)
		}
		return x
	case []any:
		for i := range x {
			x[i] = normalizeInts(x[i])
		}
		return x
	case map[string]any:
		for k, item := range x {
			x[k] = normalizeInts(item)
		}
		return x
	case map[any]any:
		for k, item := range x {
			x[k] = normalizeInts(item)
		}
		return x
	}
	return v
}
