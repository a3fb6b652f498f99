package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/medichq/medic/internal/memtrim"
)

// The storm-in-a-pod phase: the throughput phase's burst again, on a fresh
// medic held to the memory a pod's container gets (the Helm chart's
// limit), to show the burst fits. With a writable memory cgroup the kernel
// enforces the limit (page cache reclaimed, OOM kill past it) and medic
// derives GOMEMLIMIT from it as in the pod; without one, GOMEMLIMIT is set
// as medic would derive it (memtrim.GoLimit) and a watchdog kills medic, as the OOM killer would,
// when its RSS reaches the limit. Either way a watchdog samples VmRSS every
// 50 ms; the phase fails when RSS reaches the limit, medic dies, or an
// accepted alert is lost or doubled.

type stormResult struct {
	LimitBytes  int64  `json:"limit_bytes"`
	Enforcement string `json:"enforcement"`
	// GoMemLimit is the GOMEMLIMIT medic was given; empty: derived by
	// medic from the cgroup (memtrim.GoLimit).
	GoMemLimit string `json:"gomemlimit,omitempty"`
	// GoMemLimitBytes is the Go memory limit medic ran with, read from its
	// /metrics (go_gc_gomemlimit_bytes) after the storm: what it derived
	// from the cgroup, or was given. 0: not read (medic did not survive).
	GoMemLimitBytes int64            `json:"gomemlimit_bytes,omitempty"`
	Throughput      throughputResult `json:"throughput"`
	// RSSPeak is the highest VmRSS the 50 ms watchdog saw, RSSHighWater
	// the kernel's VmHWM (every page ever resident at once).
	RSSPeak      int64 `json:"rss_peak_bytes"`
	RSSHighWater int64 `json:"rss_high_water_bytes"`
	// At the peak: anonymous memory (the Go runtime's) and file-backed
	// pages (the mapped binary, shared and reclaimable).
	RSSPeakAnon int64 `json:"rss_peak_anon_bytes"`
	RSSPeakFile int64 `json:"rss_peak_file_bytes"`
	// CgroupPeak counts the page cache of the files medic wrote as well,
	// which the kernel reclaims before it kills.
	CgroupPeak      int64              `json:"cgroup_peak_bytes,omitempty"`
	OOMKills        int                `json:"oom_kills"`
	WatchdogTripped bool               `json:"watchdog_tripped"`
	Survived        bool               `json:"survived"`
	SettleSeconds   float64            `json:"settle_seconds"`
	SettledRSS      int64              `json:"rss_after_settle_bytes"`
	SettledGoMem    map[string]float64 `json:"go_runtime_after_settle"`
	NearLimitGoMem  map[string]float64 `json:"go_runtime_near_limit,omitempty"` // when RSS first reached nearLimitPercent of the limit
	PipelineRatio   float64            `json:"pipeline_ratio_to_unlimited,omitempty"`
	Pass            bool               `json:"pass"`
}

func runStorm(bin, dir string, gen *alertGen, o *options, unlimited *throughputResult) (*stormResult, error) {
	limit := int64(o.stormLimitMiB) << 20
	r := &stormResult{LimitBytes: limit}
	env := append([]string(nil), o.env...)
	cg, err := newMemCgroup(limit)
	if err == nil && !o.stormCgroup {
		cg.remove()
		cg, err = nil, errors.New("-storm-cgroup=false")
	}
	if err != nil {
		logf("storm: no memory cgroup (%v); GOMEMLIMIT and a watchdog stand in for the pod's limit", err)
		cg = nil
		r.Enforcement = "watchdog (RSS ≥ limit: killed)"
		if o.stormGoMemLimit == "" {
			o.stormGoMemLimit = strconv.FormatUint(memtrim.GoLimit(uint64(limit)), 10)
		}
	} else {
		r.Enforcement = cg.kind()
	}
	if o.stormGoMemLimit != "" {
		env = append(env, "GOMEMLIMIT="+o.stormGoMemLimit)
		r.GoMemLimit = o.stormGoMemLimit
	}
	m, err := startMedic(bin, filepath.Join(dir, "storm"), env, cg)
	if err != nil {
		if cg != nil {
			cg.remove()
		}
		return nil, err
	}
	defer func() {
		stopQuietly(m)
		if cg != nil {
			cg.remove()
		}
	}()
	if err := m.waitReady(60 * time.Second); err != nil {
		return nil, err
	}
	// Near the limit, what the Go runtime holds says whether the RSS is
	// live heap, heap the runtime has not returned yet, or not heap at all
	// (the binary's pages); with -profile, the heap profile says whose.
	var nearWG sync.WaitGroup
	nearLimit := func() {
		nearWG.Go(func() {
			st := m.goMemStats()
			r.NearLimitGoMem = st
			logf("storm: RSS at %d%% of the limit; Go runtime holds %s: heap in use %s, idle not released %s, next GC %s, GCs %.0f",
				nearLimitPercent, fmtMiB(int64(st["go_memstats_sys_bytes"]-st["go_memstats_heap_released_bytes"])),
				fmtMiB(int64(st["go_memstats_heap_inuse_bytes"])),
				fmtMiB(int64(st["go_memstats_heap_idle_bytes"]-st["go_memstats_heap_released_bytes"])),
				fmtMiB(int64(st["go_memstats_next_gc_bytes"])), st["go_gc_duration_seconds_count"])
			if o.profile != "" {
				p := &profiler{dir: filepath.Join(o.profile, "storm"), base: m.base}
				if err := p.fetch(p.base+"/debug/pprof/heap", "heap-near-limit.pprof", 30*time.Second); err != nil {
					logf("heap profile near the limit: %v", err)
				}
			}
		})
	}
	wd := startWatchdog(m, limit, cg == nil, nearLimit)
	so := *o
	so.alerts = o.stormAlerts
	if o.profile != "" {
		so.profile = filepath.Join(o.profile, "storm")
		if err := os.MkdirAll(so.profile, 0o750); err != nil {
			return nil, err
		}
	}
	logf("storm in a pod: %d alerts, memory limit %d MiB (%s)", so.alerts, o.stormLimitMiB, r.Enforcement)
	r.Throughput, err = runThroughput(m, gen, &so)
	if err != nil {
		return nil, err
	}
	if m.running() {
		time.Sleep(o.stormSettle)
		r.SettleSeconds = o.stormSettle.Seconds()
		r.SettledRSS = rss(m.pid())
		r.SettledGoMem = m.goMemStats()
		r.GoMemLimitBytes = int64(r.SettledGoMem["go_gc_gomemlimit_bytes"])
		if o.profile != "" {
			// After the readings: the profile's collection changes them.
			(&profiler{dir: filepath.Join(o.profile, "storm"), base: m.base}).heap("heap-after-settle.pprof")
		}
		r.RSSHighWater = procStatus(m.pid(), "VmHWM")["VmHWM"]
	}
	r.RSSPeak, r.WatchdogTripped = wd.stop()
	nearWG.Wait()
	r.RSSPeakAnon, r.RSSPeakFile = wd.anon.Load(), wd.file.Load()
	r.Survived = m.running()
	if cg != nil {
		r.CgroupPeak, r.OOMKills = cg.peak(), cg.oomKills()
	}
	if unlimited != nil && unlimited.FindingsPerSec > 0 {
		r.PipelineRatio = r.Throughput.FindingsPerSec / unlimited.FindingsPerSec
	}
	tp := &r.Throughput
	r.Pass = r.Survived && !r.WatchdogTripped && r.OOMKills == 0 && tp.DrainComplete &&
		tp.Lost == 0 && tp.Duplicates == 0 && max(r.RSSPeak, r.RSSHighWater) < limit
	logf("storm: peak RSS %s (anon %s, file %s; high water %s), %s findings/s, lost %d, duplicates %d, survived %v",
		fmtMiB(r.RSSPeak), fmtMiB(r.RSSPeakAnon), fmtMiB(r.RSSPeakFile), fmtMiB(r.RSSHighWater), thousands(tp.FindingsPerSec), tp.Lost, tp.Duplicates, r.Survived)
	return r, nil
}

// watchdog samples medic's VmRSS every 50 ms.
type watchdog struct {
	peak    atomic.Int64
	anon    atomic.Int64
	file    atomic.Int64
	tripped atomic.Bool
	done    chan struct{}
	quit    chan struct{}
}

// nearLimitPercent is the share of the limit at which the watchdog calls
// its nearLimit function, once.
const nearLimitPercent = 90

func startWatchdog(m *medicProc, limit int64, kill bool, nearLimit func()) *watchdog {
	w := &watchdog{done: make(chan struct{}), quit: make(chan struct{})}
	var near sync.Once
	go func() {
		defer close(w.done)
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			st := procStatus(m.pid(), "VmRSS", "RssAnon", "RssFile")
			if v := st["VmRSS"]; v > 0 {
				if v > w.peak.Load() {
					w.peak.Store(v)
					w.anon.Store(st["RssAnon"])
					w.file.Store(st["RssFile"])
				}
				if v >= limit/100*nearLimitPercent && nearLimit != nil {
					near.Do(nearLimit)
				}
				if v >= limit && !w.tripped.Swap(true) {
					logf("storm: medic's RSS %s reached the limit %s", fmtMiB(v), fmtMiB(limit))
					if kill {
						_ = m.cmd.Process.Signal(syscall.SIGKILL)
					}
				}
			}
			select {
			case <-w.quit:
				return
			case <-t.C:
			}
		}
	}()
	return w
}

func (w *watchdog) stop() (peak int64, tripped bool) {
	close(w.quit)
	<-w.done
	return w.peak.Load(), w.tripped.Load()
}

// Goals of issue 14 ("a storm inside the pod's limits"), checked by
// printIssueTable.
const (
	goalIntakeOfRaw     = 0.50
	goalPipelineOfRaw   = 0.33
	goalStormOfPipeline = 0.80
	goalProbedIdleMiB   = 35.0
	// goalSettledHeapMiB: the live Go heap some seconds after the burst
	// drained, "back to idle" within what the streams' deduplication
	// windows must hold for the events and findings of the burst.
	goalSettledHeapMiB = 64.0
)

// printIssueTable prints the figures of issue 14 with their goals: figure,
// measured, ratio to raw JetStream (or to the unlimited run), goal, verdict.
func printIssueTable(w io.Writer, r *results, o *options) {
	type line struct{ figure, measured, ratio, goal, verdict string }
	var lines []line
	verdict := func(ok bool) string {
		if ok {
			return "pass"
		}
		return "FAIL"
	}
	raw := 0.0
	if r.RawJS != nil {
		raw = r.RawJS.MsgsPerSec
	}
	ofRaw := func(v float64) string {
		if raw == 0 {
			return "–"
		}
		return fmt.Sprintf("%.0f%% of raw", 100*v/raw)
	}
	vsRaw := func(v, goal float64) string {
		if raw == 0 {
			return "n/a"
		}
		return verdict(v/raw >= goal)
	}
	tp := &r.Throughput
	if raw > 0 {
		lines = append(lines, line{"raw JetStream publish (the ceiling)", thousands(raw) + " msg/s", "100%", "–", ""})
	}
	lines = append(lines,
		line{"intake, alerts/s stored", thousands(tp.AlertsPerSec), ofRaw(tp.AlertsPerSec),
			fmt.Sprintf("≥ %.0f%% of raw", 100*goalIntakeOfRaw), vsRaw(tp.AlertsPerSec, goalIntakeOfRaw)},
		line{"pipeline, findings/s (webhook → file sink)", thousands(tp.FindingsPerSec), ofRaw(tp.FindingsPerSec),
			fmt.Sprintf("≥ %.0f%% of raw", 100*goalPipelineOfRaw), vsRaw(tp.FindingsPerSec, goalPipelineOfRaw)},
	)
	if f := r.Floor; f != nil && raw > 0 {
		// What JetStream alone does with the stores each alert needs: the
		// most any pipeline with medic's guarantees could reach here.
		lines = append(lines,
			line{"  its JetStream floor (same stores, no medic code)", thousands(f.FindingsPerSec), ofRaw(f.FindingsPerSec), "–", ""},
			line{"  pipeline against its floor", floorOf(tp.FindingsPerSec, f), "", "–", ""})
	}
	lines = append(lines,
		line{fmt.Sprintf("burst of %s, peak RSS, no limit", thousands(float64(tp.Alerts))), fmtMiB(max(tp.RSSPeak, tp.RSSHighWater)), "", "–", ""},
	)
	if s := r.Storm; s != nil {
		st := &s.Throughput
		gml := s.GoMemLimit
		if n, err := strconv.ParseInt(gml, 10, 64); err == nil {
			gml = fmtMiB(n)
		}
		switch {
		case gml == "" && s.GoMemLimitBytes > 0:
			gml = fmt.Sprintf("from the cgroup (%s)", fmtMiB(s.GoMemLimitBytes))
		case gml == "":
			gml = fmt.Sprintf("from the cgroup (%s expected, not read)", fmtMiB(int64(memtrim.GoLimit(uint64(s.LimitBytes)))))
		}
		lines = append(lines,
			line{fmt.Sprintf("storm in a pod: %s alerts, limit %d MiB, GOMEMLIMIT %s", thousands(float64(st.Alerts)), o.stormLimitMiB, gml),
				"peak RSS " + fmtMiB(max(s.RSSPeak, s.RSSHighWater)), "", fmt.Sprintf("< %d MiB, no OOM kill", o.stormLimitMiB),
				verdict(s.Survived && !s.WatchdogTripped && s.OOMKills == 0 && max(s.RSSPeak, s.RSSHighWater) < s.LimitBytes)},
			line{"storm in a pod: pipeline, findings/s", thousands(st.FindingsPerSec), fmt.Sprintf("%.0f%% of unlimited", 100*s.PipelineRatio),
				fmt.Sprintf("≥ %.0f%% of unlimited", 100*goalStormOfPipeline), verdict(s.PipelineRatio >= goalStormOfPipeline)},
		)
		if fp, f := r.FloorInPod, r.Floor; fp != nil && f != nil && f.FindingsPerSec > 0 && fp.FindingsPerSec > 0 {
			// JetStream's own work under the same limit: what share of its
			// unlimited rate is left for any pipeline on it.
			floorRatio := fp.FindingsPerSec / f.FindingsPerSec
			lines = append(lines,
				line{"  its JetStream floor in the same pod", thousands(fp.FindingsPerSec), fmt.Sprintf("%.0f%% of unlimited", 100*floorRatio), "–", ""},
				line{"  storm's ratio against the floor's", fmt.Sprintf("%.0f%%", 100*s.PipelineRatio/floorRatio), "", "–", ""})
		}
		lines = append(lines,
			line{"storm in a pod: lost / duplicates", fmt.Sprintf("%d / %d of %s", st.Lost, st.Duplicates, thousands(float64(st.Accepted))), "", "0 / 0",
				verdict(st.DrainComplete && st.Lost == 0 && st.Duplicates == 0)},
		)
		heap := s.SettledGoMem["go_memstats_heap_inuse_bytes"]
		lines = append(lines, line{fmt.Sprintf("live heap %gs after the storm drained", s.SettleSeconds),
			fmt.Sprintf("%.0f MiB (RSS %s)", heap/(1<<20), fmtMiB(s.SettledRSS)), "", fmt.Sprintf("≤ %.0f MiB", goalSettledHeapMiB),
			verdict(heap > 0 && heap/(1<<20) <= goalSettledHeapMiB)})
		if fp := r.FloorInPod; fp != nil && fp.SettledHeapInuse > 0 {
			// What JetStream alone holds of the same burst at the same
			// moment: the duplicate windows and the claims' subjects.
			lines = append(lines, line{"  its JetStream floor's, in the same pod", fmtMiB(fp.SettledHeapInuse), "", "–", ""})
		}
	}
	if r.ProbedRSS > 0 {
		lines = append(lines, line{"idle RSS under kubelet/Prometheus probes", fmtMiB(r.ProbedRSS), "", fmt.Sprintf("≤ %.0f MiB", goalProbedIdleMiB),
			verdict(mib(r.ProbedRSS) <= goalProbedIdleMiB)})
	}
	lines = append(lines, line{"lost / duplicates (every phase)",
		fmt.Sprintf("%d / %d", r.lost(), r.duplicates()), "", "0 / 0", verdict(r.lost() == 0 && r.duplicates() == 0)})

	fmt.Fprintf(w, "\nissue 14, a storm inside the pod's limits (load average %s):\n", r.LoadAvg)
	fmt.Fprintf(w, "| %-62s | %-24s | %-18s | %-22s | %-7s |\n", "figure", "measured", "ratio", "goal", "verdict")
	fmt.Fprintf(w, "|%s|%s|%s|%s|%s|\n", dashes(64), dashes(26), dashes(20), dashes(24), dashes(9))
	for _, l := range lines {
		fmt.Fprintf(w, "| %-62s | %-24s | %-18s | %-22s | %-7s |\n", l.figure, l.measured, l.ratio, l.goal, l.verdict)
	}
}

func dashes(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = '-'
	}
	return string(b)
}

// lost and duplicates add up every phase's.
func (r *results) lost() int {
	n := r.Throughput.Lost + r.Latency.Lost
	if r.Storm != nil {
		n += r.Storm.Throughput.Lost
	}
	return n
}

func (r *results) duplicates() int {
	n := r.Throughput.Duplicates + r.Latency.Duplicates
	if r.Storm != nil {
		n += r.Storm.Throughput.Duplicates
	}
	return n
}
