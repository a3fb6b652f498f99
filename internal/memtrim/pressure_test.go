package memtrim

import (
	"context"
	"math"
	"runtime/debug"
	"sync"
	"testing"
	"time"
)

func TestPressed(t *testing.T) {
	t.Parallel()
	const limit = 200
	for _, tc := range []struct {
		name      string
		used      uint64
		limit     int64
		was, want bool
	}{
		{"well under", 100, limit, false, false},
		{"just under high", 179, limit, false, false},
		{"at high", 180, limit, false, true},
		{"over the limit", 230, limit, false, true},
		{"still over low", 151, limit, true, true},
		{"back at low", 150, limit, true, false},
		{"no limit", 1 << 40, math.MaxInt64, false, false},
		{"no limit, was pressed", 1 << 40, math.MaxInt64, true, false},
		{"zero limit", 10, 0, false, false},
	} {
		if got := pressed(tc.used, tc.limit, 0.9, 0.75, tc.was); got != tc.want {
			t.Errorf("%s: pressed(%d of %d, was %v) = %v, want %v", tc.name, tc.used, tc.limit, tc.was, got, tc.want)
		}
	}
}

// With a Go memory limit this process is already over, the watcher
// reports pressure; once the limit is lifted, that it is over.
func TestWatchPressureFollowsTheGoLimit(t *testing.T) {
	// Not parallel: it changes the process's memory limit.
	old := debug.SetMemoryLimit(1 << 20) // far under what any test binary uses
	defer debug.SetMemoryLimit(old)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var (
		mu   sync.Mutex
		seen []bool
	)
	changed := make(chan struct{}, 4)
	go WatchPressure(ctx, 5*time.Millisecond, 0.9, 0.75, func(on bool) {
		mu.Lock()
		seen = append(seen, on)
		mu.Unlock()
		changed <- struct{}{}
	})
	wait := func(what string) {
		t.Helper()
		select {
		case <-changed:
		case <-time.After(10 * time.Second):
			t.Fatalf("no call within 10s: %s", what)
		}
	}
	wait("pressure over a 1 MiB limit")
	debug.SetMemoryLimit(math.MaxInt64)
	wait("pressure over once the limit is lifted")
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 2 || !seen[0] || seen[1] {
		t.Fatalf("calls %v, want [true false]", seen)
	}
}
