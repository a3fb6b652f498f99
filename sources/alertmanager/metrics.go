package alertmanager

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Rejection reasons, the values of medic_events_rejected_total's reason label.
const (
	ReasonMalformed      = "malformed"
	ReasonNotWebhook     = "not_webhook"
	ReasonInvalidParams  = "invalid_params"
	ReasonTooLarge       = "too_large"
	ReasonUnauthorized   = "unauthorized"
	ReasonBusUnavailable = "bus_unavailable"
	ReasonMethod         = "method"
	ReasonBusy           = "busy"
	ReasonMediaType      = "media_type"
	ReasonTimeout        = "timeout"
	ReasonStreamFull     = "stream_full"
	ReasonTooManyAlerts  = "too_many_alerts"
	ReasonEventTooLarge  = "event_too_large"
	ReasonMapping        = "mapping"
)

// Metrics are the counters every HTTP event source shares; the source label
// tells them apart ("alertmanager", "manual").
type Metrics struct {
	// Received counts events decoded from accepted request bodies.
	Received *prometheus.CounterVec
	// Stored counts events the bus stored for the first time.
	Stored *prometheus.CounterVec
	// Deduplicated counts events the bus already had (retries, replicas).
	Deduplicated *prometheus.CounterVec
	// Rejected counts refused requests, not events, by reason.
	Rejected *prometheus.CounterVec
	// RequestDuration covers the whole request, publishing included, by
	// source and HTTP status code.
	RequestDuration *prometheus.HistogramVec
}

// NewMetrics creates the metrics and registers them on reg. When another
// handler registered them first, the existing collectors are reused, so the
// webhook and the manual trigger can each call it with the same registry.
// A nil reg leaves them unregistered (tests, embedding).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		Received: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "medic_events_received_total",
			Help: "Events decoded from accepted requests, by source.",
		}, []string{"source"}),
		Stored: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "medic_events_stored_total",
			Help: "Events stored on the bus for the first time, by source.",
		}, []string{"source"}),
		Deduplicated: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "medic_events_deduplicated_total",
			Help: "Events the bus already held (retried webhooks, replicas), by source.",
		}, []string{"source"}),
		Rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "medic_events_rejected_total",
			Help: "Requests refused, by source and reason.",
		}, []string{"source", "reason"}),
		RequestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "medic_webhook_request_duration_seconds",
			Help:    "Time to answer an event intake request, publishing included.",
			Buckets: prometheus.DefBuckets,
		}, []string{"source", "code"}),
	}
	if reg == nil {
		return m, nil
	}
	var err error
	if m.Received, err = register(reg, m.Received); err != nil {
		return nil, err
	}
	if m.Stored, err = register(reg, m.Stored); err != nil {
		return nil, err
	}
	if m.Deduplicated, err = register(reg, m.Deduplicated); err != nil {
		return nil, err
	}
	if m.Rejected, err = register(reg, m.Rejected); err != nil {
		return nil, err
	}
	if m.RequestDuration, err = register(reg, m.RequestDuration); err != nil {
		return nil, err
	}
	return m, nil
}

func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	err := reg.Register(c)
	if err == nil {
		return c, nil
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
		return c, fmt.Errorf("registering metrics: a different collector is already registered under the same name: %w", err)
	}
	return c, fmt.Errorf("registering metrics: %w", err)
}
