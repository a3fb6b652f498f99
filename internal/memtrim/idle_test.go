package memtrim

import (
	"context"
	"testing"
	"time"
)

// sink keeps allocations from being optimised away.
var sink []byte

// WhenIdle releases once after a burst has stopped, and not again until
// another burst.
func TestWhenIdleReleasesOnceAfterABurst(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	released := make(chan struct{}, 10)
	go WhenIdle(ctx, 20*time.Millisecond, 60*time.Millisecond, 8<<20, 1<<20, func() { released <- struct{}{} })

	select {
	case <-released:
		t.Fatal("released before any burst")
	case <-time.After(100 * time.Millisecond):
	}
	for range 64 { // a burst: 16 MiB
		sink = make([]byte, 256<<10)
	}
	select {
	case <-released:
	case <-time.After(10 * time.Second):
		t.Fatal("no release after the burst went quiet")
	}
	select {
	case <-released:
		t.Fatal("released twice for one burst")
	case <-time.After(200 * time.Millisecond):
	}
}
