// Package opsgenietest is Opsgenie's Alert API v2 for tests: an HTTP
// server that checks each request the way Opsgenie documents it (the
// GenieKey authorization, POST /v2/alerts with message ≤ 130 characters,
// alias ≤ 512, priority P1-P5, at most 20 tags; POST
// /v2/alerts/{alias}/close?identifierType=alias), answers like Opsgenie
// (202 "Request will be processed"; 401, 422 with the errors; 429 with
// Retry-After and 5xx on demand), and keeps alerts by alias as Opsgenie
// does: a create for an alias whose alert is open raises its count instead
// of opening another.
package opsgenietest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/medichq/medic/sinks/internal/incident/incidenttest"
)

// Alert is one alert as Opsgenie keeps it.
type Alert struct {
	Alias  string
	Count  int // creates merged into it (1 when none was repeated)
	Closed bool
	// Create is the request that opened it.
	Create json.RawMessage
}

// Server is a fake Alert API.
type Server struct {
	*httptest.Server
	// Faults: Fail queues refusals; Refused and Invalid count them.
	incidenttest.Faults
	apiKey string

	mu       sync.Mutex
	alerts   []*Alert
	requests int
}

// New starts a server accepting apiKey; it is closed when the test ends.
func New(t testing.TB, apiKey string) *Server {
	s := &Server{apiKey: apiKey}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

func (s *Server) answer(w http.ResponseWriter, status int, v map[string]any) {
	s.requests++
	v["took"] = 0.01
	v["requestId"] = fmt.Sprintf("43a29c5c-3dbf-4fa4-9c26-%012d", s.requests)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if s.FailHTTP(w, func(st int) any { return map[string]any{"message": http.StatusText(st), "took": 0.01} }) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.Header.Get("Authorization") != "GenieKey "+s.apiKey {
		s.Reject("authorization")
		s.answer(w, http.StatusUnauthorized, map[string]any{"message": "Key format is not valid!"})
		return
	}
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
		s.answer(w, http.StatusMethodNotAllowed, map[string]any{"message": "Request method or content type is not supported"})
		return
	}
	switch {
	case r.URL.Path == "/v2/alerts":
		s.create(w, body)
	case strings.HasPrefix(r.URL.Path, "/v2/alerts/") && strings.HasSuffix(r.URL.Path, "/close"):
		if r.URL.Query().Get("identifierType") != "alias" {
			s.answer(w, http.StatusBadRequest, map[string]any{"message": "identifierType must be alias here"})
			return
		}
		alias := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/v2/alerts/"), "/close")
		if a := s.open(alias); a != nil {
			a.Closed = true
		}
		// Processed asynchronously: an unknown alias is answered 202 too.
		s.answer(w, http.StatusAccepted, map[string]any{"result": "Request will be processed"})
	default:
		s.answer(w, http.StatusNotFound, map[string]any{"message": "Could not find resource"})
	}
}

func (s *Server) create(w http.ResponseWriter, body []byte) {
	var a struct {
		Message    string            `json:"message"`
		Alias      string            `json:"alias"`
		Priority   string            `json:"priority"`
		Tags       []string          `json:"tags"`
		Details    map[string]string `json:"details"`
		Responders []struct {
			Name string `json:"name"`
			Type string `json:"type"`
		} `json:"responders"`
		Description string `json:"description"`
	}
	errs := map[string]string{}
	if err := json.Unmarshal(body, &a); err != nil {
		errs["body"] = "Request body is not valid JSON"
	}
	if a.Message == "" || utf8.RuneCountInString(a.Message) > 130 {
		errs["message"] = "Message can not be empty or longer than 130 characters."
	}
	if len(a.Alias) > 512 {
		errs["alias"] = "Alias can not be longer than 512 characters."
	}
	if a.Priority != "" && !slices.Contains([]string{"P1", "P2", "P3", "P4", "P5"}, a.Priority) {
		errs["priority"] = "Priority should be one of [P1, P2, P3, P4, P5]"
	}
	if len(a.Tags) > 20 {
		errs["tags"] = "Tags can not be more than 20."
	}
	if utf8.RuneCountInString(a.Description) > 15000 {
		errs["description"] = "Description can not be longer than 15000 characters."
	}
	n := 0
	for k, v := range a.Details {
		n += len(k) + len(v)
	}
	if n > 8000 {
		errs["details"] = "Details can not be longer than 8000 characters."
	}
	for _, r := range a.Responders {
		if r.Name == "" || !slices.Contains([]string{"team", "user", "escalation", "schedule"}, r.Type) {
			errs["responders"] = "Responder type is not valid."
		}
	}
	if len(errs) > 0 {
		for k, v := range errs {
			s.Reject(k + ": " + v)
		}
		s.answer(w, http.StatusUnprocessableEntity, map[string]any{"message": "Request body is not processable. Please check the errors.", "errors": errs})
		return
	}
	if open := s.open(a.Alias); open != nil && a.Alias != "" {
		open.Count++
	} else {
		s.alerts = append(s.alerts, &Alert{Alias: a.Alias, Count: 1, Create: body})
	}
	s.answer(w, http.StatusAccepted, map[string]any{"result": "Request will be processed"})
}

func (s *Server) open(alias string) *Alert {
	for _, a := range s.alerts {
		if a.Alias == alias && !a.Closed {
			return a
		}
	}
	return nil
}

// Alerts returns a copy of every alert opened, in order.
func (s *Server) Alerts() []Alert {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Alert, len(s.alerts))
	for i, a := range s.alerts {
		out[i] = *a
	}
	return out
}
