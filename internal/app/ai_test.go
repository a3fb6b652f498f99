package app

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/medichq/medic/config"
	"github.com/medichq/medic/event"
	"github.com/medichq/medic/rag"
	"github.com/medichq/medic/rag/ragtest"
	"github.com/medichq/medic/sinks/file/filetest"
)

const aiPlaybook = `- name: crash-ai
  triggers:
    - on_prometheus_alert: {alert_name: KubePodCrashLooping}
  actions:
    - create_finding: {title: "{{ .Labels.pod }} is crash looping"}
    - runbook_enricher: {top_k: 2}
    - ask_ai: {mode: auto}
`

func aiConfig(t *testing.T, srv *ragtest.Server) config.Config {
	t.Helper()
	dir := t.TempDir()
	pb := filepath.Join(dir, "playbooks")
	if err := os.MkdirAll(pb, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(pb, "ai.yaml"), []byte(aiPlaybook), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.DataDir = dir
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.Bus.StoreDir = filepath.Join(dir, "jetstream")
	cfg.Playbooks.Dirs = []string{pb}
	cfg.Playbooks.ReloadInterval = 0
	specs, err := config.DefaultSinks(dir)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Sinks = specs[1:] // the file sink
	if srv != nil {
		cfg.AI.BaseURL = srv.BaseURL()
		cfg.AI.ChatModel = "gpt-test"
		cfg.AI.MaxRetries = 1
		cfg.AI.Timeout = 5 * time.Second
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func startApp(t *testing.T, cfg config.Config) *App {
	t.Helper()
	ctx := context.Background()
	a, err := New(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		_ = a.Shutdown(sctx)
	})
	return a
}

func postCrashLoop(t *testing.T, a *App) {
	t.Helper()
	body := `{"version":"4","groupKey":"{}:{alertname=\"KubePodCrashLooping\"}","status":"firing","receiver":"medic",
"groupLabels":{"alertname":"KubePodCrashLooping"},"commonLabels":{},"commonAnnotations":{},"externalURL":"http://alertmanager:9093","truncatedAlerts":0,
"alerts":[{"status":"firing","labels":{"alertname":"KubePodCrashLooping","namespace":"shop","pod":"cart-7d9","severity":"warning"},
"annotations":{"summary":"Pod is crash looping.","description":"Pod shop/cart-7d9 is in waiting state (reason: CrashLoopBackOff).",
"runbook_url":"https://runbooks.prometheus-operator.dev/runbooks/kubernetes/kubepodcrashlooping"},
"startsAt":"2024-05-01T10:00:00Z","endsAt":"0001-01-01T00:00:00Z","generatorURL":"http://prometheus/graph","fingerprint":"1a2b3c"}]}`
	resp, err := http.Post("http://"+a.Addr()+"/api/alerts", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("webhook: %s", resp.Status)
	}
}

func waitFinding(t *testing.T, cfg config.Config) event.Finding {
	t.Helper()
	path := filepath.Join(cfg.DataDir, "findings.jsonl")
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if fs := filetest.FindingsSoFar(t, path); len(fs) > 0 {
			return fs[0]
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("no finding delivered within 30s")
	return event.Finding{}
}

func enrichmentText(f event.Finding, title string) string {
	for _, e := range f.Enrichments {
		if e.Title == title {
			var b strings.Builder
			for _, bl := range e.Blocks {
				b.WriteString(bl.Markdown)
				for _, l := range bl.Links {
					b.WriteString(l.Label + " " + l.URL + "\n")
				}
			}
			return b.String()
		}
	}
	return ""
}

// TestModelOutageStillDeliversTheFinding: the model answers 500 to every
// request; the alert's finding is delivered all the same, with its runbook
// and an AI part that says it is unavailable and why.
func TestModelOutageStillDeliversTheFinding(t *testing.T) {
	srv := ragtest.New(t)
	srv.SetDown(http.StatusInternalServerError)
	cfg := aiConfig(t, srv)
	a := startApp(t, cfg)
	postCrashLoop(t, a)
	f := waitFinding(t, cfg)
	if f.Title != "cart-7d9 is crash looping" {
		t.Errorf("title %q", f.Title)
	}
	if got := enrichmentText(f, "Runbooks"); !strings.Contains(got, "runbooks.prometheus-operator.dev/runbooks/kubernetes/kubepodcrashlooping") {
		t.Errorf("runbooks: %q", got)
	}
	got := enrichmentText(f, rag.ExplanationTitle)
	if !strings.HasPrefix(got, "AI unavailable: chat: HTTP 500") {
		t.Errorf("AI part: %q", got)
	}
	if n := srv.Count("/v1/chat/completions"); n != 2 {
		t.Errorf("%d model calls, want 1 + 1 retry", n)
	}
}

// TestAIWorksEndToEnd: with the model up, the delivered finding carries the
// explanation with its citations; the default runbooks were ingested into
// the empty knowledge base at start.
func TestAIWorksEndToEnd(t *testing.T) {
	srv := ragtest.New(t)
	cfg := aiConfig(t, srv)
	a := startApp(t, cfg)
	srcs, err := a.kb.Store.Sources(context.Background())
	if err != nil || len(srcs) != 108 {
		t.Fatalf("%d sources at start (%v)", len(srcs), err)
	}
	postCrashLoop(t, a)
	f := waitFinding(t, cfg)
	got := enrichmentText(f, rag.ExplanationTitle)
	for _, want := range []string{"## What is happening", "[1] Kube Pod Crash Looping", "model gpt-test"} {
		if !strings.Contains(got, want) {
			t.Errorf("explanation lacks %q:\n%s", want, got)
		}
	}
}

// TestAINotConfigured: no model, everything else works.
func TestAINotConfigured(t *testing.T) {
	cfg := aiConfig(t, nil)
	a := startApp(t, cfg)
	postCrashLoop(t, a)
	f := waitFinding(t, cfg)
	if got := enrichmentText(f, rag.ExplanationTitle); !strings.HasPrefix(got, "AI is not configured") {
		t.Errorf("AI part: %q", got)
	}
	if got := enrichmentText(f, "Runbooks"); !strings.Contains(got, "kubepodcrashlooping") {
		t.Errorf("runbooks: %q", got)
	}
}
