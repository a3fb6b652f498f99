package playbooks

import (
	"encoding/json"
	"reflect"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/medichq/medic/actions"
	"github.com/medichq/medic/params"
	"github.com/medichq/medic/triggers"
)

// SchemaID names the schema; editors show it.
const SchemaID = "https://github.com/medichq/medic/playbooks.schema.json"

// Schema returns a JSON Schema (draft 2020-12) of the playbook file format
// with every registered trigger and every action of p, derived from their
// parameter structs: editors (VS Code's YAML extension, JetBrains) use it to complete
// and check playbooks as they are typed. Every object is closed
// (additionalProperties: false), as the loader is strict.
func Schema(p Plugins) map[string]any {
	return SchemaFor(p.Triggers.Definitions(), p.Actions.Definitions())
}

// SchemaJSON is Schema, indented.
func SchemaJSON(p Plugins) ([]byte, error) {
	b, err := json.MarshalIndent(Schema(p), "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// SchemaFor builds the schema for the given triggers and actions.
func SchemaFor(trigs []triggers.Definition, acts []actions.Definition) map[string]any {
	defs := map[string]any{}
	items := func(kind string, names []string, docs []string, params []any) map[string]any {
		var alts []any
		var bare []string
		for i, name := range names {
			p := paramsSchema(params[i])
			defs[kind+"."+name] = map[string]any{
				"type":                 "object",
				"description":          docs[i],
				"properties":           map[string]any{name: map[string]any{"anyOf": []any{p, map[string]any{"type": "null"}}}},
				"required":             []any{name},
				"additionalProperties": false,
			}
			alts = append(alts, map[string]any{"$ref": "#/$defs/" + kind + "." + name})
			bare = append(bare, name)
		}
		article := "A "
		if kind == "action" {
			article = "An "
		}
		alts = append(alts, map[string]any{"type": "string", "enum": toAny(bare),
			"description": article + kind + " by name alone, with its default parameters."})
		return map[string]any{"anyOf": alts}
	}
	tn, td, tp := make([]string, len(trigs)), make([]string, len(trigs)), make([]any, len(trigs))
	for i, d := range trigs {
		tn[i], td[i], tp[i] = d.Name, d.Doc, d.NewParams()
	}
	an, ad, ap := make([]string, len(acts)), make([]string, len(acts)), make([]any, len(acts))
	for i, d := range acts {
		an[i], ad[i], ap[i] = d.Name, d.Doc, d.NewParams()
	}
	defs["trigger"] = items("trigger", tn, td, tp)
	defs["action"] = items("action", an, ad, ap)
	defs["playbook"] = map[string]any{
		"type":                 "object",
		"description":          "A playbook: when any trigger matches an event, the actions run in order and the finding goes to the sinks.",
		"required":             []any{"triggers", "actions"},
		"additionalProperties": false,
		"properties": map[string]any{
			"name": map[string]any{"type": "string", "pattern": nameRE.String(),
				"description": "Unique name; a playbook named like a built-in one replaces it."},
			"description": map[string]any{"type": "string"},
			"triggers": map[string]any{"type": "array", "minItems": 1, "items": map[string]any{"$ref": "#/$defs/trigger"},
				"description": "The playbook runs for an event when any of these matches."},
			"actions": map[string]any{"type": "array", "minItems": 1, "items": map[string]any{"$ref": "#/$defs/action"},
				"description": "Run in order; each adds to the finding."},
			"sinks": map[string]any{"type": "array", "items": map[string]any{"type": "string"},
				"description": "Sinks that receive the finding instead of the default sinks."},
			"stop": map[string]any{"type": "boolean", "description": "Later playbooks do not run for this event."},
		},
	}
	defs["playbookList"] = map[string]any{"type": "array", "items": map[string]any{"$ref": "#/$defs/playbook"}}
	return map[string]any{
		"$schema":     "https://json-schema.org/draft/2020-12/schema",
		"$id":         SchemaID,
		"title":       "medic playbooks",
		"description": "A medic playbook file: a list of playbooks, or {playbooks: [...]}.",
		"anyOf": []any{
			map[string]any{"$ref": "#/$defs/playbookList"},
			map[string]any{
				"type":                 "object",
				"required":             []any{"playbooks"},
				"additionalProperties": false,
				"properties":           map[string]any{"playbooks": map[string]any{"$ref": "#/$defs/playbookList"}},
			},
			map[string]any{"type": "null", "description": "An empty file."},
		},
		"$defs": defs,
	}
}

var (
	durationType    = reflect.TypeFor[time.Duration]()
	unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()
	marshalerType   = reflect.TypeFor[yaml.Marshaler]()
	schemaType      = reflect.TypeFor[interface{ JSONSchema() map[string]any }]()
)

// durationPattern is what time.ParseDuration accepts ("90s", "1h30m").
const durationPattern = `^-?([0-9]+(\.[0-9]*)?(ns|us|µs|ms|s|m|h))+$|^0$`

// paramsSchema describes a parameter struct (a pointer filled with its
// defaults), with the defaults shown.
func paramsSchema(p any) map[string]any {
	v := reflect.ValueOf(p)
	for v.Kind() == reflect.Pointer && !v.IsNil() {
		v = v.Elem()
	}
	s := typeSchema(v.Type(), 0)
	if v.Kind() == reflect.Struct {
		addDefaults(s, v)
	}
	return s
}

func typeSchema(t reflect.Type, depth int) map[string]any {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if depth > 8 {
		return map[string]any{}
	}
	if t == durationType {
		return map[string]any{"type": "string", "pattern": durationPattern, "description": "A duration: 30s, 5m, 1h30m."}
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) || t.Implements(unmarshalerType) {
		return customSchema(t)
	}
	switch t.Kind() {
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return map[string]any{"type": "integer"}
	case reflect.Float32, reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.Slice, reflect.Array:
		return map[string]any{"type": "array", "items": typeSchema(t.Elem(), depth+1)}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": typeSchema(t.Elem(), depth+1)}
	case reflect.Struct:
		props := map[string]any{}
		for name, ft := range yamlFields(t) {
			props[name] = typeSchema(ft, depth+1)
		}
		return map[string]any{"type": "object", "properties": props, "additionalProperties": false}
	case reflect.Interface:
		return map[string]any{}
	}
	return map[string]any{}
}

// customSchema describes a type that decodes itself from YAML (a regular
// expression, a duration): what its zero value encodes to says its shape.
func customSchema(t reflect.Type) map[string]any {
	if t.Implements(schemaType) {
		// The type knows its shapes better than its zero value shows.
		return reflect.Zero(t).Interface().(interface{ JSONSchema() map[string]any }).JSONSchema()
	}
	desc := ""
	if strings.HasSuffix(t.Name(), "Pattern") {
		desc = "A regular expression matched against the whole value."
	}
	zero := reflect.New(t)
	if reflect.PointerTo(t).Implements(marshalerType) || t.Implements(marshalerType) {
		if b, err := yaml.Marshal(zero.Interface()); err == nil {
			var n yaml.Node
			if yaml.Unmarshal(b, &n) == nil && len(n.Content) == 1 {
				switch c := n.Content[0]; {
				case c.Kind == yaml.ScalarNode && c.Tag == "!!int":
					return withDesc(map[string]any{"type": "integer"}, desc)
				case c.Kind == yaml.ScalarNode && c.Tag == "!!bool":
					return withDesc(map[string]any{"type": "boolean"}, desc)
				case c.Kind == yaml.ScalarNode:
					if _, err := time.ParseDuration(c.Value); err == nil && c.Value != "0" {
						dur := map[string]any{"type": "string", "pattern": durationPattern}
						if t.Kind() == reflect.Int64 { // also whole seconds, as Robusta writes them
							return withDesc(map[string]any{"anyOf": []any{dur, map[string]any{"type": "integer", "minimum": 0}}},
								"A duration (30s, 5m, 1h30m) or whole seconds.")
						}
						return withDesc(dur, "A duration: 30s, 5m, 1h30m.")
					}
					return withDesc(map[string]any{"type": "string"}, desc)
				case c.Kind == yaml.SequenceNode:
					return withDesc(map[string]any{"type": "array"}, desc)
				}
			}
		}
	}
	if t.Kind() == reflect.Struct && len(yamlFields(t)) > 0 {
		// Decodes itself but keeps the struct's shape (a struct with extra checks).
		props := map[string]any{}
		for name, ft := range yamlFields(t) {
			props[name] = typeSchema(ft, 1)
		}
		return map[string]any{"type": "object", "properties": props, "additionalProperties": false}
	}
	return withDesc(map[string]any{}, desc)
}

func withDesc(s map[string]any, desc string) map[string]any {
	if desc != "" {
		s["description"] = desc
	}
	return s
}

// yamlFields maps YAML keys to field types the way params.Decode reads them.
func yamlFields(t reflect.Type) map[string]reflect.Type { return params.Fields(t) }

// addDefaults records the non-zero scalar defaults of a parameter struct.
func addDefaults(s map[string]any, v reflect.Value) {
	props, _ := s["properties"].(map[string]any)
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" || strings.Contains(opts, "inline") {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		fs, ok := props[name].(map[string]any)
		fv := v.Field(i)
		if !ok || fv.IsZero() {
			continue
		}
		switch {
		case f.Type == durationType:
			fs["default"] = time.Duration(fv.Int()).String()
		case fv.Kind() == reflect.String:
			fs["default"] = fv.String()
		case fv.Kind() == reflect.Bool:
			fs["default"] = fv.Bool()
		case fv.CanInt() && fs["type"] == "integer":
			fs["default"] = fv.Int()
		case fv.CanUint() && fs["type"] == "integer":
			fs["default"] = fv.Uint()
		case fv.CanFloat():
			fs["default"] = fv.Float()
		case fv.Kind() == reflect.Slice && fv.Type().Elem().Kind() == reflect.String:
			d := make([]any, fv.Len())
			for j := range d {
				d[j] = fv.Index(j).String()
			}
			fs["default"] = d
		}
	}
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}
