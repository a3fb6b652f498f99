package playbooks

import (
	"context"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/medichq/medic/actions"
	"github.com/medichq/medic/event"
)

// benchEngine is an engine over the built-in playbooks, loaded through a
// Store as medic serve loads them.
func benchEngine(tb testing.TB) *Engine {
	tb.Helper()
	logger := slog.New(slog.DiscardHandler)
	store, err := NewStore(func(context.Context) ([]File, error) { return BuiltinFiles() }, Options{Plugins: testPlugins}, logger, nil)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := store.Reload(context.Background()); err != nil {
		tb.Fatal(err)
	}
	e, err := NewEngine(store, &actions.Env{Logger: logger, ClusterName: "prod-eu"}, 30*time.Second, logger, prometheus.NewRegistry())
	if err != nil {
		tb.Fatal(err)
	}
	return e
}

// benchAlertEvent is a kube-prometheus alert as the webhook turns it into an
// event: labels, annotations, generator and Alertmanager URLs, raw alert.
func benchAlertEvent() *event.Event {
	starts := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	labels := map[string]string{
		"alertname": "KubePodCrashLooping", "severity": "warning", "namespace": "shop",
		"pod": "shop-api-00042-x7k2p", "container": "app", "job": "kube-state-metrics",
		"prometheus": "monitoring/k8s", "bench_id": "42",
	}
	annotations := map[string]string{
		"summary":     "Pod is crash looping.",
		"description": `Pod shop/shop-api-00042-x7k2p (app) is in waiting state (reason: "CrashLoopBackOff").`,
		"runbook_url": "https://runbooks.prometheus-operator.dev/runbooks/kubernetes/kubepodcrashlooping",
	}
	raw, _ := json.Marshal(map[string]any{"status": "firing", "labels": labels, "annotations": annotations, "startsAt": starts})
	return &event.Event{
		ID:       event.NewID("alertmanager", "0123456789abcdef", event.StatusFiring, starts),
		Kind:     event.KindPrometheusAlert,
		Source:   "alertmanager",
		Status:   event.StatusFiring,
		Severity: event.SeverityWarning,
		Title:    annotations["summary"],
		Labels:   labels, Annotations: annotations,
		Subject:  event.Subject{Kind: "Pod", Namespace: "shop", Name: labels["pod"], Container: "app"},
		StartsAt: starts,
		GeneratorURL: "http://prometheus.bench.local:9090/graph?g0.expr=max_over_time%28kube_pod_container_status_waiting_reason" +
			"%7Breason%3D%22CrashLoopBackOff%22%7D%5B5m%5D%29+%3E%3D+1&g0.tab=1",
		ExternalURL: "http://alertmanager.bench.local:9093",
		Fingerprint: "0123456789abcdef",
		ReceivedAt:  starts.Add(time.Second),
		Raw:         raw,
	}
}

// BenchmarkEngineRunBuiltin runs the built-in playbooks (the default alert
// enricher) on one alert.
func BenchmarkEngineRunBuiltin(b *testing.B) {
	e := benchEngine(b)
	ev := benchAlertEvent()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		res, err := e.Run(ctx, ev)
		if err != nil || res.Finding == nil {
			b.Fatalf("run: %v, finding %v", err, res.Finding)
		}
	}
}

// BenchmarkEngineEventToFindingJSON is the CPU part of what medic's engine
// consumer does per event, without the bus: decode the event, run the
// built-in playbooks, encode the finding.
func BenchmarkEngineEventToFindingJSON(b *testing.B) {
	e := benchEngine(b)
	data, err := json.Marshal(benchAlertEvent())
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		var ev event.Event
		if err := json.Unmarshal(data, &ev); err != nil {
			b.Fatal(err)
		}
		res, err := e.Run(ctx, &ev)
		if err != nil || res.Finding == nil {
			b.Fatalf("run: %v, finding %v", err, res.Finding)
		}
		if _, err := json.Marshal(res.Finding); err != nil {
			b.Fatal(err)
		}
	}
}
