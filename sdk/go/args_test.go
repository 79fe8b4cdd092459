package emitgate

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"
	"google.golang.org/protobuf/types/known/structpb"

	emitgatev1 "github.com/emitgate/emitgate/sdk/go/gen/emitgate/v1"
)

// These tests cover how Go values become proto Arguments; the end-to-end
// tests check what Socket.IO clients receive for them.

func mustArg(t *testing.T, v any, allowMsgpack bool) *emitgatev1.Argument {
	t.Helper()
	a, err := encodeArg(v, allowMsgpack)
	if err != nil {
		t.Fatalf("encodeArg(%#v): %v", v, err)
	}
	return a
}

// decodeMsgpack decodes a msgpack argument into plain Go values.
func decodeMsgpack(t *testing.T, a *emitgatev1.Argument) any {
	t.Helper()
	mp, ok := a.GetKind().(*emitgatev1.Argument_Msgpack)
	if !ok {
		t.Fatalf("want a msgpack argument, got %T", a.GetKind())
	}
	dec := msgpack.NewDecoder(bytes.NewReader(mp.Msgpack))
	v, err := dec.DecodeInterface()
	if err != nil {
		t.Fatalf("decode msgpack %x: %v", mp.Msgpack, err)
	}
	if _, err := dec.DecodeInterface(); err == nil {
		t.Fatalf("msgpack %x holds more than one value", mp.Msgpack)
	}
	return v
}

func wantJSON(t *testing.T, a *emitgatev1.Argument, want string) {
	t.Helper()
	j, ok := a.GetKind().(*emitgatev1.Argument_Json)
	if !ok {
		t.Fatalf("want a json argument %s, got %T", want, a.GetKind())
	}
	if j.Json != want {
		t.Fatalf("json = %s, want %s", j.Json, want)
	}
}

func TestArgBytesAreBinary(t *testing.T) {
	a := mustArg(t, []byte{0, 1, 255}, true)
	if b := a.GetBinary(); !bytes.Equal(b, []byte{0, 1, 255}) {
		t.Fatalf("binary = %v (%T)", b, a.GetKind())
	}
	// A nil []byte is still binary (empty), not null.
	a = mustArg(t, []byte(nil), true)
	if _, ok := a.GetKind().(*emitgatev1.Argument_Binary); !ok || len(a.GetBinary()) != 0 {
		t.Fatalf("nil []byte: %v", a)
	}
	type blob []byte
	a = mustArg(t, blob("xy"), true)
	if string(a.GetBinary()) != "xy" {
		t.Fatalf("named byte slice: %v", a)
	}
}

func TestArgPlainValuesAreJSON(t *testing.T) {
	type msg struct {
		Text   string `json:"text"`
		Count  int    `json:"count,omitempty"`
		hidden int
	}
	for _, tc := range []struct {
		v    any
		want string
	}{
		{nil, "null"},
		{"héllo <b>", `"héllo <b>"`},
		{42, "42"},
		{int64(maxSafeInteger), "9007199254740992"},
		{-maxSafeInteger, "-9007199254740992"},
		{1.5, "1.5"},
		{true, "true"},
		{[]int{1, 2}, "[1,2]"},
		{map[string]any{"b": 1, "a": []string{"x"}}, `{"a":["x"],"b":1}`},
		{msg{Text: "hi"}, `{"text":"hi"}`},
		{&msg{Text: "hi", Count: 2}, `{"text":"hi","count":2}`},
		{json.RawMessage(` {"raw": [1, 2]} `), ` {"raw": [1, 2]} `},
		{time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC), `"2024-01-02T03:04:05Z"`},
	} {
		wantJSON(t, mustArg(t, tc.v, true), tc.want)
	}
}

func TestArgStructpbValue(t *testing.T) {
	v := structpb.NewStringValue("x")
	if mustArg(t, v, true).GetValue() != v {
		t.Fatal("a *structpb.Value is passed as a value argument")
	}
}

func TestArgNestedBytesAreMsgpack(t *testing.T) {
	a := mustArg(t, map[string]any{"name": "f.bin", "data": []byte{1, 2, 3}, "list": []any{[]byte{}}}, true)
	got := decodeMsgpack(t, a)
	want := map[string]any{"name": "f.bin", "data": []byte{1, 2, 3}, "list": []any{[]byte{}}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %#v, want %#v", got, want)
	}
}

func TestArgBigIntegersAreMsgpack(t *testing.T) {
	for _, tc := range []struct {
		v    any
		want any
	}{
		{int64(maxSafeInteger + 1), int64(maxSafeInteger + 1)},
		{int64(math.MinInt64), int64(math.MinInt64)},
		{uint64(math.MaxUint64), uint64(math.MaxUint64)},
		{[]any{1, uint64(1) << 60}, []any{int8(1), uint64(1) << 60}},
		{json.Number("18446744073709551615"), uint64(18446744073709551615)},
	} {
		a := mustArg(t, tc.v, true)
		got := decodeMsgpack(t, a)
		if !sameNumber(got, tc.want) {
			t.Errorf("%v: got %#v, want %#v", tc.v, got, tc.want)
		}
	}
}

// sameNumber compares decoded msgpack values, whatever integer width the
// decoder picked.
func sameNumber(a, b any) bool {
	la, aok := a.([]any)
	lb, bok := b.([]any)
	if aok && bok {
		if len(la) != len(lb) {
			return false
		}
		for i := range la {
			if !sameNumber(la[i], lb[i]) {
				return false
			}
		}
		return true
	}
	return toString(a) == toString(b)
}

func toString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// bigJSON has a MarshalJSON that writes an integer JSON cannot carry
// exactly through a float64.
type bigJSON struct{}

func (bigJSON) MarshalJSON() ([]byte, error) { return []byte(`{"id": 12345678901234567890}`), nil }

func TestArgMarshalJSONWithBigIntegerIsMsgpack(t *testing.T) {
	got := decodeMsgpack(t, mustArg(t, bigJSON{}, true))
	m, ok := got.(map[string]any)
	if !ok || m["id"] != uint64(12345678901234567890) {
		t.Fatalf("got %#v", got)
	}
}

// The MessagePack path names fields and applies options as encoding/json
// does: compare both through a JSON round trip on values with no bytes.
func TestConverterMatchesEncodingJSON(t *testing.T) {
	type Inner struct {
		A int    `json:"a"`
		B string `json:"b,omitempty"`
	}
	type Shadow struct {
		A int `json:"a"`
	}
	type outer struct {
		Inner
		*Shadow
		Name     string            `json:"name"`
		Skip     string            `json:"-"`
		Dash     string            `json:"-,"`
		Quoted   int64             `json:"quoted,string"`
		QuotedS  string            `json:",string"`
		Empty    []int             `json:"empty,omitempty"`
		Zero     time.Time         `json:"zero,omitzero"`
		When     time.Time         `json:"when"`
		Ptr      *int              `json:"ptr"`
		Map      map[int]string    `json:"map"`
		Raw      json.RawMessage   `json:"raw"`
		Iface    any               `json:"iface"`
		Arr      [2]uint8          `json:"arr"`
		F32      float32           `json:"f32"`
		Nested   map[string]*Inner `json:"nested"`
		unexport int
	}
	seven := 7
	v := outer{
		Inner:   Inner{A: 1},
		Shadow:  &Shadow{A: 2},
		Name:    "n",
		Dash:    "dash",
		Quoted:  1 << 60,
		QuotedS: `say "hi"`,
		When:    time.Date(2024, 5, 6, 7, 8, 9, 123, time.FixedZone("x", 3600)),
		Ptr:     &seven,
		Map:     map[int]string{2: "two", 10: "ten"},
		Raw:     json.RawMessage(`{"k":[true,null]}`),
		Iface:   []any{"x", 1.25},
		Arr:     [2]uint8{3, 4},
		F32:     0.1,
		Nested:  map[string]*Inner{"z": {A: 3, B: "b"}, "y": nil},
	}
	var c converter
	tree, err := c.convert(reflect.ValueOf(v), 0)
	if err != nil {
		t.Fatal(err)
	}
	if c.bigInt || c.binary {
		// Quoted big integers are strings, so nothing needs MessagePack.
		t.Fatalf("flags: binary=%v bigInt=%v", c.binary, c.bigInt)
	}
	var buf bytes.Buffer
	if err := encodeTree(msgpack.NewEncoder(&buf), tree); err != nil {
		t.Fatal(err)
	}
	got := decodeMsgpack(t, &emitgatev1.Argument{Kind: &emitgatev1.Argument_Msgpack{Msgpack: buf.Bytes()}})

	want, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if g, w := normalize(t, got), normalize(t, want); !reflect.DeepEqual(g, w) {
		t.Fatalf("msgpack path:\n got %v\nwant %v", g, w)
	}
}

// normalize turns a decoded value (or JSON text) into the value JSON reads.
func normalize(t *testing.T, v any) any {
	t.Helper()
	b, ok := v.([]byte)
	if !ok {
		var err error
		if b, err = json.Marshal(v); err != nil {
			t.Fatal(err)
		}
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestMsgpackKeepsFieldOrderAndUsesSmallestIntegers(t *testing.T) {
	type payload struct {
		Z    int    `json:"z"`
		A    []byte `json:"a"`
		Mid  string `json:"m"`
		Time time.Time
	}
	a := mustArg(t, payload{Z: 1, A: []byte{9}, Mid: "é", Time: time.Unix(0, 0).UTC()}, true)
	want := []byte{0x84,
		0xa1, 'z', 0x01,
		0xa1, 'a', 0xc4, 0x01, 0x09,
		0xa1, 'm', 0xa2, 0xc3, 0xa9,
		0xa4, 'T', 'i', 'm', 'e', 0xb4}
	want = append(want, "1970-01-01T00:00:00Z"...)
	if got := a.GetMsgpack(); !bytes.Equal(got, want) {
		t.Fatalf("msgpack\n got %x\nwant %x", got, want)
	}
}

func TestArgErrorsNameTheArgument(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []any
		path string
		msg  string
	}{
		{"channel", []any{"ok", make(chan int)}, "args[1]", "unsupported type chan int"},
		{"func in map", []any{map[string]any{"f": func() {}}}, "args[0]", "unsupported type func()"},
		{"NaN", []any{1, 2, math.NaN()}, "args[2]", "NaN"},
		{"infinity", []any{[]float64{math.Inf(1)}}, "args[0]", "+Inf"},
		{"bad raw JSON", []any{json.RawMessage(`{`)}, "args[0]", "not valid JSON"},
		{"bad map key", []any{map[[2]int]int{{1, 2}: 3}}, "args[0]", "map key"},
		{"cycle", []any{cyclic()}, "args[0]", "too deeply"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := encodeArgs("args", tc.args, true)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("want *Error, got %v", err)
			}
			if !IsInvalidArgument(err) || !e.Local {
				t.Fatalf("want a local InvalidArgument, got %v", err)
			}
			if len(e.Violations) != 1 || e.Violations[0].Field != tc.path || !strings.Contains(e.Violations[0].Description, tc.msg) {
				t.Fatalf("violations = %+v, want %s containing %q", e.Violations, tc.path, tc.msg)
			}
		})
	}
}

func cyclic() any {
	m := map[string]any{}
	m["self"] = m
	return m
}

func TestServerSideArgsRefuseBinaryAndKeepBigIntegersAsJSON(t *testing.T) {
	for _, v := range []any{[]byte{1}, map[string]any{"b": []byte{1}}, RawMsgpack{0xc0}} {
		if _, err := encodeArg(v, false); err == nil || !strings.Contains(err.Error(), "ServerSideEmit") {
			t.Errorf("%v: want a ServerSideEmit error, got %v", v, err)
		}
	}
	wantJSON(t, mustArg(t, []any{uint64(1) << 60}, false), "[1152921504606846976]")
}
