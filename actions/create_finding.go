package actions

import (
	"context"
	"fmt"

	"github.com/medichq/medic/event"
)

// CreateFindingParams are the parameters of create_finding.
type CreateFindingParams struct {
	// Title and Description are templates; empty keeps the event's own.
	Title       string `yaml:"title"`
	Description string `yaml:"description"`
	// Severity overrides the finding's severity (critical, high, warning, info).
	Severity string `yaml:"severity"`
}

// Validate rejects an unknown severity word at load time.
func (p *CreateFindingParams) Validate() error {
	switch p.Severity {
	case "", "critical", "high", "warning", "info", "none":
		return nil
	}
	return fmt.Errorf("severity %q is not one of critical, high, warning, info, none", p.Severity)
}

func addCreateFinding(r *Registry) {
	Add(r, "create_finding", "Set the finding's title, description (templates over the event) and severity.",
		func() *CreateFindingParams { return &CreateFindingParams{} },
		func(p *CreateFindingParams) (Runner[interface{ Cluster() string }], error) {
			var title, desc *Template
			var err error
			if p.Title != "" {
				if title, err = ParseTemplate("title", p.Title); err != nil {
					return nil, err
				}
			}
			if p.Description != "" {
				if desc, err = ParseTemplate("description", p.Description); err != nil {
					return nil, err
				}
			}
			severity := event.Severity(p.Severity)
			return RunFunc[interface{ Cluster() string }](func(_ context.Context, deps interface{ Cluster() string }, f *event.Finding) error {
				if title != nil {
					s, err := title.Render(deps.Cluster(), f)
					if err != nil {
						return err
					}
					f.Title = s
				}
				if desc != nil {
					s, err := desc.Render(deps.Cluster(), f)
					if err != nil {
						return err
					}
					f.Description = s
				}
				if severity != "" {
					f.Severity = severity
				}
				return nil
			}), nil
		})
}
