package emitgate_test

// The shared conformance scenarios (tests/conformance/scenarios.json), run
// against real gateways; tests/conformance/README.md describes the format.
// A scenario's operations are written with the JavaScript emitter's words
// and mapped here onto this SDK's API.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	emitgate "github.com/emitgate/emitgate/sdk/go"
)

type (
	scenarioFile struct {
		Stacks    map[string]stackSpec `json:"stacks"`
		Scenarios []scenario           `json:"scenarios"`
	}
	stackSpec struct {
		GatewayArgs []string `json:"gateway_args"`
		Config      string   `json:"config"`
	}
	scenario struct {
		Name    string                `json:"name"`
		Stack   string                `json:"stack"`
		Gateway string                `json:"gateway"`
		Clients map[string]clientSpec `json:"clients"`
		Listen  []struct {
			Namespace string `json:"namespace"`
			Event     string `json:"event"`
		} `json:"listen"`
		Steps  []step `json:"steps"`
		Expect struct {
			Deliveries   map[string][]map[string]any `json:"deliveries"`
			Rooms        map[string][]string         `json:"rooms"`
			Disconnected map[string]string           `json:"disconnected"`
			ServerEvents []struct {
				Namespace string `json:"namespace"`
				Event     string `json:"event"`
				Count     int    `json:"count"`
				Args      any    `json:"args"`
			} `json:"server_events"`
		} `json:"expect"`
	}
	clientSpec struct {
		Namespace string   `json:"namespace"`
		Server    int      `json:"server"`
		Rooms     []string `json:"rooms"`
	}
	step struct {
		Op        map[string]any   `json:"op"`
		Batch     []map[string]any `json:"batch"`
		Publisher []map[string]any `json:"publisher"`
		Options   map[string]any   `json:"options"`
		Expect    map[string]any   `json:"expect"`
	}
)

// conformanceRun makes idempotency keys unique per run.
var conformanceRun = func() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}()

func conformanceDir() string { return filepath.Join(repoRoot(), "tests", "conformance") }

func readJSON(t *testing.T, name string, out any) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(conformanceDir(), name))
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(out); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

// conformanceStacks are the file's stacks, started on first use and kept
// for the test binary's life (TestMain stops the process tree with stdin).
var (
	conformanceMu      sync.Mutex
	conformanceStarted = map[string]*stack{}
)

func conformanceStack(t *testing.T, name string, spec stackSpec) *stack {
	t.Helper()
	conformanceMu.Lock()
	defer conformanceMu.Unlock()
	if s, ok := conformanceStarted[name]; ok {
		return s
	}
	dir, err := tempDir()
	if err != nil {
		t.Fatal(err)
	}
	s, err := startStack("conformance-"+name, dir, spec.Config, spec.GatewayArgs...)
	if err != nil {
		t.Fatalf("cannot start the conformance stack %s: %v", name, err)
	}
	conformanceStarted[name] = s
	return s
}

func TestConformance(t *testing.T) {
	var file scenarioFile
	readJSON(t, "scenarios.json", &file)
	t.Cleanup(func() {
		conformanceMu.Lock()
		defer conformanceMu.Unlock()
		for name, s := range conformanceStarted {
			s.stop()
			delete(conformanceStarted, name)
		}
	})
	for _, sc := range file.Scenarios {
		t.Run(sc.Name, func(t *testing.T) {
			if sc.Gateway == "closed" {
				runClosed(t, sc)
				return
			}
			name := sc.Stack
			if name == "" {
				name = "default"
			}
			s := conformanceStack(t, name, file.Stacks[name])
			defer s.checkAndReset(t)
			runScenario(t, s, sc)
		})
	}
}

// -- values ---------------------------------------------------------------

func substitute(s string, i int) string {
	s = strings.ReplaceAll(s, "{run}", conformanceRun)
	if i >= 0 {
		s = strings.ReplaceAll(s, "{i}", strconv.Itoa(i))
	}
	return s
}

func count(m map[string]any) int {
	n, _ := m["count"].(json.Number).Int64()
	return int(n)
}

// value turns a scenario value into the Go value it stands for.
func value(t *testing.T, v any, i int) any {
	switch x := v.(type) {
	case string:
		return substitute(x, i)
	case json.Number:
		if n, err := x.Int64(); err == nil {
			return n
		}
		f, _ := x.Float64()
		return f
	case []any:
		out := []any{}
		for _, item := range x {
			if m, ok := item.(map[string]any); ok && m["$spread"] != nil {
				for range count(m) {
					out = append(out, value(t, m["$spread"], i))
				}
				continue
			}
			out = append(out, value(t, item, i))
		}
		return out
	case map[string]any:
		switch {
		case x["$binary"] != nil:
			b, err := base64.StdEncoding.DecodeString(x["$binary"].(string))
			if err != nil {
				t.Fatal(err)
			}
			return b
		case x["$int"] != nil:
			s := x["$int"].(string)
			if n, err := strconv.ParseInt(s, 10, 64); err == nil {
				return n
			}
			n, err := strconv.ParseUint(s, 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		case x["$text"] != nil:
			return strings.Repeat(x["$text"].(string), count(x))
		case x["$repeat"] != nil:
			out := make([]string, count(x))
			for n := range out {
				out[n] = strings.ReplaceAll(x["$repeat"].(string), "{i}", strconv.Itoa(n))
			}
			return out
		case x["$nest"] != nil:
			n, _ := x["$nest"].(json.Number).Int64()
			nested := value(t, x["leaf"], i)
			for range n {
				nested = []any{nested}
			}
			return nested
		}
		out := map[string]any{}
		for k, item := range x {
			out[k] = value(t, item, i)
		}
		return out
	}
	return v
}

// expected turns an expected value into what the harness reports.
func expected(v any, i int) any {
	switch x := v.(type) {
	case string:
		return substitute(x, i)
	case []any:
		out := make([]any, len(x))
		for n, item := range x {
			out[n] = expected(item, i)
		}
		return out
	case map[string]any:
		if x["$binary"] != nil {
			return x
		}
		if x["$nest"] != nil {
			n, _ := x["$nest"].(json.Number).Int64()
			nested := expected(x["leaf"], i)
			for range n {
				nested = []any{nested}
			}
			return nested
		}
		out := map[string]any{}
		for k, item := range x {
			out[k] = expected(item, i)
		}
		return out
	}
	return v
}

func asFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case json.Number:
		f, err := x.Float64()
		return f, err == nil
	case float64:
		return x, true
	}
	return 0, false
}

// same compares received with expected JSON; numbers compare as the
// doubles JavaScript holds.
func same(got, want any) bool {
	if w, ok := asFloat(want); ok {
		g, ok := asFloat(got)
		return ok && (g == w || math.IsInf(w, 0) && g == w)
	}
	switch w := want.(type) {
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return false
		}
		for n := range w {
			if !same(g[n], w[n]) {
				return false
			}
		}
		return true
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok || len(g) != len(w) {
			return false
		}
		for k, item := range w {
			if gv, found := g[k]; !found || !same(gv, item) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(got, want)
}

type entry struct {
	item map[string]any
	i    int
}

func unroll(items []map[string]any) []entry {
	var out []entry
	for _, item := range items {
		if r, ok := item["repeat"].(map[string]any); ok {
			for n := range count(item) {
				out = append(out, entry{r, n})
			}
			continue
		}
		out = append(out, entry{item, -1})
	}
	return out
}

// -- operations -----------------------------------------------------------

// clients holds one client per gateway target a scenario names (this SDK
// chooses the target per client, WithTarget).
type clients struct {
	t    *testing.T
	addr string
	m    map[string]*emitgate.Client
}

func (c *clients) get(target string) *emitgate.Client {
	if cl, ok := c.m[target]; ok {
		return cl
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	opts := []emitgate.Option{emitgate.WithInsecure(), emitgate.WithTimeout(10 * time.Second)}
	if target != "" {
		opts = append(opts, emitgate.WithTarget(target))
	}
	cl, err := emitgate.New(ctx, c.addr, opts...)
	if err != nil {
		c.t.Fatalf("connect: %v", err)
	}
	c.m[target] = cl
	return cl
}

func (c *clients) close() {
	for _, cl := range c.m {
		_ = cl.Close()
	}
}

func strs(t *testing.T, v any, i int) []string {
	switch x := value(t, v, i).(type) {
	case []string:
		return x
	case []any:
		out := make([]string, len(x))
		for n, s := range x {
			out[n] = s.(string)
		}
		return out
	}
	t.Fatalf("not a room list: %v", v)
	return nil
}

// operator applies the selection words of op.
func operator(t *testing.T, cl *emitgate.Client, op map[string]any, i int) emitgate.Operator {
	o := cl.Of("/")
	if ns, ok := op["of"].(string); ok {
		o = cl.Of(ns)
	}
	if v, ok := op["to"]; ok {
		o = o.To(strs(t, v, i)...)
	}
	if v, ok := op["in"]; ok {
		o = o.In(strs(t, v, i)...)
	}
	if v, ok := op["except"]; ok {
		o = o.Except(strs(t, v, i)...)
	}
	if op["volatile"] == true {
		o = o.Volatile()
	}
	if v, ok := op["compress"].(bool); ok {
		o = o.Compress(v)
	}
	if k, ok := op["idempotencyKey"].(string); ok {
		o = o.IdempotencyKey(substitute(k, i))
	}
	return o
}

func publishOperator(t *testing.T, p *emitgate.Publisher, op map[string]any, i int) emitgate.PublishOperator {
	o := p.Of("/")
	if ns, ok := op["of"].(string); ok {
		o = p.Of(ns)
	}
	if v, ok := op["to"]; ok {
		o = o.To(strs(t, v, i)...)
	}
	if v, ok := op["in"]; ok {
		o = o.In(strs(t, v, i)...)
	}
	if v, ok := op["except"]; ok {
		o = o.Except(strs(t, v, i)...)
	}
	if op["volatile"] == true {
		o = o.Volatile()
	}
	if v, ok := op["compress"].(bool); ok {
		o = o.Compress(v)
	}
	if k, ok := op["idempotencyKey"].(string); ok {
		o = o.IdempotencyKey(substitute(k, i))
	}
	return o
}

func target(op map[string]any) string {
	s, _ := op["target"].(string)
	return s
}

// eventArgs splits an emit-like action's value into event and arguments.
func eventArgs(t *testing.T, v any, i int) (string, []any) {
	list := value(t, v, i).([]any)
	return list[0].(string), list[1:]
}

func perform(t *testing.T, cs *clients, op map[string]any, i int) (emitgate.Result, error) {
	ctx := context.Background()
	o := operator(t, cs.get(target(op)), op, i)
	switch {
	case op["emit"] != nil:
		ev, args := eventArgs(t, op["emit"], i)
		return o.Emit(ctx, ev, args...)
	case op["broadcast"] != nil:
		ev, args := eventArgs(t, op["broadcast"], i)
		return o.Broadcast(ctx, ev, args...)
	case op["serverSideEmit"] != nil:
		ev, args := eventArgs(t, op["serverSideEmit"], i)
		return o.ServerSideEmit(ctx, ev, args...)
	case op["socketsJoin"] != nil:
		return o.SocketsJoin(ctx, strs(t, op["socketsJoin"], i)...)
	case op["socketsLeave"] != nil:
		return o.SocketsLeave(ctx, strs(t, op["socketsLeave"], i)...)
	case op["disconnectSockets"] != nil:
		return o.DisconnectSockets(ctx, op["disconnectSockets"] == true)
	}
	t.Fatalf("no action in %v", op)
	return emitgate.Result{}, nil
}

func checkError(t *testing.T, err error, want map[string]any, where string) {
	t.Helper()
	var e *emitgate.Error
	if !errors.As(err, &e) {
		t.Fatalf("%s: not an *emitgate.Error: %v", where, err)
	}
	if e.Code.String() != codeName(want["code"].(string)) {
		t.Fatalf("%s: code %v, want %v (%v)", where, e.Code, want["code"], err)
	}
	var fields []string
	for _, v := range e.Violations {
		fields = append(fields, v.Field)
	}
	if ws, ok := want["fields"].([]any); ok {
		for _, w := range ws {
			if !slices.ContainsFunc(fields, func(f string) bool {
				return f == w || strings.HasPrefix(f, w.(string)+".") || strings.HasPrefix(f, w.(string)+"[")
			}) {
				t.Fatalf("%s: no violation on %v in %v", where, w, fields)
			}
		}
	}
	if ls, ok := want["limits"].(map[string]any); ok {
		for name, v := range ls {
			n, _ := v.(json.Number).Int64()
			if got, found := e.Limits[name]; !found || got != uint64(n) {
				t.Fatalf("%s: limits %v, want %s = %d", where, e.Limits, name, n)
			}
		}
	}
}

// codeName turns "INVALID_ARGUMENT" into codes.Code's String() form.
func codeName(s string) string {
	var b strings.Builder
	for _, part := range strings.Split(strings.ToLower(s), "_") {
		b.WriteString(strings.ToUpper(part[:1]) + part[1:])
	}
	return b.String()
}

func checkResult(t *testing.T, receivers uint64, duplicate bool, want map[string]any, where string) {
	t.Helper()
	if w, ok := want["receivers"].(json.Number); ok {
		if n, _ := w.Int64(); uint64(n) != receivers {
			t.Fatalf("%s: receivers %d, want %d", where, receivers, n)
		}
	}
	if w, ok := want["duplicate"].(bool); ok && w != duplicate {
		t.Fatalf("%s: duplicate %v, want %v", where, duplicate, w)
	}
}

func checkOutcome(t *testing.T, res emitgate.Result, err error, want map[string]any, where string) {
	t.Helper()
	if err != nil {
		w, ok := want["error"].(map[string]any)
		if !ok {
			t.Fatalf("%s: unexpected error %v", where, err)
		}
		checkError(t, err, w, where)
		return
	}
	if want["error"] != nil {
		t.Fatalf("%s: no error; got %+v", where, res)
	}
	if r, ok := want["result"].(map[string]any); ok {
		checkResult(t, res.Receivers, res.Duplicate, r, where)
	}
}

func expectOf(item map[string]any) map[string]any {
	m, _ := item["expect"].(map[string]any)
	return m
}

func runBatch(t *testing.T, cs *clients, st step, where string) {
	items := unroll(st.Batch)
	var b *emitgate.Batch
	for _, e := range items {
		op := e.item["op"].(map[string]any)
		cl := cs.get(target(op))
		if b == nil {
			b = cl.Batch()
		}
		o := operator(t, cl, op, e.i)
		if op["broadcast"] != nil {
			ev, args := eventArgs(t, op["broadcast"], e.i)
			b.Broadcast(o, ev, args...)
		} else {
			ev, args := eventArgs(t, op["emit"], e.i)
			b.Emit(o, ev, args...)
		}
	}
	res, err := b.Send(context.Background())
	want := st.Expect
	if err != nil {
		w, ok := want["error"].(map[string]any)
		if !ok {
			t.Fatalf("%s: unexpected error %v", where, err)
		}
		checkError(t, err, w, where)
		return
	}
	if want["error"] != nil {
		t.Fatalf("%s: no error; got %+v", where, res)
	}
	for name, got := range map[string]int{"published": res.Published, "failed": res.Failed} {
		if w, ok := want[name].(json.Number); ok {
			if n, _ := w.Int64(); int(n) != got {
				t.Fatalf("%s: %s %d, want %d", where, name, got, n)
			}
		}
	}
	for n, e := range items {
		w := expectOf(e.item)
		if w == nil {
			continue
		}
		item := res.Items[n]
		if item.Err != nil {
			checkOutcome(t, emitgate.Result{}, item.Err, w, fmt.Sprintf("%s item %d", where, n))
		} else {
			checkOutcome(t, emitgate.Result{Receivers: item.Receivers, Duplicate: item.Duplicate}, nil, w, fmt.Sprintf("%s item %d", where, n))
		}
	}
}

func runPublisher(t *testing.T, cs *clients, st step, where string) {
	items := unroll(st.Publisher)
	var opts []emitgate.PublisherOption
	if n, ok := st.Options["max_in_flight"].(json.Number); ok {
		v, _ := n.Int64()
		opts = append(opts, emitgate.WithMaxInFlight(int(v)))
	}
	publishers := map[string]*emitgate.Publisher{}
	handles := make([]*emitgate.PublishResult, len(items))
	ctx := context.Background()
	for n, e := range items {
		op := e.item["op"].(map[string]any)
		p, ok := publishers[target(op)]
		if !ok {
			p = cs.get(target(op)).NewPublisher(opts...)
			publishers[target(op)] = p
		}
		o := publishOperator(t, p, op, e.i)
		if op["broadcast"] != nil {
			ev, args := eventArgs(t, op["broadcast"], e.i)
			handles[n] = o.Broadcast(ctx, ev, args...)
		} else {
			ev, args := eventArgs(t, op["emit"], e.i)
			handles[n] = o.Emit(ctx, ev, args...)
		}
	}
	for _, p := range publishers {
		if err := p.Close(); err != nil {
			t.Fatalf("%s: close: %v", where, err)
		}
	}
	for n, e := range items {
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		item, err := handles[n].Get(wctx)
		cancel()
		checkOutcome(t, emitgate.Result{Receivers: item.Receivers, Duplicate: item.Duplicate}, err, expectOf(e.item), fmt.Sprintf("%s event %d", where, n))
	}
}

func runClosed(t *testing.T, sc scenario) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	for n, st := range sc.Steps {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		cl, err := emitgate.New(ctx, addr, emitgate.WithInsecure(), emitgate.WithTimeout(5*time.Second))
		cancel()
		var res emitgate.Result
		if err == nil {
			cs := &clients{t: t, addr: addr, m: map[string]*emitgate.Client{"": cl}}
			res, err = perform(t, cs, st.Op, -1)
			cs.close()
		}
		// New fails at once for a gateway that does not listen: its error
		// is the call's.
		checkOutcome(t, res, err, st.Expect, fmt.Sprintf("step %d", n))
	}
}

func runScenario(t *testing.T, s *stack, sc scenario) {
	sio := map[string]*sioClient{}
	names := make([]string, 0, len(sc.Clients))
	for name := range sc.Clients {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		spec := sc.Clients[name]
		ns := spec.Namespace
		if ns == "" {
			ns = "/"
		}
		sio[name] = s.connect(t, ns, spec.Server, spec.Rooms...)
	}
	for _, l := range sc.Listen {
		s.listen(t, l.Namespace, l.Event)
	}
	cs := &clients{t: t, addr: s.GRPC, m: map[string]*emitgate.Client{}}
	defer cs.close()
	for n, st := range sc.Steps {
		where := fmt.Sprintf("step %d", n)
		switch {
		case st.Batch != nil:
			runBatch(t, cs, st, where)
		case st.Publisher != nil:
			runPublisher(t, cs, st, where)
		default:
			res, err := perform(t, cs, st.Op, -1)
			checkOutcome(t, res, err, st.Expect, where)
		}
	}
	want := sc.Expect
	for name, reason := range want.Disconnected {
		if got := sio[name].disconnected(t); got != reason {
			t.Fatalf("client %s: disconnected %q, want %q", name, got, reason)
		}
	}
	for name, rooms := range want.Rooms {
		got := slices.DeleteFunc(sio[name].rooms(t), func(r string) bool { return r == sio[name].SID })
		slices.Sort(got)
		w := slices.Clone(rooms)
		slices.Sort(w)
		if !slices.Equal(got, w) {
			t.Fatalf("rooms of client %s: %v, want %v", name, got, w)
		}
	}
	for _, se := range want.ServerEvents {
		events := s.serverEvents(t, se.Namespace, se.Event, se.Count)
		if len(events) != se.Count {
			t.Fatalf("server events: %d, want %d", len(events), se.Count)
		}
		for _, e := range events {
			if !same(e.Args, expected(se.Args, -1)) {
				t.Fatalf("server event %v, want %v", e.Args, se.Args)
			}
		}
	}
	// One barrier per namespace: what a client had not received before it
	// was not delivered (Redis delivers to each server in publish order).
	barriers := map[string]string{}
	root := cs.get("")
	for name := range want.Deliveries {
		ns := sio[name].namespace
		if _, ok := barriers[ns]; ok {
			continue
		}
		barriers[ns] = "barrier-" + conformanceRun + "-" + strconv.Itoa(len(barriers))
		if _, err := root.Of(ns).Broadcast(context.Background(), barriers[ns]); err != nil {
			t.Fatal(err)
		}
	}
	for name, deliveries := range want.Deliveries {
		barrier := barriers[sio[name].namespace]
		events := sio[name].until(t, barrier, 1).Events
		cut := slices.IndexFunc(events, func(e event) bool { return e.Event == barrier })
		got := events[:cut]
		wanted := unroll(deliveries)
		if len(got) != len(wanted) {
			t.Fatalf("client %s got %d events (%v...), want %d", name, len(got), head(got), len(wanted))
		}
		for n, w := range wanted {
			we := substitute(w.item["event"].(string), w.i)
			wa := expected(w.item["args"], w.i)
			if got[n].Event != we || !same(any(got[n].Args), wa) {
				t.Fatalf("client %s event %d: %v %v, want %v %v", name, n, got[n].Event, got[n].Args, we, wa)
			}
		}
	}
}

func head(events []event) []event {
	if len(events) > 5 {
		return events[:5]
	}
	return events
}
