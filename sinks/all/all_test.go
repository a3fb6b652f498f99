package all_test

import (
	"fmt"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/medichq/medic/internal/testkit"
	"github.com/medichq/medic/sinks"
	"github.com/medichq/medic/sinks/all"
)

// registered is what all.Register adds.
var registered = sinks.NewRegistry(all.Register)

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
	types := registered.Types()
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

// Each sink takes only the part of sinks.Deps it uses (its New declares it
// as an interface); the golden file lists that part per sink, so a sink that
// starts to need more of medic says so in review.
func TestWhatEachSinkUses(t *testing.T) {
	t.Parallel()
	all := reflect.TypeFor[sinks.Deps]().NumMethod()
	var b strings.Builder
	for _, typ := range registered.Types() {
		uses := registered.Uses(typ)
		if len(uses) == 0 || len(uses) >= all {
			t.Errorf("sink %s uses %d of Deps's %d methods (%v): want a part, not none or all", typ, len(uses), all, uses)
		}
		fmt.Fprintf(&b, "%s: %s\n", typ, strings.Join(uses, ", "))
	}
	testkit.Golden(t, "testdata/uses.golden", []byte(b.String()))
}
