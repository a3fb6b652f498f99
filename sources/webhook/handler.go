package webhook

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/event/webhookevent"
	"github.com/medichq/medic/sources/alertmanager"
)

// Options are what every source's intake shares with the Alertmanager
// webhook: the body limit, the in-flight bound, the body timeout, the caps
// and the metrics.
type Options struct {
	MaxBodyBytes int64
	InFlight     *alertmanager.InFlight
	BodyTimeout  time.Duration
	alertmanager.Caps
	Metrics *alertmanager.Metrics
	Logger  *slog.Logger
}

// Response is the body of a 200 answer.
type Response struct {
	ID        string `json:"id"`
	Duplicate bool   `json:"duplicate"`
}

// NewHandler serves POST /api/webhooks/{name} for sources, one intake each
// (its own credentials and mapping; metrics and logs say "webhook/<name>").
// The sources must be valid (ValidateSource); a mapping that fails
// to compile here is an error.
func NewHandler(sources []SourceConfig, pub event.Publisher, opts Options) (http.Handler, error) {
	byName := make(map[string]http.Handler, len(sources))
	for i := range sources {
		src := &sources[i]
		m, err := compileSource(src)
		if err != nil {
			return nil, fmt.Errorf("webhook_sources[%d] (%s): %w", i, src.Name, err)
		}
		source := webhookevent.SourcePrefix + src.Name
		hm := hmacCheck(src)
		in := alertmanager.Intake{
			Source:       source,
			MaxBodyBytes: opts.MaxBodyBytes,
			Auth:         httpAuth(src.Auth),
			InFlight:     opts.InFlight,
			Caps:         opts.Caps,
			BodyTimeout:  opts.BodyTimeout,
			Publisher:    pub,
			Logger:       opts.Logger,
			Metrics:      opts.Metrics,
			Parse: func(body []byte, receivedAt time.Time) ([]event.Event, error) {
				ev, err := Parse(m, source, body, receivedAt)
				if err != nil {
					return nil, err
				}
				return []event.Event{ev}, nil
			},
			Accepted: func(events []event.Event, res event.PublishResult) any {
				return Response{ID: events[0].ID, Duplicate: res.Duplicates > 0}
			},
		}
		if hm.Enabled() {
			in.VerifyBody = hm.Verify
		}
		h, err := in.Handler()
		if err != nil {
			return nil, fmt.Errorf("webhook source %s: %w", src.Name, err)
		}
		byName[src.Name] = h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, ok := byName[r.PathValue("name")]
		if !ok {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			_, _ = fmt.Fprintf(w, "{\"error\":%q}\n", "no webhook source is called "+r.PathValue("name"))
			return
		}
		h.ServeHTTP(w, r)
	}), nil
}

// Parse turns one body into the source's event: malformed JSON is a 400,
// a mapping that cannot evaluate over valid JSON a 422 naming the field
// and its expression.
func Parse(m *Mapping, source string, body []byte, receivedAt time.Time) (event.Event, error) {
	var v any
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&v); err != nil {
		return event.Event{}, &alertmanager.RequestError{Reason: alertmanager.ReasonMalformed, Err: fmt.Errorf("malformed JSON: %w", err)}
	}
	if dec.More() {
		return event.Event{}, &alertmanager.RequestError{Reason: alertmanager.ReasonMalformed,
			Err: fmt.Errorf("unexpected data after the JSON value at byte %d", dec.InputOffset())}
	}
	ev, err := m.Event(source, v, body, receivedAt)
	if err != nil {
		return event.Event{}, &alertmanager.RequestError{Reason: alertmanager.ReasonMapping, Status: http.StatusUnprocessableEntity, Err: err}
	}
	return ev, nil
}
