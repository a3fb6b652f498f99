package app

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/medichq/medic/bus"
	"github.com/medichq/medic/event"
)

// alertClaimer is what the engine stage asks before it runs the playbooks
// for an event: bus.AlertState.
type alertClaimer interface {
	Claim(ctx context.Context, ev *event.Event, seq uint64) (bus.AlertClaim, error)
	Release(ctx context.Context, c bus.AlertClaim) error
}

// alertLifetimes notifies once per alert lifetime: Alertmanager re-sends a
// firing alert every repeat_interval, and a re-send that arrives after
// bus.dedup_window is a new message with the same event ID. The check runs
// in handleEvent before the playbooks, not before publishing the finding:
// a repeat then costs one KV round trip instead of the playbooks' actions
// (logs, Prometheus queries, AI) run again for a finding nobody will see.
type alertLifetimes struct {
	state      alertClaimer // nil when bus.alert_state_ttl is 0
	suppressed *prometheus.CounterVec
	errors     prometheus.Counter
}

// initAlertLifetimes opens the alert-state bucket and registers its metrics.
func (a *App) initAlertLifetimes(ctx context.Context) error {
	l := &a.lifetimes
	l.suppressed = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "medic_alert_repeats_suppressed_total",
		Help: "Alerts re-sent by Alertmanager after they were already processed in their lifetime (same fingerprint, startsAt and status), acked without running the playbooks or notifying, by status.",
	}, []string{"status"})
	l.errors = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "medic_alert_state_errors_total",
		Help: "Alerts processed without knowing whether they were already notified, because the alert-state bucket could not be used (each may be a duplicate notification).",
	})
	for _, c := range []prometheus.Collector{l.suppressed, l.errors} {
		if err := a.registry.Register(c); err != nil {
			return fmt.Errorf("register metrics: %w", err)
		}
	}
	if a.cfg.Bus.AlertStateTTL == 0 {
		a.logger.Info("alert lifetimes are off (bus.alert_state_ttl: 0): every re-send after bus.dedup_window runs the playbooks again")
		return nil
	}
	s, err := a.bus.AlertState(ctx)
	if err != nil {
		return err
	}
	l.state = s
	return nil
}

// claimAlert claims ev's alert for the message d; repeat is true when
// another message already did, and d is to be acked and dropped. A failure
// to read the state processes the alert: a possible duplicate notification
// beats a lost one.
func (a *App) claimAlert(ctx context.Context, d *bus.Delivery, ev *event.Event) (c bus.AlertClaim, repeat bool) {
	l := &a.lifetimes
	if l.state == nil {
		return bus.AlertClaim{}, false
	}
	c, err := l.state.Claim(ctx, ev, d.StreamSeq)
	if err != nil {
		if ctx.Err() != nil {
			return c, false // stopping: the playbooks fail the same way, and the message is redelivered
		}
		l.errors.Inc()
		a.logger.Warn("cannot tell whether the alert was already notified; processing it (a possible duplicate)",
			"event", ev.ID, "status", ev.Status, "fingerprint", ev.Fingerprint, "err", err)
		return c, false
	}
	if !c.First {
		l.suppressed.WithLabelValues(string(ev.Status)).Inc()
		a.logger.Debug("alert already processed in its lifetime; not notified again",
			"event", ev.ID, "status", ev.Status, "fingerprint", ev.Fingerprint, "title", ev.Title,
			"seq", d.StreamSeq, "claimed_by_seq", c.ClaimedBy, "repeats", c.Repeats)
		return c, true
	}
	return c, false
}

// releaseAlert gives up the claim of a message whose processing failed, so
// that if it is dead-lettered a later re-send of the alert is processed.
func (a *App) releaseAlert(ctx context.Context, c bus.AlertClaim) {
	if a.lifetimes.state == nil {
		return
	}
	// Also when medic is stopping: the claim would otherwise wait for the
	// message's redelivery.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := a.lifetimes.state.Release(rctx, c); err != nil {
		a.logger.Warn("could not release the alert's claim after a failure; its redelivery still holds it", "err", err)
	}
}
