package ai_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/medichq/medic/actions"
	"github.com/medichq/medic/event"
	"github.com/medichq/medic/playbooks"
	"github.com/medichq/medic/rag"
	"github.com/medichq/medic/triggers"
	promtrig "github.com/medichq/medic/triggers/prometheus"
)

// seeing records what the answer function was shown.
type seeing struct{ titles []string }

func (s *seeing) Answer(_ context.Context, req rag.Request) (rag.Answer, error) {
	for _, e := range req.Finding.Enrichments {
		s.titles = append(s.titles, e.Title)
	}
	return rag.Answer{Text: "explained", Model: "m"}, nil
}

// TestAskAIAutoRunsAfterAllEvidence: ask_ai in mode auto comes first in the
// YAML (as in the README's example), yet it runs after every other action
// of every matching playbook, so the model sees the evidence; a second
// ask_ai (a built-in playbook's) adds no second answer.
func TestAskAIAutoRunsAfterAllEvidence(t *testing.T) {
	t.Parallel()
	files := []playbooks.File{{Path: "user.yaml", Data: []byte(`
- name: user
  triggers: [{on_prometheus_alert: {alert_name: KubePodCrashLooping}}]
  actions:
    - ask_ai: {mode: auto}
    - template_enricher: {title: Logs, template: "panic: nil map"}
- name: later
  triggers: [{on_prometheus_alert: {}}]
  actions:
    - template_enricher: {title: Events, template: "BackOff"}
    - ask_ai: {mode: auto}
`)}}
	opts := playbooks.Options{Plugins: playbooks.Plugins{Triggers: triggers.NewRegistry(promtrig.Register), Actions: registered}}
	set, err := playbooks.Build(files, opts)
	if err != nil {
		t.Fatal(err)
	}
	store, err := playbooks.NewStore(func(context.Context) ([]playbooks.File, error) { return files, nil }, opts,
		slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	ai := &seeing{}
	eng, err := playbooks.NewEngine(store, &actions.Env{AI: ai}, time.Second, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	ev := &event.Event{ID: "e1", Kind: event.KindPrometheusAlert, Status: event.StatusFiring, Labels: map[string]string{"alertname": "KubePodCrashLooping"}}
	res, err := eng.RunSet(context.Background(), set, ev)
	if err != nil {
		t.Fatal(err)
	}
	if len(ai.titles) != 2 || ai.titles[0] != "Logs" || ai.titles[1] != "Events" {
		t.Errorf("the model saw %v, want the evidence of both playbooks", ai.titles)
	}
	var got []string
	for _, e := range res.Finding.Enrichments {
		got = append(got, e.Title)
	}
	if len(got) != 3 || got[2] != rag.ExplanationTitle {
		t.Errorf("enrichments %v, want Logs, Events, then one explanation", got)
	}
}

// TestBuiltinAskAIOnlyWithAModel: the built-in playbooks' ask_ai (button,
// runbooks, when_configured) adds nothing without a chat model; with one it
// attaches the runbooks (once, even after a user's runbook_enricher) and
// the Ask AI settings.
func TestBuiltinAskAIOnlyWithAModel(t *testing.T) {
	t.Parallel()
	kb := &rag.Retriever{Store: defaultKB(t)}
	builtin := build(t, "ask_ai", "{mode: button, runbooks: true, when_configured: true}")
	finding := func() *event.Finding {
		return &event.Finding{ID: "f", Title: "KubePodCrashLooping", Event: event.Event{Kind: event.KindPrometheusAlert,
			Labels: map[string]string{"alertname": "KubePodCrashLooping", "namespace": "shop", "pod": "cart"}}}
	}

	f := finding()
	if err := builtin.Run(context.Background(), &actions.Env{AI: &rag.Service{}, KB: kb}, f); err != nil {
		t.Fatal(err)
	}
	if len(f.Enrichments) != 0 || f.AskAI != nil {
		t.Errorf("without a model: %+v, AskAI %+v", f.Enrichments, f.AskAI)
	}

	f = finding()
	if err := builtin.Run(context.Background(), &actions.Env{AI: &seeing{}, KB: kb}, f); err != nil {
		t.Fatal(err)
	}
	if len(f.Enrichments) != 1 || f.Enrichments[0].Title != "Runbooks" || f.AskAI == nil ||
		!strings.Contains(f.Enrichments[0].Blocks[0].Links[0].URL, "kubepodcrashlooping") {
		t.Errorf("with a model: %+v, AskAI %+v", f.Enrichments, f.AskAI)
	}
	if err := builtin.Run(context.Background(), &actions.Env{AI: &seeing{}, KB: kb}, f); err != nil {
		t.Fatal(err)
	}
	if len(f.Enrichments) != 1 {
		t.Errorf("runbooks attached twice: %d enrichments", len(f.Enrichments))
	}
}
