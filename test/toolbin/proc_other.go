//go:build !linux

package toolbin

import "syscall"

// dieWithParent is Linux's Pdeathsig; elsewhere the cleanups stop servers.
func dieWithParent() *syscall.SysProcAttr { return nil }
