package embedded_test

import (
	"testing"

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
