package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/medichq/medic/internal/testkit"
	"github.com/medichq/medic/sinks/file/filetest"
)

// crashAlerts is an Alertmanager webhook with one firing
// KubePodCrashLooping alert per pod, all in namespace ns.
func crashAlerts(ns string, pods ...string) string {
	alerts := make([]string, len(pods))
	for i, p := range pods {
		alerts[i] = fmt.Sprintf(`{"status":"firing","labels":{"alertname":"KubePodCrashLooping","namespace":%q,"pod":%q},
"annotations":{},"startsAt":"2026-12-04T10:00:00Z","endsAt":"0001-01-01T00:00:00Z","fingerprint":"fp-%s-%s"}`, ns, p, ns, p)
	}
	return `{"version":"4","groupKey":"{}","status":"firing","receiver":"medic","groupLabels":{},"commonLabels":{},
"commonAnnotations":{},"externalURL":"http://alertmanager:9093","alerts":[` + strings.Join(alerts, ",") + `]}`
}

func postAlerts(t *testing.T, a *App, body string) (accepted, duplicates int) {
	t.Helper()
	resp, err := http.Post("http://"+a.Addr()+"/api/alerts", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("webhook: %s: %s", resp.Status, b)
	}
	var r struct{ Accepted, Duplicates int }
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("webhook answer %s: %v", b, err)
	}
	return r.Accepted, r.Duplicates
}

// TestAlertRateLimitThroughTheBus: 20 alerts of one alertname and namespace
// under on_prometheus_alert's rate_limit: 10m, through the webhook, the bus
// and the engine, give one finding in the file sink and 19 counted skips;
// after a restart the window still holds (the claims are in JetStream KV),
// and another namespace has its own.
func TestAlertRateLimitThroughTheBus(t *testing.T) {
	t.Setenv("KUBECONFIG", "")
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	cfg := kubeTestConfig(t) // the file sink, no cluster
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "limited.yaml"), []byte(`
- name: crashloop
  triggers:
    - on_prometheus_alert: {alert_name: KubePodCrashLooping, rate_limit: 10m}
  actions: [{create_finding: {}}]
`), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg.Playbooks.Dirs = []string{dir}
	cfg.Playbooks.Builtin = false
	path := filepath.Join(cfg.DataDir, "findings.jsonl")

	start := func() *App {
		t.Helper()
		a, err := New(context.Background(), cfg, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = a.Shutdown(context.Background()) }) // a second Shutdown is a no-op
		return a
	}
	stop := func(a *App) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := a.Shutdown(ctx); err != nil {
			t.Fatalf("shutdown: %v", err)
		}
	}
	// handled waits until the engine ran or skipped n events.
	handled := func(a *App, n float64) {
		t.Helper()
		testkit.Eventually(t, 30*time.Second, fmt.Sprintf("%v events handled", n), func() bool {
			return counter(t, a, "medic_playbook_runs_total", nil)+counter(t, a, "medic_trigger_rate_limited_total", nil) >= n
		})
	}

	pods := make([]string, 20)
	for i := range pods {
		pods[i] = fmt.Sprint("cart-", i)
	}
	a := start()
	if acc, dup := postAlerts(t, a, crashAlerts("shop", pods...)); acc != 20 || dup != 0 {
		t.Fatalf("accepted %d, duplicates %d; want 20, 0", acc, dup)
	}
	handled(a, 20)
	runs := counter(t, a, "medic_playbook_runs_total", nil)
	limited := counter(t, a, "medic_trigger_rate_limited_total", map[string]string{"trigger": "on_prometheus_alert"})
	if runs != 1 || limited != 19 {
		t.Fatalf("playbook runs %v, rate-limited %v; want 1 and 19", runs, limited)
	}
	stop(a)

	a = start()
	if acc, _ := postAlerts(t, a, crashAlerts("shop", "cart-after-restart")); acc != 1 {
		t.Fatalf("accepted %d after the restart, want 1", acc)
	}
	if acc, _ := postAlerts(t, a, crashAlerts("billing", "invoice-0")); acc != 1 {
		t.Fatalf("accepted %d in billing, want 1", acc)
	}
	handled(a, 2)
	if got := counter(t, a, "medic_trigger_rate_limited_total", nil); got != 1 {
		t.Errorf("after the restart: rate-limited %v, want 1 (the window survives the restart)", got)
	}
	stop(a)
	findings := map[string]int{} // by namespace
	ids := map[string]int{}
	for _, r := range filetest.Read(t, path) {
		findings[r.Finding.Event.Labels["namespace"]]++
		ids[r.Finding.ID]++
	}
	if want := map[string]int{"shop": 1, "billing": 1}; fmt.Sprint(findings) != fmt.Sprint(want) {
		t.Errorf("findings in the file sink by namespace %v, want %v", findings, want)
	}
	for id, n := range ids {
		if n > 1 {
			t.Errorf("finding %s delivered %d times", id, n)
		}
	}
}
