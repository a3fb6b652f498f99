package playbooks

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/medichq/medic/actions"
	"github.com/medichq/medic/internal/testkit"
	"github.com/medichq/medic/triggers"
)

// goldenDefinitions are the triggers and actions of the schema golden file:
// a fixed list, so that adding a trigger or action elsewhere does not change
// the golden file.
func goldenDefinitions(t *testing.T) ([]triggers.Definition, []actions.Definition) {
	var ts []triggers.Definition
	for _, d := range testPlugins.Triggers.Definitions() {
		if d.Name == "on_prometheus_alert" {
			ts = append(ts, d)
		}
	}
	var as []actions.Definition
	for _, d := range testPlugins.Actions.Definitions() {
		if slices.Contains([]string{"create_finding", "default_enricher", "template_enricher"}, d.Name) {
			as = append(as, d)
		}
	}
	if len(ts) != 1 || len(as) != 3 {
		t.Fatalf("definitions missing: %d triggers, %d actions", len(ts), len(as))
	}
	return ts, as
}

func TestSchemaGolden(t *testing.T) {
	t.Parallel()
	ts, as := goldenDefinitions(t)
	got, err := json.MarshalIndent(SchemaFor(ts, as), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	golden := filepath.Join("testdata", "schema.golden.json")
	testkit.Golden(t, golden, got)
	var any map[string]any
	if err := json.Unmarshal(got, &any); err != nil {
		t.Fatalf("schema is not JSON: %v", err)
	}
}

// TestSchemaAcceptsValidAndRefusesInvalidPlaybooks checks the schema against
// the loader: the built-in and example playbooks conform, and the mistakes
// the loader refuses are refused by the schema too.
func TestSchemaAcceptsValidAndRefusesInvalidPlaybooks(t *testing.T) {
	t.Parallel()
	schema := roundTrip(t, Schema(testPlugins))
	checkClosed(t, "#", schema)
	files, err := BuiltinFiles()
	if err != nil {
		t.Fatal(err)
	}
	examples, err := ReadDir("examples")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range append(files, examples...) {
		if errs := validateYAML(t, schema, f.Data); len(errs) > 0 {
			t.Errorf("%s does not conform to the schema: %v", f.Path, errs)
		}
	}
	valid := []string{
		"- name: a\n  triggers: [on_prometheus_alert]\n  actions: [default_enricher]\n",
		"playbooks:\n  - triggers: [{on_prometheus_alert: {alert_name: X, status: all, scope: {include: [{labels: {team: a.*}}]}}}]\n    actions: [{create_finding: {title: t, severity: high}}, {default_enricher: }]\n    sinks: [a]\n    stop: true\n",
		"",
	}
	for _, doc := range valid {
		if _, err := Build([]File{{Path: "x.yaml", Data: []byte(doc)}}, Options{Plugins: testPlugins}); err != nil {
			t.Fatalf("test case is not valid for the loader: %v", err)
		}
		if errs := validateYAML(t, schema, []byte(doc)); len(errs) > 0 {
			t.Errorf("schema refuses a valid playbook %q: %v", doc, errs)
		}
	}
	invalid := []string{
		"- name: a\n  triggers: [{on_prometheus_alert: {namespace_prefx: x}}]\n  actions: [default_enricher]\n",
		"- name: a\n  triggers: [on_prometheus_alrt]\n  actions: [default_enricher]\n",
		"- name: a\n  triggers: [on_prometheus_alert]\n  actions: [{create_finding: {title: [x]}}]\n",
		"- name: a\n  triggers: [on_prometheus_alert]\n  action: [default_enricher]\n",
		"- name: a\n  triggers: []\n  actions: [default_enricher]\n",
		"- name: 'a b'\n  triggers: [on_prometheus_alert]\n  actions: [default_enricher]\n",
		"- name: a\n  triggers: [{on_prometheus_alert: {}, default_enricher: {}}]\n  actions: [default_enricher]\n",
		"- name: a\n  triggers: [{on_prometheus_alert: {scope: {include: [{lables: {a: b}}]}}}]\n  actions: [default_enricher]\n",
		"name: a\n",
	}
	for _, doc := range invalid {
		if _, err := Build([]File{{Path: "x.yaml", Data: []byte(doc)}}, Options{Plugins: testPlugins}); err == nil {
			t.Fatalf("test case is valid for the loader: %q", doc)
		}
		if errs := validateYAML(t, schema, []byte(doc)); len(errs) == 0 {
			t.Errorf("schema accepts an invalid playbook %q", doc)
		}
	}
}

func roundTrip(t *testing.T, v any) map[string]any {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// checkClosed asserts additionalProperties: false on every object with
// properties.
func checkClosed(t *testing.T, path string, node any) {
	switch v := node.(type) {
	case map[string]any:
		if _, ok := v["properties"]; ok && v["additionalProperties"] != false {
			t.Errorf("%s: an object schema is open (additionalProperties is not false)", path)
		}
		for k, c := range v {
			checkClosed(t, path+"/"+k, c)
		}
	case []any:
		for i, c := range v {
			checkClosed(t, fmt.Sprintf("%s/%d", path, i), c)
		}
	}
}

func validateYAML(t *testing.T, schema map[string]any, data []byte) []string {
	t.Helper()
	var doc any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return []string{err.Error()}
	}
	doc = roundTripAny(t, doc)
	v := &miniValidator{root: schema}
	v.validate("$", schema, doc)
	return v.errs
}

func roundTripAny(t *testing.T, v any) any {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// miniValidator implements the part of JSON Schema the playbook schema
// uses: $ref to $defs, type, properties, additionalProperties, required,
// items, anyOf, oneOf, enum, pattern, minItems.
type miniValidator struct {
	root map[string]any
	errs []string
}

func (v *miniValidator) validate(path string, schema map[string]any, doc any) {
	if ref, ok := schema["$ref"].(string); ok {
		name := strings.TrimPrefix(ref, "#/$defs/")
		def, ok := v.root["$defs"].(map[string]any)[name].(map[string]any)
		if !ok {
			v.errs = append(v.errs, path+": unresolved "+ref)
			return
		}
		v.validate(path, def, doc)
		return
	}
	for _, key := range []string{"anyOf", "oneOf"} {
		alts, ok := schema[key].([]any)
		if !ok {
			continue
		}
		matched := 0
		for _, alt := range alts {
			sub := &miniValidator{root: v.root}
			sub.validate(path, alt.(map[string]any), doc)
			if len(sub.errs) == 0 {
				matched++
			}
		}
		if matched == 0 || (key == "oneOf" && matched > 1) {
			v.errs = append(v.errs, fmt.Sprintf("%s: %d alternatives of %s match", path, matched, key))
		}
	}
	if typ, ok := schema["type"].(string); ok && !hasType(doc, typ) {
		v.errs = append(v.errs, fmt.Sprintf("%s: want %s, got %T", path, typ, doc))
		return
	}
	if enum, ok := schema["enum"].([]any); ok && !slices.Contains(enum, doc) {
		v.errs = append(v.errs, fmt.Sprintf("%s: %v is not one of %v", path, doc, enum))
	}
	if pat, ok := schema["pattern"].(string); ok {
		if s, isStr := doc.(string); isStr && !regexp.MustCompile(pat).MatchString(s) {
			v.errs = append(v.errs, fmt.Sprintf("%s: %q does not match %s", path, s, pat))
		}
	}
	switch d := doc.(type) {
	case map[string]any:
		props, _ := schema["properties"].(map[string]any)
		for _, r := range asSlice(schema["required"]) {
			if _, ok := d[r.(string)]; !ok {
				v.errs = append(v.errs, fmt.Sprintf("%s: %s is required", path, r))
			}
		}
		for k, val := range d {
			if ps, ok := props[k].(map[string]any); ok {
				v.validate(path+"."+k, ps, val)
				continue
			}
			switch ap := schema["additionalProperties"].(type) {
			case bool:
				if !ap {
					v.errs = append(v.errs, fmt.Sprintf("%s: unknown key %q", path, k))
				}
			case map[string]any:
				v.validate(path+"."+k, ap, val)
			}
		}
	case []any:
		if m, ok := schema["minItems"].(float64); ok && len(d) < int(m) {
			v.errs = append(v.errs, fmt.Sprintf("%s: fewer than %v items", path, m))
		}
		if items, ok := schema["items"].(map[string]any); ok {
			for i, it := range d {
				v.validate(fmt.Sprintf("%s[%d]", path, i), items, it)
			}
		}
	}
}

func asSlice(v any) []any {
	s, _ := v.([]any)
	return s
}

func hasType(doc any, typ string) bool {
	switch typ {
	case "object":
		_, ok := doc.(map[string]any)
		return ok
	case "array":
		_, ok := doc.([]any)
		return ok
	case "string":
		_, ok := doc.(string)
		return ok
	case "boolean":
		_, ok := doc.(bool)
		return ok
	case "integer":
		f, ok := doc.(float64)
		return ok && f == float64(int64(f))
	case "number":
		_, ok := doc.(float64)
		return ok
	case "null":
		return doc == nil
	}
	return false
}
