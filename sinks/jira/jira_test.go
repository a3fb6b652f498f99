package jira

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/internal/testkit"
	"github.com/medichq/medic/sinks"
	"github.com/medichq/medic/sinks/internal/incident/incidenttest"
	"github.com/medichq/medic/sinks/jira/jiratest"
)

const apiKey = "ATATT3xFfGF0-jira-api-s3cret"

func fake(t *testing.T) *jiratest.Server {
	return jiratest.New(t, jiratest.Options{Username: "medic@example.com", APIKey: apiKey, Token: "pat-s3cret", Project: "OPS", ProjectName: "Operations"})
}

func newSink(t *testing.T, url string, log *incidenttest.Log, mut func(*Params)) *Sink {
	t.Helper()
	p := *Defaults()
	p.URL, p.Username, p.APIKey, p.ProjectKey = url, "medic@example.com", apiKey, "OPS"
	p.Labels = []string{"k8s"}
	p.ResolveTransition = "Done"
	p.ReopenTransition = "To Do" // a target status, as Robusta's reopenStatus names it
	if mut != nil {
		mut(&p)
	}
	deps := sinks.Deps{Cluster: "prod-eu", PageURL: incidenttest.PageURL}
	if log != nil {
		deps.Log = log.Logger()
	}
	s, err := New(t.Context(), "jira", p, deps)
	if err != nil {
		t.Fatal(err)
	}
	s.poster.Sleep = func(context.Context, time.Duration) error { return nil }
	return s
}

func TestPayloadGolden(t *testing.T) {
	t.Parallel()
	s := newSink(t, "https://example.atlassian.net", nil, nil)
	for name, v := range map[string]any{
		"issue_firing":     s.Issue(incidenttest.Alert(event.StatusFiring)),
		"issue_kube_event": s.Issue(incidenttest.KubeEvent()),
		"comment_resolved": map[string]string{"body": s.Comment(incidenttest.Alert(event.StatusResolved))},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			testkit.Golden(t, filepath.Join("testdata", name+".golden.json"), testkit.JSON(t, v))
		})
	}
}

// One issue per alert: the first firing finding opens it, its redelivery
// adds nothing, the resolve comments and moves it to Done (once, however
// often it is delivered), and the alert firing again comments on it and
// reopens it.
func TestOneIssuePerAlert(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, endpoint, assignee string
		lookups                  int
		mut                      func(*Params)
	}{
		{"basic auth, Data Center search, project key", "/rest/api/2/search", "", 0, nil},
		{"basic auth, Data Center, project name, assignee", "/rest/api/2/search", "oncall", 1, func(p *Params) {
			p.ProjectKey, p.ProjectName, p.Assignee = "", "operations", "oncall"
		}},
		{"bearer token, Cloud JQL search, project name, assignee", "/rest/api/2/search/jql", "5b10ac8d82e05b22cc7d4ef5", 1, func(p *Params) {
			p.Username, p.APIKey, p.Token, p.SearchAPI = "", "", "pat-s3cret", "jql"
			p.ProjectKey, p.ProjectName, p.Assignee = "", "Operations", "5b10ac8d82e05b22cc7d4ef5"
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			j := fake(t)
			s := newSink(t, j.URL, nil, tc.mut)
			again := incidenttest.Alert(event.StatusFiring)
			again.Event.ID, again.ID = "1111111111111111aaaaaaaaaaaaaaaa", "1111111111111111aaaaaaaaaaaaaaaa"
			again.Event.StartsAt = again.Event.StartsAt.Add(time.Hour)
			for i, f := range []*event.Finding{
				incidenttest.Alert(event.StatusFiring), incidenttest.Alert(event.StatusFiring),
				incidenttest.Alert(event.StatusResolved), incidenttest.Alert(event.StatusResolved),
				again, again,
			} {
				if err := s.Send(context.Background(), f); err != nil {
					t.Fatalf("send %d: %v", i, err)
				}
			}
			if inv := j.Invalid(); len(inv) > 0 {
				t.Fatalf("Jira refused requests: %v", inv)
			}
			is := j.Issues()
			if len(is) != 1 {
				t.Fatalf("%d issues, want 1: %+v", len(is), is)
			}
			got := is[0]
			if got.Status != "To Do" || got.Priority != "Highest" || len(got.Comments) != 2 ||
				!strings.HasPrefix(got.Comments[0], "The alert resolved after 14m.") || !strings.HasPrefix(got.Comments[1], "The alert fired again.") {
				t.Errorf("issue %s: status %s, priority %s, comments %q", got.Key, got.Status, got.Priority, got.Comments)
			}
			if j.Searches(tc.endpoint) != 6 || j.Lookups() != tc.lookups || got.Assignee != tc.assignee {
				t.Errorf("%d searches on %s (want 6), %d project look-ups (want %d), assignee %q (want %q)",
					j.Searches(tc.endpoint), tc.endpoint, j.Lookups(), tc.lookups, got.Assignee, tc.assignee)
			}
		})
	}
}

func TestFailuresAreRetriedWithoutShowingTheKey(t *testing.T) {
	t.Parallel()
	j := fake(t)
	log := &incidenttest.Log{}
	s := newSink(t, j.URL, log, nil)
	f := incidenttest.Alert(event.StatusFiring)
	j.Fail(http.StatusTooManyRequests, http.StatusBadGateway)
	err1 := s.Send(context.Background(), f)
	if err1 == nil || !strings.Contains(err1.Error(), "answered 502") {
		t.Fatalf("error %v, want the 502", err1)
	}
	if err := s.Send(context.Background(), f); err != nil {
		t.Fatalf("retry: %v", err)
	}
	if n := len(j.Issues()); n != 1 || j.Refused() != 2 {
		t.Fatalf("%d issues after %d refusals, want 1 after 2", n, j.Refused())
	}
	bad := newSink(t, j.URL, log, func(p *Params) { p.APIKey = "wrong-" + apiKey })
	err2 := bad.Send(context.Background(), f)
	if err2 == nil || !strings.Contains(err2.Error(), "401") {
		t.Errorf("wrong key: %v", err2)
	}
	badProject := newSink(t, j.URL, log, func(p *Params) { p.ProjectKey = "NOPE" })
	err3 := badProject.Send(context.Background(), f)
	if err3 == nil || !strings.Contains(err3.Error(), "does not exist") {
		t.Errorf("unknown project: %v", err3)
	}
	unknown := newSink(t, j.URL, log, func(p *Params) { p.ProjectKey, p.ProjectName = "", "Payments" })
	err4 := unknown.Send(context.Background(), f)
	if err4 == nil || !strings.Contains(err4.Error(), `no project named "Payments"`) {
		t.Errorf("unknown project name: %v", err4)
	}
	log.NoSecret(t, []error{err1, err2, err3, err4}, apiKey, "pat-s3cret")
}

func TestParams(t *testing.T) {
	t.Parallel()
	ok := func() *Params {
		p := Defaults()
		p.URL, p.Username, p.APIKey, p.ProjectKey = "https://example.atlassian.net", "me@example.com", "k", "OPS"
		return p
	}
	testkit.CheckParams(t, ok, (*Params).Validate, []testkit.ParamCase[Params]{
		{Name: "valid", Mut: func(*Params) {}},
		{Name: "no url", Mut: func(p *Params) { p.URL = "" }, Want: "url:"},
		{Name: "no credentials", Mut: func(p *Params) { p.APIKey = "" }, Want: "set one"},
		{Name: "both credentials", Mut: func(p *Params) { p.Token = "t" }, Want: "set one"},
		{Name: "key without user", Mut: func(p *Params) { p.Username = "" }, Want: "username"},
		{Name: "token with user", Mut: func(p *Params) { p.APIKey, p.Token = "", "t" }, Want: "username"},
		{Name: "no project", Mut: func(p *Params) { p.ProjectKey = "" }, Want: "project_key or project_name"},
		{Name: "key and name", Mut: func(p *Params) { p.ProjectName = "Operations" }, Want: "project_key or project_name"},
		{Name: "quoted project", Mut: func(p *Params) { p.ProjectKey = `OPS" OR x = "y` }, Want: "project_key"},
		{Name: "label with space", Mut: func(p *Params) { p.Labels = []string{"a b"} }, Want: "labels[0]"},
		{Name: "unknown severity", Mut: func(p *Params) { p.Priorities = map[string]string{"urgent": "High"} }, Want: "priorities"},
		{Name: "search api", Mut: func(p *Params) { p.SearchAPI = "v3" }, Want: "search_api"},
		{Name: "timeout", Mut: func(p *Params) { p.Timeout = 0 }, Want: "timeout"},
	})
	// The Cloud search endpoint is chosen for atlassian.net, the Data
	// Center one elsewhere.
	for url, want := range map[string]string{"https://example.atlassian.net/": "/rest/api/2/search/jql", "https://jira.example.com": "/rest/api/2/search"} {
		p := ok()
		p.URL = url
		s, err := New(t.Context(), "j", *p, sinks.Deps{})
		if err != nil || s.search != want {
			t.Errorf("%s: search %q (%v), want %q", url, s.search, err, want)
		}
	}
}
