package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// findRoot walks up from the working directory to the folder holding go.mod.
func findRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found in the working directory or above it; run from inside the medic repository")
		}
		dir = parent
	}
}

// buildMedic compiles ./cmd/medic into dir the way `make build` does
// (static, trimmed paths, no symbol table), so the memory figures are those
// of the shipped binary. Profile with -medic and a binary built with
// symbols.
func buildMedic(root, dir string) (string, error) {
	bin := filepath.Join(dir, "medic")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, "./cmd/medic")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	cmd.Dir = root
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build ./cmd/medic: %w", err)
	}
	return bin, nil
}

// medicProc is one `medic serve` subprocess with its own data folder.
type medicProc struct {
	cmd      *exec.Cmd
	dir      string
	base     string // http://127.0.0.1:port
	findings string
	logPath  string
	logFile  *os.File
	exited   chan struct{}
	waitErr  error
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// startMedic writes a configuration under dir and starts medic with it:
// embedded JetStream under dir/data, built-in playbooks only, one file sink.
// With cg, medic runs inside that memory cgroup from its first
// instruction (a shell joins it, then execs medic).
func startMedic(bin, dir string, env []string, cg *memCgroup) (*medicProc, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	m := &medicProc{
		dir:      dir,
		base:     fmt.Sprintf("http://127.0.0.1:%d", port),
		findings: filepath.Join(dir, "findings.jsonl"),
		logPath:  filepath.Join(dir, "medic.log"),
		exited:   make(chan struct{}),
	}
	conf := fmt.Sprintf(`cluster_name: bench
data_dir: %q
log: {level: warn}
http: {addr: "127.0.0.1:%d"}
sinks:
  - {name: file, type: file, path: %q}
playbooks:
  dirs: []
  reload_interval: 0s
`, filepath.Join(dir, "data"), port, m.findings)
	confPath := filepath.Join(dir, "medic.yaml")
	if err := os.WriteFile(confPath, []byte(conf), 0o640); err != nil {
		return nil, err
	}
	m.logFile, err = os.Create(m.logPath)
	if err != nil {
		return nil, err
	}
	m.cmd = cg.command(bin, "serve", "--config", confPath)
	m.cmd.Dir = dir
	m.cmd.Stdout, m.cmd.Stderr = m.logFile, m.logFile
	m.cmd.Env = append(cleanEnv(), env...)
	m.cmd.SysProcAttr = sysProcAttr()
	if err := m.cmd.Start(); err != nil {
		m.logFile.Close()
		return nil, fmt.Errorf("start medic: %w", err)
	}
	go func() {
		m.waitErr = m.cmd.Wait()
		close(m.exited)
	}()
	return m, nil
}

// command runs bin with args inside the cgroup c, or as it is when c is
// nil: a shell writes its own PID into the cgroup and then becomes bin, so
// bin's first allocation is already charged to the limit.
func (c *memCgroup) command(bin string, args ...string) *exec.Cmd {
	if c == nil {
		return exec.Command(bin, args...)
	}
	return exec.Command("/bin/sh", append([]string{"-c", `echo $$ > "$0" && exec "$@"`, c.procsFile(), bin}, args...)...)
}

// cleanEnv drops MEDIC_* variables so the caller's environment cannot change
// what is measured.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MEDIC_") {
			env = append(env, kv)
		}
	}
	return env
}

func (m *medicProc) pid() int { return m.cmd.Process.Pid }

// waitReady polls /readyz until it answers 200.
func (m *medicProc) waitReady(timeout time.Duration) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case <-m.exited:
			return fmt.Errorf("medic exited before it was ready (%v):\n%s", m.waitErr, m.logTail())
		default:
		}
		resp, err := client.Get(m.base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("medic not ready after %s:\n%s", timeout, m.logTail())
}

// stop sends SIGTERM and waits; SIGKILL after timeout.
func (m *medicProc) stop(timeout time.Duration) error {
	defer m.logFile.Close()
	select {
	case <-m.exited:
		return fmt.Errorf("medic had already exited (%v):\n%s", m.waitErr, m.logTail())
	default:
	}
	_ = m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.exited:
		if m.waitErr != nil {
			return fmt.Errorf("medic stopped with %v:\n%s", m.waitErr, m.logTail())
		}
		return nil
	case <-time.After(timeout):
		_ = m.cmd.Process.Kill()
		<-m.exited
		return fmt.Errorf("medic did not stop within %s of SIGTERM; killed", timeout)
	}
}

func (m *medicProc) running() bool {
	select {
	case <-m.exited:
		return false
	default:
		return true
	}
}

// logTail is the end of medic's output, for error messages.
func (m *medicProc) logTail() string {
	b, _ := os.ReadFile(m.logPath)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// logLines counts the warnings and errors medic logged so far.
func (m *medicProc) logLines() int {
	b, _ := os.ReadFile(m.logPath)
	return bytes.Count(b, []byte(" level=WARN ")) + bytes.Count(b, []byte(" level=ERROR "))
}

// procStatus reads the named kB fields of /proc/<pid>/status, in bytes.
// It returns zeros where /proc does not exist.
func procStatus(pid int, fields ...string) map[string]int64 {
	out := make(map[string]int64, len(fields))
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return out
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		for _, want := range fields {
			if name == want {
				kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
				out[name] = kb << 10
			}
		}
	}
	return out
}

func rss(pid int) int64 { return procStatus(pid, "VmRSS")["VmRSS"] }

// rssSampler records the peak and mean RSS of pid every interval until
// stopped.
type rssSampler struct {
	peak   atomic.Int64 // read while sampling (peakSoFar)
	sum, n int64
	cancel context.CancelFunc
	done   chan struct{}
}

func sampleRSS(pid int, every time.Duration) *rssSampler {
	ctx, cancel := context.WithCancel(context.Background())
	s := &rssSampler{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			if v := rss(pid); v > 0 {
				if v > s.peak.Load() {
					s.peak.Store(v) // only this goroutine writes it
				}
				s.sum += v
				s.n++
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return s
}

// stop ends sampling and returns the peak and mean.
func (s *rssSampler) stop() (peak, mean int64) {
	s.cancel()
	<-s.done
	if s.n > 0 {
		mean = s.sum / s.n
	}
	return s.peak.Load(), mean
}

// peakSoFar is the highest RSS sampled until now, while sampling goes on.
func (s *rssSampler) peakSoFar() int64 { return s.peak.Load() }

// goMemStats scrapes medic's /metrics for the Go runtime's memory figures,
// to tell the Go heap apart from the rest of the RSS.
func (m *medicProc) goMemStats() map[string]float64 {
	out := map[string]float64{}
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(m.base + "/metrics")
	if err != nil {
		return out
	}
	defer resp.Body.Close()
	want := map[string]bool{
		"go_memstats_heap_inuse_bytes": true, "go_memstats_heap_alloc_bytes": true,
		"go_memstats_heap_idle_bytes": true, "go_memstats_heap_released_bytes": true,
		"go_memstats_stack_inuse_bytes": true, "go_memstats_sys_bytes": true,
		"go_memstats_next_gc_bytes": true, "go_gc_duration_seconds_count": true,
		"go_goroutines": true, "go_gc_gomemlimit_bytes": true,
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), " ")
		if !ok || !want[name] {
			continue
		}
		if v, err := strconv.ParseFloat(val, 64); err == nil {
			out[name] = v
		}
	}
	return out
}

// probe does for d what a kubelet and Prometheus do to an idle pod, once a
// second: GET /readyz, /healthz and /metrics.
func (m *medicProc) probe(d time.Duration) {
	client := &http.Client{Timeout: 5 * time.Second}
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(time.Second) {
		for _, path := range []string{"/readyz", "/healthz", "/metrics"} {
			resp, err := client.Get(m.base + path)
			if err != nil {
				continue
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
}
