package params_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/medichq/medic/params"
)

func TestSyntaxErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		doc  string
		want []string // "line: message prefix"
	}{
		{"valid", "a: 1\nb: [2]\n", nil},
		{"tab in indentation", "a: 1\nb:\n\tc: 2\n", []string{"3: " + params.TabMsg}},
		{"tab after spaces", "a:\n  b: 1\n  \tc: 2\n", []string{"3: " + params.TabMsg}},
		{"key dedented is reported at its own line", "a:\n  b: 1\n c: 2\nd: 3\n", []string{"3: invalid YAML: did not find expected key (is this line"}},
		{"list item dedented", "- name: x\n  triggers:\n    - a\n   - b\n", []string{"4: invalid YAML: did not find expected key"}},
		{"unclosed flow list", "a: 1\nb: [\n", []string{"2: invalid YAML: did not find expected node content"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			errs := params.SyntaxErrors([]byte(tt.doc))
			if len(errs) != len(tt.want) {
				t.Fatalf("got %v, want %v", errs, tt.want)
			}
			for i, e := range errs {
				line, msg, _ := strings.Cut(tt.want[i], ": ")
				if got := e.Error(); !strings.HasPrefix(got, "line "+line+": "+msg) {
					t.Errorf("error %d: %q, want line %s: %s…", i, got, line, msg)
				}
			}
		})
	}
}

func TestUntabIndent(t *testing.T) {
	t.Parallel()
	out, ok := params.UntabIndent([]byte("a:\n\tb: 1\n\tc:\n\t\td: 2\n"))
	if !ok || string(out) != "a:\n        b: 1\n        c:\n                d: 2\n" {
		t.Fatalf("ok=%v\n%s", ok, out)
	}
	if _, ok := params.UntabIndent([]byte("a: [\n\tb\n")); ok {
		t.Error("an unclosed list parsed after untabbing")
	}
}

func TestUnknownKeysReportsEveryKeyWithPathAndSuggestion(t *testing.T) {
	t.Parallel()
	doc := "url: x\nretris: 3\ntls: {ca_fil: a}\nheaders:\n  - {name: a, valeu: b}\nbanana: 1\n"
	errs := params.UnknownKeys(node(t, doc), reflect.TypeFor[hookParams](), "key")
	type got struct {
		Line              int
		Field, Suggestion string
	}
	want := []got{{2, "retris", "retries"}, {3, "tls.ca_fil", "ca_file"}, {5, "headers[0].valeu", "value"}, {6, "banana", ""}}
	if len(errs) != len(want) {
		t.Fatalf("got %v", errs)
	}
	for i, e := range errs {
		if g := (got{e.Line, e.Field, e.Suggestion}); g != want[i] {
			t.Errorf("error %d: %+v, want %+v (%s)", i, g, want[i], e.Msg)
		}
	}
}

func TestSuggest(t *testing.T) {
	t.Parallel()
	known := []string{"on_prometheus_alert", "on_pod_crash_loop", "create_finding"}
	tests := []struct{ got, want string }{
		{"on_prometheus_alrt", "on_prometheus_alert"},
		{"prometheus_alert", "on_prometheus_alert"},
		{"create_findings", "create_finding"},
		{"banana", ""},
	}
	for _, tt := range tests {
		if s := params.Suggest(tt.got, known); s != tt.want {
			t.Errorf("Suggest(%q) = %q, want %q", tt.got, s, tt.want)
		}
	}
}
