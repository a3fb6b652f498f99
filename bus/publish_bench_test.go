package bus

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/medichq/medic/config"
	"github.com/medichq/medic/event"
)

// benchBus opens a bus on an embedded server with medic's default bus
// settings (config.Default), but 1 GiB per stream so that a long run does
// not fill one.
func benchBus(b *testing.B) *Bus {
	b.Helper()
	cfg := config.Default().Bus
	cfg.StoreDir = b.TempDir()
	cfg.MaxBytes = 1 << 30
	bus, err := Open(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatalf("open bus: %v", err)
	}
	b.Cleanup(bus.Close)
	return bus
}

// benchEvents are n alert events like the webhook's (about 2 KiB of JSON
// each, raw alert included).
func benchEvents(n int) []event.Event {
	starts := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	evs := make([]event.Event, n)
	for i := range evs {
		pod := fmt.Sprintf("shop-api-%05d-x7k2p", i)
		labels := map[string]string{
			"alertname": "KubePodCrashLooping", "severity": "warning", "namespace": "shop", "pod": pod,
			"container": "app", "job": "kube-state-metrics", "prometheus": "monitoring/k8s", "bench_id": strconv.Itoa(i),
		}
		annotations := map[string]string{
			"summary":     "Pod is crash looping.",
			"description": fmt.Sprintf("Pod shop/%s (app) is in waiting state (reason: \"CrashLoopBackOff\").", pod),
			"runbook_url": "https://runbooks.prometheus-operator.dev/runbooks/kubernetes/kubepodcrashlooping",
		}
		gen := "http://prometheus:9090/graph?g0.expr=max_over_time%28kube_pod_container_status_waiting_reason%7Breason%3D%22CrashLoopBackOff%22%2C+job%3D%22kube-state-metrics%22%2C+namespace%3D~%22.%2A%22%7D%5B5m%5D%29+%3E%3D+1&g0.tab=1"
		raw, _ := json.Marshal(map[string]any{"status": "firing", "labels": labels, "annotations": annotations,
			"startsAt": starts, "endsAt": time.Time{}, "generatorURL": gen, "fingerprint": "0123456789abcdef"})
		evs[i] = event.Event{
			Kind: event.KindPrometheusAlert, Source: "alertmanager", Status: event.StatusFiring,
			Severity: event.SeverityWarning, Title: annotations["summary"], Description: annotations["description"],
			Labels: labels, Annotations: annotations,
			Subject:  event.Subject{Kind: "Pod", Namespace: "shop", Name: pod, Container: "app"},
			StartsAt: starts.Add(time.Duration(i) * time.Millisecond), GeneratorURL: gen,
			ExternalURL: "http://alertmanager:9093", Fingerprint: "0123456789abcdef",
			ReceivedAt: starts.Add(time.Minute), Raw: raw,
		}
	}
	return evs
}

// BenchmarkPublish50 stores a webhook's worth of events (50) and waits for
// JetStream to acknowledge every one, as the webhook does before it
// answers 200.
func BenchmarkPublish50(b *testing.B) {
	for _, tc := range []struct {
		name string
		dup  bool
	}{{"new", false}, {"duplicates", true}} {
		b.Run(tc.name, func(b *testing.B) {
			bus := benchBus(b)
			evs := benchEvents(50)
			ctx := context.Background()
			// "duplicates" is a retried webhook: the same IDs again,
			// which JetStream drops by Nats-Msg-Id.
			for i := range evs {
				evs[i].ID = "dup-" + strconv.Itoa(i)
			}
			if _, err := bus.Publish(ctx, evs); err != nil {
				b.Fatal(err)
			}
			size, _ := json.Marshal(&evs[0])
			seq, ops := 0, 0
			b.ReportAllocs()
			for b.Loop() {
				if !tc.dup {
					for i := range evs {
						seq++
						evs[i].ID = "ev-" + strconv.Itoa(seq)
					}
				}
				res, err := bus.Publish(ctx, evs)
				if err != nil {
					b.Fatal(err)
				}
				if tc.dup && res.Duplicates != len(evs) || !tc.dup && res.Stored != len(evs) {
					b.Fatalf("got %+v", res)
				}
				ops++
			}
			b.ReportMetric(float64(ops*len(evs))/b.Elapsed().Seconds(), "events/s")
			b.ReportMetric(float64(len(size)), "event-bytes")
		})
	}
}

// BenchmarkPublishFinding stores one finding and waits for its ack: what
// the engine does for every event before it acks it.
func BenchmarkPublishFinding(b *testing.B) {
	bus := benchBus(b)
	f := event.NewFinding(benchEvents(1)[0], time.Now())
	ctx := context.Background()
	seq := 0
	b.ReportAllocs()
	for b.Loop() {
		seq++
		f.ID = "finding-" + strconv.Itoa(seq)
		if err := bus.PublishFinding(ctx, "file", f); err != nil {
			b.Fatal(err)
		}
	}
}
