package emitgate

import (
	"context"
	"errors"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Unit tests of the pure mapping code: how an *Error reads. Every code the
// gateway answers is proven against a real gateway by the end-to-end tests
// (e2e_test.go, security_test.go, idempotency_test.go).

func withDetails(t *testing.T, c codes.Code, msg string, details ...*errdetails.BadRequest) *status.Status {
	t.Helper()
	st := status.New(c, msg)
	for _, d := range details {
		var err error
		if st, err = st.WithDetails(d); err != nil {
			t.Fatal(err)
		}
	}
	return st
}

func TestFromCallDecodesBadRequest(t *testing.T) {
	st := withDetails(t, codes.InvalidArgument, "invalid request", &errdetails.BadRequest{
		FieldViolations: []*errdetails.BadRequest_FieldViolation{
			{Field: "event", Description: "reserved"},
			{Field: "rooms[1]", Description: "empty"},
		},
	})
	err := fromCall(context.Background(), st.Err())
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("not an *Error: %v", err)
	}
	want := []FieldViolation{{"event", "reserved"}, {"rooms[1]", "empty"}}
	if e.Code != codes.InvalidArgument || e.Message != "invalid request" || len(e.Violations) != 2 ||
		e.Violations[0] != want[0] || e.Violations[1] != want[1] || e.Local {
		t.Fatalf("got %+v", e)
	}
	if got := err.Error(); got != "emitgate: InvalidArgument: invalid request (event: reserved; rooms[1]: empty)" {
		t.Fatalf("Error() = %q", got)
	}
	if !IsInvalidArgument(err) || IsNotFound(err) || status.Code(err) != codes.InvalidArgument {
		t.Fatal("code helpers disagree")
	}
}

func TestFromCallKeepsContextCause(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := fromCall(ctx, status.FromContextError(ctx.Err()).Err())
	if !errors.Is(err, context.Canceled) || Code(err) != codes.Canceled {
		t.Fatalf("got %v", err)
	}
}

func TestCodeOfOtherErrors(t *testing.T) {
	if Code(nil) != codes.OK || Code(errors.New("x")) != codes.Unknown {
		t.Fatal("Code of nil / plain errors")
	}
}

func TestShiftItemIndex(t *testing.T) {
	for in, want := range map[string]string{
		"items[3].emit.event":  "items[1003].emit.event",
		"items[0]":             "items[1000]",
		"items":                "items",
		"event":                "event",
		"items[x].emit":        "items[x].emit",
		"items[12].broadcast.": "items[1012].broadcast.",
	} {
		if got := shiftItemIndex(in, 1000); got != want {
			t.Errorf("shiftItemIndex(%q) = %q, want %q", in, got, want)
		}
	}
}
