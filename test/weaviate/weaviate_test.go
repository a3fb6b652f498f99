//go:build linux

package weaviatetest

import (
	"context"
	"flag"
	"fmt"
	"os"
	"sync/atomic"
	"testing"

	"github.com/medichq/medic/rag"
	"github.com/medichq/medic/rag/storetest"
	"github.com/medichq/medic/rag/weaviate"
)

var (
	server    *Server
	skipWhy   string
	collNames atomic.Int64
)

// TestMain builds Weaviate (outside the namespace: the build needs the
// module proxy), then re-executes the test binary under `unshare -n`, where
// it starts Weaviate on loopback and runs the tests.
func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		skipWhy = "real Weaviate test: skipped with -short (it builds weaviate-server, about 3.5 minutes the first time)"
		os.Exit(m.Run())
	}
	if !InNamespace() {
		if _, err := Binary(); err != nil {
			fmt.Fprintln(os.Stderr, "weaviatetest: build:", err)
			os.Exit(1)
		}
		code, err := ReexecInNamespace()
		if err == nil {
			os.Exit(code)
		}
		skipWhy = "real Weaviate test: needs a private network namespace: " + err.Error()
		os.Exit(m.Run())
	}
	bin, err := Binary()
	if err != nil {
		fmt.Fprintln(os.Stderr, "weaviatetest:", err)
		os.Exit(1)
	}
	dir, err := os.MkdirTemp("", "medic-weaviate-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	server, err = Start(bin, dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "weaviatetest:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	if code != 0 {
		fmt.Fprintf(os.Stderr, "weaviate output (tail):\n%s\n", server.Output())
	}
	server.Stop()
	os.RemoveAll(dir)
	os.Exit(code)
}

func need(t *testing.T) {
	t.Helper()
	if skipWhy != "" {
		t.Skip(skipWhy)
	}
}

// opener gives every test a fresh collection (or a fresh tenant).
func opener(tenant bool) storetest.Opener {
	return func(t *testing.T) rag.Store {
		t.Helper()
		n := collNames.Add(1)
		opts := weaviate.Options{URL: server.URL, Collection: fmt.Sprintf("MedicTest%d", n), Alpha: 0.5}
		if tenant {
			opts.Collection = "MedicTenants"
			opts.Tenant = fmt.Sprintf("team%d", n)
		}
		s, err := weaviate.Open(context.Background(), opts)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
}

// TestStore runs the same store suite as the embedded store's: ingest the
// default runbooks, search, direct links, incremental re-ingest, delete,
// hybrid search with vectors.
func TestStore(t *testing.T) {
	need(t)
	storetest.Run(t, opener(false))
}

// TestStoreTenants runs it with one tenant per knowledge base in one
// multi-tenant collection.
func TestStoreTenants(t *testing.T) {
	need(t)
	storetest.Run(t, opener(true))
}

// TestTenantsAreSeparate: two knowledge bases in one collection do not see
// each other's chunks.
func TestTenantsAreSeparate(t *testing.T) {
	need(t)
	ctx := context.Background()
	a := opener(true)(t)
	b := opener(true)(t)
	defer a.Close()
	defer b.Close()
	chunk := rag.Chunk{Root: "r", Source: "a.md", Title: "Zebra runbook", Text: "the zebra escaped", Hash: "h"}
	chunk.ID = rag.ChunkID("r", "a.md", 0)
	if err := a.Upsert(ctx, []rag.Chunk{chunk}); err != nil {
		t.Fatal(err)
	}
	if hits, err := b.Search(ctx, rag.Query{Text: "zebra", TopK: 5}); err != nil || len(hits) != 0 {
		t.Fatalf("other tenant sees %v (%v)", hits, err)
	}
	if hits, err := a.Search(ctx, rag.Query{Text: "zebra", TopK: 5}); err != nil || len(hits) != 1 {
		t.Fatalf("own tenant: %v (%v)", hits, err)
	}
}

// TestReopenKeepsCollection: opening an existing collection reuses it.
func TestReopenKeepsCollection(t *testing.T) {
	need(t)
	ctx := context.Background()
	opts := weaviate.Options{URL: server.URL, Collection: "MedicReopen"}
	s, err := weaviate.Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	c := rag.Chunk{ID: rag.ChunkID("r", "x.md", 0), Root: "r", Source: "x.md", Title: "x", Text: "persistent words", Hash: "h1"}
	if err := s.Upsert(ctx, []rag.Chunk{c}); err != nil {
		t.Fatal(err)
	}
	s2, err := weaviate.Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	srcs, err := s2.Sources(ctx)
	if err != nil || len(srcs) != 1 || srcs[0].Hash != "h1" {
		t.Fatalf("sources after reopen: %+v, %v", srcs, err)
	}
}
