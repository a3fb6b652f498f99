package app

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/medichq/medic/bus"
	"github.com/medichq/medic/event/webhookevent"
	"github.com/medichq/medic/internal/testkit"
	"github.com/medichq/medic/sources/httpauth"
	"github.com/medichq/medic/sources/webhook"
)

// Generic webhook sources end to end: each preset's sample, posted with its
// source's credentials, becomes one finding through the bus and the
// playbooks; a retry is a duplicate; wrong credentials (401) and a body the
// mapping cannot take (422, naming the expression) store nothing.
func TestWebhookSourcesEndToEnd(t *testing.T) {
	cfg := kubeTestConfig(t)
	cfg.WebhookSources = []webhook.SourceConfig{
		{Name: "argocd", Preset: "argocd", Auth: webhook.AuthConfig{BearerToken: "argo-token"}},
		{Name: "flux", Preset: "flux", Auth: webhook.AuthConfig{HMACSecret: "flux-secret"}},
		{Name: "kubecost", Preset: "kubecost", Auth: webhook.AuthConfig{Username: "kubecost", Password: "pw"}},
		{Name: "ci", Mapping: map[string]string{"title": `"CI: " + body.pipeline`}, Auth: webhook.AuthConfig{BearerToken: "ci-token"}},
	}
	dir := t.TempDir()
	pb := "- name: gitops\n  triggers:\n    - on_webhook: {}\n  actions:\n    - default_enricher\n" +
		"- name: typo\n  triggers:\n    - on_webhook: {source: argo-cd}\n  actions:\n    - default_enricher\n"
	if err := os.WriteFile(filepath.Join(dir, "gitops.yaml"), []byte(pb), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.Playbooks.Dirs = []string{dir}
	cfg.Webhook.MaxBodyBytes = 64 << 10 // the sources share the intake's limits
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	log := &testkit.SyncBuffer{}
	a := runApp(t, cfg, log)
	if !strings.Contains(log.String(), "names a source webhook_sources does not declare") || !strings.Contains(log.String(), "source=argo-cd") {
		t.Errorf("no warning about the on_webhook of an undeclared source:\n%s", log.String())
	}
	sample := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join("..", "..", "sources", "webhook", "testdata", name+".json"))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	post := func(source string, body []byte, auth func(*http.Request)) (int, string) {
		req, err := http.NewRequest(http.MethodPost, "http://"+a.Addr()+"/api/webhooks/"+source, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		if auth != nil {
			auth(req)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(out)
	}
	bearer := func(tok string) func(*http.Request) {
		return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }
	}
	fluxBody := sample("flux")
	fluxSig := func(secret string) func(*http.Request) {
		return func(r *http.Request) {
			r.Header.Set("X-Signature", httpauth.HMAC{Secret: secret}.Sign(fluxBody))
		}
	}

	// Refusals first: nothing of them may reach the bus.
	refusals := []struct {
		name, source string
		body         []byte
		auth         func(*http.Request)
		code         int
		want         string
	}{
		{"no credentials", "argocd", sample("argocd"), nil, http.StatusUnauthorized, "credentials"},
		{"another source's token", "argocd", sample("argocd"), bearer("ci-token"), http.StatusUnauthorized, "credentials"},
		{"signature by another secret", "flux", fluxBody, fluxSig("guess"), http.StatusUnauthorized, "signature"},
		{"signature of another body", "flux", sample("argocd"), fluxSig("flux-secret"), http.StatusUnauthorized, "signature"},
		{"mapping cannot evaluate", "ci", []byte(`{"job": "build"}`), bearer("ci-token"), http.StatusUnprocessableEntity, `mapping.title (\"CI: \" + body.pipeline): no such key: pipeline`},
		{"over webhook.max_body_bytes", "ci", []byte(`{"pipeline": "` + strings.Repeat("x", 70<<10) + `"}`), bearer("ci-token"), http.StatusRequestEntityTooLarge, "webhook.max_body_bytes"},
		{"not JSON", "ci", []byte(`{"pipeline": `), bearer("ci-token"), http.StatusBadRequest, "malformed JSON"},
		{"unknown source", "jenkins", []byte(`{}`), bearer("ci-token"), http.StatusNotFound, "no webhook source"},
	}
	for _, tt := range refusals {
		code, body := post(tt.source, tt.body, tt.auth)
		if code != tt.code || !strings.Contains(body, tt.want) {
			t.Errorf("%s: %d %s; want %d containing %q", tt.name, code, body, tt.code, tt.want)
		}
	}
	if n := eventsStored(t, a); n != 0 {
		t.Fatalf("refused requests stored %d events", n)
	}

	accepted := []struct {
		source string
		body   []byte
		auth   func(*http.Request)
	}{
		{"argocd", sample("argocd"), bearer("argo-token")},
		{"flux", fluxBody, fluxSig("flux-secret")},
		{"kubecost", sample("kubecost"), func(r *http.Request) { r.SetBasicAuth("kubecost", "pw") }},
		{"ci", []byte(`{"pipeline": "release"}`), bearer("ci-token")},
	}
	dups := 0
	for round := range 2 { // the second round is the senders' retry
		for _, tt := range accepted {
			code, body := post(tt.source, tt.body, tt.auth)
			var res webhook.Response
			if code != http.StatusOK || json.Unmarshal([]byte(body), &res) != nil || res.ID == "" {
				t.Fatalf("%s (round %d): %d %s", tt.source, round, code, body)
			}
			if res.Duplicate {
				dups++
			}
		}
	}
	if dups != len(accepted) {
		t.Errorf("the retries were %d duplicates, want %d", dups, len(accepted))
	}
	findings := filepath.Join(cfg.DataDir, "findings.jsonl")
	testkit.Eventually(t, 20*time.Second, "one finding per source", func() bool {
		return len(readKubeFindings(t, findings)) >= len(accepted)
	})
	got := map[string]int{}
	for _, f := range readKubeFindings(t, findings) {
		got[f.Event.Source]++
	}
	stored := eventsStored(t, a)
	lost, duplicated := 0, 0
	for _, tt := range accepted {
		switch n := got[webhookevent.SourcePrefix+tt.source]; {
		case n == 0:
			lost++
		case n > 1:
			duplicated += n - 1
		}
	}
	t.Logf("webhook sources: accepted %d, stored %d, findings %v, lost %d, duplicates %d", len(accepted), stored, got, lost, duplicated)
	if stored != uint64(len(accepted)) || lost != 0 || duplicated != 0 {
		t.Fatalf("stored %d events, lost %d, duplicated %d; want %d, 0, 0", stored, lost, duplicated, len(accepted))
	}
}

func eventsStored(t *testing.T, a *App) uint64 {
	t.Helper()
	s, err := a.Bus().JetStream().Stream(context.Background(), bus.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}
