package plugins_test

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/medichq/medic/internal/plugins"
)

// The lists of triggers and sinks in the docs are written by hand; Builtin
// is what the binary ships. They must name the same things, so that a
// trigger or sink cannot land (or leave) without its docs, nor Builtin
// forget a package the docs promise. (docs/sinks.md's table is checked
// against sinks/all by its own test.)
func TestBuiltinIsWhatTheDocsName(t *testing.T) {
	t.Parallel()
	readme := read(t, "../../README.md")
	set := plugins.Builtin()

	t.Run("triggers in the README", func(t *testing.T) {
		t.Parallel()
		sameNames(t, "README.md", readmeTriggers(t, readme), set.Triggers.Names())
	})
	t.Run("sink types in the chart's sinksConfig", func(t *testing.T) {
		t.Parallel()
		// The chart's values.yaml comment, rendered into the README's values
		// table by make docs-values: "type is `slack`, `teams`, … or `stdout`".
		m := regexp.MustCompile("type is ((?:`[a-z_]+`(?:, | or ))+`[a-z_]+`)").FindStringSubmatch(readme)
		if m == nil {
			t.Fatal("README.md: no \"type is `…`, … or `…`\" list in the sinksConfig row")
		}
		sameNames(t, "README.md's sinksConfig row", backticked(m[1]), set.Sinks.Types())
	})
	t.Run("sinks in the README's introduction", func(t *testing.T) {
		t.Parallel()
		// "…and sinks deliver it: Slack (…), Microsoft Teams, …, stdout."
		m := regexp.MustCompile(`sinks deliver it: ([^.]+)\.`).FindStringSubmatch(readme)
		if m == nil {
			t.Fatal("README.md: no \"sinks deliver it: …\" sentence")
		}
		var items []string
		for _, item := range strings.Split(regexp.MustCompile(`\([^)]*\)`).ReplaceAllString(m[1], ""), ",") {
			items = append(items, strings.Join(strings.Fields(item), " "))
		}
		if len(items) != len(set.Sinks.Types()) {
			t.Errorf("README.md's introduction names %d sinks (%q), Builtin has %d sink types (%v)",
				len(items), items, len(set.Sinks.Types()), set.Sinks.Types())
		}
	})
}

// readmeTriggers lists the triggers the README names: each `on_…` in
// backquotes, the change triggers of its `on_<kind>_<op>` row for every Kind
// that row lists, and the `on_…_create` … `_update`, … shorthand.
func readmeTriggers(t *testing.T, readme string) []string {
	t.Helper()
	names := backticked(strings.Join(regexp.MustCompile("`on_[a-z_]+`").FindAllString(readme, -1), " "))
	kinds := regexp.MustCompile("`on_<kind>_create`.* for `<kind>` in ((?:`[a-z]+`, )+`[a-z]+`)").FindStringSubmatch(readme)
	if kinds == nil {
		t.Fatal("README.md: no row of `on_<kind>_create`, … for `<kind>` in `pod`, …")
	}
	ops := []string{"create", "update", "delete", "all_changes"}
	for _, kind := range backticked(kinds[1]) {
		for _, op := range ops {
			names = append(names, "on_"+kind+"_"+op)
		}
	}
	for _, m := range regexp.MustCompile("`(on_[a-z_]+_)create` … ((?:`_[a-z_]+`(?:, )?)+)").FindAllStringSubmatch(readme, -1) {
		names = append(names, m[1]+"create")
		for _, suffix := range backticked(m[2]) {
			names = append(names, m[1]+strings.TrimPrefix(suffix, "_"))
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// sameNames fails t for each name only one of documented and registered has.
func sameNames(t *testing.T, doc string, documented, registered []string) {
	t.Helper()
	for _, n := range registered {
		if !slices.Contains(documented, n) {
			t.Errorf("%s is in plugins.Builtin but %s does not name it", n, doc)
		}
	}
	for _, n := range documented {
		if !slices.Contains(registered, n) {
			t.Errorf("%s names %s, which plugins.Builtin does not register", doc, n)
		}
	}
}

func backticked(s string) []string {
	var out []string
	for _, m := range regexp.MustCompile("`([^`]+)`").FindAllStringSubmatch(s, -1) {
		out = append(out, m[1])
	}
	return out
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
