package bus

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/medichq/medic/event"
)

// publishUntilFull publishes batches of 10 events until the stream refuses
// one, and returns how many events were stored.
func publishUntilFull(t *testing.T, b *Bus, prefix string) (stored int, fullErr error) {
	t.Helper()
	ctx := context.Background()
	for i := 0; i < 10000; i++ {
		evs := make([]event.Event, 10)
		for j := range evs {
			evs[j] = testEvent(fmt.Sprintf("%s-%d-%d", prefix, i, j), event.StatusFiring)
		}
		res, err := b.Publish(ctx, evs)
		stored += res.Stored
		if err != nil {
			return stored, err
		}
	}
	t.Fatal("the stream never filled up")
	return
}

func TestFullStreamRefusesNewAndDiscardsNothing(t *testing.T) {
	cfg := testConfig(t)
	cfg.MaxBytes = 64 << 10
	b := openBus(t, cfg)
	ctx := context.Background()

	stored, err := publishUntilFull(t, b, "a")
	if !errors.Is(err, ErrStreamFull) || !errors.Is(err, event.ErrStreamFull) {
		t.Fatalf("publish into a full stream: got %v, want ErrStreamFull", err)
	}
	s, err := b.js.Stream(ctx, EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Nothing was dropped to make room: every stored event is still there,
	// starting with the first one.
	if info.State.FirstSeq != 1 || info.State.Msgs != uint64(stored) {
		t.Fatalf("stream holds seq %d.. (%d messages), want 1.. (%d): events were discarded",
			info.State.FirstSeq, info.State.Msgs, stored)
	}
	// No consumer has processed anything, so there is nothing to reclaim.
	if _, err := b.Publish(ctx, []event.Event{testEvent("late", event.StatusFiring)}); !errors.Is(err, ErrStreamFull) {
		t.Fatalf("publish with nothing processed: got %v, want ErrStreamFull", err)
	}
}

func TestFullStreamReclaimsProcessedMessages(t *testing.T) {
	cfg := testConfig(t)
	cfg.MaxBytes = 64 << 10
	b := openBus(t, cfg)
	ctx := context.Background()

	// The consumer works only once released, so the stream fills with
	// unprocessed events first.
	release := make(chan struct{})
	var processed atomic.Int64
	if _, err := b.Consume(ctx, ConsumerConfig{Stream: EventsStream, Durable: "engine", FilterSubject: EventsSubjectPrefix + ">"},
		func(ctx context.Context, _ *Delivery) error {
			select {
			case <-release:
			case <-ctx.Done():
				return ctx.Err()
			}
			processed.Add(1)
			return nil
		}); err != nil {
		t.Fatal(err)
	}
	stored, err := publishUntilFull(t, b, "a")
	if !errors.Is(err, ErrStreamFull) {
		t.Fatalf("got %v after %d events, want ErrStreamFull", err, stored)
	}
	close(release)
	deadline := time.Now().Add(20 * time.Second)
	for processed.Load() < int64(stored) {
		if time.Now().After(deadline) {
			t.Fatalf("consumer processed %d of %d events", processed.Load(), stored)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The ack floor is what reclaim reads; acks are asynchronous.
	time.Sleep(100 * time.Millisecond)
	time.Sleep(reclaimReuse)
	if _, err := b.Publish(ctx, []event.Event{testEvent("after", event.StatusFiring)}); err != nil {
		t.Fatalf("publish after the consumer caught up: %v", err)
	}
	s, err := b.js.Stream(ctx, EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs >= uint64(stored) {
		t.Fatalf("stream still holds %d messages after reclaim; the %d processed ones should be gone", info.State.Msgs, stored)
	}
}

func TestOpenMovesDiscardOldStreamsToDiscardNew(t *testing.T) {
	cfg := testConfig(t)
	ctx := context.Background()
	b1, err := Open(ctx, cfg, discard())
	if err != nil {
		t.Fatal(err)
	}
	// What an older medic created.
	for _, name := range []string{EventsStream, FindingsStream} {
		s, err := b1.js.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		sc := s.CachedInfo().Config
		sc.Discard = jetstream.DiscardOld
		if _, err := b1.js.UpdateStream(ctx, sc); err != nil {
			t.Fatal(err)
		}
	}
	b1.Close()

	b2 := openBus(t, cfg)
	for name, want := range map[string]jetstream.DiscardPolicy{
		EventsStream:     jetstream.DiscardNew,
		FindingsStream:   jetstream.DiscardNew,
		DeadLetterStream: jetstream.DiscardOld,
	} {
		s, err := b2.js.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if got := s.CachedInfo().Config.Discard; got != want {
			t.Errorf("stream %s: discard %v, want %v", name, got, want)
		}
	}
}

func TestIsFullError(t *testing.T) {
	for _, tc := range []struct {
		code int
		desc string
		want bool
	}{
		{10077, "maximum bytes exceeded", true},
		{10077, "maximum messages exceeded", true},
		{10077, "maximum messages per subject exceeded", true},
		{10023, "insufficient resources", true},
		{10077, "message size exceeds maximum allowed", false},
		{10071, "wrong last sequence: 4", false},
	} {
		if got := isFullError(tc.code, tc.desc); got != tc.want {
			t.Errorf("isFullError(%d, %q) = %v, want %v", tc.code, tc.desc, got, tc.want)
		}
	}
}

func TestSubjectsOverlap(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"medic.events.>", ">", true},
		{"medic.findings.file", "medic.findings.file", true},
		{"medic.findings.file", "medic.findings.slack", false},
		{"medic.findings.*", "medic.findings.slack", true},
		{"medic.findings.>", "medic.events.x", false},
		{"a.b", "a.b.c", false},
	} {
		if got := subjectsOverlap(tc.a, tc.b); got != tc.want {
			t.Errorf("subjectsOverlap(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}

// After a crash, the deliveries the dead process held are handed out again
// at once, not after AckWait: the restarted consumer gets them in seconds.
func TestRestartReleasesDeliveriesOfTheDeadProcess(t *testing.T) {
	cfg := testConfig(t)
	cfg.AckWait = 30 * time.Second
	ctx := context.Background()
	b1, err := Open(ctx, cfg, discard())
	if err != nil {
		t.Fatal(err)
	}
	const n = 5
	evs := make([]event.Event, n)
	for i := range evs {
		evs[i] = testEvent(fmt.Sprintf("stale-%d", i), event.StatusFiring)
	}
	if _, err := b1.Publish(ctx, evs); err != nil {
		t.Fatal(err)
	}
	// The first process takes every message and dies before acking any.
	cons, err := b1.js.CreateOrUpdateConsumer(ctx, EventsStream, jetstream.ConsumerConfig{
		Durable: "engine", AckPolicy: jetstream.AckExplicitPolicy, AckWait: cfg.AckWait,
		MaxDeliver: cfg.MaxDeliver, FilterSubject: EventsSubjectPrefix + ">", DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.Fetch(n, jetstream.FetchMaxWait(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	got := 0
	for range batch.Messages() {
		got++
	}
	if got != n {
		t.Fatalf("first process fetched %d of %d", got, n)
	}
	b1.Close()

	b2 := openBus(t, cfg)
	start := time.Now()
	var handled atomic.Int64
	if _, err := b2.Consume(ctx, ConsumerConfig{Stream: EventsStream, Durable: "engine", FilterSubject: EventsSubjectPrefix + ">"},
		func(context.Context, *Delivery) error { handled.Add(1); return nil }); err != nil {
		t.Fatal(err)
	}
	for handled.Load() < n {
		if time.Since(start) > 10*time.Second {
			t.Fatalf("after the restart %d of %d stale deliveries were handled in %s (ack_wait %s)",
				handled.Load(), n, time.Since(start), cfg.AckWait)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("stale deliveries of the dead process handled %s after the restart (ack_wait %s)", time.Since(start).Round(time.Millisecond), cfg.AckWait)
}
