// Command bench measures the Go SDK's publishing throughput end to end: it
// starts a redis-server and a gateway, publishes the benchmark workload
// (one event with one ~100-byte JSON object argument to a cycle of 300
// room sets of 1–3 rooms, the workload of `make bench`) through the SDK,
// and counts the events at a PSUBSCRIBE'd Redis subscriber running in a
// child process, so that the publishing process's CPU time is the SDK's
// alone. It prints one JSON line:
//
//	{"mode":"publisher","payload":"map","events":100000,"elapsed_s":…,"events_per_s":…,"client_cpu_us_per_event":…}
//
// Usage (from sdk/go, after `cargo build --release --locked -p emitgate`):
//
//	go run ./internal/bench -mode publisher -payload map -cpuprofile cpu.pprof
//
// Speed is measured here, never asserted in tests.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	emitgate "github.com/emitgate/emitgate/sdk/go"
)

// The workload, as bench/src/workload.rs defines it.
const (
	event       = "notification"
	payloadJSON = `{"id":1042,"kind":"comment","title":"New reply to your post","from":"alice","unread":3,"url":"/p/88"}`
	roomSets    = 300
	batchItems  = 1000
	// channelPattern matches every channel the gateway publishes on for
	// the default key (room and namespace channels alike).
	channelPattern = "socket.io#*"
)

// notification is the payload as a typed struct.
type notification struct {
	ID     int    `json:"id"`
	Kind   string `json:"kind"`
	Title  string `json:"title"`
	From   string `json:"from"`
	Unread int    `json:"unread"`
	URL    string `json:"url"`
}

// rooms is the room set of event i.
func rooms(i int) []string {
	r := []string{fmt.Sprintf("user:%d", i%1000)}
	if i%3 >= 1 {
		r = append(r, fmt.Sprintf("team:%d", i%100))
	}
	if i%3 == 2 {
		r = append(r, fmt.Sprintf("org:%d", i%10))
	}
	return r
}

func main() {
	mode := flag.String("mode", "publisher", "publisher (Client.NewPublisher) or batch (Client.Batch, Send per 1000 items)")
	payload := flag.String("payload", "map", "the argument's Go type: map (map[string]any), struct, or raw (json.RawMessage)")
	events := flag.Int("events", 100_000, "events to publish")
	gatewayBin := flag.String("gateway", "", "gateway binary (default <repo>/target/release/emitgate)")
	redisBin := flag.String("redis-server", "redis-server", "redis-server binary")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the publishing to this file")
	subscribe := flag.String("subscribe", "", "internal: run as the subscriber of this Redis address")
	flag.Parse()

	if *subscribe != "" {
		if err := subscriber(*subscribe, *events); err != nil {
			fmt.Fprintln(os.Stderr, "bench subscriber:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(*mode, *payload, *events, *gatewayBin, *redisBin, *cpuProfile); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(mode, payloadKind string, n int, gatewayBin, redisBin, cpuProfile string) error {
	var arg any
	switch payloadKind {
	case "map":
		var m map[string]any
		if err := json.Unmarshal([]byte(payloadJSON), &m); err != nil {
			return err
		}
		arg = m
	case "struct":
		var s notification
		if err := json.Unmarshal([]byte(payloadJSON), &s); err != nil {
			return err
		}
		arg = s
	case "raw":
		arg = json.RawMessage(payloadJSON)
	default:
		return fmt.Errorf("unknown -payload %q", payloadKind)
	}
	if mode != "publisher" && mode != "batch" {
		return fmt.Errorf("unknown -mode %q", mode)
	}
	if gatewayBin == "" {
		_, file, _, _ := runtime.Caller(0)
		gatewayBin = filepath.Join(filepath.Dir(file), "..", "..", "..", "..", "target", "release", "emitgate")
	}

	redisAddr, err := freeAddr()
	if err != nil {
		return err
	}
	_, redisPort, _ := net.SplitHostPort(redisAddr)
	redis := exec.Command(redisBin, "--port", redisPort, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--client-output-buffer-limit", "pubsub 0 0 0")
	if err := startAndWait(redis, redisAddr); err != nil {
		return fmt.Errorf("redis-server: %w", err)
	}
	defer stop(redis)

	grpcAddr, err := freeAddr()
	if err != nil {
		return err
	}
	gateway := exec.Command(gatewayBin, "--listen", grpcAddr, "--redis-url", "redis://"+redisAddr, "--admin-listen", "127.0.0.1:0")
	gateway.Env = append(os.Environ(), "NO_COLOR=1")
	if err := startAndWait(gateway, grpcAddr); err != nil {
		return fmt.Errorf("gateway %s: %w", gatewayBin, err)
	}
	defer stop(gateway)

	// The subscriber: this program again, in a child process.
	self, err := os.Executable()
	if err != nil {
		return err
	}
	sub := exec.Command(self, "-subscribe", redisAddr, "-events", strconv.Itoa(n))
	sub.Stderr = os.Stderr
	subOut, err := sub.StdoutPipe()
	if err != nil {
		return err
	}
	if err := sub.Start(); err != nil {
		return err
	}
	defer stop(sub)
	lines := bufio.NewScanner(subOut)
	if !lines.Scan() || lines.Text() != "ready" {
		return errors.New("the subscriber did not start")
	}

	ctx := context.Background()
	client, err := emitgate.New(ctx, grpcAddr, emitgate.WithInsecure())
	if err != nil {
		return err
	}
	defer client.Close()

	roomCycle := make([][]string, roomSets)
	for i := range roomCycle {
		roomCycle[i] = rooms(i)
	}
	if cpuProfile != "" {
		f, err := os.Create(cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}

	cpu0 := cpuTime()
	start := time.Now()
	failed := 0
	switch mode {
	case "publisher":
		p := client.NewPublisher()
		results := make([]*emitgate.PublishResult, n)
		for i := range results {
			results[i] = p.To(roomCycle[i%roomSets]...).Emit(ctx, event, arg)
		}
		if err := p.Close(); err != nil {
			return err
		}
		for _, r := range results {
			if _, err := r.Get(ctx); err != nil {
				failed++
			}
		}
	case "batch":
		for off := 0; off < n; off += batchItems {
			b := client.Batch()
			for i := off; i < min(off+batchItems, n); i++ {
				b.Emit(client.To(roomCycle[i%roomSets]...), event, arg)
			}
			res, err := b.Send(ctx)
			if err != nil {
				return err
			}
			failed += res.Failed
		}
	}
	published := time.Since(start)
	cpu := cpuTime() - cpu0
	if failed != 0 {
		return fmt.Errorf("%d events failed", failed)
	}
	if !lines.Scan() || lines.Text() != "done" {
		return errors.New("the subscriber did not count every event")
	}
	elapsed := time.Since(start)
	out, _ := json.Marshal(map[string]any{
		"mode":                    mode,
		"payload":                 payloadKind,
		"events":                  n,
		"elapsed_s":               round(elapsed.Seconds()),
		"events_per_s":            int(float64(n) / elapsed.Seconds()),
		"publish_s":               round(published.Seconds()),
		"client_cpu_s":            round(cpu.Seconds()),
		"client_cpu_us_per_event": round(float64(cpu.Microseconds()) / float64(n)),
	})
	fmt.Println(string(out))
	return nil
}

func round(f float64) float64 { return float64(int(f*1000+0.5)) / 1000 }

// cpuTime is the CPU time (user and system) this process used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// startAndWait starts cmd and waits until addr accepts connections.
func startAndWait(cmd *exec.Cmd, addr string) error {
	cmd.Stdout = io.Discard
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			_ = c.Close()
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	stop(cmd)
	return fmt.Errorf("nothing listens on %s after 30 s", addr)
}

func stop(cmd *exec.Cmd) {
	if cmd.Process != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}
}

// subscriber PSUBSCRIBEs to the gateway's channels, prints "ready", counts
// n messages and prints "done".
func subscriber(addr string, n int) error {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := fmt.Fprintf(conn, "*2\r\n$10\r\nPSUBSCRIBE\r\n$%d\r\n%s\r\n", len(channelPattern), channelPattern); err != nil {
		return err
	}
	rd := bufio.NewReaderSize(conn, 1<<20)
	kind, err := readPush(rd)
	if err != nil {
		return err
	}
	if kind != "psubscribe" {
		return fmt.Errorf("PSUBSCRIBE answered %q", kind)
	}
	fmt.Println("ready")
	for count := 0; count < n; {
		kind, err := readPush(rd)
		if err != nil {
			return err
		}
		if kind == "pmessage" {
			count++
		}
	}
	fmt.Println("done")
	return nil
}

// readPush reads one RESP2 array of bulk strings and integers and returns
// its first element.
func readPush(rd *bufio.Reader) (string, error) {
	line, err := rd.ReadSlice('\n')
	if err != nil {
		return "", err
	}
	if len(line) < 3 || line[0] != '*' {
		return "", fmt.Errorf("unexpected reply %q", line)
	}
	count, err := strconv.Atoi(strings.TrimSpace(string(line[1:])))
	if err != nil {
		return "", err
	}
	var first string
	for i := 0; i < count; i++ {
		line, err := rd.ReadSlice('\n')
		if err != nil {
			return "", err
		}
		switch line[0] {
		case ':':
			continue
		case '$':
			size, err := strconv.Atoi(strings.TrimSpace(string(line[1:])))
			if err != nil {
				return "", err
			}
			if i == 0 {
				b := make([]byte, size+2)
				if _, err := io.ReadFull(rd, b); err != nil {
					return "", err
				}
				first = string(b[:size])
			} else if _, err := rd.Discard(size + 2); err != nil {
				return "", err
			}
		default:
			return "", fmt.Errorf("unexpected element %q", line)
		}
	}
	return first, nil
}
