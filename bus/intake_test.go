package bus

import (
	"context"
	"testing"
	"time"

	"github.com/medichq/medic/event"
)

// consumeInto starts a consumer on the findings stream (fed by
// PublishFinding, which does not hold the gate) that yields to intake.
func consumeInto(t *testing.T, b *Bus, yield time.Duration) <-chan time.Time {
	t.Helper()
	got := make(chan time.Time, 10)
	_, err := b.Consume(context.Background(), ConsumerConfig{
		Stream: FindingsStream, Durable: "yielding", FilterSubject: FindingSubject("file"), YieldToIntake: yield,
	}, func(context.Context, *Delivery) error {
		got <- time.Now()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func publishFinding(t *testing.T, b *Bus, id string) {
	t.Helper()
	f := &event.Finding{ID: id, Event: testEvent(id, event.StatusFiring)}
	if err := b.PublishFinding(context.Background(), "file", f); err != nil {
		t.Fatal(err)
	}
}

// While intake is in flight a yielding consumer holds its message, and takes
// it as soon as the intake is over.
func TestConsumerWaitsForIntakeInFlight(t *testing.T) {
	b := openBus(t, testConfig(t))
	got := consumeInto(t, b, time.Minute)

	b.gate.enter() // a webhook's alerts being stored
	publishFinding(t, b, "f1")
	select {
	case <-got:
		t.Fatal("handled a message while intake was in flight")
	case <-time.After(300 * time.Millisecond):
	}
	left := time.Now()
	b.gate.leave()
	select {
	case at := <-got:
		if at.Before(left) {
			t.Fatal("handled before the intake was over")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("message not handled after the intake was over")
	}
	// The worker began waiting when the message reached it, a moment after
	// the window above opened; half the window is a bound that cannot flake.
	if b.IntakeYield() < 150*time.Millisecond {
		t.Errorf("IntakeYield = %s, want most of the 300ms the message waited", b.IntakeYield())
	}
}

// Intake that never pauses cannot stop the pipeline: each message waits the
// configured yield at most.
func TestConsumerYieldIsBounded(t *testing.T) {
	b := openBus(t, testConfig(t))
	got := consumeInto(t, b, 50*time.Millisecond)
	b.gate.enter()
	defer b.gate.leave()
	for i := range 3 {
		publishFinding(t, b, "f"+string(rune('a'+i)))
	}
	for i := range 3 {
		select {
		case <-got:
		case <-time.After(10 * time.Second):
			t.Fatalf("message %d not handled while intake stayed in flight", i)
		}
	}
}

// Without YieldToIntake a consumer ignores intake, and Publish itself opens
// and closes the gate.
func TestConsumerWithoutYieldIgnoresIntake(t *testing.T) {
	b := openBus(t, testConfig(t))
	got := consumeInto(t, b, 0)
	b.gate.enter()
	defer b.gate.leave()
	publishFinding(t, b, "f1")
	select {
	case <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("a consumer without YieldToIntake waited for intake")
	}
	if _, err := b.Publish(context.Background(), []event.Event{testEvent("e", event.StatusFiring)}); err != nil {
		t.Fatal(err)
	}
	b.gate.mu.Lock()
	inFlight := b.gate.inFlight
	b.gate.mu.Unlock()
	if inFlight != 1 { // ours, still held by the deferred leave
		t.Fatalf("gate holds %d publishes after Publish returned, want 1", inFlight)
	}
}
