package memtrim

import (
	"sort"
	"testing"
)

// Release on this very test binary: its text and rodata were touched by
// the test framework's start-up, and must mostly leave the resident set,
// and the process must go on running the code whose pages it dropped.
func TestReleaseOnThisProcess(t *testing.T) {
	res, err := Release()
	if err != nil {
		t.Fatal(err)
	}
	if res.Mappings < 1 {
		t.Fatalf("released %d mappings of the test binary: %+v", res.Mappings, res)
	}
	if res.FileBefore == 0 || res.FileAfter >= res.FileBefore {
		t.Fatalf("file-backed RSS %d before, %d after: nothing was released", res.FileBefore, res.FileAfter)
	}
	// Code from all over the binary runs again after the release.
	xs := []int{3, 1, 2}
	sort.Ints(xs)
	if xs[0] != 1 || xs[2] != 3 {
		t.Fatalf("sort after release: %v", xs)
	}
	t.Logf("RSS %d → %d KiB, file-backed %d → %d KiB, %d mappings released",
		res.RSSBefore>>10, res.RSSAfter>>10, res.FileBefore>>10, res.FileAfter>>10, res.Mappings)
}
