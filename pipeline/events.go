package pipeline

import (
	"context"

	"github.com/medichq/medic/bus"
)

// Events is the handler of the engine's consumer on the events stream:
// decode → Lifetimes → Evaluate → Keep (silenced) or Route → Publish.
type Events struct {
	Lifetimes *Lifetimes
	Evaluate  *Evaluate
	Keep      *Keep
	Route     *Route
	Publish   *Publish
}

// Handle runs the playbooks for one event and publishes the finding to
// each routed sink's subject. It returns (and so acks) only after every
// publish was stored. An alert already processed in its lifetime (a
// re-send) is acked without running anything; a silenced finding is kept
// for the page and acked, delivered to no sink and not a dead letter.
func (e *Events) Handle(ctx context.Context, d *bus.Delivery) (err error) {
	ev, err := Decode(d)
	if err != nil {
		return err
	}
	claim, repeat := e.Lifetimes.Claim(ctx, d, ev)
	if repeat {
		return nil
	}
	defer func() {
		if err != nil {
			e.Lifetimes.Release(ctx, claim)
		}
	}()
	res, err := e.Evaluate.Evaluate(ctx, ev)
	if err != nil || res.Finding == nil {
		return err
	}
	if res.Finding.Silenced != nil {
		e.Keep.Keep(ctx, res.Finding)
		return nil
	}
	return e.Publish.Publish(ctx, e.Route.Targets(res.Finding, res.Sinks), res.Finding)
}
