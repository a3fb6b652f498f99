package redact

import (
	"bytes"
	"encoding/json"

	"github.com/medichq/medic/event"
)

// Finding redacts f in place, every text a sink or the page may show:
// titles, descriptions, labels, annotations, URLs, the event's raw
// payload and every enrichment block. Images are left as they are.
func (r *Redactor) Finding(f *event.Finding) Redaction {
	found := Redaction{}
	s := func(p *string) { *p = r.redact(*p, found) }
	s(&f.Title)
	s(&f.Description)
	ev := &f.Event
	s(&ev.Title)
	s(&ev.Description)
	s(&ev.GeneratorURL)
	s(&ev.ExternalURL)
	for k, v := range ev.Labels {
		ev.Labels[k] = r.redact(v, found)
	}
	for k, v := range ev.Annotations {
		if k == LastAppliedAnnotation {
			if v == Placeholder {
				continue
			}
			ev.Annotations[k] = Placeholder
			found[KindLastApplied]++
			continue
		}
		ev.Annotations[k] = r.redact(v, found)
	}
	if len(ev.Raw) > 0 {
		ev.Raw = r.json(ev.Raw, found)
	}
	for i := range f.Enrichments {
		e := &f.Enrichments[i]
		s(&e.Title)
		for j := range e.Blocks {
			b := &e.Blocks[j]
			s(&b.Markdown)
			if b.Table != nil {
				for k := range b.Table.Headers {
					s(&b.Table.Headers[k])
				}
				for _, row := range b.Table.Rows {
					for k := range row {
						s(&row[k])
					}
				}
			}
			if b.Log != nil {
				s(&b.Log.Source)
				s(&b.Log.Text)
			}
			for k := range b.Links {
				s(&b.Links[k].Label)
				s(&b.Links[k].URL)
			}
		}
	}
	return found
}

// JSON redacts a JSON document (an alert, a Kubernetes object): Secret
// data, env values, the last-applied annotation and every string by the
// text rules. A document with nothing to redact comes back unchanged, byte
// for byte; one that is not JSON is redacted as text.
func (r *Redactor) JSON(raw []byte) ([]byte, Redaction) {
	found := Redaction{}
	return r.json(raw, found), found
}

func (r *Redactor) json(raw []byte, found Redaction) []byte {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return []byte(r.redact(string(raw), found))
	}
	local := Redaction{}
	v = r.walk(v, "", local)
	if local.Total() == 0 {
		return raw
	}
	found.Add(local)
	out, err := json.Marshal(v)
	if err != nil {
		return []byte(Placeholder) // cannot happen for decoded JSON; never leak on a bug
	}
	return out
}

// walk redacts v; key is the name v has in its parent object.
func (r *Redactor) walk(v any, key string, found Redaction) any {
	switch x := v.(type) {
	case string:
		return r.redact(x, found)
	case []any:
		for i := range x {
			if key == "env" {
				if m, ok := x[i].(map[string]any); ok {
					r.envEntry(m, found)
				}
			}
			x[i] = r.walk(x[i], "", found)
		}
		return x
	case map[string]any:
		if kind, _ := x["kind"].(string); kind == "Secret" {
			for _, field := range []string{"data", "stringData"} {
				if m, ok := x[field].(map[string]any); ok {
					for k := range m {
						m[k] = Placeholder
						found[KindSecretData]++
					}
				}
			}
		}
		if key == "annotations" {
			if s, ok := x[LastAppliedAnnotation].(string); ok && s != Placeholder {
				x[LastAppliedAnnotation] = Placeholder
				found[KindLastApplied]++
			}
		}
		for k, val := range x {
			x[k] = r.walk(val, k, found)
		}
		return x
	}
	return v
}

// envEntry redacts one container env entry ({name, value}).
func (r *Redactor) envEntry(m map[string]any, found Redaction) {
	name, _ := m["name"].(string)
	val, ok := m["value"].(string)
	if !ok || r.envAllowed(name) || isMask(val) {
		return
	}
	m["value"] = Placeholder
	found[KindEnv]++
}
