package testkit

import (
	"errors"
	"os"
	"syscall"
	"testing"
)

// SmallDisk mounts a tmpfs of the given size ("8m", "256k") on a temporary
// folder for the test and returns the folder; it skips the test where
// mounting is not allowed (not root, no CAP_SYS_ADMIN). The tmpfs is
// detached when the test ends.
func SmallDisk(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size); err != nil {
		t.Skipf("cannot mount a small tmpfs here (%v); the disk-full case needs one", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// FillDisk writes the file path until its filesystem is full (ENOSPC),
// then gives keep bytes back. Removing the file frees the disk again.
func FillDisk(t *testing.T, path string, keep int64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 4096)
	var size int64
	for {
		n, err := f.Write(chunk)
		size += int64(n)
		if errors.Is(err, syscall.ENOSPC) {
			break
		}
		if err != nil {
			t.Fatalf("fill %s: %v", path, err)
		}
	}
	if err := f.Truncate(size - keep); err != nil {
		t.Fatal(err)
	}
}
