package bus

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/internal/testkit"
)

// A message whose last try fails while the dead-letter stream cannot store
// (a full disk, here: the stream is gone) stays in its own stream, is not
// handled again, and is parked once the dead-letter stream stores again.
// Before, it was terminated anyway: lost to both streams.
func TestFailedParkKeepsTheMessage(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	b := openBus(t, cfg)
	ctx := context.Background()
	if err := b.js.DeleteStream(ctx, DeadLetterStream); err != nil {
		t.Fatal(err)
	}
	var attempts atomic.Int32
	dead := make(chan string, 1)
	if _, err := b.Consume(ctx, ConsumerConfig{
		Stream: EventsStream, Durable: "park", FilterSubject: EventsSubjectPrefix + ">",
		OnDeadLetter: func(_ *Delivery, reason string) { dead <- reason },
	}, func(context.Context, *Delivery) error {
		attempts.Add(1)
		return errors.New("disk full")
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Publish(ctx, []event.Event{testEvent("park", event.StatusFiring)}); err != nil {
		t.Fatal(err)
	}
	// Deliveries go on past max_deliver (each one tries to park it).
	testkit.Eventually(t, 20*time.Second, "deliveries past max_deliver while parking fails", func() bool {
		ci, err := b.js.Consumer(ctx, EventsStream, "park")
		return err == nil && ci.CachedInfo().NumRedelivered > 0 && int(ci.CachedInfo().Delivered.Consumer) > cfg.MaxDeliver+1
	})
	if n := attempts.Load(); n != int32(cfg.MaxDeliver) {
		t.Fatalf("handler ran %d times, want max_deliver=%d: a delivery past it must only park", n, cfg.MaxDeliver)
	}
	select {
	case reason := <-dead:
		t.Fatalf("reported dead-lettered (%q) while the dead-letter stream is gone", reason)
	default:
	}

	if err := b.ensureStreams(ctx); err != nil { // the disk has room again
		t.Fatal(err)
	}
	select {
	case reason := <-dead:
		if !strings.Contains(reason, "parking it failed") {
			t.Fatalf("reason %q", reason)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("not parked after the dead-letter stream came back")
	}
	msg := lastDeadLetter(t, b)
	var ev event.Event
	if err := event.UnmarshalEvent(msg.Data, &ev); err != nil || ev.ID != testEvent("park", event.StatusFiring).ID {
		t.Fatalf("dead letter holds %q (err %v), want the event", msg.Data, err)
	}
	testkit.Eventually(t, 20*time.Second, "the message terminated once parked", func() bool {
		ci, err := b.js.Consumer(ctx, EventsStream, "park")
		return err == nil && ci.CachedInfo().NumAckPending == 0 && ci.CachedInfo().NumPending == 0
	})
	if n := attempts.Load(); n != int32(cfg.MaxDeliver) {
		t.Fatalf("handler ran %d times in all, want %d", n, cfg.MaxDeliver)
	}
}

// A durable consumer made by an older medic (JetStream's MaxDeliver set to
// bus.max_deliver) is updated to medic's own limit when medic starts.
func TestConsumerFromOlderMedicIsUpdated(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	b := openBus(t, cfg)
	ctx := context.Background()
	if _, err := b.js.CreateOrUpdateConsumer(ctx, EventsStream, jetstream.ConsumerConfig{
		Durable: "old", AckPolicy: jetstream.AckExplicitPolicy, AckWait: cfg.AckWait,
		MaxDeliver: cfg.MaxDeliver, FilterSubject: EventsSubjectPrefix + ">",
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Consume(ctx, ConsumerConfig{Stream: EventsStream, Durable: "old", FilterSubject: EventsSubjectPrefix + ">"},
		func(context.Context, *Delivery) error { return nil }); err != nil {
		t.Fatalf("taking over an older medic's consumer: %v", err)
	}
	ci, err := b.js.Consumer(ctx, EventsStream, "old")
	if err != nil {
		t.Fatal(err)
	}
	if got := ci.CachedInfo().Config.MaxDeliver; got != -1 {
		t.Fatalf("JetStream's MaxDeliver is %d, want -1 (medic counts)", got)
	}
}
