package memtrim

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
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
	f := diskFile(t, 8<<20)
	before, total := cachedPages(t, f)
	if before < total/2 {
		t.Fatalf("only %d of %d pages cached right after writing the file: cannot tell an eviction", before, total)
	}
	if err := evict(f.Name()); err != nil {
		t.Fatal(err)
	}
	after, _ := cachedPages(t, f)
	t.Logf("pages in the page cache: %d of %d before evict, %d after", before, total, after)
	if after > total/20 {
		t.Fatalf("%d of %d pages still cached after evict", after, total)
	}
	if err := evict(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Fatal("evict of a missing file: no error")
	}
}

// What idle paging relies on: after the eviction, a fault in a region
// advised MADV_RANDOM reads the page it needs and no more, where the
// default advice reads (and the process then maps) the pages around it.
func TestRandomAdviceReadsOnlyTheFaultingPage(t *testing.T) {
	const size = 8 << 20
	f := diskFile(t, size)
	m, err := unix.Mmap(int(f.Fd()), 0, size, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(m)
	half := size / 2
	random, normal := mapping{start: uint64(uintptr(unsafe.Pointer(&m[0])))}, mapping{start: uint64(uintptr(unsafe.Pointer(&m[half])))}
	random.end, normal.end = random.start+uint64(half), normal.start+uint64(half)
	if err := advise(random, unix.MADV_RANDOM); err != nil {
		t.Fatal(err)
	}
	if err := evict(f.Name()); err != nil {
		t.Fatal(err)
	}
	if n, _ := cachedPages(t, f); n > 0 {
		t.Fatalf("%d pages still cached after evict", n)
	}
	sum := m[half/2] // a fault in the middle of the random half
	afterRandom, _ := cachedPages(t, f)
	sum += m[half+half/2] // and one in the middle of the other
	afterNormal, _ := cachedPages(t, f)
	t.Logf("pages read by one fault: %d with MADV_RANDOM, %d with the default advice (byte sum %d)", afterRandom, afterNormal-afterRandom, sum)
	if afterRandom > 4 {
		t.Fatalf("one fault in a MADV_RANDOM region read %d pages into the page cache; want the one it needs", afterRandom)
	}
	if afterNormal-afterRandom <= afterRandom {
		t.Logf("this disk reads nothing around a fault (read_ahead_kb 0?): idle paging changes nothing here")
	}
}

// Release advises the executable's regions MADV_RANDOM (smaps shows the
// flag as "rr") and Wake takes the advice back, once, however often it is
// called.
func TestReleasePagesSinglyUntilWake(t *testing.T) {
	if _, err := Release(); err != nil {
		t.Fatal(err)
	}
	if flagged := randomRegions(t); flagged == 0 {
		t.Fatal("no region of the executable is advised MADV_RANDOM after Release")
	}
	if !paging.idle.Load() {
		t.Fatal("Release left idle paging off")
	}
	Wake()
	Wake()
	if flagged := randomRegions(t); flagged != 0 {
		t.Fatalf("%d regions of the executable still advised MADV_RANDOM after Wake", flagged)
	}
	if paging.idle.Load() {
		t.Fatal("Wake left idle paging on")
	}
}

// randomRegions counts the executable's mappings whose VmFlags in
// /proc/self/smaps include "rr" (VM_RAND_READ, set by MADV_RANDOM).
func randomRegions(t *testing.T) int {
	t.Helper()
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	n, inExe := 0, false
	for _, line := range strings.Split(string(b), "\n") {
		fields := strings.Fields(line)
		switch {
		case len(fields) > 0 && isHeader([]byte(fields[0])):
			inExe = len(fields) >= 6 && fields[5] == exe
		case inExe && len(fields) > 0 && fields[0] == "VmFlags:" && slices.Contains(fields[1:], "rr"):
			n++
		}
	}
	return n
}

// diskFile writes a file of size bytes in a disk folder and syncs it, so
// its pages are clean and can be evicted as an executable's are; it skips
// the test where the temporary folder is tmpfs.
func diskFile(t *testing.T, size int) *os.File {
	t.Helper()
	path := filepath.Join(t.TempDir(), "binary")
	var fs unix.Statfs_t
	if err := unix.Statfs(filepath.Dir(path), &fs); err != nil {
		t.Fatal(err)
	}
	if fs.Type == unix.TMPFS_MAGIC {
		t.Skip("the test's temporary folder is on tmpfs, whose pages are the file and cannot be evicted; set TMPDIR to a disk folder to run this test")
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	if _, err := f.Write(bytes.Repeat([]byte("medic\n"), size/6+1)[:size]); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	return f
}

// cachedPages counts f's pages in the page cache with mincore(2), over a
// mapping made only to ask.
func cachedPages(t *testing.T, f *os.File) (cached, total int) {
	t.Helper()
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

// Pressure keeps single-page reads on through a Wake, and ends them when it
// ends; without pressure, Wake alone does.
func TestPressureKeepsPagingSinglyThroughWake(t *testing.T) {
	if _, err := Release(); err != nil {
		t.Fatal(err)
	}
	Pressure(true)
	Wake()
	if randomRegions(t) == 0 {
		t.Fatal("Wake under pressure took MADV_RANDOM off the executable")
	}
	Pressure(false)
	if n := randomRegions(t); n != 0 {
		t.Fatalf("%d regions still MADV_RANDOM once the pressure ended, awake", n)
	}
	Pressure(true)
	if randomRegions(t) == 0 {
		t.Fatal("pressure on an awake medic did not advise MADV_RANDOM")
	}
	Pressure(false)
}
