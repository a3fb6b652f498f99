// Package victorops is the `victorops` sink: each finding becomes an alert
// of Splunk On-Call (formerly VictorOps) through its REST endpoint
// integration (POST …/integrations/generic/20131114/alert/<api_key>/<routing_key>).
// A firing finding is a CRITICAL, WARNING or INFO message by its severity;
// its resolved finding is a RECOVERY message. Both carry the same entity_id,
// derived from the alert's fingerprint and start, which is how Splunk
// On-Call ties the messages of one incident together: the RECOVERY resolves
// the incident the CRITICAL opened, and a redelivered CRITICAL (after a
// crash, before medic recorded the delivery) joins the open incident
// instead of paging twice.
package victorops

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"strings"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/sinks"
	"github.com/medichq/medic/sinks/chatfmt"
	"github.com/medichq/medic/sinks/internal/httpdeliver"
	"github.com/medichq/medic/sinks/internal/incident"
	"github.com/medichq/medic/sinks/internal/secretparam"
)

// Type is the sink type name used in configuration.
const Type = "victorops"

// Limits of a REST endpoint message.
const (
	// MaxStateMessage is Splunk On-Call's limit on state_message, in
	// characters (its incident fields glossary; Alertmanager's notifier
	// cuts at the same length).
	MaxStateMessage = 20480
	// maxDisplayName is medic's cut of entity_display_name, the incident's
	// title: the whole finding is in state_message and on its page.
	maxDisplayName = 512
)

// Message types of the REST endpoint.
const (
	Critical = "CRITICAL" // opens (or joins) an incident and pages
	Warning  = "WARNING"  // shown on the timeline; pages only where a rule says so
	Info     = "INFO"     // shown on the timeline
	Recovery = "RECOVERY" // resolves the incident of the same entity_id
)

// Params are the parameters of the victorops sink.
type Params struct {
	// WebhookURL is the REST endpoint integration's URL with the routing
	// key in place of its $routing_key:
	// https://alert.victorops.com/integrations/generic/20131114/alert/<api_key>/<routing_key>.
	// The API key in it is the credential (a secret: prefer
	// webhook_url_file or webhook_url_env); the routing key picks the team.
	WebhookURL     string `yaml:"webhook_url"`
	WebhookURLFile string `yaml:"webhook_url_file"`
	WebhookURLEnv  string `yaml:"webhook_url_env"`
	// MonitoringTool is the alert's monitoring_tool, which Splunk On-Call
	// shows as its source and its Rules Engine can match.
	MonitoringTool string `yaml:"monitoring_tool"`
	// AlwaysCritical sends every firing finding as CRITICAL, so every one
	// pages, as Robusta's victorops_sink did. By default a warning is
	// WARNING and info INFO, which Splunk On-Call keeps on the timeline
	// without opening an incident.
	AlwaysCritical bool `yaml:"always_critical"`
	// HTTPParams: timeout, max_retry_after.
	incident.HTTPParams `yaml:",inline"`
}

func (p *Params) webhook() secretparam.Param {
	return secretparam.Param{Key: "webhook_url", Inline: p.WebhookURL, File: p.WebhookURLFile, Env: p.WebhookURLEnv}
}

// Defaults returns the parameters used for keys the configuration leaves out.
func Defaults() *Params {
	return &Params{MonitoringTool: "medic", HTTPParams: incident.DefaultHTTP()}
}

// Validate checks the parameters after decoding. A URL from a file or the
// environment is checked when the sink starts and reads it.
func (p *Params) Validate() error {
	if err := p.webhook().Validate(true); err != nil {
		return err
	}
	if p.WebhookURL != "" {
		if err := CheckURL(strings.TrimSpace(p.WebhookURL)); err != nil {
			return err
		}
	}
	if strings.TrimSpace(p.MonitoringTool) == "" {
		return errors.New("monitoring_tool: must not be empty")
	}
	return p.HTTPParams.Validate()
}

// CheckURL checks that u is a REST endpoint URL ending in
// /alert/<api_key>/<routing_key>. Its errors never show the URL: the API
// key is in it.
func CheckURL(u string) error {
	parsed, err := url.Parse(u)
	if err != nil || (parsed.Scheme != "https" && parsed.Scheme != "http") || parsed.Host == "" {
		return errors.New("webhook_url: not an http(s) URL")
	}
	segs := strings.Split(strings.Trim(parsed.Path, "/"), "/")
	n := len(segs)
	switch {
	case n < 3 || segs[n-3] != "alert" || segs[n-2] == "" || segs[n-1] == "":
		return errors.New("webhook_url: not a REST endpoint URL (…/integrations/generic/20131114/alert/<api_key>/<routing_key>)")
	case strings.Contains(segs[n-1], "$routing_key") || strings.Contains(segs[n-1], "%24routing_key"):
		return errors.New("webhook_url: ends in $routing_key; put a routing key in its place")
	}
	return nil
}

// Register adds the victorops sink type to r.
func Register(r *sinks.Registry) {
	sinks.Add(r, Type,
		"Sends each finding to Splunk On-Call (VictorOps) through its REST endpoint: CRITICAL/WARNING/INFO by severity, RECOVERY when the alert resolves, one entity_id per alert lifetime.",
		Defaults, New)
}

// Alert is one REST endpoint message: its documented fields and the custom
// fields, which Splunk On-Call shows on the alert and its Rules Engine can
// match. A custom field named vo_annotate.u.<title> is a link on the
// incident.
type Alert struct {
	MessageType       string
	EntityID          string
	EntityDisplayName string
	StateMessage      string
	// StateStartTime is when the state began, in Unix seconds (0: now).
	StateStartTime int64
	MonitoringTool string
	Fields         map[string]string
}

// MarshalJSON writes the message as the REST endpoint takes it: one flat
// object, custom fields beside the documented ones (which win a clash).
func (a Alert) MarshalJSON() ([]byte, error) {
	m := make(map[string]any, len(a.Fields)+6)
	for k, v := range a.Fields {
		m[k] = v
	}
	m["message_type"] = a.MessageType
	m["entity_id"] = a.EntityID
	m["monitoring_tool"] = a.MonitoringTool
	if a.EntityDisplayName != "" {
		m["entity_display_name"] = a.EntityDisplayName
	}
	if a.StateMessage != "" {
		m["state_message"] = a.StateMessage
	}
	if a.StateStartTime > 0 {
		m["state_start_time"] = a.StateStartTime
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // state_message is text, not HTML
	if err := enc.Encode(m); err != nil {
		return nil, err
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
}

// MessageType maps a finding onto the REST endpoint's message types.
func MessageType(f *event.Finding, alwaysCritical bool) string {
	if chatfmt.Resolved(f) {
		return Recovery
	}
	if alwaysCritical {
		return Critical
	}
	switch f.Severity {
	case event.SeverityCritical, event.SeverityHigh:
		return Critical
	case event.SeverityWarning:
		return Warning
	default:
		return Info
	}
}

// Sink sends alerts. It is safe for concurrent use.
type Sink struct {
	name           string
	endpoint       string // holds the API key: never logged
	tool           string
	alwaysCritical bool
	cluster        string
	pageURL        func(string) string
	poster         *httpdeliver.Poster
}

// Deps is what a victorops sink uses of sinks.Deps: the incident sinks' set.
type Deps = incident.Deps

// New starts a Splunk On-Call sink, reading the REST endpoint URL now.
func New(ctx context.Context, name string, p Params, deps Deps) (*Sink, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	endpoint, err := p.webhook().Read()
	if err != nil {
		return nil, err
	}
	if err := CheckURL(endpoint); err != nil {
		return nil, err
	}
	return &Sink{
		name: name, endpoint: endpoint, tool: strings.TrimSpace(p.MonitoringTool), alwaysCritical: p.AlwaysCritical,
		cluster: deps.ClusterName(), pageURL: deps.FindingURL,
		poster: p.Poster(name, "Splunk On-Call", deps),
	}, nil
}

// Close releases nothing.
func (s *Sink) Close() error { return nil }

// Send posts the finding's alert.
func (s *Sink) Send(ctx context.Context, f *event.Finding) error {
	if f == nil {
		return errors.New("victorops sink: nil finding")
	}
	return incident.PostJSON(ctx, s.poster, s.endpoint, nil, f, s.Alert(f))
}

// Alert builds the REST endpoint message for f.
func (s *Sink) Alert(f *event.Finding) Alert {
	ev := &f.Event
	a := Alert{
		MessageType:       MessageType(f, s.alwaysCritical),
		EntityID:          incident.LifetimeKey(s.name, f),
		EntityDisplayName: incident.Title(f, maxDisplayName),
		StateMessage:      incident.Text(f, MaxStateMessage), // bytes ≥ characters
		MonitoringTool:    s.tool,
		Fields:            map[string]string{"finding_id": f.ID, "severity": string(f.Severity)},
	}
	start := ev.StartsAt
	if a.MessageType == Recovery && !ev.EndsAt.IsZero() {
		start = ev.EndsAt
	}
	if !start.IsZero() {
		a.StateStartTime = start.Unix()
	}
	for _, fact := range chatfmt.Subject(f, s.cluster) {
		a.Fields[strings.ToLower(fact.Name)] = fact.Value
	}
	// Labels as fields let the Rules Engine route by them (team=payments).
	for k, v := range ev.Labels {
		a.Fields["label."+k] = v
	}
	if len(f.Playbooks) > 0 {
		a.Fields["playbooks"] = strings.Join(f.Playbooks, ",")
	}
	if s.pageURL != nil {
		if page := s.pageURL(f.ID); page != "" {
			a.Fields["vo_annotate.u.medic finding"] = page
		}
	}
	for _, l := range chatfmt.AlertLinks(ev) {
		a.Fields["vo_annotate.u."+l.Label] = l.URL
	}
	return a
}
