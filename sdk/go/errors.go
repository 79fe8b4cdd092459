package emitgate

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Error is the error every method of this package returns: a gRPC status
// answered by the gateway, or a request the client refused before sending
// it (with code InvalidArgument). Use errors.As to get it, or the Is…
// helpers to test its code:
//
//	var e *emitgate.Error
//	if errors.As(err, &e) {
//		for _, v := range e.Violations {
//			log.Printf("%s: %s", v.Field, v.Description)
//		}
//	}
type Error struct {
	// Code is the gRPC status code, e.g. codes.InvalidArgument.
	Code codes.Code

	// Message is the status message.
	Message string

	// Violations lists the invalid request fields when Code is
	// InvalidArgument, decoded from google.rpc.BadRequest. Field paths
	// follow the request messages of the proto: "event", "rooms[2]",
	// "args[0].json", "items[3].emit.event".
	Violations []FieldViolation

	// RetryAfter is how long the gateway asks to wait before retrying
	// (google.rpc.RetryInfo, sent with ResourceExhausted when the API key's
	// rate is used up or the gateway sheds load); zero when the gateway did
	// not say.
	RetryAfter time.Duration

	// Limits holds the gateway limits the request went over, by name, with
	// the value in force ({"max_batch_items": 1000}), read from the metadata
	// of the google.rpc.ErrorInfo detail (reason LIMIT_EXCEEDED, domain
	// emitgate), never from message text; nil when the gateway named none.
	Limits map[string]uint64

	// Local is true when the client refused the request before sending it
	// (for example an Emit without a room, or an argument that cannot be
	// encoded). Nothing was published then.
	Local bool

	cause  error
	status *status.Status // as the gateway answered it, with its details
}

// FieldViolation names one invalid field of a request.
type FieldViolation struct {
	// Field is the path of the field, e.g. "items[3].emit.rooms[0]".
	Field string
	// Description says why the value is invalid.
	Description string
}

// Error returns the code, the message and the field violations.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("emitgate: ")
	b.WriteString(e.Code.String())
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	for i, v := range e.Violations {
		if i == 0 {
			b.WriteString(" (")
		} else {
			b.WriteString("; ")
		}
		b.WriteString(v.Field)
		b.WriteString(": ")
		b.WriteString(v.Description)
		if i == len(e.Violations)-1 {
			b.WriteString(")")
		}
	}
	return b.String()
}

// Unwrap returns the underlying cause: context.DeadlineExceeded or
// context.Canceled when the call's context ended, the gRPC error of a
// call, the encoding error of an argument, or nil.
func (e *Error) Unwrap() error { return e.cause }

// Is reports whether a DeadlineExceeded error matches
// context.DeadlineExceeded, whether the call's own context ran out or the
// gateway gave up first at the deadline the call sent it.
func (e *Error) Is(target error) bool {
	return target == context.DeadlineExceeded && e.Code == codes.DeadlineExceeded
}

// GRPCStatus returns the error as a gRPC status, so that status.Code and
// status.FromError work on it. For an answer of the gateway it is the
// status as received, details (google.rpc.BadRequest, RetryInfo) included.
func (e *Error) GRPCStatus() *status.Status {
	if e.status != nil && e.status.Code() == e.Code && e.status.Message() == e.Message {
		return e.status
	}
	return status.New(e.Code, e.Message)
}

// Code returns the gRPC code of err: the Code of an *Error in its chain,
// codes.OK for nil and codes.Unknown for any other error.
func Code(err error) codes.Code {
	if err == nil {
		return codes.OK
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return status.Code(err)
}

// IsInvalidArgument reports whether the request was refused as invalid, by
// the gateway or by the client before sending it. Error.Violations names
// the fields.
func IsInvalidArgument(err error) bool { return Code(err) == codes.InvalidArgument }

// IsNotFound reports whether the target named with WithTarget is not
// configured on the gateway.
func IsNotFound(err error) bool { return Code(err) == codes.NotFound }

// IsUnavailable reports whether the gateway, or the Redis server of the
// target, could not be reached. Such calls may be retried.
func IsUnavailable(err error) bool { return Code(err) == codes.Unavailable }

// IsDeadlineExceeded reports whether the call ran out of time (the
// context's deadline or WithTimeout), on the client or at the gateway;
// errors.Is(err, context.DeadlineExceeded) holds as well.
func IsDeadlineExceeded(err error) bool { return Code(err) == codes.DeadlineExceeded }

// IsUnauthenticated reports whether the gateway requires an API key and
// the call had none or an unknown one (see WithAPIKey), or a client
// certificate that matches no key.
func IsUnauthenticated(err error) bool { return Code(err) == codes.Unauthenticated }

// IsPermissionDenied reports whether the API key may not use the target,
// the namespace or the RPC of the call; the message names what was refused.
// In a batch that is not atomic, an out-of-scope item gets this error in
// its ItemResult while the others are published.
func IsPermissionDenied(err error) bool { return Code(err) == codes.PermissionDenied }

// IsResourceExhausted reports whether the API key's rate is used up (a
// batch counts its items) or the gateway is shedding load: nothing was
// published, and the call may be retried after Error.RetryAfter.
func IsResourceExhausted(err error) bool { return Code(err) == codes.ResourceExhausted }

// fromCall converts the error of a gRPC call into an *Error. ctx is the
// call's context: when it has ended, its error becomes the cause.
func fromCall(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		st = status.FromContextError(err)
	}
	e := fromStatus(st)
	e.status = st
	if ctxErr := ctx.Err(); ctxErr != nil {
		e.cause = ctxErr
	} else {
		e.cause = err
	}
	return e
}

// limitExceeded and errorDomain are the google.rpc.ErrorInfo reason and
// domain of a request over one of the gateway's limits.
const (
	limitExceeded = "LIMIT_EXCEEDED"
	errorDomain   = "emitgate"
)

// fromStatus decodes a gRPC status and its details.
func fromStatus(st *status.Status) *Error {
	e := &Error{Code: st.Code(), Message: st.Message()}
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *errdetails.BadRequest:
			for _, v := range d.GetFieldViolations() {
				e.Violations = append(e.Violations, FieldViolation{Field: v.GetField(), Description: v.GetDescription()})
			}
		case *errdetails.ErrorInfo:
			if d.GetReason() != limitExceeded || d.GetDomain() != errorDomain {
				continue
			}
			for name, value := range d.GetMetadata() {
				if n, err := strconv.ParseUint(value, 10, 64); err == nil {
					if e.Limits == nil {
						e.Limits = make(map[string]uint64, len(d.GetMetadata()))
					}
					e.Limits[name] = n
				}
			}
		case *errdetails.RetryInfo:
			if d.GetRetryDelay() != nil {
				e.RetryAfter = d.GetRetryDelay().AsDuration()
			}
		}
	}
	return e
}

// localError is a request the client refuses before sending it.
func localError(cause error, message string, violations ...FieldViolation) *Error {
	return &Error{
		Code:       codes.InvalidArgument,
		Message:    message,
		Violations: violations,
		Local:      true,
		cause:      cause,
	}
}

// violation is a shorthand for a FieldViolation.
func violation(field, format string, a ...any) FieldViolation {
	return FieldViolation{Field: field, Description: fmt.Sprintf(format, a...)}
}
