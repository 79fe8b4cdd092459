package emitgate_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	emitgate "github.com/emitgate/emitgate/sdk/go"
)

// The examples without an Output comment need a running gateway: they are
// compiled, not run. The end-to-end tests run the same calls.

func Example() {
	ctx := context.Background()
	client, err := emitgate.New(ctx, "localhost:50051",
		emitgate.WithInsecure(), // a gateway on localhost; TLS is the default
		emitgate.WithTimeout(5*time.Second),
	)
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	// io.of("/chat").to("room:42").except("muted").emit("message", ...)
	res, err := client.Of("/chat").To("room:42").Except("muted").Emit(ctx, "message",
		map[string]any{"from": "bot", "text": "hello"})
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("published to %d Socket.IO servers", res.Receivers)
}

func ExampleNew() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client, err := emitgate.New(ctx, "emitgate.internal:443",
		emitgate.WithTLS(nil), // system roots; the default
		emitgate.WithAPIKey(os.Getenv("EMITGATE_API_KEY")),
		emitgate.WithTarget("eu-cluster"),
		emitgate.WithTimeout(3*time.Second),
	)
	if err != nil {
		log.Fatal(err) // the gateway could not be reached
	}
	defer client.Close()
}

func ExampleWithTLSFiles() {
	ctx := context.Background()
	// Mutual TLS: trust the private CA of the gateway's certificate and
	// present a client certificate, which the gateway maps to an API key
	// (client_subject = "CN=billing" in its config). Pass "", "" for the
	// certificate and key, plus WithAPIKey, for TLS with a bearer key.
	client, err := emitgate.New(ctx, "emitgate.internal:50051",
		emitgate.WithTLSFiles("/etc/emitgate/ca.pem", "/etc/emitgate/billing.pem", "/etc/emitgate/billing.key"),
	)
	if err != nil {
		log.Fatal(err) // a file that cannot be used, or a failed handshake
	}
	defer client.Close()

	_, err = client.To("user:1").Emit(ctx, "invoice", 1001)
	switch {
	case emitgate.IsUnauthenticated(err): // the certificate matches no key
	case emitgate.IsPermissionDenied(err): // the key may not use this target, namespace or RPC
		log.Print(err)
	}
}

func ExampleOperator_IdempotencyKey() {
	var client *emitgate.Client // from emitgate.New
	ctx := context.Background()

	// Retry a timed-out call without delivering twice.
	op := client.To("user:42").IdempotencyKey("invoice-1001")
	res, err := op.Emit(ctx, "invoice-paid", 1001)
	for attempt := 0; attempt < 3 && (emitgate.IsUnavailable(err) || emitgate.IsDeadlineExceeded(err)); attempt++ {
		time.Sleep(time.Second)
		res, err = op.Emit(ctx, "invoice-paid", 1001)
	}
	if err != nil {
		log.Fatal(err)
	}
	if res.Duplicate {
		log.Print("an earlier attempt was published; nothing was sent again")
	}
}

func ExampleError_retryAfter() {
	var client *emitgate.Client // from emitgate.New, with an API key that has a rate limit
	ctx := context.Background()

	_, err := client.To("user:42").Emit(ctx, "tick")
	var e *emitgate.Error
	if errors.As(err, &e) && emitgate.IsResourceExhausted(err) {
		time.Sleep(e.RetryAfter) // what the gateway asked for
		_, err = client.To("user:42").Emit(ctx, "tick")
	}
	if err != nil {
		log.Print(err)
	}
}

func ExampleNewFromConn() {
	// Share a connection the application already manages.
	conn, err := grpc.NewClient("localhost:50051", grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()

	client := emitgate.NewFromConn(conn, emitgate.WithTimeout(2*time.Second))
	defer client.Close() // does not close conn

	if _, err := client.To("user:1").Emit(context.Background(), "ping"); err != nil {
		log.Print(err)
	}
}

func ExampleOperator_Emit() {
	var client *emitgate.Client // from emitgate.New
	ctx := context.Background()

	type Upload struct {
		Name    string `json:"name"`
		Content []byte `json:"content"` // bytes inside: sent as MessagePack, a Buffer for the client
	}
	_, err := client.Of("/files").To("user:7").Emit(ctx, "uploaded",
		Upload{Name: "a.png", Content: []byte{0x89, 'P', 'N', 'G'}},
		[]byte("raw bytes"),                   // a binary argument
		json.RawMessage(`{"already":"json"}`), // sent as is
		int64(1)<<60,                          // exact up to the client's decoder
	)
	if err != nil {
		log.Print(err)
	}
}

func ExampleClient_Broadcast() {
	var client *emitgate.Client // from emitgate.New
	ctx := context.Background()

	// Every socket of "/" …
	_, _ = client.Broadcast(ctx, "maintenance", "in 5 minutes")
	// … or of "/admin" but the sockets in room "away", without waiting for
	// slow clients and without compression.
	_, _ = client.Of("/admin").Except("away").Volatile().Compress(false).Broadcast(ctx, "tick", time.Now().Unix())
}

func ExampleOperator_SocketsJoin() {
	var client *emitgate.Client // from emitgate.New
	ctx := context.Background()

	// The sockets in room "user:1" (all of that user's tabs) join "team:9".
	_, _ = client.In("user:1").SocketsJoin(ctx, "team:9")
	// Every socket of "/chat" leaves "lobby".
	_, _ = client.Of("/chat").SocketsLeave(ctx, "lobby")
}

func ExampleOperator_DisconnectSockets() {
	var client *emitgate.Client // from emitgate.New
	ctx := context.Background()

	// Log out user 1 everywhere, closing the underlying connections.
	_, _ = client.In("user:1").DisconnectSockets(ctx, true)
}

func ExampleOperator_ServerSideEmit() {
	var client *emitgate.Client // from emitgate.New
	ctx := context.Background()

	// Reaches io.of("/").on("config-changed", …) on every Socket.IO server.
	_, _ = client.ServerSideEmit(ctx, "config-changed", map[string]any{"version": 12})
}

func ExampleClient_Batch() {
	var client *emitgate.Client // from emitgate.New
	ctx := context.Background()

	b := client.Batch()
	for _, user := range []string{"user:1", "user:2", "user:3"} {
		b.Emit(client.To(user), "notification", "you have mail")
	}
	b.Broadcast(client.Of("/admin"), "mail-sent", 3)

	res, err := b.Send(ctx) // split into requests at the gateway's item limit
	if err != nil {
		log.Print(err)
	}
	for i, item := range res.Items {
		if item.Err != nil {
			log.Printf("item %d: %v", i, item.Err)
		}
	}
	log.Printf("%d published, %d failed", res.Published, res.Failed)
}

func ExampleError() {
	// A client whose connection is never used here: an Emit without a room
	// is refused before anything is sent.
	conn, err := grpc.NewClient("localhost:50051", grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	client := emitgate.NewFromConn(conn)

	_, err = client.Of("/chat").Emit(context.Background(), "message", "hi")

	var e *emitgate.Error
	if errors.As(err, &e) {
		fmt.Println(e.Code, e.Local)
		for _, v := range e.Violations {
			fmt.Printf("%s: %s\n", v.Field, v.Description)
		}
	}
	fmt.Println(emitgate.IsInvalidArgument(err))
	// Output:
	// InvalidArgument true
	// rooms: at least one room is required
	// true
}

func ExampleOperator_String() {
	conn, err := grpc.NewClient("localhost:50051", grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	client := emitgate.NewFromConn(conn)

	admins := client.Of("admin")
	room := admins.To("room1").Except("muted")
	fmt.Println(admins)
	fmt.Println(room.Volatile())
	fmt.Println(room) // operators are immutable
	// Output:
	// Of("/admin")
	// Of("/admin").To(["room1"]).Except(["muted"]).Volatile()
	// Of("/admin").To(["room1"]).Except(["muted"])
}

func ExamplePublisher() {
	var client *emitgate.Client // from emitgate.New
	ctx := context.Background()

	// Batches of up to 1000 events, sent 5 ms after their first event at
	// the latest, 4 calls in flight; publishing blocks beyond 100 000
	// events waiting for their result.
	p := client.NewPublisher()
	defer p.Close() // flushes: every event published so far gets its result

	type notice struct {
		UserID string `json:"user_id"`
		Text   string `json:"text"`
	}
	notices := []notice{{"1", "hello"}, {"2", "welcome back"}}
	results := make([]*emitgate.PublishResult, 0, len(notices))
	for _, n := range notices {
		// Returns at once; the event is sent in the background.
		results = append(results, p.To("user:"+n.UserID).Emit(ctx, "notification", n))
	}
	// An idempotency key makes the event's batch retried if the gateway
	// is unavailable (without one, the event gets the Unavailable error).
	results = append(results, p.Of("/admin").IdempotencyKey("report-2024-06").Broadcast(ctx, "report", "ready"))

	if err := p.Flush(ctx); err != nil {
		log.Fatal(err) // ctx ended first
	}
	for i, r := range results {
		if _, err := r.Get(ctx); err != nil {
			log.Printf("event %d not published: %v", i, err) // per event: e.g. a reserved event name
		}
	}
}
