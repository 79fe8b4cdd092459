package emitgate

import (
	"encoding/json"
	"fmt"
	"testing"

	"google.golang.org/protobuf/proto"

	emitgatev1 "github.com/emitgate/emitgate/sdk/go/gen/emitgate/v1"
)

// The per-event work of publishing, without the network: the benchmark
// workload's argument (a ~100-byte JSON object) to 1–3 rooms. The end to
// end measurement is internal/bench.

const benchPayload = `{"id":1042,"kind":"comment","title":"New reply to your post","from":"alice","unread":3,"url":"/p/88"}`

type benchNotification struct {
	ID     int    `json:"id"`
	Kind   string `json:"kind"`
	Title  string `json:"title"`
	From   string `json:"from"`
	Unread int    `json:"unread"`
	URL    string `json:"url"`
}

func benchArgs(b *testing.B) map[string]any {
	b.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(benchPayload), &m); err != nil {
		b.Fatal(err)
	}
	return m
}

func BenchmarkEncodeArgMap(b *testing.B) {
	m := benchArgs(b)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := encodeArg(m, true); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeArgStruct(b *testing.B) {
	var s benchNotification
	if err := json.Unmarshal([]byte(benchPayload), &s); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := encodeArg(s, true); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPublishItem is what Publisher.To(...).Emit does per event
// before the batch takes the item: the argument's JSON and the encoded
// items entry, appended to a reused buffer.
func BenchmarkPublishItem(b *testing.B) {
	m := benchArgs(b)
	c := &Client{}
	ops := []Operator{c.root().To("user:1"), c.root().To("user:2", "team:2"), c.root().To("user:3", "team:3", "org:3")}
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		text, ok := appendFastJSON(buf[:0], m, 0)
		if !ok {
			b.Fatal("no fast path")
		}
		buf = appendJSONEmitEntry(text, ops[i%3], "notification", text)
	}
}

// BenchmarkPublishItemMessage is the same event built as a message and
// sized by protobuf, the path of the uncommon events.
func BenchmarkPublishItemMessage(b *testing.B) {
	m := benchArgs(b)
	c := &Client{}
	rooms := [][]string{{"user:1"}, {"user:2", "team:2"}, {"user:3", "team:3", "org:3"}}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		req, err := c.root().To(rooms[i%3]...).emitRequest("", "notification", []any{m})
		if err != nil {
			b.Fatal(err)
		}
		item := &emitgatev1.BatchItem{Op: &emitgatev1.BatchItem_Emit{Emit: req}}
		_ = proto.Size(item)
	}
}

// BenchmarkMarshalBatch is the encoding of one full request of messages,
// per item: what the Publisher no longer does.
func BenchmarkMarshalBatch(b *testing.B) {
	m := benchArgs(b)
	c := &Client{}
	req := &emitgatev1.BatchEmitRequest{}
	for i := 0; i < DefaultPublisherMaxItems; i++ {
		r, err := c.root().To(fmt.Sprintf("user:%d", i)).emitRequest("", "notification", []any{m})
		if err != nil {
			b.Fatal(err)
		}
		req.Items = append(req.Items, &emitgatev1.BatchItem{Op: &emitgatev1.BatchItem_Emit{Emit: r}})
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := proto.Marshal(req); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/DefaultPublisherMaxItems, "ns/item")
}
