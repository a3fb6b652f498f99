package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// memCgroup is a memory cgroup made for one medic process, below the
// harness's own (v2: memory.max; v1: memory.limit_in_bytes), so the storm
// phase runs medic under the limit a pod's container gets: the kernel
// reclaims page cache and OOM-kills as it would in the pod, and medic's
// automemlimit reads the limit from /proc/self/cgroup as it does there.
type memCgroup struct {
	dir string
	v2  bool
}

// newMemCgroup creates the cgroup with limit bytes, or says why it cannot
// (no cgroup file system, not writable: not root, or a container).
func newMemCgroup(limit int64) (*memCgroup, error) {
	own, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return nil, err
	}
	var cg *memCgroup
	for line := range strings.SplitSeq(strings.TrimSpace(string(own)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		switch {
		case slices.Contains(strings.Split(parts[1], ","), "memory"):
			cg = &memCgroup{dir: filepath.Join("/sys/fs/cgroup/memory", parts[2])}
		case parts[0] == "0" && parts[1] == "" && cg == nil:
			if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
				cg = &memCgroup{dir: filepath.Join("/sys/fs/cgroup", parts[2]), v2: true}
			}
		}
	}
	if cg == nil {
		return nil, errors.New("no memory cgroup controller found in /proc/self/cgroup")
	}
	cg.dir = filepath.Join(cg.dir, fmt.Sprintf("medic-bench-%d-%d", os.Getpid(), time.Now().UnixNano()))
	if err := os.Mkdir(cg.dir, 0o755); err != nil {
		return nil, fmt.Errorf("create cgroup: %w", err)
	}
	limitFile := "memory.limit_in_bytes"
	if cg.v2 {
		limitFile = "memory.max"
		_ = cg.write("memory.swap.max", "0") // a pod has no swap
	}
	if err := cg.write(limitFile, strconv.FormatInt(limit, 10)); err != nil {
		cg.remove()
		return nil, err
	}
	return cg, nil
}

func (c *memCgroup) write(name, value string) error {
	if err := os.WriteFile(filepath.Join(c.dir, name), []byte(value), 0o644); err != nil {
		return fmt.Errorf("cgroup %s: %w", name, err)
	}
	return nil
}

// procsFile is where a process writes its PID to join the cgroup.
func (c *memCgroup) procsFile() string { return filepath.Join(c.dir, "cgroup.procs") }

func (c *memCgroup) kind() string {
	if c.v2 {
		return "cgroup v2 memory.max"
	}
	return "cgroup v1 memory.limit_in_bytes"
}

// peak is the cgroup's highest charge: medic's memory and the page cache
// of the files it wrote (which the kernel reclaims before killing).
func (c *memCgroup) peak() int64 {
	name := "memory.max_usage_in_bytes"
	if c.v2 {
		name = "memory.peak"
	}
	b, err := os.ReadFile(filepath.Join(c.dir, name))
	if err != nil {
		return 0
	}
	v, _ := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	return v
}

// oomKills counts the processes the kernel killed for the limit.
func (c *memCgroup) oomKills() int {
	name := "memory.oom_control"
	if c.v2 {
		name = "memory.events"
	}
	f, err := os.Open(filepath.Join(c.dir, name))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), " "); ok && k == "oom_kill" {
			n, _ := strconv.Atoi(v)
			return n
		}
	}
	return 0
}

// remove deletes the cgroup once no process is left in it.
func (c *memCgroup) remove() {
	for range 50 {
		if err := os.Remove(c.dir); err == nil || errors.Is(err, os.ErrNotExist) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}
