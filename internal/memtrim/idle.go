package memtrim

import (
	"context"
	"runtime/metrics"
	"time"
)

// allocsMetric is the Go heap's cumulative allocations, in bytes.
const allocsMetric = "/gc/heap/allocs:bytes"

// WhenIdle calls release each time the process goes quiet after a burst:
// once at least burst bytes were allocated since the last release and then
// less than quiet bytes in each period of every for quietFor (JetStream
// drops a block's cache 10 s after its last use, into a pool that two
// collections empty: release after that, or the caches are still held). A burst of alerts leaves
// garbage the collector has not reached yet, free heap pages the runtime
// keeps for a while, JetStream block caches that only a collection drops,
// and pages of the binary the busy code paths touched; with nothing else
// to do, medic would hold all of it until the runtime's two-minute forced
// collection and the scavenger's slow return. It returns when ctx ends.
//
// It reads one runtime metric per period (no allocation, no stop of the
// world), so a short period costs nothing measurable.
func WhenIdle(ctx context.Context, every, quietFor time.Duration, burst, quiet uint64, release func()) {
	sample := []metrics.Sample{{Name: allocsMetric}}
	read := func() uint64 {
		metrics.Read(sample)
		if sample[0].Value.Kind() != metrics.KindUint64 {
			return 0
		}
		return sample[0].Value.Uint64()
	}
	t := time.NewTicker(every)
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
		case now-prev >= quiet:
			quietSince = time.Time{}
		case quietSince.IsZero():
			quietSince = time.Now()
		}
		if now-since >= burst && !quietSince.IsZero() && time.Since(quietSince) >= quietFor {
			release()
			now = read()
			since, quietSince = now, time.Time{}
		}
		prev = now
	}
}
