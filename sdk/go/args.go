package emitgate

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/vmihailenco/msgpack/v5"
	"google.golang.org/protobuf/types/known/structpb"

	emitgatev1 "github.com/emitgate/emitgate/sdk/go/gen/emitgate/v1"
)

// RawMsgpack is an event argument already encoded as exactly one
// MessagePack value. It is sent as is; the gateway validates it (strings
// must be UTF-8, map keys strings or integers, and the timestamp is the
// only extension type allowed).
type RawMsgpack []byte

// maxSafeInteger is the largest integer a JavaScript number holds exactly
// (2^53); integers beyond ±maxSafeInteger travel as MessagePack integers.
const maxSafeInteger = 1 << 53

// maxDepth bounds the nesting of an argument: the gateway's limit of 128
// levels of arrays and maps (max_depth); deeper values (or cyclic ones) are
// refused before sending.
const maxDepth = 128

// encodeArgs encodes event arguments. field is the path of the arguments
// in the request ("args" or "items[3].emit.args"), used in errors.
// allowMsgpack is false for ServerSideEmit, which only takes JSON.
func encodeArgs(field string, args []any, allowMsgpack bool) ([]*emitgatev1.Argument, error) {
	if len(args) == 0 {
		return nil, nil
	}
	out := make([]*emitgatev1.Argument, len(args))
	for i, a := range args {
		arg, err := encodeArg(a, allowMsgpack)
		if err != nil {
			path := fmt.Sprintf("%s[%d]", field, i)
			return nil, localError(err, fmt.Sprintf("argument %d cannot be sent", i),
				FieldViolation{Field: path, Description: err.Error()})
		}
		out[i] = arg
	}
	return out, nil
}

// encodeArg encodes one event argument:
//   - []byte becomes a binary argument (a Buffer for the client);
//   - json.RawMessage is sent as JSON text, RawMsgpack as MessagePack,
//     a *structpb.Value as a value argument;
//   - a value holding []byte anywhere inside, or an integer outside ±2^53,
//     is encoded as MessagePack (with the field names encoding/json uses),
//     so that bytes stay bytes and integers stay exact up to the decoder;
//   - any other value is encoded with encoding/json.
func encodeArg(v any, allowMsgpack bool) (*emitgatev1.Argument, error) {
	switch x := v.(type) {
	case nil:
		return jsonArg("null"), nil
	case []byte:
		if !allowMsgpack {
			return nil, errors.New("binary data cannot be sent to servers (ServerSideEmit takes JSON values only)")
		}
		return &emitgatev1.Argument{Kind: &emitgatev1.Argument_Binary{Binary: nonNil(x)}}, nil
	case json.RawMessage:
		if !json.Valid(x) {
			return nil, errors.New("json.RawMessage is not valid JSON")
		}
		return jsonArg(string(x)), nil
	case RawMsgpack:
		if !allowMsgpack {
			return nil, errors.New("MessagePack cannot be sent to servers (ServerSideEmit takes JSON values only)")
		}
		return &emitgatev1.Argument{Kind: &emitgatev1.Argument_Msgpack{Msgpack: nonNil(x)}}, nil
	case *structpb.Value:
		if x == nil {
			return jsonArg("null"), nil
		}
		return &emitgatev1.Argument{Kind: &emitgatev1.Argument_Value{Value: x}}, nil
	}

	if text, ok := fastJSONText(v); ok {
		return jsonArg(text), nil
	}
	var c converter
	tree, err := c.convert(reflect.ValueOf(v), 0)
	if err != nil {
		return nil, err
	}
	if b, ok := tree.([]byte); ok { // a named []byte type
		if !allowMsgpack {
			return nil, errors.New("binary data cannot be sent to servers (ServerSideEmit takes JSON values only)")
		}
		return &emitgatev1.Argument{Kind: &emitgatev1.Argument_Binary{Binary: b}}, nil
	}
	if c.binary && !allowMsgpack {
		return nil, errors.New("binary data cannot be sent to servers (ServerSideEmit takes JSON values only)")
	}
	if allowMsgpack && (c.binary || c.bigInt) {
		var buf bytes.Buffer
		enc := msgpack.NewEncoder(&buf)
		if err := encodeTree(enc, tree); err != nil {
			return nil, err
		}
		return &emitgatev1.Argument{Kind: &emitgatev1.Argument_Msgpack{Msgpack: buf.Bytes()}}, nil
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return jsonArg(strings.TrimSuffix(buf.String(), "\n")), nil
}

func jsonArg(text string) *emitgatev1.Argument {
	return &emitgatev1.Argument{Kind: &emitgatev1.Argument_Json{Json: text}}
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// object is a JSON object with its keys in encoding order.
type object struct {
	keys   []string
	values []any
}

// converter turns a Go value into a tree of nil, bool, string, int64,
// uint64, float64, []byte, []any and *object, following the rules of
// encoding/json (field names and options from `json` tags, Marshaler and
// TextMarshaler implementations, sorted map keys), and notes whether the
// tree needs MessagePack.
type converter struct {
	binary bool // a []byte somewhere
	bigInt bool // an integer outside ±2^53 somewhere
}

var (
	jsonMarshalerType = reflect.TypeOf((*json.Marshaler)(nil)).Elem()
	textMarshalerType = reflect.TypeOf((*encoding.TextMarshaler)(nil)).Elem()
	jsonNumberType    = reflect.TypeOf(json.Number(""))
)

func (c *converter) convert(v reflect.Value, depth int) (any, error) {
	if depth > maxDepth {
		return nil, errors.New("value is nested too deeply (or cyclic)")
	}
	if !v.IsValid() {
		return nil, nil
	}
	t := v.Type()

	// Marshalers first, as encoding/json does (pointer receivers only when
	// the value is addressable).
	if t.Implements(jsonMarshalerType) {
		if (t.Kind() == reflect.Pointer || t.Kind() == reflect.Interface) && v.IsNil() {
			return nil, nil
		}
		return c.fromMarshalJSON(v.Interface().(json.Marshaler))
	}
	if t.Kind() != reflect.Pointer && v.CanAddr() && reflect.PointerTo(t).Implements(jsonMarshalerType) {
		return c.fromMarshalJSON(v.Addr().Interface().(json.Marshaler))
	}
	if t.Implements(textMarshalerType) {
		if (t.Kind() == reflect.Pointer || t.Kind() == reflect.Interface) && v.IsNil() {
			return nil, nil
		}
		return fromMarshalText(v.Interface().(encoding.TextMarshaler))
	}
	if t.Kind() != reflect.Pointer && v.CanAddr() && reflect.PointerTo(t).Implements(textMarshalerType) {
		return fromMarshalText(v.Addr().Interface().(encoding.TextMarshaler))
	}

	if t == jsonNumberType {
		// encoding/json writes a json.Number as the number it holds.
		s := v.String()
		if s == "" {
			s = "0"
		}
		if !json.Valid([]byte(s)) || strings.ContainsAny(s, "{[\"tfn") {
			return nil, fmt.Errorf("invalid json.Number %q", s)
		}
		return c.number(json.Number(s))
	}

	switch t.Kind() {
	case reflect.Bool:
		return v.Bool(), nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n := v.Int()
		if n > maxSafeInteger || n < -maxSafeInteger {
			c.bigInt = true
		}
		return n, nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		n := v.Uint()
		if n > maxSafeInteger {
			c.bigInt = true
		}
		return n, nil
	case reflect.Float32, reflect.Float64:
		f := v.Float()
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, fmt.Errorf("unsupported number %v (JSON has no NaN or infinity)", f)
		}
		if t.Kind() == reflect.Float32 {
			// As encoding/json: the shortest decimal that round-trips as float32.
			f, _ = strconv.ParseFloat(strconv.FormatFloat(f, 'g', -1, 32), 64)
		}
		return f, nil
	case reflect.String:
		return strings.ToValidUTF8(v.String(), "\uFFFD"), nil
	case reflect.Interface, reflect.Pointer:
		if v.IsNil() {
			return nil, nil
		}
		// Only arrays and maps are levels of nesting, as for the gateway;
		// a pointer or interface to another one still counts, so that a
		// cycle of them ends.
		if k := v.Elem().Kind(); k == reflect.Interface || k == reflect.Pointer {
			return c.convert(v.Elem(), depth+1)
		}
		return c.convert(v.Elem(), depth)
	case reflect.Slice:
		if v.IsNil() {
			return nil, nil
		}
		if isByteSlice(t) {
			c.binary = true
			b := make([]byte, v.Len())
			copy(b, v.Bytes())
			return b, nil
		}
		return c.convertList(v, depth)
	case reflect.Array:
		return c.convertList(v, depth)
	case reflect.Map:
		if v.IsNil() {
			return nil, nil
		}
		return c.convertMap(v, depth)
	case reflect.Struct:
		return c.convertStruct(v, depth)
	default:
		return nil, fmt.Errorf("unsupported type %s", t)
	}
}

// isByteSlice reports whether encoding/json treats t as bytes (base64).
func isByteSlice(t reflect.Type) bool {
	if t.Elem().Kind() != reflect.Uint8 {
		return false
	}
	p := reflect.PointerTo(t.Elem())
	return !p.Implements(jsonMarshalerType) && !p.Implements(textMarshalerType)
}

func (c *converter) convertList(v reflect.Value, depth int) (any, error) {
	out := make([]any, v.Len())
	for i := range out {
		e, err := c.convert(v.Index(i), depth+1)
		if err != nil {
			return nil, err
		}
		out[i] = e
	}
	return out, nil
}

func (c *converter) convertMap(v reflect.Value, depth int) (any, error) {
	type entry struct {
		key string
		val reflect.Value
	}
	entries := make([]entry, 0, v.Len())
	it := v.MapRange()
	for it.Next() {
		k, err := mapKey(it.Key())
		if err != nil {
			return nil, err
		}
		entries = append(entries, entry{k, it.Value()})
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].key < entries[j].key })
	obj := &object{keys: make([]string, len(entries)), values: make([]any, len(entries))}
	for i, e := range entries {
		val, err := c.convert(e.val, depth+1)
		if err != nil {
			return nil, err
		}
		obj.keys[i] = strings.ToValidUTF8(e.key, "\uFFFD")
		obj.values[i] = val
	}
	return obj, nil
}

// mapKey returns the JSON object key of a map key, as encoding/json does.
func mapKey(k reflect.Value) (string, error) {
	if k.Kind() == reflect.String {
		return k.String(), nil
	}
	if tm, ok := k.Interface().(encoding.TextMarshaler); ok {
		if k.Kind() == reflect.Pointer && k.IsNil() {
			return "", nil
		}
		b, err := tm.MarshalText()
		return string(b), err
	}
	switch k.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.FormatInt(k.Int(), 10), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return strconv.FormatUint(k.Uint(), 10), nil
	}
	return "", fmt.Errorf("unsupported map key type %s", k.Type())
}

func (c *converter) convertStruct(v reflect.Value, depth int) (any, error) {
	fields := cachedFields(v.Type())
	obj := &object{keys: make([]string, 0, len(fields)), values: make([]any, 0, len(fields))}
	for _, f := range fields {
		fv, ok := fieldByIndex(v, f.index)
		if !ok {
			continue
		}
		if f.omitEmpty && isEmptyValue(fv) {
			continue
		}
		if f.omitZero && isZeroValue(fv) {
			continue
		}
		var val any
		if f.quoted && !(fv.Kind() == reflect.Pointer && fv.IsNil()) {
			// The `,string` option: the JSON text of the scalar, as a string.
			b, err := json.Marshal(fv.Interface())
			if err != nil {
				return nil, err
			}
			val = string(b)
		} else {
			var err error
			val, err = c.convert(fv, depth+1)
			if err != nil {
				return nil, err
			}
		}
		obj.keys = append(obj.keys, f.name)
		obj.values = append(obj.values, val)
	}
	return obj, nil
}

// fieldByIndex follows an index path through embedded structs; ok is false
// when an embedded pointer on the way is nil (encoding/json skips the
// field then).
func fieldByIndex(v reflect.Value, index []int) (reflect.Value, bool) {
	for i, x := range index {
		if i > 0 && v.Kind() == reflect.Pointer {
			if v.IsNil() {
				return reflect.Value{}, false
			}
			v = v.Elem()
		}
		v = v.Field(x)
	}
	return v, true
}

func isEmptyValue(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Array, reflect.Map, reflect.Slice, reflect.String:
		return v.Len() == 0
	case reflect.Bool,
		reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64,
		reflect.Interface, reflect.Pointer:
		return v.IsZero()
	}
	return false
}

// isZeroValue implements the `omitzero` option: an IsZero() bool method
// when the type has one, the zero value otherwise.
func isZeroValue(v reflect.Value) bool {
	if z, ok := v.Interface().(interface{ IsZero() bool }); ok {
		if v.Kind() == reflect.Pointer && v.IsNil() {
			return true
		}
		return z.IsZero()
	}
	if v.CanAddr() {
		if z, ok := v.Addr().Interface().(interface{ IsZero() bool }); ok {
			return z.IsZero()
		}
	}
	return v.IsZero()
}

func (c *converter) fromMarshalJSON(m json.Marshaler) (any, error) {
	b, err := m.MarshalJSON()
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	tree, err := c.parseJSON(dec, 0)
	if err != nil {
		return nil, fmt.Errorf("invalid JSON from %T.MarshalJSON: %w", m, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("invalid JSON from %T.MarshalJSON: trailing data", m)
	}
	return tree, nil
}

func fromMarshalText(m encoding.TextMarshaler) (any, error) {
	b, err := m.MarshalText()
	if err != nil {
		return nil, err
	}
	return strings.ToValidUTF8(string(b), "\uFFFD"), nil
}

// parseJSON reads one JSON value into a tree, keeping object key order and
// integers exact.
func (c *converter) parseJSON(dec *json.Decoder, depth int) (any, error) {
	if depth > maxDepth {
		return nil, errors.New("value is nested too deeply")
	}
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch tok := tok.(type) {
	case json.Delim:
		switch tok {
		case '[':
			list := []any{}
			for dec.More() {
				e, err := c.parseJSON(dec, depth+1)
				if err != nil {
					return nil, err
				}
				list = append(list, e)
			}
			_, err := dec.Token()
			return list, err
		case '{':
			obj := &object{}
			for dec.More() {
				k, err := dec.Token()
				if err != nil {
					return nil, err
				}
				val, err := c.parseJSON(dec, depth+1)
				if err != nil {
					return nil, err
				}
				obj.keys = append(obj.keys, k.(string))
				obj.values = append(obj.values, val)
			}
			_, err := dec.Token()
			return obj, err
		}
		return nil, fmt.Errorf("unexpected %v", tok)
	case json.Number:
		return c.number(tok)
	default: // nil, bool, string
		return tok, nil
	}
}

// number converts a JSON number: integers exactly, others as float64.
func (c *converter) number(n json.Number) (any, error) {
	s := n.String()
	if !strings.ContainsAny(s, ".eE") {
		if i, err := strconv.ParseInt(s, 10, 64); err == nil {
			if i > maxSafeInteger || i < -maxSafeInteger {
				c.bigInt = true
			}
			return i, nil
		}
		if u, err := strconv.ParseUint(s, 10, 64); err == nil {
			c.bigInt = true
			return u, nil
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return nil, fmt.Errorf("number %s out of range", s)
	}
	return f, nil
}

// encodeTree writes a converted tree as one MessagePack value.
func encodeTree(enc *msgpack.Encoder, tree any) error {
	switch x := tree.(type) {
	case nil:
		return enc.EncodeNil()
	case bool:
		return enc.EncodeBool(x)
	case string:
		return enc.EncodeString(x)
	case int64:
		return enc.EncodeInt(x)
	case uint64:
		return enc.EncodeUint(x)
	case float64:
		// Integral floats within ±2^53 become integers, as the gateway does
		// for JSON numbers, so a value reads the same either way.
		if x == math.Trunc(x) && math.Abs(x) <= maxSafeInteger {
			return enc.EncodeInt(int64(x))
		}
		return enc.EncodeFloat64(x)
	case []byte:
		return enc.EncodeBytes(nonNil(x))
	case []any:
		if err := enc.EncodeArrayLen(len(x)); err != nil {
			return err
		}
		for _, e := range x {
			if err := encodeTree(enc, e); err != nil {
				return err
			}
		}
		return nil
	case *object:
		if err := enc.EncodeMapLen(len(x.keys)); err != nil {
			return err
		}
		for i, k := range x.keys {
			if err := enc.EncodeString(k); err != nil {
				return err
			}
			if err := encodeTree(enc, x.values[i]); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("internal error: unexpected %T", tree)
}

// field is a struct field as encoding/json sees it.
type field struct {
	name      string
	tagged    bool
	index     []int
	typ       reflect.Type
	omitEmpty bool
	omitZero  bool
	quoted    bool
}

var fieldCache sync.Map // reflect.Type -> []field

// jsonHasOmitZero tells whether encoding/json knows the `omitzero` option
// (Go 1.24 and later), so that both encodings agree.
var jsonHasOmitZero = func() bool {
	b, err := json.Marshal(struct {
		A int `json:",omitzero"`
	}{})
	return err == nil && string(b) == "{}"
}()

func cachedFields(t reflect.Type) []field {
	if f, ok := fieldCache.Load(t); ok {
		return f.([]field)
	}
	f, _ := fieldCache.LoadOrStore(t, typeFields(t))
	return f.([]field)
}

// typeFields returns the fields encoding/json encodes for struct type t,
// in encoding order, applying its rules for embedded structs: the
// shallowest field of a name wins, a tagged one wins over an untagged one
// at the same depth, and otherwise conflicting names are dropped.
func typeFields(t reflect.Type) []field {
	var current []field
	next := []field{{typ: t}}
	var count, nextCount map[reflect.Type]int
	visited := map[reflect.Type]bool{}
	var fields []field

	for len(next) > 0 {
		current, next = next, current[:0]
		count, nextCount = nextCount, map[reflect.Type]int{}

		for _, f := range current {
			if visited[f.typ] {
				continue
			}
			visited[f.typ] = true
			for i := 0; i < f.typ.NumField(); i++ {
				sf := f.typ.Field(i)
				if sf.Anonymous {
					et := sf.Type
					if et.Kind() == reflect.Pointer {
						et = et.Elem()
					}
					if !sf.IsExported() && et.Kind() != reflect.Struct {
						continue
					}
				} else if !sf.IsExported() {
					continue
				}
				tag := sf.Tag.Get("json")
				if tag == "-" {
					continue
				}
				name, opts, _ := strings.Cut(tag, ",")
				if !isValidTag(name) {
					name = ""
				}
				index := make([]int, len(f.index)+1)
				copy(index, f.index)
				index[len(f.index)] = i

				ft := sf.Type
				if ft.Name() == "" && ft.Kind() == reflect.Pointer {
					ft = ft.Elem()
				}
				quoted := false
				if hasOption(opts, "string") {
					switch ft.Kind() {
					case reflect.Bool,
						reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
						reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
						reflect.Float32, reflect.Float64, reflect.String:
						quoted = true
					}
				}

				if name != "" || !sf.Anonymous || ft.Kind() != reflect.Struct {
					tagged := name != ""
					if name == "" {
						name = sf.Name
					}
					fields = append(fields, field{
						name:      name,
						tagged:    tagged,
						index:     index,
						typ:       ft,
						omitEmpty: hasOption(opts, "omitempty"),
						omitZero:  jsonHasOmitZero && hasOption(opts, "omitzero"),
						quoted:    quoted,
					})
					if count[f.typ] > 1 {
						// The same embedded type twice at this depth: add
						// a duplicate so that the name is dropped below.
						fields = append(fields, fields[len(fields)-1])
					}
					continue
				}
				nextCount[ft]++
				if nextCount[ft] == 1 {
					next = append(next, field{name: ft.Name(), index: index, typ: ft})
				}
			}
		}
	}

	sort.Slice(fields, func(i, j int) bool {
		x := fields
		if x[i].name != x[j].name {
			return x[i].name < x[j].name
		}
		if len(x[i].index) != len(x[j].index) {
			return len(x[i].index) < len(x[j].index)
		}
		if x[i].tagged != x[j].tagged {
			return x[i].tagged
		}
		return lessIndex(x[i].index, x[j].index)
	})

	out := fields[:0]
	for advance, i := 0, 0; i < len(fields); i += advance {
		fi := fields[i]
		for advance = 1; i+advance < len(fields); advance++ {
			if fields[i+advance].name != fi.name {
				break
			}
		}
		if advance == 1 {
			out = append(out, fi)
			continue
		}
		dup := fields[i : i+advance]
		if len(dup[0].index) == len(dup[1].index) && dup[0].tagged == dup[1].tagged {
			continue // ambiguous: encoding/json drops it
		}
		out = append(out, dup[0])
	}
	fields = out
	sort.Slice(fields, func(i, j int) bool { return lessIndex(fields[i].index, fields[j].index) })
	return fields
}

func lessIndex(a, b []int) bool {
	for k, x := range a {
		if k >= len(b) {
			return false
		}
		if x != b[k] {
			return x < b[k]
		}
	}
	return len(a) < len(b)
}

func hasOption(opts, name string) bool {
	for opts != "" {
		var o string
		o, opts, _ = strings.Cut(opts, ",")
		if o == name {
			return true
		}
	}
	return false
}

// isValidTag reports whether encoding/json accepts s as a field name.
func isValidTag(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		switch {
		case strings.ContainsRune("!#$%&()*+-./:;<=>?@[]^_{|}~ ", c):
		case !unicode.IsLetter(c) && !unicode.IsDigit(c):
			return false
		}
	}
	return utf8.ValidString(s)
}
