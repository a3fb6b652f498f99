package bus

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/internal/natstest"
	"github.com/medichq/medic/internal/testkit"
)

// collector counts what a consumer handled, by event ID.
type collector struct {
	mu   sync.Mutex
	seen map[string]int
}

func (c *collector) handler(_ context.Context, d *Delivery) error {
	var ev event.Event
	if err := event.UnmarshalEvent(d.Data, &ev); err != nil {
		return Permanent(err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.seen == nil {
		c.seen = map[string]int{}
	}
	c.seen[ev.ID]++
	return nil
}

// ledger publishes test events and keeps the IDs the bus accepted, to be
// checked against what a collector handled.
type ledger struct {
	b        *Bus
	shape    func(*event.Event) // optional: changes each event before it is published
	accepted []string
}

func (l *ledger) publish(ctx context.Context, fingerprint string) error {
	ev := testEvent(fingerprint, event.StatusFiring)
	if l.shape != nil {
		l.shape(&ev)
	}
	_, err := l.b.Publish(ctx, []event.Event{ev})
	if err == nil {
		l.accepted = append(l.accepted, ev.ID)
	}
	return err
}

// deliveredOnce waits until c has handled as many events as were accepted
// and fails the test when one of them was lost or handled twice.
func (l *ledger) deliveredOnce(t *testing.T, c *collector) {
	t.Helper()
	testkit.Eventually(t, 20*time.Second, "every accepted event delivered", func() bool { return c.count() == len(l.accepted) })
	lost, dups := c.lostAndDuplicated(l.accepted)
	t.Logf("accepted %d, lost %d, duplicates %d", len(l.accepted), lost, dups)
	if lost != 0 || dups != 0 {
		t.Fatalf("lost %d, duplicated %d of %d accepted events", lost, dups, len(l.accepted))
	}
}

// lostAndDuplicated compares what was handled with what was accepted.
func (c *collector) lostAndDuplicated(accepted []string) (lost, dups int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, id := range accepted {
		switch n := c.seen[id]; {
		case n == 0:
			lost++
		case n > 1:
			dups += n - 1
		}
	}
	return lost, dups
}

func (c *collector) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.seen)
}

func gaugeValue(t *testing.T, b *Bus, name string) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(b.Collectors()...)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			sum += m.GetGauge().GetValue() + m.GetCounter().GetValue()
		}
	}
	return sum
}

// TestWipedServerIsHealed stops an external NATS, deletes its store and
// starts it again on the same port: medic puts its streams, its key-value
// buckets (its own and those opened through JetStream()) and its consumers
// back, and events published afterwards are handled.
func TestWipedServerIsHealed(t *testing.T) {
	t.Parallel()
	x := natstest.Start(t, nil)
	cfg := testConfig(t)
	cfg.URL = x.URL()
	cfg.PublishTimeout = 500 * time.Millisecond
	b := openBus(t, cfg)
	ctx := context.Background()

	var c collector
	if _, err := b.Consume(ctx, ConsumerConfig{Stream: EventsStream, Durable: "engine", FilterSubject: EventsSubjectPrefix + ">"}, c.handler); err != nil {
		t.Fatal(err)
	}
	deliveries, err := b.Deliveries(ctx)
	if err != nil {
		t.Fatal(err)
	}
	other, err := b.JetStream().CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "heal_other"})
	if err != nil {
		t.Fatal(err)
	}
	l := &ledger{b: b}
	publish := func(fp string) error { return l.publish(ctx, fp) }
	if err := publish("before"); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 20*time.Second, "one delivery", func() bool { return c.count() == 1 })

	x.Wipe()
	// Until the healer has put everything back, the bus says it is not ready
	// (or not connected); then it is ready again without a restart.
	testkit.Eventually(t, 20*time.Second, "the bus healthy and recreated", func() bool { return b.Healthy() == nil && gaugeValue(t, b, busRecreatedMetric) > 0 })
	for _, s := range []string{EventsStream, FindingsStream, DeadLetterStream, HealthStream} {
		if _, err := b.js.Stream(ctx, s); err != nil {
			t.Errorf("stream %s after the wipe: %v", s, err)
		}
	}
	if err := deliveries.Record(ctx, "sink.finding"); err != nil {
		t.Errorf("delivery record after the wipe: %v", err)
	}
	if _, err := other.Put(ctx, "k", []byte("v")); err != nil {
		t.Errorf("bucket opened through JetStream() after the wipe: %v", err)
	}
	for i := range 20 {
		if err := publish(fmt.Sprintf("after-%d", i)); err != nil {
			t.Fatalf("publish after the healer said ready: %v", err)
		}
	}
	l.deliveredOnce(t, &c)
	t.Logf("re-created %v", gaugeValue(t, b, busRecreatedMetric))
}

// TestDeletedConsumerIsRecreated deletes the engine's consumer under a
// running medic (an operator's mistake, a server that lost it): the pull
// notices, the healer re-creates it, and later events are handled.
func TestDeletedConsumerIsRecreated(t *testing.T) {
	t.Parallel()
	b := openBus(t, testConfig(t))
	ctx := context.Background()
	var c collector
	if _, err := b.Consume(ctx, ConsumerConfig{Stream: EventsStream, Durable: "engine", FilterSubject: EventsSubjectPrefix + ">"}, c.handler); err != nil {
		t.Fatal(err)
	}
	// Deleted while its pull waits, as it does when idle.
	testkit.Eventually(t, 20*time.Second, "the engine consumer", func() bool {
		cons, err := b.js.Consumer(ctx, EventsStream, "engine")
		if err != nil {
			return false
		}
		info, err := cons.Info(ctx)
		return err == nil && info.NumWaiting > 0
	})
	if err := b.js.DeleteConsumer(ctx, EventsStream, "engine"); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 20*time.Second, "the engine consumer to be back", func() bool {
		_, err := b.js.Consumer(ctx, EventsStream, "engine")
		return err == nil
	})
	ev := testEvent("after", event.StatusFiring)
	if _, err := b.Publish(ctx, []event.Event{ev}); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 20*time.Second, "one delivery", func() bool { return c.count() == 1 })
	if got := gaugeValue(t, b, busRecreatedMetric); got != 1 {
		t.Fatalf("medic_bus_recreated_total = %v, want 1 (the consumer)", got)
	}
}

// TestExhaustedStoreMakesBusUnreadyUntilSpaceIsFree fills the server's
// JetStream storage (max_file_store) with another stream: medic's publishes
// are refused as full, the bus is not ready and says why, and once the
// filler is deleted the healer's probe makes it ready again, without a
// publish, and nothing accepted is lost.
func TestExhaustedStoreMakesBusUnreadyUntilSpaceIsFree(t *testing.T) {
	t.Parallel()
	x := natstest.Start(t, func(o *server.Options) { o.JetStreamMaxStore = 2 << 20 })
	cfg := testConfig(t)
	cfg.URL = x.URL()
	cfg.MaxBytes = -1 // no reservations: the server's limit is what fills
	b := openBus(t, cfg)
	ctx := context.Background()
	var c collector
	if _, err := b.Consume(ctx, ConsumerConfig{Stream: EventsStream, Durable: "engine", FilterSubject: EventsSubjectPrefix + ">"}, c.handler); err != nil {
		t.Fatal(err)
	}
	l := &ledger{b: b}
	publish := func(fp string) error { return l.publish(ctx, fp) }
	if err := publish("before"); err != nil {
		t.Fatal(err)
	}
	if got := gaugeValue(t, b, busReadyMetric); got != 1 {
		t.Fatalf("medic_bus_ready = %v before the store filled, want 1", got)
	}

	free := x.Fill(ctx)
	err := publish("while-full")
	if !errors.Is(err, ErrStreamFull) {
		t.Fatalf("publish into an exhausted store: got %v, want ErrStreamFull (answered 503 with Retry-After)", err)
	}
	herr := b.Healthy()
	if herr == nil || !strings.Contains(herr.Error(), reasonNoResources) {
		t.Fatalf("Healthy with the store exhausted = %v, want the reason %q", herr, reasonNoResources)
	}
	if got := gaugeValue(t, b, busReadyMetric); got != 0 {
		t.Fatalf("medic_bus_ready = %v with the store exhausted, want 0", got)
	}
	if got := gaugeValue(t, b, storeErrorsMetric); got < 1 {
		t.Fatalf("medic_bus_store_errors_total = %v, want at least 1", got)
	}

	if err := free(ctx); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 20*time.Second, "the bus healthy", func() bool { return b.Healthy() == nil })
	// The sender retries what was answered 503.
	if err := publish("while-full"); err != nil {
		t.Fatalf("publish after space was freed: %v", err)
	}
	l.deliveredOnce(t, &c)
}

// TestFullStreamIsReadyAgainOnceConsumersCatchUp fills the events stream
// (bus.max_bytes) with work not yet done: not ready, with the reason; once
// the consumer has processed it, the probe reclaims it and the bus is ready
// again before anyone publishes.
func TestFullStreamIsReadyAgainOnceConsumersCatchUp(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.MaxBytes = 64 << 10
	b := openBus(t, cfg)
	ctx := context.Background()
	release := make(chan struct{})
	var c collector
	if _, err := b.Consume(ctx, ConsumerConfig{Stream: EventsStream, Durable: "engine", FilterSubject: EventsSubjectPrefix + ">"},
		func(ctx context.Context, d *Delivery) error {
			select {
			case <-release:
			case <-ctx.Done():
				return ctx.Err()
			}
			return c.handler(ctx, d)
		}); err != nil {
		t.Fatal(err)
	}
	stored, err := publishUntilFull(t, b, "a")
	if !errors.Is(err, ErrStreamFull) {
		t.Fatalf("got %v after %d events, want ErrStreamFull", err, stored)
	}
	if herr := b.Healthy(); herr == nil || !strings.Contains(herr.Error(), EventsStream) || !strings.Contains(herr.Error(), reasonFull) {
		t.Fatalf("Healthy with the events stream full = %v, want the stream and %q", herr, reasonFull)
	}
	close(release)
	testkit.Eventually(t, 20*time.Second, "the bus healthy", func() bool { return b.Healthy() == nil })
	testkit.Eventually(t, 20*time.Second, "every stored event delivered", func() bool { return c.count() == stored })
}

// TestEmbeddedOutOfDiskRecovers runs the embedded server on a small tmpfs
// and fills the disk under it: the store's write fails with ENOSPC and
// nats-server stops answering publishes. The bus says so (no_answer); once
// the disk has room again the healer restarts the embedded server on the
// same store, and everything accepted before and after is handled.
func TestEmbeddedOutOfDiskRecovers(t *testing.T) {
	dir := testkit.SmallDisk(t, "8m")
	cfg := testConfig(t)
	cfg.StoreDir = filepath.Join(dir, "jetstream")
	cfg.MaxBytes = -1
	cfg.PublishTimeout = time.Second
	b := openBus(t, cfg)
	ctx := context.Background()
	var c collector
	if _, err := b.Consume(ctx, ConsumerConfig{Stream: EventsStream, Durable: "engine", FilterSubject: EventsSubjectPrefix + ">"}, c.handler); err != nil {
		t.Fatal(err)
	}
	l := &ledger{b: b, shape: func(ev *event.Event) {
		ev.Description = strings.Repeat("x", 16<<10) // each write needs room
	}}
	publish := func(fp string) error { return l.publish(ctx, fp) }
	if err := publish("before"); err != nil {
		t.Fatal(err)
	}
	// Fill the disk, not JetStream's own limit.
	filler := filepath.Join(dir, "filler")
	testkit.FillDisk(t, filler, 0)
	var perr error
	for i := 0; i < 50 && perr == nil; i++ {
		perr = publish(fmt.Sprintf("full-%d", i))
	}
	if perr == nil {
		t.Fatal("every publish worked on a full disk")
	}
	herr := b.Healthy()
	if herr == nil || !strings.Contains(herr.Error(), reasonNoAnswer) {
		t.Fatalf("Healthy on a full disk = %v, want the reason %q", herr, reasonNoAnswer)
	}
	t.Logf("out of disk: publish %v; Healthy: %v", perr, herr)

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 20*time.Second, "the bus healthy", func() bool { return b.Healthy() == nil })
	for i := range 5 {
		if err := publish(fmt.Sprintf("after-%d", i)); err != nil {
			t.Fatalf("publish after space was freed: %v", err)
		}
	}
	l.deliveredOnce(t, &c)
}
