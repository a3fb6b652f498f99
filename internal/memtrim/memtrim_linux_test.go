package memtrim

import (
	"bytes"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
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

// evict drops a file's unmapped pages from the page cache: the step that
// keeps a freshly written binary's 2 MiB page-cache folios from coming back
// whole after Release. Counted with mincore(2) over a mapping made only to
// ask.
func TestEvictDropsTheFileFromThePageCache(t *testing.T) {
	path := filepath.Join(t.TempDir(), "binary")
	var fs unix.Statfs_t
	if err := unix.Statfs(filepath.Dir(path), &fs); err != nil {
		t.Fatal(err)
	}
	if fs.Type == unix.TMPFS_MAGIC {
		t.Skip("the test's temporary folder is on tmpfs, whose pages are the file and cannot be evicted; set TMPDIR to a disk folder to run this test")
	}
	const size = 8 << 20
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// Written back to disk first, as an executable is: the kernel evicts
	// clean pages only.
	if _, err := f.Write(bytes.Repeat([]byte("medic\n"), size/6)); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	pages := func() (cached, total int) {
		st, err := f.Stat()
		if err != nil {
			t.Fatal(err)
		}
		m, err := unix.Mmap(int(f.Fd()), 0, int(st.Size()), unix.PROT_READ, unix.MAP_SHARED)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Munmap(m)
		vec := make([]byte, (len(m)+os.Getpagesize()-1)/os.Getpagesize())
		if _, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
			t.Fatalf("mincore: %v", errno)
		}
		for _, v := range vec {
			cached += int(v & 1)
		}
		return cached, len(vec)
	}
	before, total := pages()
	if before < total/2 {
		t.Fatalf("only %d of %d pages cached right after writing the file: cannot tell an eviction", before, total)
	}
	if err := evict(path); err != nil {
		t.Fatal(err)
	}
	after, _ := pages()
	t.Logf("pages in the page cache: %d of %d before evict, %d after", before, total, after)
	if after > total/20 {
		t.Fatalf("%d of %d pages still cached after evict", after, total)
	}
	if err := evict(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Fatal("evict of a missing file: no error")
	}
}

// Release evicts the executable after dropping its mappings. What the
// process runs meanwhile stays (its folios are mapped again at once: the
// runtime, the test's own code), so the count only has to fall.
func TestReleaseEvictsTheExecutable(t *testing.T) {
	res, err := Release()
	if err != nil {
		t.Fatal(err)
	}
	if !res.Evicted {
		t.Fatalf("Release did not evict the executable: %+v", res)
	}
}
