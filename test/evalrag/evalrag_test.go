package evalrag_test

import (
	"testing"

	"github.com/medichq/medic/rag/embedded"
	"github.com/medichq/medic/test/evalrag"
)

// TestEmbeddedStore runs the evaluation `make eval-rag` prints against the
// embedded store (lexical) and holds it to its floors: the symptom set's
// recall@3 at least 0.95, the alert-name set as good as it was.
func TestEmbeddedStore(t *testing.T) {
	t.Parallel()
	s, err := embedded.Open(embedded.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	evalrag.Test(t, s, evalrag.Floors(0.95))
}
