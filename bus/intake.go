package bus

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// intakeGate lets the pipeline give way to trigger intake. A webhook's
// sender waits for its alerts to be stored (Publish), and in a storm
// Alertmanager retries what it did not get an answer for, adding to the
// load; the playbooks and sinks lose nothing by running a few milliseconds
// later, since their work is already safe in JetStream. On a 2-core machine
// the pipeline running alongside a full-speed intake took a fifth of it.
//
// Consumers with ConsumerConfig.YieldToIntake wait, before each message,
// until no publish from a trigger is in flight, or for YieldToIntake at most.
// The cap keeps the pipeline moving through a storm that never pauses: with
// W workers it still handles at least W/YieldToIntake messages a second
// (400/s for the default 4 workers and 10ms, more than Slack accepts).
type intakeGate struct {
	mu       sync.Mutex
	inFlight int
	quiet    chan struct{} // closed while inFlight is 0
	yielded  atomic.Int64  // nanoseconds consumers spent waiting
}

func newIntakeGate() *intakeGate {
	q := make(chan struct{})
	close(q)
	return &intakeGate{quiet: q}
}

func (g *intakeGate) enter() {
	g.mu.Lock()
	if g.inFlight == 0 {
		g.quiet = make(chan struct{})
	}
	g.inFlight++
	g.mu.Unlock()
}

func (g *intakeGate) leave() {
	g.mu.Lock()
	g.inFlight--
	if g.inFlight == 0 {
		close(g.quiet)
	}
	g.mu.Unlock()
}

// wait returns once no intake is in flight, after limit, or when ctx ends.
func (g *intakeGate) wait(ctx context.Context, limit time.Duration) {
	g.mu.Lock()
	quiet := g.quiet
	g.mu.Unlock()
	select {
	case <-quiet:
		return
	default:
	}
	start := time.Now()
	t := time.NewTimer(limit)
	select {
	case <-quiet:
	case <-t.C:
	case <-ctx.Done():
	}
	t.Stop()
	g.yielded.Add(int64(time.Since(start)))
}

// IntakeYield is how long, in total, consumers have waited for trigger
// intake in flight (ConsumerConfig.YieldToIntake).
func (b *Bus) IntakeYield() time.Duration { return time.Duration(b.gate.yielded.Load()) }
