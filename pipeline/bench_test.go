package pipeline

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/medichq/medic/event"
)

// BenchmarkEvaluate is the Evaluate stage per alert: the built-in
// playbooks (the default alert enricher) and the redaction of the finding.
func BenchmarkEvaluate(b *testing.B) {
	e := &Evaluate{Engine: newEngine(b, ""), Redactor: newRedactor(b)}
	ev := alert("KubePodCrashLooping", "cart", event.StatusFiring, map[string]string{
		"summary": "Pod is crash looping.", "description": `Pod shop/cart (app) is in waiting state (reason: "CrashLoopBackOff").`})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if res, err := e.Evaluate(ctx, ev); err != nil || res.Finding == nil {
			b.Fatalf("evaluate: %v, finding %v", err, res.Finding)
		}
	}
}

// BenchmarkEvents is the engine consumer's handler per distinct alert:
// decode, claim (KV), evaluate, route and publish to two sinks' subjects
// (JetStream), against a NATS server on loopback.
func BenchmarkEvents(b *testing.B) {
	bs := openBus(b)
	state, err := bs.AlertState(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	h := events(b, bs, state, "", prometheus.NewRegistry())
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		// Building the message (an event's JSON) is part of the figure.
		d := eventDelivery(b, alert("KubePodCrashLooping", fmt.Sprintf("cart-%d", i), event.StatusFiring, nil), uint64(i))
		if err := h.Handle(ctx, d); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDeliver is one sink's consumer handler per finding: the file
// sink writes the stored JSON as it is (its own delivery record, no KV).
func BenchmarkDeliver(b *testing.B) {
	set := startSinks(b, fmt.Sprintf("- {name: file, type: file, path: %q}\n", filepath.Join(b.TempDir(), "findings.jsonl")))
	ds, err := NewDeliveries(nil, discard, prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	c, _ := set.Get("file")
	deliver := ds.For(c)
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		// Building the message (a finding's JSON) is part of the figure.
		d, _ := findingDelivery(b, "file", alert("KubePodCrashLooping", fmt.Sprintf("cart-%d", i), event.StatusFiring, nil), true)
		if err := deliver.Handle(ctx, d); err != nil {
			b.Fatal(err)
		}
	}
}
