package interact

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	sslack "github.com/medichq/medic/sinks/slack"
	"github.com/medichq/medic/sinks/slack/slackrec"
	"github.com/medichq/medic/test/realam"
)

func TestSilenceButtonCreatesSilenceInRealAlertmanager(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the real Alertmanager (test/realam)")
	}
	am := realam.Start(t, "http://127.0.0.1:9/unused")
	// No alertmanager.url: the alert's own Alertmanager, which the
	// operator allowed.
	h := newHarness(t, harnessOpts{alertmanagerAllowed: []string{am.URL()}})
	f := alertFinding("s1")
	f.Event.ExternalURL = am.URL()
	msg := h.deliver(f)
	if !strings.Contains(msg.BlocksJSON(), sslack.ActionSilence4h) {
		t.Fatal("no silence buttons on a firing alert")
	}
	h.click(msg, sslack.ActionSilence4h, f.ID, "1700000400.000001")

	h.slack.Wait(t, wait, "the silence confirmed in the thread", func(s *slackrec.Server) bool {
		for _, p := range h.threadPosts(msg.TS) {
			if strings.Contains(text(p), "silenced this alert for 4h") {
				return true
			}
		}
		return false
	})
	sils, err := am.Silences(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(sils) != 1 {
		t.Fatalf("%d silences in Alertmanager, want 1", len(sils))
	}
	s := sils[0]
	got := map[string]string{}
	for _, m := range s.Matchers {
		if !*m.IsEqual || *m.IsRegex {
			t.Errorf("matcher %s is not an exact match", *m.Name)
		}
		got[*m.Name] = *m.Value
	}
	for k, v := range f.Event.Labels {
		if got[k] != v {
			t.Errorf("silence matcher %s=%q, want %q", k, got[k], v)
		}
	}
	if *s.Status.State != "active" || !strings.Contains(*s.CreatedBy, "alice") || !strings.Contains(*s.Comment, f.ID) {
		t.Errorf("silence %s by %q (%q)", *s.Status.State, *s.CreatedBy, *s.Comment)
	}
	if d := time.Time(*s.EndsAt).Sub(time.Time(*s.StartsAt)); d < 4*time.Hour-time.Minute || d > 4*time.Hour+time.Minute {
		t.Errorf("silence lasts %s, want 4h", d)
	}
	reply := h.threadPosts(msg.TS)[0]
	if !strings.Contains(text(reply), am.URL()+"/#/silences/"+*s.ID) {
		t.Errorf("reply does not link the silence: %s", text(reply))
	}
}

func TestSilenceWithoutAlertmanagerSaysSo(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	f := alertFinding("s2") // no externalURL, no alertmanager.url
	msg := h.deliver(f)
	h.click(msg, sslack.ActionSilence1h, f.ID, "1700000400.000002")
	h.slack.Wait(t, wait, "an explanation in the thread", func(s *slackrec.Server) bool {
		for _, p := range h.threadPosts(msg.TS) {
			if strings.Contains(text(p), "set alertmanager.url") {
				return true
			}
		}
		return false
	})
}

// amRecorder is an HTTP server that records every request's path and
// Authorization header and answers a silence creation like Alertmanager.
type amRecorder struct {
	srv  *httptest.Server
	mu   sync.Mutex
	reqs []string // "METHOD path auth"
}

func newAMRecorder(t *testing.T) *amRecorder {
	r := &amRecorder{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.reqs = append(r.reqs, req.Method+" "+req.URL.Path+" "+req.Header.Get("Authorization"))
		r.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"silenceID":"sil-1"}`)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *amRecorder) requests() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.reqs)
}

// TestSilenceTokenGoesOnlyWhereTheOperatorPointedIt: an alert's
// externalURL is chosen by whoever posts the alert; a recording server at
// that address must never receive the Alertmanager token, whatever else is
// configured.
func TestSilenceTokenGoesOnlyWhereTheOperatorPointedIt(t *testing.T) {
	const token = "am-token-s3cr3t"
	tests := []struct {
		name       string
		configured bool     // alertmanager.url points at a second recorder
		allowed    []string // alertmanager.allowed_urls
		wantReply  string
	}{
		{name: "no alertmanager.url", wantReply: "set alertmanager.url"},
		{name: "allow-list names another host", allowed: []string{"http://alertmanager.monitoring:9093"}, wantReply: "does not send its token"},
		{name: "alertmanager.url wins over the alert's", configured: true, wantReply: "silenced this alert for 1h"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hostile, operator := newAMRecorder(t), newAMRecorder(t)
			ho := harnessOpts{alertmanagerToken: token, alertmanagerAllowed: tt.allowed}
			if tt.configured {
				ho.alertmanagerURL = operator.srv.URL
			}
			h := newHarness(t, ho)
			f := alertFinding(fmt.Sprintf("tok%d", i))
			f.Event.ExternalURL = hostile.srv.URL
			msg := h.deliver(f)
			h.click(msg, sslack.ActionSilence1h, f.ID, "1700000500.00000"+strconv.Itoa(i))
			h.slack.Wait(t, wait, "a reply in the thread", func(s *slackrec.Server) bool {
				for _, p := range h.threadPosts(msg.TS) {
					if strings.Contains(text(p), tt.wantReply) {
						return true
					}
				}
				return false
			})
			if got := hostile.requests(); len(got) != 0 {
				t.Errorf("the alert's externalURL received %d requests: %q", len(got), got)
			}
			got := operator.requests()
			switch {
			case tt.configured && (len(got) != 1 || !strings.HasSuffix(got[0], "Bearer "+token)):
				t.Errorf("alertmanager.url received %q, want one silence with the token", got)
			case !tt.configured && len(got) != 0:
				t.Errorf("unexpected requests %q", got)
			}
		})
	}
}

func TestURLAllowed(t *testing.T) {
	allowed := []string{"http://am.monitoring:9093", "https://alerts.example/am/"}
	tests := []struct {
		url  string
		want bool
	}{
		{"http://am.monitoring:9093", true},
		{"http://am.monitoring:9093/", true},
		{"http://AM.monitoring:9093/sub", true},
		{"https://am.monitoring:9093", false}, // another scheme
		{"http://am.monitoring:9094", false},  // another port
		{"http://am.monitoring:9093@evil.example", false},
		{"http://user:pw@am.monitoring:9093", false}, // credentials chosen by the alert
		{"https://alerts.example/am", true},
		{"https://alerts.example/am/x", true},
		{"https://alerts.example/amx", false},
		{"https://alerts.example/", false},
		{"not a url", false},
	}
	for _, tt := range tests {
		if got := urlAllowed(tt.url, allowed); got != tt.want {
			t.Errorf("urlAllowed(%q) = %v, want %v", tt.url, got, tt.want)
		}
	}
}
