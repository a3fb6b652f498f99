// Package jiratest is Jira's REST API v2 for tests: the calls the jira
// sink makes (create issue, JQL search on both the Data Center and the
// Cloud endpoint, comments, transitions), checked the way Jira checks them
// (basic or bearer authentication, the project, issue type and priority
// names, a summary of at most 255 characters, labels without spaces) and
// answered like Jira (201 with the issue key; 400 with errorMessages and
// errors; 401; 429 with Retry-After and 5xx on demand), over issues kept in
// memory with a To Do → In Progress → Done workflow.
package jiratest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/medichq/medic/sinks/internal/incident/incidenttest"
)

// Options configure the fake Jira.
type Options struct {
	// Username and APIKey are accepted as basic authentication; Token as a
	// bearer token.
	Username, APIKey, Token string
	// Project is the one project's key; ProjectName its name.
	Project, ProjectName string
}

// Issue is an issue as the fake keeps it.
type Issue struct {
	Key, Summary, Description, IssueType, Priority, Status string
	// Assignee is the account ID (Cloud) or name (Data Center) assigned.
	Assignee string
	Labels   []string
	Comments []string
}

// Server is a fake Jira.
type Server struct {
	*httptest.Server
	// Faults: Fail queues refusals; Refused and Invalid count them.
	incidenttest.Faults
	opts Options

	mu       sync.Mutex
	issues   []*Issue
	searches map[string]int // by endpoint path
	lookups  int            // project look-ups
}

// New starts a fake Jira; it is closed when the test ends.
func New(t testing.TB, opts Options) *Server {
	s := &Server{opts: opts, searches: map[string]int{}}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

func answer(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	if v != nil {
		_ = json.NewEncoder(w).Encode(v)
	}
}

func (s *Server) refuse(w http.ResponseWriter, status int, fieldErrs map[string]string, msgs ...string) {
	for k, v := range fieldErrs {
		s.Reject(k + ": " + v)
	}
	s.Reject(msgs...)
	if fieldErrs == nil {
		fieldErrs = map[string]string{}
	}
	if msgs == nil {
		msgs = []string{}
	}
	answer(w, status, map[string]any{"errorMessages": msgs, "errors": fieldErrs})
}

var (
	issuePath = regexp.MustCompile(`^/rest/api/2/issue/([A-Z][A-Z0-9]*-[0-9]+)/(comment|transitions)$`)
	jqlRE     = regexp.MustCompile(`^project = "([^"]+)" AND labels = "([^"]+)" ORDER BY created DESC$`)
)

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if s.FailHTTP(w, func(st int) any { return map[string]any{"errorMessages": []string{http.StatusText(st)}} }) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.authorized(r) {
		s.Reject("authentication")
		answer(w, http.StatusUnauthorized, map[string]any{"errorMessages": []string{"You are not authenticated. Authentication required to perform this operation."}})
		return
	}
	if r.Method == http.MethodPost && !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		answer(w, http.StatusUnsupportedMediaType, nil)
		return
	}
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/rest/api/2/issue":
		s.create(w, body)
	case r.Method == http.MethodGet && (r.URL.Path == "/rest/api/2/search" || r.URL.Path == "/rest/api/2/search/jql"):
		s.search(w, r)
	case r.Method == http.MethodGet && r.URL.Path == "/rest/api/2/project": // Data Center: all of them
		s.lookups++
		answer(w, http.StatusOK, []map[string]string{{"id": "10000", "key": s.opts.Project, "name": s.opts.ProjectName}, {"id": "10001", "key": "OTHER", "name": "Other"}})
	case r.Method == http.MethodGet && r.URL.Path == "/rest/api/2/project/search": // Cloud: paged, filtered
		s.lookups++
		var vals []map[string]string
		for _, p := range []map[string]string{{"id": "10000", "key": s.opts.Project, "name": s.opts.ProjectName}, {"id": "10001", "key": "OTHER", "name": "Other"}} {
			if q := strings.ToLower(r.URL.Query().Get("query")); strings.Contains(strings.ToLower(p["name"]), q) || strings.Contains(strings.ToLower(p["key"]), q) {
				vals = append(vals, p)
			}
		}
		answer(w, http.StatusOK, map[string]any{"values": vals, "isLast": true, "total": len(vals)})
	case issuePath.MatchString(r.URL.Path):
		m := issuePath.FindStringSubmatch(r.URL.Path)
		is := s.issue(m[1])
		if is == nil {
			s.refuse(w, http.StatusNotFound, nil, "Issue does not exist or you do not have permission to see it.")
			return
		}
		switch {
		case m[2] == "comment" && r.Method == http.MethodGet:
			cs := make([]map[string]string, len(is.Comments))
			for i, c := range is.Comments {
				cs[i] = map[string]string{"id": fmt.Sprint(10000 + i), "body": c}
			}
			answer(w, http.StatusOK, map[string]any{"startAt": 0, "maxResults": 1000, "total": len(cs), "comments": cs})
		case m[2] == "comment" && r.Method == http.MethodPost:
			var c struct {
				Body string `json:"body"`
			}
			if json.Unmarshal(body, &c) != nil || strings.TrimSpace(c.Body) == "" {
				s.refuse(w, http.StatusBadRequest, map[string]string{"comment": "Comment body can not be empty!"})
				return
			}
			is.Comments = append(is.Comments, c.Body)
			answer(w, http.StatusCreated, map[string]any{"id": fmt.Sprint(10000 + len(is.Comments) - 1), "body": c.Body})
		case m[2] == "transitions" && r.Method == http.MethodGet:
			answer(w, http.StatusOK, map[string]any{"transitions": transitions(is.Status)})
		case m[2] == "transitions" && r.Method == http.MethodPost:
			var t struct {
				Transition struct {
					ID string `json:"id"`
				} `json:"transition"`
			}
			_ = json.Unmarshal(body, &t)
			for _, tr := range transitions(is.Status) {
				if tr.ID == t.Transition.ID {
					is.Status = tr.To.Name
					answer(w, http.StatusNoContent, nil)
					return
				}
			}
			s.refuse(w, http.StatusBadRequest, nil, "Transition id '"+t.Transition.ID+"' is not valid for this issue.")
		default:
			answer(w, http.StatusMethodNotAllowed, nil)
		}
	default:
		answer(w, http.StatusNotFound, map[string]any{"errorMessages": []string{"null for uri: " + r.URL.Path}})
	}
}

func (s *Server) authorized(r *http.Request) bool {
	if s.opts.Token != "" && r.Header.Get("Authorization") == "Bearer "+s.opts.Token {
		return true
	}
	u, p, ok := r.BasicAuth()
	return ok && s.opts.APIKey != "" && u == s.opts.Username && p == s.opts.APIKey
}

// transition is one of the workflow's transitions, as Jira lists them.
type transition struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	To   struct {
		Name string `json:"name"`
	} `json:"to"`
}

// transitions are the workflow's transitions out of a status: To Do →
// In Progress → Done, and Done → To Do by "Reopen".
func transitions(status string) []transition {
	t := func(id, name, to string) transition {
		tr := transition{ID: id, Name: name}
		tr.To.Name = to
		return tr
	}
	if status == "Done" {
		return []transition{t("11", "Reopen", "To Do")}
	}
	return []transition{t("21", "Start progress", "In Progress"), t("31", "Done", "Done")}
}

func (s *Server) create(w http.ResponseWriter, body []byte) {
	var req struct {
		Fields struct {
			Project struct {
				Key string `json:"key"`
			} `json:"project"`
			Summary     string `json:"summary"`
			Description string `json:"description"`
			IssueType   struct {
				Name string `json:"name"`
			} `json:"issuetype"`
			Labels   []string `json:"labels"`
			Priority *struct {
				Name string `json:"name"`
			} `json:"priority"`
			Assignee *struct {
				AccountID string `json:"accountId"`
				Name      string `json:"name"`
			} `json:"assignee"`
		} `json:"fields"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		s.refuse(w, http.StatusBadRequest, nil, "Unexpected character: "+err.Error())
		return
	}
	f := req.Fields
	errs := map[string]string{}
	if f.Project.Key != s.opts.Project {
		errs["project"] = "valid project is required"
	}
	if strings.TrimSpace(f.Summary) == "" || len([]rune(f.Summary)) > 255 || strings.ContainsAny(f.Summary, "\r\n") {
		errs["summary"] = "Summary must be less than 255 characters and on one line."
	}
	if !slices.Contains([]string{"Task", "Bug", "Incident"}, f.IssueType.Name) {
		errs["issuetype"] = "Specify a valid issue type"
	}
	for _, l := range f.Labels {
		if l == "" || strings.ContainsAny(l, " \t") || len(l) > 255 {
			errs["labels"] = "The label '" + l + "' contains spaces which is invalid."
		}
	}
	prio := ""
	if f.Priority != nil {
		prio = f.Priority.Name
		if !slices.Contains([]string{"Highest", "High", "Medium", "Low", "Lowest"}, prio) {
			errs["priority"] = "Specify a valid priority name"
		}
	}
	assignee := ""
	if a := f.Assignee; a != nil {
		assignee = a.AccountID + a.Name
		if (a.AccountID == "") == (a.Name == "") {
			errs["assignee"] = "Specify the user by accountId (Cloud) or name (Data Center)"
		}
	}
	if len(errs) > 0 {
		s.refuse(w, http.StatusBadRequest, errs)
		return
	}
	key := fmt.Sprintf("%s-%d", s.opts.Project, len(s.issues)+1)
	s.issues = append(s.issues, &Issue{Key: key, Summary: f.Summary, Description: f.Description, IssueType: f.IssueType.Name,
		Priority: prio, Status: "To Do", Labels: f.Labels, Assignee: assignee})
	answer(w, http.StatusCreated, map[string]string{"id": fmt.Sprint(10000 + len(s.issues)), "key": key, "self": "/rest/api/2/issue/" + key})
}

func (s *Server) search(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	m := jqlRE.FindStringSubmatch(q.Get("jql"))
	if m == nil {
		s.refuse(w, http.StatusBadRequest, nil, "Error in the JQL Query: this fake understands only project = \"K\" AND labels = \"L\" ORDER BY created DESC")
		return
	}
	if m[1] != s.opts.Project {
		s.refuse(w, http.StatusBadRequest, nil, "The value '"+m[1]+"' does not exist for the field 'project'.")
		return
	}
	s.searches[r.URL.Path]++
	var found []map[string]any
	for i := len(s.issues) - 1; i >= 0; i-- { // newest first
		is := s.issues[i]
		if slices.Contains(is.Labels, m[2]) {
			found = append(found, map[string]any{"id": fmt.Sprint(10001 + i), "key": is.Key, "fields": map[string]any{"description": is.Description}})
		}
	}
	if q.Get("maxResults") == "1" && len(found) > 1 {
		found = found[:1]
	}
	if found == nil {
		found = []map[string]any{}
	}
	if r.URL.Path == "/rest/api/2/search/jql" {
		answer(w, http.StatusOK, map[string]any{"issues": found, "isLast": true})
		return
	}
	answer(w, http.StatusOK, map[string]any{"startAt": 0, "maxResults": len(found), "total": len(found), "issues": found})
}

func (s *Server) issue(key string) *Issue {
	for _, is := range s.issues {
		if is.Key == key {
			return is
		}
	}
	return nil
}

// Lookups counts the project look-ups (by name).
func (s *Server) Lookups() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lookups
}

// Issues returns copies of the issues, in the order they were created.
func (s *Server) Issues() []Issue {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Issue, len(s.issues))
	for i, is := range s.issues {
		out[i] = *is
		out[i].Labels = slices.Clone(is.Labels)
		out[i].Comments = slices.Clone(is.Comments)
	}
	return out
}

// Searches counts the searches made on an endpoint path.
func (s *Server) Searches(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.searches[path]
}
