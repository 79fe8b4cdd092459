package emitgate_test

import (
	"context"
	"log"
	"time"

	emitgate "github.com/emitgate/emitgate/sdk/go"
)

func ExampleOperator_EmitWithAck() {
	ctx := context.Background()
	client, err := emitgate.New(ctx, "localhost:50051", emitgate.WithInsecure())
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	// io.to("user:42").timeout(5000).emitWithAck("notify", {...})
	r, err := client.To("user:42").Timeout(5*time.Second).EmitWithAck(ctx, "notify",
		map[string]any{"id": 7})
	if err != nil {
		log.Fatal(err)
	}
	if !r.Complete || r.Sockets == 0 {
		log.Printf("user offline or did not ack (%d of %d acks): fall back to e-mail", len(r.Acks), r.Sockets)
	}
	for _, ack := range r.Acks {
		log.Printf("ack: %v", ack) // decoded: map[string]any, []byte, int64, ...
	}
}

func ExampleOperator_FetchSockets() {
	ctx := context.Background()
	client, err := emitgate.New(ctx, "localhost:50051", emitgate.WithInsecure())
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	r, err := client.Of("/chat").In("room:42").Except("muted").FetchSockets(ctx)
	if err != nil {
		log.Fatal(err)
	}
	for _, s := range r.Sockets {
		log.Printf("%s in %v, data %v, from %s", s.ID, s.Rooms, s.Data, s.Handshake.Address)
	}
	if r.Truncated {
		log.Print("more sockets than the gateway returns: narrow the rooms")
	}
}

func ExampleOperator_AllRooms() {
	ctx := context.Background()
	client, err := emitgate.New(ctx, "localhost:50051", emitgate.WithInsecure())
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	r, err := client.Of("/chat").Timeout(2 * time.Second).AllRooms(ctx)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("%d rooms from %d of %d servers", len(r.Rooms), r.Servers, r.ServersExpected)
}

func ExampleOperator_ServerCount() {
	ctx := context.Background()
	client, err := emitgate.New(ctx, "localhost:50051", emitgate.WithInsecure())
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	n, err := client.Of("/chat").ServerCount(ctx)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("%d Socket.IO servers", n)
}

func ExampleOperator_ServerSideEmitWithAck() {
	ctx := context.Background()
	client, err := emitgate.New(ctx, "localhost:50051", emitgate.WithInsecure())
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	r, err := client.Timeout(2*time.Second).ServerSideEmitWithAck(ctx, "health", "ping")
	if err != nil {
		log.Fatal(err)
	}
	for _, reply := range r.Replies {
		log.Printf("server %q replied %v", reply.Server, reply.Reply)
	}
	if !r.Complete {
		log.Printf("%d of %d servers replied", len(r.Replies), r.ServersExpected)
	}
}
