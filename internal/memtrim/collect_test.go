package memtrim

import (
	"runtime"
	"runtime/metrics"
	"sync"
	"testing"
	"weak"
)

// TestFreeHeapEmptiesPoolsFilledByCleanups builds what a storm leaves in
// nats-server's file store (block caches behind weak pointers whose
// cleanups put their buffers into a sync.Pool) and checks freeHeap frees
// those buffers; a single collection moves them into the pool instead.
// Not parallel: it measures the process's heap.
func TestFreeHeapEmptiesPoolsFilledByCleanups(t *testing.T) {
	const blocks, size = 32, 2 << 20
	// The baseline is taken before the buffers exist: allocating 64 MiB
	// starts collections of its own, which may free (and pool) some buffers
	// before freeHeap runs, so "freed by freeHeap" would undercount. What
	// matters is what is left afterwards.
	runtime.GC()
	baseline := heapObjectBytes()
	var pool sync.Pool
	type cache struct{ buf []byte }
	caches := make([]weak.Pointer[cache], blocks)
	for i := range caches {
		c := &cache{buf: make([]byte, size)}
		c.buf[0] = 1 // touched, as a written block is
		runtime.AddCleanup(c, func(buf []byte) { pool.Put(&buf) }, c.buf)
		caches[i] = weak.Make(c)
	}
	freeHeap()
	after := heapObjectBytes()
	for i, c := range caches {
		if c.Value() != nil {
			t.Fatalf("cache %d still reachable", i)
		}
	}
	left := int64(after) - int64(baseline)
	t.Logf("heap objects %d MiB before the buffers, %d MiB after freeHeap", baseline>>20, after>>20)
	if limit := int64(blocks * size / 4); left > limit {
		t.Fatalf("%d MiB of the %d MiB of pooled buffers are still on the heap, want at most %d MiB", left>>20, blocks*size>>20, limit>>20)
	}
	runtime.KeepAlive(&pool)
}

func heapObjectBytes() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}
