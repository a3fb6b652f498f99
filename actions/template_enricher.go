package actions

import (
	"context"
	"errors"

	"github.com/medichq/medic/event"
)

// TemplateEnricherParams are the parameters of template_enricher.
type TemplateEnricherParams struct {
	Title    string `yaml:"title"`
	Template string `yaml:"template"`
}

// Validate requires a template.
func (p *TemplateEnricherParams) Validate() error {
	if p.Template == "" {
		return errors.New("template is required")
	}
	return nil
}

func addTemplateEnricher(r *Registry) {
	Add(r, "template_enricher", "Add a markdown section rendered from a template over the event's labels and annotations.",
		func() *TemplateEnricherParams { return &TemplateEnricherParams{Title: "Details"} },
		func(p *TemplateEnricherParams) (Runner[interface{ Cluster() string }], error) {
			tmpl, err := ParseTemplate("template", p.Template)
			if err != nil {
				return nil, err
			}
			title := p.Title
			return RunFunc[interface{ Cluster() string }](func(_ context.Context, deps interface{ Cluster() string }, f *event.Finding) error {
				text, err := tmpl.Render(deps.Cluster(), f)
				if err != nil {
					return err
				}
				f.Add(event.Enrichment{Title: title, Source: "template_enricher", Blocks: []event.Block{event.MarkdownBlock(text)}})
				return nil
			}), nil
		})
}
