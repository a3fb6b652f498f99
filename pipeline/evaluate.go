package pipeline

import (
	"context"
	"fmt"

	"github.com/medichq/medic/bus"
	"github.com/medichq/medic/event"
	"github.com/medichq/medic/playbooks"
	"github.com/medichq/medic/redact"
)

// Decode reads the event a delivery on the events stream carries. A
// message that does not decode is a permanent error: it will not decode on
// the tenth try either, so the bus dead-letters it at once.
func Decode(d *bus.Delivery) (*event.Event, error) {
	ev := new(event.Event)
	if err := event.UnmarshalEvent(d.Data, ev); err != nil {
		return nil, bus.Permanent(fmt.Errorf("decode event on %s: %w", d.Subject, err))
	}
	return ev, nil
}

// Engine runs the playbooks for one event: *playbooks.Engine.
type Engine interface {
	Run(ctx context.Context, ev *event.Event) (playbooks.Result, error)
}

// Redactor removes secrets from a finding and says what it removed:
// *redact.Redactor.
type Redactor interface {
	Finding(f *event.Finding) redact.Redaction
}

// SilencedSource marks the enrichment that says a finding was silenced.
const SilencedSource = "silencer"

// RedactionSource marks the enrichment that says what was redacted.
const RedactionSource = event.RedactionSource

// Evaluate turns an event into its finding: the playbooks run, a silenced
// finding says so as evidence, and secrets are removed, once, before the
// finding goes anywhere: every sink, the finding store behind the page and
// the buttons, and Ask AI see only redacted text.
type Evaluate struct {
	Engine   Engine
	Redactor Redactor
}

// Evaluate runs the playbooks for ev. The result's Finding is nil when no
// playbook matched.
func (e *Evaluate) Evaluate(ctx context.Context, ev *event.Event) (playbooks.Result, error) {
	res, err := e.Engine.Run(ctx, ev)
	if err != nil {
		return res, fmt.Errorf("run playbooks for event %s: %w", ev.ID, err)
	}
	f := res.Finding
	if f == nil {
		return res, nil
	}
	if f.Silenced != nil {
		// Said as evidence too, so the page shows it like anything else.
		f.Add(event.Enrichment{Title: "Silenced", Source: SilencedSource, Blocks: []event.Block{
			event.MarkdownBlock("🔕 Silenced by " + f.Silenced.By + ": " + f.Silenced.Reason + ". No sink received this finding."),
		}})
	}
	e.redact(f)
	return res, nil
}

// redact removes secrets from f and, when it removed some, says how many
// at the end of the finding, which every sink and the page render like any
// other evidence.
func (e *Evaluate) redact(f *event.Finding) {
	found := e.Redactor.Finding(f)
	if found.Total() == 0 {
		return
	}
	f.Add(event.Enrichment{Title: "Redacted", Source: RedactionSource, Blocks: []event.Block{
		event.MarkdownBlock("🔒 " + found.Note() + " before this finding left medic."),
	}})
}
