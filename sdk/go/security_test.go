package emitgate_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	emitgate "github.com/emitgate/emitgate/sdk/go"
)

// These tests run against gateways configured with API keys, TLS and
// mutual TLS (see securedConfig and mtlsConfig in harness_test.go): every
// code and option below is answered by a real gateway.

// tlsClient connects to s over TLS, trusting the test CA (WithTLSFiles),
// with opts added.
func tlsClient(t *testing.T, s *stack, opts ...emitgate.Option) *emitgate.Client {
	t.Helper()
	p := testPKI(t)
	c, err := dial(s, append([]emitgate.Option{emitgate.WithTLSFiles(p.CA, "", "")}, opts...)...)
	if err != nil {
		t.Fatalf("New(%s) over TLS: %v", s.GRPC, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func dial(s *stack, opts ...emitgate.Option) (*emitgate.Client, error) {
	tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return emitgate.New(tctx, s.GRPC, opts...)
}

// wantCode asserts err is a gateway's answer (not Local) with code and a
// message containing each of parts.
func wantCode(t *testing.T, what string, err error, code codes.Code, parts ...string) *emitgate.Error {
	t.Helper()
	if emitgate.Code(err) != code {
		t.Fatalf("%s: want %v, got %v", what, code, err)
	}
	e := asError(t, err)
	if e.Local {
		t.Fatalf("%s: refused locally, want the gateway's answer: %v", what, err)
	}
	if status.Code(err) != code {
		t.Fatalf("%s: status.Code = %v", what, status.Code(err))
	}
	for _, p := range parts {
		if !strings.Contains(e.Message, p) {
			t.Fatalf("%s: message %q does not name %q", what, e.Message, p)
		}
	}
	return e
}

// unique returns a name no earlier call returned, for idempotency keys
// (a stack's Redis outlives a test with -count).
func unique(t *testing.T, what string) string {
	return fmt.Sprintf("%s-%s-%d", t.Name(), what, time.Now().UnixNano())
}

func TestTLSWithACAFileAndAnAPIKeyIsAccepted(t *testing.T) {
	s := securedStack.get(t)
	p := testPKI(t)
	ns := namespaceFor(t)
	member := s.connect(t, ns, 0, "r")

	// WithTLSFiles: the CA file; the key is accepted for single calls and
	// for batches.
	c := tlsClient(t, s, emitgate.WithAPIKey(fullSecret))
	if res, err := c.Of(ns).To("r").Emit(ctx, "over-tls", "files"); err != nil || res.Receivers == 0 {
		t.Fatalf("Emit over TLS with a key: %+v %v", res, err)
	}
	res, err := c.Batch().Emit(c.Of(ns).To("r"), "over-tls", "batch").Send(ctx)
	if err != nil || res.Published != 1 {
		t.Fatalf("batch over TLS with a key: %+v %v", res, err)
	}

	// WithTLS: a tls.Config whose RootCAs hold the CA.
	cfg, err := p.tlsConfig(false)
	if err != nil {
		t.Fatal(err)
	}
	c2, err := dial(s, emitgate.WithTLS(cfg), emitgate.WithAPIKey(fullSecret))
	if err != nil {
		t.Fatalf("New with WithTLS: %v", err)
	}
	defer c2.Close()
	if _, err := c2.Of(ns).To("r").Emit(ctx, "over-tls", "config"); err != nil {
		t.Fatal(err)
	}

	// NewFromConn sends the key on the caller's TLS connection too.
	conn, err := grpc.NewClient(s.GRPC, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := emitgate.NewFromConn(conn, emitgate.WithAPIKey(fullSecret)).Of(ns).To("r").Emit(ctx, "over-tls", "conn"); err != nil {
		t.Fatal(err)
	}
	if _, err := emitgate.NewFromConn(conn).Of(ns).To("r").Emit(ctx, "over-tls", "no key"); !emitgate.IsUnauthenticated(err) {
		t.Fatalf("NewFromConn without a key: want Unauthenticated, got %v", err)
	}

	got := barrier(t, c, ns, member)[0]
	var args []string
	for _, e := range got {
		args = append(args, argsJSON(t, e.Args))
	}
	if want := `["files"] ["batch"] ["config"] ["conn"]`; strings.Join(args, " ") != want {
		t.Fatalf("member got %v, want over-tls events %s", got, want)
	}
}

func TestNewReportsTLSMismatches(t *testing.T) {
	s := securedStack.get(t)
	p := testPKI(t)
	// The system roots do not trust the test CA.
	if _, err := dial(s, emitgate.WithTLS(nil), emitgate.WithAPIKey(fullSecret)); !emitgate.IsUnavailable(err) {
		t.Errorf("untrusted server certificate: want Unavailable, got %v", err)
	}
	if _, err := dial(s, emitgate.WithAPIKey(fullSecret)); !emitgate.IsUnavailable(err) {
		t.Errorf("default TLS, untrusted server certificate: want Unavailable, got %v", err)
	}
	// Plaintext against a TLS gateway.
	if _, err := dial(s, emitgate.WithInsecure(), emitgate.WithAPIKey(fullSecret)); !emitgate.IsUnavailable(err) {
		t.Errorf("plaintext against TLS: want Unavailable, got %v", err)
	}
	// A client certificate from a CA the gateway does not trust, with the
	// subject of a key, does not authenticate as that key. (Go's TLS client
	// does not even present it: the gateway asks for certificates of its
	// client CA only.)
	if c, err := dial(s, emitgate.WithTLSFiles(p.CA, p.OtherClientCert, p.OtherClientKey)); err != nil {
		t.Errorf("untrusted client certificate where certificates are optional: %v", err)
	} else {
		_, err = c.Of("/").To("r").Emit(ctx, "x")
		_ = c.Close()
		wantCode(t, "untrusted client certificate", err, codes.Unauthenticated)
	}
	// Files that cannot be used are reported before dialing.
	for _, tc := range []struct {
		name                  string
		ca, cert, key, errHas string
	}{
		{"missing CA", p.CA + ".missing", "", "", "CA file"},
		{"CA file without PEM", p.ClientKey, "", "", "no PEM certificate"},
		{"certificate without key", p.CA, p.ClientCert, "", "both"},
		{"key of another certificate", p.CA, p.ClientCert, p.ServerKey, "client certificate"},
	} {
		_, err := dial(s, emitgate.WithTLSFiles(tc.ca, tc.cert, tc.key))
		var e *emitgate.Error
		if !errors.As(err, &e) || !e.Local || e.Code != codes.InvalidArgument || !strings.Contains(e.Message, tc.errHas) {
			t.Errorf("%s: want a Local InvalidArgument naming %q, got %v", tc.name, tc.errHas, err)
		}
	}
}

func TestCallsWithoutAValidKeyAreUnauthenticated(t *testing.T) {
	s := securedStack.get(t)
	ns := namespaceFor(t)
	member := s.connect(t, ns, 0, "r")
	admin := tlsClient(t, s, emitgate.WithAPIKey(fullSecret))

	for _, tc := range []struct {
		name string
		opts []emitgate.Option
		says string
	}{
		{"no key", nil, "Bearer"},
		{"wrong key", []emitgate.Option{emitgate.WithAPIKey("egk_not-a-configured-key")}, "unknown API key"},
	} {
		c := tlsClient(t, s, tc.opts...)
		op := c.Of(ns).To("r")
		_, err := op.Emit(ctx, "refused")
		wantCode(t, tc.name+": Emit", err, codes.Unauthenticated, tc.says)
		_, err = c.Of(ns).Broadcast(ctx, "refused")
		wantCode(t, tc.name+": Broadcast", err, codes.Unauthenticated)
		_, err = op.SocketsJoin(ctx, "joined")
		wantCode(t, tc.name+": SocketsJoin", err, codes.Unauthenticated)
		_, err = op.DisconnectSockets(ctx, true)
		wantCode(t, tc.name+": DisconnectSockets", err, codes.Unauthenticated)
		_, err = c.Of(ns).ServerSideEmit(ctx, "refused")
		wantCode(t, tc.name+": ServerSideEmit", err, codes.Unauthenticated)
		if !emitgate.IsUnauthenticated(err) || emitgate.IsPermissionDenied(err) {
			t.Fatalf("%s: helpers disagree on %v", tc.name, err)
		}
		res, err := c.Batch().Emit(op, "refused").Broadcast(c.Of(ns), "refused").Send(ctx)
		wantCode(t, tc.name+": batch", err, codes.Unauthenticated)
		if res.Failed != 2 || res.Published != 0 || !emitgate.IsUnauthenticated(res.Items[1].Err) {
			t.Fatalf("%s: batch result %+v", tc.name, res)
		}
	}

	// Nothing reached the member: it got no event, joined no room and is
	// still connected (it receives the barrier).
	none(t, "member", barrier(t, admin, ns, member)[0])
	for _, r := range member.rooms(t) {
		if r == "joined" {
			t.Fatalf("an unauthenticated SocketsJoin was published: rooms %v", member.rooms(t))
		}
	}
}

func TestKeysOutOfScopeArePermissionDenied(t *testing.T) {
	s := securedStack.get(t)
	// The narrow key may use namespaces starting with "/billing".
	allowed := "/billing" + namespaceFor(t)
	denied := namespaceFor(t)
	inScope := s.connect(t, allowed, 0, "r")
	outOfScope := s.connect(t, denied, 1, "r")
	admin := tlsClient(t, s, emitgate.WithAPIKey(fullSecret))
	narrow := tlsClient(t, s, emitgate.WithAPIKey(narrowSecret))

	// The namespace.
	_, err := narrow.Of(denied).To("r").Emit(ctx, "denied")
	wantCode(t, "namespace", err, codes.PermissionDenied, `namespace "`+denied+`"`)
	if !emitgate.IsPermissionDenied(err) || emitgate.IsUnauthenticated(err) {
		t.Fatalf("helpers disagree on %v", err)
	}
	// The target.
	eu := tlsClient(t, s, emitgate.WithAPIKey(narrowSecret), emitgate.WithTarget("eu"))
	_, err = eu.Of(allowed).To("r").Emit(ctx, "denied")
	wantCode(t, "target", err, codes.PermissionDenied, `target "eu"`)
	// The RPC.
	_, err = narrow.Of(allowed).Broadcast(ctx, "denied")
	wantCode(t, "Broadcast", err, codes.PermissionDenied, "Broadcast")
	_, err = narrow.Of(allowed).In("r").DisconnectSockets(ctx, true)
	wantCode(t, "DisconnectSockets", err, codes.PermissionDenied, "DisconnectSockets")
	_, err = narrow.Of(allowed).In("r").SocketsJoin(ctx, "joined")
	wantCode(t, "SocketsJoin", err, codes.PermissionDenied, "SocketsJoin")

	// In scope, the key is accepted.
	if _, err := narrow.Of(allowed).To("r").Emit(ctx, "allowed", 1); err != nil {
		t.Fatal(err)
	}

	// In a batch, the out-of-scope item is refused on its own.
	batch := func() *emitgate.Batch {
		return narrow.Batch().
			Emit(narrow.Of(allowed).To("r"), "item", 0).
			Emit(narrow.Of(denied).To("r"), "item", 1).
			Emit(narrow.Of(allowed).To("r"), "item", 2)
	}
	res, err := batch().Send(ctx)
	if err != nil || res.Published != 2 || res.Failed != 1 || res.Items[0].Err != nil || res.Items[2].Err != nil {
		t.Fatalf("batch: %+v %v", res, err)
	}
	wantCode(t, "batch item", res.Items[1].Err, codes.PermissionDenied, `namespace "`+denied+`"`)
	// Atomic: the whole batch is refused, naming the item.
	res, err = batch().Atomic().Send(ctx)
	wantCode(t, "atomic batch", err, codes.PermissionDenied, "items[1]")
	if res.Published != 0 || res.Failed != 3 {
		t.Fatalf("atomic batch: %+v", res)
	}

	inGot := barrier(t, admin, allowed, inScope)[0]
	if len(inGot) != 3 || inGot[0].Event != "allowed" || argsJSON(t, inGot[1].Args) != "[0]" || argsJSON(t, inGot[2].Args) != "[2]" {
		t.Fatalf("in-scope member got %v", inGot)
	}
	// The out-of-scope member got nothing and is still connected.
	none(t, "out-of-scope member", barrier(t, admin, denied, outOfScope)[0])
	for _, r := range inScope.rooms(t) {
		if r == "joined" {
			t.Fatal("a denied SocketsJoin was published")
		}
	}
}

func TestRateLimitsAnswerResourceExhaustedWithARetryDelay(t *testing.T) {
	s := securedStack.get(t)
	ns := namespaceFor(t)
	member := s.connect(t, ns, 0, "r")
	admin := tlsClient(t, s, emitgate.WithAPIKey(fullSecret))
	limited := tlsClient(t, s, emitgate.WithAPIKey(limitedSecret))
	op := limited.Of(ns).To("r")

	// A batch counts its items: these use the whole burst. (Run again in
	// the same process, the key may still be refilling: then the gateway
	// says how long to wait, and that is enough.)
	b := limited.Batch()
	for i := range limitedBurst {
		b.Emit(op, "burst", i)
	}
	res, err := b.Send(ctx)
	var refilling *emitgate.Error
	if errors.As(err, &refilling) && refilling.Code == codes.ResourceExhausted && refilling.RetryAfter > 0 {
		time.Sleep(refilling.RetryAfter)
		res, err = b.Send(ctx)
	}
	if err != nil || res.Published != limitedBurst {
		t.Fatalf("burst: %+v %v", res, err)
	}

	_, err = op.Emit(ctx, "over")
	e := wantCode(t, "over the rate", err, codes.ResourceExhausted)
	if !emitgate.IsResourceExhausted(err) {
		t.Fatal("IsResourceExhausted disagrees")
	}
	if e.RetryAfter <= 0 || e.RetryAfter > time.Second/limitedRate {
		t.Fatalf("RetryAfter = %v, want within (0, %v]", e.RetryAfter, time.Second/limitedRate)
	}
	// The status keeps the gateway's details for status.FromError users.
	st, _ := status.FromError(err)
	var info *errdetails.RetryInfo
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			info = ri
		}
	}
	if info == nil || info.GetRetryDelay().AsDuration() != e.RetryAfter {
		t.Fatalf("status details %v, want RetryInfo of %v", st.Details(), e.RetryAfter)
	}

	// A batch over the rate is refused as a whole.
	res, err = limited.Batch().Emit(op, "over-batch").Send(ctx)
	be := wantCode(t, "batch over the rate", err, codes.ResourceExhausted)
	if be.RetryAfter <= 0 || res.Failed != 1 || !emitgate.IsResourceExhausted(res.Items[0].Err) {
		t.Fatalf("batch over the rate: %+v, RetryAfter %v", res, be.RetryAfter)
	}

	// Other keys have their own budget.
	if _, err := admin.Of(ns).To("r").Emit(ctx, "other-key"); err != nil {
		t.Fatal(err)
	}
	// Waiting as long as the gateway says is enough.
	time.Sleep(be.RetryAfter)
	if _, err := op.Emit(ctx, "after-waiting"); err != nil {
		t.Fatalf("after waiting RetryAfter (%v): %v", be.RetryAfter, err)
	}

	var names []string
	for _, ev := range barrier(t, admin, ns, member)[0] {
		names = append(names, ev.Event)
	}
	if want := "burst burst burst other-key after-waiting"; strings.Join(names, " ") != want {
		t.Fatalf("member got %v, want %s", names, want)
	}
}

func TestAClientCertificateAuthenticatesAsItsKey(t *testing.T) {
	s := securedStack.get(t)
	p := testPKI(t)
	ns := namespaceFor(t)
	member := s.connect(t, ns, 0, "r")
	admin := tlsClient(t, s, emitgate.WithAPIKey(fullSecret))

	// WithTLSFiles with a client certificate, no API key: the certificate's
	// subject CN=billing is the key "billing-cert", which may call Emit.
	c, err := dial(s, emitgate.WithTLSFiles(p.CA, p.ClientCert, p.ClientKey))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Of(ns).To("r").Emit(ctx, "via-cert", "files"); err != nil {
		t.Fatal(err)
	}
	// ... and only Emit.
	_, err = c.Of(ns).Broadcast(ctx, "denied")
	wantCode(t, "Broadcast with the certificate's key", err, codes.PermissionDenied, "billing-cert", "Broadcast")

	// WithTLS with a tls.Config holding the certificate.
	cfg, err := p.tlsConfig(true)
	if err != nil {
		t.Fatal(err)
	}
	c2, err := dial(s, emitgate.WithTLS(cfg))
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if _, err := c2.Of(ns).To("r").Emit(ctx, "via-cert", "config"); err != nil {
		t.Fatal(err)
	}

	got := barrier(t, admin, ns, member)[0]
	if len(got) != 2 || argsJSON(t, got[0].Args) != `["files"]` || argsJSON(t, got[1].Args) != `["config"]` {
		t.Fatalf("member got %v", got)
	}
}

func TestAGatewayThatRequiresClientCertificates(t *testing.T) {
	s := mtlsStack.get(t)
	p := testPKI(t)
	ns := namespaceFor(t)
	member := s.connect(t, ns, 1, "r")

	// Without a client certificate, New fails: the handshake is refused.
	if _, err := dial(s, emitgate.WithTLSFiles(p.CA, "", ""), emitgate.WithAPIKey(fullSecret)); !emitgate.IsUnavailable(err) {
		t.Fatalf("no client certificate: want Unavailable, got %v", err)
	}
	// With one, calls authenticate as its key.
	c, err := dial(s, emitgate.WithTLSFiles(p.CA, p.ClientCert, p.ClientKey))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Of(ns).To("r").Emit(ctx, "mtls", 1); err != nil {
		t.Fatal(err)
	}
	_, err = c.Of(ns).Broadcast(ctx, "denied")
	wantCode(t, "Broadcast", err, codes.PermissionDenied, "Broadcast")
	// An API key on the same connection takes precedence over the
	// certificate.
	admin, err := dial(s, emitgate.WithTLSFiles(p.CA, p.ClientCert, p.ClientKey), emitgate.WithAPIKey(fullSecret))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	only(t, "member", barrier(t, admin, ns, member)[0], "mtls", "[1]")
}

func TestIdempotencyKeysAreScopedPerAPIKey(t *testing.T) {
	s := securedStack.get(t)
	ns := namespaceFor(t)
	member := s.connect(t, ns, 0, "r")
	full := tlsClient(t, s, emitgate.WithAPIKey(fullSecret))
	other := tlsClient(t, s, emitgate.WithAPIKey(otherSecret))
	key := unique(t, "k")

	for i, tc := range []struct {
		c         *emitgate.Client
		duplicate bool
	}{{full, false}, {other, false}, {full, true}, {other, true}} {
		res, err := tc.c.Of(ns).To("r").IdempotencyKey(key).Emit(ctx, "scoped", i)
		if err != nil || res.Duplicate != tc.duplicate {
			t.Fatalf("call %d: %+v %v, want Duplicate %v", i, res, err, tc.duplicate)
		}
	}
	got := barrier(t, full, ns, member)[0]
	if len(got) != 2 || argsJSON(t, got[0].Args) != "[0]" || argsJSON(t, got[1].Args) != "[1]" {
		t.Fatalf("member got %v", got)
	}
}
