//go:build !unix

package toolbin

import "os"

// markerExists reports whether the build marker is still there (see
// marker_unix.go; make test runs on Unix only).
func markerExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
