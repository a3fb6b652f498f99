package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/medichq/medic/bus"
	"github.com/medichq/medic/internal/natstest"
	"github.com/medichq/medic/internal/testkit"
	"github.com/medichq/medic/sinks/file/filetest"
)

// readyz returns /readyz's status and body.
func readyz(t *testing.T, url string) (int, map[string]string) {
	t.Helper()
	resp, err := http.Get(url + "/readyz")
	if err != nil {
		t.Fatalf("GET /readyz: %v", err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var body map[string]string
	if err := json.Unmarshal(raw, &body); err != nil {
		t.Fatalf("/readyz answered %q: %v", raw, err)
	}
	return resp.StatusCode, body
}

// waitReady polls /readyz until it answers want, and returns how long
// that took.
func waitReady(t *testing.T, url string, want int) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		status, body := readyz(t, url)
		if status == want {
			return time.Since(start)
		}
		if time.Since(start) > 30*time.Second {
			t.Fatalf("/readyz still answers %d after 30s, want %d: %v", status, want, body)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// alertsByPod counts the findings of each pod label.
func alertsByPod(recs []record) map[string]int {
	n := map[string]int{}
	for _, r := range recs {
		n[r.Finding.Event.Labels["pod"]]++
	}
	return n
}

// lostAndDuplicated compares the findings in the file with the alerts
// answered 200 (burst pods cart-00000 …).
func lostAndDuplicated(recs []record, accepted map[string]bool) (lost, dups int) {
	byPod := alertsByPod(recs)
	for p := range accepted {
		if byPod[p] == 0 {
			lost++
		}
	}
	for _, n := range byPod {
		if n > 1 {
			dups += n - 1
		}
	}
	return lost, dups
}

func acceptBurst(accepted map[string]bool, n, offset int) {
	for i := range n {
		accepted[fmt.Sprintf("cart-%05d", offset+i)] = true
	}
}

// firstBurst posts 20 alerts, which medic must accept, and waits for their
// findings: the state before a fault. It returns the accepted alerts.
func firstBurst(t *testing.T, m *medic) map[string]bool {
	t.Helper()
	if status, _ := postAlerts(t, m.url+"/api/alerts", burst(20, 0)); status != http.StatusOK {
		t.Fatalf("first webhook: %d", status)
	}
	accepted := map[string]bool{}
	acceptBurst(accepted, 20, 0)
	waitFindings(t, m.findings, 30*time.Second, func(recs []record) bool { return len(alertsByPod(recs)) == 20 })
	return accepted
}

// exactlyOnce waits until every accepted alert has its finding, gives a
// late duplicate time to land, and fails t unless the file sink holds
// exactly one finding per accepted alert (lost 0, duplicates 0). The file
// is read strictly: a torn line fails too.
func exactlyOnce(t *testing.T, m *medic, accepted map[string]bool) {
	t.Helper()
	waitFindings(t, m.findings, 60*time.Second, func(recs []record) bool { return len(alertsByPod(recs)) == len(accepted) })
	time.Sleep(300 * time.Millisecond) // a late duplicate would land now
	recs := filetest.Read(t, m.findings)
	lost, dups := lostAndDuplicated(recs, accepted)
	t.Logf("accepted %d alerts, %d findings, lost %d, duplicates %d", len(accepted), len(recs), lost, dups)
	if lost != 0 || dups != 0 {
		t.Fatalf("lost %d, duplicated %d", lost, dups)
	}
}

// TestStorageExhaustedRecoversWithoutRestart fills the JetStream storage of
// medic's NATS server (its max_file_store) with another stream: medic
// answers webhooks 503 with Retry-After and /readyz 503 with the reason;
// once the space is freed it is ready again by itself, the refused webhooks
// sent again are accepted, and every alert answered 200 has exactly one
// finding on a whole line.
func TestStorageExhaustedRecoversWithoutRestart(t *testing.T) {
	t.Parallel()
	ns := natstest.Start(t, func(o *server.Options) { o.JetStreamMaxStore = 4 << 20 })
	cfg := testConfig(t, t.TempDir())
	cfg.Bus.URL = ns.URL()
	cfg.Bus.StoreDir = ""
	cfg.Bus.MaxBytes = -1 // no per-stream reservations: the server's limit is what fills
	cfg.Bus.PublishTimeout = time.Second
	m := startMedic(t, cfg)

	accepted := firstBurst(t, m)

	free := ns.Fill(context.Background())
	status, retryAfter := postAlerts(t, m.url+"/api/alerts", burst(20, 20))
	if status != http.StatusServiceUnavailable || retryAfter == "" {
		t.Fatalf("webhook with the store exhausted: %d (Retry-After %q), want 503 with Retry-After", status, retryAfter)
	}
	code, body := readyz(t, m.url)
	if code != http.StatusServiceUnavailable || !strings.Contains(body["bus"], "no_resources") {
		t.Fatalf("/readyz with the store exhausted: %d %v, want 503 naming no_resources", code, body)
	}
	t.Logf("store exhausted: webhook 503 Retry-After %s; /readyz 503: %s", retryAfter, body["bus"])

	if err := free(context.Background()); err != nil {
		t.Fatal(err)
	}
	took := waitReady(t, m.url, http.StatusOK)
	t.Logf("/readyz 200 again %s after the space was freed, without a restart", took.Round(time.Millisecond))
	// Alertmanager sends what was refused again.
	if status, _ := postAlerts(t, m.url+"/api/alerts", burst(20, 20)); status != http.StatusOK {
		t.Fatalf("webhook sent again after recovery: %d", status)
	}
	acceptBurst(accepted, 20, 20)
	exactlyOnce(t, m, accepted)
}

// TestWipedNATSRecoversWithoutRestart stops medic's NATS server, deletes its
// whole store and starts it again on the same port: medic re-creates its
// streams, consumers and key-value buckets, /readyz is 503 only meanwhile,
// and every alert answered 200 after the restart has exactly one finding.
func TestWipedNATSRecoversWithoutRestart(t *testing.T) {
	t.Parallel()
	ns := natstest.Start(t, nil)
	cfg := testConfig(t, t.TempDir())
	cfg.Bus.URL = ns.URL()
	cfg.Bus.StoreDir = ""
	cfg.Bus.PublishTimeout = time.Second
	m := startMedic(t, cfg)

	accepted := firstBurst(t, m)

	ns.Stop()
	waitReady(t, m.url, http.StatusServiceUnavailable)
	if err := os.RemoveAll(ns.StoreDir()); err != nil {
		t.Fatal(err)
	}
	restarted := time.Now()
	ns.Start()

	// Alertmanager sends each webhook until it is answered 200, starting at
	// once: before medic has noticed the server is back and put its streams
	// back, too.
	refused := 0
	for r := range 5 {
		offset := 20 + r*20
		for {
			status, _ := postAlerts(t, m.url+"/api/alerts", burst(20, offset))
			if status == http.StatusOK {
				break
			}
			if status != http.StatusServiceUnavailable || time.Since(restarted) > 30*time.Second {
				t.Fatalf("webhook %d after the restart: %d", r, status)
			}
			refused++
			time.Sleep(100 * time.Millisecond)
		}
		acceptBurst(accepted, 20, offset)
	}
	waitReady(t, m.url, http.StatusOK)
	t.Logf("all 5 webhooks answered 200 and /readyz 200 within %s of the wiped server starting", time.Since(restarted).Round(time.Millisecond))
	t.Logf("%d webhooks refused after the restart", refused)
	exactlyOnce(t, m, accepted)
	// The sink's delivery records and the streams are back on the new server.
	nc, err := nats.Connect(ns.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"MEDIC_EVENTS", "MEDIC_FINDINGS", "MEDIC_DEADLETTER", "KV_medic_deliveries"} {
		if _, err := js.Stream(context.Background(), s); err != nil {
			t.Errorf("stream %s on the restarted server: %v", s, err)
		}
	}
}

// TestDiskFullRecoversWithoutRestart puts medic's whole data folder (the
// embedded NATS store and the findings file) on a small tmpfs and fills the
// disk: webhooks are answered 503 and /readyz 503 meanwhile; once the space
// is freed medic recovers by itself (the healer restarts the stuck embedded
// server), the refused webhooks sent again are accepted, and every alert
// answered 200 has exactly one finding on a whole line.
func TestDiskFullRecoversWithoutRestart(t *testing.T) {
	dir := testkit.SmallDisk(t, "32m")
	cfg := testConfig(t, dir)
	cfg.Bus.MaxBytes = 1 << 20 // stream reservations must fit the small disk
	cfg.Bus.PublishTimeout = time.Second
	cfg.Bus.AckWait = 2 * time.Second
	m := startMedic(t, cfg)

	accepted := firstBurst(t, m)

	filler := filepath.Join(dir, "filler")
	testkit.FillDisk(t, filler, 0)
	// Alertmanager's webhooks while the disk is full.
	var refused []int
	for r := 1; r <= 5; r++ {
		status, _ := postAlerts(t, m.url+"/api/alerts", burst(20, r*20))
		switch status {
		case http.StatusOK:
			acceptBurst(accepted, 20, r*20)
		case http.StatusServiceUnavailable:
			refused = append(refused, r)
		default:
			t.Fatalf("webhook %d on a full disk: %d", r, status)
		}
	}
	if len(refused) == 0 {
		t.Fatal("no webhook was refused on a full disk: the test shows nothing")
	}
	code, body := readyz(t, m.url)
	if code != http.StatusServiceUnavailable {
		t.Fatalf("/readyz on a full disk: %d %v", code, body)
	}
	t.Logf("disk full: %d of 5 webhooks refused with 503; /readyz 503: %s", len(refused), body["bus"])

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	took := waitReady(t, m.url, http.StatusOK)
	t.Logf("/readyz 200 again %s after the space was freed, without a restart of medic", took.Round(time.Millisecond))
	for _, r := range refused {
		for attempt := 0; ; attempt++ {
			status, _ := postAlerts(t, m.url+"/api/alerts", burst(20, r*20))
			if status == http.StatusOK {
				break
			}
			if attempt == 100 {
				t.Fatalf("webhook %d still refused after recovery: %d", r, status)
			}
			time.Sleep(100 * time.Millisecond)
		}
		acceptBurst(accepted, 20, r*20)
	}
	// A finding whose writes failed bus.max_deliver times while the disk was
	// full is parked in the dead-letter stream once it stores again (never
	// dropped: a park that fails leaves it in its stream), and the operator
	// replays it, as `medic dlq replay --sink file` does.
	replayParked(t, m, "file")
	exactlyOnce(t, m, accepted)
}

// replayParked waits until the sink's consumer has nothing pending (every
// finding written or parked), then replays what was parked for the sink.
func replayParked(t *testing.T, m *medic, sink string) {
	t.Helper()
	ctx := context.Background()
	dl, err := m.app.Bus().DeadLetters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	dlqSinkSettled(t, m, sink)
	res, err := dl.ReplayMatching(ctx, bus.DeadLetterFilter{Sink: sink})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d findings for %s parked during the outage, replayed", res.Replayed, sink)
}
