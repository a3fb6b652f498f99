package actions

import (
	"fmt"
	"strings"
	"text/template"

	"github.com/medichq/medic/event"
)

// Templates in playbooks are Go text/template over TemplateData, e.g.
// "{{ .Labels.pod }} in {{ .Labels.namespace }} is crash looping". A missing
// label renders as "" rather than "<no value>".

// TemplateData is what a playbook template sees.
type TemplateData struct {
	event.Event
	// Cluster is the configured cluster name.
	Cluster string
}

var templateFuncs = template.FuncMap{
	"default": func(def string, v any) string {
		s := fmt.Sprint(v)
		if v == nil || s == "" {
			return def
		}
		return s
	},
	"lower": strings.ToLower,
	"upper": strings.ToUpper,
	"trunc": func(n int, s string) string {
		r := []rune(s)
		if len(r) <= n {
			return s
		}
		return string(r[:n]) + "…"
	},
}

// Template is a parsed playbook template.
type Template struct {
	src string
	t   *template.Template
}

// ParseTemplate parses src at load time, so a syntax error is a load error.
func ParseTemplate(name, src string) (*Template, error) {
	t, err := template.New(name).Option("missingkey=zero").Funcs(templateFuncs).Parse(src)
	if err != nil {
		return nil, fmt.Errorf("template %s: %w", name, err)
	}
	return &Template{src: src, t: t}, nil
}

// Render executes the template for a finding of the named cluster (an
// action reads it from its deps' Cluster()).
func (t *Template) Render(cluster string, f *event.Finding) (string, error) {
	var b strings.Builder
	data := TemplateData{Event: f.Event, Cluster: cluster}
	if err := t.t.Execute(&b, data); err != nil {
		return "", fmt.Errorf("render %s: %w", t.t.Name(), err)
	}
	return b.String(), nil
}
