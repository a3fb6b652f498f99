package bus

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/internal/testkit"
)

// crash ends b the way kill -9 ends medic: the connection and the embedded
// server go away under running handlers, nothing is acknowledged, and no
// consumer stops cleanly.
func crash(b *Bus) {
	b.stopHealer()
	b.nc.Close()
	b.shutdownServer()
}

// A message that kills medic each time it is handled is parked after
// bus.max_deliver such deaths, although every start resets the consumer
// (and with it JetStream's delivery count); the messages behind it are
// handled meanwhile.
func TestCrashLoopingMessageIsParked(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.AckWait = 30 * time.Second // only the restarts redeliver
	ctx := context.Background()
	poison := testEvent("poison", event.StatusFiring)
	var poisonRuns, healthy atomic.Int32
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	consume := func(b *Bus, entered chan<- struct{}, dead chan<- string) {
		t.Helper()
		if _, err := b.Consume(ctx, ConsumerConfig{
			Stream: EventsStream, Durable: "engine", FilterSubject: EventsSubjectPrefix + ">", Workers: 2,
			OnDeadLetter: func(_ *Delivery, reason string) { dead <- reason },
		}, func(hctx context.Context, d *Delivery) error {
			var ev event.Event
			if err := event.UnmarshalEvent(d.Data, &ev); err != nil {
				return err
			}
			if ev.ID != poison.ID {
				healthy.Add(1)
				return nil
			}
			poisonRuns.Add(1)
			entered <- struct{}{}
			select { // the process dies before this returns
			case <-release:
			case <-hctx.Done(): // a clean stop, when the test fails
			}
			return errors.New("killed")
		}); err != nil {
			t.Fatal(err)
		}
	}

	for life := 1; life <= cfg.MaxDeliver; life++ {
		b, err := Open(ctx, cfg, discard())
		if err != nil {
			t.Fatal(err)
		}
		if life == 1 {
			if _, err := b.Publish(ctx, []event.Event{poison, testEvent("healthy-1", event.StatusFiring)}); err != nil {
				t.Fatal(err)
			}
		}
		entered := make(chan struct{}, 1)
		consume(b, entered, make(chan string, 1))
		select {
		case <-entered:
		case <-time.After(15 * time.Second):
			t.Fatalf("life %d: the message was not handled", life)
		}
		crash(b)
	}

	b := openBus(t, cfg)
	if _, err := b.Publish(ctx, []event.Event{testEvent("healthy-2", event.StatusFiring)}); err != nil {
		t.Fatal(err)
	}
	entered, dead := make(chan struct{}, 1), make(chan string, 1)
	consume(b, entered, dead)
	select {
	case reason := <-dead:
		if !strings.Contains(reason, "without a clean shutdown 3 times in a row") {
			t.Errorf("dead-letter reason %q", reason)
		}
	case <-entered:
		t.Fatalf("the message that killed medic %d times was handled again", cfg.MaxDeliver)
	case <-time.After(15 * time.Second):
		t.Fatal("the message of the crash loop was not parked")
	}
	if n := poisonRuns.Load(); n != int32(cfg.MaxDeliver) {
		t.Errorf("the poison message ran %d times, want max_deliver=%d", n, cfg.MaxDeliver)
	}
	msg := lastDeadLetter(t, b)
	var ev event.Event
	if err := event.UnmarshalEvent(msg.Data, &ev); err != nil || ev.ID != poison.ID {
		t.Fatalf("dead letter holds %q (err %v), want the poison event", msg.Data, err)
	}
	testkit.Eventually(t, 15*time.Second, "the healthy events handled and nothing left pending", func() bool {
		ci, err := b.js.Consumer(ctx, EventsStream, "engine")
		return err == nil && healthy.Load() >= 2 && ci.CachedInfo().NumAckPending == 0 && ci.CachedInfo().NumPending == 0
	})
}

// The count that catches a crash loop, one start at a time: only starts at
// the same ack floor with deliveries pending add up, and a clean stop
// forgets them.
func TestUncleanRestartCount(t *testing.T) {
	t.Parallel()
	b := &Bus{cfg: testConfig(t), logger: discard()}
	steps := []struct {
		name    string
		floor   uint64
		pending bool
		clean   bool // Consumer.Stop ran before this start
		want    int
	}{
		{name: "first start with work left over", floor: 10, pending: true, want: 1},
		{name: "died again at the same floor", floor: 10, pending: true, want: 2},
		{name: "the floor moved: another message", floor: 11, pending: true, want: 1},
		{name: "same floor again", floor: 11, pending: true, want: 2},
		{name: "after a clean stop", floor: 11, pending: true, clean: true, want: 1},
		{name: "nothing pending", floor: 11, pending: false, want: 0},
		{name: "pending again at that floor starts over", floor: 11, pending: true, want: 1},
	}
	for _, s := range steps {
		if s.clean {
			b.clearUncleanRestarts("engine")
		}
		got, err := b.countUncleanRestart("engine", s.floor, s.pending)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if got != s.want {
			t.Errorf("%s: %d restarts, want %d", s.name, got, s.want)
		}
	}
	// Each consumer counts on its own.
	if got, _ := b.countUncleanRestart("sink-slack", 11, true); got != 1 {
		t.Errorf("another consumer's count = %d, want 1", got)
	}
}
