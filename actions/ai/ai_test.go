package ai_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/medichq/medic/actions"
	"github.com/medichq/medic/actions/ai"
	"github.com/medichq/medic/bus"
	"github.com/medichq/medic/event"
	"github.com/medichq/medic/knowledge"
	"github.com/medichq/medic/rag"
	"github.com/medichq/medic/rag/embedded"
	"github.com/medichq/medic/rag/kvcache"
	"github.com/medichq/medic/rag/llm"
	"github.com/medichq/medic/rag/ragtest"
)

var (
	kbOnce  sync.Once
	kbStore *embedded.Store
	kbErr   error
)

// defaultKB is the default runbooks in an embedded store, shared by the
// package's tests (read only).
func defaultKB(t *testing.T) *embedded.Store {
	t.Helper()
	kbOnce.Do(func() {
		dir, err := tempDir()
		if err != nil {
			kbErr = err
			return
		}
		if kbStore, kbErr = embedded.Open(embedded.Options{Dir: dir}); kbErr != nil {
			return
		}
		in := &rag.Ingester{Store: kbStore, URLFor: knowledge.RunbookURL}
		_, kbErr = in.Ingest(context.Background(), knowledge.Root, knowledge.Runbooks())
	})
	if kbErr != nil {
		t.Fatal(kbErr)
	}
	return kbStore
}

// registered is what these tests build from: package ai's actions, and
// package actions' own (the playbooks of the deferred test name
// template_enricher).
var registered = func() *actions.Registry {
	r := actions.NewRegistry()
	actions.Register(r)
	ai.Register(r)
	return r
}()

func build(t *testing.T, name, params string) actions.Action {
	t.Helper()
	var n yaml.Node
	if err := yaml.Unmarshal([]byte(params), &n); err != nil {
		t.Fatal(err)
	}
	a, err := registered.Build(name, n.Content[0])
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func crashLoop() *event.Finding {
	f := event.NewFinding(event.Event{
		ID: "ev1", Kind: event.KindPrometheusAlert, Status: event.StatusFiring, Severity: event.SeverityWarning,
		Title: "Pod shop/cart-7d9 (app) is restarting 3.1 times / 10 minutes.",
		Labels: map[string]string{"alertname": "KubePodCrashLooping", "namespace": "shop", "pod": "cart-7d9", "container": "app",
			"severity": "warning"},
		Annotations: map[string]string{
			"summary":     "Pod is crash looping.",
			"description": "Pod shop/cart-7d9 (app) is in waiting state (reason: CrashLoopBackOff).",
			"runbook_url": "https://runbooks.prometheus-operator.dev/runbooks/kubernetes/kubepodcrashlooping",
		},
		StartsAt: time.Unix(1700000000, 0), ReceivedAt: time.Now(),
	}, time.Now())
	f.Add(event.Enrichment{Title: "Logs", Source: "logs_enricher", Blocks: []event.Block{
		event.LogTextBlock("shop/cart-7d9 app (previous)", "starting\nERROR: connection to db refused\npanic: exit 1", false)}})
	return f
}

func findEnrichment(f *event.Finding, title string) *event.Enrichment {
	for i := range f.Enrichments {
		if f.Enrichments[i].Title == title {
			return &f.Enrichments[i]
		}
	}
	return nil
}

func text(e *event.Enrichment) string {
	var b strings.Builder
	for _, bl := range e.Blocks {
		b.WriteString(bl.Markdown)
		for _, l := range bl.Links {
			b.WriteString(l.Label + " " + l.URL + "\n")
		}
		if bl.Table != nil {
			for _, r := range bl.Table.Rows {
				b.WriteString(strings.Join(r, " | ") + "\n")
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}

func TestRunbookEnricher(t *testing.T) {
	t.Parallel()
	retr := &rag.Retriever{Store: defaultKB(t)}
	f := crashLoop()
	if err := build(t, "runbook_enricher", "{top_k: 3}").Run(context.Background(), &actions.Env{KB: retr}, f); err != nil {
		t.Fatal(err)
	}
	e := findEnrichment(f, "Runbooks")
	if e == nil || e.Source != "runbook_enricher" {
		t.Fatalf("enrichments %+v", f.Enrichments)
	}
	links := e.Blocks[0].Links
	if len(links) != 3 || links[0].URL != knowledge.RunbookURL("kubernetes/KubePodCrashLooping.md") ||
		!strings.Contains(links[0].Label, "linked by the alert") || strings.Contains(links[1].Label, "linked") {
		t.Errorf("links %+v", links)
	}
	table := e.Blocks[1].Table
	if table == nil || len(table.Rows) != 3 || table.Rows[0][0] != "kubernetes/KubePodCrashLooping.md" || table.Rows[0][2] == "" {
		t.Errorf("table %+v", table)
	}
	// Without a knowledge base the action says so and does not fail.
	g := crashLoop()
	if err := build(t, "runbook_enricher", "{}").Run(context.Background(), &actions.Env{}, g); err != nil {
		t.Fatal(err)
	}
	if e := findEnrichment(g, "Runbooks"); e == nil || !strings.Contains(e.Blocks[0].Markdown, "unavailable") {
		t.Errorf("without a KB: %+v", g.Enrichments)
	}
}

func TestParamsAreChecked(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ name, params, want string }{
		{"ask_ai", "{mode: later}", `mode: "later" is not auto or button`},
		{"ask_ai", "{mode: auto, max_tokens: -1}", "max_tokens"},
		{"ask_ai", "{modle: auto}", "modle"},
		{"runbook_enricher", "{top_k: 0}", "top_k"},
	} {
		var n yaml.Node
		_ = yaml.Unmarshal([]byte(c.params), &n)
		if _, err := registered.Build(c.name, n.Content[0]); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s %s: %v", c.name, c.params, err)
		}
	}
}

type fixture struct {
	srv *ragtest.Server
	env *actions.Env
	svc *rag.Service
}

// newFixture wires ask_ai to the OpenAI-compatible test server, the default
// runbooks and a JetStream KV answer cache.
func newFixture(t *testing.T, redactPatterns ...string) *fixture {
	t.Helper()
	srv := ragtest.New(t)
	client, err := llm.New(llm.Config{BaseURL: srv.BaseURL(), APIKey: "sk-test", ChatModel: "gpt-test",
		Timeout: 5 * time.Second, MaxRetries: 1, BackoffBase: time.Millisecond, BackoffMax: 2 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	b, err := bus.Open(context.Background(), bus.Config{
		StoreDir: t.TempDir(), Replicas: 1, DedupWindow: time.Minute, Retention: time.Hour, MaxBytes: 64 << 20,
		MaxDeliver: 3, Backoff: []time.Duration{time.Second}, AckWait: 2 * time.Second, PublishTimeout: 2 * time.Second, Compression: "s2",
	}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	cache, err := kvcache.New(context.Background(), b.JetStream(), kvcache.DefaultBucket, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	red, err := rag.NewRedactor(redactPatterns)
	if err != nil {
		t.Fatal(err)
	}
	retr := &rag.Retriever{Store: defaultKB(t), Redactor: red}
	svc := &rag.Service{Retriever: retr, Chat: client, Cache: cache, Redactor: red}
	return &fixture{srv: srv, svc: svc, env: &actions.Env{AI: svc, KB: retr, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}}
}

func TestAskAIAuto(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	f := crashLoop()
	if err := build(t, "ask_ai", "{mode: auto, max_tokens: 400}").Run(context.Background(), fx.env, f); err != nil {
		t.Fatal(err)
	}
	e := findEnrichment(f, rag.ExplanationTitle)
	if e == nil || e.Source != "ask_ai" {
		t.Fatalf("enrichments %+v", f.Enrichments)
	}
	got := text(e)
	for _, want := range []string{"## What is happening", "## Likely causes", "## What to check", "## How to fix",
		"[1] Kube Pod Crash Looping", knowledge.RunbookURL("kubernetes/KubePodCrashLooping.md"), "model gpt-test", "nothing redacted"} {
		if !strings.Contains(got, want) {
			t.Errorf("enrichment lacks %q:\n%s", want, got)
		}
	}
	reqs := fx.srv.Requests()
	if len(reqs) != 1 || reqs[0].Chat.MaxTokens != 400 {
		t.Fatalf("requests %+v", reqs)
	}
	user := reqs[0].Chat.Messages[1].Content
	for _, want := range []string{"alertname=KubePodCrashLooping", "ERROR: connection to db refused", "## Runbook excerpts", "[1] Kube Pod Crash Looping"} {
		if !strings.Contains(user, want) {
			t.Errorf("prompt lacks %q", want)
		}
	}
}

// TestAskAICacheHit: the same evidence again (another replica, a re-fired
// alert) is answered from the JetStream KV cache without a second call.
func TestAskAICacheHit(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	act := build(t, "ask_ai", "{mode: auto}")
	first, second := crashLoop(), crashLoop()
	second.ID, second.Event.ReceivedAt = "ev2", time.Now().Add(time.Hour) // another occurrence, same evidence
	for _, f := range []*event.Finding{first, second} {
		if err := act.Run(context.Background(), fx.env, f); err != nil {
			t.Fatal(err)
		}
	}
	if n := fx.srv.Count("/v1/chat/completions"); n != 1 {
		t.Fatalf("%d model calls for the same evidence, want 1", n)
	}
	a, b := text(findEnrichment(first, rag.ExplanationTitle)), text(findEnrichment(second, rag.ExplanationTitle))
	if strings.Contains(a, "cached answer") || !strings.Contains(b, "cached answer") {
		t.Errorf("first:\n%s\nsecond:\n%s", a, b)
	}
	// Different evidence is a new call.
	third := crashLoop()
	third.Event.Labels["pod"] = "cart-8x1"
	if err := act.Run(context.Background(), fx.env, third); err != nil {
		t.Fatal(err)
	}
	if n := fx.srv.Count("/v1/chat/completions"); n != 2 {
		t.Errorf("%d model calls after new evidence, want 2", n)
	}
}

// TestAskAIRedactsEverySecret: a finding whose logs and annotations are
// full of secrets; nothing of them reaches the model, and the answer says
// how many were removed.
func TestAskAIRedactsEverySecret(t *testing.T) {
	t.Parallel()
	fx := newFixture(t, ragtest.CustomPattern)
	fx.svc.TokenBudget = 20000 // keep the whole fixture in the prompt
	f := crashLoop()
	f.Event.Annotations["description"] = "Webhook failed with Authorization: Bearer " + ragtest.Secrets[0]
	f.Add(event.Enrichment{Title: "Logs", Source: "logs_enricher", Blocks: []event.Block{
		event.LogTextBlock("shop/cart-7d9 app", ragtest.SecretsLog, false)}})
	if err := build(t, "ask_ai", "{mode: auto}").Run(context.Background(), fx.env, f); err != nil {
		t.Fatal(err)
	}
	sent := fx.srv.AllBodies()
	if !strings.Contains(sent, "panic: runtime error") {
		t.Fatal("the logs did not reach the prompt")
	}
	for _, s := range ragtest.Secrets {
		if strings.Contains(sent, s) {
			t.Errorf("secret sent to the model: %q", s)
		}
	}
	got := text(findEnrichment(f, rag.ExplanationTitle))
	// The description's bearer token is one more.
	want := len(ragtest.Secrets) + 1
	if !strings.Contains(got, strings.TrimSpace(strings.Split(rag.Redaction{"x": want}.String(), "(")[0])) {
		t.Errorf("enrichment does not say %d secrets were redacted:\n%s", want, got)
	}
}

// TestAskAIOutage: the model keeps failing; after the retries the finding
// still carries a clean "AI unavailable" enrichment and the action does not
// fail.
func TestAskAIOutage(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	fx.srv.SetDown(http.StatusInternalServerError)
	f := crashLoop()
	if err := build(t, "ask_ai", "{mode: auto}").Run(context.Background(), fx.env, f); err != nil {
		t.Fatalf("the action failed: %v", err)
	}
	e := findEnrichment(f, rag.ExplanationTitle)
	if e == nil {
		t.Fatalf("enrichments %+v", f.Enrichments)
	}
	if got := e.Blocks[0].Markdown; !strings.HasPrefix(got, "AI unavailable: chat: HTTP 500") || !strings.Contains(got, "after 2 attempts") {
		t.Errorf("enrichment %q", got)
	}
	if n := fx.srv.Count("/v1/chat/completions"); n != 2 {
		t.Errorf("%d attempts, want 1 + 1 retry", n)
	}
	// Rate limited, then back: the retry answers.
	fx.srv.SetDown(0)
	fx.srv.FailNext(http.StatusTooManyRequests)
	g := crashLoop()
	g.Event.Labels["pod"] = "other"
	_ = build(t, "ask_ai", "{mode: auto}").Run(context.Background(), fx.env, g)
	if got := text(findEnrichment(g, rag.ExplanationTitle)); !strings.Contains(got, "What is happening") {
		t.Errorf("after a 429: %s", got)
	}
}

func TestAskAINotConfigured(t *testing.T) {
	t.Parallel()
	for _, env := range []*actions.Env{{}, {AI: &rag.Service{Retriever: &rag.Retriever{Store: defaultKB(t)}}}} {
		f := crashLoop()
		if err := build(t, "ask_ai", "{}").Run(context.Background(), env, f); err != nil {
			t.Fatal(err)
		}
		e := findEnrichment(f, rag.ExplanationTitle)
		if e == nil || !strings.HasPrefix(e.Blocks[0].Markdown, "AI is not configured") {
			t.Errorf("enrichments %+v", f.Enrichments)
		}
	}
}

func TestAskAIButton(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	f := crashLoop()
	if err := build(t, "ask_ai", "{mode: button, model: gpt-big, max_tokens: 300}").Run(context.Background(), fx.env, f); err != nil {
		t.Fatal(err)
	}
	if f.AskAI == nil || f.AskAI.Model != "gpt-big" || f.AskAI.MaxTokens != 300 {
		t.Errorf("AskAI %+v", f.AskAI)
	}
	if findEnrichment(f, rag.ExplanationTitle) != nil || len(fx.srv.Requests()) != 0 {
		t.Error("button mode asked the model")
	}
	// What the button does later: the same answer function.
	ans, err := fx.env.AI.Answer(context.Background(), rag.Request{Finding: f, Model: f.AskAI.Model, MaxTokens: f.AskAI.MaxTokens})
	if err != nil || ans.Model != "gpt-big" || fx.srv.Requests()[0].Chat.Model != "gpt-big" {
		t.Errorf("button answer %+v %v", ans, err)
	}
}

var tmpDirs []string

func tempDir() (string, error) {
	d, err := os.MkdirTemp("", "medic-ai-test-")
	if err == nil {
		tmpDirs = append(tmpDirs, d)
	}
	return d, err
}

func TestMain(m *testing.M) {
	code := m.Run()
	if kbStore != nil {
		_ = kbStore.Close()
	}
	for _, d := range tmpDirs {
		_ = os.RemoveAll(d)
	}
	os.Exit(code)
}
