// Package pagerdutytest is PagerDuty's Events API v2 for tests: an HTTP
// server that checks each event the way PagerDuty documents it (method,
// path, JSON shape, routing key, event_action, payload on trigger,
// severity), answers like PagerDuty (202 with the dedup_key; 400 "invalid
// event" with the errors; 429 with Retry-After and 5xx on demand), and
// keeps incidents by dedup_key as PagerDuty does: a trigger for an open
// incident is merged into it, a resolve closes it.
package pagerdutytest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"

	"github.com/medichq/medic/sinks/internal/incident/incidenttest"
)

// Incident is one incident as PagerDuty keeps it.
type Incident struct {
	DedupKey string
	// Triggers counts the trigger events merged into the incident (1 when
	// no trigger was repeated).
	Triggers int
	Resolved bool
	// First is the trigger that opened the incident.
	First json.RawMessage
}

// Server is a fake Events API.
type Server struct {
	*httptest.Server
	// Faults: Fail queues refusals; Refused and Invalid count them.
	incidenttest.Faults
	routingKey string

	mu        sync.Mutex
	incidents []*Incident // every incident opened, in order
	events    []json.RawMessage
}

// New starts a server accepting events for routingKey; it is closed when
// the test ends.
func New(t testing.TB, routingKey string) *Server {
	s := &Server{routingKey: routingKey}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

func answer(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// MaxEventBytes is the largest event PagerDuty's Events API v2 takes
// (512 KB, payload and all); the double refuses a larger one as invalid.
const MaxEventBytes = 512 << 10

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/v2/enqueue" {
		answer(w, http.StatusNotFound, map[string]any{"status": "not found"})
		return
	}
	body, _ := io.ReadAll(r.Body)
	if s.FailHTTP(w, func(st int) any {
		return map[string]any{"status": "throttled or failed", "message": http.StatusText(st)}
	}) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var ev struct {
		RoutingKey  string `json:"routing_key"`
		EventAction string `json:"event_action"`
		DedupKey    string `json:"dedup_key"`
		Payload     *struct {
			Summary  string `json:"summary"`
			Source   string `json:"source"`
			Severity string `json:"severity"`
		} `json:"payload"`
		Links []struct {
			Href string `json:"href"`
		} `json:"links"`
	}
	var errs []string
	if r.Header.Get("Content-Type") != "application/json" {
		errs = append(errs, "Content-Type must be application/json")
	}
	if err := json.Unmarshal(body, &ev); err != nil {
		errs = append(errs, "Event object is not valid JSON")
	}
	switch {
	case ev.RoutingKey == "":
		errs = append(errs, "'routing_key' is missing or blank")
	case ev.RoutingKey != s.routingKey:
		errs = append(errs, "'routing_key' is invalid")
	}
	if !slices.Contains([]string{"trigger", "acknowledge", "resolve"}, ev.EventAction) {
		errs = append(errs, "'event_action' is invalid (must be one of the following: 'trigger', 'acknowledge' or 'resolve')")
	}
	if len(ev.DedupKey) > 255 || ev.EventAction != "trigger" && ev.DedupKey == "" {
		errs = append(errs, "'dedup_key' is invalid")
	}
	if ev.EventAction == "trigger" {
		switch {
		case ev.Payload == nil:
			errs = append(errs, "'payload' is missing or blank")
		case ev.Payload.Summary == "" || len(ev.Payload.Summary) > 1024:
			errs = append(errs, "'payload.summary' is missing, blank or too long")
		case ev.Payload.Source == "":
			errs = append(errs, "'payload.source' is missing or blank")
		case !slices.Contains([]string{"critical", "error", "warning", "info"}, ev.Payload.Severity):
			errs = append(errs, "'payload.severity' is invalid (must be one of the following: 'critical', 'warning', 'error' or 'info')")
		}
	}
	for _, l := range ev.Links {
		if l.Href == "" {
			errs = append(errs, "'links.href' is missing")
		}
	}
	if len(body) > MaxEventBytes {
		errs = append(errs, fmt.Sprintf("the event is %d bytes, over the 512 KB an event may be", len(body)))
	}
	if len(errs) > 0 {
		s.Reject(errs...)
		answer(w, http.StatusBadRequest, map[string]any{"status": "invalid event", "message": "Event object is invalid", "errors": errs})
		return
	}
	s.events = append(s.events, body)
	open := s.open(ev.DedupKey)
	switch ev.EventAction {
	case "trigger":
		if open != nil {
			open.Triggers++
		} else {
			s.incidents = append(s.incidents, &Incident{DedupKey: ev.DedupKey, Triggers: 1, First: body})
		}
	case "resolve":
		if open != nil {
			open.Resolved = true
		}
	}
	answer(w, http.StatusAccepted, map[string]any{"status": "success", "message": "Event processed", "dedup_key": ev.DedupKey})
}

// open returns the open incident with key, nil when none.
func (s *Server) open(key string) *Incident {
	for _, in := range s.incidents {
		if in.DedupKey == key && !in.Resolved {
			return in
		}
	}
	return nil
}

// Incidents returns a copy of every incident opened, in order.
func (s *Server) Incidents() []Incident {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Incident, len(s.incidents))
	for i, in := range s.incidents {
		out[i] = *in
	}
	return out
}

// Events returns the accepted events' bodies, in order.
func (s *Server) Events() []json.RawMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.events)
}
