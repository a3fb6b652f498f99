package main

import "syscall"

// sysProcAttr makes the kernel kill medic if the harness dies without
// stopping it.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// flushDirtyPages writes out what earlier phases left in the page cache, so
// the kernel's writeback of one phase's files does not land in the next
// phase's measurement (it made intake figures vary by a fifth run to run).
func flushDirtyPages() { syscall.Sync() }
