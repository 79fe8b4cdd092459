package emitgate

import (
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
