//go:build !linux

package main

import "errors"

type memCgroup struct{}

func newMemCgroup(int64) (*memCgroup, error) { return nil, errors.New("memory cgroups are Linux only") }
func (*memCgroup) procsFile() string         { return "" }
func (*memCgroup) kind() string              { return "" }
func (*memCgroup) peak() int64               { return 0 }
func (*memCgroup) oomKills() int             { return 0 }
func (*memCgroup) remove()                   {}
