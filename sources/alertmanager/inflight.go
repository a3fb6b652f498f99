package alertmanager

import (
	"context"
	"time"
)

// InFlight bounds how many intake requests are worked on at once. Each one
// holds its body (up to the body limit) and its batch of events in memory
// until JetStream stored them, so without a bound a flood of concurrent
// webhooks is a flood of memory. A request takes its slot once its body is
// read, so a sender that trickles its body holds none (the memory of bodies
// being read is DecodeBudget's to bound). A request that finds no free slot
// within the wait is answered 503 with Retry-After, which Alertmanager
// retries.
// The intake endpoints of one medic share one InFlight, so the bound is on
// their sum. A nil *InFlight bounds nothing.
type InFlight struct {
	slots chan struct{}
	wait  time.Duration
}

// DefaultInFlightWait is how long a request waits for a slot.
const DefaultInFlightWait = time.Second

// NewInFlight allows max requests at once, each waiting up to wait for a
// slot; max 0 means no bound (nil).
func NewInFlight(max int, wait time.Duration) *InFlight {
	if max <= 0 {
		return nil
	}
	return &InFlight{slots: make(chan struct{}, max), wait: wait}
}

// acquire takes a slot, waiting up to the wait or until ctx ends.
func (l *InFlight) acquire(ctx context.Context) bool {
	if l == nil {
		return true
	}
	select {
	case l.slots <- struct{}{}:
		return true
	default:
	}
	t := time.NewTimer(l.wait)
	defer t.Stop()
	select {
	case l.slots <- struct{}{}:
		return true
	case <-t.C:
	case <-ctx.Done():
	}
	return false
}

func (l *InFlight) release() {
	if l != nil {
		<-l.slots
	}
}
