// Package memtrim gives back the memory that only start-up needed.
//
// medic links Kubernetes' client, Bleve, Weaviate's client, gRPC and more
// into one static binary; their package initialisers, the knowledge-base
// ingest and the playbook load touch tens of megabytes of the executable
// and leave garbage on the heap. Once medic serves, almost none of those
// pages are used again, but they stay mapped and are counted in its RSS
// (84 MiB idle, of which 58 MiB were pages of the binary; the pages a
// serving medic touches are about 5–12 MiB of it).
//
// Release drops the process's mappings of the executable's read-only pages
// (madvise MADV_DONTNEED), evicts them from the page cache (posix_fadvise
// DONTNEED) and returns the Go heap's free pages to the OS. Until Wake,
// code and tables that run again are read back a page at a time, which is
// all an idle process needs; then at read-around size. Without the eviction
// a freshly written binary's 2 MiB page-cache folios would come back whole
// on the first touch of any of their pages (evict).
package memtrim

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strconv"
)

// Result says what Release did.
type Result struct {
	// RSSBefore and RSSAfter are the resident set (VmRSS) around the call;
	// zero where the platform does not report it.
	RSSBefore, RSSAfter int64
	// FileBefore and FileAfter are the file-backed part of it (RssFile).
	FileBefore, FileAfter int64
	// Mappings is how many mappings of the executable were released, and
	// Skipped how many were left alone because a page of them was private
	// (copied on write) and would have been lost.
	Mappings, Skipped int
	// Evicted says the executable's unmapped pages were also dropped from
	// the page cache.
	Evicted bool
	// IdlePaging says the released regions read a page at a time
	// (MADV_RANDOM) until Wake.
	IdlePaging bool
}

// mapping is one region of the executable in /proc/self/smaps.
type mapping struct {
	start, end uint64
	// anonymous is the bytes of the region that are private copies.
	anonymous int64
}

// executableMappings reads smaps and returns the read-only regions backed by
// the file with inode ino (the executable), and how many of those were
// skipped because they hold private pages. Only unwritable regions are
// candidates: dropping a written page of a private mapping would lose the
// write. A region whose Anonymous count is not zero was written anyway (a
// relocated position-independent binary, a debugger's breakpoint) and is
// skipped for the same reason.
func executableMappings(smaps io.Reader, ino uint64) (release []mapping, skipped int, err error) {
	var (
		cur     *mapping
		current bool // cur is a candidate
	)
	finish := func() {
		if cur != nil && current {
			if cur.anonymous == 0 {
				release = append(release, *cur)
			} else {
				skipped++
			}
		}
		cur, current = nil, false
	}
	sc := bufio.NewScanner(smaps)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		fields := bytes.Fields(line)
		if len(fields) == 0 {
			continue
		}
		if isHeader(fields[0]) {
			finish()
			// address perms offset dev inode [path]
			if len(fields) < 5 {
				return nil, 0, fmt.Errorf("smaps: short mapping line %q", line)
			}
			start, end, ok := parseRange(fields[0])
			if !ok {
				return nil, 0, fmt.Errorf("smaps: bad address range in %q", line)
			}
			inode, err := strconv.ParseUint(string(fields[4]), 10, 64)
			if err != nil {
				return nil, 0, fmt.Errorf("smaps: bad inode in %q: %w", line, err)
			}
			perms := fields[1]
			cur = &mapping{start: start, end: end}
			current = inode == ino && ino != 0 && len(perms) >= 2 && perms[1] != 'w'
			continue
		}
		if cur != nil && bytes.Equal(fields[0], []byte("Anonymous:")) && len(fields) >= 2 {
			kb, err := strconv.ParseInt(string(fields[1]), 10, 64)
			if err != nil {
				return nil, 0, fmt.Errorf("smaps: bad Anonymous value in %q: %w", line, err)
			}
			cur.anonymous = kb << 10
		}
	}
	if err := sc.Err(); err != nil {
		return nil, 0, fmt.Errorf("read smaps: %w", err)
	}
	finish()
	return release, skipped, nil
}

// isHeader reports whether an smaps line's first field is an address range
// ("55d0c5a00000-55d0c5a21000"), which starts a mapping's block.
func isHeader(f []byte) bool {
	i := bytes.IndexByte(f, '-')
	if i <= 0 || i == len(f)-1 {
		return false
	}
	for j, c := range f {
		if j == i {
			continue
		}
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

func parseRange(f []byte) (start, end uint64, ok bool) {
	i := bytes.IndexByte(f, '-')
	if i < 0 {
		return 0, 0, false
	}
	start, err1 := strconv.ParseUint(string(f[:i]), 16, 64)
	end, err2 := strconv.ParseUint(string(f[i+1:]), 16, 64)
	return start, end, err1 == nil && err2 == nil && end > start
}
