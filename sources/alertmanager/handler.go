package alertmanager

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/medichq/medic/event"
)

// Options configures the webhook endpoint.
type Options struct {
	// MaxBodyBytes bounds a request body; 0 means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// Auth is checked when it holds any credential.
	Auth Auth
	// InFlight, when set, bounds the requests worked on at once (shared
	// with the manual trigger).
	InFlight *InFlight
	// BodyTimeout bounds reading one body (Intake.BodyTimeout); 0: none.
	BodyTimeout time.Duration
	// Caps are decided before a body is decoded (Intake).
	Caps
	// Source is the events' source and part of their IDs; "" means
	// DefaultSource. Replicas behind one Service must agree on it.
	Source string
}

// Response is the body of a 200 answer. Accepted counts every alert of the
// message, Duplicates those the bus already held.
type Response struct {
	Accepted   int `json:"accepted"`
	Duplicates int `json:"duplicates"`
}

// NewHandler returns the handler for Alertmanager's webhook (mounted at
// POST /api/alerts). It registers its metrics on reg, sharing them with the
// manual trigger when both use the same registry; reg may be nil.
func NewHandler(opts Options, pub event.Publisher, logger *slog.Logger, reg prometheus.Registerer) (http.Handler, error) {
	m, err := NewMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("alertmanager webhook: %w", err)
	}
	source := opts.Source
	if source == "" {
		source = DefaultSource
	}
	h, err := Intake{
		Source:       source,
		MaxBodyBytes: opts.MaxBodyBytes,
		Auth:         opts.Auth,
		InFlight:     opts.InFlight,
		BodyTimeout:  opts.BodyTimeout,
		Caps:         opts.Caps,
		Publisher:    pub,
		Logger:       logger,
		Metrics:      m,
		Parse: func(body []byte, receivedAt time.Time) ([]event.Event, error) {
			msg, err := Decode(body)
			if err != nil {
				reason := ReasonMalformed
				if errors.Is(err, ErrNotWebhook) {
					reason = ReasonNotWebhook
				}
				return nil, &RequestError{Reason: reason, Err: err}
			}
			return ToEvents(msg, source, receivedAt), nil
		},
		Accepted: func(events []event.Event, res event.PublishResult) any {
			return Response{Accepted: len(events), Duplicates: res.Duplicates}
		},
	}.Handler()
	if err != nil {
		return nil, fmt.Errorf("alertmanager webhook: %w", err)
	}
	return h, nil
}
