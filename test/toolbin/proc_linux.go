package toolbin

import "syscall"

// dieWithParent makes the kernel kill a server if the test process dies
// without running its cleanups (a go test timeout, a SIGKILL).
func dieWithParent() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
