package alertmanager

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/alertmanager/template"

	"github.com/medichq/medic/event"
)

// benchBody is an Alertmanager webhook body with n distinct firing alerts
// shaped like kube-prometheus ones: eight labels, summary, description and
// runbook annotations, a generator URL carrying the rule's expression:
// about 0.8 KiB per alert (the end-to-end harness in test/bench sends 1 KiB,
// its expressions being longer).
func benchBody(tb testing.TB, n int) []byte {
	tb.Helper()
	starts := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	alerts := make(template.Alerts, n)
	for i := range alerts {
		ns := []string{"shop", "payments", "search", "checkout"}[i%4]
		labels := template.KV{
			"alertname":  "KubePodCrashLooping",
			"severity":   "warning",
			"namespace":  ns,
			"pod":        fmt.Sprintf("%s-api-%05d-x7k2p", ns, i),
			"container":  "app",
			"job":        "kube-state-metrics",
			"prometheus": "monitoring/k8s",
			"bench_id":   fmt.Sprint(i),
		}
		alerts[i] = template.Alert{
			Status: "firing",
			Labels: labels,
			Annotations: template.KV{
				"summary":     "Pod is crash looping.",
				"description": fmt.Sprintf("Pod %s/%s (app) is in waiting state (reason: \"CrashLoopBackOff\").", ns, labels["pod"]),
				"runbook_url": "https://runbooks.prometheus-operator.dev/runbooks/kubernetes/kubepodcrashlooping",
			},
			StartsAt: starts.Add(time.Duration(i) * time.Millisecond),
			GeneratorURL: "http://prometheus.bench.local:9090/graph?g0.expr=max_over_time%28kube_pod_container_status_waiting_reason" +
				"%7Breason%3D%22CrashLoopBackOff%22%2C+job%3D%22kube-state-metrics%22%7D%5B5m%5D%29+%3E%3D+1&g0.tab=1",
			Fingerprint: Fingerprint(labels),
		}
	}
	body, err := json.Marshal(&Message{
		Data: &template.Data{
			Receiver:          "medic",
			Status:            "firing",
			Alerts:            alerts,
			GroupLabels:       template.KV{"alertname": "KubePodCrashLooping"},
			CommonLabels:      template.KV{"alertname": "KubePodCrashLooping", "severity": "warning"},
			CommonAnnotations: template.KV{"summary": "Pod is crash looping."},
			ExternalURL:       "http://alertmanager.bench.local:9093",
		},
		Version:  "4",
		GroupKey: `{}:{alertname="KubePodCrashLooping"}`,
	})
	if err != nil {
		tb.Fatal(err)
	}
	return body
}

// BenchmarkDecode50 decodes and checks a 50-alert webhook body.
func BenchmarkDecode50(b *testing.B) {
	body := benchBody(b, 50)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(body); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkToEvents50 converts 50 decoded alerts into events (IDs, subject,
// the raw alert re-encoded).
func BenchmarkToEvents50(b *testing.B) {
	msg, err := Decode(benchBody(b, 50))
	if err != nil {
		b.Fatal(err)
	}
	received := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		if evs := ToEvents(msg, DefaultSource, received); len(evs) != 50 {
			b.Fatalf("%d events", len(evs))
		}
	}
}

type nopPublisher struct{}

func (nopPublisher) Publish(_ context.Context, events []event.Event) (event.PublishResult, error) {
	return event.PublishResult{Stored: len(events)}, nil
}

// BenchmarkHandler50 is the whole webhook request without the bus: body
// read, Decode, ToEvents, metrics, answer.
func BenchmarkHandler50(b *testing.B) {
	body := benchBody(b, 50)
	h, err := NewHandler(Options{}, nopPublisher{}, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPost, "/api/alerts", bytes.NewReader(body))
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("answer %d: %s", rec.Code, rec.Body)
		}
	}
}
