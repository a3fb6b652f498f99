package app

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/medichq/medic/bus"
	"github.com/medichq/medic/interact"
	"github.com/medichq/medic/internal/testkit"
	"github.com/medichq/medic/pipeline"
	"github.com/medichq/medic/sinks"
)

// TestSilencedFindingsReachNoSink sends one webhook of 30 alerts through
// the bus: 10 Watchdogs (name_silencer), 10 info alerts
// (severity_silencer), 10 warnings. The warnings reach the webhook sink
// once each; the 20 silenced reach no sink, are not dead-lettered, are
// counted by playbook and silencer, logged at debug with their reason, and
// kept in the finding store for the finding page.
func TestSilencedFindingsReachNoSink(t *testing.T) {
	t.Parallel()
	recv := &keyCounter{n: map[string]int{}}
	srv := httptest.NewServer(recv)
	defer srv.Close()
	dir := t.TempDir()
	cfg := webhookConfig(t, dir, srv.URL)
	pbDir := filepath.Join(dir, "playbooks")
	if err := os.MkdirAll(pbDir, 0o755); err != nil {
		t.Fatal(err)
	}
	// User playbooks run before the built-in ones, which would deliver.
	if err := os.WriteFile(filepath.Join(pbDir, "silence.yaml"), []byte(`- name: noise
  triggers: [on_prometheus_alert]
  actions:
    - name_silencer: {names: [Watchdog, InfoInhibitor]}
    - severity_silencer: {severity: info}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg.Playbooks.Dirs = []string{pbDir}
	var logs testkit.SyncBuffer
	a := runAppLogger(t, cfg, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))

	type alert struct {
		Status      string            `json:"status"`
		Labels      map[string]string `json:"labels"`
		Annotations map[string]string `json:"annotations"`
		StartsAt    time.Time         `json:"startsAt"`
	}
	starts := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	var alerts []alert
	for i := range 10 {
		for _, l := range []map[string]string{
			{"alertname": "Watchdog", "severity": "none"},
			{"alertname": "CPUThrottlingHigh", "severity": "info", "namespace": "shop"},
			{"alertname": "KubePodNotReady", "severity": "warning", "namespace": "shop"},
		} {
			l["pod"] = fmt.Sprintf("cart-%d", i)
			alerts = append(alerts, alert{Status: "firing", Labels: l, Annotations: map[string]string{"summary": l["alertname"]}, StartsAt: starts})
		}
	}
	body, err := json.Marshal(map[string]any{"version": "4", "status": "firing", "receiver": "medic", "groupKey": "{}:{}", "alerts": alerts})
	if err != nil {
		t.Fatal(err)
	}
	if code, ans := post(t, "http://"+a.Addr()+"/api/alerts", body, nil); code != http.StatusOK {
		t.Fatalf("webhook: %d %v", code, ans)
	}

	ctx := context.Background()
	drained := func(stream, consumer string) bool {
		c, err := a.Bus().JetStream().Consumer(ctx, stream, consumer)
		if err != nil {
			return false
		}
		ci, err := c.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return ci.NumAckPending == 0 && ci.NumPending == 0 && ci.Delivered.Stream > 0
	}
	testkit.Eventually(t, 30*time.Second, "the engine and the sink to ack everything", func() bool {
		return drained(bus.EventsStream, "engine") && drained(bus.FindingsStream, "sink-hook") && len(recv.counts()) >= 10
	})

	got := recv.counts()
	var delivered, duplicates int
	for _, n := range got {
		delivered++
		duplicates += n - 1
	}
	events, findings, deadLetters := streamMsgs(t, a, bus.EventsStream), streamMsgs(t, a, bus.FindingsStream), streamMsgs(t, a, bus.DeadLetterStream)
	silencedTotal := silencedCount(t, a, "", "")
	t.Logf("accepted %d, delivered %d, silenced %v, duplicates %d, dead letters %d", events, delivered, silencedTotal, duplicates, deadLetters)
	if events != 30 || delivered != 10 || duplicates != 0 || findings != 10 || deadLetters != 0 {
		t.Fatalf("accepted %d (want 30), delivered %d (want 10), duplicates %d, findings published %d (want 10), dead letters %d",
			events, delivered, duplicates, findings, deadLetters)
	}
	if lost := int(events) - delivered - int(silencedTotal); lost != 0 {
		t.Errorf("lost %d: accepted %d = delivered %d + silenced %v does not hold", lost, events, delivered, silencedTotal)
	}
	for _, c := range []struct {
		silencer string
		want     float64
	}{{"name_silencer", 10}, {"severity_silencer", 10}} {
		if n := silencedCount(t, a, "noise", c.silencer); n != c.want {
			t.Errorf("medic_findings_silenced_total{playbook=noise,silencer=%s} = %v, want %v", c.silencer, n, c.want)
		}
	}

	// Kept for operators: every silenced finding is in the store behind the
	// finding page, saying who silenced it and why, and the log says so.
	kv, err := a.Bus().JetStream().KeyValue(ctx, interact.FindingsBucket)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := kv.Keys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	kept := map[string]int{}
	for _, k := range keys {
		f, err := a.chat.findings.Get(ctx, strings.TrimPrefix(k, "f."))
		if err != nil {
			t.Fatal(err)
		}
		if f.Silenced == nil {
			t.Errorf("finding %s (%s) stored without a silence", f.ID, f.Event.Labels["alertname"])
			continue
		}
		kept[f.Event.Labels["alertname"]+" by "+f.Silenced.By]++
		if got[sinks.IdempotencyKey("hook", f.ID)] != 0 {
			t.Errorf("silenced finding %s reached the sink", f.ID)
		}
		last := f.Enrichments[len(f.Enrichments)-1]
		if f.Silenced.Reason == "" || last.Source != pipeline.SilencedSource || !strings.Contains(last.Blocks[0].Markdown, f.Silenced.Reason) {
			t.Errorf("finding %s: silenced %+v, the page's last enrichment %+v", f.ID, f.Silenced, last)
		}
	}
	if kept["Watchdog by name_silencer in playbook noise"] != 10 || kept["CPUThrottlingHigh by severity_silencer in playbook noise"] != 10 || len(kept) != 2 {
		t.Errorf("kept silenced findings: %v", kept)
	}
	if n := strings.Count(logs.String(), `msg="finding silenced: delivered to no sink"`); n != 20 {
		t.Errorf("%d debug lines for silenced findings, want 20", n)
	}
}

// silencedCount sums medic_findings_silenced_total over the series of
// playbook and silencer ("" matches any).
func silencedCount(t *testing.T, a *App, playbook, silencer string) float64 {
	t.Helper()
	want := map[string]string{}
	if playbook != "" {
		want["playbook"] = playbook
	}
	if silencer != "" {
		want["silencer"] = silencer
	}
	return counter(t, a, "medic_findings_silenced_total", want)
}
