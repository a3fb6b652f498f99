package memtrim

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// sink keeps allocations from being optimised away.
var sink []byte

// burst allocates 16 MiB.
func burst() {
	for range 64 {
		sink = make([]byte, 256<<10)
	}
}

// expectRelease waits up to wait for a release (want) or for none.
func expectRelease(t *testing.T, released <-chan struct{}, want bool, wait time.Duration, what string) {
	t.Helper()
	select {
	case <-released:
		if !want {
			t.Fatalf("released %s", what)
		}
	case <-time.After(wait):
		if want {
			t.Fatalf("no release %s", what)
		}
	}
}

// WhenIdle releases once after a burst has stopped, and not again until
// another burst.
func TestWhenIdleReleasesOnceAfterABurst(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	released := make(chan struct{}, 10)
	go WhenIdle(ctx, IdlePolicy{Every: 20 * time.Millisecond, QuietFor: 60 * time.Millisecond, Burst: 8 << 20, Quiet: 1 << 20},
		func() { released <- struct{}{} })

	expectRelease(t, released, false, 100*time.Millisecond, "before any burst")
	burst()
	expectRelease(t, released, true, 10*time.Second, "after the burst went quiet")
	expectRelease(t, released, false, 200*time.Millisecond, "twice for one burst")
}

// Without a burst, a process that work woke from idle paging releases
// after resting Rest, once; one that stayed asleep never does.
func TestWhenIdleReleasesAfterRestingAwake(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var awake atomic.Bool
	released := make(chan struct{}, 10)
	go WhenIdle(ctx, IdlePolicy{Every: 20 * time.Millisecond, QuietFor: 60 * time.Millisecond, Burst: 1 << 40, Quiet: 1 << 20,
		Rest: 150 * time.Millisecond, Awake: awake.Load},
		func() { awake.Store(false); released <- struct{}{} }) // as Release: idle paging on again

	expectRelease(t, released, false, 400*time.Millisecond, "while asleep")
	awake.Store(true) // an alert came in
	expectRelease(t, released, true, 10*time.Second, "after resting awake")
	expectRelease(t, released, false, 400*time.Millisecond, "again without another wake")
}
