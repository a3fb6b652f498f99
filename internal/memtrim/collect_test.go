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
	var pool sync.Pool
	type cache struct{ buf []byte }
	caches := make([]weak.Pointer[cache], blocks)
	for i := range caches {
		c := &cache{buf: make([]byte, size)}
		c.buf[0] = 1 // touched, as a written block is
		runtime.AddCleanup(c, func(buf []byte) { pool.Put(&buf) }, c.buf)
		caches[i] = weak.Make(c)
	}
	before := heapObjectBytes()
	freeHeap()
	after := heapObjectBytes()
	for i, c := range caches {
		if c.Value() != nil {
			t.Fatalf("cache %d still reachable", i)
		}
	}
	freed := int64(before) - int64(after)
	t.Logf("heap objects %d → %d MiB", before>>20, after>>20)
	if want := int64(blocks * size * 3 / 4); freed < want {
		t.Fatalf("freed %d MiB of the %d MiB of pooled buffers, want at least %d MiB", freed>>20, blocks*size>>20, want>>20)
	}
	runtime.KeepAlive(&pool)
}

func heapObjectBytes() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}
