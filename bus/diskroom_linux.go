package bus

import "golang.org/x/sys/unix"

// diskHasRoom reports whether the filesystem holding dir has room for
// JetStream to work again: a tenth of its size free, or 64 MiB, whichever
// is less. Restarting the embedded server on a disk still full would only
// see it stop again at the next write.
func diskHasRoom(dir string) bool {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return true // cannot tell: try
	}
	bsize := uint64(st.Bsize) //nolint:gosec // a block size is positive
	free, size := st.Bavail*bsize, st.Blocks*bsize
	return free >= min(size/10, 64<<20)
}
