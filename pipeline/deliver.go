package pipeline

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/medichq/medic/bus"
	"github.com/medichq/medic/event"
	"github.com/medichq/medic/sinks"
)

// DeliveryRecords remember which finding each sink delivered, across
// crashes: *bus.Deliveries (KV medic_delivered).
type DeliveryRecords interface {
	Delivered(ctx context.Context, key string) (bool, error)
	Record(ctx context.Context, key string) error
}

// recordTimeout bounds writing a delivery record after the send; Record
// waits out a NATS leader election (seconds) within it.
const recordTimeout = 15 * time.Second

// Deliveries builds the Deliver stage of each sink; the sinks share its
// records and metrics (labelled by sink).
type Deliveries struct {
	records  DeliveryRecords
	logger   *slog.Logger
	sent     *prometheus.CounterVec
	failures *prometheus.CounterVec
	seconds  *prometheus.HistogramVec
	endToEnd *prometheus.HistogramVec
	skipped  *prometheus.CounterVec
}

// NewDeliveries registers the delivery metrics. records may be nil: no
// sink then keeps a delivery record (a redelivery is sent again).
func NewDeliveries(records DeliveryRecords, logger *slog.Logger, reg prometheus.Registerer) (*Deliveries, error) {
	ds := &Deliveries{
		records: records,
		logger:  logger,
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "medic_sink_deliveries_total", Help: "Findings delivered, by sink.",
		}, []string{"sink"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "medic_sink_failures_total", Help: "Failed delivery attempts, by sink (each is retried or dead-lettered).",
		}, []string{"sink"}),
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "medic_sink_delivery_duration_seconds", Help: "Time a sink takes to deliver one finding.",
			Buckets: []float64{.0001, .0005, .001, .005, .01, .05, .1, .5, 1, 5, 30},
		}, []string{"sink"}),
		endToEnd: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "medic_event_to_delivery_seconds", Help: "Time from receiving an event to delivering its finding, by sink.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 5, 30, 120},
		}, []string{"sink"}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "medic_sink_redeliveries_skipped_total",
			Help: "Findings redelivered (after a crash) that the delivery record showed were already sent, by sink.",
		}, []string{"sink"}),
	}
	if err := register(reg, ds.sent, ds.failures, ds.seconds, ds.endToEnd, ds.skipped); err != nil {
		return nil, err
	}
	return ds, nil
}

// Deliver is one sink's consumer handler on the findings stream. Failures
// are returned to the bus, which retries them with back-off and
// dead-letters them after bus.max_deliver.
type Deliver struct {
	name    string
	sink    sinks.Sink
	encoded sinks.EncodedSender // nil: the sink is handed a decoded finding
	records DeliveryRecords     // nil: no delivery record for this sink
	ds      *Deliveries
	logger  *slog.Logger
	sending inFlight // the keys this process is sending now
}

// inFlight serialises, within one process, the deliveries of one finding to
// one sink. Two copies of a finding reach a sink's consumer when the engine
// published it again after the findings stream's duplicate window
// (bus.findings_dedup_window: its event was redelivered after a crash or
// ack_wait); with engine.sink_workers above 1 both could be checked against
// the delivery record before either was sent. The second copy now waits
// for the first and then finds its record.
type inFlight struct {
	mu   sync.Mutex
	keys map[string]chan struct{}
}

// acquire waits until no other delivery of key runs in this process and
// claims it; release gives it back.
func (f *inFlight) acquire(ctx context.Context, key string) (release func(), err error) {
	for {
		f.mu.Lock()
		busy, ok := f.keys[key]
		if !ok {
			if f.keys == nil {
				f.keys = map[string]chan struct{}{}
			}
			done := make(chan struct{})
			f.keys[key] = done
			f.mu.Unlock()
			return func() {
				f.mu.Lock()
				delete(f.keys, key)
				f.mu.Unlock()
				close(done)
			}, nil
		}
		f.mu.Unlock()
		select {
		case <-busy:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// For is the Deliver stage of the sink c.
func (ds *Deliveries) For(c *sinks.Configured) *Deliver {
	d := &Deliver{name: c.Spec.Name, sink: c.Sink, records: ds.records, ds: ds,
		logger: ds.logger.With("sink", c.Spec.Name)}
	d.encoded, _ = c.Sink.(sinks.EncodedSender)
	// A sink that keeps its own durable record of what it delivered needs
	// no second one.
	if self, ok := c.Sink.(sinks.SelfDeduplicating); ok && self.DeduplicatesItself() {
		d.records = nil
	}
	return d
}

// Handle delivers the finding d carries, once: a redelivery of a finding
// the record says was sent (a crash between the send and the ack) is
// acked without sending.
func (d *Deliver) Handle(ctx context.Context, m *bus.Delivery) error {
	var (
		id         = m.Header.Get(bus.HeaderFindingID)
		receivedAt time.Time
		f          *event.Finding
	)
	if d.encoded == nil || id == "" {
		f = new(event.Finding)
		if err := event.UnmarshalFinding(m.Data, f); err != nil {
			return bus.Permanent(fmt.Errorf("decode finding on %s: %w", m.Subject, err))
		}
		id, receivedAt = f.ID, f.Event.ReceivedAt
	} else {
		receivedAt, _ = time.Parse(time.RFC3339Nano, m.Header.Get(bus.HeaderReceivedAt))
	}
	key := sinks.IdempotencyKey(d.name, id)
	if d.records != nil && id != "" {
		release, err := d.sending.acquire(ctx, key)
		if err != nil {
			return fmt.Errorf("wait for another delivery of finding %s to sink %s: %w", id, d.name, err)
		}
		defer release()
		// A failed read sends anyway: a possible duplicate is better than a
		// possibly lost finding.
		switch done, err := d.records.Delivered(ctx, key); {
		case err != nil:
			d.logger.Warn("cannot read the delivery record; sending", "finding", id, "err", err)
		case done:
			d.logger.Info("finding already delivered to this sink; not sending it again", "finding", id, "attempt", m.Attempt)
			d.ds.skipped.WithLabelValues(d.name).Inc()
			return nil
		}
	}
	start := time.Now()
	var err error
	if f == nil {
		// The hot path: the sink writes the stored JSON as it is.
		err = d.encoded.SendEncoded(ctx, id, m.Data)
	} else {
		err = d.sink.Send(ctx, f)
	}
	if err != nil {
		d.ds.failures.WithLabelValues(d.name).Inc()
		return fmt.Errorf("send finding %s to sink %s: %w", id, d.name, err)
	}
	if d.records != nil && id != "" {
		// Recorded even when medic is stopping: the send happened.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
		if err := d.records.Record(rctx, key); err != nil {
			d.logger.Warn("finding delivered but not recorded; a redelivery would send it again", "finding", id, "err", err)
		}
		cancel()
	}
	d.ds.seconds.WithLabelValues(d.name).Observe(time.Since(start).Seconds())
	d.ds.sent.WithLabelValues(d.name).Inc()
	if !receivedAt.IsZero() {
		d.ds.endToEnd.WithLabelValues(d.name).Observe(time.Since(receivedAt).Seconds())
	}
	return nil
}
