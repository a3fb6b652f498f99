package evalrag_test

import (
	"context"
	"testing"

	"github.com/medichq/medic/rag"
	"github.com/medichq/medic/rag/embedded"
	"github.com/medichq/medic/test/evalrag"
)

// TestEmbeddedStore runs the evaluation `make eval-rag` prints against the
// embedded store (lexical) and holds it to its floors: the symptom set's
// recall@3 at least 0.95, the alert-name set as good as it was.
func TestEmbeddedStore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	set, err := evalrag.Load("", "")
	if err != nil {
		t.Fatal(err)
	}
	if set.Alerts() < 100 || set.Symptoms() < 100 {
		t.Fatalf("%d alert questions, %d symptom questions: the sets shrank", set.Alerts(), set.Symptoms())
	}
	s, err := embedded.Open(embedded.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := evalrag.Ingest(ctx, s, nil, rag.DefaultChunkOptions()); err != nil {
		t.Fatal(err)
	}
	rep, err := evalrag.Run(ctx, s, nil, set)
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range evalrag.Modes {
		t.Logf("%-42s %s", mode, rep.Modes[mode].Row())
	}
	for _, f := range evalrag.Check(rep, evalrag.Floors(0.95)) {
		t.Error(f)
	}
}
