package emitgate

import (
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"
	"google.golang.org/protobuf/types/known/structpb"

	emitgatev1 "github.com/emitgate/emitgate/sdk/go/gen/emitgate/v1"
)

func TestRepliesDecodeToNativeValues(t *testing.T) {
	exact, err := msgpack.Marshal(map[string]any{
		"big": int64(math.MaxInt64), "neg": int64(math.MinInt64), "u": uint64(math.MaxUint64),
		"small": uint8(200), "b": []any{[]byte{0}},
	})
	if err != nil {
		t.Fatal(err)
	}
	when := time.Date(2023, 11, 14, 22, 13, 20, 0, time.UTC)
	stamp, err := msgpack.Marshal(when)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		arg  *emitgatev1.Argument
		want any
	}{
		{"msgpack 64-bit integers and nested binary", &emitgatev1.Argument{Kind: &emitgatev1.Argument_Msgpack{Msgpack: exact}},
			map[string]any{"big": int64(math.MaxInt64), "neg": int64(math.MinInt64), "u": uint64(math.MaxUint64), "small": int64(200), "b": []any{[]byte{0}}}},
		{"binary", &emitgatev1.Argument{Kind: &emitgatev1.Argument_Binary{Binary: []byte{1}}}, []byte{1}},
		{"json", &emitgatev1.Argument{Kind: &emitgatev1.Argument_Json{Json: `{"a":[1,2.5]}`}}, map[string]any{"a": []any{int64(1), 2.5}}},
		{"null", &emitgatev1.Argument{Kind: &emitgatev1.Argument_Value{Value: structpb.NewNullValue()}}, nil},
		{"float beyond 2^53", &emitgatev1.Argument{Kind: &emitgatev1.Argument_Value{Value: structpb.NewNumberValue(1 << 60)}}, float64(1 << 60)},
	} {
		got, err := decodeReply(tc.arg)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: %#v, %v; want %#v", tc.name, got, err, tc.want)
		}
	}
	got, err := decodeReply(&emitgatev1.Argument{Kind: &emitgatev1.Argument_Msgpack{Msgpack: stamp}})
	if tm, ok := got.(time.Time); err != nil || !ok || !tm.Equal(when) {
		t.Errorf("timestamp: %#v, %v", got, err)
	}
	if _, err := decodeReply(&emitgatev1.Argument{Kind: &emitgatev1.Argument_Msgpack{Msgpack: []byte{0xc1}}}); err == nil {
		t.Error("undecodable MessagePack: no error")
	}
}
