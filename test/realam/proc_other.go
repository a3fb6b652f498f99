//go:build !linux

package realam

import "syscall"

func sysProcAttr() *syscall.SysProcAttr { return nil }
