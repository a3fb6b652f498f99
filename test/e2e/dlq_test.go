package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.yaml.in/yaml/v3"

	"github.com/medichq/medic/bus"
	"github.com/medichq/medic/internal/app"
	"github.com/medichq/medic/internal/testkit"
	"github.com/medichq/medic/sinks"
)

// dlqReceiver is a webhook sink's receiver that answers 500 while broken and
// counts the requests it accepted by Idempotency-Key.
type dlqReceiver struct {
	broken   atomic.Bool
	refused  atomic.Int32
	mu       sync.Mutex
	accepted map[string]int
}

func (rc *dlqReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	if rc.broken.Load() {
		rc.refused.Add(1)
		http.Error(w, "receiver is down", http.StatusInternalServerError)
		return
	}
	rc.mu.Lock()
	rc.accepted[r.Header.Get("Idempotency-Key")]++
	rc.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (rc *dlqReceiver) counts() map[string]int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	out := make(map[string]int, len(rc.accepted))
	for k, n := range rc.accepted {
		out[k] = n
	}
	return out
}

// TestDeadLettersReplayedAfterTheReceiverIsFixed: a webhook receiver
// answers 500 to every attempt, so medic dead-letters its findings; the
// on-call person lists them, fixes the receiver and replays them through
// the API: each finding reaches the receiver exactly once and the dead
// letters are gone. Replaying again, twice at once, or re-publishing a
// replayed finding delivers nothing more.
func TestDeadLettersReplayedAfterTheReceiverIsFixed(t *testing.T) {
	rc := &dlqReceiver{accepted: map[string]int{}}
	rc.broken.Store(true)
	srv := httptest.NewServer(rc)
	defer srv.Close()

	cfg := testConfig(t, t.TempDir())
	const token = "dlq-token"
	cfg.Webhook.BearerToken = token
	cfg.Bus.MaxDeliver = 2
	if err := yaml.Unmarshal(fmt.Appendf(nil, "- {name: hook, type: webhook, url: %q}\n", srv.URL), &cfg.Sinks); err != nil {
		t.Fatal(err)
	}
	m := startMedic(t, cfg)
	auth := http.Header{"Authorization": {"Bearer " + token}}

	const alerts = 5
	if status, answer := post(t, m.url+"/api/alerts", burst(alerts, 0), auth); status != http.StatusOK {
		t.Fatalf("alerts: %d %v", status, answer)
	}

	// Every finding is dead-lettered after MaxDeliver refused attempts.
	var list app.DLQList
	deadline := time.Now().Add(30 * time.Second)
	for len(list.DeadLetters) < alerts {
		if time.Now().After(deadline) {
			t.Fatalf("%d dead letters after 30s, want %d (receiver refused %d requests)", len(list.DeadLetters), alerts, rc.refused.Load())
		}
		time.Sleep(50 * time.Millisecond)
		if status := dlqCall(t, http.MethodGet, m.url+"/api/dlq?sink=hook", auth, &list); status != http.StatusOK {
			t.Fatalf("GET /api/dlq: %d", status)
		}
	}
	if held := dlqMetric(t, m, "medic_dead_letters_held", "consumer", "sink-hook"); held != alerts {
		t.Errorf("medic_dead_letters_held{consumer=sink-hook} = %v, want %d", held, alerts)
	}
	findings := map[string]bool{}
	for _, d := range list.DeadLetters {
		if d.Consumer != "sink-hook" || d.Sink != "hook" || d.Deliveries != cfg.Bus.MaxDeliver || d.FindingID == "" {
			t.Errorf("dead letter %+v", d)
		}
		findings[d.FindingID] = true
	}
	if len(findings) != alerts {
		t.Fatalf("dead letters for %d findings, want %d", len(findings), alerts)
	}
	var detail app.DLQDetail
	if status := dlqCall(t, http.MethodGet, fmt.Sprintf("%s/api/dlq/%d", m.url, list.DeadLetters[0].Seq), auth, &detail); status != http.StatusOK {
		t.Fatalf("GET /api/dlq/%d: %d", list.DeadLetters[0].Seq, status)
	}
	if len(detail.Payload) == 0 || detail.Reason == "" || detail.Header.Get(bus.HeaderFindingID) != detail.FindingID {
		t.Fatalf("dead letter detail without payload, reason or finding header: %+v", detail)
	}
	// Nothing happens without the token.
	if status := dlqCall(t, http.MethodPost, m.url+"/api/dlq/replay?sink=hook", nil, nil); status != http.StatusUnauthorized {
		t.Fatalf("replay without a token: %d, want 401", status)
	}

	// Fixed: replay by filter, twice at once. Each dead letter is replayed
	// by one of them or both, and stored once either way.
	rc.broken.Store(false)
	var wg sync.WaitGroup
	results := make([]bus.ReplayResult, 2)
	for i := range results {
		wg.Go(func() {
			if status := dlqCall(t, http.MethodPost, m.url+"/api/dlq/replay?sink=hook", auth, &results[i]); status != http.StatusOK {
				t.Errorf("replay %d: %d", i, status)
			}
		})
	}
	wg.Wait()
	replayed := map[uint64]bool{}
	for _, r := range results {
		for _, seq := range r.Seqs {
			replayed[seq] = true
		}
	}
	if len(replayed) != alerts {
		t.Fatalf("replays %+v cover %d dead letters, want %d", results, len(replayed), alerts)
	}
	dlqSinkSettled(t, m, "hook")
	if status := dlqCall(t, http.MethodGet, m.url+"/api/dlq", auth, &list); status != http.StatusOK || len(list.DeadLetters) != 0 {
		t.Fatalf("after the replay: %d, %d dead letters left", status, len(list.DeadLetters))
	}

	if held := dlqMetric(t, m, "medic_dead_letters_held", "consumer", "sink-hook"); held != 0 {
		t.Errorf("medic_dead_letters_held{consumer=sink-hook} = %v after the replay, want 0", held)
	}

	// Replaying again finds nothing; a finding published once more (as a
	// replay after the dedup window would) is skipped by its delivery record.
	var again bus.ReplayResult
	if status := dlqCall(t, http.MethodPost, m.url+"/api/dlq/replay?all=true", auth, &again); status != http.StatusOK || again.Replayed != 0 {
		t.Fatalf("second replay: %d %+v", status, again)
	}
	msg := &nats.Msg{Subject: bus.FindingSubject("hook"), Data: detail.Payload, Header: nats.Header{bus.HeaderFindingID: {detail.FindingID}}}
	if _, err := m.app.Bus().JetStream().PublishMsg(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	// Waited for by its effect: right after the publish, the consumer's
	// counts can read zero before the message is handed out, so "settled"
	// alone was read too early (the test failed when run by itself).
	testkit.Eventually(t, 10*time.Second, "medic_sink_redeliveries_skipped_total{sink=hook} = 1", func() bool {
		return dlqMetric(t, m, "medic_sink_redeliveries_skipped_total", "sink", "hook") == 1
	})
	dlqSinkSettled(t, m, "hook")

	got := rc.counts()
	lost, dups := 0, 0
	for id := range findings {
		n := got[sinks.IdempotencyKey("hook", id)]
		if n == 0 {
			lost++
		}
		dups += max(n-1, 0)
	}
	t.Logf("%d findings dead-lettered after %d refused attempts, replayed twice at once, once more, and republished: accepted %d, lost %d, duplicates %d",
		alerts, rc.refused.Load(), len(got), lost, dups)
	if lost != 0 || dups != 0 || len(got) != alerts {
		t.Fatalf("receiver accepted %v; lost %d, duplicates %d", got, lost, dups)
	}
	if dead := dlqMetric(t, m, "medic_dead_letters_total", "consumer", "sink-hook"); dead != alerts {
		t.Errorf("medic_dead_letters_total{consumer=sink-hook} = %v, want %d", dead, alerts)
	}
}

// dlqSinkSettled waits until sink's consumer has acknowledged everything.
func dlqSinkSettled(t *testing.T, m *medic, sink string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := m.app.Bus().JetStream().Consumer(context.Background(), bus.FindingsStream, "sink-"+sink)
		if err != nil {
			t.Fatal(err)
		}
		if ci := c.CachedInfo(); ci.NumPending == 0 && ci.NumAckPending == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("sink %s has not caught up within 30s", sink)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// dlqMetric is the value of the counter or gauge name{label=value} in
// medic's registry, 0 when it has no such series.
func dlqMetric(t *testing.T, m *medic, name, label, value string) float64 {
	t.Helper()
	families, err := m.app.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, mt := range f.GetMetric() {
			for _, lp := range mt.GetLabel() {
				if lp.GetName() == label && lp.GetValue() == value {
					if g := mt.GetGauge(); g != nil {
						return g.GetValue()
					}
					return mt.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// dlqCall sends a request with header to url and decodes the JSON answer into
// out (when not nil); it returns the status.
func dlqCall(t *testing.T, method, url string, header http.Header, out any) int {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: answer is not JSON: %v %q", method, url, err, raw)
		}
	}
	return resp.StatusCode
}
