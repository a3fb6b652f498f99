package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/medichq/medic/internal/testkit"
	"github.com/medichq/medic/sinks/file/filetest"
	"github.com/medichq/medic/test/toolbin"
)

// medicBinary is the medic binary the process-level tests share
// (toolbin.Medic: built once, the way the Dockerfile builds it).
func medicBinary(t *testing.T) string {
	t.Helper()
	return toolbin.Medic(t)
}

type process struct {
	cmd     *exec.Cmd
	out     *testkit.SyncBuffer // read while the process writes it
	url     string
	exited  chan struct{}
	waitErr error
}

// wait waits for the process to exit and returns its error.
func (p *process) wait() error {
	<-p.exited
	return p.waitErr
}

// processConfig writes the configuration of a medic process into a new
// temporary folder, its data_dir: no playbook folders, one file sink, log
// level level and extra (YAML) added. It returns the configuration's path
// and the findings file's.
func processConfig(t *testing.T, level, extra string) (configPath, findings string) {
	t.Helper()
	dir := t.TempDir()
	findings = filepath.Join(dir, "findings.jsonl")
	configPath = filepath.Join(dir, "medic.yaml")
	conf := fmt.Sprintf("data_dir: %q\nlog: {level: %s}\nplaybooks: {dirs: [], reload_interval: 0s}\n%s\nsinks:\n  - {name: file, type: file, path: %q}\n",
		dir, level, extra, findings)
	if err := os.WriteFile(configPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	return configPath, findings
}

func startProcess(t *testing.T, bin, configPath, addr string) *process {
	t.Helper()
	out := &testkit.SyncBuffer{}
	cmd := exec.Command(bin, "serve", "--config", configPath)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Env = append(os.Environ(), "MEDIC_HTTP_ADDR="+addr)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &process{cmd: cmd, out: out, url: "http://" + addr, exited: make(chan struct{})}
	go func() { p.waitErr = cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.exited
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(p.url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		select {
		case <-p.exited:
			t.Fatalf("medic exited before it was ready (%v):\n%s", p.waitErr, out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("medic did not become ready:\n%s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// burst builds one webhook message with n distinct firing alerts.
func burst(n, offset int) []byte {
	type alert struct {
		Status      string            `json:"status"`
		Labels      map[string]string `json:"labels"`
		Annotations map[string]string `json:"annotations"`
		StartsAt    time.Time         `json:"startsAt"`
		EndsAt      time.Time         `json:"endsAt"`
	}
	starts := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	alerts := make([]alert, n)
	for i := range alerts {
		alerts[i] = alert{
			Status:      "firing",
			Labels:      map[string]string{"alertname": "KubePodCrashLooping", "namespace": "shop", "pod": fmt.Sprintf("cart-%05d", offset+i), "severity": "critical"},
			Annotations: map[string]string{"summary": "crash looping"},
			StartsAt:    starts,
		}
	}
	body, _ := json.Marshal(map[string]any{"version": "4", "status": "firing", "receiver": "medic", "groupKey": "{}:{}", "alerts": alerts})
	return body
}

// TestKillAndRestartDeliversExactlyOnce: medic is killed (SIGKILL, no
// shutdown) right after it accepted a burst, before its sinks caught up; the
// next start delivers every finding, and none twice.
func TestKillAndRestartDeliversExactlyOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the medic binary")
	}
	bin := medicBinary(t)
	configPath, findings := processConfig(t, "warn", "bus: {ack_wait: 2s}")

	const requests, perRequest = 4, 250
	total := requests * perRequest
	first := startProcess(t, bin, configPath, testkit.FreeAddr(t))
	var wg sync.WaitGroup
	for r := range requests {
		wg.Go(func() {
			status, answer := post(t, first.url+"/api/alerts", burst(perRequest, r*perRequest), nil)
			if status != http.StatusOK || answer["accepted"] != float64(perRequest) {
				t.Errorf("burst %d: %d %v", r, status, answer)
			}
		})
	}
	wg.Wait()
	// Every alert is stored (200); now crash without any chance to clean up.
	if err := first.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = first.wait()
	// The kill may have torn the last line; the file sink cuts it on restart.
	atKill := len(filetest.ReadSoFar(t, findings))
	t.Logf("%d of %d findings were in the file when medic was killed", atKill, total)

	second := startProcess(t, bin, configPath, testkit.FreeAddr(t))
	recs := waitFindings(t, findings, 60*time.Second, func(r []record) bool { return len(countByID(r)) >= total })
	// A marker after the burst: when it is delivered, redeliveries of the
	// burst (one engine worker per consumer, in order) are behind us.
	if status, _ := post(t, second.url+"/api/alerts", burst(1, total), nil); status != http.StatusOK {
		t.Fatal("marker not accepted")
	}
	recs = waitFindings(t, findings, 30*time.Second, func(r []record) bool { return len(countByID(r)) == total+1 })
	for id, n := range countByID(recs) {
		if n != 1 {
			t.Errorf("finding %s delivered %d times", id, n)
		}
	}
	if len(recs) != total+1 {
		t.Fatalf("%d lines for %d findings", len(recs), total+1)
	}
	if err := second.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := second.wait(); err != nil {
		t.Errorf("graceful shutdown: %v\n%s", err, second.out.String())
	}
}
