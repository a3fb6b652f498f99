//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package toolbin

import (
	"os"
	"syscall"
)

// lockFile takes an exclusive flock on path, waiting for it; the returned
// func releases it. The lock goes away with the process, so a killed test
// never leaves a stale lock behind.
func lockFile(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		_ = f.Close()
	}, nil
}
