package params_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/medichq/medic/params"
)

type header struct {
	Name  string `yaml:"name"`
	Value string `yaml:"value"`
}

type tls struct {
	CAFile   string `yaml:"ca_file"`
	Insecure bool   `yaml:"insecure_skip_verify"`
}

type common struct {
	Timeout time.Duration `yaml:"timeout"`
}

type hookParams struct {
	URL     string            `yaml:"url"`
	Retries int               `yaml:"retries"`
	TLS     tls               `yaml:"tls"`
	TLSPtr  *tls              `yaml:"tls_ptr"`
	Headers []header          `yaml:"headers"`
	Routes  map[string]header `yaml:"routes"`
	Tags    []string          `yaml:"tags"`
	Labels  map[string]string `yaml:"labels"`
	Common  common            `yaml:",inline"`
	Ignored string            `yaml:"-"`
	NoTag   string
}

func defaults() *hookParams { return &hookParams{URL: "http://default", Retries: 3} }

func node(t *testing.T, doc string) *yaml.Node {
	t.Helper()
	var n yaml.Node
	if err := yaml.Unmarshal([]byte(doc), &n); err != nil {
		t.Fatalf("parse YAML: %v", err)
	}
	return &n
}

func TestDecode(t *testing.T) {
	t.Parallel()
	p := defaults()
	err := params.Decode(node(t, `
url: https://hooks.example
tls: {ca_file: /etc/ca.pem}
tls_ptr: {insecure_skip_verify: true}
headers:
  - {name: X-Team, value: payments}
routes:
  critical: {name: pager}
tags: [a, b]
labels: {env: prod}
timeout: 5s
notag: yes-it-works
`), p)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	want := hookParams{
		URL: "https://hooks.example", Retries: 3,
		TLS: tls{CAFile: "/etc/ca.pem"}, TLSPtr: &tls{Insecure: true},
		Headers: []header{{Name: "X-Team", Value: "payments"}},
		Routes:  map[string]header{"critical": {Name: "pager"}},
		Tags:    []string{"a", "b"}, Labels: map[string]string{"env": "prod"},
		Common: common{Timeout: 5 * time.Second},
		NoTag:  "yes-it-works",
	}
	if p.URL != want.URL || p.Retries != want.Retries || p.TLS != want.TLS || *p.TLSPtr != *want.TLSPtr ||
		!slices.Equal(p.Headers, want.Headers) || p.Routes["critical"] != want.Routes["critical"] ||
		!slices.Equal(p.Tags, want.Tags) || p.Labels["env"] != "prod" || p.Common != want.Common || p.NoTag != want.NoTag {
		t.Errorf("Decode = %+v, want %+v", *p, want)
	}
}

func TestDecodeUnknownKeys(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		doc      string
		wantLine int
		wantMsg  string
	}{
		{"top level with suggestion", "url: x\nretires: 5\n", 2, `unknown parameter "retires" (did you mean "retries"?)`},
		{"no close match lists the known keys", "url: x\nbanana: 1\n", 2, `unknown parameter "banana" (known: headers, labels, notag, retries, routes, tags, timeout, tls, tls_ptr, url)`},
		{"nested struct", "tls:\n  ca_file: x\n  insecure: true\n", 3, `unknown parameter "insecure"`},
		{"nested struct suggestion", "tls:\n  ca_fil: x\n", 2, `unknown parameter "ca_fil" (did you mean "ca_file"?)`},
		{"pointer to struct", "tls_ptr:\n  cafile: x\n", 2, `unknown parameter "cafile" (did you mean "ca_file"?)`},
		{"slice of struct", "headers:\n  - name: a\n    value: b\n  - name: c\n    vaule: d\n", 5, `unknown parameter "vaule" (did you mean "value"?)`},
		{"map of struct", "routes:\n  critical:\n    name: pager\n  warning:\n    nmae: chat\n", 5, `unknown parameter "nmae" (did you mean "name"?)`},
		{"inline fields are known, others are not", "timeout: 1s\ntimeot: 2s\n", 2, `unknown parameter "timeot" (did you mean "timeout"?)`},
		{"yaml:\"-\" fields are not parameters", "ignored: x\n", 1, `unknown parameter "ignored"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := params.Decode(node(t, tt.doc), defaults())
			var pe *params.Error
			if !errors.As(err, &pe) {
				t.Fatalf("error = %v (%T), want a *params.Error", err, err)
			}
			if pe.Line != tt.wantLine || pe.Msg != tt.wantMsg && !strings.HasPrefix(pe.Msg, tt.wantMsg) {
				t.Errorf("error = %q, want line %d: %q", err, tt.wantLine, tt.wantMsg)
			}
		})
	}
}

func TestNoParameters(t *testing.T) {
	t.Parallel()
	type none struct{}
	err := params.Decode(node(t, "anything: 1\n"), &none{})
	if err == nil || !strings.Contains(err.Error(), `line 1: unknown parameter "anything" (it takes no parameters)`) {
		t.Errorf("error = %v, want it to say the entry takes no parameters", err)
	}
}

func TestDecodeTypeErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		doc      string
		wantLine int
		wantMsg  string
	}{
		{"int", "url: x\nretries: many\n", 2, "cannot use !!str `many` into int"},
		{"nested bool", "tls:\n  ca_file: x\n  insecure_skip_verify: maybe\n", 3, "into bool"},
		{"duration", "\n\ntimeout: soon\n", 3, "into time.Duration"},
		{"struct given a scalar", "tls: yes\n", 1, "cannot use"},
		{"slice given a mapping", "url: x\ntags: {a: b}\n", 2, "cannot use"},
		{"first of several errors sets the line", "url: x\nretries: many\ntags: {a: b}\n", 2, "; line 3: cannot use"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := params.Decode(node(t, tt.doc), defaults())
			var pe *params.Error
			if !errors.As(err, &pe) {
				t.Fatalf("error = %v (%T), want a *params.Error", err, err)
			}
			if pe.Line != tt.wantLine || !strings.Contains(pe.Msg, tt.wantMsg) {
				t.Errorf("error = %q, want line %d and a message containing %q", err, tt.wantLine, tt.wantMsg)
			}
			if strings.Contains(pe.Msg, "unmarshal") {
				t.Errorf("message %q still speaks of unmarshalling", pe.Msg)
			}
		})
	}
}

// validated checks its own values after decoding.
type validated struct {
	Min int `yaml:"min"`
	Max int `yaml:"max"`
	// positioned makes Validate return a *params.Error of its own.
	Positioned bool `yaml:"positioned"`
	calls      int
}

func (v *validated) Validate() error {
	v.calls++
	if v.Positioned {
		return &params.Error{Line: 42, Msg: "custom position"}
	}
	if v.Min > v.Max {
		return errors.New("min must not exceed max")
	}
	return nil
}

func TestValidateHook(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		node     *yaml.Node
		wantErr  string
		wantLine int
	}{
		{"valid", node(t, "min: 1\nmax: 2\n"), "", 0},
		{"invalid: the error gets the mapping's line", node(t, "\n\nmin: 5\nmax: 2\n").Content[0], "line 3: min must not exceed max", 3},
		{"an *Error from Validate is kept as is", node(t, "positioned: true\n"), "line 42: custom position", 42},
		{"nil node still validates", nil, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v := &validated{Max: 10}
			err := params.Decode(tt.node, v)
			if v.calls != 1 {
				t.Errorf("Validate called %d times, want 1", v.calls)
			}
			if tt.wantErr == "" {
				if err != nil {
					t.Errorf("unexpected error: %v", err)
				}
				return
			}
			var pe *params.Error
			if !errors.As(err, &pe) || err.Error() != tt.wantErr || pe.Line != tt.wantLine {
				t.Errorf("error = %v, want *params.Error %q", err, tt.wantErr)
			}
		})
	}

	// Validate runs on the defaults too, so bad defaults are caught.
	err := params.Decode(nil, &validated{Min: 2, Max: 1})
	if err == nil || err.Error() != "min must not exceed max" {
		t.Errorf("Decode(nil) with invalid defaults = %v, want the Validate error without a line", err)
	}
}

func TestNullLeavesDefaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		node *yaml.Node
	}{
		{"nil node", nil},
		{"null document", node(t, "null\n")},
		{"tilde", node(t, "~\n").Content[0]},
		{"empty mapping", node(t, "{}\n")},
		{"key with null value", node(t, "url: ~\n")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := defaults()
			if err := params.Decode(tt.node, p); err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if p.URL != "http://default" || p.Retries != 3 {
				t.Errorf("defaults changed: url %q retries %d", p.URL, p.Retries)
			}
		})
	}
}

func TestMergeKey(t *testing.T) {
	t.Parallel()
	n := node(t, "base: &base {retries: 7}\nhook:\n  <<: *base\n  url: x\n")
	hook := n.Content[0].Content[3]
	p := defaults()
	if err := params.Decode(hook, p); err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if p.Retries != 7 || p.URL != "x" {
		t.Errorf("merged params = url %q retries %d, want x 7", p.URL, p.Retries)
	}
}

func TestDecodeNeedsPointer(t *testing.T) {
	t.Parallel()
	for _, out := range []any{hookParams{}, (*hookParams)(nil)} {
		if err := params.Decode(node(t, "url: x\n"), out); err == nil {
			t.Errorf("Decode into %T returned no error", out)
		}
	}
}

func TestNames(t *testing.T) {
	t.Parallel()
	want := []string{"headers", "labels", "notag", "retries", "routes", "tags", "timeout", "tls", "tls_ptr", "url"}
	if got := params.Names(&hookParams{}); !slices.Equal(got, want) {
		t.Errorf("Names = %v, want %v", got, want)
	}
	if got := params.Names(hookParams{}); !slices.Equal(got, want) {
		t.Errorf("Names of a value = %v, want %v", got, want)
	}
	if got := params.Names(42); got != nil {
		t.Errorf("Names(42) = %v, want nil", got)
	}
}

func TestErrorString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err  *params.Error
		want string
	}{
		{&params.Error{Line: 3, Column: 5, Msg: "bad"}, "line 3: bad"},
		{&params.Error{Msg: "no place"}, "no place"},
		{params.Errorf(nil, "n=%d", 1), "n=1"},
		{params.Errorf(&yaml.Node{Line: 9, Column: 2}, "at %s", "node"), "line 9: at node"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
}

// A type with its own UnmarshalYAML decides which keys it accepts, and an
// *Error it returns keeps its own line instead of gaining the outer one.
type custom struct{ v string }

func (c *custom) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return params.Errorf(n, "custom wants a string")
	}
	c.v = n.Value
	return nil
}

type withCustom struct {
	Items []custom `yaml:"items"`
}

func TestUnmarshalerErrorsKeepTheirLine(t *testing.T) {
	t.Parallel()
	var ok withCustom
	if err := params.Decode(node(t, "items: [a, b]\n"), &ok); err != nil || len(ok.Items) != 2 || ok.Items[1].v != "b" {
		t.Fatalf("Decode = %+v, %v", ok, err)
	}
	err := params.Decode(node(t, "items:\n  - a\n  - {x: 1}\n"), &withCustom{})
	var pe *params.Error
	if !errors.As(err, &pe) || pe.Line != 3 || pe.Msg != "custom wants a string" {
		t.Errorf("error = %q, want line 3: custom wants a string", err)
	}
}
