package app

import (
	"context"
	"fmt"
	"time"

	"github.com/medichq/medic/sources/schedule"
)

// startSchedules runs the on_schedule triggers of the running playbook set
// and keeps them in step with reloads: an unchanged schedule keeps its
// state, a removed one stops (sources/schedule). Each set is also checked
// for on_webhook triggers naming undeclared sources.
func (a *App) startSchedules(ctx context.Context) error {
	s, err := schedule.Open(ctx, schedule.Options{
		JetStream:  a.bus.JetStream(), // re-created by the healer if the server loses it
		Replicas:   a.cfg.Bus.Replicas,
		Publisher:  a.bus,
		Logger:     a.logger.With("component", "schedule"),
		Registerer: a.registry,
	})
	if err != nil {
		return fmt.Errorf("schedules: %w", err)
	}
	set := a.store.Current()
	s.Set(ctx, schedule.Of(set.Triggers()))
	a.warnUnknownWebhookSources(set) // webhooksources.go
	a.wg.Go(func() {
		defer s.Stop()
		// Reloads swap the set's pointer; looking once a second is cheap
		// and a schedule's delays are counted in seconds anyway.
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			if cur := a.store.Current(); cur != set {
				set = cur
				s.Set(ctx, schedule.Of(set.Triggers()))
				a.warnUnknownWebhookSources(set)
			}
		}
	})
	return nil
}
