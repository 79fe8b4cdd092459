// Package emitgate sends Socket.IO events from Go through an emitgate
// gateway, which publishes them into the Redis instance a Socket.IO cluster
// shares through @socket.io/redis-adapter. The browsers connected to any
// server of the cluster receive them, as if the servers had emitted them.
//
// The API follows the JavaScript emitter (@socket.io/redis-emitter):
//
//	client, err := emitgate.New(ctx, "localhost:50051", emitgate.WithInsecure())
//	if err != nil {
//		return err
//	}
//	defer client.Close()
//
//	// To the sockets in room "user:42" of namespace "/chat", except the
//	// muted ones:
//	_, err = client.Of("/chat").To("user:42").Except("muted").Emit(ctx, "message", "hi", 7)
//
//	// To every socket of the default namespace "/":
//	_, err = client.Broadcast(ctx, "announcement", map[string]any{"text": "hello"})
//
// Operators (Of, To, In, Except, Volatile, Compress) return new immutable
// values, so a selection can be kept and reused. Emit needs at least one
// room; reaching a whole namespace is an explicit Broadcast. SocketsJoin,
// SocketsLeave and DisconnectSockets act on the selected sockets, and
// ServerSideEmit reaches the servers' own event handlers.
//
// # Arguments
//
// Every argument of an event reaches the clients as one value:
//
//   - []byte becomes binary data (a Buffer in Node, an ArrayBuffer in
//     browsers);
//   - a value with []byte anywhere inside (say a struct field), or with an
//     integer outside ±2^53, is sent as MessagePack, so the bytes stay
//     binary and the integer is not rounded by JSON on the way;
//   - json.RawMessage is sent as the JSON text it holds, and RawMsgpack as
//     the MessagePack value it holds;
//   - any other value is encoded as encoding/json encodes it (struct tags,
//     MarshalJSON and MarshalText apply, in the MessagePack case too).
//
// A value that cannot be encoded (a channel, a function, NaN) makes the
// call fail before anything is sent, with an InvalidArgument *Error whose
// violation names the argument ("args[1]").
//
// # Batches
//
// Client.Batch collects emits and broadcasts and sends them as BatchEmit
// requests, split at the gateway's item limit, with one result per item.
//
// Client.NewPublisher returns a Publisher for pipelines that produce events
// one at a time: it batches them in the background (1000 items, 4 MiB,
// 5 ms linger, 4 calls in flight, 100 000 events buffered by default) and
// returns a *PublishResult per event at once; Flush and Close deliver
// everything buffered. Whole calls that fail as Unavailable are retried
// only for batches whose events all carry idempotency keys.
//
// # TLS, API keys and retries
//
// New uses TLS by default: WithTLSFiles trusts a private CA and presents a
// client certificate for mutual TLS, WithTLS takes a tls.Config. WithAPIKey
// sends "authorization: Bearer <key>" on every call. A gateway with keys
// answers Unauthenticated without a valid key, PermissionDenied for a
// target, namespace or RPC out of the key's scope, and ResourceExhausted
// with Error.RetryAfter over the key's rate.
//
// Operator.IdempotencyKey makes a call publish at most once per key within
// the gateway's window: retry with the same key after a timeout, and a
// repeat returns the first result with Result.Duplicate set.
//
// # Errors
//
// Every error is an *Error (see errors.As) carrying the gRPC code, the
// message, for InvalidArgument the invalid fields decoded from
// google.rpc.BadRequest, and for ResourceExhausted the retry delay of
// google.rpc.RetryInfo. IsInvalidArgument, IsNotFound, IsUnavailable and
// the other helpers test the code.
package emitgate
