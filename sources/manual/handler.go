package manual

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/sources/alertmanager"
	"github.com/medichq/medic/sources/httpauth"
)

// Options configures the manual trigger endpoint. It is held to the same
// rules as the webhook: it can inject any alert, so it deserves the same
// credentials.
type Options struct {
	// MaxBodyBytes bounds a request body; 0 means alertmanager.DefaultMaxBodyBytes.
	MaxBodyBytes int64
	Auth         httpauth.Auth
	// InFlight, when set, bounds the requests worked on at once (shared
	// with the Alertmanager webhook).
	InFlight *alertmanager.InFlight
	// BodyTimeout bounds reading one body (Intake.BodyTimeout); 0: none.
	BodyTimeout time.Duration
	// Caps are decided before a body is decoded (Intake).
	alertmanager.Caps
}

// Request is the body of POST /api/trigger.
type Request struct {
	Trigger string            `json:"trigger"`
	Params  map[string]string `json:"params,omitempty"`
}

// Result is the body of a 200 answer: the IDs of the published events and
// how many of them the bus already held.
type Result struct {
	IDs        []string `json:"ids"`
	Duplicates int      `json:"duplicates"`
}

// NewHandler returns the handler for POST /api/trigger. metrics is shared
// with the webhook (see alertmanager.NewMetrics); nil keeps them private.
func NewHandler(opts Options, pub event.Publisher, logger *slog.Logger, metrics *alertmanager.Metrics) (http.Handler, error) {
	h, err := alertmanager.Intake{
		Source:       Source,
		MaxBodyBytes: opts.MaxBodyBytes,
		Auth:         opts.Auth,
		InFlight:     opts.InFlight,
		BodyTimeout:  opts.BodyTimeout,
		Caps:         opts.Caps,
		Publisher:    pub,
		Logger:       logger,
		Metrics:      metrics,
		Parse:        parseRequest,
		Accepted: func(events []event.Event, res event.PublishResult) any {
			r := Result{IDs: make([]string, 0, len(events)), Duplicates: res.Duplicates}
			for i := range events {
				r.IDs = append(r.IDs, events[i].ID)
			}
			return r
		},
	}.Handler()
	if err != nil {
		return nil, fmt.Errorf("manual trigger: %w", err)
	}
	return h, nil
}

func parseRequest(body []byte, receivedAt time.Time) ([]event.Event, error) {
	var req Request
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return nil, &alertmanager.RequestError{Reason: alertmanager.ReasonMalformed, Err: describeDecodeError(body, err)}
	}
	if dec.More() || dec.InputOffset() < int64(len(bytes.TrimRight(body, " \t\r\n"))) {
		return nil, &alertmanager.RequestError{Reason: alertmanager.ReasonMalformed,
			Err: fmt.Errorf("unexpected data after the JSON object at byte %d", dec.InputOffset())}
	}
	if req.Trigger == "" {
		return nil, &alertmanager.RequestError{Reason: alertmanager.ReasonInvalidParams,
			Err: fmt.Errorf(`"trigger" is required (known: %s)`, strings.Join(Triggers(), ", "))}
	}
	ev, err := Build(req.Trigger, req.Params, receivedAt)
	if err != nil {
		return nil, &alertmanager.RequestError{Reason: alertmanager.ReasonInvalidParams, Err: err}
	}
	return []event.Event{ev}, nil
}

func describeDecodeError(body []byte, err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("malformed JSON at byte %d: %v", se.Offset, err)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		if te.Field == "" {
			return fmt.Errorf("the body is a JSON %s; send an object like {\"trigger\":\"prometheus_alert\",\"params\":{\"alert_name\":\"X\"}}", te.Value)
		}
		return fmt.Errorf("%s: got a JSON %s; params values must be strings", te.Field, te.Value)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return errors.New("the body is empty")
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return errors.New("malformed JSON: the body ends in the middle of the JSON value")
	}
	return fmt.Errorf("decoding the request: %w", err)
}
