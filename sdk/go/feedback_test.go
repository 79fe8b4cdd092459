package emitgate_test

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	emitgate "github.com/emitgate/emitgate/sdk/go"
)

// connectWith connects a client with the control API's other fields:
// "ack" ({"reply": v} or "never"), "data" (the server's socket.data),
// "auth" and "headers".
func (s *stack) connectWith(t *testing.T, namespace string, server int, rooms []string, extra map[string]any) *sioClient {
	t.Helper()
	body := map[string]any{"namespace": namespace, "server": server, "rooms": append([]string{}, rooms...)}
	for k, v := range extra {
		body[k] = v
	}
	c := &sioClient{s: s, namespace: namespace}
	s.call(t, "POST", "/clients", body, http.StatusOK, c)
	return c
}

// listenReplying registers handlers on every server; those of the servers
// listed call the server-side emit's callback with reply.
func (s *stack) listenReplying(t *testing.T, namespace, event string, reply any, servers []int) {
	t.Helper()
	s.call(t, "POST", "/listen", map[string]any{"namespace": namespace, "event": event, "reply": reply, "servers": servers}, http.StatusOK, nil)
}

func bin(b []byte) map[string]any {
	return map[string]any{"$binary": base64.StdEncoding.EncodeToString(b)}
}

func ackReply(v any) map[string]any { return map[string]any{"ack": map[string]any{"reply": v}} }

// sameItems reports whether got holds the items of want in any order.
func sameItems(got, want []any) bool {
	if len(got) != len(want) {
		return false
	}
	used := make([]bool, len(want))
outer:
	for _, g := range got {
		for i, w := range want {
			if !used[i] && reflect.DeepEqual(g, w) {
				used[i] = true
				continue outer
			}
		}
		return false
	}
	return true
}

func TestEmitWithAckGathersValuesBinaryAndNestedBinary(t *testing.T) {
	s := harness(t)
	c := newClient(t, s)
	ns := namespaceFor(t)
	s.connectWith(t, ns, 0, []string{"r"}, ackReply(map[string]any{"ok": true, "n": 7, "x": 1.5}))
	s.connectWith(t, ns, 1, []string{"r"}, ackReply(bin([]byte{1, 2, 3})))
	s.connectWith(t, ns, 1, []string{"r"}, ackReply(map[string]any{"file": bin([]byte{9}), "name": "x"}))
	outside := s.connectWith(t, ns, 0, []string{"other"}, ackReply("wrong"))

	r, err := c.Of(ns).To("r").Timeout(5*time.Second).EmitWithAck(ctx, "question", "q1")
	if err != nil {
		t.Fatal(err)
	}
	if !r.Complete || r.Sockets != 3 || r.Servers != 2 || r.ServersExpected != 2 {
		t.Errorf("result %+v, want 3 sockets from 2 of 2 servers, complete", r)
	}
	want := []any{
		map[string]any{"ok": true, "n": int64(7), "x": 1.5},
		[]byte{1, 2, 3},
		map[string]any{"file": []byte{9}, "name": "x"},
	}
	if !sameItems(r.Acks, want) {
		t.Errorf("acks %#v, want %#v in any order", r.Acks, want)
	}
	none(t, "client outside the room", barrier(t, c, ns, outside)[0])
}

func TestEmitWithAckFromAClientThatNeverAcksIsIncomplete(t *testing.T) {
	s := harness(t)
	c := newClient(t, s)
	ns := namespaceFor(t)
	s.connectWith(t, ns, 0, nil, ackReply(1))
	s.connectWith(t, ns, 1, nil, map[string]any{"ack": "never"})

	start := time.Now()
	r, err := c.Of(ns).Timeout(600*time.Millisecond).EmitWithAck(ctx, "poll") // every socket
	if err != nil {
		t.Fatal(err)
	}
	if elapsed := time.Since(start); elapsed < 500*time.Millisecond || elapsed > 5*time.Second {
		t.Errorf("answered after %v, want the 600 ms timeout", elapsed)
	}
	if r.Complete || r.Sockets != 2 || r.ServersExpected != 2 || !reflect.DeepEqual(r.Acks, []any{int64(1)}) {
		t.Errorf("result %+v, want the one ack of 2 sockets, incomplete", r)
	}
}

func TestFetchSocketsOfARoomANamespaceAndWithExcept(t *testing.T) {
	s := harness(t)
	c := newClient(t, s)
	ns := namespaceFor(t)
	a := s.connectWith(t, ns, 0, []string{"r", "vip"}, map[string]any{
		"data":    map[string]any{"user": "u1", "n": 3},
		"auth":    map[string]any{"token": "secret-token"},
		"headers": map[string]any{"cookie": "session=secret", "authorization": "Bearer secret", "x-app": "demo"},
	})
	b := s.connectWith(t, ns, 1, []string{"r"}, nil)
	other := s.connectWith(t, ns, 1, []string{"elsewhere"}, nil)

	r, err := c.Of(ns).In("r").FetchSockets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Complete || r.Truncated || r.Servers != 2 || r.ServersExpected != 2 {
		t.Errorf("result %+v, want complete from 2 of 2 servers", r)
	}
	ids := func(r emitgate.FetchSocketsResult) []string {
		var out []string
		for _, x := range r.Sockets {
			out = append(out, x.ID)
		}
		slices.Sort(out)
		return out
	}
	sorted := func(v ...string) []string { slices.Sort(v); return v }
	if got := ids(r); !slices.Equal(got, sorted(a.SID, b.SID)) {
		t.Errorf("sockets %v, want %v", got, sorted(a.SID, b.SID))
	}
	for _, x := range r.Sockets {
		if x.ID != a.SID {
			continue
		}
		rooms := sorted(x.Rooms...)
		if !slices.Equal(rooms, sorted(a.SID, "r", "vip")) {
			t.Errorf("rooms %v", rooms)
		}
		if !reflect.DeepEqual(x.Data, map[string]any{"user": "u1", "n": int64(3)}) {
			t.Errorf("data %#v", x.Data)
		}
		h := x.Handshake
		if h.Headers["x-app"] != "demo" || h.Headers["cookie"] != "" || h.Headers["authorization"] != "" {
			t.Errorf("headers %v: want x-app, never cookie nor authorization", h.Headers)
		}
		if h.Issued <= 0 || h.Address == "" || !strings.HasPrefix(h.URL, "/socket.io/") {
			t.Errorf("handshake %+v", h)
		}
	}
	if text := strings.ToLower(fmt.Sprintf("%+v", r)); strings.Contains(text, "secret") {
		t.Errorf("a secret came back: %s", text)
	}

	all, err := c.Of(ns).FetchSockets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(all); !slices.Equal(got, sorted(a.SID, b.SID, other.SID)) {
		t.Errorf("namespace: %v", got)
	}
	except, err := c.Of(ns).Except("vip").FetchSockets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(except); !slices.Equal(got, sorted(b.SID, other.SID)) {
		t.Errorf("except vip: %v", got)
	}
}

func TestAllRoomsAndServerCount(t *testing.T) {
	s := harness(t)
	c := newClient(t, s)
	ns := namespaceFor(t)
	a := s.connectWith(t, ns, 0, []string{"x"}, nil)
	b := s.connectWith(t, ns, 1, []string{"y", "x"}, nil)

	r, err := c.Of(ns).Timeout(3 * time.Second).AllRooms(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{a.SID, b.SID, "x", "y"}
	slices.Sort(want)
	if !r.Complete || r.Truncated || !slices.Equal(r.Rooms, want) {
		t.Errorf("result %+v, want rooms %v, complete", r, want)
	}
	n, err := c.Of(ns).ServerCount(ctx)
	if err != nil || n != 2 {
		t.Errorf("ServerCount = %d, %v; want 2", n, err)
	}
	if n, err := c.ServerCount(ctx); err != nil || n != 2 {
		t.Errorf("Client.ServerCount = %d, %v; want 2", n, err)
	}
}

func TestServerSideEmitWithAck(t *testing.T) {
	s := harness(t)
	c := newClient(t, s)
	ns := namespaceFor(t)
	s.listenReplying(t, ns, "ping", map[string]any{"pong": []any{1, "x", nil}}, []int{0, 1})

	r, err := c.Of(ns).Timeout(3*time.Second).ServerSideEmitWithAck(ctx, "ping", "hi")
	if err != nil {
		t.Fatal(err)
	}
	pong := map[string]any{"pong": []any{int64(1), "x", nil}}
	if !r.Complete || r.ServersExpected != 2 || len(r.Replies) != 2 ||
		!reflect.DeepEqual(r.Replies[0].Reply, pong) || !reflect.DeepEqual(r.Replies[1].Reply, pong) {
		t.Errorf("result %+v, want two pongs, complete", r)
	}
	if events := s.serverEvents(t, ns, "ping", 2); len(events) != 2 || argsJSON(t, events[0].Args) != `["hi"]` {
		t.Errorf("server events %v", events)
	}

	// Only server 0's handler calls back: the call ends at its timeout.
	s.listenReplying(t, ns, "half", "only-0", []int{0})
	r, err = c.Of(ns).Timeout(600*time.Millisecond).ServerSideEmitWithAck(ctx, "half")
	if err != nil {
		t.Fatal(err)
	}
	if r.Complete || r.ServersExpected != 2 || len(r.Replies) != 1 || r.Replies[0].Reply != "only-0" {
		t.Errorf("result %+v, want the one reply of 2 servers, incomplete", r)
	}
}

func TestWaitingCallsCheckTheirInputBeforeSending(t *testing.T) {
	c := newClient(t, harness(t))
	_, err := c.Timeout(0).EmitWithAck(ctx, "e")
	wantViolation(t, err, true, "timeout_ms")
	_, err = c.Timeout(-time.Second).FetchSockets(ctx)
	wantViolation(t, err, true, "timeout_ms")
	_, err = c.To("r").ServerSideEmitWithAck(ctx, "e")
	wantViolation(t, err, true, "rooms")
	_, err = c.To("r").EmitWithAck(ctx, "e", func() {})
	wantViolation(t, err, true, "emit.args[0]")
}
