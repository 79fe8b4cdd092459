package emitgate_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	emitgate "github.com/emitgate/emitgate/sdk/go"
	emitgatev1 "github.com/emitgate/emitgate/sdk/go/gen/emitgate/v1"
)

// The Publisher's tests run against the real gateway, Redis and Socket.IO
// servers of the test stacks, like the rest of the suite.

// requestLog records the item counts of the BatchEmit calls a client
// makes (attempts included), through a gRPC interceptor.
type requestLog struct {
	mu    sync.Mutex
	sizes []int
	errs  []error
	// before, when set, runs before each call with its attempt number
	// (1 for the first call); after runs with the call's error.
	before func(n int)
	after  func(n int, err error)
}

func (l *requestLog) option() emitgate.Option {
	return emitgate.WithDialOptions(grpc.WithUnaryInterceptor(
		func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
			r, ok := req.(*emitgatev1.BatchEmitRequest)
			if !ok {
				return invoker(ctx, method, req, reply, cc, opts...)
			}
			l.mu.Lock()
			l.sizes = append(l.sizes, itemCount(r))
			n := len(l.sizes)
			before, after := l.before, l.after
			l.mu.Unlock()
			if before != nil {
				before(n)
			}
			err := invoker(ctx, method, req, reply, cc, opts...)
			l.mu.Lock()
			l.errs = append(l.errs, err)
			l.mu.Unlock()
			if after != nil {
				after(n, err)
			}
			return err
		}))
}

// itemCount is the number of items of a request, also when the Publisher
// sent them encoded already (as the message's unknown fields).
func itemCount(r *emitgatev1.BatchEmitRequest) int {
	body, err := proto.Marshal(r)
	if err != nil {
		return -1
	}
	var full emitgatev1.BatchEmitRequest
	if err := proto.Unmarshal(body, &full); err != nil {
		return -1
	}
	return len(full.GetItems())
}

func (l *requestLog) calls() ([]int, []error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]int(nil), l.sizes...), append([]error(nil), l.errs...)
}

// newPublisher starts a Publisher closed at the end of the test.
func newPublisher(t *testing.T, c *emitgate.Client, opts ...emitgate.PublisherOption) *emitgate.Publisher {
	t.Helper()
	p := c.NewPublisher(opts...)
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// get waits (at most 20 s) for a result.
func get(t *testing.T, r *emitgate.PublishResult) (emitgate.ItemResult, error) {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	return r.Get(tctx)
}

func flush(t *testing.T, p *emitgate.Publisher) {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := p.Flush(tctx); err != nil {
		t.Fatalf("Flush: %v", err)
	}
}

func isReady(r *emitgate.PublishResult) bool {
	select {
	case <-r.Ready():
		return true
	default:
		return false
	}
}

// numbered asserts that events are exactly n events name with arguments
// 0..n-1 in order.
func numbered(t *testing.T, who string, events []event, name string, n int) {
	t.Helper()
	if len(events) != n {
		t.Fatalf("%s: want %d events, got %d: %v", who, n, len(events), events)
	}
	for i, e := range events {
		if e.Event != name || argsJSON(t, e.Args) != fmt.Sprintf("[%d]", i) {
			t.Fatalf("%s: event %d is %v, want %s[%d]", who, i, e, name, i)
		}
	}
}

func TestPublisherDeliversEventsInPublishOrder(t *testing.T) {
	s := harness(t)
	c := newClient(t, s)
	ns := namespaceFor(t)
	a := s.connect(t, ns, 0, "r")
	b := s.connect(t, ns, 1, "r", "muted")

	// Small batches, one call at a time: order holds across batches.
	p := newPublisher(t, c, emitgate.WithMaxInFlight(1), emitgate.WithMaxItems(3))
	const n = 20
	results := make([]*emitgate.PublishResult, n)
	for i := range results {
		if i%4 == 3 {
			results[i] = p.Of(ns).Except("muted").Broadcast(ctx, "n", i)
		} else {
			results[i] = p.Of(ns).To("r").Emit(ctx, "n", i)
		}
	}
	flush(t, p)
	for i, r := range results {
		if !isReady(r) {
			t.Fatalf("result %d not ready after Flush", i)
		}
		res, err := r.Get(ctx)
		if err != nil || res.Receivers != 2 || res.Duplicate || res.Err != nil {
			t.Fatalf("result %d: %+v %v", i, res, err)
		}
	}
	got := barrier(t, c, ns, a, b)
	numbered(t, "member of r", got[0], "n", n)
	if len(got[1]) != n-n/4 {
		t.Fatalf("muted member: want the %d emits, got %v", n-n/4, got[1])
	}
}

func TestPublisherChunks2500EventsAtMaxItems(t *testing.T) {
	// The secured stack's gateway has the default item limit (1000).
	s := securedStack.get(t)
	var log requestLog
	c := tlsClient(t, s, emitgate.WithAPIKey(fullSecret), log.option())
	ns := namespaceFor(t)
	member := s.connect(t, ns, 0, "r")

	// No linger timer: only full batches and the flush send.
	p := newPublisher(t, c, emitgate.WithLinger(time.Hour), emitgate.WithMaxInFlight(1))
	const n = 2500
	results := make([]*emitgate.PublishResult, n)
	for i := range results {
		results[i] = p.Of(ns).To("r").Emit(ctx, "n", i)
	}
	flush(t, p)
	for i, r := range results {
		if res, err := r.Get(ctx); err != nil || res.Receivers != 2 {
			t.Fatalf("result %d: %+v %v", i, res, err)
		}
	}
	if sizes, _ := log.calls(); fmt.Sprint(sizes) != "[1000 1000 500]" {
		t.Fatalf("BatchEmit calls of %v items, want [1000 1000 500]", sizes)
	}
	numbered(t, "member", barrier(t, c, ns, member)[0], "n", n)
}

func TestPublisherUsesTheLowerLimitTheGatewayReports(t *testing.T) {
	// The plain stack's gateway takes at most maxBatchItems items.
	s := harness(t)
	var log requestLog
	c := newClient(t, s, log.option())
	ns := namespaceFor(t)
	member := s.connect(t, ns, 1, "r")

	p := newPublisher(t, c, emitgate.WithLinger(time.Hour), emitgate.WithMaxInFlight(1))
	const n = 2*maxBatchItems + 2
	results := make([]*emitgate.PublishResult, n)
	for i := range results {
		results[i] = p.Of(ns).To("r").Emit(ctx, "n", i)
	}
	flush(t, p)
	for i, r := range results {
		if _, err := r.Get(ctx); err != nil {
			t.Fatalf("result %d: %v", i, err)
		}
	}
	// The refused request published nothing; the client keeps the limit.
	want := fmt.Sprint([]int{n, maxBatchItems, maxBatchItems, 2})
	if sizes, _ := log.calls(); fmt.Sprint(sizes) != want {
		t.Fatalf("BatchEmit calls of %v items, want %s", sizes, want)
	}
	numbered(t, "member", barrier(t, c, ns, member)[0], "n", n)

	// Later batches are formed at the limit at once.
	for i := 0; i < maxBatchItems+1; i++ {
		p.Of(ns).To("r").Emit(ctx, "m", i)
	}
	flush(t, p)
	if sizes, _ := log.calls(); fmt.Sprint(sizes[4:]) != fmt.Sprint([]int{maxBatchItems, 1}) {
		t.Fatalf("later calls of %v items", sizes[4:])
	}
	numbered(t, "member", barrier(t, c, ns, member)[0], "m", maxBatchItems+1)
}

func TestPublisherDeliversAPerItemErrorToItsHandleOnly(t *testing.T) {
	s := harness(t)
	c := newClient(t, s)
	ns := namespaceFor(t)
	member := s.connect(t, ns, 0, "r")

	p := newPublisher(t, c, emitgate.WithLinger(time.Hour))
	op := p.Of(ns).To("r")
	results := []*emitgate.PublishResult{
		op.Emit(ctx, "ok0"),
		op.Emit(ctx, "disconnect"), // reserved: refused by the gateway
		p.Of(ns).Emit(ctx, "no-room"),
		op.Emit(ctx, "bad-arg", make(chan int)),
		op.Emit(ctx, "bad-msgpack", emitgate.RawMsgpack{0xc1}), // 0xc1 is never valid
		p.Of(ns).To("r").Broadcast(ctx, "rooms-in-broadcast"),
		op.Emit(ctx, "ok6"),
		// Protobuf cannot carry it; it must not fail the batch.
		p.Of(ns).To("r", "bad-\xff").Emit(ctx, "not-utf8"),
	}
	// Refused before sending: known at once, before any flush.
	for _, i := range []int{2, 3, 5, 7} {
		if !isReady(results[i]) {
			t.Fatalf("result %d of a locally invalid event is not ready at once", i)
		}
	}
	flush(t, p)
	want := map[int]struct {
		field string
		local bool
	}{
		1: {"event", false},
		2: {"rooms", true},
		3: {"args[0]", true},
		4: {"args[0].msgpack", false},
		5: {"rooms", true},
		7: {"rooms[1]", true},
	}
	for i, r := range results {
		res, err := r.Get(ctx)
		w, bad := want[i]
		if !bad {
			if err != nil || res.Receivers != 2 {
				t.Errorf("result %d: %+v %v", i, res, err)
			}
			continue
		}
		if !errors.Is(err, res.Err) {
			t.Errorf("result %d: Get's error %v is not ItemResult.Err %v", i, err, res.Err)
		}
		wantViolation(t, err, w.local, w.field)
	}
	got := barrier(t, c, ns, member)[0]
	if g := argsJSON(t, []any{got}); g != `[[{"event":"ok0","args":[]},{"event":"ok6","args":[]}]]` {
		t.Fatalf("member got %s", g)
	}
}

func TestPublisherLingerSendsASingleEventWithoutFlush(t *testing.T) {
	s := harness(t)
	c := newClient(t, s)
	ns := namespaceFor(t)
	member := s.connect(t, ns, 1, "r")

	p := newPublisher(t, c) // the default linger
	res, err := get(t, p.Of(ns).To("r").Emit(ctx, "alone", 1))
	if err != nil || res.Receivers != 2 {
		t.Fatalf("result %+v %v", res, err)
	}
	only(t, "member", barrier(t, c, ns, member)[0], "alone", `[1]`)
}

func TestPublisherCloseDeliversEverythingBuffered(t *testing.T) {
	s := harness(t)
	c := newClient(t, s)
	ns := namespaceFor(t)
	member := s.connect(t, ns, 0, "r")

	p := c.NewPublisher(emitgate.WithLinger(time.Hour), emitgate.WithMaxInFlight(1))
	const n = 7
	results := make([]*emitgate.PublishResult, n)
	for i := range results {
		results[i] = p.Of(ns).To("r").Emit(ctx, "n", i)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for i, r := range results {
		if !isReady(r) {
			t.Fatalf("result %d not ready after Close", i)
		}
		if _, err := r.Get(ctx); err != nil {
			t.Fatalf("result %d: %v", i, err)
		}
	}
	numbered(t, "member", barrier(t, c, ns, member)[0], "n", n)

	// Publishing after Close fails at once and sends nothing.
	_, err := p.Of(ns).To("r").Emit(ctx, "late").Get(ctx)
	if !errors.Is(err, emitgate.ErrPublisherClosed) || emitgate.Code(err) != codes.FailedPrecondition || !asError(t, err).Local {
		t.Fatalf("after Close: want ErrPublisherClosed, got %v", err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatalf("Flush after Close: %v", err)
	}
	none(t, "member", barrier(t, c, ns, member)[0])
}

func TestPublisherBufferFullFailsFastWhenConfigured(t *testing.T) {
	s := harness(t)
	// The "hang" target's Redis never answers: a call ends after the
	// gateway's Redis timeout (1 s), and its events stay unanswered until
	// then.
	c := newClient(t, s, emitgate.WithTarget("hang"))
	p := newPublisher(t, c, emitgate.WithBuffer(2), emitgate.WithLinger(0), emitgate.WithOnFull(emitgate.OnFullError))
	first := []*emitgate.PublishResult{p.To("r").Emit(ctx, "x", 1), p.To("r").Emit(ctx, "x", 2)}
	full := p.To("r").Emit(ctx, "x", 3)
	if !isReady(full) {
		t.Fatal("publishing into a full buffer did not fail at once")
	}
	_, err := full.Get(ctx)
	if !errors.Is(err, emitgate.ErrBufferFull) || !emitgate.IsResourceExhausted(err) || !asError(t, err).Local {
		t.Fatalf("want a Local ResourceExhausted ErrBufferFull, got %v", err)
	}
	for i, r := range first {
		if _, err := get(t, r); !emitgate.IsUnavailable(err) {
			t.Fatalf("event %d: want Unavailable from the hanging Redis, got %v", i, err)
		}
	}
	// Answered events free the buffer.
	if r := p.To("r").Emit(ctx, "x", 4); isReady(r) {
		_, err := r.Get(ctx)
		t.Fatalf("publishing after the buffer emptied failed at once: %v", err)
	}
}

func TestPublisherBufferFullBlocksByDefault(t *testing.T) {
	s := harness(t)
	c := newClient(t, s, emitgate.WithTarget("hang"))
	// The first two events fill the buffer and one batch: they are
	// answered together.
	p := newPublisher(t, c, emitgate.WithBuffer(2), emitgate.WithMaxItems(2), emitgate.WithLinger(time.Hour))
	first := []*emitgate.PublishResult{p.To("r").Emit(ctx, "x", 1), p.To("r").Emit(ctx, "x", 2)}

	// A publish that finds the buffer full waits; its context bounds the
	// wait, and then nothing was sent.
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	_, err := p.To("r").Emit(short, "x", 3).Get(ctx)
	if !emitgate.IsDeadlineExceeded(err) || !errors.Is(err, context.DeadlineExceeded) || !asError(t, err).Local {
		t.Fatalf("blocked publish with an ending context: want a Local DeadlineExceeded, got %v", err)
	}
	for i, r := range first {
		if isReady(r) {
			t.Fatalf("event %d answered within the short context: the test proves nothing", i)
		}
	}
	// Without a deadline, it returns once earlier events are answered.
	blocked := p.To("r").Emit(ctx, "x", 4)
	for i, r := range first {
		if !isReady(r) {
			t.Fatalf("the blocked publish returned before event %d was answered", i)
		}
	}
	flush(t, p)
	if _, err := blocked.Get(ctx); !emitgate.IsUnavailable(err) {
		t.Fatalf("the blocked event: want Unavailable from the hanging Redis, got %v", err)
	}
}

// gateway is an emitgate process of the test's own, on a fixed port so
// that it can be stopped and started again.
type gateway struct {
	t      *testing.T
	addr   string
	args   []string
	cmd    *exec.Cmd
	exited chan error
}

func startGateway(t *testing.T, redisURL string) *gateway {
	t.Helper()
	bin := os.Getenv("EMITGATE_BIN")
	if bin == "" {
		bin = filepath.Join(repoRoot(), "target", "debug", "emitgate")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	g := &gateway{t: t, addr: addr, args: []string{bin, "--listen", addr, "--redis-url", redisURL, "--admin-listen", "127.0.0.1:0"}}
	g.start()
	t.Cleanup(g.stop)
	return g
}

// start runs the gateway and waits until it accepts connections.
func (g *gateway) start() {
	g.t.Helper()
	g.cmd = exec.Command(g.args[0], g.args[1:]...)
	g.cmd.Env = append(os.Environ(), "NO_COLOR=1")
	if err := g.cmd.Start(); err != nil {
		g.t.Fatalf("gateway: %v", err)
	}
	g.exited = make(chan error, 1)
	go func(cmd *exec.Cmd, exited chan error) { exited <- cmd.Wait() }(g.cmd, g.exited)
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case err := <-g.exited:
			g.cmd = nil
			g.t.Fatalf("the gateway exited at start: %v", err)
		default:
		}
		if conn, err := net.DialTimeout("tcp", g.addr, time.Second); err == nil {
			_ = conn.Close()
			return
		}
		if time.Now().After(deadline) {
			g.t.Fatalf("the gateway does not listen on %s after 30 s", g.addr)
		}
		time.Sleep(20 * time.Millisecond) // polling a port: nothing to await
	}
}

// stop kills the gateway and waits for it to exit.
func (g *gateway) stop() {
	if g.cmd == nil {
		return
	}
	_ = g.cmd.Process.Kill()
	<-g.exited
	g.cmd = nil
}

func TestPublisherRetriesOnlyKeyedEventsWhileTheGatewayIsDown(t *testing.T) {
	s := harness(t)
	g := startGateway(t, s.RedisURL)
	ns := namespaceFor(t)
	member := s.connect(t, ns, 0, "r")

	// Attempts after the first wait, in the interceptor, until the test
	// has started the gateway again: the retries then cannot run out
	// while it starts. gRPC reconnects quickly.
	var log requestLog
	restarted := make(chan struct{})
	firstFailed := make(chan struct{})
	var keyedPhase atomic.Bool
	var keyedFirst atomic.Int64
	log.before = func(n int) {
		if keyedPhase.Load() && int64(n) > keyedFirst.Load() {
			<-restarted
		}
	}
	log.after = func(n int, err error) {
		if keyedPhase.Load() && int64(n) == keyedFirst.Load() {
			close(firstFailed)
		}
	}
	tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := emitgate.New(tctx, g.addr, emitgate.WithInsecure(), log.option(),
		emitgate.WithDialOptions(grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 20 * time.Millisecond, Multiplier: 1.6, MaxDelay: 100 * time.Millisecond},
			MinConnectTimeout: time.Second,
		})))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	p := newPublisher(t, c, emitgate.WithLinger(time.Hour), emitgate.WithMaxInFlight(1))

	before := p.Of(ns).To("r").Emit(ctx, "before")
	flush(t, p)
	if _, err := before.Get(ctx); err != nil {
		t.Fatalf("with the gateway up: %v", err)
	}
	g.stop()

	// Without keys: one attempt, and every event gets Unavailable.
	unkeyed := []*emitgate.PublishResult{p.Of(ns).To("r").Emit(ctx, "lost", 1), p.Of(ns).Broadcast(ctx, "lost", 2)}
	flush(t, p)
	for i, r := range unkeyed {
		if _, err := r.Get(ctx); !emitgate.IsUnavailable(err) || asError(t, err).Local {
			t.Fatalf("unkeyed event %d: want Unavailable, got %v", i, err)
		}
	}
	sizes, _ := log.calls()
	if len(sizes) != 2 {
		t.Fatalf("BatchEmit calls of %v items: want one call before and one for the unkeyed events", sizes)
	}

	// With keys: retried until the gateway is back, published once.
	keyedFirst.Store(int64(len(sizes) + 1))
	keyedPhase.Store(true)
	var keyed []*emitgate.PublishResult
	for i := 0; i < 3; i++ {
		keyed = append(keyed, p.Of(ns).To("r").IdempotencyKey(unique(t, fmt.Sprint(i))).Emit(ctx, "kept", i))
	}
	keyed = append(keyed, p.Of(ns).IdempotencyKey(unique(t, "b")).Broadcast(ctx, "kept", 3))
	flushed := make(chan error, 1)
	go func() { flushed <- p.Flush(tctx) }()
	select {
	case <-firstFailed:
	case <-tctx.Done():
		t.Fatal("the keyed batch was not attempted")
	}
	g.start()
	close(restarted)
	if err := <-flushed; err != nil {
		t.Fatalf("Flush: %v", err)
	}
	for i, r := range keyed {
		res, err := r.Get(ctx)
		if err != nil || res.Duplicate || res.Receivers != 2 {
			t.Fatalf("keyed event %d: %+v %v", i, res, err)
		}
	}
	sizes, errs := log.calls()
	if len(sizes) < 4 || !emitgate.IsUnavailable(errs[2]) || errs[len(errs)-1] != nil {
		t.Fatalf("calls of %v items with errors %v: want a failed attempt, then a successful retry", sizes, errs)
	}
	got := barrier(t, c, ns, member)[0]
	numbered(t, "member", got[1:], "kept", 4)
	if got[0].Event != "before" {
		t.Fatalf("member got %v", got)
	}
}
