package pagerduty

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/medichq/medic/event"
	"github.com/medichq/medic/internal/testkit"
	"github.com/medichq/medic/sinks"
	"github.com/medichq/medic/sinks/internal/incident/incidenttest"
	"github.com/medichq/medic/sinks/internal/secretparam"
	"github.com/medichq/medic/sinks/pagerduty/pagerdutytest"
)

const routingKey = "R0UT1NGKEY0123456789abcdefabcdef"

func newSink(t *testing.T, apiURL string, log *incidenttest.Log) *Sink {
	t.Helper()
	p := *Defaults()
	p.RoutingKey = routingKey
	p.APIURL = apiURL
	s, err := New(t.Context(), "oncall", p, incidenttest.Deps(log))
	if err != nil {
		t.Fatal(err)
	}
	s.poster.Sleep = func(context.Context, time.Duration) error { return nil }
	return s
}

func TestEventGolden(t *testing.T) {
	t.Parallel()
	s := newSink(t, DefaultAPIURL, nil)
	for name, f := range incidenttest.Cases() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			testkit.Golden(t, filepath.Join("testdata", name+".golden.json"), testkit.JSON(t, s.Event(f)))
		})
	}
}

func TestSeverity(t *testing.T) {
	t.Parallel()
	for in, want := range map[event.Severity]string{
		event.SeverityCritical: "critical", event.SeverityHigh: "error", event.SeverityWarning: "warning",
		event.SeverityInfo: "info", event.SeverityNone: "info", "": "info",
	} {
		if got := Severity(in); got != want {
			t.Errorf("Severity(%q) = %q, want %q", in, got, want)
		}
	}
}

// A trigger, its redelivery (medic crashed before recording the delivery)
// and the resolve reach PagerDuty as one incident, opened and closed.
func TestTriggerRedeliveryResolveIsOneIncident(t *testing.T) {
	t.Parallel()
	pd := pagerdutytest.New(t, routingKey)
	s := newSink(t, pd.URL, nil)
	ctx := context.Background()
	for _, f := range []*event.Finding{
		incidenttest.Alert(event.StatusFiring), incidenttest.Alert(event.StatusFiring), incidenttest.Alert(event.StatusResolved),
	} {
		if err := s.Send(ctx, f); err != nil {
			t.Fatal(err)
		}
	}
	// The alert fires again later: a new lifetime, a new incident.
	again := incidenttest.Alert(event.StatusFiring)
	again.Event.StartsAt = again.Event.StartsAt.Add(time.Hour)
	if err := s.Send(ctx, again); err != nil {
		t.Fatal(err)
	}
	in := pd.Incidents()
	if len(pd.Invalid()) > 0 {
		t.Fatalf("PagerDuty refused events: %v", pd.Invalid())
	}
	if len(in) != 2 || !in[0].Resolved || in[0].Triggers != 2 || in[1].Resolved || in[1].DedupKey == in[0].DedupKey {
		t.Fatalf("incidents %+v; want one resolved (2 triggers merged) and a second open one", in)
	}
	var first Event
	if err := json.Unmarshal(in[0].First, &first); err != nil {
		t.Fatal(err)
	}
	if first.Links[0].Href != incidenttest.PageURL(incidenttest.Alert(event.StatusFiring).ID) || first.Payload.Severity != "critical" {
		t.Errorf("first trigger: links %v, severity %s", first.Links, first.Payload.Severity)
	}
}

// 429 is waited out within the delivery; a 5xx is returned for the
// consumer to retry; neither the routing key nor the URL shows in errors
// or logs.
func TestFailuresAreRetriedWithoutShowingTheKey(t *testing.T) {
	t.Parallel()
	pd := pagerdutytest.New(t, routingKey)
	log := &incidenttest.Log{}
	s := newSink(t, pd.URL, log)
	pd.Fail(http.StatusTooManyRequests, http.StatusInternalServerError)
	f := incidenttest.Alert(event.StatusFiring)
	err1 := s.Send(context.Background(), f)
	if err1 == nil || !strings.Contains(err1.Error(), "answered 500") {
		t.Fatalf("error %v, want the 500", err1)
	}
	err2 := s.Send(context.Background(), f)
	if err2 != nil {
		t.Fatalf("retry: %v", err2)
	}
	if n := len(pd.Incidents()); n != 1 || pd.Refused() != 2 {
		t.Fatalf("%d incidents after %d refusals, want 1 after 2", n, pd.Refused())
	}
	// A wrong key is PagerDuty's 400, with its reason, without the key.
	p := *Defaults()
	p.RoutingKey, p.APIURL = "WRONGKEY-s3cret", pd.URL
	bad, err := New(t.Context(), "bad", p, sinks.Deps{Log: log.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	err3 := bad.Send(context.Background(), f)
	if err3 == nil || !strings.Contains(err3.Error(), "400") || !strings.Contains(err3.Error(), "routing_key") {
		t.Errorf("wrong key: %v", err3)
	}
	pd.Close()
	err4 := s.Send(context.Background(), f)
	if err4 == nil || strings.Contains(err4.Error(), pd.URL) {
		t.Errorf("connection error %v", err4)
	}
	log.NoSecret(t, []error{err1, err2, err3, err4}, routingKey, "WRONGKEY-s3cret")
}

// An alert whose annotations run to hundreds of KB (a description holding a
// stack trace or a whole config) still makes an event PagerDuty takes: each
// label and annotation value in custom_details is cut, the evidence being
// in the finding's text, which is cut already.
func TestHugeAnnotationsStayUnderTheEventLimit(t *testing.T) {
	t.Parallel()
	pd := pagerdutytest.New(t, routingKey)
	s := newSink(t, pd.URL, nil)
	f := incidenttest.Alert(event.StatusFiring)
	f.Event.Annotations = map[string]string{
		"description": strings.Repeat("java.lang.IllegalStateException at com.example.Cart.checkout(Cart.java:42)\n", 8000),
		"runbook_url": "https://runbooks.example/cart",
	}
	if err := s.Send(context.Background(), f); err != nil {
		t.Fatalf("send: %v", err)
	}
	evs := pd.Events()
	if len(evs) != 1 || len(evs[0]) > pagerdutytest.MaxEventBytes {
		t.Fatalf("%d events accepted (%d bytes), want one under %d", len(evs), len(evs[0]), pagerdutytest.MaxEventBytes)
	}
	if !strings.Contains(string(evs[0]), "runbooks.example/cart") || !strings.Contains(string(evs[0]), "Cart.java:42") {
		t.Error("the annotations are not in the event")
	}
}

func TestParams(t *testing.T) {
	valid := func() *Params {
		p := Defaults()
		p.RoutingKey = "k"
		return p
	}
	testkit.CheckParams(t, valid, (*Params).Validate, []testkit.ParamCase[Params]{
		{Name: "valid", Mut: func(*Params) {}},
		{Name: "no key", Mut: func(p *Params) { p.RoutingKey = "" }, Want: "routing_key: required"},
		{Name: "two keys", Mut: func(p *Params) { p.RoutingKeyEnv = "PD_KEY" }, Want: "set only one"},
		{Name: "bad url", Mut: func(p *Params) { p.APIURL = "events.pagerduty.com" }, Want: "api_url"},
		{Name: "timeout", Mut: func(p *Params) { p.Timeout = 0 }, Want: "timeout"},
	})
	// The shared HTTP parameters are keys of the sink like its own.
	incidenttest.CheckSpecs(t, sinks.NewRegistry(Register), map[string]string{
		"{name: pd, type: pagerduty, routing_key: k, timeout: 3s, max_retry_after: 0s}": "",
		"{name: pd, type: pagerduty, routing_key: k, timeot: 3s}":                       `unknown parameter "timeot"`,
	})
	t.Run("from env", func(t *testing.T) {
		t.Setenv("PD_ROUTING_KEY", "envkey\n")
		p := Defaults()
		p.RoutingKeyEnv = "PD_ROUTING_KEY"
		s, err := New(t.Context(), "x", *p, sinks.Deps{})
		if err != nil || s.key != "envkey" {
			t.Fatalf("New = %v", err)
		}
		t.Setenv("PD_ROUTING_KEY", "")
		if _, err := New(t.Context(), "x", *p, sinks.Deps{}); err == nil || !errors.Is(err, secretparam.ErrEmpty) {
			t.Fatalf("empty variable: %v", err)
		}
	})
}
