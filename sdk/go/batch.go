package emitgate

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"

	"google.golang.org/grpc/codes"

	emitgatev1 "github.com/emitgate/emitgate/sdk/go/gen/emitgate/v1"
)

// Batch collects emits and broadcasts and sends them with Send, in as few
// BatchEmit requests as the gateway's item limit allows. Items are
// published in the order they were added. A Batch is not safe for
// concurrent use; build it in one goroutine, then Send it.
//
//	b := client.Batch()
//	b.Emit(client.To("user:1"), "notify", "hello")
//	b.Broadcast(client.Of("/admin"), "stats", stats)
//	res, err := b.Send(ctx)
type Batch struct {
	c          *Client
	items      []*emitgatev1.BatchItem
	violations []FieldViolation
	cause      error
	atomic     bool
}

// BatchResult reports a sent Batch.
type BatchResult struct {
	// Items holds one result per added item, in order.
	Items []ItemResult
	// Published is how many items were published.
	Published int
	// Duplicates is how many items were not published again because their
	// idempotency key was already used (ItemResult.Duplicate).
	Duplicates int
	// Failed is how many items were refused or not sent (ItemResult.Err).
	// Published + Duplicates + Failed is the number of items.
	Failed int
	// Receivers is the sum of the items' Receivers.
	Receivers uint64
}

// ItemResult is the outcome of one Batch item.
type ItemResult struct {
	// Receivers is how many Socket.IO server subscriptions received the
	// item's packet.
	Receivers uint64
	// Duplicate is true when the item's idempotency key (see
	// Operator.IdempotencyKey) was already used within the gateway's
	// window: the item was not published again, and Receivers and StreamID
	// repeat the first call's result. Err is nil then.
	Duplicate bool
	// StreamID is the id of the Redis stream entry the item added, for a
	// target whose dialect writes to a stream; empty otherwise.
	StreamID string
	// Err is nil when the item was published (or was a duplicate), an
	// *Error otherwise: for an invalid item, code InvalidArgument with
	// violations whose paths count items from the start of the Batch
	// ("items[3].emit.event"); PermissionDenied for an item whose
	// namespace or target the API key may not use.
	Err error
}

// Batch starts an empty Batch that is sent through c.
func (c *Client) Batch() *Batch { return &Batch{c: c} }

// Atomic makes the batch all-or-nothing: when an item is invalid (or out
// of the API key's scope, PermissionDenied) the gateway refuses the whole
// request and nothing is published. An atomic batch is sent as one
// request, never split; a batch above the gateway's item limit then fails
// with InvalidArgument (field "items").
func (b *Batch) Atomic() *Batch {
	b.atomic = true
	return b
}

// Len returns the number of items added so far.
func (b *Batch) Len() int { return len(b.items) }

// Emit adds an emit of event to the rooms that op selects (op must have at
// least one room), with op's namespace, exceptions, flags and target.
// Arguments are encoded as for Operator.Emit. Errors in the item (no room,
// an argument that cannot be encoded) are reported by Send, which then
// sends nothing.
func (b *Batch) Emit(op Operator, event string, args ...any) *Batch {
	field := fmt.Sprintf("items[%d].emit.", len(b.items))
	req, err := op.emitRequest(field, event, args)
	if b.record(err) {
		req = &emitgatev1.EmitRequest{}
	}
	b.items = append(b.items, &emitgatev1.BatchItem{Op: &emitgatev1.BatchItem_Emit{Emit: req}})
	return b
}

// Broadcast adds a broadcast of event to the whole namespace of op, minus
// its Except rooms (op must not have rooms), with op's flags and target.
// Arguments are encoded as for Operator.Emit. Errors in the item are
// reported by Send, which then sends nothing.
func (b *Batch) Broadcast(op Operator, event string, args ...any) *Batch {
	field := fmt.Sprintf("items[%d].broadcast.", len(b.items))
	req, err := op.broadcastRequest(field, event, args)
	if b.record(err) {
		req = &emitgatev1.BroadcastRequest{}
	}
	b.items = append(b.items, &emitgatev1.BatchItem{Op: &emitgatev1.BatchItem_Broadcast{Broadcast: req}})
	return b
}

// record keeps the violations of a refused item; it reports whether err
// was not nil.
func (b *Batch) record(err error) bool {
	if err == nil {
		return false
	}
	if b.cause == nil {
		b.cause = err
	}
	if e, ok := err.(*Error); ok {
		b.violations = append(b.violations, e.Violations...)
	}
	return true
}

// Send publishes the batch. Items the gateway finds invalid, or out of the
// API key's scope, are reported in their ItemResult while the others are
// published (unless Atomic).
//
// A batch larger than the gateway's item limit (WithMaxBatchItems) is split
// into several requests, sent one after the other. If the gateway refuses
// a request as too large (which publishes nothing), Send retries with the
// limit the gateway states, or half the size, and the Client remembers the
// smaller size for later batches.
//
// Send returns an *Error, and sends nothing, when an item was refused when
// it was added. When a request fails as a whole (the gateway or Redis is
// unavailable, the context ends, …) Send stops and returns that error
// together with the results so far: the items of the earlier requests were
// published, and every later item has Err set to the error.
func (b *Batch) Send(ctx context.Context) (BatchResult, error) {
	if b.cause != nil {
		return BatchResult{}, localError(b.cause, "the batch has invalid items; nothing was sent", b.violations...)
	}
	res := BatchResult{Items: make([]ItemResult, len(b.items))}
	for off := 0; off < len(b.items); {
		size := len(b.items) - off
		if !b.atomic {
			size = min(size, int(b.c.batchSize.Load()))
		}
		chunk := b.items[off : off+size]
		resp, err := b.sendChunk(ctx, chunk)
		if err != nil {
			if limit, ok := tooManyItems(err); ok && !b.atomic && len(chunk) > 1 {
				b.shrink(min(limit, len(chunk)/2))
				continue
			}
			for i := off; i < len(b.items); i++ {
				res.Items[i].Err = err
			}
			res.Failed += len(b.items) - off
			return res, err
		}
		for i, r := range resp.GetResults() {
			item := &res.Items[off+i]
			item.Receivers = r.GetReceivers()
			item.Duplicate = r.GetDuplicate()
			item.StreamID = r.GetStreamId()
			res.Receivers += r.GetReceivers()
			if codes.Code(r.GetCode()) == codes.OK {
				if item.Duplicate {
					res.Duplicates++
				} else {
					res.Published++
				}
				continue
			}
			res.Failed++
			e := &Error{Code: codes.Code(r.GetCode()), Message: r.GetMessage()}
			for _, v := range r.GetViolations() {
				e.Violations = append(e.Violations, FieldViolation{
					Field:       shiftItemIndex(v.GetField(), off),
					Description: v.GetDescription(),
				})
			}
			item.Err = e
		}
		off += len(chunk)
	}
	return res, nil
}

func (b *Batch) sendChunk(ctx context.Context, chunk []*emitgatev1.BatchItem) (*emitgatev1.BatchEmitResponse, error) {
	ctx, cancel := b.c.callContext(ctx)
	defer cancel()
	resp, err := b.c.rpc.BatchEmit(ctx, &emitgatev1.BatchEmitRequest{Items: chunk, Atomic: b.atomic})
	if err != nil {
		return nil, fromCall(ctx, err)
	}
	if n := len(resp.GetResults()); n != len(chunk) {
		return nil, &Error{Code: codes.Internal, Message: fmt.Sprintf("the gateway answered %d results for %d items", n, len(chunk))}
	}
	return resp, nil
}

// shrink lowers the client's chunk size to at most n.
func (b *Batch) shrink(n int) {
	for {
		cur := b.c.batchSize.Load()
		if int64(n) >= cur || b.c.batchSize.CompareAndSwap(cur, int64(n)) {
			return
		}
	}
}

// tooManyItems reports whether the gateway refused a BatchEmit request
// because of its number of items, and the limit it sent as data
// (Error.Limits["max_batch_items"]); the limit is larger than any request
// size when the refusal of "items" names none.
func tooManyItems(err error) (limit int, ok bool) {
	e, isErr := err.(*Error)
	if !isErr || e.Code != codes.InvalidArgument {
		return 0, false
	}
	if n, found := e.Limits["max_batch_items"]; found && n >= 1 {
		return int(min(n, math.MaxInt)), true
	}
	for _, v := range e.Violations {
		if v.Field == "items" {
			return math.MaxInt, true
		}
	}
	return 0, false
}

// shiftItemIndex turns a path of a request item ("items[3].emit.event")
// into the path of the batch item, off items further.
func shiftItemIndex(path string, off int) string {
	rest, ok := strings.CutPrefix(path, "items[")
	if !ok || off == 0 {
		return path
	}
	end := strings.IndexByte(rest, ']')
	if end < 0 {
		return path
	}
	n, err := strconv.Atoi(rest[:end])
	if err != nil {
		return path
	}
	return "items[" + strconv.Itoa(n+off) + rest[end:]
}
