package emitgate_test

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// The end-to-end tests run against real parts started by the shared
// fixture tests/harness/stack.js: a redis-server, the emitgate gateway and
// two Socket.IO 4 servers with @socket.io/redis-adapter, plus
// socket.io-client connections created on demand. The gateway binary is
// EMITGATE_BIN, or <repo>/target/debug/emitgate.

// maxBatchItems is the item limit of the plain stack's gateway, low
// so that batch chunking is exercised with a few items.
const maxBatchItems = 5

// stack is a running tests/harness/stack.js.
type stack struct {
	Control  string `json:"control"`
	RedisURL string `json:"redis_url"`
	GRPC     string `json:"grpc"`
	Servers  []int  `json:"servers"`

	cmd   *exec.Cmd
	stdin io.WriteCloser
	logs  *syncBuffer
	done  chan struct{}
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// lazyStack is a test stack started on first use and shared by the tests
// that need its gateway configuration.
type lazyStack struct {
	name  string
	setup func(dir string) (config string, err error) // the gateway's config file
	once  sync.Once
	s     *stack
	err   error
}

var (
	// plainStack: no API keys, plaintext, a low item limit, an unreachable
	// target "down" and a target "hang" whose Redis never answers.
	plainStack = &lazyStack{name: "plain", setup: plainConfig}
	// securedStack: TLS with optional client certificates and API keys
	// (see securedConfig).
	securedStack = &lazyStack{name: "secured", setup: securedConfig}
	// mtlsStack: TLS that requires a client certificate.
	mtlsStack = &lazyStack{name: "mtls", setup: mtlsConfig}

	allStacks = []*lazyStack{plainStack, securedStack, mtlsStack}

	// workDir holds the config files and certificates of every stack; it is
	// removed when the tests end.
	workDirOnce sync.Once
	workDir     string
	workDirErr  error

	pkiOnce sync.Once
	thePKI  *pki
	pkiErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	for _, l := range allStacks {
		if l.s == nil {
			continue
		}
		l.s.stop()
		if code != 0 {
			fmt.Fprintf(os.Stderr, "--- %s test stack log (last 8 KiB) ---\n%s\n", l.name, tail(l.s.logs.String(), 8192))
		}
	}
	if workDir != "" {
		_ = os.RemoveAll(workDir)
	}
	os.Exit(code)
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// repoRoot is the repository root, two directories above this package.
func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

func tempDir() (string, error) {
	workDirOnce.Do(func() { workDir, workDirErr = os.MkdirTemp("", "emitgate-go-test-") })
	return workDir, workDirErr
}

// testPKI returns the certificates of the TLS tests, made on first use.
func testPKI(t *testing.T) *pki {
	t.Helper()
	dir, err := tempDir()
	if err == nil {
		_, err = pkiFiles(dir)
	}
	if err != nil {
		t.Fatalf("cannot make the test certificates: %v", err)
	}
	return thePKI
}

// harness returns the plain stack, starting it on first use.
func harness(t *testing.T) *stack { return plainStack.get(t) }

// get returns the stack, starting it on first use. A stack that cannot
// start fails the test: these tests are never skipped.
func (l *lazyStack) get(t *testing.T) *stack {
	t.Helper()
	l.once.Do(func() {
		dir, err := tempDir()
		if err == nil {
			var config string
			if config, err = l.setup(dir); err == nil {
				l.s, err = startStack(l.name, dir, config)
			}
		}
		l.err = err
	})
	if l.err != nil {
		t.Fatalf("cannot start the %s test stack: %v", l.name, l.err)
	}
	t.Cleanup(func() { l.s.checkAndReset(t) })
	return l.s
}

// hangingRedis is a TCP server that accepts connections and never answers:
// a Redis that hangs. It lives as long as the test binary.
var (
	hangOnce sync.Once
	hangAddr string
	hangErr  error
)

func hangingRedis() (string, error) {
	hangOnce.Do(func() {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			hangErr = err
			return
		}
		hangAddr = l.Addr().String()
		go func() {
			var held []net.Conn
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				held = append(held, c)
			}
		}()
	})
	return hangAddr, hangErr
}

func plainConfig(string) (string, error) {
	hang, err := hangingRedis()
	if err != nil {
		return "", err
	}
	return fmt.Sprintf(`[limits]
max_batch_items = %d

[redis]
timeout_ms = 1000

# Calls to this target must fail with UNAVAILABLE: nothing listens there.
[[targets]]
name = "down"
redis_url = "redis://127.0.0.1:1"
dialect = "socketio"
key = "socket.io"

# This Redis accepts connections and never answers.
[[targets]]
name = "hang"
redis_url = "redis://%s"
`, maxBatchItems, hang), nil
}

// The API keys of the secured and mtls stacks, by secret.
const (
	// fullSecret may do anything.
	fullSecret = "egk_full-test-secret"
	// otherSecret may do anything too; another key, for idempotency scoping.
	otherSecret = "egk_other-test-secret"
	// narrowSecret may only call Emit and BatchEmit, on the default
	// target, in namespaces starting with "/billing".
	narrowSecret = "egk_narrow-test-secret"
	// limitedSecret may publish limitedBurst events at once, then
	// limitedRate per second.
	limitedSecret = "egk_limited-test-secret"
	limitedRate   = 1
	limitedBurst  = 3
)

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// keysConfig declares the keys above, and the client certificate subject
// CN=billing as a key that may only call Emit.
func keysConfig() string {
	return fmt.Sprintf(`
[[auth.keys]]
id = "full"
secret_sha256 = %q

[[auth.keys]]
id = "other"
secret_sha256 = %q

[[auth.keys]]
id = "narrow"
secret_sha256 = %q
targets = ["default"]
namespaces = ["/billing*"]
rpcs = ["Emit", "BatchEmit"]

[[auth.keys]]
id = "limited"
secret_sha256 = %q
rate_per_second = %d
burst = %d

[[auth.keys]]
id = "billing-cert"
client_subject = %q
rpcs = ["Emit"]
`, sha256Hex(fullSecret), sha256Hex(otherSecret), sha256Hex(narrowSecret), sha256Hex(limitedSecret),
		limitedRate, limitedBurst, clientSubject)
}

func securedConfig(dir string) (string, error) {
	p, err := pkiFiles(dir)
	if err != nil {
		return "", err
	}
	// A second target, "eu", that the narrow key may not use. Keys are
	// checked before anything is sent, so it needs no Redis.
	return fmt.Sprintf(`[tls]
cert = %q
key = %q
client_ca = %q
client_auth_required = false

[[targets]]
name = "eu"
redis_url = "redis://127.0.0.1:1"
%s`, p.ServerCert, p.ServerKey, p.CA, keysConfig()), nil
}

func mtlsConfig(dir string) (string, error) {
	p, err := pkiFiles(dir)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf(`[tls]
cert = %q
key = %q
client_ca = %q
client_auth_required = true
%s`, p.ServerCert, p.ServerKey, p.CA, keysConfig()), nil
}

func pkiFiles(dir string) (*pki, error) {
	pkiOnce.Do(func() { thePKI, pkiErr = newPKI(dir) })
	return thePKI, pkiErr
}

func startStack(name, dir, config string, gatewayArgs ...string) (*stack, error) {
	root := repoRoot()
	bin := os.Getenv("EMITGATE_BIN")
	if bin == "" {
		bin = filepath.Join(root, "target", "debug", "emitgate")
	}
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("gateway binary: %v (build it with `cargo build -p emitgate` or set EMITGATE_BIN)", err)
	}
	script := filepath.Join(root, "tests", "harness", "stack.js")
	if _, err := os.Stat(filepath.Join(root, "tests", "harness", "node_modules")); err != nil {
		return nil, fmt.Errorf("tests/harness is not installed (run `make setup`): %v", err)
	}
	configFile := filepath.Join(dir, name+".toml")
	if err := os.WriteFile(configFile, []byte(config), 0o600); err != nil {
		return nil, err
	}

	args := []string{script, "--gateway", bin, "--gateway-arg=--config", "--gateway-arg=" + configFile}
	for _, a := range gatewayArgs {
		args = append(args, "--gateway-arg="+a)
	}
	cmd := exec.Command("node", args...)
	s := &stack{cmd: cmd, logs: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stderr = s.logs
	var err error
	if s.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("node %s: %v", script, err)
	}
	go func() {
		_ = cmd.Wait()
		close(s.done)
	}()

	ready := make(chan error, 1)
	go func() {
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if err != nil {
			ready <- fmt.Errorf("no ready line: %v", err)
			return
		}
		ready <- json.Unmarshal([]byte(line), s)
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case err = <-ready:
	case <-time.After(60 * time.Second):
		err = fmt.Errorf("no ready line after 60s")
	}
	if err == nil && s.GRPC == "" {
		err = fmt.Errorf("the stack started no gateway")
	}
	if err != nil {
		s.stop()
		return nil, fmt.Errorf("%v\n%s", err, s.logs.String())
	}
	return s, nil
}

// stop closes the stack's stdin, which makes it stop everything it started.
func (s *stack) stop() {
	_ = s.stdin.Close()
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

// checkAndReset fails the test if a Socket.IO server recorded an error
// (a malformed packet would crash a real server), then disconnects every
// client and removes the listeners for the next test.
func (s *stack) checkAndReset(t *testing.T) {
	var errs struct {
		Errors []json.RawMessage `json:"errors"`
	}
	s.call(t, "GET", "/errors", nil, http.StatusOK, &errs)
	if len(errs.Errors) != 0 {
		t.Errorf("the Socket.IO servers recorded errors: %s", errs.Errors)
		s.call(t, "DELETE", "/errors", nil, http.StatusOK, nil)
	}
	s.call(t, "POST", "/reset", map[string]any{}, http.StatusOK, nil)
}

// call sends a control request and decodes the answer into out (numbers
// as json.Number), failing the test unless the status is want.
func (s *stack) call(t *testing.T, method, path string, body any, want int, out any) {
	t.Helper()
	if code := s.try(t, method, path, body, out); code != want {
		t.Fatalf("%s %s: HTTP %d, want %d", method, path, code, want)
	}
}

func (s *stack) try(t *testing.T, method, path string, body any, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.Control+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if out != nil {
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		if err := dec.Decode(out); err != nil {
			t.Fatalf("%s %s: HTTP %d, bad JSON %q: %v", method, path, resp.StatusCode, data, err)
		}
	}
	return resp.StatusCode
}

// sioClient is a real socket.io-client connection held by the stack.
type sioClient struct {
	s         *stack
	ID        string `json:"id"`
	SID       string `json:"sid"`
	namespace string
	seen      int // events already returned by barrier
}

// connect connects a client to server (0 or 1) in namespace, joined to
// rooms by the server.
func (s *stack) connect(t *testing.T, namespace string, server int, rooms ...string) *sioClient {
	t.Helper()
	if rooms == nil {
		rooms = []string{}
	}
	c := &sioClient{s: s, namespace: namespace}
	s.call(t, "POST", "/clients", map[string]any{"namespace": namespace, "server": server, "rooms": rooms}, http.StatusOK, c)
	return c
}

type event struct {
	Event string `json:"event"`
	Args  []any  `json:"args"`
}

type eventsAnswer struct {
	Events           []event `json:"events"`
	Connected        bool    `json:"connected"`
	DisconnectReason *string `json:"disconnect_reason"`
}

// until waits for count events named name and returns all events the
// client received so far.
func (c *sioClient) until(t *testing.T, name string, count int) eventsAnswer {
	t.Helper()
	var a eventsAnswer
	q := url.Values{"until": {name}, "count": {fmt.Sprint(count)}, "timeout_ms": {"5000"}}
	if code := c.s.try(t, "GET", "/clients/"+c.ID+"/events?"+q.Encode(), nil, &a); code != http.StatusOK {
		t.Fatalf("client %s (%s): %d %q event(s) did not arrive (HTTP %d); got %v", c.ID, c.namespace, count, name, code, a.Events)
	}
	return a
}

// named returns the events called name, in order.
func named(events []event, name string) []event {
	var out []event
	for _, e := range events {
		if e.Event == name {
			out = append(out, e)
		}
	}
	return out
}

// rooms returns the client's rooms as its server sees them.
func (c *sioClient) rooms(t *testing.T) []string {
	t.Helper()
	var a struct {
		Rooms []string `json:"rooms"`
	}
	c.s.call(t, "GET", "/clients/"+c.ID+"/rooms", nil, http.StatusOK, &a)
	return a.Rooms
}

// disconnected waits until the client is disconnected and returns the
// reason.
func (c *sioClient) disconnected(t *testing.T) string {
	t.Helper()
	var a struct {
		Reason *string `json:"reason"`
	}
	if code := c.s.try(t, "GET", "/clients/"+c.ID+"/disconnect?timeout_ms=5000", nil, &a); code != http.StatusOK || a.Reason == nil {
		t.Fatalf("client %s was not disconnected (HTTP %d)", c.ID, code)
	}
	return *a.Reason
}

// listen registers io.of(namespace).on(event) handlers on every server.
func (s *stack) listen(t *testing.T, namespace, event string) {
	t.Helper()
	s.call(t, "POST", "/listen", map[string]any{"namespace": namespace, "event": event}, http.StatusOK, nil)
}

type serverEvent struct {
	Server int   `json:"server"`
	Args   []any `json:"args"`
}

// serverEvents waits until the servers' listeners received count events.
func (s *stack) serverEvents(t *testing.T, namespace, event string, count int) []serverEvent {
	t.Helper()
	var a struct {
		Events []serverEvent `json:"events"`
	}
	q := url.Values{"namespace": {namespace}, "event": {event}, "count": {fmt.Sprint(count)}, "timeout_ms": {"5000"}}
	if code := s.try(t, "GET", "/server-events?"+q.Encode(), nil, &a); code != http.StatusOK {
		t.Fatalf("%d server event(s) %q in %s did not arrive (HTTP %d); got %v", count, event, namespace, code, a.Events)
	}
	return a.Events
}

var nonWord = regexp.MustCompile(`[^A-Za-z0-9]+`)

// namespaceFor returns a namespace of the test's own, so that a test's
// broadcasts and barriers reach only its clients.
func namespaceFor(t *testing.T) string {
	return "/" + strings.Trim(nonWord.ReplaceAllString(t.Name(), "-"), "-")
}
