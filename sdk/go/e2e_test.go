package emitgate_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	emitgate "github.com/emitgate/emitgate/sdk/go"
	emitgatev1 "github.com/emitgate/emitgate/sdk/go/gen/emitgate/v1"
)

// newClient connects an emitgate Client to the stack's gateway.
func newClient(t *testing.T, s *stack, opts ...emitgate.Option) *emitgate.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := emitgate.New(ctx, s.GRPC, append([]emitgate.Option{emitgate.WithInsecure()}, opts...)...)
	if err != nil {
		t.Fatalf("New(%s): %v", s.GRPC, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

var barriers atomic.Int64

// barrier broadcasts a sentinel event to namespace and returns, for each
// client, the non-barrier events it received since the previous barrier
// and before this one: since Redis delivers in publish order, that is
// everything the calls made in between delivered to it.
func barrier(t *testing.T, c *emitgate.Client, namespace string, clients ...*sioClient) [][]event {
	t.Helper()
	name := barrierOf(t, c, namespace)
	out := make([][]event, len(clients))
	for i, sc := range clients {
		all := sc.until(t, name, 1).Events
		for _, e := range all[sc.seen:] {
			if !strings.HasPrefix(e.Event, "barrier-") {
				out[i] = append(out[i], e)
			}
		}
		sc.seen = len(all)
	}
	return out
}

// argsJSON renders received arguments as canonical JSON (sorted keys,
// numbers as the harness wrote them).
func argsJSON(t *testing.T, args []any) string {
	t.Helper()
	b, err := json.Marshal(args)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// only asserts that events holds exactly one event, named name, with
// arguments whose canonical JSON is wantArgs.
func only(t *testing.T, who string, events []event, name, wantArgs string) {
	t.Helper()
	if len(events) != 1 || events[0].Event != name {
		t.Fatalf("%s: want exactly one %q event, got %v", who, name, events)
	}
	if got := argsJSON(t, events[0].Args); got != wantArgs {
		t.Fatalf("%s: %q args\n got %s\nwant %s", who, name, got, wantArgs)
	}
}

func none(t *testing.T, who string, events []event) {
	t.Helper()
	if len(events) != 0 {
		t.Fatalf("%s: want no event, got %v", who, events)
	}
}

func asError(t *testing.T, err error) *emitgate.Error {
	t.Helper()
	var e *emitgate.Error
	if !errors.As(err, &e) {
		t.Fatalf("want an *emitgate.Error, got %T %v", err, err)
	}
	return e
}

// wantViolation asserts err is an InvalidArgument *Error with a violation
// on field.
func wantViolation(t *testing.T, err error, local bool, field string) *emitgate.Error {
	t.Helper()
	if !emitgate.IsInvalidArgument(err) {
		t.Fatalf("want InvalidArgument, got %v", err)
	}
	e := asError(t, err)
	if e.Local != local {
		t.Fatalf("Local = %v, want %v (%v)", e.Local, local, err)
	}
	for _, v := range e.Violations {
		if v.Field == field {
			if v.Description == "" {
				t.Fatalf("violation %s has no description", field)
			}
			return e
		}
	}
	t.Fatalf("no violation on %q in %+v", field, e.Violations)
	return nil
}

var ctx = context.Background()

func TestEmitReachesTheRoomsExceptTheExcludedOnes(t *testing.T) {
	s := harness(t)
	c := newClient(t, s)
	ns := namespaceFor(t)
	a := s.connect(t, ns, 0, "room1")
	b := s.connect(t, ns, 1, "room1", "other")
	muted := s.connect(t, ns, 1, "room1", "muted")
	outside := s.connect(t, ns, 0, "room2")

	res, err := c.Of(ns).To("room1").Except("muted").Emit(ctx, "news",
		"héllo wörld 🌍 – 日本語", 42, -7, 1.5, true, nil,
		map[string]any{"nested": map[string]any{"list": []any{1, "two", false}}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Receivers != 2 {
		t.Errorf("Receivers = %d, want 2 (one per Socket.IO server)", res.Receivers)
	}
	got := barrier(t, c, ns, a, b, muted, outside)
	want := `["héllo wörld 🌍 – 日本語",42,-7,1.5,true,null,{"nested":{"list":[1,"two",false]}}]`
	only(t, "room1 member on server 0", got[0], "news", want)
	only(t, "room1 member on server 1", got[1], "news", want)
	none(t, "muted room1 member", got[2])
	none(t, "room2 member", got[3])
}

func TestEmitToSeveralRoomsAndASocketIDDeliversOnce(t *testing.T) {
	s := harness(t)
	c := newClient(t, s)
	ns := namespaceFor(t)
	both := s.connect(t, ns, 0, "r1", "r2")
	r2 := s.connect(t, ns, 1, "r2")
	bySID := s.connect(t, ns, 1)
	outside := s.connect(t, ns, 0, "r3")

	if _, err := c.Of(ns).To("r1").In("r2", bySID.SID).Emit(ctx, "multi", 1); err != nil {
		t.Fatal(err)
	}
	got := barrier(t, c, ns, both, r2, bySID, outside)
	only(t, "member of r1 and r2", got[0], "multi", `[1]`)
	only(t, "member of r2", got[1], "multi", `[1]`)
	only(t, "socket addressed by id", got[2], "multi", `[1]`)
	none(t, "member of r3", got[3])
}

func TestUnicodeNamesAndNamespaceWithoutSlash(t *testing.T) {
	s := harness(t)
	c := newClient(t, s)
	ns := namespaceFor(t) + "-ü"
	member := s.connect(t, ns, 1, "салон-🎉")
	// Of adds the missing leading "/", like the JavaScript emitter.
	if _, err := c.Of(strings.TrimPrefix(ns, "/")).To("салон-🎉").Emit(ctx, "événement-✓", "ok"); err != nil {
		t.Fatal(err)
	}
	only(t, "member", barrier(t, c, ns, member)[0], "événement-✓", `["ok"]`)
}

func TestEmitArgumentEncodings(t *testing.T) {
	s := harness(t)
	c := newClient(t, s)
	ns := namespaceFor(t)
	member := s.connect(t, ns, 0, "r")

	type file struct {
		Name    string `json:"name"`
		Content []byte `json:"content"`
		Size    int    `json:"size,omitempty"`
	}
	big := int64(1<<62 + 1<<20) // above 2^53, exact as a float64
	blob := []byte{0, 1, 2, 253, 254, 255}
	b64 := base64.StdEncoding.EncodeToString(blob)
	rawMsgpack := emitgate.RawMsgpack{0x92, 0x01, 0xa1, 'x'} // [1, "x"]

	if _, err := c.Of(ns).To("r").Emit(ctx, "encodings",
		blob, // 0: binary
		map[string]any{"data": blob, "list": []any{"a", blob}, "n": 1}, // 1: binary nested in a map
		file{Name: "f.bin", Content: blob},                             // 2: binary in a struct, json tags
		big,                                                            // 3: big integer
		map[string]any{"id": uint64(math.MaxUint64), "s": "ü"}, // 4: big integer nested
		json.RawMessage(`{"raw":[1,2.5,"three"]}`),             // 5: raw JSON
		rawMsgpack, // 6: raw MessagePack
		struct {
			When time.Time `json:"when"`
		}{time.Date(2024, 2, 3, 4, 5, 6, 0, time.UTC)}, // 7: MarshalJSON inside
		"日本語 \u0000 \"quoted\"", // 8: unicode and escapes
	); err != nil {
		t.Fatal(err)
	}
	got := barrier(t, c, ns, member)[0]
	if len(got) != 1 || got[0].Event != "encodings" || len(got[0].Args) != 9 {
		t.Fatalf("want one encodings event with 9 args, got %v", got)
	}
	args := got[0].Args
	check := func(i int, want string) {
		t.Helper()
		if g := argsJSON(t, args[i:i+1]); g != "["+want+"]" {
			t.Errorf("arg %d\n got %s\nwant %s", i, g, want)
		}
	}
	bin := `{"$binary":"` + b64 + `"}`
	check(0, bin)
	check(1, `{"data":`+bin+`,"list":["a",`+bin+`],"n":1}`)
	check(2, `{"content":`+bin+`,"name":"f.bin"}`)
	// JavaScript numbers are float64: the client holds the nearest double.
	if n, ok := args[3].(json.Number); !ok || mustFloat(t, n) != float64(big) {
		t.Errorf("arg 3: got %v, want %v", args[3], float64(big))
	}
	if m, ok := args[4].(map[string]any); !ok || m["s"] != "ü" || mustFloat(t, m["id"]) != float64(uint64(math.MaxUint64)) {
		t.Errorf("arg 4: got %v", args[4])
	}
	check(5, `{"raw":[1,2.5,"three"]}`)
	check(6, `[1,"x"]`)
	check(7, `{"when":"2024-02-03T04:05:06Z"}`)
	check(8, `"日本語 \u0000 \"quoted\""`)
}

func mustFloat(t *testing.T, v any) float64 {
	t.Helper()
	n, ok := v.(json.Number)
	if !ok {
		t.Fatalf("%v is not a number", v)
	}
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestUnencodableArgumentFailsBeforeSending(t *testing.T) {
	s := harness(t)
	c := newClient(t, s)
	ns := namespaceFor(t)
	member := s.connect(t, ns, 0, "r")

	_, err := c.Of(ns).To("r").Emit(ctx, "never", "fine", make(chan int))
	wantViolation(t, err, true, "args[1]")
	_, err = c.Of(ns).Broadcast(ctx, "never", math.Inf(1))
	wantViolation(t, err, true, "args[0]")
	none(t, "member", barrier(t, c, ns, member)[0])
}

func TestEmitWithoutRoomFailsBeforeSending(t *testing.T) {
	s := harness(t)
	c := newClient(t, s)
	ns := namespaceFor(t)
	member := s.connect(t, ns, 0, "r")

	_, err := c.Of(ns).Except("r").Emit(ctx, "never")
	wantViolation(t, err, true, "rooms")

	// Refused before any network call: a client whose gateway does not
	// exist answers the same, not Unavailable.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	_ = l.Close()
	conn, err := grpc.NewClient(closed, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, err = emitgate.NewFromConn(conn).Of(ns).Emit(ctx, "never", 1)
	wantViolation(t, err, true, "rooms")

	// Broadcast takes no rooms: To is refused rather than ignored.
	_, err = c.Of(ns).To("r").Broadcast(ctx, "never")
	wantViolation(t, err, true, "rooms")
	none(t, "member", barrier(t, c, ns, member)[0])
}

func TestBroadcastReachesTheNamespaceExceptTheExcludedRooms(t *testing.T) {
	s := harness(t)
	c := newClient(t, s)
	ns := namespaceFor(t)
	a := s.connect(t, ns, 0)
	b := s.connect(t, ns, 1, "x")
	muted := s.connect(t, ns, 0, "muted")
	elsewhere := s.connect(t, ns+"-other", 1)

	res, err := c.Of(ns).Except("muted").Broadcast(ctx, "tick", map[string]int{"n": 1})
	if err != nil {
		t.Fatal(err)
	}
	if res.Receivers != 2 {
		t.Errorf("Receivers = %d, want 2", res.Receivers)
	}
	got := barrier(t, c, ns, a, b, muted)
	only(t, "client on server 0", got[0], "tick", `[{"n":1}]`)
	only(t, "client on server 1", got[1], "tick", `[{"n":1}]`)
	none(t, "muted client", got[2])
	none(t, "client of another namespace", barrier(t, c, ns+"-other", elsewhere)[0])
}

func TestClientMethodsUseTheDefaultNamespace(t *testing.T) {
	s := harness(t)
	c := newClient(t, s)
	root := s.connect(t, "/", 0, "r")
	keep := s.connect(t, "/", 1, "keep")
	other := s.connect(t, namespaceFor(t), 1, "r")

	if _, err := c.Broadcast(ctx, "hello", "everyone"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.To("r").Emit(ctx, "to-r", 1); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Except("keep").Compress(true).Broadcast(ctx, "flags"); err != nil {
		t.Fatal(err)
	}
	got := barrier(t, c, "/", root, keep)
	if len(got[0]) != 3 || got[0][0].Event != "hello" || got[0][1].Event != "to-r" || got[0][2].Event != "flags" {
		t.Fatalf("client in /: got %v", got[0])
	}
	only(t, "client in / and room keep", got[1], "hello", `["everyone"]`)
	// Volatile alone, while the connections are idle (see the volatile test).
	if _, err := c.Volatile().Broadcast(ctx, "volatile"); err != nil {
		t.Fatal(err)
	}
	got = barrier(t, c, "/", root, keep)
	only(t, "root client", got[0], "volatile", `[]`)
	only(t, "keep client", got[1], "volatile", `[]`)
	none(t, "client of another namespace", barrier(t, c, namespaceFor(t), other)[0])

	// SocketsJoin / SocketsLeave / DisconnectSockets on "/" itself.
	if _, err := c.SocketsJoin(ctx, "joined"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.In("joined").Emit(ctx, "after-join"); err != nil {
		t.Fatal(err)
	}
	got = barrier(t, c, "/", root, keep)
	only(t, "root client", got[0], "after-join", `[]`)
	only(t, "keep client", got[1], "after-join", `[]`)
	if _, err := c.SocketsLeave(ctx, "joined"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.In("joined").Emit(ctx, "after-leave"); err != nil {
		t.Fatal(err)
	}
	got = barrier(t, c, "/", root, keep)
	none(t, "root client", got[0])
	none(t, "keep client", got[1])
	if _, err := c.Except("keep").DisconnectSockets(ctx, true); err != nil {
		t.Fatal(err)
	}
	if reason := root.disconnected(t); reason != "io server disconnect" {
		t.Errorf("disconnect reason %q", reason)
	}
	if a := keep.until(t, barrierOf(t, c, "/"), 1); !a.Connected {
		t.Error("the client in room keep was disconnected")
	}

	// ServerSideEmit on "/".
	s.listen(t, "/", "ping")
	if _, err := c.ServerSideEmit(ctx, "ping", "pong"); err != nil {
		t.Fatal(err)
	}
	for _, e := range s.serverEvents(t, "/", "ping", 2) {
		if argsJSON(t, e.Args) != `["pong"]` {
			t.Errorf("server %d got %v", e.Server, e.Args)
		}
	}
}

// barrierOf broadcasts a fresh sentinel to namespace and returns its name.
func barrierOf(t *testing.T, c *emitgate.Client, namespace string) string {
	t.Helper()
	name := fmt.Sprintf("barrier-%d", barriers.Add(1))
	if _, err := c.Of(namespace).Broadcast(ctx, name); err != nil {
		t.Fatal(err)
	}
	return name
}

// A volatile event may be dropped for a client whose connection is busy
// writing, so each one is sent while the connection is idle: after the
// previous barrier has arrived.
func TestVolatileAndCompressStillDeliverToReadyClients(t *testing.T) {
	s := harness(t)
	c := newClient(t, s)
	ns := namespaceFor(t)
	member := s.connect(t, ns, 1, "r")

	if _, err := c.Of(ns).To("r").Volatile().Emit(ctx, "volatile", 1); err != nil {
		t.Fatal(err)
	}
	only(t, "member", barrier(t, c, ns, member)[0], "volatile", `[1]`)
	if _, err := c.Of(ns).To("r").Compress(false).Emit(ctx, "uncompressed", 2); err != nil {
		t.Fatal(err)
	}
	only(t, "member", barrier(t, c, ns, member)[0], "uncompressed", `[2]`)
	if _, err := c.Of(ns).Volatile().Compress(true).Broadcast(ctx, "both", 3); err != nil {
		t.Fatal(err)
	}
	only(t, "member", barrier(t, c, ns, member)[0], "both", `[3]`)
}

func TestOperatorsAreImmutable(t *testing.T) {
	s := harness(t)
	c := newClient(t, s)
	ns := namespaceFor(t)
	in1 := s.connect(t, ns, 0, "r1")
	in2 := s.connect(t, ns, 1, "r2")

	base := c.Of(ns)
	to1 := base.To("r1")
	to2 := base.To("r2") // must not include r1
	_ = to1.Except("r2") // must not change to1
	if _, err := to2.Emit(ctx, "only-r2"); err != nil {
		t.Fatal(err)
	}
	if _, err := to1.Emit(ctx, "only-r1"); err != nil {
		t.Fatal(err)
	}
	if _, err := base.Broadcast(ctx, "all"); err != nil { // base still has no rooms
		t.Fatal(err)
	}
	// Of switches the namespace and keeps the rooms; to1 is unchanged.
	elsewhere := s.connect(t, ns+"-2", 0, "r1")
	if _, err := to1.Of(ns+"-2").Emit(ctx, "moved"); err != nil {
		t.Fatal(err)
	}
	only(t, "r1 member of the other namespace", barrier(t, c, ns+"-2", elsewhere)[0], "moved", `[]`)
	got := barrier(t, c, ns, in1, in2)
	if len(got[0]) != 2 || got[0][0].Event != "only-r1" || got[0][1].Event != "all" {
		t.Fatalf("r1 member: %v", got[0])
	}
	if len(got[1]) != 2 || got[1][0].Event != "only-r2" || got[1][1].Event != "all" {
		t.Fatalf("r2 member: %v", got[1])
	}
}

func TestSocketsJoinAndLeave(t *testing.T) {
	s := harness(t)
	c := newClient(t, s)
	ns := namespaceFor(t)
	a := s.connect(t, ns, 0, "a")
	b := s.connect(t, ns, 1, "a", "vip")
	other := s.connect(t, ns, 1, "b")

	res, err := c.Of(ns).In("a").Except("vip").SocketsJoin(ctx, "joined", "joined2")
	if err != nil {
		t.Fatal(err)
	}
	if res.Receivers != 2 {
		t.Errorf("Receivers = %d, want 2", res.Receivers)
	}
	if _, err := c.Of(ns).To("joined2").Emit(ctx, "to-joined"); err != nil {
		t.Fatal(err)
	}
	got := barrier(t, c, ns, a, b, other)
	only(t, "socket in a", got[0], "to-joined", `[]`)
	none(t, "socket in a and vip", got[1])
	none(t, "socket in b", got[2])
	if r := strings.Join(a.rooms(t), ","); !strings.Contains(r, "joined,joined2") {
		t.Errorf("rooms of the joined socket: %s", r)
	}

	// Without To, every socket of the namespace is selected.
	if _, err := c.Of(ns).SocketsLeave(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Of(ns).To("a").Emit(ctx, "to-a"); err != nil {
		t.Fatal(err)
	}
	for i, evs := range barrier(t, c, ns, a, b, other) {
		if len(named(evs, "to-a")) != 0 {
			t.Errorf("client %d still in room a: %v", i, evs)
		}
	}
	for _, sc := range []*sioClient{a, b} {
		for _, r := range sc.rooms(t) {
			if r == "a" {
				t.Errorf("client %s still in room a", sc.ID)
			}
		}
	}
}

func TestDisconnectSockets(t *testing.T) {
	s := harness(t)
	c := newClient(t, s)
	ns := namespaceFor(t)
	kick := s.connect(t, ns, 0, "kick")
	kickClose := s.connect(t, ns, 1, "kick-close")
	stay := s.connect(t, ns, 1, "kick", "vip")

	res, err := c.Of(ns).In("kick").Except("vip").DisconnectSockets(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if res.Receivers != 2 {
		t.Errorf("Receivers = %d, want 2", res.Receivers)
	}
	if reason := kick.disconnected(t); reason != "io server disconnect" {
		t.Errorf("reason %q", reason)
	}
	if _, err := c.Of(ns).In("kick-close").DisconnectSockets(ctx, true); err != nil {
		t.Fatal(err)
	}
	if reason := kickClose.disconnected(t); reason == "" {
		t.Error("no reason")
	}
	if a := stay.until(t, barrierOf(t, c, ns), 1); !a.Connected {
		t.Errorf("the vip socket was disconnected: %v", a)
	}
}

func TestServerSideEmit(t *testing.T) {
	s := harness(t)
	c := newClient(t, s)
	ns := namespaceFor(t)
	s.listen(t, ns, "hello")

	res, err := c.Of(ns).ServerSideEmit(ctx, "hello", "wörld", 1, map[string]any{"big": uint64(1) << 60}, json.RawMessage(`[true]`))
	if err != nil {
		t.Fatal(err)
	}
	if res.Receivers != 2 {
		t.Errorf("Receivers = %d, want 2", res.Receivers)
	}
	events := s.serverEvents(t, ns, "hello", 2)
	seen := map[int]bool{}
	for _, e := range events {
		seen[e.Server] = true
		if len(e.Args) != 4 || argsJSON(t, []any{e.Args[0], e.Args[1], e.Args[3]}) != `["wörld",1,[true]]` ||
			mustFloat(t, e.Args[2].(map[string]any)["big"]) != float64(uint64(1)<<60) {
			t.Errorf("server %d got %v", e.Server, e.Args)
		}
	}
	if !seen[0] || !seen[1] {
		t.Errorf("want both servers, got %v", events)
	}

	// Servers receive JSON: binary is refused before sending, and so is a
	// selection of rooms.
	_, err = c.Of(ns).ServerSideEmit(ctx, "hello", map[string]any{"b": []byte{1}})
	wantViolation(t, err, true, "args[0]")
	_, err = c.Of(ns).To("r").ServerSideEmit(ctx, "hello")
	wantViolation(t, err, true, "rooms")
	// A name Socket.IO reserves for servers is refused by the gateway.
	_, err = c.Of(ns).ServerSideEmit(ctx, "connection")
	wantViolation(t, err, false, "event")
}

func TestBatchSendsEmitsAndBroadcastsInOrder(t *testing.T) {
	s := harness(t)
	c := newClient(t, s)
	ns := namespaceFor(t)
	a := s.connect(t, ns, 0, "a")
	b := s.connect(t, ns, 1, "b")
	other := s.connect(t, ns+"-2", 0)

	batch := c.Batch().
		Emit(c.Of(ns).To("a"), "first", 1, []byte{7}).
		Broadcast(c.Of(ns).Except("b"), "second", "x").
		Emit(c.Of(ns).To("a", "b").Compress(false), "third", map[string]any{"k": "v"}).
		Broadcast(c.Of(ns+"-2"), "elsewhere")
	if batch.Len() != 4 {
		t.Fatalf("Len = %d", batch.Len())
	}
	res, err := batch.Send(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Published != 4 || res.Failed != 0 || len(res.Items) != 4 || res.Receivers != 8 {
		t.Errorf("result %+v, want 4 published, 8 receivers", res)
	}
	for i, it := range res.Items {
		if it.Err != nil || it.Receivers != 2 {
			t.Errorf("item %d: %+v", i, it)
		}
	}
	got := barrier(t, c, ns, a, b)
	if g := argsJSON(t, []any{got[0]}); g != `[[{"event":"first","args":[1,{"$binary":"Bw=="}]},{"event":"second","args":["x"]},{"event":"third","args":[{"k":"v"}]}]]` {
		t.Errorf("a got %s", g)
	}
	only(t, "b", got[1], "third", `[{"k":"v"}]`)
	only(t, "other namespace", barrier(t, c, ns+"-2", other)[0], "elsewhere", `[]`)

	// An empty batch sends nothing and succeeds.
	if res, err := c.Batch().Send(ctx); err != nil || len(res.Items) != 0 {
		t.Errorf("empty batch: %+v %v", res, err)
	}
}

// sendNumbered sends n emits "n" with argument i through a batch and
// checks that the member received exactly 0..n-1, in order.
func sendNumbered(t *testing.T, c *emitgate.Client, ns string, member *sioClient, n int) {
	t.Helper()
	batch := c.Batch()
	for i := 0; i < n; i++ {
		batch.Emit(c.Of(ns).To("r"), "n", i)
	}
	res, err := batch.Send(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Published != n || res.Failed != 0 || len(res.Items) != n {
		t.Fatalf("result: published %d failed %d items %d, want %d", res.Published, res.Failed, len(res.Items), n)
	}
	got := barrier(t, c, ns, member)[0]
	if len(got) != n {
		t.Fatalf("want %d events, got %d: %v", n, len(got), got)
	}
	for i, e := range got {
		if e.Event != "n" || argsJSON(t, e.Args) != fmt.Sprintf("[%d]", i) {
			t.Fatalf("event %d: %v", i, e)
		}
	}
}

func TestBatchIsChunkedAtTheItemLimit(t *testing.T) {
	s := harness(t)
	ns := namespaceFor(t)
	member := s.connect(t, ns, 1, "r")

	// The limit is known: 12 items go as 5 + 5 + 2.
	known := newClient(t, s, emitgate.WithMaxBatchItems(maxBatchItems))
	sendNumbered(t, known, ns, member, 2*maxBatchItems+2)

	// The default client (1000 items per request) learns the gateway's
	// lower limit from its refusal, which publishes nothing: still every
	// item exactly once, in order.
	learning := newClient(t, s)
	sendNumbered(t, learning, ns, member, 3*maxBatchItems+1)
	// And it keeps the smaller size.
	sendNumbered(t, learning, ns, member, maxBatchItems+1)
}

func TestBatchReportsInvalidItemsAndPublishesTheOthers(t *testing.T) {
	s := harness(t)
	// Two items per request, so that the invalid items are in later
	// requests and their paths must count from the start of the batch.
	c := newClient(t, s, emitgate.WithMaxBatchItems(2))
	ns := namespaceFor(t)
	member := s.connect(t, ns, 0, "r")

	res, err := c.Batch().
		Emit(c.Of(ns).To("r"), "ok0").
		Emit(c.Of(ns).To("r"), "ok1").
		Emit(c.Of(ns).To("r"), "connect"). // reserved
		Emit(c.Of(ns).To(""), "bad-room"). // empty room name
		Broadcast(c.Of(ns), "ok4").
		Emit(c.Of(ns).To("r"), "ok5", emitgate.RawMsgpack{0xc1}). // 0xc1 is never valid
		Send(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Published != 3 || res.Failed != 3 {
		t.Fatalf("published %d failed %d, want 3 and 3", res.Published, res.Failed)
	}
	wantField := map[int]string{2: "items[2].emit.event", 3: "items[3].emit.rooms[0]", 5: "items[5].emit.args[0].msgpack"}
	for i, it := range res.Items {
		field, bad := wantField[i]
		if !bad {
			if it.Err != nil || it.Receivers != 2 {
				t.Errorf("item %d: %+v", i, it)
			}
			continue
		}
		wantViolation(t, it.Err, false, field)
	}
	got := barrier(t, c, ns, member)[0]
	if g := argsJSON(t, []any{got}); g != `[[{"event":"ok0","args":[]},{"event":"ok1","args":[]},{"event":"ok4","args":[]}]]` {
		t.Fatalf("member got %s", g)
	}
}

func TestAtomicBatchIsAllOrNothing(t *testing.T) {
	s := harness(t)
	c := newClient(t, s)
	ns := namespaceFor(t)
	member := s.connect(t, ns, 0, "r")

	_, err := c.Batch().Atomic().
		Emit(c.Of(ns).To("r"), "ok").
		Emit(c.Of(ns).To("r"), "disconnect").
		Send(ctx)
	wantViolation(t, err, false, "items[1].emit.event")

	// An atomic batch is never split: above the limit the gateway refuses it.
	batch := c.Batch().Atomic()
	for i := 0; i <= maxBatchItems; i++ {
		batch.Broadcast(c.Of(ns), "ok")
	}
	res, err := batch.Send(ctx)
	wantViolation(t, err, false, "items")
	if res.Failed != maxBatchItems+1 || res.Published != 0 || !errors.Is(res.Items[0].Err, err) {
		t.Errorf("result %+v", res)
	}
	none(t, "member", barrier(t, c, ns, member)[0])

	res, err = c.Batch().Atomic().Emit(c.Of(ns).To("r"), "ok", 1).Send(ctx)
	if err != nil || res.Published != 1 {
		t.Fatalf("valid atomic batch: %+v %v", res, err)
	}
	only(t, "member", barrier(t, c, ns, member)[0], "ok", `[1]`)
}

func TestBatchWithLocallyInvalidItemsSendsNothing(t *testing.T) {
	s := harness(t)
	c := newClient(t, s)
	ns := namespaceFor(t)
	member := s.connect(t, ns, 0, "r")

	_, err := c.Batch().
		Emit(c.Of(ns), "no-room").
		Emit(c.Of(ns).To("r"), "fine").
		Broadcast(c.Of(ns), "bad-arg", func() {}).
		Send(ctx)
	e := wantViolation(t, err, true, "items[0].emit.rooms")
	wantViolation(t, err, true, "items[2].broadcast.args[0]")
	if len(e.Violations) != 2 {
		t.Errorf("violations %+v", e.Violations)
	}
	none(t, "member", barrier(t, c, ns, member)[0])
}

func TestGatewayValidationErrors(t *testing.T) {
	s := harness(t)
	c := newClient(t, s)
	ns := namespaceFor(t)
	member := s.connect(t, ns, 0, "r")
	op := c.Of(ns).To("r")

	_, err := op.Emit(ctx, "disconnect")
	e := wantViolation(t, err, false, "event")
	if !strings.Contains(err.Error(), "InvalidArgument") || e.Message == "" {
		t.Errorf("Error() = %q", err)
	}
	_, err = op.Emit(ctx, "")
	wantViolation(t, err, false, "event")
	_, err = c.Of(ns).To("r", "").Emit(ctx, "x")
	wantViolation(t, err, false, "rooms[1]")
	_, err = op.Emit(ctx, "x", emitgate.RawMsgpack{0x81, 0xc3, 0x01}) // map with a boolean key
	wantViolation(t, err, false, "args[0].msgpack")
	_, err = op.Emit(ctx, "x", make([]any, 65)...) // over --max-args 64
	wantViolation(t, err, false, "args")
	_, err = c.Of(ns).Except("").Broadcast(ctx, "x")
	wantViolation(t, err, false, "except_rooms[0]")
	_, err = c.Of(ns).SocketsJoin(ctx)
	wantViolation(t, err, false, "join_rooms")
	_, err = c.Of(ns).SocketsLeave(ctx)
	wantViolation(t, err, false, "leave_rooms")
	// Every error above was refused before publishing.
	none(t, "member", barrier(t, c, ns, member)[0])
}

func TestUnknownTargetIsNotFound(t *testing.T) {
	s := harness(t)
	c := newClient(t, s, emitgate.WithTarget("no-such-target"))
	calls := map[string]func() error{
		"Emit":              func() error { _, err := c.To("r").Emit(ctx, "x"); return err },
		"Broadcast":         func() error { _, err := c.Broadcast(ctx, "x"); return err },
		"SocketsJoin":       func() error { _, err := c.SocketsJoin(ctx, "r"); return err },
		"SocketsLeave":      func() error { _, err := c.SocketsLeave(ctx, "r"); return err },
		"DisconnectSockets": func() error { _, err := c.DisconnectSockets(ctx, false); return err },
		"ServerSideEmit":    func() error { _, err := c.ServerSideEmit(ctx, "x"); return err },
	}
	for name, call := range calls {
		if err := call(); !emitgate.IsNotFound(err) || asError(t, err).Local {
			t.Errorf("%s: want NotFound from the gateway, got %v", name, err)
		}
	}
	// In a non-atomic batch the target is checked per item.
	res, err := c.Batch().Emit(c.To("r"), "x").Send(ctx)
	if err != nil || res.Failed != 1 || !emitgate.IsNotFound(res.Items[0].Err) {
		t.Errorf("batch: want the item NotFound, got %+v %v", res, err)
	}
}

func TestUnreachableRedisIsUnavailable(t *testing.T) {
	s := harness(t)
	c := newClient(t, s, emitgate.WithTarget("down"))
	_, err := c.Of("/").To("r").Emit(ctx, "x", 1)
	if !emitgate.IsUnavailable(err) {
		t.Fatalf("want Unavailable, got %v", err)
	}
	_, err = c.SocketsJoin(ctx, "r")
	if !emitgate.IsUnavailable(err) {
		t.Fatalf("SocketsJoin: want Unavailable, got %v", err)
	}
	// The whole request fails: its items were not published.
	res, err := c.Batch().Broadcast(c.Of("/"), "x").Send(ctx)
	if !emitgate.IsUnavailable(err) || res.Failed != 1 || !emitgate.IsUnavailable(res.Items[0].Err) {
		t.Fatalf("batch: want Unavailable, got %+v %v", res, err)
	}

	// Mixed with items for a reachable target, only the unreachable
	// target's items fail.
	up := newClient(t, s)
	ns := namespaceFor(t)
	member := s.connect(t, ns, 0, "r")
	res, err = up.Batch().
		Emit(up.Of(ns).To("r"), "first").
		Broadcast(c.Of(ns), "lost").
		Emit(up.Of(ns).To("r"), "third").
		Send(ctx)
	if err != nil || res.Published != 2 || res.Failed != 1 || !emitgate.IsUnavailable(res.Items[1].Err) ||
		res.Items[0].Err != nil || res.Items[2].Err != nil {
		t.Fatalf("mixed batch: %+v %v", res, err)
	}
	got := barrier(t, up, ns, member)[0]
	if len(got) != 2 || got[0].Event != "first" || got[1].Event != "third" {
		t.Fatalf("member got %v", got)
	}
}

func TestDeadlines(t *testing.T) {
	s := harness(t)
	conn, err := grpc.NewClient(s.GRPC, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := emitgate.NewFromConn(conn, emitgate.WithTimeout(time.Nanosecond))
	_, err = c.To("r").Emit(ctx, "x")
	if !emitgate.IsDeadlineExceeded(err) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WithTimeout: want DeadlineExceeded, got %v", err)
	}
	res, err := c.Batch().Emit(c.To("r"), "x").Send(ctx)
	if !emitgate.IsDeadlineExceeded(err) || res.Failed != 1 {
		t.Fatalf("batch: want DeadlineExceeded, got %+v %v", res, err)
	}

	plain := newClient(t, s)
	expired, cancel := context.WithDeadline(ctx, time.Now().Add(-time.Second))
	defer cancel()
	_, err = plain.Broadcast(expired, "x")
	if !emitgate.IsDeadlineExceeded(err) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("expired context: want DeadlineExceeded, got %v", err)
	}
	canceled, cancel2 := context.WithCancel(ctx)
	cancel2()
	_, err = plain.Broadcast(canceled, "x")
	if emitgate.Code(err) != codes.Canceled || !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled context: want Canceled, got %v", err)
	}
}

func TestNewReportsAnUnreachableGateway(t *testing.T) {
	s := harness(t)

	// A closed port.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	_ = l.Close()
	tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := emitgate.New(tctx, closed, emitgate.WithInsecure()); !emitgate.IsUnavailable(err) {
		t.Errorf("closed port: want Unavailable, got %v", err)
	}
	// TLS (the default, and WithTLS) against the plaintext gateway.
	if _, err := emitgate.New(tctx, s.GRPC); err == nil {
		t.Error("default TLS against a plaintext gateway connected")
	}
	if _, err := emitgate.New(tctx, s.GRPC, emitgate.WithTLS(nil)); err == nil {
		t.Error("WithTLS against a plaintext gateway connected")
	}
	// A context that ends first.
	done, cancel2 := context.WithCancel(ctx)
	cancel2()
	if _, err := emitgate.New(done, s.GRPC, emitgate.WithInsecure()); err == nil || !errors.Is(err, context.Canceled) {
		t.Errorf("canceled context: got %v", err)
	}
}

func TestNewFromConnUsesTheCallersConnection(t *testing.T) {
	s := harness(t)
	conn, err := grpc.NewClient(s.GRPC, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ns := namespaceFor(t)
	member := s.connect(t, ns, 1, "r")

	c := emitgate.NewFromConn(conn)
	if _, err := c.Of(ns).To("r").Emit(ctx, "via-conn", "ok"); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if conn.GetState() == connectivity.Shutdown {
		t.Fatal("Close closed the caller's connection")
	}
	if _, err := c.Of(ns).To("r").Emit(ctx, "after-close", "ok"); err != nil {
		t.Fatalf("the connection is the caller's to close: %v", err)
	}
	got := barrier(t, newClient(t, s), ns, member)[0]
	if len(got) != 2 || got[0].Event != "via-conn" || got[1].Event != "after-close" {
		t.Fatalf("got %v", got)
	}

	// The generated client is reachable for what the package does not wrap.
	_, err = c.Raw().Broadcast(ctx, &emitgatev1.BroadcastRequest{Namespace: ns})
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("raw Broadcast without an event: want InvalidArgument, got %v", err)
	}
}
