// Command go is the benchmark driver of the Go SDK: the Publisher in one
// process.
//
// It reads one JSON object on stdin:
//
//	{"grpc": "127.0.0.1:P", "seconds": 4, "event": "...", "payload_json": "{...}",
//	 "rooms": [["user:0"], ...]}
//
// publishes the workload (the event with the payload object, cycling
// through the room sets) for that long, closes the Publisher (which
// delivers everything buffered) and prints one JSON line: {"sent": N,
// "errors": E, "first_error": "...", "cpu_s": C} (C: this process's CPU
// time).
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"syscall"
	"time"

	emitgate "github.com/emitgate/emitgate/sdk/go"
)

// checkEvery is how many events are published between two looks at the
// clock.
const checkEvery = 1000

type config struct {
	GRPC        string     `json:"grpc"`
	Seconds     float64    `json:"seconds"`
	Event       string     `json:"event"`
	PayloadJSON string     `json:"payload_json"`
	Rooms       [][]string `json:"rooms"`
}

func cpuSeconds() float64 {
	var u syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &u)
	return float64(u.Utime.Nano()+u.Stime.Nano()) / 1e9
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench/sdk/go:", err)
		os.Exit(1)
	}
}

func run() error {
	var cfg config
	if err := json.NewDecoder(os.Stdin).Decode(&cfg); err != nil {
		return err
	}
	var payload map[string]any
	if err := json.Unmarshal([]byte(cfg.PayloadJSON), &payload); err != nil {
		return err
	}
	ctx := context.Background()
	cpu0 := cpuSeconds()
	client, err := emitgate.New(ctx, cfg.GRPC, emitgate.WithInsecure(), emitgate.WithTimeout(30*time.Second))
	if err != nil {
		return err
	}
	defer client.Close()
	p := client.NewPublisher()
	// One operator per room set, as a pipeline keeps its selections.
	ops := make([]emitgate.PublishOperator, len(cfg.Rooms))
	for i, rooms := range cfg.Rooms {
		ops[i] = p.To(rooms...)
	}
	var results []*emitgate.PublishResult
	deadline := time.Now().Add(time.Duration(cfg.Seconds * float64(time.Second)))
	for time.Now().Before(deadline) {
		for range checkEvery {
			results = append(results, ops[len(results)%len(ops)].Emit(ctx, cfg.Event, payload))
		}
	}
	if err := p.Close(); err != nil {
		return err
	}
	cpu := cpuSeconds() - cpu0
	errors, first := 0, ""
	for _, r := range results {
		if _, err := r.Get(ctx); err != nil {
			if errors == 0 {
				first = err.Error()
			}
			errors++
		}
	}
	out := map[string]any{"sent": len(results) - errors, "errors": errors, "cpu_s": cpu}
	if errors > 0 {
		out["first_error"] = first
	}
	return json.NewEncoder(os.Stdout).Encode(out)
}
