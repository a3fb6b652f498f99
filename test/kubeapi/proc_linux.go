package kubeapi

import "syscall"

// sysProcAttr makes the kernel kill the server if the test process dies
// without running its cleanups (a go test timeout, a SIGKILL).
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
