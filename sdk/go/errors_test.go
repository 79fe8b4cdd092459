package emitgate

import (
	"context"
	"errors"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

// The gateway does not check API keys or rate limits yet, so no real
// server answers Unauthenticated, PermissionDenied or ResourceExhausted
// today: these tests decode such statuses as the gRPC library hands them
// over. The end-to-end tests cover the codes a real gateway answers.

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

func TestFromCallMapsFutureAuthAndRateLimitCodes(t *testing.T) {
	for _, tc := range []struct {
		code codes.Code
		is   func(error) bool
	}{
		{codes.Unauthenticated, IsUnauthenticated},
		{codes.PermissionDenied, IsPermissionDenied},
		{codes.ResourceExhausted, IsResourceExhausted},
		{codes.Unavailable, IsUnavailable},
		{codes.NotFound, IsNotFound},
	} {
		err := fromCall(context.Background(), status.Error(tc.code, "x"))
		if !tc.is(err) || Code(err) != tc.code {
			t.Errorf("%v: helper or Code() wrong for %v", tc.code, err)
		}
	}

	st, err := status.New(codes.ResourceExhausted, "slow down").WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(1500 * time.Millisecond)})
	if err != nil {
		t.Fatal(err)
	}
	var e *Error
	if !errors.As(fromCall(context.Background(), st.Err()), &e) || e.RetryAfter != 1500*time.Millisecond {
		t.Fatalf("RetryAfter not decoded: %+v", e)
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
