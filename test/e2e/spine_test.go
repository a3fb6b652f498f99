package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/medichq/medic/bus"
	"github.com/medichq/medic/event"
	"github.com/medichq/medic/test/realam"
)

// TestRealAlertmanagerFiringAndResolved: a real Alertmanager, configured
// with a bearer token, receives an alert on its API and its webhook reaches
// medic; the firing and then the resolved finding land in the file sink.
func TestRealAlertmanagerFiringAndResolved(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the real Alertmanager")
	}
	cfg := testConfig(t, t.TempDir())
	cfg.Webhook.BearerToken = "s3cret-token"
	m := startMedic(t, cfg)
	am := realam.Start(t, m.url+"/api/alerts", realam.WithBearerToken("s3cret-token"))

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	labels := map[string]string{"alertname": "KubePodCrashLooping", "namespace": "shop", "pod": "cart-7d9", "container": "app", "severity": "critical"}
	annotations := map[string]string{
		"summary":     "Pod shop/cart-7d9 is crash looping",
		"description": "Pod shop/cart-7d9 (app) is in waiting state (reason: CrashLoopBackOff).",
		"runbook_url": "https://runbooks.prometheus-operator.dev/runbooks/kubernetes/kubepodcrashlooping",
	}
	startsAt := time.Now().Add(-time.Minute).UTC().Truncate(time.Millisecond)
	if err := am.PostAlert(ctx, labels, annotations, startsAt, time.Time{}, "http://prometheus.local/graph?g0.expr=up"); err != nil {
		t.Fatal(err)
	}
	recs := waitFindings(t, m.findings, 45*time.Second, func(r []record) bool { return len(r) >= 1 })
	f := recs[0].Finding
	if f.Event.Status != event.StatusFiring || f.Event.Source != "alertmanager" {
		t.Fatalf("first finding: status %s source %s", f.Event.Status, f.Event.Source)
	}
	if f.Title != "Pod shop/cart-7d9 is crash looping" || f.Severity != event.SeverityCritical {
		t.Errorf("title %q severity %q", f.Title, f.Severity)
	}
	if f.Event.Subject != (event.Subject{Kind: "Pod", Namespace: "shop", Name: "cart-7d9", Container: "app"}) {
		t.Errorf("subject %+v", f.Event.Subject)
	}
	if !strings.HasPrefix(f.Event.ExternalURL, "http://") || f.Event.Fingerprint == "" {
		t.Errorf("alertmanager metadata missing: external URL %q fingerprint %q", f.Event.ExternalURL, f.Event.Fingerprint)
	}
	assertEnrichedWithLinks(t, f, "Runbook", "Graph", "Silence")

	// Resolve it: Alertmanager sends the resolved webhook, medic a resolved finding.
	if err := am.PostAlert(ctx, labels, annotations, startsAt, time.Now().Add(-time.Second), "http://prometheus.local/graph?g0.expr=up"); err != nil {
		t.Fatal(err)
	}
	recs = waitFindings(t, m.findings, 45*time.Second, func(r []record) bool {
		for _, x := range r {
			if x.Finding.Event.Status == event.StatusResolved {
				return true
			}
		}
		return false
	})
	var resolved event.Finding
	for _, x := range recs {
		if x.Finding.Event.Status == event.StatusResolved {
			resolved = x.Finding
		}
	}
	if resolved.Event.Fingerprint != f.Event.Fingerprint || resolved.ID == f.ID {
		t.Errorf("resolved finding: fingerprint %q (firing %q), id %q (firing %q)", resolved.Event.Fingerprint, f.Event.Fingerprint, resolved.ID, f.ID)
	}
	for id, n := range countByID(recs) {
		if n != 1 {
			t.Errorf("finding %s delivered %d times", id, n)
		}
	}
}

func assertEnrichedWithLinks(t *testing.T, f event.Finding, labels ...string) {
	t.Helper()
	have := map[string]bool{}
	for _, e := range f.Enrichments {
		for _, b := range e.Blocks {
			for _, l := range b.Links {
				have[l.Label] = true
			}
		}
	}
	for _, l := range labels {
		if !have[l] {
			t.Errorf("finding lacks a %q link; enrichments: %+v", l, f.Enrichments)
		}
	}
}

// TestSharedPayloadsAreAccepted posts every real webhook body of the
// fixtures and expects one finding per alert.
func TestSharedPayloadsAreAccepted(t *testing.T) {
	m := startMedic(t, testConfig(t, t.TempDir()))
	files := []string{
		"captured-alertmanager-v0.34.2__KubeNodeNotReady__firing.json",
		"captured-alertmanager-v0.34.2__KubePodCrashLooping__firing.json",
		"captured-alertmanager-v0.34.2__KubePodCrashLooping__resolved.json",
		"prom2teams__all_ok_multiple.json",
		"prom2teams__with_common_items.json",
		"prometheus-msteams__prom_post_request.json",
	}
	want := 0
	for _, name := range files {
		body := samplePayload(t, name)
		var msg struct {
			Alerts []json.RawMessage `json:"alerts"`
		}
		if err := json.Unmarshal(body, &msg); err != nil {
			t.Fatal(err)
		}
		status, answer := post(t, m.url+"/api/alerts", body, nil)
		if status != http.StatusOK {
			t.Fatalf("%s: status %d %v", name, status, answer)
		}
		if got := answer["accepted"].(float64) + answer["duplicates"].(float64); int(got) != len(msg.Alerts) {
			t.Errorf("%s: accepted+duplicates = %v, want %d", name, got, len(msg.Alerts))
		}
		want += int(answer["accepted"].(float64))
	}
	recs := waitFindings(t, m.findings, 20*time.Second, func(r []record) bool { return len(r) >= want })
	if len(recs) != want {
		t.Fatalf("%d findings, want %d", len(recs), want)
	}
	// The Robusta issue dumps are not webhook messages and must be refused.
	status, answer := post(t, m.url+"/api/alerts", samplePayload(t, "holmesgpt__11_KubePodCrashLooping__issue_data.json"), nil)
	if status != http.StatusBadRequest || answer["error"] == "" {
		t.Fatalf("non-webhook body: status %d %v", status, answer)
	}
}

// TestSameWebhookTwiceGivesOneFinding: Alertmanager retries a webhook whose
// answer it did not see; medic must not report the alert twice.
func TestSameWebhookTwiceGivesOneFinding(t *testing.T) {
	m := startMedic(t, testConfig(t, t.TempDir()))
	body := samplePayload(t, "captured-alertmanager-v0.34.2__KubePodCrashLooping__firing.json")
	for i, wantDup := range []float64{0, 1} {
		status, answer := post(t, m.url+"/api/alerts", body, nil)
		if status != http.StatusOK || answer["duplicates"] != wantDup {
			t.Fatalf("post %d: status %d answer %v", i+1, status, answer)
		}
	}
	// A different alert after the duplicate: once it is delivered, anything
	// the duplicate could have produced would be too (one worker, in order).
	marker := samplePayload(t, "captured-alertmanager-v0.34.2__KubeNodeNotReady__firing.json")
	if status, _ := post(t, m.url+"/api/alerts", marker, nil); status != http.StatusOK {
		t.Fatal("marker not accepted")
	}
	recs := waitFindings(t, m.findings, 20*time.Second, func(r []record) bool {
		for _, x := range r {
			if x.Finding.Event.Labels["alertname"] == "KubeNodeNotReady" {
				return true
			}
		}
		return false
	})
	if len(recs) != 2 {
		t.Fatalf("%d findings for one alert posted twice plus a marker, want 2", len(recs))
	}
}

// TestRejectedRequestsStoreNothing: bad input gets a clear answer and
// leaves the events stream untouched.
func TestRejectedRequestsStoreNothing(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.Webhook.BearerToken = "right"
	cfg.Webhook.MaxBodyBytes = 4096
	m := startMedic(t, cfg)
	auth := http.Header{"Authorization": {"Bearer right"}}
	valid := samplePayload(t, "captured-alertmanager-v0.34.2__KubePodCrashLooping__firing.json")
	big := bytes.Replace(valid, []byte(`"summary": "`), []byte(`"summary": "`+strings.Repeat("x", 8000)), 1)

	tests := []struct {
		name       string
		body       []byte
		header     http.Header
		wantStatus int
		wantError  string
	}{
		{"malformed JSON", []byte(`{"version":"4","alerts":[{"status":"firing",}]}`), auth, http.StatusBadRequest, "line 1"},
		{"not a webhook", []byte(`{"hello":"world"}`), auth, http.StatusBadRequest, "version"},
		{"wrong version", bytes.Replace(valid, []byte(`"version": "4"`), []byte(`"version": "3"`), 1), auth, http.StatusBadRequest, "version"},
		{"no alerts", []byte(`{"version":"4","status":"firing","alerts":[]}`), auth, http.StatusBadRequest, "alerts"},
		{"oversized", big, auth, http.StatusRequestEntityTooLarge, "4096"},
		{"no credentials", valid, nil, http.StatusUnauthorized, ""},
		{"wrong token", valid, http.Header{"Authorization": {"Bearer wrong"}}, http.StatusUnauthorized, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, answer := post(t, m.url+"/api/alerts", tt.body, tt.header)
			if status != tt.wantStatus {
				t.Fatalf("status %d, want %d (%v)", status, tt.wantStatus, answer)
			}
			if tt.wantError != "" {
				msg, _ := answer["error"].(string)
				if !strings.Contains(msg, tt.wantError) {
					t.Errorf("error %q does not mention %q", msg, tt.wantError)
				}
			}
		})
	}
	if n := streamMsgs(t, m, bus.EventsStream); n != 0 {
		t.Fatalf("rejected requests stored %d events", n)
	}
	// The valid body with the right token is stored: the checks above were
	// not passing for an unrelated reason.
	if status, answer := post(t, m.url+"/api/alerts", valid, auth); status != http.StatusOK {
		t.Fatalf("valid request: %d %v", status, answer)
	}
	if n := streamMsgs(t, m, bus.EventsStream); n != 1 {
		t.Fatalf("valid request stored %d events, want 1", n)
	}
}

func streamMsgs(t *testing.T, m *medic, stream string) uint64 {
	t.Helper()
	s, err := m.app.Bus().JetStream().Stream(context.Background(), stream)
	if err != nil {
		t.Fatal(err)
	}
	return s.CachedInfo().State.Msgs
}

// TestManualTriggerLooksLikeAnAlert: `medic trigger` builds the event a real
// Alertmanager would, so the same playbook matches both.
func TestManualTriggerLooksLikeAnAlert(t *testing.T) {
	dir := t.TempDir()
	pbDir := filepath.Join(dir, "playbooks")
	writePlaybook(t, pbDir, `
- name: shop-crashloop
  triggers:
    - on_prometheus_alert: {alert_name: KubePodCrashLooping, namespace_prefix: shop, pod_name_prefix: cart-}
  actions:
    - create_finding: {title: "{{ .Labels.pod }} crash loops in {{ .Labels.namespace }}"}
  stop: true
`)
	cfg := testConfig(t, dir)
	cfg.Playbooks.Dirs = []string{pbDir}
	m := startMedic(t, cfg)
	body := `{"trigger":"prometheus_alert","params":{"alert_name":"KubePodCrashLooping","namespace":"shop","pod_name":"cart-7d9"}}`
	status, answer := post(t, m.url+"/api/trigger", []byte(body), nil)
	if status != http.StatusOK {
		t.Fatalf("trigger: %d %v", status, answer)
	}
	recs := waitFindings(t, m.findings, 10*time.Second, func(r []record) bool { return len(r) == 1 })
	f := recs[0].Finding
	if f.Title != "cart-7d9 crash loops in shop" || strings.Join(f.Playbooks, ",") != "shop-crashloop" {
		t.Fatalf("manual alert was not handled like an alert: title %q playbooks %v", f.Title, f.Playbooks)
	}
	if f.Event.Kind != event.KindPrometheusAlert || f.Event.Labels["pod"] != "cart-7d9" {
		t.Errorf("event: kind %s labels %v", f.Event.Kind, f.Event.Labels)
	}
}

// TestBadPlaybookReloadKeepsTheLastGoodSet: an invalid change is refused with
// file:line, the old set keeps handling events, a fix is picked up.
func TestBadPlaybookReloadKeepsTheLastGoodSet(t *testing.T) {
	dir := t.TempDir()
	pbDir := filepath.Join(dir, "playbooks")
	good := "- name: v1\n  triggers: [on_prometheus_alert]\n  actions: [{create_finding: {title: from-v1}}]\n  stop: true\n"
	writePlaybook(t, pbDir, good)
	cfg := testConfig(t, dir)
	cfg.Playbooks.Dirs = []string{pbDir}
	m := startMedic(t, cfg)

	writePlaybook(t, pbDir, "- name: v2\n  triggers: [on_prometheus_alert]\n  actions: [{create_finding: {titel: from-v2}}]\n")
	status, answer := post(t, m.url+"/api/playbooks/reload", nil, nil)
	if status != http.StatusUnprocessableEntity {
		t.Fatalf("bad reload: status %d %v", status, answer)
	}
	if msg, _ := answer["error"].(string); !strings.Contains(msg, "pb.yaml:3: unknown parameter \"titel\"") {
		t.Errorf("reload error does not name file and line: %q", msg)
	}
	resp, err := http.Get(m.url + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/readyz is %d after a rejected reload; the last good set still runs", resp.StatusCode)
	}

	trigger := func(name string) {
		body := fmt.Sprintf(`{"trigger":"prometheus_alert","params":{"alert_name":%q}}`, name)
		if status, answer := post(t, m.url+"/api/trigger", []byte(body), nil); status != http.StatusOK {
			t.Fatalf("trigger: %d %v", status, answer)
		}
	}
	trigger("A")
	recs := waitFindings(t, m.findings, 10*time.Second, func(r []record) bool { return len(r) == 1 })
	if recs[0].Finding.Title != "from-v1" {
		t.Fatalf("event handled by %q, want the last good set", recs[0].Finding.Title)
	}

	writePlaybook(t, pbDir, strings.ReplaceAll(good, "v1", "v3"))
	if status, answer := post(t, m.url+"/api/playbooks/reload", nil, nil); status != http.StatusOK || answer["changed"] != true {
		t.Fatalf("fixed reload: %d %v", status, answer)
	}
	trigger("B")
	recs = waitFindings(t, m.findings, 10*time.Second, func(r []record) bool { return len(r) == 2 })
	if recs[1].Finding.Title != "from-v3" {
		t.Fatalf("event after the fix handled by %q", recs[1].Finding.Title)
	}
}

func writePlaybook(t *testing.T, dir, content string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "pb.yaml"), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
