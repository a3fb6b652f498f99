//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package deploy

import "errors"

func lockFile(string) (func(), error) {
	return nil, errors.New("file locking not supported on this platform")
}
