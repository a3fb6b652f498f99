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
	"testing"
	"time"

	"github.com/medichq/medic/internal/app"
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
	recs = readFindings(t, m.findings)
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
