// Package jira is the `jira` sink: a firing finding opens a Jira issue
// through the REST API v2 (POST /rest/api/2/issue), with the finding as its
// description, a priority from the severity and a label that names the
// alert. Before creating, the sink searches for that label (JQL), so a
// redelivery, or the alert firing again, adds a comment to the existing
// issue instead of opening a second one; a resolved finding comments and,
// with resolve_transition, moves the issue (to Done); with
// reopen_transition, an alert firing again reopens it.
//
// Every issue and comment carries a marker with medic's idempotency key for
// the finding, so a finding redelivered after a crash, which finds its own
// marker, adds nothing.
//
// Authentication is basic (username and API token: Jira Cloud) or a
// bearer personal access token (Jira Data Center).
package jira

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/sinks"
	"github.com/medichq/medic/sinks/chatfmt"
	"github.com/medichq/medic/sinks/internal/httpdeliver"
	"github.com/medichq/medic/sinks/internal/incident"
	"github.com/medichq/medic/sinks/internal/secretparam"
)

// Type is the sink type name used in configuration.
const Type = "jira"

const (
	maxSummary = 255
	// maxDescription keeps an issue far below Jira's 32767 characters.
	maxDescription = 30000
	// The search endpoints: Jira Cloud's, and Data Center's (removed from
	// Cloud).
	searchCloud      = "/rest/api/2/search/jql"
	searchDataCenter = "/rest/api/2/search"
	// labelPrefix starts the label naming an alert.
	labelPrefix = "medic-"
	// markerPrefix starts the line that names the finding an issue or a
	// comment was made for.
	markerPrefix = "medic-finding-key: "
)

// Params are the parameters of the jira sink.
type Params struct {
	// URL is the Jira base URL (https://example.atlassian.net).
	URL string `yaml:"url"`
	// Username and APIKey are basic authentication (Jira Cloud: the
	// account's e-mail and an API token). APIKey is a secret.
	Username   string `yaml:"username"`
	APIKey     string `yaml:"api_key"`
	APIKeyFile string `yaml:"api_key_file"`
	APIKeyEnv  string `yaml:"api_key_env"`
	// Token is a personal access token sent as a bearer token (Jira Data
	// Center), instead of username and api_key. A secret.
	Token     string `yaml:"token"`
	TokenFile string `yaml:"token_file"`
	TokenEnv  string `yaml:"token_env"`
	// ProjectKey is the project issues are created in ("OPS"); or
	// ProjectName, its name (Robusta's project_name), which the sink looks
	// up once.
	ProjectKey  string `yaml:"project_key"`
	ProjectName string `yaml:"project_name"`
	// Assignee is who new issues are assigned to: an account ID on Jira
	// Cloud, a user name on Data Center (by search_api).
	Assignee string `yaml:"assignee"`
	// IssueType is the issue type's name.
	IssueType string `yaml:"issue_type"`
	// Labels are added to every issue, besides medic's own.
	Labels []string `yaml:"labels"`
	// Priorities maps medic's severities (critical, high, warning, info,
	// none) to Jira priority names; a severity left out (or mapped to "")
	// sets no priority, for projects whose screen has none.
	Priorities map[string]string `yaml:"priorities"`
	// ResolveTransition is the workflow transition made when the alert
	// resolves, by its name or the name of the status it leads to
	// ("Done", Robusta's doneStatus); empty: the issue only gets a comment.
	ResolveTransition string `yaml:"resolve_transition"`
	// ReopenTransition is the transition made when the alert fires again
	// (by name or target status: "To Do", Robusta's reopenStatus); it is
	// made only where the workflow offers it, that is on a resolved issue.
	ReopenTransition string `yaml:"reopen_transition"`
	// SearchAPI is "jql" (GET /rest/api/2/search/jql, Jira Cloud) or
	// "search" (GET /rest/api/2/search, Jira Data Center); empty: "jql"
	// for *.atlassian.net, "search" otherwise.
	SearchAPI string `yaml:"search_api"`
	// HTTPParams: timeout, max_retry_after.
	incident.HTTPParams `yaml:",inline"`
}

func (p *Params) apiKey() secretparam.Param {
	return secretparam.Param{Key: "api_key", Inline: p.APIKey, File: p.APIKeyFile, Env: p.APIKeyEnv}
}

func (p *Params) token() secretparam.Param {
	return secretparam.Param{Key: "token", Inline: p.Token, File: p.TokenFile, Env: p.TokenEnv}
}

// Defaults returns the parameters used for keys the configuration leaves out.
func Defaults() *Params {
	return &Params{
		IssueType:  "Task",
		Priorities: map[string]string{"critical": "Highest", "high": "High", "warning": "Medium", "info": "Low", "none": "Lowest"},
		HTTPParams: incident.DefaultHTTP(),
	}
}

// Validate checks the parameters after decoding.
func (p *Params) Validate() error {
	if err := incident.CheckHTTP("url", p.URL, p.HTTPParams); err != nil {
		return err
	}
	if err := p.apiKey().Validate(false); err != nil {
		return err
	}
	if err := p.token().Validate(false); err != nil {
		return err
	}
	switch basic, bearer := p.apiKey().Set(), p.token().Set(); {
	case basic == bearer:
		return errors.New("api_key (with username) or token: set one")
	case basic && p.Username == "":
		return errors.New("username: required with api_key")
	case bearer && p.Username != "":
		return errors.New("username: not used with token (a bearer token names its user)")
	}
	switch {
	case (p.ProjectKey == "") == (p.ProjectName == ""):
		return errors.New("project_key or project_name: set one (the project's key, OPS, or its name)")
	case strings.ContainsAny(p.ProjectKey, " \"'\\"):
		return errors.New("project_key: the project's key (OPS), without spaces or quotes")
	case p.IssueType == "":
		return errors.New("issue_type: required")
	case p.SearchAPI != "" && p.SearchAPI != "jql" && p.SearchAPI != "search":
		return errors.New(`search_api: "jql", "search" or empty`)
	}
	for i, l := range p.Labels {
		if l == "" || strings.ContainsAny(l, " \t\r\n") {
			return fmt.Errorf("labels[%d]: a Jira label has no spaces", i)
		}
	}
	for sev := range p.Priorities {
		switch event.Severity(sev) {
		case event.SeverityCritical, event.SeverityHigh, event.SeverityWarning, event.SeverityInfo, event.SeverityNone:
		default:
			return fmt.Errorf("priorities: %q is not a severity (critical, high, warning, info, none)", sev)
		}
	}
	return nil
}

// Register adds the jira sink type to r.
func Register(r *sinks.Registry) {
	sinks.Add(r, Type,
		"Opens a Jira issue (REST API v2) per alert, found again by a label so redeliveries and re-fires comment instead of duplicating; comments and optionally transitions it on resolve.",
		Defaults, New)
}

// Sink opens and updates issues. It is safe for concurrent use.
type Sink struct {
	name    string
	p       Params
	base    string
	auth    string
	search  string
	cluster string
	pageURL func(string) string
	poster  *httpdeliver.Poster
	logger  *slog.Logger

	mu      sync.Mutex
	project string // the key; looked up from project_name on first use
}

// Deps is what a jira sink uses of sinks.Deps: the incident sinks' set.
type Deps = incident.Deps

// New starts a Jira sink, reading its secret now.
func New(ctx context.Context, name string, p Params, deps Deps) (*Sink, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	var auth string
	if p.token().Set() {
		tok, err := p.token().Read()
		if err != nil {
			return nil, err
		}
		auth = "Bearer " + tok
	} else {
		key, err := p.apiKey().Read()
		if err != nil {
			return nil, err
		}
		req, _ := http.NewRequest(http.MethodGet, "/", nil)
		req.SetBasicAuth(p.Username, key)
		auth = req.Header.Get("Authorization")
	}
	base := strings.TrimRight(p.URL, "/")
	search := p.SearchAPI
	if search == "" {
		search = "search"
		if u, _ := url.Parse(base); strings.HasSuffix(u.Hostname(), ".atlassian.net") {
			search = "jql"
		}
	}
	search = map[string]string{"jql": searchCloud, "search": searchDataCenter}[search]
	return &Sink{
		name: name, p: p, base: base, auth: auth, search: search, cluster: deps.ClusterName(), project: p.ProjectKey,
		pageURL: deps.FindingURL, logger: incident.Logger(name, deps),
		poster: p.Poster(name, "Jira", deps),
	}, nil
}

// Close releases nothing.
func (s *Sink) Close() error { return nil }

// Issue is the create-issue body.
type Issue struct {
	Fields IssueFields `json:"fields"`
}

// IssueFields are the fields medic sets.
type IssueFields struct {
	Project     Ref      `json:"project"`
	Summary     string   `json:"summary"`
	Description string   `json:"description"`
	IssueType   Ref      `json:"issuetype"`
	Labels      []string `json:"labels"`
	Priority    *Ref     `json:"priority,omitempty"`
	Assignee    *User    `json:"assignee,omitempty"`
}

// User names a user: by account ID on Jira Cloud, by name on Data Center.
type User struct {
	AccountID string `json:"accountId,omitempty"`
	Name      string `json:"name,omitempty"`
}

// Ref names a project (by key), an issue type or priority (by name), or a
// transition (by ID).
type Ref struct {
	Key  string `json:"key,omitempty"`
	Name string `json:"name,omitempty"`
	ID   string `json:"id,omitempty"`
}

// Label is the label naming f's alert in this sink's issues.
func (s *Sink) Label(f *event.Finding) string { return labelPrefix + incident.AlertKey(s.name, f) }

func (s *Sink) marker(f *event.Finding) string {
	return markerPrefix + sinks.IdempotencyKey(s.name, f.ID)
}

// Send opens the finding's issue, or comments on (and on resolve
// transitions) the issue its alert already has.
func (s *Sink) Send(ctx context.Context, f *event.Finding) error {
	if f == nil {
		return errors.New("jira sink: nil finding")
	}
	if err := s.send(ctx, f); err != nil {
		return fmt.Errorf("finding %s: %w", f.ID, err)
	}
	return nil
}

func (s *Sink) send(ctx context.Context, f *event.Finding) error {
	project, err := s.projectKey(ctx)
	if err != nil {
		return err
	}
	key, desc, err := s.find(ctx, project, s.Label(f))
	if err != nil {
		return err
	}
	if key == "" {
		if chatfmt.Resolved(f) {
			// Nothing was opened for this alert (it fired before the sink
			// existed, or was routed elsewhere): nothing to resolve.
			s.logger.Debug("resolved alert without an issue", "finding", f.ID)
			return nil
		}
		var created struct {
			Key string `json:"key"`
		}
		if err := s.call(ctx, http.MethodPost, "/rest/api/2/issue", s.Issue(f), &created); err != nil {
			return fmt.Errorf("create issue in %s: %w", project, err)
		}
		s.logger.Info("opened Jira issue", "issue", created.Key, "finding", f.ID)
		return nil
	}
	mark := s.marker(f)
	if strings.Contains(desc, mark) {
		return nil // the issue was opened for this very finding
	}
	var comments struct {
		Comments []struct {
			Body string `json:"body"`
		} `json:"comments"`
	}
	if err := s.call(ctx, http.MethodGet, "/rest/api/2/issue/"+url.PathEscape(key)+"/comment?maxResults=1000", nil, &comments); err != nil {
		return fmt.Errorf("read comments of %s: %w", key, err)
	}
	done := false
	for _, c := range comments.Comments {
		done = done || strings.Contains(c.Body, mark)
	}
	if !done {
		if err := s.call(ctx, http.MethodPost, "/rest/api/2/issue/"+url.PathEscape(key)+"/comment", map[string]string{"body": s.Comment(f)}, nil); err != nil {
			return fmt.Errorf("comment on %s: %w", key, err)
		}
	}
	switch {
	case chatfmt.Resolved(f) && s.p.ResolveTransition != "":
		return s.transition(ctx, key, s.p.ResolveTransition)
	case !chatfmt.Resolved(f) && s.p.ReopenTransition != "":
		return s.transition(ctx, key, s.p.ReopenTransition)
	}
	return nil
}

// find returns the newest issue carrying label, "" when none.
func (s *Sink) find(ctx context.Context, project, label string) (key, description string, err error) {
	q := url.Values{
		"jql":        {fmt.Sprintf("project = %q AND labels = %q ORDER BY created DESC", project, label)},
		"fields":     {"description"},
		"maxResults": {"1"},
	}
	var res struct {
		Issues []struct {
			Key    string `json:"key"`
			Fields struct {
				Description string `json:"description"`
			} `json:"fields"`
		} `json:"issues"`
	}
	if err := s.call(ctx, http.MethodGet, s.search+"?"+q.Encode(), nil, &res); err != nil {
		return "", "", fmt.Errorf("search for the alert's issue: %w", err)
	}
	if len(res.Issues) == 0 {
		return "", "", nil
	}
	return res.Issues[0].Key, res.Issues[0].Fields.Description, nil
}

// transition makes the resolve transition, when the issue's workflow
// offers it now (an issue already closed by a person does not).
func (s *Sink) transition(ctx context.Context, key, name string) error {
	path := "/rest/api/2/issue/" + url.PathEscape(key) + "/transitions"
	var res struct {
		Transitions []struct {
			ID   string `json:"id"`
			Name string `json:"name"`
			To   struct {
				Name string `json:"name"`
			} `json:"to"`
		} `json:"transitions"`
	}
	if err := s.call(ctx, http.MethodGet, path, nil, &res); err != nil {
		return fmt.Errorf("list transitions of %s: %w", key, err)
	}
	for _, t := range res.Transitions {
		if strings.EqualFold(t.Name, name) || strings.EqualFold(t.To.Name, name) {
			if err := s.call(ctx, http.MethodPost, path, map[string]Ref{"transition": {ID: t.ID}}, nil); err != nil {
				return fmt.Errorf("transition %s to %q: %w", key, t.Name, err)
			}
			return nil
		}
	}
	// An issue a person already moved (closed by hand, reopened) is left
	// as it is.
	s.logger.Info("the transition is not available for the issue now", "issue", key, "transition", name)
	return nil
}

// Issue is the create-issue body for f.
func (s *Sink) Issue(f *event.Finding) Issue {
	labels := append([]string{"medic", s.Label(f)}, s.p.Labels...)
	fields := IssueFields{
		Project:     Ref{Key: s.currentProject()},
		Summary:     incident.Title(f, maxSummary),
		Description: s.text(f),
		IssueType:   Ref{Name: s.p.IssueType},
		Labels:      labels,
	}
	if name := s.p.Priorities[chatfmt.Severity(f)]; name != "" {
		fields.Priority = &Ref{Name: name}
	}
	if s.p.Assignee != "" {
		if s.search == searchCloud {
			fields.Assignee = &User{AccountID: s.p.Assignee}
		} else {
			fields.Assignee = &User{Name: s.p.Assignee}
		}
	}
	return Issue{Fields: fields}
}

func (s *Sink) currentProject() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.project
}

// projectKey returns the project's key, looking project_name up the first
// time (and again after a failed look-up).
func (s *Sink) projectKey(ctx context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.project != "" {
		return s.project, nil
	}
	type project struct{ Key, Name string }
	var projects []project
	if s.search == searchCloud {
		// Cloud pages projects; the query narrows them to the name.
		var page struct{ Values []project }
		q := url.Values{"query": {s.p.ProjectName}, "maxResults": {"50"}}
		if err := s.call(ctx, http.MethodGet, "/rest/api/2/project/search?"+q.Encode(), nil, &page); err != nil {
			return "", fmt.Errorf("look up project %q: %w", s.p.ProjectName, err)
		}
		projects = page.Values
	} else if err := s.call(ctx, http.MethodGet, "/rest/api/2/project", nil, &projects); err != nil {
		return "", fmt.Errorf("look up project %q: %w", s.p.ProjectName, err)
	}
	for _, p := range projects {
		if strings.EqualFold(p.Name, s.p.ProjectName) && p.Key != "" {
			s.project = p.Key
			return p.Key, nil
		}
	}
	return "", fmt.Errorf("project_name: no project named %q is visible to this user (%d others are)", s.p.ProjectName, len(projects))
}

// Comment is the comment for a finding of an alert that has an issue.
func (s *Sink) Comment(f *event.Finding) string {
	head := "The alert fired again."
	if chatfmt.Resolved(f) {
		head = "The alert resolved."
		if d, ok := chatfmt.ResolvedAfter(f); ok {
			head = "The alert resolved after " + chatfmt.Duration(d) + "."
		}
	}
	return head + "\n\n" + s.text(f)
}

// text is the finding in Jira wiki markup: medic's plain rendering in a
// {noformat} block (nothing in it is interpreted), the links, the marker.
func (s *Sink) text(f *event.Finding) string {
	var b strings.Builder
	body := strings.ReplaceAll(incident.Text(f, maxDescription), "{noformat}", "{ noformat}")
	b.WriteString("{noformat}\n" + body + "\n{noformat}\n")
	var links []event.Link
	if s.pageURL != nil {
		if u := s.pageURL(f.ID); u != "" {
			links = append(links, event.Link{Label: "Finding page", URL: u})
		}
	}
	for _, l := range append(links, chatfmt.AlertLinks(&f.Event)...) {
		fmt.Fprintf(&b, "* [%s|%s]\n", l.Label, strings.ReplaceAll(l.URL, "|", "%7C"))
	}
	if c := cmp.Or(f.Event.Labels["cluster"], s.cluster); c != "" {
		fmt.Fprintf(&b, "\nCluster: %s\n", c)
	}
	b.WriteString("\n" + s.marker(f) + "\n")
	return b.String()
}

// call sends one request and decodes a 2xx answer into out (when not nil),
// under httpdeliver's rules: 429 waited out within bounds, other failures
// returned for the consumer to retry, never the URL or the credentials in
// an error.
func (s *Sink) call(ctx context.Context, method, path string, in, out any) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
	}
	h := http.Header{"Authorization": {s.auth}, "Accept": {"application/json"}, "User-Agent": {"medic"}}
	_, answer, err := s.poster.Do(ctx, method, s.base+path, body, h)
	if err != nil {
		return err
	}
	if out != nil && len(bytes.TrimSpace(answer)) > 0 {
		if err := json.Unmarshal(answer, out); err != nil {
			return fmt.Errorf("decode Jira's answer: %w", err)
		}
	}
	return nil
}
