package redact_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/medichq/medic/actions"
	"github.com/medichq/medic/event"
	"github.com/medichq/medic/internal/fixtures"
	"github.com/medichq/medic/internal/plugins" // the built-in playbooks' actions
	"github.com/medichq/medic/playbooks"
	"github.com/medichq/medic/redact"
	"github.com/medichq/medic/sources/alertmanager"
)

// capturedFinding is what medic's engine makes of a webhook captured from
// a real Alertmanager (KubePodCrashLooping): the event with its labels,
// annotations and raw alert, and the built-in playbooks' enrichments.
func capturedFinding(b *testing.B) *event.Finding {
	b.Helper()
	msg, err := alertmanager.Decode(fixtures.Read(b, "payloads", "alertmanager",
		"captured-alertmanager-v0.34.2__KubePodCrashLooping__firing.json"))
	if err != nil {
		b.Fatal(err)
	}
	evs := alertmanager.ToEvents(msg, alertmanager.DefaultSource, time.Now())
	logger := slog.New(slog.DiscardHandler)
	store, err := playbooks.NewStore(func(context.Context) ([]playbooks.File, error) { return playbooks.BuiltinFiles() },
		playbooks.Options{Plugins: playbooks.Plugins{Actions: plugins.Builtin().Actions}}, logger, nil)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := store.Reload(context.Background()); err != nil {
		b.Fatal(err)
	}
	engine, err := playbooks.NewEngine(store, &actions.Env{Logger: logger}, time.Minute, logger, prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	res, err := engine.Run(context.Background(), &evs[0])
	if err != nil || res.Finding == nil {
		b.Fatalf("engine: %v, finding %v", err, res.Finding)
	}
	return res.Finding
}

// BenchmarkFinding redacts a typical finding that holds no secret (the
// engine's cost per finding, the common case).
func BenchmarkFinding(b *testing.B) {
	f := capturedFinding(b)
	r := redact.Default()
	b.ReportAllocs()
	for b.Loop() {
		if found := r.Finding(f); found.Total() != 0 {
			b.Fatalf("redacted %s in a finding without secrets", found)
		}
	}
}

// BenchmarkRuleTexts redacts the summary, description and expression of
// each of the 139 kube-prometheus alert rules: short texts, no secrets.
func BenchmarkRuleTexts(b *testing.B) {
	var rules []struct{ Expr, Summary, Description string }
	if err := json.Unmarshal(fixtures.Read(b, "alert-rules.json"), &rules); err != nil {
		b.Fatal(err)
	}
	r := redact.Default()
	b.ReportAllocs()
	for b.Loop() {
		for _, rl := range rules {
			for _, s := range []string{rl.Expr, rl.Summary, rl.Description} {
				r.Redact(s)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(rules)*3), "ns/text")
}
