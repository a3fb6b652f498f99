package all_test

import (
	"os"
	"regexp"
	"slices"
	"testing"

	"github.com/medichq/medic/sinks"
	_ "github.com/medichq/medic/sinks/all"
)

// docs/sinks.md has one row per sink type medic ships, and no other: a new
// sink cannot land without its row, nor a removed one leave it behind.
func TestEverySinkHasItsRowInTheDocs(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile("../../docs/sinks.md")
	if err != nil {
		t.Fatal(err)
	}
	var rows []string
	for _, m := range regexp.MustCompile("(?m)^\\| `([a-z_]+)` \\|").FindAllSubmatch(doc, -1) {
		rows = append(rows, string(m[1]))
	}
	types := sinks.Types()
	for _, typ := range types {
		if !slices.Contains(rows, typ) {
			t.Errorf("sink type %s has no row in docs/sinks.md", typ)
		}
	}
	for _, row := range rows {
		if !slices.Contains(types, row) {
			t.Errorf("docs/sinks.md has a row for %s, which is not a registered sink type (%v)", row, types)
		}
	}
	if len(rows) != len(types) {
		t.Errorf("docs/sinks.md has %d rows for %d sink types", len(rows), len(types))
	}
}
