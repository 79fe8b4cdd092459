package emitgate

import (
	"bytes"
	"encoding/json"
	"math"
	"testing"
	"time"
)

// The fast path must write what the general path (encoding/json) writes.
func TestFastJSONMatchesEncodingJSON(t *testing.T) {
	type base struct {
		ID   uint16 `json:"id"`
		Note string `json:"note,omitempty"`
	}
	type label string
	type event struct {
		base
		Kind    label   `json:"kind"`
		Title   string  `json:"title"`
		Unread  int     `json:"unread,omitempty"`
		Score   float64 `json:"score"`
		OK      bool    `json:"ok"`
		Inner   base    `json:"inner"`
		Renamed string  `json:"<ü>"`
		Untag   int8
		private int
	}
	values := []any{
		event{base: base{ID: 7}, Kind: "k", Title: "t \"q\"", Score: 2.5, OK: true, Inner: base{1, "n"}, Untag: -3, private: 1},
		event{}, base{ID: 65535, Note: "\xff"},
		nil, true, false, "", "plain", "quote \" backslash \\ slash /",
		"controls \x00\x01\x08\x0c\n\r\t\x1f\x7f", "html <a href='x'>&amp;</a>",
		"unicode é 日本 🌍", "bad utf-8 \xff\xfe end", "line sep \u2028 para \u2029",
		0.0, math.Copysign(0, -1), 1.0, -1.5, 3.14159, 1e-7, 1.5e-7, 1e20, 1e21, 123456789012.5,
		math.MaxFloat64, math.SmallestNonzeroFloat64, float64(maxSafeInteger),
		1042.0, -5.0, 1e15, -float64(maxSafeInteger), float64(maxSafeInteger) + 2, 1e16 + 1,
		0, -7, int64(maxSafeInteger), int64(-maxSafeInteger), int32(math.MinInt32), uint32(math.MaxUint32),
		uint64(maxSafeInteger),
		map[string]any{}, map[string]any{"b": 1, "a": []any{"x", 2.5, nil, map[string]any{"z": true, "y": "é"}}},
		map[string]any{"\xff": 1, "é": "k", "A": 0}, []any{}, []any{[]any{[]any{}}},
		[]string{"a", "b\n"}, []string{}, map[string]string{"k2": "v2", "k1": "v1"},
		map[string]any(nil), []any(nil), []string(nil), map[string]string(nil),
	}
	for _, v := range values {
		got, ok := fastJSONText(v)
		if !ok {
			t.Errorf("%#v took the general path", v)
			continue
		}
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(v); err != nil {
			t.Fatal(err)
		}
		if want := string(bytes.TrimSuffix(buf.Bytes(), []byte("\n"))); got != want {
			t.Errorf("%#v:\n got %s\nwant %s", v, got, want)
		}
	}
}

// Values the fast path leaves to the general path: MessagePack, errors,
// and types it does not know.
func TestFastJSONLeavesTheRestToTheGeneralPath(t *testing.T) {
	deep := any("x")
	for i := 0; i <= maxDepth+1; i++ {
		deep = []any{deep}
	}
	type named string
	for _, v := range []any{
		int64(maxSafeInteger + 1), -maxSafeInteger - 1, uint64(maxSafeInteger + 1), math.NaN(), math.Inf(-1),
		[]byte{1}, map[string]any{"b": []byte{1}}, []any{1, make(chan int)}, float32(1.5),
		json.Number("1"), named("x"), map[int]string{1: "a"}, deep,
		struct{ P *int }{}, struct{ T time.Time }{}, struct{ F float32 }{}, struct{ A any }{},
		struct {
			N int64 `json:"n,string"`
		}{}, struct{ N int64 }{maxSafeInteger + 1}, struct{ B []byte }{},
	} {
		if text, ok := fastJSONText(v); ok {
			t.Errorf("%T took the fast path: %s", v, text)
		}
	}
}
