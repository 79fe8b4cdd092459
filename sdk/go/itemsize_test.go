package emitgate

import (
	"bytes"
	"context"
	"testing"

	"google.golang.org/protobuf/proto"

	emitgatev1 "github.com/emitgate/emitgate/sdk/go/gen/emitgate/v1"
)

// The Publisher's hand-encoded emit must be the bytes protobuf gives for
// the item emitRequest builds, in a request of its own.
func TestJSONEmitEntryMatchesEmitRequest(t *testing.T) {
	c := &Client{target: "eu"}
	long := string(make([]byte, 300))
	ops := []Operator{
		c.root().To("r"),
		c.root().Of("/n").To("a", "b").Except("c").Compress(true).IdempotencyKey("k"),
		c.root().Of("/admin").To("a", long).Except("b").Volatile().Compress(false).IdempotencyKey(long),
		c.root().To("x").Volatile(),
		(&Client{}).root().Of("").To("r"),
	}
	args := []any{map[string]any{"x": []any{1, "y"}}, long, nil, map[string]any{long: long}}
	for i, op := range ops {
		for j, arg := range args {
			for _, event := range []string{"ev", ""} {
				req, err := op.emitRequest("", event, []any{arg})
				if err != nil {
					t.Fatal(err)
				}
				want, err := proto.Marshal(&emitgatev1.BatchEmitRequest{Items: []*emitgatev1.BatchItem{
					{Op: &emitgatev1.BatchItem_Emit{Emit: req}},
				}})
				if err != nil {
					t.Fatal(err)
				}
				text, ok := fastJSONText(arg)
				if !ok {
					t.Fatal("no fast path")
				}
				got := appendJSONEmitEntry(nil, op, event, []byte(text))
				if !bytes.Equal(got, want) {
					t.Errorf("op %d, arg %d, event %q:\n got %x\nwant %x", i, j, event, got, want)
				}
			}
		}
	}
}

// A Publisher queues exactly the encoded item, and counts its bytes.
func TestPublisherQueuesTheEncodedItem(t *testing.T) {
	c := &Client{target: "eu"}
	op := c.root().Of("/n").To("a", "b").Except("c").Compress(true).IdempotencyKey("k")
	arg := map[string]any{"x": []any{1, "y"}}
	req, err := op.emitRequest("", "ev", []any{arg})
	if err != nil {
		t.Fatal(err)
	}
	bcast, err := c.root().Except("z").broadcastRequest("", "ev", []any{1, "two"})
	if err != nil {
		t.Fatal(err)
	}
	want, err := proto.Marshal(&emitgatev1.BatchEmitRequest{Items: []*emitgatev1.BatchItem{
		{Op: &emitgatev1.BatchItem_Emit{Emit: req}},
		{Op: &emitgatev1.BatchItem_Broadcast{Broadcast: bcast}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	// A Publisher that is never started: publish only queues the item.
	p := &Publisher{c: c, cfg: publisherConfig{maxItems: 10, maxBytes: 1 << 20, linger: 1 << 62, buffer: 10},
		unfinished: map[*pubBatch]struct{}{}, wake: make(chan struct{}, 1)}
	c.batchSize.Store(10)
	PublishOperator{p: p, op: op}.Emit(context.Background(), "ev", arg)
	PublishOperator{p: p, op: c.root().Except("z")}.Broadcast(context.Background(), "ev", 1, "two")
	b := p.open
	if !bytes.Equal(b.body, want) {
		t.Fatalf("got %x\nwant %x", b.body, want)
	}
	if len(b.ends) != 2 || b.ends[1] != len(want) || !b.keyed[0] || b.keyed[1] {
		t.Fatalf("ends %v keyed %v", b.ends, b.keyed)
	}
}
