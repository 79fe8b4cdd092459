package emitgate

import (
	"math"
	"reflect"
	"slices"
	"strconv"
	"sync"
	"unicode/utf8"
)

// The fast path of argument encoding: values made only of the types JSON
// decoding produces (map[string]any, []any, string, float64, bool, nil)
// plus Go's integer types, []string, map[string]string, and structs of
// strings, numbers and booleans (see plainType) are written as JSON in one
// pass, without building a tree. Everything else, and anything that
// needs MessagePack (an integer outside ±2^53) or an error (NaN, too deep),
// takes the general path of encodeArg, which gives the same values.

// jsonBufs recycles the scratch buffers of appendFastJSON.
var jsonBufs = sync.Pool{New: func() any { b := make([]byte, 0, 256); return &b }}

// fastJSONText returns the JSON text of v, or ok false when v needs the
// general path.
func fastJSONText(v any) (text string, ok bool) {
	bp := jsonBufs.Get().(*[]byte)
	buf, ok := appendFastJSON((*bp)[:0], v, 0)
	if ok {
		text = string(buf)
	}
	if cap(buf) <= 64<<10 { // do not keep the rare huge buffer
		*bp = buf
		jsonBufs.Put(bp)
	}
	return text, ok
}

func appendFastJSON(b []byte, v any, depth int) ([]byte, bool) {
	if depth > maxDepth {
		return b, false
	}
	switch x := v.(type) {
	case nil:
		return append(b, "null"...), true
	case string:
		return appendJSONString(b, x), true
	case bool:
		return strconv.AppendBool(b, x), true
	case float64:
		return appendJSONFloat(b, x)
	case int:
		return appendJSONInt(b, int64(x))
	case int64:
		return appendJSONInt(b, x)
	case int32:
		return strconv.AppendInt(b, int64(x), 10), true
	case uint32:
		return strconv.AppendUint(b, uint64(x), 10), true
	case uint64:
		if x > maxSafeInteger {
			return b, false
		}
		return strconv.AppendUint(b, x, 10), true
	case map[string]any:
		if x == nil {
			return append(b, "null"...), true
		}
		return appendJSONMap(b, x, depth)
	case []any:
		if x == nil {
			return append(b, "null"...), true
		}
		b = append(b, '[')
		for i, e := range x {
			if i > 0 {
				b = append(b, ',')
			}
			var ok bool
			if b, ok = appendFastJSON(b, e, depth+1); !ok {
				return b, false
			}
		}
		return append(b, ']'), true
	case []string:
		if x == nil {
			return append(b, "null"...), true
		}
		b = append(b, '[')
		for i, e := range x {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, e)
		}
		return append(b, ']'), true
	case map[string]string:
		if x == nil {
			return append(b, "null"...), true
		}
		keys := sortedKeys(x)
		b = append(b, '{')
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, k)
			b = append(b, ':')
			b = appendJSONString(b, x[k])
		}
		return append(b, '}'), true
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Struct {
		return b, false
	}
	pt := plainStruct(rv.Type())
	if pt == nil {
		return b, false
	}
	return pt.append(b, rv)
}

// plainType is a struct type whose fields are all strings, booleans,
// integers, float64 or such structs, with no JSON or text marshaler and
// no `,string` option: the fast path writes it from its cached fields.
type plainType struct {
	fields []plainField
}

type plainField struct {
	index     []int
	key       []byte // `"name":`
	kind      reflect.Kind
	omitEmpty bool
	omitZero  bool
	sub       *plainType // for a struct field
}

var plainTypes sync.Map // reflect.Type -> *plainType (nil: not plain)

func plainStruct(t reflect.Type) *plainType {
	if pt, ok := plainTypes.Load(t); ok {
		return pt.(*plainType)
	}
	pt := makePlainType(t, 0)
	plainTypes.Store(t, pt)
	return pt
}

func hasMarshaler(t reflect.Type) bool {
	p := reflect.PointerTo(t)
	return t.Implements(jsonMarshalerType) || t.Implements(textMarshalerType) ||
		p.Implements(jsonMarshalerType) || p.Implements(textMarshalerType)
}

var isZeroerType = reflect.TypeOf((*interface{ IsZero() bool })(nil)).Elem()

func makePlainType(t reflect.Type, depth int) *plainType {
	if depth > 8 || hasMarshaler(t) {
		return nil
	}
	pt := &plainType{}
	for _, f := range cachedFields(t) {
		if f.quoted || f.typ != t.FieldByIndex(f.index).Type || hasMarshaler(f.typ) {
			return nil // a pointer on the way, or a type with methods of its own
		}
		if f.omitZero && (f.typ.Implements(isZeroerType) || reflect.PointerTo(f.typ).Implements(isZeroerType)) {
			return nil
		}
		if len(f.index) > 1 && !embeddedByValue(t, f.index) {
			return nil
		}
		pf := plainField{index: f.index, kind: f.typ.Kind(), omitEmpty: f.omitEmpty, omitZero: f.omitZero}
		pf.key = append(appendJSONString(nil, f.name), ':')
		switch pf.kind {
		case reflect.String, reflect.Bool, reflect.Float64,
			reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
			reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		case reflect.Struct:
			if pf.sub = makePlainType(f.typ, depth+1); pf.sub == nil {
				return nil
			}
		default:
			return nil
		}
		pt.fields = append(pt.fields, pf)
	}
	return pt
}

// embeddedByValue reports whether the embedded structs on index's path
// are values, not pointers (which may be nil).
func embeddedByValue(t reflect.Type, index []int) bool {
	for _, i := range index[:len(index)-1] {
		t = t.Field(i).Type
		if t.Kind() != reflect.Struct {
			return false
		}
	}
	return true
}

func (pt *plainType) append(b []byte, v reflect.Value) ([]byte, bool) {
	b = append(b, '{')
	first := true
	for i := range pt.fields {
		f := &pt.fields[i]
		fv := v.FieldByIndex(f.index)
		if (f.omitEmpty && isEmptyValue(fv)) || (f.omitZero && fv.IsZero()) {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, f.key...)
		switch f.kind {
		case reflect.String:
			b = appendJSONString(b, fv.String())
		case reflect.Bool:
			b = strconv.AppendBool(b, fv.Bool())
		case reflect.Float64:
			var ok bool
			if b, ok = appendJSONFloat(b, fv.Float()); !ok {
				return b, false
			}
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			var ok bool
			if b, ok = appendJSONInt(b, fv.Int()); !ok {
				return b, false
			}
		case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
			n := fv.Uint()
			if n > maxSafeInteger {
				return b, false
			}
			b = strconv.AppendUint(b, n, 10)
		case reflect.Struct:
			var ok bool
			if b, ok = f.sub.append(b, fv); !ok {
				return b, false
			}
		}
	}
	return append(b, '}'), true
}

// appendJSONMap writes a map with its keys sorted, as encoding/json does.
func appendJSONMap(b []byte, m map[string]any, depth int) ([]byte, bool) {
	var small [smallMapKeys]string
	keys := small[:0]
	if len(m) > smallMapKeys {
		keys = make([]string, 0, len(m))
	}
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, k)
		b = append(b, ':')
		var ok bool
		if b, ok = appendFastJSON(b, m[k], depth+1); !ok {
			return b, false
		}
	}
	return append(b, '}'), true
}

// smallMapKeys is how many keys of a map are sorted without allocating:
// event payloads are mostly small objects.
const smallMapKeys = 16

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func appendJSONInt(b []byte, n int64) ([]byte, bool) {
	if n > maxSafeInteger || n < -maxSafeInteger {
		return b, false // MessagePack keeps it exact
	}
	return strconv.AppendInt(b, n, 10), true
}

// appendJSONFloat formats f as encoding/json does.
func appendJSONFloat(b []byte, f float64) ([]byte, bool) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return b, false // the general path reports it
	}
	if f == math.Trunc(f) && math.Abs(f) <= maxSafeInteger && (f != 0 || !math.Signbit(f)) {
		// A whole number (JSON numbers decoded into any are float64):
		// the digits encoding/json writes, without formatting a float.
		return strconv.AppendInt(b, int64(f), 10), true
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// e-09 to e-9, as encoding/json writes it.
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b, true
}

const hexDigits = "0123456789abcdef"

// appendJSONString writes s as a JSON string, as encoding/json does
// without HTML escaping: invalid UTF-8 becomes U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
