package memtrim

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// Release returns the Go heap's free pages to the OS and drops the
// process's mappings of the executable's read-only pages. It is safe to
// call at any time (the pages come back on use) but meant for the moments
// after start-up and after a burst: it costs a few garbage collections
// (freeHeap).
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
	for _, m := range regions {
		if _, _, errno := unix.Syscall(unix.SYS_MADVISE, uintptr(m.start), uintptr(m.end-m.start), unix.MADV_DONTNEED); errno != 0 {
			errs = append(errs, fmt.Errorf("madvise %#x-%#x: %w", m.start, m.end, errno))
			continue
		}
		res.Mappings++
	}
	res.RSSAfter, res.FileAfter = rss()
	return res, errors.Join(errs...)
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
