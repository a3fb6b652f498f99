package memtrim

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// Release returns the Go heap's free pages to the OS, drops the process's
// mappings of the executable's read-only pages and then evicts those pages
// from the page cache (evict). Until Wake, a page of them that is needed
// again is read alone (idle paging). It is safe to call at any time (the
// pages come back on use) but meant for the moments after start-up and
// after a burst: it costs a few garbage collections (freeHeap).
func Release() (Result, error) {
	var res Result
	res.RSSBefore, res.FileBefore = rss()
	freeHeap()

	var st syscall.Stat_t
	if err := syscall.Stat("/proc/self/exe", &st); err != nil {
		return res, fmt.Errorf("stat /proc/self/exe: %w", err)
	}
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		return res, fmt.Errorf("open smaps: %w", err)
	}
	regions, skipped, err := executableMappings(f, st.Ino)
	f.Close()
	if err != nil {
		return res, err
	}
	res.Skipped = skipped
	var errs []error
	paging.mu.Lock()
	defer paging.mu.Unlock()
	// Set before the advice, under the lock: work that arrives meanwhile
	// waits in Wake and then undoes it, rather than find it unset and run
	// with single-page reads until the next Wake.
	paging.idle.Store(true)
	paging.regions = paging.regions[:0]
	for _, m := range regions {
		if err := advise(m, unix.MADV_RANDOM); err != nil {
			errs = append(errs, err)
		} else {
			paging.regions = append(paging.regions, m)
			res.IdlePaging = true
		}
		if err := advise(m, unix.MADV_DONTNEED); err != nil {
			errs = append(errs, err)
			continue
		}
		res.Mappings++
	}
	paging.random = true
	if res.Mappings > 0 {
		if err := evict("/proc/self/exe"); err != nil {
			errs = append(errs, err)
		} else {
			res.Evicted = true
		}
	}
	res.RSSAfter, res.FileAfter = rss()
	return res, errors.Join(errs...)
}

// paging is the advice on the executable's regions that Release found:
// MADV_RANDOM (a fault reads the page it needs and no more) while medic is
// idle, until Wake, or while its memory is under pressure (Pressure);
// MADV_NORMAL (the kernel's read-around) otherwise. It is the process's own
// state (its mappings), hence a package variable.
var paging struct {
	mu       sync.Mutex
	idle     atomic.Bool
	pressure bool
	random   bool // the advice in force is MADV_RANDOM
	regions  []mapping
}

// Wake ends idle paging: the executable's pages are read at read-around
// size again, unless memory is under pressure. Call it when work arrives
// (a request, an event); it costs one atomic load when medic is already
// awake, so it can run for every one.
//
// Why idle paging: after Release, an idle medic still runs code. The
// collector walks every goroutine's stack (a hundred and more, most of them
// the embedded NATS server's and the informers') and reads the function
// tables and type data of each frame, and /metrics and the probes run
// their handlers. With the kernel's read-around each of those faults reads
// the disk's read-ahead window around the page it needs (read_ahead_kb:
// 8 MiB on the build machine) and fault-around maps its neighbours: 26–28
// MiB of file pages after ten seconds of probes and scrapes, against 12 MiB
// when each fault reads its own page (MADV_RANDOM). Under load single-page
// reads cost too much (a disk read per 4 KiB of code and tables: the p99
// of the first seconds at 1,000 alerts/s rose from 25–50 ms to 85–125 ms
// when they stayed on), so the first piece of work turns them off and the
// next release after a burst turns them on again.
func Wake() {
	if !paging.idle.Load() {
		return
	}
	paging.mu.Lock()
	defer paging.mu.Unlock()
	paging.idle.Store(false)
	applyPaging()
}

// Awake reports whether work ended idle paging since the last Release
// (or no Release ran yet).
func Awake() bool { return !paging.idle.Load() }

// Pressure says whether medic's memory is near its limit (WatchPressure
// decides). Under pressure the executable's pages are read a page at a
// time, busy or not.
//
// Why: at a container's limit the kernel reclaims the binary's pages, and
// each one the busy code needs again is a fault. With read-around that fault
// reads the whole read-ahead window, which evicts more of what is in use:
// a 300,000-alert storm into 64 MiB streams in 256 MiB drained at 1,846
// findings/s with read-around and 2,803 with single-page reads
// (docs/benchmarks.md, session 17).
func Pressure(on bool) {
	paging.mu.Lock()
	defer paging.mu.Unlock()
	paging.pressure = on
	applyPaging()
}

// applyPaging advises the regions MADV_RANDOM while idle or under
// pressure, MADV_NORMAL otherwise; paging.mu is held.
func applyPaging() {
	random := paging.idle.Load() || paging.pressure
	if random == paging.random {
		return
	}
	advice := unix.MADV_NORMAL
	if random {
		advice = unix.MADV_RANDOM
	}
	for _, m := range paging.regions {
		_ = advise(m, advice) // the region is the executable's, mapped for the process's life
	}
	paging.random = random
}

// advise is madvise(2) over one region.
func advise(m mapping, advice int) error {
	if _, _, errno := unix.Syscall(unix.SYS_MADVISE, uintptr(m.start), uintptr(m.end-m.start), uintptr(advice)); errno != 0 {
		return fmt.Errorf("madvise(%d) %#x-%#x: %w", advice, m.start, m.end, errno)
	}
	return nil
}

// evict asks the kernel to drop a file's pages from the page cache
// (posix_fadvise POSIX_FADV_DONTNEED); Release calls it for the executable
// once this process no longer maps its pages.
//
// Why: a binary that was just written (by the linker, or unpacked from an
// image layer) sits in the page cache of Linux 6.x in large folios of up to
// 2 MiB, and a fault on any of its pages maps the whole folio, so each
// function that runs again brings up to 2 MiB back. Measured on an idle
// medic: 12 MiB of file pages after the release, 28 MiB 15 s later without
// a request, 45 MiB after probes and scrapes. Pages read again after the
// eviction come in at read-around size: 14 and 28 MiB at the same moments.
// The cost is one read from disk the first time a page is needed again.
// Pages that a process maps, or that are dirty, stay; on tmpfs the call
// does nothing.
func evict(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open %s to evict it from the page cache: %w", path, err)
	}
	defer f.Close()
	if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		return fmt.Errorf("fadvise DONTNEED on %s: %w", path, err)
	}
	return nil
}

// rss reads VmRSS and RssFile from /proc/self/status, in bytes.
func rss() (total, file int64) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, 0
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		fields := bytes.Fields(sc.Bytes())
		if len(fields) < 2 {
			continue
		}
		kb, err := strconv.ParseInt(string(fields[1]), 10, 64)
		if err != nil {
			continue
		}
		switch string(fields[0]) {
		case "VmRSS:":
			total = kb << 10
		case "RssFile:":
			file = kb << 10
		}
	}
	return total, file
}
