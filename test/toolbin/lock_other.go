//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package toolbin

import "errors"

func lockFile(string) (func(), error) {
	return nil, errors.New("file locking not supported on this platform")
}
