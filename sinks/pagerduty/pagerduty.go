// Package pagerduty is the `pagerduty` sink: each finding becomes an event
// of PagerDuty's Events API v2 (POST /v2/enqueue). A firing finding
// triggers an incident, its resolved finding resolves it: both carry the
// same dedup_key, derived from the alert's fingerprint and start, so
// PagerDuty ties them together and a redelivery of the trigger (after a
// crash, before medic recorded the delivery) lands on the open incident
// instead of paging twice.
package pagerduty

import (
	"cmp"
	"context"
	"errors"
	"strings"
	"time"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/sinks"
	"github.com/medichq/medic/sinks/chatfmt"
	"github.com/medichq/medic/sinks/internal/httpdeliver"
	"github.com/medichq/medic/sinks/internal/incident"
	"github.com/medichq/medic/sinks/internal/secretparam"
)

// Type is the sink type name used in configuration.
const Type = "pagerduty"

// DefaultAPIURL is PagerDuty's Events API; EU accounts use
// https://events.eu.pagerduty.com.
const DefaultAPIURL = "https://events.pagerduty.com"

// Limits PagerDuty documents for an event.
const (
	maxSummary = 1024
	// maxDetailsText keeps the event well under the 512 KB PagerDuty
	// accepts; the whole finding is on medic's finding page.
	maxDetailsText = 16 << 10
)

// Params are the parameters of the pagerduty sink.
type Params struct {
	// RoutingKey is the integration key of an Events API v2 integration
	// (a service's or a ruleset's). A secret: prefer routing_key_file or
	// routing_key_env.
	RoutingKey     string `yaml:"routing_key"`
	RoutingKeyFile string `yaml:"routing_key_file"`
	RoutingKeyEnv  string `yaml:"routing_key_env"`
	// APIURL is the Events API base URL (tests; the EU service region).
	APIURL string `yaml:"api_url"`
	// HTTPParams: timeout, max_retry_after.
	incident.HTTPParams `yaml:",inline"`
}

func (p *Params) routingKey() secretparam.Param {
	return secretparam.Param{Key: "routing_key", Inline: p.RoutingKey, File: p.RoutingKeyFile, Env: p.RoutingKeyEnv}
}

// Defaults returns the parameters used for keys the configuration leaves out.
func Defaults() *Params {
	return &Params{APIURL: DefaultAPIURL, HTTPParams: incident.DefaultHTTP()}
}

// Validate checks the parameters after decoding.
func (p *Params) Validate() error {
	if err := p.routingKey().Validate(true); err != nil {
		return err
	}
	return incident.CheckHTTP("api_url", p.APIURL, p.HTTPParams)
}

// Register adds the pagerduty sink type to r.
func Register(r *sinks.Registry) {
	sinks.Add(r, Type,
		"Triggers a PagerDuty incident (Events API v2) for each firing finding and resolves it when the alert resolves; dedup_key ties them and absorbs redeliveries.",
		Defaults, New)
}

// Event is the Events API v2 body.
type Event struct {
	RoutingKey  string   `json:"routing_key"`
	EventAction string   `json:"event_action"` // trigger, resolve
	DedupKey    string   `json:"dedup_key"`
	Payload     *Payload `json:"payload,omitempty"` // trigger only
	Client      string   `json:"client,omitempty"`
	ClientURL   string   `json:"client_url,omitempty"`
	Links       []Link   `json:"links,omitempty"`
}

// Payload describes the incident.
type Payload struct {
	Summary       string         `json:"summary"`
	Source        string         `json:"source"`
	Severity      string         `json:"severity"` // critical, error, warning, info
	Timestamp     string         `json:"timestamp,omitempty"`
	Component     string         `json:"component,omitempty"`
	Group         string         `json:"group,omitempty"`
	Class         string         `json:"class,omitempty"`
	CustomDetails map[string]any `json:"custom_details,omitempty"`
}

// Link is a link shown on the incident.
type Link struct {
	Href string `json:"href"`
	Text string `json:"text,omitempty"`
}

// Severity maps medic's severity onto PagerDuty's four.
func Severity(s event.Severity) string {
	switch s {
	case event.SeverityCritical:
		return "critical"
	case event.SeverityHigh:
		return "error"
	case event.SeverityWarning:
		return "warning"
	default:
		return "info"
	}
}

// Sink sends events. It is safe for concurrent use.
type Sink struct {
	name     string
	key      string
	endpoint string
	cluster  string
	pageURL  func(string) string
	poster   *httpdeliver.Poster
}

// Deps is what a pagerduty sink uses of sinks.Deps: the incident sinks' set.
type Deps = incident.Deps

// New starts a PagerDuty sink, reading the routing key now.
func New(ctx context.Context, name string, p Params, deps Deps) (*Sink, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	key, err := p.routingKey().Read()
	if err != nil {
		return nil, err
	}
	return &Sink{
		name: name, key: key, cluster: deps.ClusterName(), pageURL: deps.FindingURL,
		endpoint: strings.TrimRight(p.APIURL, "/") + "/v2/enqueue",
		poster:   p.Poster(name, "PagerDuty", deps),
	}, nil
}

// Close releases nothing.
func (s *Sink) Close() error { return nil }

// Send triggers or resolves the finding's incident.
func (s *Sink) Send(ctx context.Context, f *event.Finding) error {
	if f == nil {
		return errors.New("pagerduty sink: nil finding")
	}
	return incident.PostJSON(ctx, s.poster, s.endpoint, nil, f, s.Event(f))
}

// maxDetailValue bounds each label and annotation value in custom_details,
// in runes: the evidence is in the finding's text, and an alert whose
// description runs to hundreds of KB would otherwise push the event past the
// 512 KB PagerDuty accepts, refused on every try.
const maxDetailValue = 4 << 10

func capValues(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = incident.Truncate(v, maxDetailValue)
	}
	return out
}

// Event builds the Events API body for f.
func (s *Sink) Event(f *event.Finding) Event {
	e := Event{RoutingKey: s.key, DedupKey: incident.LifetimeKey(s.name, f), Client: "medic"}
	if chatfmt.Resolved(f) {
		// PagerDuty ignores a resolve's payload; the dedup key is enough.
		e.EventAction = "resolve"
		return e
	}
	e.EventAction = "trigger"
	ev := &f.Event
	details := map[string]any{"finding_id": f.ID}
	for _, fact := range chatfmt.Subject(f, s.cluster) {
		details[strings.ToLower(fact.Name)] = fact.Value
	}
	if len(ev.Labels) > 0 {
		details["labels"] = capValues(ev.Labels)
	}
	if len(ev.Annotations) > 0 {
		details["annotations"] = capValues(ev.Annotations)
	}
	if len(f.Playbooks) > 0 {
		details["playbooks"] = f.Playbooks
	}
	details["finding"] = incident.Text(f, maxDetailsText)
	src := ev.Subject.String()
	if src == "" {
		src = cmp.Or(s.cluster, ev.Source, "medic")
	} else if c := cmp.Or(ev.Labels["cluster"], s.cluster); c != "" {
		src = c + "/" + src
	}
	e.Payload = &Payload{
		Summary:       incident.Title(f, maxSummary),
		Source:        src,
		Severity:      Severity(f.Severity),
		Component:     ev.Subject.Name,
		Group:         ev.Subject.Namespace,
		Class:         ev.Labels["alertname"],
		CustomDetails: details,
	}
	if !ev.StartsAt.IsZero() {
		e.Payload.Timestamp = ev.StartsAt.UTC().Format(time.RFC3339)
	}
	page := ""
	if s.pageURL != nil {
		page = s.pageURL(f.ID)
	}
	if page != "" {
		e.ClientURL = page
		e.Links = append(e.Links, Link{Href: page, Text: "medic finding"})
	}
	for _, l := range chatfmt.AlertLinks(ev) {
		e.Links = append(e.Links, Link{Href: l.URL, Text: l.Label})
	}
	return e
}
