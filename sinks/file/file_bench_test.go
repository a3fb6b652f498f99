package file_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/sinks/file"
)

// benchFinding is what the built-in alert enricher makes of a
// kube-prometheus alert: the event with its labels, annotations and raw
// alert, a labels table and graph, runbook and silence links.
func benchFinding() *event.Finding {
	starts := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	labels := map[string]string{
		"alertname": "KubePodCrashLooping", "severity": "warning", "namespace": "shop",
		"pod": "shop-api-00042-x7k2p", "container": "app", "job": "kube-state-metrics",
		"prometheus": "monitoring/k8s",
	}
	annotations := map[string]string{
		"summary":     "Pod is crash looping.",
		"description": `Pod shop/shop-api-00042-x7k2p (app) is in waiting state (reason: "CrashLoopBackOff").`,
		"runbook_url": "https://runbooks.prometheus-operator.dev/runbooks/kubernetes/kubepodcrashlooping",
	}
	raw, _ := json.Marshal(map[string]any{"status": "firing", "labels": labels, "annotations": annotations, "startsAt": starts})
	ev := event.Event{
		ID: "0", Kind: event.KindPrometheusAlert, Source: "alertmanager", Status: event.StatusFiring,
		Severity: event.SeverityWarning, Title: annotations["summary"], Description: annotations["description"],
		Labels: labels, Annotations: annotations,
		Subject:      event.Subject{Kind: "Pod", Namespace: "shop", Name: labels["pod"], Container: "app"},
		StartsAt:     starts,
		Fingerprint:  "0123456789abcdef",
		GeneratorURL: "http://prometheus:9090/graph?g0.expr=max_over_time%28kube_pod_container_status_waiting_reason%5B5m%5D%29+%3E%3D+1",
		ExternalURL:  "http://alertmanager:9093",
		ReceivedAt:   starts.Add(time.Second),
		Raw:          raw,
	}
	f := event.NewFinding(ev, starts.Add(2*time.Second))
	f.Playbooks = []string{"builtin-alert-enricher"}
	f.PlaybookSet = "3f2a9c1d0b7e"
	pairs := [][2]string{}
	for _, k := range []string{"alertname", "container", "job", "namespace", "pod", "prometheus", "severity"} {
		pairs = append(pairs, [2]string{k, labels[k]})
	}
	f.Add(event.Enrichment{Title: "Alert labels", Source: "default_enricher", Blocks: []event.Block{
		event.KeyValueBlock(pairs),
		event.LinksBlock(
			event.Link{Label: "Graph", URL: ev.GeneratorURL},
			event.Link{Label: "Runbook", URL: annotations["runbook_url"]},
			event.Link{Label: "Silence", URL: "http://alertmanager:9093/#/silences/new?filter=%7Balertname%3D%22KubePodCrashLooping%22%2Ccontainer%3D%22app%22%2Cjob%3D%22kube-state-metrics%22%2Cnamespace%3D%22shop%22%2Cpod%3D%22shop-api-00042-x7k2p%22%2Cprometheus%3D%22monitoring%2Fk8s%22%2Cseverity%3D%22warning%22%7D"},
		),
	}})
	return f
}

func benchSend(b *testing.B, fsync, encoded bool) {
	p := *file.Defaults()
	p.Path = filepath.Join(b.TempDir(), "findings.jsonl")
	p.Fsync = fsync
	// Rotation bounds the disk the benchmark uses; it runs about once
	// every 25,000 lines and is part of what is measured.
	p.MaxSizeMB, p.MaxFiles = 64, 1
	s, err := file.Open("bench", p, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	// Every finding needs a new ID, or the sink skips it as delivered. The
	// sink remembers 65,536 IDs, so cycling through twice as many never
	// hits one it still knows.
	ids := make([]string, 1<<17)
	for i := range ids {
		ids[i] = "finding-" + strconv.Itoa(i)
	}
	f := benchFinding()
	ctx := context.Background()
	f.ID = "first"
	if err := s.Send(ctx, f); err != nil {
		b.Fatal(err)
	}
	st, err := os.Stat(p.Path)
	if err != nil {
		b.Fatal(err)
	}
	// What the sink's consumer hands it: the finding as stored on the bus.
	enc, err := json.Marshal(f)
	if err != nil {
		b.Fatal(err)
	}
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		id := ids[i%len(ids)]
		i++
		if encoded {
			err = s.SendEncoded(ctx, id, enc)
		} else {
			f.ID = id
			err = s.Send(ctx, f)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(st.Size()), "line-bytes")
}

// BenchmarkSend appends a typical finding, fsync off (the default).
func BenchmarkSend(b *testing.B) { benchSend(b, false, false) }

// BenchmarkSendEncoded appends the same finding from its bus encoding, as
// the sink's consumer does (sinks.EncodedSender): no decode, no encode.
func BenchmarkSendEncoded(b *testing.B) { benchSend(b, false, true) }

// BenchmarkSendFsync is the same with fsync: true (one disk flush per line).
func BenchmarkSendFsync(b *testing.B) { benchSend(b, true, false) }
