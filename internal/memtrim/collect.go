package memtrim

import (
	"runtime"
	"runtime/debug"
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

// freeHeap collects poolCollections times, letting the cleanups the
// collections queued run in between, then returns the free pages to the
// operating system (one more collection). It costs a few collections, so
// it is for the moments Release is for: after start-up, after a burst.
func freeHeap() {
	for range poolCollections {
		runtime.GC()
		// Cleanups run on their own goroutine after the collection that
		// queued them; give it the processor before the next one.
		runtime.Gosched()
	}
	debug.FreeOSMemory()
}
