package emitgate

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"google.golang.org/grpc/codes"

	emitgatev1 "github.com/emitgate/emitgate/sdk/go/gen/emitgate/v1"
)

// The Publisher's defaults; the Python and PHP SDKs use the same numbers.
const (
	// DefaultPublisherMaxItems is the most items a Publisher puts in one
	// BatchEmit request: the gateway's default max_batch_items. A lower
	// limit the gateway reports (or WithMaxBatchItems) wins.
	DefaultPublisherMaxItems = DefaultMaxBatchItems

	// DefaultPublisherMaxBytes bounds the encoded items of one request:
	// 4 MiB, well under the gateway's default max_message_bytes of 16 MiB.
	DefaultPublisherMaxBytes = 4 << 20

	// DefaultPublisherLinger is how long a batch that is not full waits for
	// more events after its first one: long enough to fill batches under
	// load, short enough not to be noticed by people.
	DefaultPublisherLinger = 5 * time.Millisecond

	// DefaultPublisherMaxInFlight is how many BatchEmit calls a Publisher
	// keeps in flight at once: enough to hide the round trip, few enough
	// not to queue work at the gateway.
	DefaultPublisherMaxInFlight = 4

	// DefaultPublisherBuffer is how many published events may wait for
	// their result before publishing blocks (or fails, with OnFullError):
	// it bounds the Publisher's memory.
	DefaultPublisherBuffer = 100_000
)

// The retry of a whole BatchEmit call that failed as Unavailable, for
// batches whose items all carry an idempotency key.
const (
	retryInitialDelay = 100 * time.Millisecond
	retryMaxDelay     = 2 * time.Second
	retryMultiplier   = 2
	// retryMaxAttempts counts the first attempt.
	retryMaxAttempts = 5
)

// OnFull says what publishing does when the Publisher's buffer is full.
type OnFull int

const (
	// OnFullBlock makes Emit and Broadcast wait until results free room in
	// the buffer, or their context ends. The default.
	OnFullBlock OnFull = iota
	// OnFullError makes Emit and Broadcast fail at once with a Local
	// ResourceExhausted error (errors.Is ErrBufferFull): fail fast.
	OnFullError
)

var (
	// ErrPublisherClosed is the cause of the error of an event published
	// after Publisher.Close (code FailedPrecondition).
	ErrPublisherClosed = errors.New("the publisher is closed")
	// ErrBufferFull is the cause of the error of an event published while
	// the buffer is full with OnFullError (code ResourceExhausted).
	ErrBufferFull = errors.New("the publisher's buffer is full")
)

// publisherConfig collects the PublisherOptions.
type publisherConfig struct {
	maxItems    int
	maxBytes    int
	linger      time.Duration
	maxInFlight int
	buffer      int
	onFull      OnFull
}

// PublisherOption configures a Publisher.
type PublisherOption func(*publisherConfig)

// WithMaxItems sets the most items per BatchEmit request
// (DefaultPublisherMaxItems). Values below 1 are ignored.
func WithMaxItems(n int) PublisherOption {
	return func(c *publisherConfig) {
		if n >= 1 {
			c.maxItems = n
		}
	}
}

// WithMaxBytes bounds the encoded size of the items of one request
// (DefaultPublisherMaxBytes). A single larger item is sent alone. Values
// below 1 are ignored.
func WithMaxBytes(n int) PublisherOption {
	return func(c *publisherConfig) {
		if n >= 1 {
			c.maxBytes = n
		}
	}
}

// WithLinger sets how long a batch that is not full waits for more events
// after its first one (DefaultPublisherLinger). Zero sends a batch as soon
// as a call can be made; events published meanwhile still join it.
func WithLinger(d time.Duration) PublisherOption {
	return func(c *publisherConfig) { c.linger = max(d, 0) }
}

// WithMaxInFlight sets how many BatchEmit calls run at once
// (DefaultPublisherMaxInFlight). With more than one, batches may be
// published out of order; 1 keeps the publish order across batches.
// Values below 1 are ignored.
func WithMaxInFlight(n int) PublisherOption {
	return func(c *publisherConfig) {
		if n >= 1 {
			c.maxInFlight = n
		}
	}
}

// WithBuffer sets how many events may wait for their result
// (DefaultPublisherBuffer); beyond it publishing blocks or fails, as
// WithOnFull says. Values below 1 are ignored.
func WithBuffer(n int) PublisherOption {
	return func(c *publisherConfig) {
		if n >= 1 {
			c.buffer = n
		}
	}
}

// WithOnFull chooses what publishing does when the buffer is full:
// OnFullBlock (the default) or OnFullError.
func WithOnFull(f OnFull) PublisherOption {
	return func(c *publisherConfig) { c.onFull = f }
}

// Publisher sends events one at a time and batches them in the
// background: the shape of a Pub/Sub or Kafka producer. Events are
// collected into BatchEmit requests (not atomic) of at most WithMaxItems
// items and WithMaxBytes bytes; a batch that is not full is sent
// WithLinger after its first event; WithMaxInFlight calls run at once.
// Each event gets a *PublishResult at once, resolved with the item's own
// result.
//
// Within a batch, events are published in publish order. With more than
// one call in flight (the default is 4) two batches may be published in
// either order; WithMaxInFlight(1) keeps the order across batches.
//
// When a whole call fails as Unavailable (the gateway or the connection is
// down), or as ResourceExhausted with a retry delay, the call is retried
// (backoff from 100 ms, doubling, at most 2 s, at most 5 attempts in all)
// only if every item of the batch carries an idempotency key, so that a
// retry cannot publish an event twice; otherwise each item's result gets
// the error. Other errors of a whole call go to every item's result.
//
// Events are encoded when they are published and a batch is sent as those
// bytes: a unary interceptor sees a *BatchEmitRequest whose items are held
// as its unknown fields (proto.Marshal gives the bytes on the wire).
//
// A Publisher is safe for concurrent use. Close it (which flushes) when
// done; closing it does not close its Client.
type Publisher struct {
	c   *Client
	cfg publisherConfig

	mu         sync.Mutex
	open       *pubBatch   // the batch events join; nil when none
	openReady  bool        // open may be sent (its linger passed, or a flush)
	openGen    uint64      // which open batch the linger timer is for
	sealed     []*pubBatch // full batches waiting for a call, oldest first
	unfinished map[*pubBatch]struct{}
	pending    int           // events accepted and not yet resolved
	space      chan struct{} // closed when pending drops; nil when nobody waits
	closed     bool
	stopping   bool

	wake       chan struct{} // tells the sender there is work (capacity 1)
	slots      chan struct{} // one token per call in flight
	senderDone chan struct{}
	closeOnce  sync.Once
	slab       []PublishResult // handles are carved out of it, amortising allocations
}

// pubBatch is one BatchEmit request being built or sent.
type pubBatch struct {
	body    []byte // the encoded request: its items entries in publish order
	ends    []int  // where each item's entry ends in body
	keyed   []bool // whether each item carries an idempotency key
	results []*PublishResult
	done    chan struct{} // closed when every result is set
}

// PublishResult is the result of one published event. Ready is closed
// when it is known; Get waits for it.
type PublishResult struct {
	ready <-chan struct{}
	res   ItemResult
}

// Ready returns a channel closed once the result is known.
func (r *PublishResult) Ready() <-chan struct{} { return r.ready }

// Get waits for the result of the event, or for ctx to end. The error is
// ItemResult.Err: nil when the event was published (or was a duplicate of
// its idempotency key), else an *Error: a Local InvalidArgument for an
// event refused before sending (no room, an argument that cannot be
// encoded; violation paths as for Operator.Emit: "rooms", "args[1]"), the
// gateway's per-item error (paths without the "items[N]." of the
// request), the error of the whole call, or a Local error for an event
// published after Close or into a full buffer with OnFullError. When ctx
// ends first, Get returns ctx's error as an *Error and the event may
// still be published.
func (r *PublishResult) Get(ctx context.Context) (ItemResult, error) {
	select {
	case <-r.ready:
		return r.res, r.res.Err
	default:
	}
	select {
	case <-r.ready:
		return r.res, r.res.Err
	case <-ctx.Done():
		return ItemResult{}, contextError(ctx, false)
	}
}

// closedChan is the Ready channel of results known at once.
var closedChan = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

func resolved(err error) *PublishResult {
	return &PublishResult{ready: closedChan, res: ItemResult{Err: err}}
}

// NewPublisher starts a Publisher that sends through c, with c's target,
// API key and timeout (per call). See Publisher for what the options do.
func (c *Client) NewPublisher(opts ...PublisherOption) *Publisher {
	cfg := publisherConfig{
		maxItems:    DefaultPublisherMaxItems,
		maxBytes:    DefaultPublisherMaxBytes,
		linger:      DefaultPublisherLinger,
		maxInFlight: DefaultPublisherMaxInFlight,
		buffer:      DefaultPublisherBuffer,
		onFull:      OnFullBlock,
	}
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	p := &Publisher{
		c:          c,
		cfg:        cfg,
		unfinished: map[*pubBatch]struct{}{},
		wake:       make(chan struct{}, 1),
		slots:      make(chan struct{}, cfg.maxInFlight),
		senderDone: make(chan struct{}),
	}
	go p.sender()
	return p
}

// PublishOperator is an Operator whose Emit and Broadcast publish through
// a Publisher. Like Operator it is an immutable value.
type PublishOperator struct {
	p  *Publisher
	op Operator
}

func (p *Publisher) root() PublishOperator { return PublishOperator{p: p, op: p.c.root()} }

// Of selects a namespace. See Operator.Of.
func (p *Publisher) Of(namespace string) PublishOperator { return p.root().Of(namespace) }

// To selects rooms in the default namespace. See Operator.To.
func (p *Publisher) To(rooms ...string) PublishOperator { return p.root().To(rooms...) }

// In is the same as To.
func (p *Publisher) In(rooms ...string) PublishOperator { return p.root().To(rooms...) }

// Except skips the sockets in rooms. See Operator.Except.
func (p *Publisher) Except(rooms ...string) PublishOperator { return p.root().Except(rooms...) }

// Volatile sets the volatile flag. See Operator.Volatile.
func (p *Publisher) Volatile() PublishOperator { return p.root().Volatile() }

// Compress sets the compress flag. See Operator.Compress.
func (p *Publisher) Compress(compress bool) PublishOperator { return p.root().Compress(compress) }

// IdempotencyKey sets the idempotency key. See Operator.IdempotencyKey.
func (p *Publisher) IdempotencyKey(key string) PublishOperator {
	return p.root().IdempotencyKey(key)
}

// Broadcast publishes an event to every socket of the default namespace.
// See PublishOperator.Broadcast.
func (p *Publisher) Broadcast(ctx context.Context, event string, args ...any) *PublishResult {
	return p.root().Broadcast(ctx, event, args...)
}

// Of selects a namespace. See Operator.Of.
func (o PublishOperator) Of(namespace string) PublishOperator {
	o.op = o.op.Of(namespace)
	return o
}

// To adds rooms. See Operator.To.
func (o PublishOperator) To(rooms ...string) PublishOperator {
	o.op = o.op.To(rooms...)
	return o
}

// In is the same as To.
func (o PublishOperator) In(rooms ...string) PublishOperator { return o.To(rooms...) }

// Except adds rooms whose sockets are skipped. See Operator.Except.
func (o PublishOperator) Except(rooms ...string) PublishOperator {
	o.op = o.op.Except(rooms...)
	return o
}

// Volatile sets the volatile flag. See Operator.Volatile.
func (o PublishOperator) Volatile() PublishOperator {
	o.op = o.op.Volatile()
	return o
}

// Compress sets the compress flag. See Operator.Compress.
func (o PublishOperator) Compress(compress bool) PublishOperator {
	o.op = o.op.Compress(compress)
	return o
}

// IdempotencyKey gives the events of the returned operator an idempotency
// key (see Operator.IdempotencyKey). Only batches whose items all carry a
// key are retried after a failure of the whole call; derive one keyed
// operator per event.
func (o PublishOperator) IdempotencyKey(key string) PublishOperator {
	o.op = o.op.IdempotencyKey(key)
	return o
}

// String describes the selection. See Operator.String.
func (o PublishOperator) String() string { return o.op.String() }

// Emit publishes event to the selected rooms (at least one) and returns
// its result handle at once. Arguments are encoded as for Operator.Emit;
// an event that cannot be sent (no room, an argument that cannot be
// encoded) gets a resolved handle with the error, and nothing is sent.
// ctx bounds only the wait for room in a full buffer (OnFullBlock); the
// event is sent in the background whatever happens to ctx afterwards.
func (o PublishOperator) Emit(ctx context.Context, event string, args ...any) *PublishResult {
	bp := entryBufs.Get().(*[]byte)
	defer putEntryBuf(bp)
	if len(args) == 1 && len(o.op.rooms) != 0 {
		if text, ok := appendFastJSON((*bp)[:0], args[0], 0); ok {
			*bp = text
			return o.emitJSON(ctx, event, text, bp)
		}
	}
	req, err := o.op.emitRequest("", event, args)
	if err == nil {
		err = checkUTF8(req.GetNamespace(), req.GetRooms(), req.GetExceptRooms(), req.GetEvent(), req.GetIdempotencyKey())
	}
	if err != nil {
		return resolved(err)
	}
	return o.p.publishItem(ctx, &emitgatev1.BatchItem{Op: &emitgatev1.BatchItem_Emit{Emit: req}}, bp)
}

// putEntryBuf gives a scratch buffer back, unless it grew huge.
func putEntryBuf(bp *[]byte) {
	if cap(*bp) <= 64<<10 {
		entryBufs.Put(bp)
	}
}

// emitJSON publishes an emit whose one argument is the JSON text, encoded
// as emitRequest would build it; the entry is encoded after the text in
// the scratch buffer *bp.
func (o PublishOperator) emitJSON(ctx context.Context, event string, text []byte, bp *[]byte) *PublishResult {
	op := o.op
	if err := checkUTF8(op.namespace, op.rooms, op.except, event, op.idemKey); err != nil {
		return resolved(err)
	}
	buf := appendJSONEmitEntry(text, op, event, text)
	*bp = buf
	return o.p.publish(ctx, buf[len(text):], op.idemKey != "")
}

// Broadcast publishes event to every socket of the namespace, minus the
// Except rooms (an operator with To rooms is refused), and returns its
// result handle at once. See Emit.
func (o PublishOperator) Broadcast(ctx context.Context, event string, args ...any) *PublishResult {
	req, err := o.op.broadcastRequest("", event, args)
	if err == nil {
		err = checkUTF8(req.GetNamespace(), nil, req.GetExceptRooms(), req.GetEvent(), req.GetIdempotencyKey())
	}
	if err != nil {
		return resolved(err)
	}
	bp := entryBufs.Get().(*[]byte)
	defer putEntryBuf(bp)
	return o.p.publishItem(ctx, &emitgatev1.BatchItem{Op: &emitgatev1.BatchItem_Broadcast{Broadcast: req}}, bp)
}

// publishItem encodes item into the scratch buffer *bp and publishes it.
func (p *Publisher) publishItem(ctx context.Context, item *emitgatev1.BatchItem, bp *[]byte) *PublishResult {
	buf, err := appendItemEntry((*bp)[:0], item)
	if err != nil {
		return resolved(localError(err, fmt.Sprintf("the event cannot be encoded: %v", err)))
	}
	*bp = buf
	keyed := item.GetEmit().GetIdempotencyKey() != "" || item.GetBroadcast().GetIdempotencyKey() != ""
	return p.publish(ctx, buf, keyed)
}

// checkUTF8 refuses strings that are not UTF-8: protobuf cannot encode
// them, and one such item would fail the whole request of its batch.
func checkUTF8(namespace string, rooms, except []string, event, key string) error {
	if utf8.ValidString(namespace) && allUTF8(rooms) && allUTF8(except) &&
		utf8.ValidString(event) && utf8.ValidString(key) {
		return nil
	}
	var vs []FieldViolation
	check := func(field, s string) {
		if !utf8.ValidString(s) {
			vs = append(vs, violation(field, "%q is not valid UTF-8", s))
		}
	}
	check("namespace", namespace)
	for i, r := range rooms {
		check(fmt.Sprintf("rooms[%d]", i), r)
	}
	for i, r := range except {
		check(fmt.Sprintf("except_rooms[%d]", i), r)
	}
	check("event", event)
	check("idempotency_key", key)
	return localError(nil, "the event has text that is not UTF-8; nothing was sent", vs...)
}

func allUTF8(ss []string) bool {
	for _, s := range ss {
		if !utf8.ValidString(s) {
			return false
		}
	}
	return true
}

// publish adds a copy of an encoded items entry to the open batch.
func (p *Publisher) publish(ctx context.Context, entry []byte, keyed bool) *PublishResult {
	size := len(entry)
	p.mu.Lock()
	for {
		if p.closed {
			p.mu.Unlock()
			return resolved(&Error{Code: codes.FailedPrecondition, Message: ErrPublisherClosed.Error(), Local: true, cause: ErrPublisherClosed})
		}
		if p.pending < p.cfg.buffer {
			break
		}
		if p.cfg.onFull == OnFullError {
			pending := p.pending
			p.mu.Unlock()
			return resolved(&Error{
				Code:    codes.ResourceExhausted,
				Message: fmt.Sprintf("%v: %d events are waiting for their result", ErrBufferFull, pending),
				Local:   true,
				cause:   ErrBufferFull,
			})
		}
		if p.space == nil {
			p.space = make(chan struct{})
		}
		space := p.space
		p.mu.Unlock()
		select {
		case <-space:
		case <-ctx.Done():
			return resolved(contextError(ctx, true))
		}
		p.mu.Lock()
	}
	p.pending++

	maxItems := min(p.cfg.maxItems, int(p.c.batchSize.Load()))
	if b := p.open; b != nil && len(b.body)+size > p.cfg.maxBytes {
		p.sealOpen()
	}
	b := p.open
	if b == nil {
		b = &pubBatch{
			// Room for maxItems events like this one (and an eighth
			// more), so that the body is not copied as it grows.
			body:    make([]byte, 0, min(p.cfg.maxBytes, size*maxItems+size*maxItems/8)),
			ends:    make([]int, 0, min(maxItems, 64)),
			keyed:   make([]bool, 0, min(maxItems, 64)),
			results: make([]*PublishResult, 0, min(maxItems, 64)),
			done:    make(chan struct{}),
		}
		p.open = b
		p.unfinished[b] = struct{}{}
		p.armLinger()
	}
	if len(p.slab) == 0 {
		p.slab = make([]PublishResult, slabSize)
	}
	r := &p.slab[0]
	p.slab = p.slab[1:]
	r.ready = b.done
	b.body = append(b.body, entry...)
	b.ends = append(b.ends, len(b.body))
	b.keyed = append(b.keyed, keyed)
	b.results = append(b.results, r)
	if len(b.results) >= maxItems || len(b.body) >= p.cfg.maxBytes {
		p.sealOpen()
	}
	p.mu.Unlock()
	return r
}

// slabSize is how many result handles are allocated at once.
const slabSize = 256

// armLinger makes the open batch ready after the linger time. p.mu is held.
func (p *Publisher) armLinger() {
	p.openGen++
	if p.cfg.linger == 0 {
		p.openReady = true
		p.signal()
		return
	}
	gen := p.openGen
	time.AfterFunc(p.cfg.linger, func() {
		p.mu.Lock()
		if p.open != nil && p.openGen == gen {
			p.openReady = true
			p.signal()
		}
		p.mu.Unlock()
	})
}

// sealOpen moves the open batch to the queue of batches to send. p.mu is
// held.
func (p *Publisher) sealOpen() {
	if p.open == nil {
		return
	}
	p.sealed = append(p.sealed, p.open)
	p.open = nil
	p.openReady = false
	p.signal()
}

// signal wakes the sender.
func (p *Publisher) signal() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// next waits for a batch to send; nil when the Publisher stops.
func (p *Publisher) next() *pubBatch {
	for {
		p.mu.Lock()
		if len(p.sealed) == 0 && p.open != nil && p.openReady {
			p.sealOpen()
		}
		if len(p.sealed) > 0 {
			b := p.sealed[0]
			p.sealed[0] = nil
			p.sealed = p.sealed[1:]
			p.mu.Unlock()
			return b
		}
		stop := p.stopping
		p.mu.Unlock()
		if stop {
			return nil
		}
		<-p.wake
	}
}

// sender starts one call per batch, at most maxInFlight at once, in the
// order the batches were sealed.
func (p *Publisher) sender() {
	defer close(p.senderDone)
	for {
		p.slots <- struct{}{}
		b := p.next()
		if b == nil {
			return
		}
		go func() {
			p.send(b)
			<-p.slots
		}()
	}
}

// send publishes a batch and resolves its results.
func (p *Publisher) send(b *pubBatch) {
	count := len(b.results)
	for off := 0; off < count; {
		n := min(count-off, int(p.c.batchSize.Load()))
		start := 0
		if off > 0 {
			start = b.ends[off-1]
		}
		resp, err := p.call(b.body[start:b.ends[off+n-1]], n, allKeyed(b.keyed[off:off+n]))
		if err != nil {
			if limit, ok := tooManyItems(err); ok && n > 1 {
				(&Batch{c: p.c}).shrink(min(limit, n/2))
				continue
			}
			for _, r := range b.results[off : off+n] {
				r.res = ItemResult{Err: err}
			}
			off += n
			continue
		}
		for i, ir := range resp.GetResults() {
			r := b.results[off+i]
			r.res = ItemResult{Receivers: ir.GetReceivers(), Duplicate: ir.GetDuplicate(), StreamID: ir.GetStreamId()}
			if codes.Code(ir.GetCode()) != codes.OK {
				e := &Error{Code: codes.Code(ir.GetCode()), Message: ir.GetMessage()}
				for _, v := range ir.GetViolations() {
					e.Violations = append(e.Violations, FieldViolation{Field: itemField(v.GetField()), Description: v.GetDescription()})
				}
				r.res.Err = e
			}
		}
		off += n
	}
	b.body, b.ends, b.keyed, b.results = nil, nil, nil, nil
	p.mu.Lock()
	p.pending -= count
	delete(p.unfinished, b)
	if p.space != nil {
		close(p.space)
		p.space = nil
	}
	p.mu.Unlock()
	close(b.done)
}

// call sends one encoded BatchEmit request of n items, retrying a failure
// of the whole call when that cannot publish an event twice (keyed: every
// item carries an idempotency key).
func (p *Publisher) call(body []byte, n int, keyed bool) (*emitgatev1.BatchEmitResponse, error) {
	delay := retryInitialDelay
	for attempt := 1; ; attempt++ {
		resp, err := p.c.sendRaw(context.Background(), body, n)
		if err == nil {
			return resp, nil
		}
		if attempt >= retryMaxAttempts || !keyed {
			return nil, err
		}
		var wait time.Duration
		switch e, _ := err.(*Error); {
		case e == nil:
			return nil, err
		case e.Code == codes.Unavailable:
			wait = delay
			delay = min(delay*retryMultiplier, retryMaxDelay)
		case e.Code == codes.ResourceExhausted && e.RetryAfter > 0:
			wait = e.RetryAfter
		default:
			return nil, err
		}
		time.Sleep(wait)
	}
}

// allKeyed reports whether every item carries an idempotency key.
func allKeyed(keyed []bool) bool {
	for _, k := range keyed {
		if !k {
			return false
		}
	}
	return true
}

// itemField turns the path of a request item's field
// ("items[3].emit.event") into the path of the published event ("event").
func itemField(path string) string {
	rest, ok := strings.CutPrefix(path, "items[")
	if !ok {
		return path
	}
	end := strings.IndexByte(rest, ']')
	if end < 0 {
		return path
	}
	rest = strings.TrimPrefix(rest[end+1:], ".")
	for _, op := range []string{"emit.", "broadcast."} {
		if r, ok := strings.CutPrefix(rest, op); ok {
			return r
		}
	}
	if rest == "" {
		return path
	}
	return rest
}

// Flush sends every buffered event and waits until every event published
// before it has its result, or ctx ends (its error is returned then, as an
// *Error). Item errors are in the results, not returned by Flush.
func (p *Publisher) Flush(ctx context.Context) error {
	p.mu.Lock()
	p.sealOpen()
	waits := make([]chan struct{}, 0, len(p.unfinished))
	for b := range p.unfinished {
		waits = append(waits, b.done)
	}
	p.mu.Unlock()
	for _, w := range waits {
		select {
		case <-w:
		case <-ctx.Done():
			return contextError(ctx, false)
		}
	}
	return nil
}

// Close flushes the Publisher and stops it: every event published before
// Close gets its result (retries included), and events published after it
// fail with ErrPublisherClosed. It returns nil; it is safe to call more
// than once. It does not close the Client.
func (p *Publisher) Close() error {
	p.closeOnce.Do(func() {
		p.mu.Lock()
		p.closed = true
		p.mu.Unlock()
		_ = p.Flush(context.Background())
		p.mu.Lock()
		p.stopping = true
		p.signal()
		p.mu.Unlock()
	})
	<-p.senderDone
	return nil
}

// contextError is the *Error of a context that ended; local when nothing
// was sent.
func contextError(ctx context.Context, local bool) *Error {
	err := ctx.Err()
	e := &Error{Code: codes.Canceled, Message: err.Error(), Local: local, cause: err}
	if errors.Is(err, context.DeadlineExceeded) {
		e.Code = codes.DeadlineExceeded
	}
	return e
}
