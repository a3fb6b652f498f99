package pipeline

import (
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/sinks"
)

// Route decides which sinks receive a finding (sinks.Decide): the
// playbooks' sinks override the defaults, each sink's scope filters, and
// its routing keys (send_resolved, activity, mute_intervals, stop) may
// keep the finding from it.
type Route struct {
	specs  []sinks.Spec
	logger *slog.Logger
	now    func() time.Time
	skips  *prometheus.CounterVec
}

// NewRoute routes over the configured sinks and registers the stage's
// metric.
func NewRoute(specs []sinks.Spec, logger *slog.Logger, reg prometheus.Registerer) (*Route, error) {
	r := &Route{specs: specs, logger: logger, now: time.Now,
		skips: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "medic_sink_skipped_total",
			Help: "Findings routed to a sink that its routing keys kept from it (send_resolved, activity, mute_intervals, stop), by sink and reason.",
		}, []string{"sink", "reason"}),
	}
	if err := register(reg, r.skips); err != nil {
		return nil, err
	}
	return r, nil
}

// Targets are the sinks f is published to; requested are the sinks the
// matched playbooks named (empty: the defaults).
func (r *Route) Targets(f *event.Finding, requested []string) []string {
	d := sinks.Decide(r.specs, f, requested, r.now())
	if len(d.Unknown) > 0 {
		r.logger.Warn("playbooks name sinks that are not configured", "sinks", d.Unknown, "finding", f.ID)
	}
	for _, s := range d.Skipped {
		// Not lost: the sink's routing keys say it does not want the
		// finding now. Counted here once, since it is never published.
		r.logger.Info("finding not sent to a sink", "sink", s.Sink, "reason", s.Reason, "finding", f.ID)
		r.skips.WithLabelValues(s.Sink, s.Reason).Inc()
	}
	return d.Targets
}
