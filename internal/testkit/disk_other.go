//go:build !linux

package testkit

import "testing"

// SmallDisk needs Linux's tmpfs: elsewhere it skips the test.
func SmallDisk(t *testing.T, size string) string {
	t.Helper()
	t.Skip("a small filesystem for the disk-full case needs Linux's tmpfs")
	return ""
}

// FillDisk is not reached where SmallDisk skips.
func FillDisk(t *testing.T, path string, keep int64) {
	t.Helper()
	t.Skip("filling a disk needs Linux's tmpfs")
}
