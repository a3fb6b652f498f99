package app

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/medichq/medic/bus"
	"github.com/medichq/medic/event"
)

func (a *App) eventHandler() bus.Handler { return a.events.Handle }

func (a *App) sinkHandler(name string) bus.Handler {
	c, _ := a.sinks.Get(name)
	return a.deliveries.For(c).Handle
}

// benchApp is medic with the built-in playbooks and one file sink, not
// started: the benchmarks call the consumers' handlers themselves.
func benchApp(b *testing.B) *App {
	b.Helper()
	a, err := New(context.Background(), kubeTestConfig(b), slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = a.Shutdown(context.Background()) })
	return a
}

// benchEventDelivery is the engine's message for the i-th distinct alert.
func benchEventDelivery(b *testing.B, i int) *bus.Delivery {
	b.Helper()
	starts := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Second)
	fp := fmt.Sprintf("fp-%d", i)
	ev := event.Event{
		ID: event.NewID("alertmanager", fp, event.StatusFiring, starts), Kind: event.KindPrometheusAlert,
		Source: "alertmanager", Status: event.StatusFiring, Severity: event.SeverityWarning, Title: "Pod is crash looping.",
		Labels:      map[string]string{"alertname": "KubePodCrashLooping", "namespace": "shop", "pod": fmt.Sprintf("cart-%d", i), "severity": "warning"},
		Annotations: map[string]string{"summary": "Pod is crash looping."},
		Subject:     event.Subject{Kind: "Pod", Namespace: "shop", Name: fmt.Sprintf("cart-%d", i)},
		Fingerprint: fp, StartsAt: starts, ReceivedAt: starts,
	}
	data, err := event.MarshalEvent(&ev)
	if err != nil {
		b.Fatal(err)
	}
	return &bus.Delivery{Subject: bus.EventSubject(ev.Kind), Data: data, Attempt: 1, StreamSeq: uint64(i + 1)}
}

// BenchmarkEventHandler is the engine consumer's handler per event: decode,
// claim the alert's lifetime, run the built-in playbooks, redact, route and
// publish the finding to the file sink's subject (embedded JetStream).
func BenchmarkEventHandler(b *testing.B) {
	a := benchApp(b)
	h := a.eventHandler()
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		// Building the message (an event's JSON) is part of the figure.
		if err := h(ctx, benchEventDelivery(b, i)); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkSinkHandler is one sink consumer's handler per finding: the file
// sink writes the stored JSON as it is (its own record of what it
// delivered, so no KV round trip).
func BenchmarkSinkHandler(b *testing.B) {
	a := benchApp(b)
	h := a.sinkHandler("file")
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		// Building the message (a finding's JSON) is part of the figure.
		if err := h(ctx, findingDelivery(b, fmt.Sprintf("evt-%d", i))); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
