//go:build linux

package weaviatetest

import (
	"context"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"testing/fstest"

	wv "github.com/weaviate/weaviate-go-client/v4/weaviate"
	"github.com/weaviate/weaviate/entities/models"

	"github.com/medichq/medic/knowledge"
	"github.com/medichq/medic/rag"
	"github.com/medichq/medic/rag/storetest"
	"github.com/medichq/medic/rag/weaviate"
	"github.com/medichq/medic/test/evalrag"
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

// TestUpgradeFromChunkLayout: a collection written by an older medic (one
// object per chunk, with the boolean "first") is brought to the runbook
// layout when the store opens: its chunks are gone, so every source is
// ingested again, and searches find the runbooks.
func TestUpgradeFromChunkLayout(t *testing.T) {
	need(t)
	ctx := context.Background()
	const class = "MedicOldLayout"
	c, err := wv.NewClient(wv.Config{Host: strings.TrimPrefix(server.URL, "http://"), Scheme: "http"})
	if err != nil {
		t.Fatal(err)
	}
	text := func(name string) *models.Property {
		return &models.Property{Name: name, DataType: []string{"text"}, Tokenization: "field"}
	}
	old := &models.Class{Class: class, Vectorizer: "none", Properties: []*models.Property{
		text("title"), text("body"), text("root"), text("source"), text("key"), text("hash"),
		{Name: "first", DataType: []string{"boolean"}},
	}}
	if err := c.Schema().ClassCreator().WithClass(old).Do(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Data().Creator().WithClassName(class).WithProperties(map[string]any{
		"title": "Old", "body": "old chunk", "root": knowledge.Root, "source": "kubernetes/KubePodCrashLooping.md",
		"key": knowledge.Root + "\x00kubernetes/KubePodCrashLooping.md", "hash": "old", "first": true,
	}).Do(ctx); err != nil {
		t.Fatal(err)
	}
	s, err := weaviate.Open(ctx, weaviate.Options{URL: server.URL, Collection: class})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if srcs, err := s.Sources(ctx); err != nil || len(srcs) != 0 {
		t.Fatalf("sources after the upgrade: %v, %v", srcs, err)
	}
	n, err := c.Data().ObjectsGetter().WithClassName(class).Do(ctx)
	if err != nil || len(n) != 0 {
		t.Fatalf("%d objects left after the upgrade (%v)", len(n), err)
	}
	fsys := storetest.DefaultRunbooks(t)
	rep, err := evalrag.Ingest(ctx, s, nil, rag.DefaultChunkOptions())
	if err != nil || rep.Added != storetest.CountRunbooks(fsys) {
		t.Fatalf("ingest after the upgrade: %+v, %v", rep, err)
	}
	hits, err := s.Search(ctx, rag.Query{Text: "etcd cluster has no leader", TopK: 3})
	if err != nil || !slices.ContainsFunc(hits, func(h rag.Hit) bool { return h.Source == "etcd/etcdNoLeader.md" }) {
		t.Fatalf("search after the upgrade: %v, %v", rag.RankSources(hits), err)
	}
}

// TestSynonyms: knowledge_base.synonyms reach Weaviate searches (the query
// is expanded in medic): a word only the configuration relates to a
// runbook finds it, and nothing without the group.
func TestSynonyms(t *testing.T) {
	need(t)
	ctx := context.Background()
	fsys := fstest.MapFS{
		"postgres.md": {Data: []byte("# Postgres primary down\n\nThe database primary stopped; fail over to the replica.\n")},
		"cache.md":    {Data: []byte("# Cache eviction storm\n\nThe cache evicts keys faster than it fills.\n")},
	}
	for _, c := range []struct {
		name     string
		synonyms [][]string
		want     []string
	}{
		{"without", nil, nil},
		{"with", [][]string{{"pg", "postgres"}}, []string{"postgres.md"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, err := weaviate.Open(ctx, weaviate.Options{URL: server.URL, Collection: fmt.Sprintf("MedicSynonyms%d", collNames.Add(1)), Synonyms: c.synonyms})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if _, err := (&rag.Ingester{Store: s}).Ingest(ctx, "team", fsys); err != nil {
				t.Fatal(err)
			}
			hits, err := s.Search(ctx, rag.Query{Text: "pg", TopK: 5})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, h := range hits {
				got = append(got, h.Source)
			}
			if !slices.Equal(got, c.want) {
				t.Errorf("search \"pg\": %v, want %v", got, c.want)
			}
		})
	}
}
