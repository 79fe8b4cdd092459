package emitgate_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	emitgate "github.com/emitgate/emitgate/sdk/go"
)

func TestAnIdempotencyKeyDeliversOnce(t *testing.T) {
	s := harness(t)
	c := newClient(t, s)
	ns := namespaceFor(t)
	member := s.connect(t, ns, 0, "u")
	key := unique(t, "invoice")

	op := c.Of(ns).To("u").IdempotencyKey(key)
	if got, want := op.String(), fmt.Sprintf("Of(%q).To([\"u\"]).IdempotencyKey(%q)", ns, key); got != want {
		t.Fatalf("String() = %s, want %s", got, want)
	}
	first, err := op.Emit(ctx, "paid", 7)
	if err != nil || first.Duplicate || first.Receivers == 0 {
		t.Fatalf("first call: %+v %v", first, err)
	}
	// A retry with the same key: nothing is published, the first result
	// is repeated.
	again, err := op.Emit(ctx, "paid", 7)
	if err != nil || !again.Duplicate || again.Receivers != first.Receivers {
		t.Fatalf("retry: %+v %v, want a duplicate of %+v", again, err, first)
	}
	// Another key, or none, publishes.
	if res, err := c.Of(ns).To("u").IdempotencyKey(key+"-2").Emit(ctx, "paid", 8); err != nil || res.Duplicate {
		t.Fatalf("another key: %+v %v", res, err)
	}
	if res, err := op.IdempotencyKey("").Emit(ctx, "paid", 9); err != nil || res.Duplicate {
		t.Fatalf("key removed: %+v %v", res, err)
	}
	// Broadcast too.
	bop := c.Of(ns).IdempotencyKey(unique(t, "broadcast"))
	for i, wantDup := range []bool{false, true} {
		if res, err := bop.Broadcast(ctx, "news", i); err != nil || res.Duplicate != wantDup {
			t.Fatalf("Broadcast %d: %+v %v, want Duplicate %v", i, res, err, wantDup)
		}
	}

	var got []string
	for _, e := range barrier(t, c, ns, member)[0] {
		got = append(got, e.Event+argsJSON(t, e.Args))
	}
	if want := "paid[7] paid[8] paid[9] news[0]"; strings.Join(got, " ") != want {
		t.Fatalf("member got %v, want %s", got, want)
	}
}

func TestServerSideEmitWithAnIdempotencyKeyReachesEachServerOnce(t *testing.T) {
	s := harness(t)
	c := newClient(t, s)
	ns := namespaceFor(t)
	s.connect(t, ns, 0) // the namespace exists on the servers
	s.listen(t, ns, "config")

	op := c.Of(ns).IdempotencyKey(unique(t, "config"))
	for i, wantDup := range []bool{false, true} {
		if res, err := op.ServerSideEmit(ctx, "config", "v1"); err != nil || res.Duplicate != wantDup {
			t.Fatalf("call %d: %+v %v, want Duplicate %v", i, res, err, wantDup)
		}
	}
	// A later call without key; Redis delivers in order, so each server's
	// events end with it, and "v1" only once before it.
	if _, err := c.Of(ns).ServerSideEmit(ctx, "config", "v2"); err != nil {
		t.Fatal(err)
	}
	perServer := map[int][]string{}
	for _, e := range s.serverEvents(t, ns, "config", 2*len(s.Servers)) {
		perServer[e.Server] = append(perServer[e.Server], argsJSON(t, e.Args))
	}
	for i := range s.Servers {
		if got := strings.Join(perServer[i], " "); got != `["v1"] ["v2"]` {
			t.Fatalf("server %d got %s", i, got)
		}
	}
}

func TestBatchDuplicatesAreReportedPerItem(t *testing.T) {
	s := harness(t)
	c := newClient(t, s)
	ns := namespaceFor(t)
	member := s.connect(t, ns, 1, "u")
	op := c.Of(ns).To("u")
	k1, k2, k3 := unique(t, "1"), unique(t, "2"), unique(t, "3")

	if _, err := op.IdempotencyKey(k1).Emit(ctx, "e", "single"); err != nil {
		t.Fatal(err)
	}
	// More items than the gateway's limit, so the batch is sent as several
	// requests.
	batch := func() *emitgate.Batch {
		return c.Batch().
			Emit(op.IdempotencyKey(k1), "e", "k1").
			Emit(op.IdempotencyKey(k2), "e", "k2").
			Emit(op, "e", "no key").
			Emit(op, "e", "no key").
			Emit(op, "e", "no key").
			Broadcast(c.Of(ns).IdempotencyKey(k3), "e", "k3").
			Emit(op, "e", "no key")
	}
	res, err := batch().Send(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var dups []bool
	for _, it := range res.Items {
		if it.Err != nil {
			t.Fatalf("item error: %v", it.Err)
		}
		dups = append(dups, it.Duplicate)
	}
	if fmt.Sprint(dups) != "[true false false false false false false]" ||
		res.Published != 6 || res.Duplicates != 1 || res.Failed != 0 || res.Items[0].Receivers == 0 {
		t.Fatalf("first send: %+v", res)
	}
	// Sent again, every keyed item is a duplicate.
	res, err = batch().Send(ctx)
	if err != nil {
		t.Fatal(err)
	}
	dups = dups[:0]
	for _, it := range res.Items {
		dups = append(dups, it.Duplicate)
	}
	if fmt.Sprint(dups) != "[true true false false false true false]" ||
		res.Published != 4 || res.Duplicates != 3 || res.Failed != 0 {
		t.Fatalf("second send: %+v", res)
	}

	var got []string
	for _, e := range barrier(t, c, ns, member)[0] {
		got = append(got, argsJSON(t, e.Args))
	}
	nk := `["no key"]`
	want := []string{
		`["single"]`,
		`["k2"]`, nk, nk, nk, `["k3"]`, nk, // the first send
		nk, nk, nk, nk, // the second
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("member got\n %v\nwant\n %v", got, want)
	}
}

func TestACallStuckInRedisEndsAtItsDeadline(t *testing.T) {
	s := harness(t)
	// The "hang" target's Redis accepts connections and never answers; the
	// gateway's Redis timeout is 1 s.
	c := newClient(t, s, emitgate.WithTarget("hang"), emitgate.WithTimeout(300*time.Millisecond))
	started := time.Now()
	_, err := c.To("r").Emit(ctx, "x")
	if !emitgate.IsDeadlineExceeded(err) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want DeadlineExceeded, got %v", err)
	}
	if elapsed := time.Since(started); elapsed > 900*time.Millisecond {
		t.Fatalf("the call took %v, past its 300ms deadline", elapsed)
	}
	// Without a deadline of its own, the call ends at the gateway's Redis
	// timeout, as Unavailable.
	c2 := newClient(t, s, emitgate.WithTarget("hang"))
	_, err = c2.To("r").Emit(ctx, "x")
	if !emitgate.IsUnavailable(err) {
		t.Fatalf("without a deadline: want Unavailable, got %v", err)
	}
}
