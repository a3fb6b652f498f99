package embedded_test

import (
	"context"
	"sort"
	"testing"
	"time"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/knowledge"
	"github.com/medichq/medic/rag"
	"github.com/medichq/medic/rag/embedded"
	"github.com/medichq/medic/rag/storetest"
)

// benchQueries are alert texts of the kind findings produce (summary and
// description of kube-prometheus alerts, with rendered labels).
var benchQueries = []string{
	"Pod is crash looping. Pod shop/cart-7d9 (app) is in waiting state (reason: CrashLoopBackOff).",
	"etcd cluster has no leader. etcd cluster \"etcd\": member 10.0.0.3:2379 has no leader.",
	"Filesystem is predicted to run out of space within the next 24 hours. Filesystem on /dev/sda1 at 10.0.0.12:9100 has only 9.5% available space left and is filling up.",
	"Node is not ready. worker-1 has been unready for more than 15 minutes.",
	"Target disappeared from Prometheus target discovery. Kubelet has disappeared from Prometheus target discovery.",
	"Reloading an Alertmanager configuration has failed. Configuration has failed to load for monitoring/alertmanager-main-0.",
	"Processes experience elevated CPU throttling. 92.5% throttling of CPU in namespace shop for container app in pod web-5d9c7b-x2k4q.",
	"PersistentVolume is filling up. The PersistentVolume claimed by data-db-0 in Namespace shop is only 3% free.",
	"Clock not synchronising. Clock at 10.0.0.12:9100 is not synchronising. Ensure NTP is configured on this host.",
	"Prometheus is failing rule evaluations. Prometheus monitoring/prometheus-k8s-0 has failed to evaluate 3 rules in the last 5m.",
}

func openDefault(b *testing.B, emb rag.Embedder) *embedded.Store {
	b.Helper()
	s, err := embedded.Open(embedded.Options{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	in := &rag.Ingester{Store: s, Embedder: emb, URLFor: knowledge.RunbookURL}
	if _, err := in.Ingest(context.Background(), knowledge.Root, knowledge.Runbooks()); err != nil {
		b.Fatal(err)
	}
	return s
}

// reportLatency adds p50/p99/max in milliseconds to the benchmark line.
func reportLatency(b *testing.B, d []time.Duration) {
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	q := func(p float64) float64 {
		return float64(d[min(len(d)-1, int(p*float64(len(d))))].Microseconds()) / 1000
	}
	b.ReportMetric(q(0.50), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
	b.ReportMetric(float64(d[len(d)-1].Microseconds())/1000, "max-ms")
}

// BenchmarkSearch: BM25 over the default knowledge base (108 runbooks),
// top 5 chunks, as `medic kb search` and the retriever run it.
func BenchmarkSearch(b *testing.B) {
	s := openDefault(b, nil)
	ctx := context.Background()
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		start := time.Now()
		if _, err := s.Search(ctx, rag.Query{Text: benchQueries[i%len(benchQueries)], TopK: 5}); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	reportLatency(b, lat)
}

// BenchmarkSearchHybrid: BM25 and a 64-dimension vector search fused; the
// query's vector is computed beforehand (the embedding call is the model
// server's time, not the store's).
func BenchmarkSearchHybrid(b *testing.B) {
	emb := &storetest.HashEmbedder{Model: "hash-64", Dims: 64}
	s := openDefault(b, emb)
	ctx := context.Background()
	vecs, _ := emb.Embed(ctx, benchQueries)
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		start := time.Now()
		n := i % len(benchQueries)
		if _, err := s.Search(ctx, rag.Query{Text: benchQueries[n], Vector: vecs[n], TopK: 5}); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	reportLatency(b, lat)
}

// BenchmarkForFinding: what runbook_enricher does per finding: the direct
// link by runbook_url, then a search for the other runbooks.
func BenchmarkForFinding(b *testing.B) {
	s := openDefault(b, nil)
	r := &rag.Retriever{Store: s}
	f := event.NewFinding(event.Event{Title: benchQueries[0], Labels: map[string]string{"alertname": "KubePodCrashLooping"},
		Annotations: map[string]string{"runbook_url": knowledge.RunbookURL("kubernetes/KubePodCrashLooping.md")}}, time.Now())
	ctx := context.Background()
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		if _, err := r.ForFinding(ctx, f, 3, 1); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	reportLatency(b, lat)
}
