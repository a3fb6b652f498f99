package sinks_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/params"
	"github.com/medichq/medic/sinks"
	"github.com/medichq/medic/sinks/all"
)

// registered holds every sink type medic ships.
var registered = sinks.NewRegistry(all.Register)

func decodeSpecs(t *testing.T, doc string) []sinks.Spec {
	t.Helper()
	var specs []sinks.Spec
	if err := yaml.Unmarshal([]byte(doc), &specs); err != nil {
		t.Fatalf("decode sinks: %v", err)
	}
	return specs
}

func TestRegisteredTypes(t *testing.T) {
	types := registered.Types()
	for _, want := range []string{"file", "stdout"} {
		if !slices.Contains(types, want) {
			t.Errorf("sink type %q is not registered (got %v); is it in sinks/all.Register?", want, types)
		}
	}
	for _, d := range registered.Definitions() {
		if d.Doc == "" {
			t.Errorf("sink type %q has no doc", d.Name)
		}
		if d.NewParams() == nil {
			t.Errorf("sink type %q has no parameter defaults", d.Name)
		}
	}
}

func TestSpecSplitsCommonKeysFromParams(t *testing.T) {
	specs := decodeSpecs(t, `
- name: archive
  type: file
  default: false
  scope:
    include:
      - severity: critical
  path: data/archive.jsonl
  fsync: true
- name: console
  type: stdout
`)
	if len(specs) != 2 {
		t.Fatalf("got %d specs, want 2", len(specs))
	}
	a := specs[0]
	if a.Name != "archive" || a.Type != "file" || a.Default || a.Line != 2 {
		t.Errorf("spec = name %q type %q default %v line %d, want archive file false 2", a.Name, a.Type, a.Default, a.Line)
	}
	if a.Scope.IsZero() || len(a.Scope.Include) != 1 || a.Scope.Include[0].Severity.String() != "critical" {
		t.Errorf("scope = %+v, want one include rule on severity critical", a.Scope)
	}
	var keys []string
	var lines []int
	for i := 0; i < len(a.Params.Content); i += 2 {
		keys = append(keys, a.Params.Content[i].Value)
		lines = append(lines, a.Params.Content[i].Line)
	}
	if !slices.Equal(keys, []string{"path", "fsync"}) || !slices.Equal(lines, []int{8, 9}) {
		t.Errorf("params keys %v on lines %v, want [path fsync] on [8 9]", keys, lines)
	}
	if !specs[1].Default {
		t.Error("a sink that does not say default: false should be a default sink")
	}
	if n := len(specs[1].Params.Content); n != 0 {
		t.Errorf("console has %d param nodes, want none", n)
	}
	for _, s := range specs {
		if err := s.Validate(registered); err != nil {
			t.Errorf("Validate(%s): %v", s.Name, err)
		}
	}
}

func TestSpecDecodeErrors(t *testing.T) {
	tests := []struct {
		name     string
		doc      string
		wantLine int
		wantMsg  string
	}{
		{"not a mapping", "- just-a-name\n", 1, "a sink must be a mapping with name and type"},
		{"default not a bool", "- name: a\n  type: file\n  default: maybe\n", 3, "default:"},
		{"name not a string", "- name: [a, b]\n  type: file\n", 1, "name:"},
		{"bad scope regex", "- name: a\n  type: file\n  scope:\n    include:\n      - namespace: 'prod-('\n", 5, "invalid regular expression"},
		{"unknown scope key", "- name: a\n  type: file\n  scope:\n    include:\n      - namepsace: prod\n", 5, `unknown parameter "namepsace" (did you mean "namespace"?)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var specs []sinks.Spec
			err := yaml.Unmarshal([]byte(tt.doc), &specs)
			var pe *params.Error
			if !errors.As(err, &pe) {
				t.Fatalf("error = %v (%T), want a *params.Error", err, err)
			}
			if pe.Line != tt.wantLine || !strings.Contains(pe.Msg, tt.wantMsg) {
				t.Errorf("error = %v, want line %d and a message containing %q", err, tt.wantLine, tt.wantMsg)
			}
		})
	}
}

func TestStartErrors(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "findings.jsonl")
	tests := []struct {
		name     string
		doc      string
		wantLine int
		wantErr  string
	}{
		{
			name:     "unknown parameter of the file type",
			doc:      "- name: archive\n  type: file\n  default: false\n  pth: data/x.jsonl\n",
			wantLine: 4,
			wantErr:  `sink "archive": line 4: unknown parameter "pth" (did you mean "path"?)`,
		},
		{
			name:     "missing type",
			doc:      "- name: archive\n  path: x\n",
			wantLine: 1,
			wantErr:  `line 1: sink "archive": type is required (one of ` + strings.Join(registered.Types(), ", ") + ")",
		},
		{
			name:    "unknown type",
			doc:     "- name: archive\n  type: carrier-pigeon\n",
			wantErr: `sink "archive": unknown sink type "carrier-pigeon"`,
		},
		{
			name:     "bad name",
			doc:      "- name: Oncall Channel\n  type: stdout\n",
			wantLine: 1,
			wantErr:  `line 1: sink name "Oncall Channel" must be 1-64 lowercase letters, digits, '-' or '_'`,
		},
		{
			name:     "missing name",
			doc:      "- type: stdout\n",
			wantLine: 1,
			wantErr:  `sink name "" must be`,
		},
		{
			name:     "duplicate name",
			doc:      fmt.Sprintf("- name: out\n  type: stdout\n- name: out\n  type: file\n  path: %s\n", path),
			wantLine: 3,
			wantErr:  `line 3: sink "out" is configured twice`,
		},
		{
			name:    "factory failure",
			doc:     "- name: out\n  type: stdout\n- name: archive\n  type: file\n  path: /dev/null/findings.jsonl\n",
			wantErr: `start sink "archive" (file):`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			specs := decodeSpecs(t, tt.doc)
			set, err := registered.Start(t.Context(), specs, sinks.Deps{Out: &bytes.Buffer{}})
			if err == nil {
				set.Close()
				t.Fatalf("Start succeeded, want error %q", tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error = %q, want it to contain %q", err, tt.wantErr)
			}
			if tt.wantLine != 0 {
				var pe *params.Error
				if !errors.As(err, &pe) || pe.Line != tt.wantLine {
					t.Errorf("error %v does not carry line %d", err, tt.wantLine)
				}
			}
		})
	}
}

func TestStartAndSend(t *testing.T) {
	path := filepath.Join(t.TempDir(), "findings.jsonl")
	var out bytes.Buffer
	specs := decodeSpecs(t, fmt.Sprintf("- name: console\n  type: stdout\n  color: always\n- name: archive\n  type: file\n  path: %s\n", path))
	set, err := registered.Start(t.Context(), specs, sinks.Deps{Out: &out})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	defer set.Close()
	if got := set.Names(); !slices.Equal(got, []string{"console", "archive"}) {
		t.Errorf("Names = %v, want configuration order [console archive]", got)
	}
	f := &event.Finding{ID: "x1", Title: "Disk full", Severity: event.SeverityHigh, Event: event.Event{Status: event.StatusFiring}}
	for _, name := range set.Names() {
		c, ok := set.Get(name)
		if !ok {
			t.Fatalf("Get(%s) found nothing", name)
		}
		if c.Spec.Name != name {
			t.Errorf("Get(%s).Spec.Name = %s", name, c.Spec.Name)
		}
		if err := c.Sink.Send(context.Background(), f); err != nil {
			t.Errorf("%s: Send: %v", name, err)
		}
	}
	if !strings.Contains(out.String(), "Disk full") || !strings.Contains(out.String(), "\x1b[") {
		t.Errorf("stdout sink printed %q, want the colored title", out.String())
	}
	if _, ok := set.Get("nope"); ok {
		t.Error("Get of an unknown sink found one")
	}
	if err := set.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

func TestRoute(t *testing.T) {
	specs := decodeSpecs(t, `
- name: oncall
  type: stdout
  scope:
    include:
      - severity: critical|high
- name: archive
  type: file
- name: audit
  type: file
  default: false
- name: prod
  type: stdout
  default: false
  scope:
    include:
      - namespace: prod
    exclude:
      - labels: {team: noisy}
- name: payments
  type: stdout
  default: false
  scope:
    include:
      - labels: {team: payments}
        severity: critical
`)
	mk := func(ns string, sev event.Severity, labels map[string]string) *event.Finding {
		return &event.Finding{
			ID:       "f",
			Severity: sev,
			// The event's own severity is low: routing must use the
			// finding's, which a playbook may have raised.
			Event: event.Event{Severity: event.SeverityInfo, Subject: event.Subject{Namespace: ns}, Labels: labels},
		}
	}
	tests := []struct {
		name        string
		finding     *event.Finding
		requested   []string
		wantTargets []string
		wantUnknown []string
	}{
		{"no playbook sinks: every default sink in scope", mk("prod", event.SeverityCritical, nil), nil, []string{"oncall", "archive"}, nil},
		{"no playbook sinks: out-of-scope default skipped", mk("prod", event.SeverityWarning, nil), nil, []string{"archive"}, nil},
		{"finding severity, not the event's, is matched", mk("prod", event.SeverityHigh, nil), nil, []string{"oncall", "archive"}, nil},
		{"requested sinks replace the defaults", mk("prod", event.SeverityCritical, nil), []string{"archive"}, []string{"archive"}, nil},
		{"a default: false sink only when requested", mk("prod", event.SeverityInfo, nil), []string{"audit"}, []string{"audit"}, nil},
		{"requested sink still applies its scope", mk("dev", event.SeverityInfo, nil), []string{"oncall", "prod"}, nil, nil},
		{"namespace is anchored: nonprod is not prod", mk("nonprod", event.SeverityInfo, nil), []string{"prod"}, nil, nil},
		{"namespace include matches", mk("prod", event.SeverityInfo, nil), []string{"prod"}, []string{"prod"}, nil},
		{"namespace from the namespace label when the subject has none", mk("", event.SeverityInfo, map[string]string{"namespace": "prod"}), []string{"prod"}, []string{"prod"}, nil},
		{"exclude wins over include", mk("prod", event.SeverityInfo, map[string]string{"team": "noisy"}), []string{"prod"}, nil, nil},
		{"label and severity must both match", mk("shop", event.SeverityCritical, map[string]string{"team": "payments"}), []string{"payments"}, []string{"payments"}, nil},
		{"label matches but severity does not", mk("shop", event.SeverityHigh, map[string]string{"team": "payments"}), []string{"payments"}, nil, nil},
		{"label missing", mk("shop", event.SeverityCritical, nil), []string{"payments"}, nil, nil},
		{"configuration order, duplicates once", mk("prod", event.SeverityCritical, nil), []string{"audit", "oncall", "audit"}, []string{"oncall", "audit"}, nil},
		{"unknown names reported", mk("prod", event.SeverityCritical, nil), []string{"ghost", "archive", "slack-oncall"}, []string{"archive"}, []string{"ghost", "slack-oncall"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			targets, unknown := sinks.Route(specs, tt.finding, tt.requested)
			if !slices.Equal(targets, tt.wantTargets) {
				t.Errorf("targets = %v, want %v", targets, tt.wantTargets)
			}
			if !slices.Equal(unknown, tt.wantUnknown) {
				t.Errorf("unknown = %v, want %v", unknown, tt.wantUnknown)
			}
		})
	}
}

func TestIdempotencyKey(t *testing.T) {
	k := sinks.IdempotencyKey("hook", "f1")
	for _, tc := range []struct {
		sink, id string
		same     bool
	}{
		{"hook", "f1", true},   // stable across retries and processes
		{"other", "f1", false}, // one key per sink
		{"hook", "f2", false},
		{"hookf", "1", false}, // the parts do not run together
	} {
		if got := sinks.IdempotencyKey(tc.sink, tc.id); (got == k) != tc.same {
			t.Errorf("IdempotencyKey(%q, %q) = %s; same as (hook, f1) %s: %v, want %v", tc.sink, tc.id, got, k, got == k, tc.same)
		}
	}
	if len(k) != 32 {
		t.Errorf("key %q: want 32 hex digits", k)
	}
}
