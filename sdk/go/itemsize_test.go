package emitgate

import (
	"context"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	emitgatev1 "github.com/emitgate/emitgate/sdk/go/gen/emitgate/v1"
)

// itemSize must be the item's share of the encoded request exactly, so
// that WithMaxBytes bounds what is sent.
func TestItemSizeIsTheEncodedSize(t *testing.T) {
	c := &Client{target: "eu"}
	long := string(make([]byte, 300))
	ops := []struct {
		op   Operator
		emit bool
		args []any
	}{
		{c.root().To("r"), true, nil},
		{c.root().Of("/admin").To("a", long).Except("b").Volatile().Compress(false).IdempotencyKey("k"), true,
			[]any{map[string]any{"x": 1}, []byte{1, 2}, RawMsgpack{0x90}, structpb.NewStringValue("v"), long}},
		{c.root().Of("/n"), false, []any{1}},
		{c.root().Except("x").Compress(true).IdempotencyKey(long), false, []any{[]byte(long)}},
	}
	for i, o := range ops {
		var item *emitgatev1.BatchItem
		if o.emit {
			req, err := o.op.emitRequest("", "ev", o.args)
			if err != nil {
				t.Fatal(err)
			}
			item = &emitgatev1.BatchItem{Op: &emitgatev1.BatchItem_Emit{Emit: req}}
		} else {
			req, err := o.op.broadcastRequest("", "ev", o.args)
			if err != nil {
				t.Fatal(err)
			}
			item = &emitgatev1.BatchItem{Op: &emitgatev1.BatchItem_Broadcast{Broadcast: req}}
		}
		want := proto.Size(&emitgatev1.BatchEmitRequest{Items: []*emitgatev1.BatchItem{item}})
		if got := itemSize(item); got != want {
			t.Errorf("item %d: itemSize = %d, encoded %d", i, got, want)
		}
	}
}

// The one-allocation item of Publisher emits must be the item
// emitRequest builds.
func TestJSONEmitItemMatchesEmitRequest(t *testing.T) {
	c := &Client{target: "eu"}
	op := c.root().Of("/n").To("a", "b").Except("c").Compress(true).IdempotencyKey("k")
	arg := map[string]any{"x": []any{1, "y"}}
	req, err := op.emitRequest("", "ev", []any{arg})
	if err != nil {
		t.Fatal(err)
	}
	want := &emitgatev1.BatchItem{Op: &emitgatev1.BatchItem_Emit{Emit: req}}
	text, ok := fastJSONText(arg)
	if !ok {
		t.Fatal("no fast path")
	}
	// A Publisher that is never started: publish only queues the item.
	p := &Publisher{c: c, cfg: publisherConfig{maxItems: 10, maxBytes: 1 << 20, linger: 1 << 62, buffer: 10},
		unfinished: map[*pubBatch]struct{}{}, wake: make(chan struct{}, 1)}
	c.batchSize.Store(10)
	PublishOperator{p: p, op: op}.emitJSON(context.Background(), "ev", text)
	if got := p.open.items[0]; !proto.Equal(got, want) {
		t.Fatalf("got %v\nwant %v", got, want)
	}
}
