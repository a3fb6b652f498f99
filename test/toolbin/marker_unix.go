//go:build unix

package toolbin

import "syscall"

// markerExists reports whether the build marker is still there. It calls
// stat(2) directly rather than os.Stat, which Go's test log records: the
// marker exists when the next make test starts, so a recorded look at it
// would keep every package that waited from being replayed from the test
// cache. Whatever the answer, the binary itself is then stat'ed through os.
func markerExists(path string) bool {
	var st syscall.Stat_t
	return syscall.Stat(path, &st) == nil
}
