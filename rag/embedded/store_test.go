package embedded_test

import (
	"context"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/medichq/medic/knowledge"
	"github.com/medichq/medic/rag"
	"github.com/medichq/medic/rag/embedded"
	"github.com/medichq/medic/rag/storetest"
)

func open(t *testing.T) rag.Store {
	t.Helper()
	s, err := embedded.Open(embedded.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestStore runs the store suite: ingest the default runbooks, search,
// direct links, incremental re-ingest, delete, hybrid.
func TestStore(t *testing.T) {
	t.Parallel()
	storetest.Run(t, open)
}

// TestReopen: the index and the vectors survive a restart; a second opener
// of the same folder is refused with a clear error instead of hanging.
func TestReopen(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	s, err := embedded.Open(embedded.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	emb := &storetest.HashEmbedder{Model: "hash-16", Dims: 16}
	in := &rag.Ingester{Store: s, Embedder: emb, URLFor: knowledge.RunbookURL}
	if _, err := in.Ingest(ctx, knowledge.Root, knowledge.Runbooks()); err != nil {
		t.Fatal(err)
	}
	v1, _ := s.Version(ctx)
	if _, err := embedded.Open(embedded.Options{Dir: dir}); err == nil || !strings.Contains(err.Error(), "in use by another process") {
		t.Fatalf("second open: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = embedded.Open(embedded.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if v, _ := s.Version(ctx); v != v1 {
		t.Errorf("version %s after reopen, was %s", v, v1)
	}
	vec, _ := emb.Embed(ctx, []string{"etcd no leader"})
	one := 1.0
	hits, err := s.Search(ctx, rag.Query{Text: "etcd no leader", Vector: vec[0], Alpha: &one, TopK: 3})
	if err != nil || len(hits) == 0 {
		t.Fatalf("vector search after reopen: %v %v", hits, err)
	}
	in.Store = s
	if rep, err := in.Ingest(ctx, knowledge.Root, knowledge.Runbooks()); err != nil || rep.Unchanged != 108 {
		t.Errorf("re-ingest after reopen: %+v %v", rep, err)
	}
}

// TestRankingIndependentOfIndexHistory: the same content ranks the same
// whether it was written in one batch or in many (many index segments, then
// merges), after a reopen, and while writes run concurrently. bleve's own
// BM25 summed its statistics per segment, so its rankings moved.
func TestRankingIndependentOfIndexHistory(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	queries := []string{"pods keep restarting after the deploy", "node ran out of disk", "etcd has no leader", "certificate expired"}
	ranking := func(s *embedded.Store) []string {
		var out []string
		for _, q := range queries {
			hits, err := s.Search(ctx, rag.Query{Text: q, TopK: 10})
			if err != nil {
				t.Fatal(err)
			}
			for _, h := range hits {
				out = append(out, fmt.Sprintf("%s %s %.12g", h.Source, h.ID, h.Score))
			}
		}
		return out
	}
	// One batch.
	one, err := embedded.Open(embedded.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer one.Close()
	if _, err := (&rag.Ingester{Store: one, URLFor: knowledge.RunbookURL}).Ingest(ctx, knowledge.Root, knowledge.Runbooks()); err != nil {
		t.Fatal(err)
	}
	want := ranking(one)

	// One source per batch, with a scratch source written and deleted in
	// between, and searches running meanwhile.
	dir := t.TempDir()
	many, err := embedded.Open(embedded.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	var chunks []rag.Chunk
	err = fs.WalkDir(knowledge.Runbooks(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !rag.SupportedFile(p) {
			return err
		}
		b, err := fs.ReadFile(knowledge.Runbooks(), p)
		if err != nil {
			return err
		}
		doc := rag.ParseDocument(knowledge.Root, p, b)
		doc.URL = knowledge.RunbookURL(p)
		chunks = append(chunks, doc.Chunks(rag.DefaultChunkOptions())...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		// A few searches interleaved with the writes (each rebuilds the
		// in-memory index when a write made it stale), for the race
		// detector; not a busy loop, which would rebuild it after every
		// write.
		for range 40 {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
				if _, err := many.Search(ctx, rag.Query{Text: "disk full", TopK: 3}); err != nil {
					t.Error(err)
					return
				}
			}
		}
	}()
	for i := 0; i < len(chunks); {
		j := i + 1
		for j < len(chunks) && chunks[j].Source == chunks[i].Source {
			j++
		}
		if err := many.Upsert(ctx, chunks[i:j]); err != nil {
			t.Fatal(err)
		}
		scratch := rag.Chunk{Root: "scratch", Source: "x.md", Title: "Disk full scratch", Text: "disk full restarting pods", Hash: fmt.Sprint(i)}
		if err := many.Upsert(ctx, []rag.Chunk{scratch}); err != nil {
			t.Fatal(err)
		}
		if err := many.DeleteSource(ctx, "scratch", "x.md"); err != nil {
			t.Fatal(err)
		}
		i = j
	}
	close(stop)
	wg.Wait()
	if got := ranking(many); !slices.Equal(got, want) {
		t.Errorf("many batches:\n%v\nwant\n%v", got, want)
	}
	if err := many.Close(); err != nil {
		t.Fatal(err)
	}
	reopened, err := embedded.Open(embedded.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer reopened.Close()
	if got := ranking(reopened); !slices.Equal(got, want) {
		t.Errorf("after reopen:\n%v\nwant\n%v", got, want)
	}
}
