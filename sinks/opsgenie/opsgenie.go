// Package opsgenie is the `opsgenie` sink: each firing finding creates an
// alert through Opsgenie's Alert API v2 (POST /v2/alerts), and its resolved
// finding closes it (POST /v2/alerts/{alias}/close?identifierType=alias).
// The alias, derived from the alert's fingerprint and start, is Opsgenie's
// deduplication key: a redelivered create for an alert still open only
// raises its count, it does not page again.
package opsgenie

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/sinks"
	"github.com/medichq/medic/sinks/chatfmt"
	"github.com/medichq/medic/sinks/internal/httpdeliver"
	"github.com/medichq/medic/sinks/internal/incident"
	"github.com/medichq/medic/sinks/internal/secretparam"
)

// Type is the sink type name used in configuration.
const Type = "opsgenie"

// DefaultAPIURL is Opsgenie's API; the EU instance is https://api.eu.opsgenie.com.
const DefaultAPIURL = "https://api.opsgenie.com"

// Limits of the Alert API, as Opsgenie documents them.
const (
	maxMessage     = 130
	maxDescription = 15000
	maxTags        = 20
	maxTagLen      = 50
	maxDetails     = 8000 // characters of all keys and values together
	maxEntity      = 512
	maxSource      = 100
)

// Params are the parameters of the opsgenie sink.
type Params struct {
	// APIKey is the key of an Opsgenie API integration. A secret: prefer
	// api_key_file or api_key_env.
	APIKey     string `yaml:"api_key"`
	APIKeyFile string `yaml:"api_key_file"`
	APIKeyEnv  string `yaml:"api_key_env"`
	// APIURL is the API base URL (the EU instance; tests).
	APIURL string `yaml:"api_url"`
	// Teams are the alert's responders, by team name.
	Teams []string `yaml:"teams"`
	// Tags are added to every alert, before medic's own (severity,
	// alertname, namespace).
	Tags []string `yaml:"tags"`
	// HTTPParams: timeout, max_retry_after.
	incident.HTTPParams `yaml:",inline"`
}

func (p *Params) apiKey() secretparam.Param {
	return secretparam.Param{Key: "api_key", Inline: p.APIKey, File: p.APIKeyFile, Env: p.APIKeyEnv}
}

// Defaults returns the parameters used for keys the configuration leaves out.
func Defaults() *Params {
	return &Params{APIURL: DefaultAPIURL, HTTPParams: incident.DefaultHTTP()}
}

// Validate checks the parameters after decoding.
func (p *Params) Validate() error {
	if err := p.apiKey().Validate(true); err != nil {
		return err
	}
	for i, team := range p.Teams {
		if strings.TrimSpace(team) == "" {
			return fmt.Errorf("teams[%d]: must not be empty", i)
		}
	}
	if len(p.Tags) > maxTags {
		return fmt.Errorf("tags: at most %d (Opsgenie's limit)", maxTags)
	}
	for i, tag := range p.Tags {
		if tag == "" || len(tag) > maxTagLen {
			return fmt.Errorf("tags[%d]: must be 1-%d characters", i, maxTagLen)
		}
	}
	return incident.CheckHTTP("api_url", p.APIURL, p.HTTPParams)
}

// Register adds the opsgenie sink type to r.
func Register(r *sinks.Registry) {
	sinks.Add(r, Type,
		"Creates an Opsgenie alert (Alert API v2) for each firing finding, with priority from severity and teams as responders, and closes it when the alert resolves; the alias absorbs redeliveries.",
		Defaults, New)
}

// Alert is the create-alert body.
type Alert struct {
	Message     string            `json:"message"`
	Alias       string            `json:"alias"`
	Description string            `json:"description,omitempty"`
	Responders  []Responder       `json:"responders,omitempty"`
	Tags        []string          `json:"tags,omitempty"`
	Details     map[string]string `json:"details,omitempty"`
	Entity      string            `json:"entity,omitempty"`
	Source      string            `json:"source,omitempty"`
	Priority    string            `json:"priority"`
	User        string            `json:"user,omitempty"`
	Note        string            `json:"note,omitempty"`
}

// Responder is a team, user, escalation or schedule; medic names teams.
type Responder struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

// Close is the close-alert body.
type Close struct {
	User   string `json:"user,omitempty"`
	Source string `json:"source,omitempty"`
	Note   string `json:"note,omitempty"`
}

// Priority maps medic's severity onto Opsgenie's P1 (highest) to P5.
func Priority(s event.Severity) string {
	switch s {
	case event.SeverityCritical:
		return "P1"
	case event.SeverityHigh:
		return "P2"
	case event.SeverityWarning:
		return "P3"
	case event.SeverityNone:
		return "P5"
	default:
		return "P4"
	}
}

// Sink creates and closes alerts. It is safe for concurrent use.
type Sink struct {
	name    string
	p       Params
	auth    string
	base    string
	cluster string
	pageURL func(string) string
	poster  *httpdeliver.Poster
}

// Deps is what a opsgenie sink uses of sinks.Deps: the incident sinks' set.
type Deps = incident.Deps

// New starts an Opsgenie sink, reading the API key now.
func New(ctx context.Context, name string, p Params, deps Deps) (*Sink, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	key, err := p.apiKey().Read()
	if err != nil {
		return nil, err
	}
	return &Sink{
		name: name, p: p, auth: "GenieKey " + key, base: strings.TrimRight(p.APIURL, "/") + "/v2/alerts",
		cluster: deps.ClusterName(), pageURL: deps.FindingURL,
		poster: p.Poster(name, "Opsgenie", deps),
	}, nil
}

// Close releases nothing.
func (s *Sink) Close() error { return nil }

// Send creates the finding's alert, or closes it when the finding reports
// the alert resolved. Opsgenie answers 202 and processes the request
// asynchronously; a close for an alias it does not know does nothing.
func (s *Sink) Send(ctx context.Context, f *event.Finding) error {
	if f == nil {
		return errors.New("opsgenie sink: nil finding")
	}
	target, v := s.Request(f)
	return incident.PostJSON(ctx, s.poster, target, http.Header{"Authorization": {s.auth}}, f, v)
}

// Request returns the URL and body that deliver f: a create, or a close by
// alias for a resolved finding.
func (s *Sink) Request(f *event.Finding) (string, any) {
	alias := incident.LifetimeKey(s.name, f)
	if chatfmt.Resolved(f) {
		note := "Resolved"
		if d, ok := chatfmt.ResolvedAfter(f); ok {
			note = "Resolved after " + chatfmt.Duration(d)
		}
		return s.base + "/" + url.PathEscape(alias) + "/close?identifierType=alias", Close{User: "medic", Source: "medic", Note: note}
	}
	return s.base, s.alert(f, alias)
}

func (s *Sink) alert(f *event.Finding, alias string) Alert {
	ev := &f.Event
	a := Alert{
		Message:     incident.Title(f, maxMessage),
		Alias:       alias,
		Description: incident.Text(f, maxDescription),
		Priority:    Priority(f.Severity),
		Entity:      incident.Truncate(ev.Subject.String(), maxEntity),
		Source:      incident.Truncate(cmp.Or(s.cluster, "medic"), maxSource),
		User:        "medic",
	}
	for _, team := range s.p.Teams {
		a.Responders = append(a.Responders, Responder{Name: team, Type: "team"})
	}
	a.Tags = slices.Clone(s.p.Tags)
	for _, t := range []string{"medic", "severity:" + chatfmt.Severity(f), ev.Labels["alertname"], ev.Subject.Namespace} {
		t = incident.Truncate(t, maxTagLen)
		if t != "" && len(a.Tags) < maxTags && !slices.Contains(a.Tags, t) {
			a.Tags = append(a.Tags, t)
		}
	}
	a.Details = s.details(f)
	return a
}

// details are the alert's key-value pairs: medic's own first, then the
// labels, within Opsgenie's 8000 characters.
func (s *Sink) details(f *event.Finding) map[string]string {
	d := map[string]string{}
	size := 0
	add := func(k, v string) {
		if v == "" || size+len(k)+len(v) > maxDetails {
			return
		}
		if _, dup := d[k]; dup {
			return
		}
		d[k] = v
		size += len(k) + len(v)
	}
	add("finding_id", f.ID)
	if s.pageURL != nil {
		add("finding_page", s.pageURL(f.ID))
	}
	for _, fact := range chatfmt.Subject(f, s.cluster) {
		add(strings.ToLower(fact.Name), fact.Value)
	}
	for _, l := range chatfmt.AlertLinks(&f.Event) {
		add(strings.ToLower(l.Label), l.URL)
	}
	keys := make([]string, 0, len(f.Event.Labels))
	for k := range f.Event.Labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		add(k, f.Event.Labels[k])
	}
	return d
}
