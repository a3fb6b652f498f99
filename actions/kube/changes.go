package kube

import (
	"context"
	"fmt"
	"strings"

	"github.com/medichq/medic/actions"
	"github.com/medichq/medic/event"
	"github.com/medichq/medic/event/kubeevent"
)

// ReportChangesParams are report_changes' parameters.
type ReportChangesParams struct {
	// FieldsToMonitor limits the report to these paths (Robusta's
	// resource_babysitter and json_change_tracker): spec.replicas,
	// spec.template.spec.containers[0].image, data. Empty: every change.
	FieldsToMonitor []string `yaml:"fields_to_monitor"`
}

// Validate checks the paths at load time, as the change triggers do.
func (p *ReportChangesParams) Validate() error {
	for i, f := range p.FieldsToMonitor {
		if !kubeevent.ValidPath(f) {
			return fmt.Errorf("fields_to_monitor[%d]: %q is not a path like spec.replicas or spec.template.spec.containers[0].image", i, f)
		}
	}
	return nil
}

func addChanges(r *actions.Registry) {
	actions.Add(r, "report_changes",
		"Show what an update changed (old → new of image, env, replicas, resources, config keys, labels), limited to fields_to_monitor (an update that changed none of them is silenced); a Secret shows which keys changed, never values. Robusta's resource_babysitter and json_change_tracker.",
		func() *ReportChangesParams { return &ReportChangesParams{} },
		func(p *ReportChangesParams) (actions.Runner[any], error) {
			return actions.RunFunc[any](func(_ context.Context, _ any, f *event.Finding) error {
				reportChanges(f, p.FieldsToMonitor)
				return nil
			}), nil
		})
}

// reportChanges adds the "What changed" table of an update event. Events
// without a diff (creates, deletes, other sources) get nothing. An update
// that changed none of fields is silenced, as Robusta's
// resource_babysitter skips it: the finding reaches no sink.
func reportChanges(f *event.Finding, fields []string) {
	all := kubeevent.EventChanges(&f.Event)
	cs := all
	if len(fields) > 0 {
		cs = kubeevent.FilterChanges(all, fields)
	}
	if len(cs) == 0 {
		if len(all) > 0 {
			actions.Silence(f, "report_changes", "none of fields_to_monitor changed ("+strings.Join(fields, ", ")+")")
		}
		return
	}
	f.Add(event.Enrichment{Title: "What changed", Source: "report_changes", Blocks: []event.Block{ChangesBlock(cs)}})
}

// ChangesBlock renders changes as a Field | Before | After table.
func ChangesBlock(cs []kubeevent.Change) event.Block {
	rows := make([][]string, 0, len(cs))
	for _, c := range cs {
		switch c.Op {
		case kubeevent.ChangeAdded:
			rows = append(rows, []string{c.Label, "(none)", orChanged(c.New, "(added)")})
		case kubeevent.ChangeRemoved:
			rows = append(rows, []string{c.Label, orChanged(c.Old, "(present)"), "(removed)"})
		case kubeevent.ChangeChanged:
			rows = append(rows, []string{c.Label, orChanged(c.Old, "(value hidden)"), orChanged(c.New, "(value hidden)")})
		default:
			rows = append(rows, []string{c.String(), "", ""})
		}
	}
	return event.Block{Kind: event.BlockTable, Table: &event.TableBlock{Headers: []string{"Field", "Before", "After"}, Rows: rows}}
}

func orChanged(v, none string) string {
	if v == "" {
		return none
	}
	return v
}
