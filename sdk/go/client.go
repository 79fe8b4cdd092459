package emitgate

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	emitgatev1 "github.com/emitgate/emitgate/sdk/go/gen/emitgate/v1"
)

// DefaultMaxBatchItems is the gateway's default limit of items per
// BatchEmit request; Batch.Send splits larger batches into requests of at
// most this many items unless WithMaxBatchItems says otherwise.
const DefaultMaxBatchItems = 1000

// Client talks to an emitgate gateway. It is safe for concurrent use; create
// one per gateway and share it. The emitter methods (Of, To, Except,
// Broadcast, …) start from the default namespace "/".
type Client struct {
	conn      *grpc.ClientConn // nil when the caller owns the connection
	rpc       emitgatev1.EmitterServiceClient
	target    string
	apiKey    string
	timeout   time.Duration
	batchSize atomic.Int64 // current BatchEmit chunk size
}

// config collects the options.
type config struct {
	apiKey        string
	target        string
	timeout       time.Duration
	creds         credentials.TransportCredentials
	dialOptions   []grpc.DialOption
	maxBatchItems int
	err           error // an option that cannot apply, reported by New
}

// Option configures a Client.
type Option func(*config)

// WithAPIKey sends key to the gateway as "authorization: Bearer <key>" on
// every call (batches included). A gateway with API keys configured answers
// Unauthenticated without a known key, and PermissionDenied for a target,
// namespace or RPC out of the key's scope. The key is a credential: use TLS
// (WithTLS, WithTLSFiles) outside a trusted network. Over mutual TLS a
// gateway may map the client certificate to a key instead.
func WithAPIKey(key string) Option {
	return func(c *config) { c.apiKey = key }
}

// WithTLS connects with TLS using cfg; a nil cfg uses the system's root
// certificates. This is the default. Set cfg.RootCAs to trust a private CA
// and cfg.Certificates to present a client certificate (mutual TLS); see
// also WithTLSFiles. It applies to New only.
func WithTLS(cfg *tls.Config) Option {
	return func(c *config) {
		if cfg == nil {
			cfg = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		c.creds = credentials.NewTLS(cfg)
	}
}

// WithTLSFiles connects with TLS configured from PEM files: caFile holds
// the CA certificate(s) the gateway's certificate must chain to ("" trusts
// the system's roots), certFile and keyFile a client certificate and its
// private key for mutual TLS ("" and "" for none). The gateway's
// certificate must name the host of New's address (an IP SAN for an IP
// address). A file that cannot be read or parsed makes New fail with a
// Local InvalidArgument error naming it. It applies to New only.
//
// For anything else (a server name override, a certificate pool built in
// memory, certificate reloading) use WithTLS with your own tls.Config.
func WithTLSFiles(caFile, certFile, keyFile string) Option {
	return func(c *config) {
		cfg, err := tlsConfigFromFiles(caFile, certFile, keyFile)
		if err != nil {
			c.err = err
			return
		}
		c.creds = credentials.NewTLS(cfg)
	}
}

func tlsConfigFromFiles(caFile, certFile, keyFile string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("TLS CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("TLS CA file %s holds no PEM certificate", caFile)
		}
		cfg.RootCAs = pool
	}
	if certFile != "" || keyFile != "" {
		if certFile == "" || keyFile == "" {
			return nil, errors.New("TLS client certificate: both a certificate file and a key file are needed")
		}
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("TLS client certificate %s, key %s: %w", certFile, keyFile, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// WithInsecure connects without TLS (plaintext HTTP/2), for a gateway on
// localhost or a trusted network. It applies to New only.
func WithInsecure() Option {
	return func(c *config) { c.creds = insecure.NewCredentials() }
}

// WithTarget selects the gateway target (the Socket.IO cluster) every call
// of the client publishes to. Without it the gateway's default target is
// used. An unknown name makes calls fail with NotFound.
func WithTarget(name string) Option {
	return func(c *config) { c.target = name }
}

// WithTimeout bounds every call: a call whose context has no earlier
// deadline fails with DeadlineExceeded after d. With New it also bounds
// the initial connection. Zero or less (the default) leaves calls to their
// context.
func WithTimeout(d time.Duration) Option {
	return func(c *config) { c.timeout = max(d, 0) }
}

// WithMaxBatchItems sets how many items Batch.Send puts in one BatchEmit
// request (DefaultMaxBatchItems by default). Set it to the gateway's
// --max-batch-items when that is lower; Send also shrinks its requests by
// itself when the gateway refuses one as too large.
// Values below 1 are ignored.
func WithMaxBatchItems(n int) Option {
	return func(c *config) {
		if n >= 1 {
			c.maxBatchItems = n
		}
	}
}

// WithDialOptions adds gRPC dial options (interceptors, keepalive, a
// custom dialer, …) to the connection New creates.
func WithDialOptions(opts ...grpc.DialOption) Option {
	return func(c *config) { c.dialOptions = append(c.dialOptions, opts...) }
}

func newConfig(opts []Option) *config {
	c := &config{maxBatchItems: DefaultMaxBatchItems}
	for _, o := range opts {
		if o != nil {
			o(c)
		}
	}
	return c
}

// New connects to the gateway at addr ("host:port") and returns a Client.
// It waits until the connection is established and fails if the first
// attempt fails or ctx ends first, so that a wrong address or transport is
// reported at startup. Connections are then re-established in the
// background as needed. TLS is used unless WithInsecure is given.
//
// Close the Client when done.
func New(ctx context.Context, addr string, opts ...Option) (*Client, error) {
	if err := ctx.Err(); err != nil {
		return nil, connectError(ctx, addr)
	}
	cfg := newConfig(opts)
	if cfg.err != nil {
		return nil, localError(cfg.err, cfg.err.Error())
	}
	creds := cfg.creds
	if creds == nil {
		creds = credentials.NewTLS(&tls.Config{MinVersion: tls.VersionTLS12})
	}
	dialOpts := append([]grpc.DialOption{grpc.WithTransportCredentials(creds)}, cfg.dialOptions...)
	conn, err := grpc.NewClient(addr, dialOpts...)
	if err != nil {
		return nil, localError(err, fmt.Sprintf("cannot connect to %q: %v", addr, err))
	}
	if cfg.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.timeout)
		defer cancel()
	}
	if !waitReady(ctx, conn) {
		_ = conn.Close()
		return nil, connectError(ctx, addr)
	}
	c := newClient(emitgatev1.NewEmitterServiceClient(conn), cfg)
	c.conn = conn
	return c, nil
}

// waitReady connects conn and waits until it is ready (true), its first
// attempt failed or ctx ended (false).
func waitReady(ctx context.Context, conn *grpc.ClientConn) bool {
	conn.Connect()
	for {
		s := conn.GetState()
		switch s {
		case connectivity.Ready:
			return true
		case connectivity.TransientFailure, connectivity.Shutdown:
			return false
		}
		if !conn.WaitForStateChange(ctx, s) {
			return false
		}
	}
}

// connectError is the error of a New that did not get a connection.
func connectError(ctx context.Context, addr string) *Error {
	if err := ctx.Err(); err != nil {
		e := fromStatus(status.FromContextError(err))
		e.Message = fmt.Sprintf("no connection to the gateway at %s: %v", addr, err)
		e.cause = err
		return e
	}
	return &Error{
		Code:    codes.Unavailable,
		Message: fmt.Sprintf("cannot connect to the gateway at %s (nothing listening, unknown host, or a TLS mismatch)", addr),
	}
}

// NewFromConn returns a Client that uses conn, a connection the caller
// created and keeps owning (a *grpc.ClientConn, usually): Close does not
// close it. Options about the connection itself (WithTLS, WithTLSFiles,
// WithInsecure, WithDialOptions) are ignored.
func NewFromConn(conn grpc.ClientConnInterface, opts ...Option) *Client {
	return newClient(emitgatev1.NewEmitterServiceClient(conn), newConfig(opts))
}

func newClient(rpc emitgatev1.EmitterServiceClient, cfg *config) *Client {
	c := &Client{rpc: rpc, target: cfg.target, apiKey: cfg.apiKey, timeout: cfg.timeout}
	c.batchSize.Store(int64(cfg.maxBatchItems))
	return c
}

// Close closes the connection New created. It does nothing for a Client
// made by NewFromConn.
func (c *Client) Close() error {
	if c.conn == nil {
		return nil
	}
	return c.conn.Close()
}

// Raw returns the generated gRPC client, for features this package does not
// wrap. Calls made through it get neither the API key nor the timeout of
// the Client.
func (c *Client) Raw() emitgatev1.EmitterServiceClient { return c.rpc }

// callContext applies the timeout and the API key to a call's context.
func (c *Client) callContext(ctx context.Context) (context.Context, context.CancelFunc) {
	cancel := func() {}
	if c.timeout > 0 {
		if d, ok := ctx.Deadline(); !ok || time.Until(d) > c.timeout {
			ctx, cancel = context.WithTimeout(ctx, c.timeout)
		}
	}
	if c.apiKey != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+c.apiKey)
	}
	return ctx, cancel
}

// root is the operator every emitter method of the Client starts from.
func (c *Client) root() Operator { return Operator{c: c} }

// Of selects a namespace ("/admin"; a missing leading "/" is added by the
// gateway, as the JavaScript emitter's of() does).
func (c *Client) Of(namespace string) Operator { return c.root().Of(namespace) }

// To selects the sockets in room (a socket id is a room too) in the
// default namespace. See Operator.To.
func (c *Client) To(rooms ...string) Operator { return c.root().To(rooms...) }

// In is the same as To.
func (c *Client) In(rooms ...string) Operator { return c.root().In(rooms...) }

// Except skips the sockets in rooms. See Operator.Except.
func (c *Client) Except(rooms ...string) Operator { return c.root().Except(rooms...) }

// Volatile sets the volatile flag. See Operator.Volatile.
func (c *Client) Volatile() Operator { return c.root().Volatile() }

// Compress sets the compress flag. See Operator.Compress.
func (c *Client) Compress(compress bool) Operator { return c.root().Compress(compress) }

// Broadcast sends an event to every socket of the default namespace. See
// Operator.Broadcast.
func (c *Client) Broadcast(ctx context.Context, event string, args ...any) (Result, error) {
	return c.root().Broadcast(ctx, event, args...)
}

// SocketsJoin makes every socket of the default namespace join rooms. See
// Operator.SocketsJoin.
func (c *Client) SocketsJoin(ctx context.Context, rooms ...string) (Result, error) {
	return c.root().SocketsJoin(ctx, rooms...)
}

// SocketsLeave makes every socket of the default namespace leave rooms. See
// Operator.SocketsLeave.
func (c *Client) SocketsLeave(ctx context.Context, rooms ...string) (Result, error) {
	return c.root().SocketsLeave(ctx, rooms...)
}

// DisconnectSockets disconnects every socket of the default namespace. See
// Operator.DisconnectSockets.
func (c *Client) DisconnectSockets(ctx context.Context, close bool) (Result, error) {
	return c.root().DisconnectSockets(ctx, close)
}

// ServerSideEmit sends an event to the Socket.IO servers' handlers of the
// default namespace. See Operator.ServerSideEmit.
func (c *Client) ServerSideEmit(ctx context.Context, event string, args ...any) (Result, error) {
	return c.root().ServerSideEmit(ctx, event, args...)
}
