package memtrim

import (
	"context"
	"runtime/metrics"
	"time"
)

// allocsMetric is the Go heap's cumulative allocations, in bytes.
const allocsMetric = "/gc/heap/allocs:bytes"

// IdlePolicy says when WhenIdle releases.
type IdlePolicy struct {
	// Every is how often the allocation counter is read.
	Every time.Duration
	// Quiet is the allocations per period under which the process is
	// quiet, and QuietFor how long it must stay so.
	Quiet    uint64
	QuietFor time.Duration
	// Burst is the allocations since the last release after which a quiet
	// QuietFor releases.
	Burst uint64
	// Rest is how long a process that woke from idle paging (Awake) must
	// stay quiet to release without a burst; 0: never. A pod that gets an
	// event now and then would otherwise keep what its first event read
	// back until the next burst.
	Rest time.Duration
	// Awake reports whether work ended idle paging since the last release
	// (memtrim.Awake).
	Awake func() bool
}

// WhenIdle calls release each time the process goes quiet after a burst:
// once at least p.Burst bytes were allocated since the last release and
// then less than p.Quiet bytes in each period for p.QuietFor (JetStream
// drops a block's cache 10 s after its last use, into a pool that two
// collections empty: release after that, or the caches are still held); and
// once it has been quiet for p.Rest after work woke it from idle paging. A
// burst of alerts leaves garbage the collector has not reached yet, free
// heap pages the runtime keeps for a while, JetStream block caches that
// only a collection drops, and pages of the binary the busy code paths
// touched; with nothing else to do, medic would hold all of it until the
// runtime's two-minute forced collection and the scavenger's slow return.
// It returns when ctx ends.
//
// It reads one runtime metric per period (no allocation, no stop of the
// world), so a short period costs nothing measurable.
func WhenIdle(ctx context.Context, p IdlePolicy, release func()) {
	sample := []metrics.Sample{{Name: allocsMetric}}
	read := func() uint64 {
		metrics.Read(sample)
		if sample[0].Value.Kind() != metrics.KindUint64 {
			return 0
		}
		return sample[0].Value.Uint64()
	}
	t := time.NewTicker(p.Every)
	defer t.Stop()
	since := read() // allocations at the last release
	prev := since
	var quietSince time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := read()
		switch {
		case now-prev >= p.Quiet:
			quietSince = time.Time{}
		case quietSince.IsZero():
			quietSince = time.Now()
		}
		if !quietSince.IsZero() {
			quiet := time.Since(quietSince)
			afterBurst := now-since >= p.Burst && quiet >= p.QuietFor
			rested := p.Rest > 0 && p.Awake != nil && quiet >= p.Rest && p.Awake()
			if afterBurst || rested {
				release()
				now = read()
				since, quietSince = now, time.Time{}
			}
		}
		prev = now
	}
}
