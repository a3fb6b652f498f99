package main

import (
	"bytes"
	"os"
	"strconv"
	"strings"
)

// clkTck is USER_HZ, the unit of /proc's CPU times; 100 on every Linux
// architecture Go supports.
const clkTck = 100

// cpuSnap is the CPU time used so far by the machine, this process and
// medic, in clock ticks. The benchmark shares its machine (other builds and
// tests may be running), so each phase says how much CPU went elsewhere.
type cpuSnap struct {
	machineBusy, machineTotal int64
	self, medic               int64
}

func takeCPU(medicPid int) cpuSnap {
	var s cpuSnap
	s.machineBusy, s.machineTotal = machineCPU()
	s.self = procCPU("self")
	if medicPid > 0 {
		s.medic = procCPU(strconv.Itoa(medicPid))
	}
	return s
}

// cpuUse is CPU used during a phase, in cores (1.0 = one core busy for
// the whole phase).
type cpuUse struct {
	Medic   float64 `json:"medic_cores"`
	Harness float64 `json:"harness_cores"`
	Others  float64 `json:"other_processes_cores"`
	Idle    float64 `json:"idle_cores"`
}

func cpuBetween(a, b cpuSnap, cores int) cpuUse {
	total := float64(b.machineTotal - a.machineTotal)
	if total <= 0 {
		return cpuUse{}
	}
	// machine ticks are summed over cores
	wall := total / float64(cores)
	u := cpuUse{
		Medic:   float64(b.medic-a.medic) / wall,
		Harness: float64(b.self-a.self) / wall,
	}
	busy := float64(b.machineBusy-a.machineBusy) / wall
	u.Others = max(0, busy-u.Medic-u.Harness)
	u.Idle = max(0, float64(cores)-busy)
	return u
}

// machineCPU reads the first line of /proc/stat.
func machineCPU() (busy, total int64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := bytes.Cut(b, []byte{'\n'})
	f := strings.Fields(string(line))
	if len(f) < 9 || f[0] != "cpu" {
		return 0, 0
	}
	v := make([]int64, 8)
	for i := range v {
		v[i], _ = strconv.ParseInt(f[i+1], 10, 64)
	}
	// user nice system idle iowait irq softirq steal
	busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7]
	return busy, busy + v[3] + v[4]
}

// procCPU is utime+stime of /proc/<pid>/stat.
func procCPU(pid string) int64 {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0
	}
	// The command name may hold spaces; fields are counted after its ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return ut + st
}
