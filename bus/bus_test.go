package bus

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/internal/natstest"
	"github.com/medichq/medic/internal/testkit"
)

func testConfig(t *testing.T) Config {
	t.Helper()
	return Config{
		StoreDir:    t.TempDir(),
		Replicas:    1,
		DedupWindow: time.Minute,
		Retention:   time.Hour,
		MaxBytes:    64 << 20,
		MaxDeliver:  3,
		Backoff:     []time.Duration{20 * time.Millisecond},
		AckWait:     2 * time.Second,
		// Generous: under make test's cold run (the tool builds and every
		// race-enabled package on 2 cores) a publish's answer has taken over
		// 2 s. A test of the timeout itself sets its own.
		PublishTimeout: 10 * time.Second,
		Compression:    "s2",
	}
}

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func openBus(t *testing.T, cfg Config) *Bus {
	t.Helper()
	b, err := Open(context.Background(), cfg, discard())
	if err != nil {
		t.Fatalf("open bus: %v", err)
	}
	t.Cleanup(b.Close)
	return b
}

func testEvent(fp string, status event.Status) event.Event {
	starts := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	return event.Event{
		ID:       event.NewID("test", fp, status, starts),
		Kind:     event.KindPrometheusAlert,
		Status:   status,
		StartsAt: starts,
		Labels:   map[string]string{"alertname": fp},
	}
}

func TestPublishDeduplicatesByEventID(t *testing.T) {
	b := openBus(t, testConfig(t))
	ctx := context.Background()
	evs := []event.Event{testEvent("a", event.StatusFiring), testEvent("b", event.StatusFiring)}
	res, err := b.Publish(ctx, evs)
	if err != nil {
		t.Fatal(err)
	}
	if res.Stored != 2 || res.Duplicates != 0 {
		t.Fatalf("first publish: got %+v, want 2 stored", res)
	}
	// The same webhook again, plus the resolved state of a: only the new one is stored.
	res, err = b.Publish(ctx, append(evs, testEvent("a", event.StatusResolved)))
	if err != nil {
		t.Fatal(err)
	}
	if res.Stored != 1 || res.Duplicates != 2 {
		t.Fatalf("second publish: got %+v, want 1 stored, 2 duplicates", res)
	}
	info, err := b.js.Stream(ctx, EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	if n := info.CachedInfo().State.Msgs; n != 3 {
		t.Fatalf("stream holds %d messages, want 3", n)
	}
}

func TestConsumerAcksAfterSuccess(t *testing.T) {
	b := openBus(t, testConfig(t))
	ctx := context.Background()
	got := make(chan string, 10)
	_, err := b.Consume(ctx, ConsumerConfig{Stream: EventsStream, Durable: "t", FilterSubject: EventsSubjectPrefix + ">"},
		func(_ context.Context, d *Delivery) error {
			got <- d.Subject
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Publish(ctx, []event.Event{testEvent("x", event.StatusFiring)}); err != nil {
		t.Fatal(err)
	}
	select {
	case s := <-got:
		if s != "medic.events.prometheus_alert" {
			t.Fatalf("subject %q", s)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("message not delivered")
	}
	testkit.Eventually(t, 20*time.Second, "the first event acknowledged", func() bool {
		ci, err := b.js.Consumer(ctx, EventsStream, "t")
		return err == nil && ci.CachedInfo().NumAckPending == 0 && ci.CachedInfo().AckFloor.Stream == 1
	})
}

func TestFailingMessageIsRetriedThenDeadLettered(t *testing.T) {
	cfg := testConfig(t)
	b := openBus(t, cfg)
	ctx := context.Background()
	var attempts atomic.Int32
	dead := make(chan string, 1)
	_, err := b.Consume(ctx, ConsumerConfig{
		Stream: EventsStream, Durable: "failing", FilterSubject: EventsSubjectPrefix + ">",
		OnDeadLetter: func(_ *Delivery, reason string) { dead <- reason },
	}, func(context.Context, *Delivery) error {
		attempts.Add(1)
		return errors.New("slack is down")
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Publish(ctx, []event.Event{testEvent("y", event.StatusFiring)}); err != nil {
		t.Fatal(err)
	}
	select {
	case reason := <-dead:
		if want := "failed 3 deliveries, last error: slack is down"; reason != want {
			t.Fatalf("reason %q, want %q", reason, want)
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("not dead-lettered after %d attempts", attempts.Load())
	}
	if n := attempts.Load(); n != int32(cfg.MaxDeliver) {
		t.Fatalf("handler ran %d times, want MaxDeliver=%d", n, cfg.MaxDeliver)
	}
	msg := lastDeadLetter(t, b)
	if got := msg.Header.Get(HeaderDeadReason); got != "failed 3 deliveries, last error: slack is down" {
		t.Errorf("reason header %q", got)
	}
	if got := msg.Header.Get(HeaderOriginalSubject); got != "medic.events.prometheus_alert" {
		t.Errorf("original subject header %q", got)
	}
	if got := msg.Header.Get(HeaderDeadDeliveries); got != "3" {
		t.Errorf("deliveries header %q", got)
	}
	if len(msg.Data) == 0 {
		t.Error("dead letter lost the payload")
	}
}

func TestPermanentErrorIsDeadLetteredAtOnce(t *testing.T) {
	b := openBus(t, testConfig(t))
	ctx := context.Background()
	var attempts atomic.Int32
	dead := make(chan struct{}, 1)
	_, err := b.Consume(ctx, ConsumerConfig{
		Stream: EventsStream, Durable: "perm", FilterSubject: EventsSubjectPrefix + ">",
		OnDeadLetter: func(*Delivery, string) { dead <- struct{}{} },
	}, func(context.Context, *Delivery) error {
		attempts.Add(1)
		return Permanent(errors.New("undecodable"))
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Publish(ctx, []event.Event{testEvent("z", event.StatusFiring)}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-dead:
	case <-time.After(10 * time.Second):
		t.Fatal("not dead-lettered")
	}
	if n := attempts.Load(); n != 1 {
		t.Fatalf("permanent failure was tried %d times, want 1", n)
	}
	if got := lastDeadLetter(t, b).Header.Get(HeaderDeadReason); got != "undecodable" {
		t.Fatalf("reason %q", got)
	}
}

func TestPanickingHandlerIsRetriedNotFatal(t *testing.T) {
	b := openBus(t, testConfig(t))
	ctx := context.Background()
	var attempts atomic.Int32
	done := make(chan struct{})
	_, err := b.Consume(ctx, ConsumerConfig{Stream: EventsStream, Durable: "panics", FilterSubject: EventsSubjectPrefix + ">"},
		func(context.Context, *Delivery) error {
			if attempts.Add(1) == 1 {
				panic("boom")
			}
			close(done)
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Publish(ctx, []event.Event{testEvent("p", event.StatusFiring)}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("message not redelivered after the panic")
	}
}

// TestLongHandlerIsNotRedelivered: a handler that works for longer than
// AckWait keeps its message (InProgress beats) instead of JetStream handing
// it out a second time.
func TestLongHandlerIsNotRedelivered(t *testing.T) {
	cfg := testConfig(t)
	cfg.AckWait = time.Second
	b := openBus(t, cfg)
	ctx := context.Background()
	var calls atomic.Int32
	done := make(chan struct{})
	_, err := b.Consume(ctx, ConsumerConfig{Stream: EventsStream, Durable: "slow", FilterSubject: EventsSubjectPrefix + ">", Workers: 2},
		func(context.Context, *Delivery) error {
			if calls.Add(1) == 1 {
				time.Sleep(3 * cfg.AckWait)
				close(done)
			}
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Publish(ctx, []event.Event{testEvent("slow", event.StatusFiring)}); err != nil {
		t.Fatal(err)
	}
	<-done
	testkit.Eventually(t, 20*time.Second, "the slow consumer to settle", func() bool {
		ci, err := b.js.Consumer(ctx, EventsStream, "slow")
		return err == nil && ci.CachedInfo().NumAckPending == 0
	})
	if n := calls.Load(); n != 1 {
		t.Fatalf("handler ran %d times; the message was redelivered while it was being worked on", n)
	}
}

// TestExternalNATSRestart runs a standalone server on loopback, stops it
// under medic and starts it again on the same store: publishes fail while it
// is down (the webhook answers 503), and work resumes when it is back.
func TestExternalNATSRestart(t *testing.T) {
	ns := natstest.Start(t, nil)
	cfg := testConfig(t)
	cfg.URL = ns.URL()
	cfg.PublishTimeout = 500 * time.Millisecond
	b := openBus(t, cfg)
	ctx := context.Background()

	var mu sync.Mutex
	seen := map[string]bool{}
	_, err := b.Consume(ctx, ConsumerConfig{Stream: EventsStream, Durable: "restart", FilterSubject: EventsSubjectPrefix + ">"},
		func(_ context.Context, d *Delivery) error {
			mu.Lock()
			seen[string(d.Data)] = true
			mu.Unlock()
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Publish(ctx, []event.Event{testEvent("before", event.StatusFiring)}); err != nil {
		t.Fatal(err)
	}

	ns.Stop()
	testkit.Eventually(t, 20*time.Second, "the bus unhealthy", func() bool { return b.Healthy() != nil })
	if _, err := b.Publish(ctx, []event.Event{testEvent("during", event.StatusFiring)}); err == nil {
		t.Fatal("publish succeeded while NATS was down")
	}

	ns.Start()
	testkit.Eventually(t, 20*time.Second, "the bus healthy", func() bool { return b.Healthy() == nil })
	// JetStream needs a moment after reconnect to recover its streams; the
	// webhook's caller (Alertmanager) retries, and so do we.
	testkit.Eventually(t, 20*time.Second, "a publish to succeed again", func() bool {
		_, err := b.Publish(ctx, []event.Event{testEvent("after", event.StatusFiring)})
		return err == nil
	})
	testkit.Eventually(t, 20*time.Second, "both events seen", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen) == 2
	})
}

func lastDeadLetter(t *testing.T, b *Bus) *jetstream.RawStreamMsg {
	t.Helper()
	var msg *jetstream.RawStreamMsg
	testkit.Eventually(t, 20*time.Second, "the dead-letter stream", func() bool {
		s, err := b.js.Stream(context.Background(), DeadLetterStream)
		if err != nil {
			return false
		}
		msg, err = s.GetLastMsgForSubject(context.Background(), DeadLetterSubjectPrefix+">")
		return err == nil
	})
	return msg
}

// A consumer holds a few messages per worker, and at least 256: enough to
// keep the engine's many workers busy without taking a burst away from
// other replicas (docs/scaling.md).
func TestConsumerMaxAckPendingFollowsWorkers(t *testing.T) {
	b := openBus(t, testConfig(t))
	ctx := context.Background()
	tests := []struct {
		workers, set, want int
	}{
		{workers: 1, want: 256},
		{workers: 32, want: 256},
		{workers: 64, want: 512},
		{workers: 4, set: 100, want: 100},
		{workers: 8, set: 4, want: 256}, // fewer than the workers: the default
	}
	for i, tc := range tests {
		durable := fmt.Sprintf("map%d", i)
		c, err := b.Consume(ctx, ConsumerConfig{Stream: EventsStream, Durable: durable, FilterSubject: EventsSubjectPrefix + ">",
			Workers: tc.workers, MaxAckPending: tc.set}, func(context.Context, *Delivery) error { return nil })
		if err != nil {
			t.Fatal(err)
		}
		ci, err := b.js.Consumer(ctx, EventsStream, durable)
		if err != nil {
			t.Fatal(err)
		}
		if got := ci.CachedInfo().Config.MaxAckPending; got != tc.want {
			t.Errorf("workers %d, MaxAckPending %d: consumer's MaxAckPending %d, want %d", tc.workers, tc.set, got, tc.want)
		}
		c.Stop()
	}
}

// The findings stream has its own duplicate window, applied to a stream an
// older medic made with the events' window when medic opens it again.
func TestFindingsStreamKeepsItsOwnDuplicateWindow(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.FindingsDedupWindow = 0 // as an older medic: the events' window
	duplicates := func(b *Bus, stream string) time.Duration {
		t.Helper()
		s, err := b.js.Stream(context.Background(), stream)
		if err != nil {
			t.Fatal(err)
		}
		return s.CachedInfo().Config.Duplicates
	}
	b := openBus(t, cfg)
	if got := duplicates(b, FindingsStream); got != cfg.DedupWindow {
		t.Errorf("findings window %s with findings_dedup_window 0, want dedup_window %s", got, cfg.DedupWindow)
	}
	b.Close()
	cfg.FindingsDedupWindow = 10 * time.Second
	b = openBus(t, cfg)
	if got := duplicates(b, FindingsStream); got != 10*time.Second {
		t.Errorf("findings window %s after reopening, want 10s", got)
	}
	if got := duplicates(b, EventsStream); got != cfg.DedupWindow {
		t.Errorf("events window %s, want %s", got, cfg.DedupWindow)
	}
}
