package memtrim

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// poolCollections is how many collections it takes to free memory that is
// handed back in stages. nats-server's file store keeps a block's buffer
// behind a weak pointer: the collection that finds the block cache
// unreachable runs a cleanup afterwards, which puts the buffer into a
// sync.Pool, and a pool keeps what it holds until the second collection
// after that. With one collection (debug.FreeOSMemory alone) the 8 MiB
// buffers of a burst's block caches stayed in the pools
// (TestFreeHeapEmptiesPoolsFilledByCleanups; docs/benchmarks.md, session 6).
const poolCollections = 3

// cleanupWait bounds how long freeHeap waits, after each collection, for
// the cleanups it queued. They usually take microseconds; the bound is for
// a process whose cleanup queue never empties (a slow cleanup elsewhere).
const cleanupWait = 100 * time.Millisecond

// freeHeap collects poolCollections times, letting the cleanups each
// collection queued run before the next, then returns the free pages to the
// operating system (one more collection). It costs a few collections, so
// it is for the moments Release is for: after start-up, after a burst.
func freeHeap() {
	for range poolCollections {
		runtime.GC()
		awaitCleanups(cleanupWait)
	}
	debug.FreeOSMemory()
}

// awaitCleanups waits until the runtime has run the cleanups queued so far,
// or for d. Cleanups run on their own goroutine after the collection that
// queued them; yielding once (what freeHeap did before) was not always
// enough under load, and a buffer whose cleanup ran after the next
// collection stayed in its pool.
func awaitCleanups(d time.Duration) {
	s := []metrics.Sample{{Name: "/gc/cleanups/queued:cleanups"}, {Name: "/gc/cleanups/executed:cleanups"}}
	deadline := time.Now().Add(d)
	for {
		metrics.Read(s)
		if s[0].Value.Kind() != metrics.KindUint64 || s[1].Value.Kind() != metrics.KindUint64 {
			runtime.Gosched() // a runtime without the counts: yield once, as before
			return
		}
		if s[1].Value.Uint64() >= s[0].Value.Uint64() || time.Now().After(deadline) {
			return
		}
		time.Sleep(50 * time.Microsecond)
	}
}
