package deploy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"
)

// The README's values table lies between these markers; the generator
// rewrites what is between them and nothing else.
const (
	ValuesBegin = "<!-- values:begin (generated from deploy/helm/medic/values.yaml by `make docs-values`; edit the comments there) -->"
	ValuesEnd   = "<!-- values:end -->"
)

// ValueDoc is one documented key of values.yaml.
type ValueDoc struct {
	Key         string // dotted path: nats.persistence.size
	Default     string // compact JSON of the default
	Description string
}

// DocumentValues reads values.yaml: every key with a "# -- …" comment (and
// the "#" lines after it) is documented. It also returns the keys that are
// not documented, themselves or by a documented parent.
func DocumentValues(values []byte) (docs []ValueDoc, undocumented []string, err error) {
	var root yaml.Node
	if err := yaml.Unmarshal(values, &root); err != nil {
		return nil, nil, err
	}
	if len(root.Content) != 1 || root.Content[0].Kind != yaml.MappingNode {
		return nil, nil, errors.New("values.yaml is not a mapping")
	}
	var walk func(prefix string, m *yaml.Node, parentDocumented bool) error
	walk = func(prefix string, m *yaml.Node, parentDocumented bool) error {
		for i := 0; i+1 < len(m.Content); i += 2 {
			k, v := m.Content[i], m.Content[i+1]
			key := k.Value
			if prefix != "" {
				key = prefix + "." + k.Value
			}
			desc := docComment(k.HeadComment)
			documented := desc != ""
			if documented {
				def, err := compactDefault(v)
				if err != nil {
					return fmt.Errorf("%s: %w", key, err)
				}
				docs = append(docs, ValueDoc{Key: key, Default: def, Description: desc})
			}
			if v.Kind == yaml.MappingNode && len(v.Content) > 0 {
				if err := walk(key, v, documented || parentDocumented); err != nil {
					return err
				}
				continue
			}
			if !documented && !parentDocumented {
				undocumented = append(undocumented, key)
			}
		}
		return nil
	}
	if err := walk("", root.Content[0], false); err != nil {
		return nil, nil, err
	}
	return docs, undocumented, nil
}

// docComment returns the text of the last "# --" paragraph of a head comment.
func docComment(head string) string {
	lines := strings.Split(head, "\n")
	start := -1
	for i, l := range lines {
		if strings.HasPrefix(strings.TrimSpace(l), "# --") {
			start = i
		}
	}
	if start < 0 {
		return ""
	}
	var parts []string
	for i, l := range lines[start:] {
		l = strings.TrimSpace(l)
		if !strings.HasPrefix(l, "#") {
			break
		}
		if i == 0 {
			l = strings.TrimPrefix(l, "# --")
		} else {
			l = strings.TrimPrefix(l, "#")
		}
		if l = strings.TrimSpace(l); l != "" {
			parts = append(parts, l)
		}
	}
	return strings.Join(parts, " ")
}

func compactDefault(v *yaml.Node) (string, error) {
	var x any
	if err := v.Decode(&x); err != nil {
		return "", err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(x); err != nil {
		return "", err
	}
	return strings.TrimSpace(buf.String()), nil
}

// ValuesTable renders the documented keys as a Markdown table.
func ValuesTable(docs []ValueDoc) string {
	var b strings.Builder
	b.WriteString("| key | default | what it does |\n| --- | --- | --- |\n")
	cell := func(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
	for _, d := range docs {
		fmt.Fprintf(&b, "| `%s` | `%s` | %s |\n", d.Key, cell(d.Default), cell(d.Description))
	}
	return b.String()
}

// RenderValuesSection returns readme with the text between the values
// markers replaced by the table generated from the chart's values.yaml.
func RenderValuesSection(readme []byte) ([]byte, error) {
	chart, err := ChartDir()
	if err != nil {
		return nil, err
	}
	values, err := os.ReadFile(filepath.Join(chart, "values.yaml"))
	if err != nil {
		return nil, err
	}
	docs, _, err := DocumentValues(values)
	if err != nil {
		return nil, fmt.Errorf("values.yaml: %w", err)
	}
	begin := bytes.Index(readme, []byte(ValuesBegin))
	end := bytes.Index(readme, []byte(ValuesEnd))
	if begin < 0 || end < begin {
		return nil, fmt.Errorf("README.md has no %q … %q section", ValuesBegin, ValuesEnd)
	}
	var out bytes.Buffer
	out.Write(readme[:begin+len(ValuesBegin)])
	out.WriteString("\n\n")
	out.WriteString(ValuesTable(docs))
	out.WriteString("\n")
	out.Write(readme[end:])
	return out.Bytes(), nil
}
