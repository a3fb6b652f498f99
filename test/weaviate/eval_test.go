//go:build linux

package weaviatetest

import (
	"context"
	"testing"

	"github.com/medichq/medic/rag/weaviate"
	"github.com/medichq/medic/test/evalrag"
)

// TestEval runs the evaluation `make eval-rag` prints against a real
// Weaviate (BM25, the default runbooks) and holds it to the embedded
// store's floors, except the symptom set's recall@3: 0.94 here (0.95
// measured, one question less than the embedded store: Weaviate's score
// lacks the best section's share).
func TestEval(t *testing.T) {
	need(t)
	s, err := weaviate.Open(context.Background(), weaviate.Options{URL: server.URL, Collection: "MedicEval"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	evalrag.Test(t, s, evalrag.Floors(0.94))
}
