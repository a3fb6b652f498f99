// Package storetest is the behaviour every rag.Store must show, run against
// the embedded store (rag/embedded) and a real Weaviate (test/weaviate):
// ingest the default runbooks, search, link directly, re-ingest
// incrementally, delete, and search hybrid with vectors.
package storetest

import (
	"context"
	"hash/fnv"
	"io/fs"
	"math"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/knowledge"
	"github.com/medichq/medic/rag"
)

// Opener returns a fresh, empty store; the suite closes it.
type Opener func(t *testing.T) rag.Store

// Run runs the whole suite, each part on a fresh store.
func Run(t *testing.T, open Opener) {
	t.Run("IngestAndSearch", func(t *testing.T) { IngestAndSearch(t, open(t)) })
	t.Run("DirectLinks", func(t *testing.T) { DirectLinks(t, open(t)) })
	t.Run("IncrementalReingest", func(t *testing.T) { IncrementalReingest(t, open(t)) })
	t.Run("Delete", func(t *testing.T) { Delete(t, open(t)) })
	t.Run("Hybrid", func(t *testing.T) { Hybrid(t, open(t)) })
	t.Run("OneHitPerSource", func(t *testing.T) { OneHitPerSource(t, open(t)) })
}

// DefaultRunbooks is the default knowledge base as a writable map.
func DefaultRunbooks(t testing.TB) fstest.MapFS {
	t.Helper()
	m := fstest.MapFS{}
	err := fs.WalkDir(knowledge.Runbooks(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(knowledge.Runbooks(), p)
		if err != nil {
			return err
		}
		m[p] = &fstest.MapFile{Data: b, Mode: 0o644}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// CountRunbooks is the number of runbook files in fsys.
func CountRunbooks(fsys fs.FS) int {
	n := 0
	_ = fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && rag.SupportedFile(p) {
			n++
		}
		return nil
	})
	return n
}

func ingest(t *testing.T, s rag.Store, fsys fs.FS, emb rag.Embedder) rag.IngestReport {
	t.Helper()
	in := &rag.Ingester{Store: s, Embedder: emb, URLFor: knowledge.RunbookURL}
	rep, err := in.Ingest(context.Background(), knowledge.Root, fsys)
	if err != nil {
		t.Fatalf("ingest: %v", err)
	}
	return rep
}

func search(t *testing.T, s rag.Store, q rag.Query) []rag.Hit {
	t.Helper()
	hits, err := s.Search(context.Background(), q)
	if err != nil {
		t.Fatalf("search %+v: %v", q, err)
	}
	return hits
}

func sources(hits []rag.Hit) []string {
	var out []string
	for _, h := range hits {
		if !slices.Contains(out, h.Source) {
			out = append(out, h.Source)
		}
	}
	return out
}

// IngestAndSearch ingests the default runbooks and finds the right ones.
func IngestAndSearch(t *testing.T, s rag.Store) {
	defer s.Close()
	ctx := context.Background()
	fsys := DefaultRunbooks(t)
	want := CountRunbooks(fsys)
	rep := ingest(t, s, fsys, nil)
	if rep.Added != want || rep.Files != want || rep.Unchanged != 0 || rep.Failed != 0 {
		t.Fatalf("report %+v, want %d files added", rep, want)
	}
	if rep.Chunks < want {
		t.Errorf("%d chunks for %d files", rep.Chunks, want)
	}
	srcs, err := s.Sources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(srcs) != want {
		t.Fatalf("%d sources, want %d", len(srcs), want)
	}
	for _, x := range srcs {
		if x.Root != knowledge.Root || x.Hash == "" || !strings.HasSuffix(x.Source, ".md") {
			t.Fatalf("source %+v", x)
		}
	}
	if v, err := s.Version(ctx); err != nil || v == "" {
		t.Fatalf("version %q, %v", v, err)
	}

	cases := []struct{ query, want string }{
		{"pod is in CrashLoop and kubernetes restarts it", "kubernetes/KubePodCrashLooping.md"},
		{"etcd cluster has no leader", "etcd/etcdNoLeader.md"},
		{"filesystem is running out of inodes files", "node/NodeFilesystemFilesFillingUp.md"},
		{"alerting pipeline always firing dead man's switch", "general/Watchdog.md"},
	}
	for _, c := range cases {
		hits := search(t, s, rag.Query{Text: c.query, TopK: 10})
		got := sources(hits)
		if len(got) == 0 || !slices.Contains(got[:min(3, len(got))], c.want) {
			t.Errorf("search %q: top sources %v, want %s in the first 3", c.query, got, c.want)
			continue
		}
		h := hits[slices.IndexFunc(hits, func(h rag.Hit) bool { return h.Source == c.want })]
		if h.Title == "" || h.Text == "" || h.Score <= 0 || h.URL != knowledge.RunbookURL(c.want) || h.Root != knowledge.Root {
			t.Errorf("hit for %q lacks metadata: %+v", c.query, h)
		}
		for i := 1; i < len(hits); i++ {
			if hits[i].Score > hits[i-1].Score {
				t.Errorf("search %q: hits not ordered by score: %v then %v", c.query, hits[i-1].Score, hits[i].Score)
			}
		}
	}
	if hits := search(t, s, rag.Query{Text: "crash", TopK: 2}); len(hits) > 2 {
		t.Errorf("top_k 2 gave %d hits", len(hits))
	}
	// Chunks carry their headings and the alerts they name.
	// (Stores that rank runbooks return each one's best chunk: the query
	// asks for the Diagnosis section's words, not the alert's name.)
	hits := search(t, s, rag.Query{Text: "pod crash loop diagnosis: check pod events, describe pod, pod logs, template parameters", TopK: 20})
	var diag *rag.Hit
	for i := range hits {
		if hits[i].Source == "kubernetes/KubePodCrashLooping.md" && strings.Contains(hits[i].Heading, "Diagnosis") {
			diag = &hits[i]
			break
		}
	}
	if diag == nil {
		t.Fatalf("no Diagnosis chunk of KubePodCrashLooping in %v", sources(hits))
	}
	if !slices.Contains(diag.Alerts, "KubePodCrashLooping") || !slices.Contains(diag.RunbookFor, "KubePodCrashLooping") {
		t.Errorf("chunk alerts %v, runbook for %v", diag.Alerts, diag.RunbookFor)
	}
}

// DirectLinks finds runbooks by runbook_url and alert name.
func DirectLinks(t *testing.T, s rag.Store) {
	defer s.Close()
	ctx := context.Background()
	ingest(t, s, DefaultRunbooks(t), nil)

	// By URL, spelled as kube-prometheus spells it.
	hits := search(t, s, rag.Query{RunbookURL: "https://runbooks.prometheus-operator.dev/runbooks/etcd/etcdnoleader", TopK: 100})
	if got := sources(hits); len(got) != 1 || got[0] != "etcd/etcdNoLeader.md" {
		t.Fatalf("by URL: sources %v", got)
	}
	// By alert name, any case.
	hits = search(t, s, rag.Query{Alert: "kubepodcrashlooping", TopK: 100})
	if got := sources(hits); len(got) != 1 || got[0] != "kubernetes/KubePodCrashLooping.md" {
		t.Fatalf("by alert: sources %v", got)
	}
	// A filter with text ranks within the document; chunks the text does
	// not match still come back.
	all := search(t, s, rag.Query{Alert: "etcdNoLeader", TopK: 100})
	ranked := search(t, s, rag.Query{Alert: "etcdNoLeader", Text: "slow disk sync duration", TopK: 100})
	if len(all) < 2 || len(ranked) != len(all) {
		t.Fatalf("filtered: %d chunks, with text %d", len(all), len(ranked))
	}
	if !strings.Contains(strings.ToLower(ranked[0].Heading+ranked[0].Text), "disk") {
		t.Errorf("best chunk for 'slow disk' is %q: %.80q", ranked[0].Heading, ranked[0].Text)
	}
	if hits := search(t, s, rag.Query{Alert: "NoSuchAlertAnywhere", TopK: 10}); len(hits) != 0 {
		t.Errorf("unknown alert matched %v", sources(hits))
	}

	// Through the retriever, as runbook_enricher and ask_ai use it.
	r := &rag.Retriever{Store: s}
	f := &event.Finding{Title: "Kubernetes API server is down", Event: event.Event{
		Labels:      map[string]string{"alertname": "SomethingCustom"},
		Annotations: map[string]string{"runbook_url": "https://runbooks.prometheus-operator.dev/runbooks/kubernetes/kubeapidown/"},
	}}
	got, err := r.ForFinding(ctx, f, 3, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || !got[0].Direct || got[0].Source != "kubernetes/KubeAPIDown.md" || got[1].Direct {
		t.Fatalf("ForFinding by URL: %v (direct %v)", sources(got), got[0].Direct)
	}
	if len(sources(got)) != 3 {
		t.Errorf("want 3 distinct runbooks, got %v", sources(got))
	}
	// The upstream runbook PrometheusRemoteWriteBehind.md has the H1
	// PrometheusRemoteStorageFailures; the alert's own file wins.
	f = &event.Finding{Title: "x", Event: event.Event{Labels: map[string]string{"alertname": "PrometheusRemoteStorageFailures"}}}
	got, err = r.ForFinding(ctx, f, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Source != "prometheus/PrometheusRemoteStorageFailures.md" || !got[0].Direct {
		t.Fatalf("ForFinding by name: %v", sources(got))
	}
}

// IncrementalReingest skips unchanged files, re-indexes changed ones and
// removes deleted ones.
func IncrementalReingest(t *testing.T, s rag.Store) {
	defer s.Close()
	ctx := context.Background()
	fsys := DefaultRunbooks(t)
	n := CountRunbooks(fsys)
	first := ingest(t, s, fsys, nil)
	v1, _ := s.Version(ctx)

	again := ingest(t, s, fsys, nil)
	if again.Unchanged != n || again.Added+again.Updated+again.Deleted != 0 || again.Chunks != 0 {
		t.Fatalf("second ingest of the same files: %+v", again)
	}
	if v, _ := s.Version(ctx); v != v1 {
		t.Errorf("version changed without a change: %s → %s", v1, v)
	}

	const changed = "kubernetes/KubePodCrashLooping.md"
	const removed = "general/Watchdog.md"
	const added = "team/PaymentsQueueBacklog.md"
	fsys[changed] = &fstest.MapFile{Data: append(fsys[changed].Data, []byte("\n## Zanzibar\n\nCheck the quokkaflux sidecar first.\n")...)}
	delete(fsys, removed)
	fsys[added] = &fstest.MapFile{Data: []byte("# PaymentsQueueBacklog\n\n## Meaning\n\nThe payments queue has a xylophonic backlog.\n")}
	third := ingest(t, s, fsys, nil)
	if third.Updated != 1 || third.Added != 1 || third.Deleted != 1 || third.Unchanged != n-2 {
		t.Fatalf("ingest after changes: %+v", third)
	}
	if third.Chunks >= first.Chunks {
		t.Errorf("re-ingest wrote %d chunks; only the changed files' should be written", third.Chunks)
	}
	if v, _ := s.Version(ctx); v == v1 {
		t.Error("version unchanged after a change")
	}
	if got := sources(search(t, s, rag.Query{Text: "quokkaflux", TopK: 5})); len(got) != 1 || got[0] != changed {
		t.Errorf("new text of a changed file: %v", got)
	}
	if got := sources(search(t, s, rag.Query{Text: "xylophonic", TopK: 5})); len(got) != 1 || got[0] != added {
		t.Errorf("added file: %v", got)
	}
	for _, h := range search(t, s, rag.Query{Text: "alerting pipeline functional always firing Watchdog", TopK: 50}) {
		if h.Source == removed {
			t.Fatalf("deleted file still found")
		}
	}
	// A changed file's old chunks are gone: it has exactly the new ones.
	chunks := search(t, s, rag.Query{Alert: "KubePodCrashLooping", TopK: 100})
	seqs := map[int]bool{}
	for _, h := range chunks {
		if seqs[h.Seq] {
			t.Fatalf("duplicate chunk %d of %s", h.Seq, changed)
		}
		seqs[h.Seq] = true
	}
	for i := range len(seqs) {
		if !seqs[i] {
			t.Fatalf("chunks of %s: %v, want 0..%d", changed, seqs, len(seqs)-1)
		}
	}
	srcs, _ := s.Sources(ctx)
	if len(srcs) != n {
		t.Errorf("%d sources after +1 -1, want %d", len(srcs), n)
	}
}

// Delete removes one source's chunks and nothing else; another root with
// the same relative path is independent.
func Delete(t *testing.T, s rag.Store) {
	defer s.Close()
	ctx := context.Background()
	fsys := DefaultRunbooks(t)
	n := CountRunbooks(fsys)
	ingest(t, s, fsys, nil)
	const other = "/srv/team-runbooks"
	in := &rag.Ingester{Store: s}
	if _, err := in.Ingest(ctx, other, fstest.MapFS{"etcd/etcdNoLeader.md": &fstest.MapFile{Data: []byte("# etcdNoLeader\n\nOur own notes: call the storage team.\n")}}); err != nil {
		t.Fatal(err)
	}
	v1, _ := s.Version(ctx)
	if err := s.DeleteSource(ctx, knowledge.Root, "etcd/etcdNoLeader.md"); err != nil {
		t.Fatal(err)
	}
	if v, _ := s.Version(ctx); v == v1 {
		t.Error("version unchanged after a delete")
	}
	srcs, _ := s.Sources(ctx)
	if len(srcs) != n {
		t.Fatalf("%d sources after deleting 1 of %d+1", len(srcs), n)
	}
	hits := search(t, s, rag.Query{Alert: "etcdNoLeader", TopK: 100})
	for _, h := range hits {
		if h.Root != other {
			t.Fatalf("deleted source still found: %s %s", h.Root, h.Source)
		}
	}
	if len(hits) == 0 {
		t.Fatal("the other root's file went too")
	}
	if hits := search(t, s, rag.Query{RunbookURL: knowledge.RunbookURL("etcd/etcdNoLeader.md"), TopK: 10}); len(hits) != 0 {
		t.Errorf("deleted runbook still linked: %v", sources(hits))
	}
	// Deleting what is not there is not an error.
	if err := s.DeleteSource(ctx, knowledge.Root, "etcd/etcdNoLeader.md"); err != nil {
		t.Errorf("second delete: %v", err)
	}
	// Ingesting the root again without the file keeps it deleted; with an
	// empty tree, the root's sources all go.
	rep, err := (&rag.Ingester{Store: s}).Ingest(ctx, other, fstest.MapFS{})
	if err != nil || rep.Deleted != 1 {
		t.Fatalf("empty re-ingest: %+v, %v", rep, err)
	}
	if hits := search(t, s, rag.Query{Text: "storage team", TopK: 10}); len(hits) != 0 && hits[0].Root == other {
		t.Errorf("other root still searchable")
	}
}

// Hybrid stores vectors, fuses them with BM25, and re-embeds when the
// embedding model changes.
func Hybrid(t *testing.T, s rag.Store) {
	defer s.Close()
	ctx := context.Background()
	fsys := DefaultRunbooks(t)
	n := CountRunbooks(fsys)
	emb := &HashEmbedder{Model: "hash-64", Dims: 64}
	rep := ingest(t, s, fsys, emb)
	if rep.Added != n {
		t.Fatalf("report %+v", rep)
	}
	srcs, _ := s.Sources(ctx)
	for _, x := range srcs {
		if x.EmbeddingModel != "hash-64" {
			t.Fatalf("source %s embedded with %q", x.Source, x.EmbeddingModel)
		}
	}
	r := &rag.Retriever{Store: s, Embedder: emb}
	hits, err := r.Search(ctx, "etcd cluster has no leader", 5, 1)
	if err != nil {
		t.Fatal(err)
	}
	if got := sources(hits); len(got) == 0 || !slices.Contains(got[:min(3, len(got))], "etcd/etcdNoLeader.md") {
		t.Errorf("hybrid: %v", got)
	}
	// Vectors alone (alpha 1) rank by the embedding.
	one := 1.0
	vec, _ := emb.Embed(ctx, []string{"etcd no leader"})
	vhits := search(t, s, rag.Query{Text: "etcd no leader", Vector: vec[0], Alpha: &one, TopK: 5})
	if len(vhits) == 0 {
		t.Fatal("vector search found nothing")
	}
	// Lexical alone (alpha 0) equals a search without a vector.
	zero := 0.0
	lex := sources(search(t, s, rag.Query{Text: "disk pressure", Vector: vec[0], Alpha: &zero, TopK: 5}))
	plain := sources(search(t, s, rag.Query{Text: "disk pressure", TopK: 5}))
	if !slices.Equal(lex, plain) {
		t.Errorf("alpha 0: %v, lexical: %v", lex, plain)
	}
	// The same model skips everything.
	if again := ingest(t, s, fsys, emb); again.Unchanged != n {
		t.Errorf("same model: %+v", again)
	}
	// A new model (other dimensions) makes the store stale; it is emptied
	// and rebuilt.
	emb2 := &HashEmbedder{Model: "hash-32", Dims: 32}
	if stale, err := rag.StaleEmbeddings(ctx, s, emb.Model); err != nil || stale {
		t.Fatalf("stale for the same model: %v %v", stale, err)
	}
	if stale, err := rag.StaleEmbeddings(ctx, s, emb2.Model); err != nil || !stale {
		t.Fatalf("not stale for a new model: %v %v", stale, err)
	}
	if err := s.DeleteAll(ctx); err != nil {
		t.Fatal(err)
	}
	if srcs, _ := s.Sources(ctx); len(srcs) != 0 {
		t.Fatalf("%d sources after DeleteAll", len(srcs))
	}
	if again := ingest(t, s, fsys, emb2); again.Added != n {
		t.Errorf("new model: %+v", again)
	}
	r2 := &rag.Retriever{Store: s, Embedder: emb2}
	hits, err = r2.Search(ctx, "etcd cluster has no leader", 3, 1)
	if err != nil || len(hits) == 0 {
		t.Errorf("search with the new model: %v %v", sources(hits), err)
	}
}

// HashEmbedder is a deterministic bag-of-words embedder for tests: each
// lower-cased word adds to one of Dims buckets; vectors are unit length.
type HashEmbedder struct {
	Model string
	Dims  int
}

// EmbeddingModel implements rag.Embedder.
func (e *HashEmbedder) EmbeddingModel() string { return e.Model }

// Embed implements rag.Embedder.
func (e *HashEmbedder) Embed(_ context.Context, texts []string) ([][]float32, error) {
	out := make([][]float32, len(texts))
	for i, t := range texts {
		v := make([]float32, e.Dims)
		for _, w := range strings.FieldsFunc(strings.ToLower(t), func(r rune) bool { return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9') }) {
			h := fnv.New32a()
			h.Write([]byte(w))
			v[h.Sum32()%uint32(e.Dims)]++
		}
		var norm float64
		for _, x := range v {
			norm += float64(x * x)
		}
		if norm == 0 {
			v[0], norm = 1, 1
		}
		for j := range v {
			v[j] = float32(float64(v[j]) / math.Sqrt(norm))
		}
		out[i] = v
	}
	return out, nil
}

// OneHitPerSource: the store's search and the retriever (what `medic kb
// search`, runbook_enricher and the prompt use) return each runbook once,
// for questions that match several sections of one runbook.
func OneHitPerSource(t *testing.T, s rag.Store) {
	defer s.Close()
	ctx := context.Background()
	ingest(t, s, DefaultRunbooks(t), nil)
	r := &rag.Retriever{Store: s}
	for _, q := range []string{
		"pods keep restarting after the deploy",
		"etcd cluster has no leader",
		"node ran out of disk",
		"KubePodCrashLooping diagnosis check pod events describe",
		"alertmanager notifications failing",
	} {
		seen := map[string]bool{}
		for _, h := range search(t, s, rag.Query{Text: q, TopK: 10}) {
			k := h.Root + ":" + h.Source
			if seen[k] {
				t.Errorf("store search %q: %s twice", q, k)
			}
			seen[k] = true
		}
		for _, perSource := range []int{0, 1, 3} {
			hits, err := r.Search(ctx, q, 10, perSource)
			if err != nil {
				t.Fatal(err)
			}
			seen := map[string]bool{}
			for _, h := range hits {
				k := h.Root + ":" + h.Source
				if seen[k] {
					t.Errorf("%q (per source %d): %s twice in %v", q, perSource, k, sources(hits))
				}
				seen[k] = true
			}
		}
	}
}
