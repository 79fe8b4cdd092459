package emitgate

import (
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// TestConstantsMatchTheSharedFile fails when a limit, the nesting depth or
// a Publisher default of this SDK drifts from tests/conformance/constants.json,
// the numbers every SDK and the gateway share.
func TestConstantsMatchTheSharedFile(t *testing.T) {
	_, here, _, _ := runtime.Caller(0)
	data, err := os.ReadFile(filepath.Join(filepath.Dir(here), "..", "..", "tests", "conformance", "constants.json"))
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		GatewayDefaults struct {
			MaxBatchItems int `json:"max_batch_items"`
		} `json:"gateway_defaults"`
		MaxDepth       int    `json:"max_depth"`
		MaxSafeInteger uint64 `json:"max_safe_integer"`
		LimitError     struct {
			Reason string `json:"reason"`
			Domain string `json:"domain"`
		} `json:"limit_error"`
		Publisher struct {
			MaxItems        int    `json:"max_items"`
			MaxBytes        int    `json:"max_bytes"`
			LingerMs        int    `json:"linger_ms"`
			MaxInFlight     int    `json:"max_in_flight"`
			Buffer          int    `json:"buffer"`
			OnFull          string `json:"on_full"`
			RetryInitialMs  int    `json:"retry_initial_ms"`
			RetryMultiplier int    `json:"retry_multiplier"`
			RetryMaxMs      int    `json:"retry_max_ms"`
			RetryAttempts   int    `json:"retry_attempts"`
		} `json:"publisher"`
	}
	if err := json.Unmarshal(data, &c); err != nil {
		t.Fatal(err)
	}
	p := c.Publisher
	ms := time.Millisecond
	checks := []struct {
		name      string
		got, want any
	}{
		{"DefaultMaxBatchItems", DefaultMaxBatchItems, c.GatewayDefaults.MaxBatchItems},
		{"maxDepth", maxDepth, c.MaxDepth},
		{"maxSafeInteger", uint64(maxSafeInteger - 1), c.MaxSafeInteger},
		{"limitExceeded", limitExceeded, c.LimitError.Reason},
		{"errorDomain", errorDomain, c.LimitError.Domain},
		{"DefaultPublisherMaxItems", DefaultPublisherMaxItems, p.MaxItems},
		{"DefaultPublisherMaxBytes", DefaultPublisherMaxBytes, p.MaxBytes},
		{"DefaultPublisherLinger", DefaultPublisherLinger, time.Duration(p.LingerMs) * ms},
		{"DefaultPublisherMaxInFlight", DefaultPublisherMaxInFlight, p.MaxInFlight},
		{"DefaultPublisherBuffer", DefaultPublisherBuffer, p.Buffer},
		{"default OnFull", OnFull(0) == OnFullBlock, p.OnFull == "block"},
		{"retryInitialDelay", retryInitialDelay, time.Duration(p.RetryInitialMs) * ms},
		{"retryMultiplier", retryMultiplier, p.RetryMultiplier},
		{"retryMaxDelay", retryMaxDelay, time.Duration(p.RetryMaxMs) * ms},
		{"retryMaxAttempts", retryMaxAttempts, p.RetryAttempts},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %v, the shared constant is %v", ch.name, ch.got, ch.want)
		}
	}
}
