package pipeline

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/medichq/medic/bus"
	"github.com/medichq/medic/event"
)

// AlertClaimer is what Lifetimes asks before the playbooks run for an
// event: bus.AlertState.
type AlertClaimer interface {
	Claim(ctx context.Context, ev *event.Event, seq uint64) (bus.AlertClaim, error)
	Release(ctx context.Context, c bus.AlertClaim) error
}

// Lifetimes notifies once per alert lifetime: Alertmanager re-sends a
// firing alert every repeat_interval, and a re-send that arrives after
// bus.dedup_window is a new message with the same event ID. The check runs
// before the playbooks, not before publishing the finding: a repeat then
// costs one KV round trip instead of the playbooks' actions (logs,
// Prometheus queries, AI) run again for a finding nobody will see.
type Lifetimes struct {
	state      AlertClaimer // nil: lifetimes are off
	logger     *slog.Logger
	suppressed *prometheus.CounterVec
	errors     prometheus.Counter
}

// NewLifetimes registers the stage's metrics; a nil state turns alert
// lifetimes off (bus.alert_state_ttl: 0): every message is processed.
func NewLifetimes(state AlertClaimer, logger *slog.Logger, reg prometheus.Registerer) (*Lifetimes, error) {
	l := &Lifetimes{
		state:  state,
		logger: logger,
		suppressed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "medic_alert_repeats_suppressed_total",
			Help: "Alerts re-sent by Alertmanager after they were already processed in their lifetime (same fingerprint, startsAt and status), acked without running the playbooks or notifying, by status.",
		}, []string{"status"}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "medic_alert_state_errors_total",
			Help: "Alerts processed without knowing whether they were already notified, because the alert-state bucket could not be used (each may be a duplicate notification).",
		}),
	}
	if err := register(reg, l.suppressed, l.errors); err != nil {
		return nil, err
	}
	return l, nil
}

// Claim claims ev's alert for the message d; repeat is true when another
// message already did, and d is to be acked and dropped. A failure to read
// the state processes the alert: a possible duplicate notification beats a
// lost one.
func (l *Lifetimes) Claim(ctx context.Context, d *bus.Delivery, ev *event.Event) (c bus.AlertClaim, repeat bool) {
	if l.state == nil {
		return bus.AlertClaim{}, false
	}
	c, err := l.state.Claim(ctx, ev, d.StreamSeq)
	if err != nil {
		if ctx.Err() != nil {
			return c, false // stopping: the playbooks fail the same way, and the message is redelivered
		}
		l.errors.Inc()
		l.logger.Warn("cannot tell whether the alert was already notified; processing it (a possible duplicate)",
			"event", ev.ID, "status", ev.Status, "fingerprint", ev.Fingerprint, "err", err)
		return c, false
	}
	if !c.First {
		l.suppressed.WithLabelValues(string(ev.Status)).Inc()
		l.logger.Debug("alert already processed in its lifetime; not notified again",
			"event", ev.ID, "status", ev.Status, "fingerprint", ev.Fingerprint, "title", ev.Title,
			"seq", d.StreamSeq, "claimed_by_seq", c.ClaimedBy, "repeats", c.Repeats)
		return c, true
	}
	return c, false
}

// Release gives up the claim of a message whose processing failed, so
// that if it is dead-lettered a later re-send of the alert is processed.
func (l *Lifetimes) Release(ctx context.Context, c bus.AlertClaim) {
	if l.state == nil {
		return
	}
	// Also when medic is stopping: the claim would otherwise wait for the
	// message's redelivery.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := l.state.Release(rctx, c); err != nil {
		l.logger.Warn("could not release the alert's claim after a failure; its redelivery still holds it", "err", err)
	}
}

// register registers a stage's metrics; reg nil registers nothing (a
// stage built for a test or a tool that exports no metrics).
func register(reg prometheus.Registerer, cs ...prometheus.Collector) error {
	if reg == nil {
		return nil
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("register metrics: %w", err)
		}
	}
	return nil
}
