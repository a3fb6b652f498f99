package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/medichq/medic/internal/app"
	"github.com/medichq/medic/internal/testkit"
	"github.com/medichq/medic/sinks/file/filetest"
)

// TestBurstLargerThanStreamIsRefusedNotLost: a burst five times the size
// of the events stream, through the real webhook handler, embedded JetStream,
// engine and file sink. Every alert answered 200 yields exactly one finding;
// the rest are answered 503 with Retry-After. Then, as Alertmanager would,
// the refused requests are sent again until they are accepted: in the end
// every alert has exactly one finding.
func TestBurstLargerThanStreamIsRefusedNotLost(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	const maxBytes = 128 << 10
	cfg.Bus.MaxBytes = maxBytes
	// The engine yields to intake for up to a second, so the stream fills
	// while the burst lasts instead of being drained as it comes.
	cfg.Engine.IntakeYield = time.Second
	m := startMedic(t, cfg)

	// An alert's event is about 1 KiB on the stream: 5 × 128 KiB is about
	// 640 alerts; send 800 in 40 requests of 20.
	const requests, perRequest = 40, 20
	total := requests * perRequest
	type result struct {
		status     int
		retryAfter string
	}
	results := make([]result, requests)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for r := range requests {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			status, retryAfter := postAlerts(t, m.url+"/api/alerts", burst(perRequest, r*perRequest))
			results[r] = result{status, retryAfter}
		})
	}
	wg.Wait()

	var accepted []int // request indexes
	refused := 0
	for r, res := range results {
		switch res.status {
		case http.StatusOK:
			accepted = append(accepted, r)
		case http.StatusServiceUnavailable:
			refused++
			if res.retryAfter == "" {
				t.Errorf("request %d: 503 without Retry-After", r)
			}
		default:
			t.Fatalf("request %d: status %d", r, res.status)
		}
	}
	t.Logf("burst of %d alerts (%d requests) into a %d KiB stream: %d requests accepted, %d refused with 503",
		total, requests, maxBytes>>10, len(accepted), refused)
	if refused == 0 {
		t.Fatal("no request was refused: the burst did not fill the stream, so the test shows nothing")
	}

	// Every accepted alert yields a finding. Alerts of refused requests may
	// have been stored in part before the stream filled; those are findings
	// too, and the retry below is deduplicated.
	pods := func(recs []record) map[string]int {
		n := map[string]int{}
		for _, r := range recs {
			n[r.Finding.Event.Labels["pod"]]++
		}
		return n
	}
	want := map[string]bool{}
	for _, r := range accepted {
		for i := range perRequest {
			want[fmt.Sprintf("cart-%05d", r*perRequest+i)] = true
		}
	}
	recs := waitFindings(t, m.findings, 90*time.Second, func(recs []record) bool {
		got := pods(recs)
		for p := range want {
			if got[p] == 0 {
				return false
			}
		}
		return true
	})
	lost := 0
	for p := range want {
		if pods(recs)[p] == 0 {
			lost++
		}
	}
	t.Logf("first pass: %d alerts accepted, %d findings in the file, lost %d", len(want), len(recs), lost)

	// Alertmanager retries what it was refused.
	for r, res := range results {
		for attempt := 0; res.status != http.StatusOK; attempt++ {
			if attempt == 100 {
				t.Fatalf("request %d still refused after %d retries", r, attempt)
			}
			time.Sleep(100 * time.Millisecond)
			res.status, _ = postAlerts(t, m.url+"/api/alerts", burst(perRequest, r*perRequest))
		}
	}
	recs = waitFindings(t, m.findings, 90*time.Second, func(recs []record) bool { return len(pods(recs)) == total })
	time.Sleep(500 * time.Millisecond) // a late duplicate would land now
	recs = filetest.Read(t, m.findings)
	dups := 0
	for p, n := range pods(recs) {
		if n != 1 {
			dups++
			t.Errorf("alert %s has %d findings", p, n)
		}
	}
	t.Logf("after retries: %d alerts, %d findings, lost %d, duplicates %d", total, len(recs), total-len(pods(recs)), dups)
}

// postAlerts posts a webhook body and returns the status and Retry-After.
func postAlerts(t *testing.T, url string, body []byte) (int, string) {
	t.Helper()
	resp, err := http.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header.Get("Retry-After")
}

// TestSecondMedicOnTheSameDataDirIsRefused: a second medic on a data folder
// in use fails at start, naming the first, before it opens the JetStream
// store or the findings file; the first keeps working with its data intact.
func TestSecondMedicOnTheSameDataDirIsRefused(t *testing.T) {
	dir := t.TempDir()
	first := startMedic(t, testConfig(t, dir))
	if status, _ := post(t, first.url+"/api/alerts", burst(3, 0), nil); status != http.StatusOK {
		t.Fatalf("first medic: status %d", status)
	}
	waitFindings(t, first.findings, 30*time.Second, func(r []record) bool { return len(r) == 3 })

	second, err := app.New(context.Background(), testConfig(t, dir), slog.New(slog.DiscardHandler))
	if err == nil {
		_ = second.Shutdown(context.Background())
		t.Fatal("a second medic opened a data dir in use")
	}
	want := fmt.Sprintf("data dir %s is in use by medic pid %d (started ", dir, os.Getpid())
	if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "stop it or use another data dir") {
		t.Fatalf("error %q does not name the holder (%q)", err, want)
	}

	// The first one's store and findings file are untouched and in use.
	if status, _ := post(t, first.url+"/api/alerts", burst(2, 3), nil); status != http.StatusOK {
		t.Fatalf("first medic after the refused start: status %d", status)
	}
	recs := waitFindings(t, first.findings, 30*time.Second, func(r []record) bool { return len(r) == 5 })
	for id, n := range countByID(recs) {
		if n != 1 {
			t.Errorf("finding %s written %d times", id, n)
		}
	}
}

// TestKillMidBurstTwiceLosesNothing: the medic binary is SIGKILLed twice
// while a burst is being posted, with the default ack_wait (30 s). The
// sender retries, as Alertmanager does, whatever was not answered 200 (a
// refused connection, a 503). In the end every alert has exactly one finding,
// and the last restart drains well within ack_wait.
func TestKillMidBurstTwiceLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the medic binary")
	}
	bin := medicBinary(t)
	configPath, findings := processConfig(t, "warn", "")

	const requests, perRequest, senders = 60, 25, 4
	total := requests * perRequest
	var (
		mu       sync.Mutex
		cur      = startProcess(t, bin, configPath, testkit.FreeAddr(t))
		accepted int
		retries  int
	)
	url := func() string { mu.Lock(); defer mu.Unlock(); return cur.url }
	next := make(chan int)
	var wg sync.WaitGroup
	for range senders {
		wg.Go(func() {
			for r := range next {
				body := burst(perRequest, r*perRequest)
				for attempt := 0; ; attempt++ {
					if attempt == 600 {
						t.Errorf("request %d never accepted", r)
						return
					}
					resp, err := http.Post(url()+"/api/alerts", "application/json", bytes.NewReader(body))
					if err == nil {
						_, _ = io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						if resp.StatusCode == http.StatusOK {
							mu.Lock()
							accepted++
							mu.Unlock()
							break
						}
					}
					mu.Lock()
					retries++
					mu.Unlock()
					time.Sleep(50 * time.Millisecond)
				}
			}
		})
	}
	kill := func() {
		mu.Lock()
		p := cur
		mu.Unlock()
		if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = p.wait()
		// Lines, not records: the kill may have torn the last one, which
		// the file sink cuts off when it starts again.
		data, err := os.ReadFile(findings)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		inFile := bytes.Count(data, []byte("\n"))
		np := startProcess(t, bin, configPath, testkit.FreeAddr(t))
		mu.Lock()
		cur = np
		mu.Unlock()
		t.Logf("killed mid-burst with %d findings in the file; restarted", inFile)
	}
	var lastStart time.Time
	for r := range requests {
		if r == requests/3 || r == 2*requests/3 {
			kill()
			lastStart = time.Now()
		}
		next <- r
	}
	close(next)
	wg.Wait()

	recs := waitFindings(t, findings, 60*time.Second, func(r []record) bool { return len(countByID(r)) >= total })
	drained := time.Since(lastStart)
	// A marker after the burst: once it is written, redeliveries are behind us.
	if status, _ := post(t, url()+"/api/alerts", burst(1, total), nil); status != http.StatusOK {
		t.Fatal("marker not accepted")
	}
	recs = waitFindings(t, findings, 30*time.Second, func(r []record) bool { return len(countByID(r)) == total+1 })
	dups := 0
	for id, n := range countByID(recs) {
		if n != 1 {
			dups++
			t.Errorf("finding %s written %d times", id, n)
		}
	}
	lost := total + 1 - len(countByID(recs))
	t.Logf("%d alerts in %d requests, 2 kills: %d requests accepted after %d retries; findings %d, lost %d, duplicates %d; drained %s after the last restart (ack_wait 30s)",
		total, requests, accepted, retries, len(recs)-1, lost, dups, drained.Round(100*time.Millisecond))
	if lost != 0 || len(recs) != total+1 {
		t.Fatalf("%d lines for %d findings, lost %d", len(recs), total+1, lost)
	}
	if drained > 25*time.Second {
		t.Errorf("the last restart took %s to drain: the dead process's deliveries waited for ack_wait", drained)
	}
}
