package event

import (
	"testing"
	"time"
)

// benchEvent is a kube-prometheus alert as medic stores it (about 1.2 KiB).
func benchEvent() Event {
	starts := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	return Event{
		ID: "3f1c0a3e9b8d4c7a2e6f1b0d9c8a7e6f", Kind: KindPrometheusAlert, Source: "alertmanager",
		Status: StatusFiring, Severity: SeverityWarning, Title: "Pod is crash looping.",
		Description: `Pod shop/cart-7d9 (app) is in waiting state (reason: "CrashLoopBackOff").`,
		Labels: map[string]string{
			"alertname": "KubePodCrashLooping", "severity": "warning", "namespace": "shop", "pod": "cart-7d9-x7k2p",
			"container": "app", "job": "kube-state-metrics", "prometheus": "monitoring/k8s", "bench_id": "12345",
		},
		Annotations: map[string]string{
			"summary":     "Pod is crash looping.",
			"description": `Pod shop/cart-7d9 (app) is in waiting state (reason: "CrashLoopBackOff").`,
			"runbook_url": "https://runbooks.prometheus-operator.dev/runbooks/kubernetes/kubepodcrashlooping",
		},
		Subject:  Subject{Kind: "Pod", Namespace: "shop", Name: "cart-7d9-x7k2p", Container: "app"},
		StartsAt: starts, Fingerprint: "a1b2c3d4e5f60718",
		GeneratorURL: "http://prometheus:9090/graph?g0.expr=max_over_time%28kube_pod_container_status_waiting_reason" +
			"%7Breason%3D%22CrashLoopBackOff%22%7D%5B5m%5D%29+%3E%3D+1&g0.tab=1",
		ExternalURL: "http://alertmanager:9093", ReceivedAt: starts.Add(time.Second),
	}
}

func BenchmarkMarshalEvent(b *testing.B) {
	ev := benchEvent()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := MarshalEvent(&ev); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkUnmarshalEvent(b *testing.B) {
	ev := benchEvent()
	data, err := MarshalEvent(&ev)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		var out Event
		if err := UnmarshalEvent(data, &out); err != nil {
			b.Fatal(err)
		}
	}
}
