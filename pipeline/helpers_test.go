package pipeline

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.yaml.in/yaml/v3"

	"github.com/medichq/medic/actions"
	"github.com/medichq/medic/bus"
	"github.com/medichq/medic/event"
	"github.com/medichq/medic/internal/natstest"
	"github.com/medichq/medic/playbooks"
	"github.com/medichq/medic/redact"
	"github.com/medichq/medic/sinks"

	"github.com/medichq/medic/internal/plugins"
)

var discard = slog.New(slog.DiscardHandler)

// openBus is medic's bus over a NATS server of its own (internal/natstest).
func openBus(t testing.TB) *bus.Bus {
	t.Helper()
	return openBusAt(t, natstest.Start(t, nil).URL())
}

// openBusAt is medic's bus over the NATS server at url; each of tune
// changes its configuration first.
func openBusAt(t testing.TB, url string, tune ...func(*bus.Config)) *bus.Bus {
	t.Helper()
	cfg := bus.Config{
		URL: url, Replicas: 1, DedupWindow: time.Minute, AlertStateTTL: time.Hour, Retention: time.Hour,
		MaxBytes: 64 << 20, MaxDeliver: 3, Backoff: []time.Duration{20 * time.Millisecond},
		AckWait: 5 * time.Second, PublishTimeout: 5 * time.Second, Compression: "s2",
	}
	for _, f := range tune {
		f(&cfg)
	}
	b, err := bus.Open(context.Background(), cfg, discard)
	if err != nil {
		t.Fatalf("open bus: %v", err)
	}
	t.Cleanup(b.Close)
	return b
}

// builtin is what medic ships: the triggers the built-in playbooks name, and
// the sinks.
var builtin = plugins.Builtin()

// newEngine is the playbook engine over the playbooks in doc (YAML), run
// before the built-in ones (the default alert enricher on every alert).
func newEngine(t testing.TB, doc string) *playbooks.Engine {
	t.Helper()
	source := func(context.Context) ([]playbooks.File, error) {
		files, err := playbooks.BuiltinFiles()
		if doc != "" {
			files = append([]playbooks.File{{Path: "test.yaml", Data: []byte(doc)}}, files...)
		}
		return files, err
	}
	store, err := playbooks.NewStore(source, playbooks.Options{Plugins: builtin.Playbooks()}, discard, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	e, err := playbooks.NewEngine(store, &actions.Env{Logger: discard, ClusterName: "test"}, 30*time.Second, discard, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func newRedactor(t testing.TB) *redact.Redactor {
	t.Helper()
	r, err := redact.New(redact.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// specs parses sinks as the configuration writes them.
func specs(t testing.TB, doc string) []sinks.Spec {
	t.Helper()
	var s []sinks.Spec
	if err := yaml.Unmarshal([]byte(doc), &s); err != nil {
		t.Fatal(err)
	}
	return s
}

// alert is the event of a firing (or resolved) alert named name on pod.
func alert(name, pod string, status event.Status, annotations map[string]string) *event.Event {
	starts := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	fp := name + "/" + pod
	return &event.Event{
		ID: event.NewID("alertmanager", fp, status, starts), Kind: event.KindPrometheusAlert, Source: "alertmanager",
		Status: status, Severity: event.SeverityWarning, Title: name + " on " + pod,
		Labels:      map[string]string{"alertname": name, "namespace": "shop", "pod": pod, "severity": "warning"},
		Annotations: annotations,
		Subject:     event.Subject{Kind: "Pod", Namespace: "shop", Name: pod},
		Fingerprint: fp, StartsAt: starts, ReceivedAt: starts,
	}
}

// eventDelivery is the engine's message for ev at stream sequence seq.
func eventDelivery(t testing.TB, ev *event.Event, seq uint64) *bus.Delivery {
	t.Helper()
	data, err := event.MarshalEvent(ev)
	if err != nil {
		t.Fatal(err)
	}
	return &bus.Delivery{Subject: bus.EventSubject(ev.Kind), Data: data, Attempt: 1, StreamSeq: seq}
}

// findingDelivery is a sink consumer's message for the finding of ev, as
// bus.PublishFindings stores it (with or without the finding-ID header).
func findingDelivery(t testing.TB, sink string, ev *event.Event, header bool) (*bus.Delivery, *event.Finding) {
	t.Helper()
	f := event.NewFinding(*ev, ev.StartsAt)
	data, err := event.MarshalFinding(f)
	if err != nil {
		t.Fatal(err)
	}
	d := &bus.Delivery{Subject: bus.FindingSubject(sink), Data: data, Attempt: 1}
	if header {
		d.Header = map[string][]string{bus.HeaderFindingID: {f.ID},
			bus.HeaderReceivedAt: {ev.ReceivedAt.Format(time.RFC3339Nano)}}
	}
	return d, f
}

// published counts the findings stored for each sink on the findings
// stream.
func published(t testing.TB, b *bus.Bus) map[string]uint64 {
	t.Helper()
	st, err := b.JetStream().Stream(context.Background(), bus.FindingsStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(context.Background(), jetstream.WithSubjectFilter(">"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]uint64{}
	for subject, n := range info.State.Subjects {
		out[subject] = n
	}
	return out
}
