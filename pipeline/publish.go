package pipeline

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/medichq/medic/event"
)

// FindingPublisher stores a finding once per sink on the findings stream:
// *bus.Bus.
type FindingPublisher interface {
	// FitFinding trims f to the bus's max payload; n is what it removed.
	FitFinding(f *event.Finding) (n int, err error)
	// PublishFindings returns once every sink's copy was stored.
	PublishFindings(ctx context.Context, sinks []string, f *event.Finding) error
}

// Publish puts a routed finding on the bus for the sinks' consumers.
type Publish struct {
	Bus    FindingPublisher
	Logger *slog.Logger
}

// Publish stores f for each of targets. A finding larger than the bus
// takes is trimmed (its largest evidence first) rather than refused: a
// shorter finding beats none.
func (p *Publish) Publish(ctx context.Context, targets []string, f *event.Finding) error {
	if n, err := p.Bus.FitFinding(f); n > 0 || err != nil {
		p.Logger.Warn("finding trimmed to fit the bus's max payload", "finding", f.ID, "trimmed_bytes", n, "error", err)
	}
	if err := p.Bus.PublishFindings(ctx, targets, f); err != nil {
		return fmt.Errorf("publish finding %s for sinks %v: %w", f.ID, targets, err)
	}
	return nil
}
