package opsgenie

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/internal/testkit"
	"github.com/medichq/medic/sinks"
	"github.com/medichq/medic/sinks/internal/incident/incidenttest"
	"github.com/medichq/medic/sinks/opsgenie/opsgenietest"
)

const apiKey = "0f3c9a2e-6b1d-4c8e-9f70-5a4b3c2d1e0f"

func newSink(t *testing.T, apiURL string, log *incidenttest.Log) *Sink {
	t.Helper()
	p := *Defaults()
	p.APIKey, p.APIURL = apiKey, apiURL
	p.Teams = []string{"payments-oncall"}
	p.Tags = []string{"k8s"}
	deps := sinks.Deps{Cluster: "prod-eu", PageURL: incidenttest.PageURL}
	if log != nil {
		deps.Log = log.Logger()
	}
	s, err := New(t.Context(), "opsgenie", p, deps)
	if err != nil {
		t.Fatal(err)
	}
	s.poster.Sleep = func(context.Context, time.Duration) error { return nil }
	return s
}

func TestRequestGolden(t *testing.T) {
	t.Parallel()
	s := newSink(t, DefaultAPIURL, nil)
	long := incidenttest.Alert(event.StatusFiring)
	long.Title = strings.Repeat("A title far longer than Opsgenie's 130 characters ", 4)
	for name, f := range map[string]*event.Finding{
		"firing":     incidenttest.Alert(event.StatusFiring),
		"resolved":   incidenttest.Alert(event.StatusResolved),
		"kube_event": incidenttest.KubeEvent(),
		"long_title": long,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			target, body := s.Request(f)
			got := testkit.JSON(t, map[string]any{"url": target, "body": body})
			testkit.Golden(t, filepath.Join("testdata", name+".golden.json"), got)
		})
	}
}

func TestPriority(t *testing.T) {
	t.Parallel()
	for in, want := range map[event.Severity]string{
		event.SeverityCritical: "P1", event.SeverityHigh: "P2", event.SeverityWarning: "P3",
		event.SeverityInfo: "P4", "": "P4", event.SeverityNone: "P5",
	} {
		if got := Priority(in); got != want {
			t.Errorf("Priority(%q) = %q, want %q", in, got, want)
		}
	}
}

// A create, its redelivery and the close are one Opsgenie alert, closed;
// the alert firing again later opens a second.
func TestCreateRedeliveryCloseIsOneAlert(t *testing.T) {
	t.Parallel()
	og := opsgenietest.New(t, apiKey)
	s := newSink(t, og.URL, nil)
	ctx := context.Background()
	again := incidenttest.Alert(event.StatusFiring)
	again.Event.StartsAt = again.Event.StartsAt.Add(time.Hour)
	for _, f := range []*event.Finding{
		incidenttest.Alert(event.StatusFiring), incidenttest.Alert(event.StatusFiring), incidenttest.Alert(event.StatusResolved), again,
	} {
		if err := s.Send(ctx, f); err != nil {
			t.Fatal(err)
		}
	}
	if inv := og.Invalid(); len(inv) > 0 {
		t.Fatalf("Opsgenie refused requests: %v", inv)
	}
	al := og.Alerts()
	if len(al) != 2 || !al[0].Closed || al[0].Count != 2 || al[1].Closed || al[1].Alias == al[0].Alias {
		t.Fatalf("alerts %+v; want one closed (2 creates merged) and a second open one", al)
	}
	var a Alert
	if err := json.Unmarshal(al[0].Create, &a); err != nil {
		t.Fatal(err)
	}
	if a.Priority != "P1" || len(a.Responders) != 1 || a.Responders[0].Name != "payments-oncall" || a.Details["finding_page"] == "" {
		t.Errorf("created alert %+v", a)
	}
}

func TestFailuresAreRetriedWithoutShowingTheKey(t *testing.T) {
	t.Parallel()
	og := opsgenietest.New(t, apiKey)
	log := &incidenttest.Log{}
	s := newSink(t, og.URL, log)
	og.Fail(http.StatusTooManyRequests, http.StatusServiceUnavailable)
	f := incidenttest.Alert(event.StatusFiring)
	err1 := s.Send(context.Background(), f)
	if err1 == nil || !strings.Contains(err1.Error(), "answered 503") {
		t.Fatalf("error %v, want the 503", err1)
	}
	if err := s.Send(context.Background(), f); err != nil {
		t.Fatalf("retry: %v", err)
	}
	if n := len(og.Alerts()); n != 1 || og.Refused() != 2 {
		t.Fatalf("%d alerts after %d refusals, want 1 after 2", n, og.Refused())
	}
	p := *Defaults()
	p.APIKey, p.APIURL = "wrong-s3cret-key", og.URL
	bad, err := New(t.Context(), "bad", p, sinks.Deps{Log: log.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	err2 := bad.Send(context.Background(), f)
	if err2 == nil || !strings.Contains(err2.Error(), "401") {
		t.Errorf("wrong key: %v", err2)
	}
	log.NoSecret(t, []error{err1, err2}, apiKey, "wrong-s3cret-key")
}

func TestParams(t *testing.T) {
	t.Parallel()
	valid := func() *Params {
		p := Defaults()
		p.APIKey = "k"
		return p
	}
	testkit.CheckParams(t, valid, (*Params).Validate, []testkit.ParamCase[Params]{
		{Name: "valid", Mut: func(*Params) {}},
		{Name: "no key", Mut: func(p *Params) { p.APIKey = "" }, Want: "api_key: required"},
		{Name: "two keys", Mut: func(p *Params) { p.APIKeyFile = "/etc/key" }, Want: "set only one"},
		{Name: "bad url", Mut: func(p *Params) { p.APIURL = "api.eu.opsgenie.com" }, Want: "api_url"},
		{Name: "empty team", Mut: func(p *Params) { p.Teams = []string{""} }, Want: "teams[0]"},
		{Name: "long tag", Mut: func(p *Params) { p.Tags = []string{strings.Repeat("t", 51)} }, Want: "tags[0]"},
		{Name: "timeout", Mut: func(p *Params) { p.Timeout = -time.Second }, Want: "timeout"},
	})
}
