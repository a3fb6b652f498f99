package agenttest

import (
	"context"
	"testing"

	"github.com/medichq/medic/knowledge"
	"github.com/medichq/medic/rag"
	"github.com/medichq/medic/rag/embedded"
)

// KB is an embedded knowledge base holding medic's default runbooks (the
// real store and ingestion, in a temporary folder), closed at the end of
// the test.
func KB(t testing.TB) *rag.Retriever {
	t.Helper()
	store, err := embedded.Open(embedded.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	in := rag.Ingester{Store: store, URLFor: knowledge.RunbookURL}
	if _, err := in.Ingest(context.Background(), knowledge.Root, knowledge.Runbooks()); err != nil {
		t.Fatal(err)
	}
	return &rag.Retriever{Store: store}
}
