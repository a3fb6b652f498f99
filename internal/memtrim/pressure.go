package memtrim

import (
	"context"
	"math"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// WatchPressure calls set(true) when the memory the Go runtime counts
// against its limit (GOMEMLIMIT, or what medic derived from the
// container's) reaches high of that limit, and set(false) once it is back
// under low, checking every period, until ctx ends. Without a limit it
// never calls set. set is meant to be Pressure, with a log line.
//
// The Go limit is the proxy for the container's: it is set 64 MiB under it
// (GoLimit), and the runtime sits at it only in a burst that fills the
// container.
func WatchPressure(ctx context.Context, every time.Duration, high, low float64, set func(on bool)) {
	sample := []metrics.Sample{{Name: totalMetric}, {Name: releasedMetric}}
	t := time.NewTicker(every)
	defer t.Stop()
	on := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		limit := debug.SetMemoryLimit(-1) // -1 reads it
		metrics.Read(sample)
		if sample[0].Value.Kind() != metrics.KindUint64 || sample[1].Value.Kind() != metrics.KindUint64 {
			return
		}
		used := sample[0].Value.Uint64() - sample[1].Value.Uint64()
		if now := pressed(used, limit, high, low, on); now != on {
			on = now
			set(on)
		}
	}
}

// What the runtime compares with its memory limit: every byte it mapped
// less the heap it gave back.
const (
	totalMetric    = "/memory/classes/total:bytes"
	releasedMetric = "/memory/classes/heap/released:bytes"
)

// pressed says whether memory is under pressure: at or over high of limit,
// or still over low of it when it already was (so a heap that hovers at
// the threshold does not flip the advice every period). No limit, none.
func pressed(used uint64, limit int64, high, low float64, was bool) bool {
	if limit <= 0 || limit == math.MaxInt64 {
		return false
	}
	share := float64(used) / float64(limit)
	if was {
		return share > low
	}
	return share >= high
}
