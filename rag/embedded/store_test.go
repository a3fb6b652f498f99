package embedded_test

import (
	"context"
	"strings"
	"testing"

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
func TestStore(t *testing.T) { storetest.Run(t, open) }

// TestReopen: the index and the vectors survive a restart; a second opener
// of the same folder is refused with a clear error instead of hanging.
func TestReopen(t *testing.T) {
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
